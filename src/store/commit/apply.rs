//! Writes a plan with multi-row statements, checking that each write did what the plan
//! decided. A write that did not (another node wrote in between) reports [`Diverged`]: the
//! caller rolls back and decides again from fresh reads.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::domain::MessageStatus;

use super::plan::{AckPlan, CallbackPlan, Event, Plan};
use crate::store::devices::AckOutcome;
use crate::store::engine::Backend;
use crate::store::idempotency::Keys;
use crate::store::queue::bind_message;
use crate::store::rows::{identity_id, message_id};
use crate::store::sql::MultiRow;
use crate::store::status::queue_status_events;
use crate::store::StoreError;

/// A write did not do what the plan decided.
#[derive(Debug)]
pub(super) struct Diverged;

/// Writes a plan of submissions and device messages: keys, queue rows, debits, ledger.
pub(super) async fn apply(
    conn: &mut AnyConnection,
    backend: Backend,
    keys: &Keys,
    plan: &Plan<'_>,
) -> Result<Result<(), Diverged>, StoreError> {
    let p = backend.placeholders();
    // Keys first: on PostgreSQL a key another node is claiming holds this insert until
    // that node's transaction ends, and then it is found taken.
    if !keys.record(conn, backend, &plan.claims).await? {
        return Ok(Err(Diverged));
    }
    static QUEUE: MultiRow = MultiRow::new(
        "INSERT INTO queued_messages (message_id, sender, recipient, flags, nonce, body, \
         created_at, expires_at) VALUES {rows} ON CONFLICT (sender, message_id, recipient) \
         DO NOTHING",
        8,
    );
    let queued = QUEUE
        .insert_all(conn, p, &plan.queue, |q, (m, now)| bind_message(q, m, *now))
        .await?;
    if !queued {
        return Ok(Err(Diverged));
    }
    for debit in &plan.debits {
        // Written without reusing a parameter so it works with anonymous ones too.
        let sql = format!(
            "UPDATE accounts SET balance = balance - {} WHERE id = {} AND balance >= {} \
             RETURNING balance",
            p.one(1),
            p.one(2),
            p.one(3)
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(debit.total)
            .bind(debit.account.0)
            .bind(debit.total)
            .fetch_optional(&mut *conn)
            .await?;
        let after: Option<i64> = row.map(|r| r.try_get("balance")).transpose()?;
        if after != Some(debit.balance_after) {
            return Ok(Err(Diverged));
        }
    }
    static LEDGER: MultiRow = MultiRow::new(
        "INSERT INTO ledger (account_id, delta, balance_after, reason, message_id, created_at) \
         VALUES {rows}",
        6,
    );
    LEDGER
        .insert_all(conn, p, &plan.ledger, |q, line| {
            q.bind(line.account.0)
                .bind(line.delta)
                .bind(line.balance_after)
                .bind(line.reason.as_str())
                .bind(line.message_id.as_bytes().to_vec())
                .bind(line.at)
        })
        .await?;
    Ok(Ok(()))
}

/// Writes a plan of acks: the new acks and `delivered` events, then deletes the rows every
/// responsible device now has (their `queued` status becomes an event as they go) with
/// their acks. Returns each ack's outcome, and how many status outbox rows the events made.
pub(super) async fn apply_acks(
    conn: &mut AnyConnection,
    backend: Backend,
    plan: AckPlan,
) -> Result<Result<(Vec<AckOutcome>, u64), Diverged>, StoreError> {
    let AckPlan {
        mut outcomes,
        new_acks,
        delivered,
        seqs,
        last_ack_of,
    } = plan;
    if seqs.is_empty() {
        return Ok(Ok((outcomes, 0)));
    }
    let p = backend.placeholders();
    static ACKS: MultiRow = MultiRow::new(
        "INSERT INTO message_acks (seq, device_id, acked_at) VALUES {rows} \
         ON CONFLICT (seq, device_id) DO NOTHING",
        3,
    );
    let recorded = ACKS
        .insert_all(conn, p, &new_acks, |q, (seq, device, at)| {
            q.bind(*seq).bind(*device).bind(*at)
        })
        .await?;
    if !recorded {
        return Ok(Err(Diverged));
    }
    let statuses = insert_events(conn, backend, &delivered).await?;
    for (seq, _) in retire_delivered(conn, backend, &seqs).await? {
        if let Some(&i) = last_ack_of.get(&seq) {
            outcomes[i].deleted = true;
        }
    }
    Ok(Ok((outcomes, statuses)))
}

/// Deletes, among the queue rows `seqs`, every one that no responsible device of its
/// recipient still owes an ack: the one rule of when a message leaves the queue delivered
/// (see `store::devices`), for acks and for dropped devices alike. A device is responsible
/// for the rows queued after it registered (`registered_after_seq`). A recipient with no
/// device left keeps its rows: they wait, until their TTL, for its next device, which
/// takes over everything waiting. Each row's `queued` status becomes an event as it goes,
/// and its acks go with it. Returns the rows deleted, in queue order, with that event.
pub(in crate::store) async fn retire_delivered(
    conn: &mut AnyConnection,
    backend: Backend,
    seqs: &[i64],
) -> Result<Vec<(i64, Event)>, StoreError> {
    let p = backend.placeholders();
    let mut gone: Vec<(i64, Event)> = Vec::new();
    for chunk in seqs.chunks(super::read::LIST_CHUNK) {
        let sql = "DELETE FROM queued_messages WHERE seq IN ({list}) AND EXISTS \
             (SELECT 1 FROM devices d WHERE d.identity_id = queued_messages.recipient) \
             AND NOT EXISTS \
             (SELECT 1 FROM devices d WHERE d.identity_id = queued_messages.recipient \
              AND d.registered_after_seq < queued_messages.seq AND NOT EXISTS \
              (SELECT 1 FROM message_acks a WHERE a.seq = queued_messages.seq \
               AND a.device_id = d.device_id)) \
             RETURNING seq, sender, message_id, recipient, created_at";
        let rows = p.with_list(sql, chunk).fetch_all(&mut *conn).await?;
        gone.extend(deleted_rows(&rows)?);
    }
    finish_retiring(conn, backend, &mut gone).await?;
    Ok(gone)
}

/// The queue rows a `DELETE … RETURNING seq, sender, message_id, recipient, created_at`
/// took, each with its `queued` status as an event.
pub(in crate::store) fn deleted_rows(rows: &[AnyRow]) -> Result<Vec<(i64, Event)>, StoreError> {
    rows.iter()
        .map(|row| {
            let queued = Event {
                sender: identity_id(row, "sender")?,
                message_id: message_id(row, "message_id")?,
                recipient: identity_id(row, "recipient")?,
                event: MessageStatus::Queued,
                at: row.try_get("created_at")?,
            };
            Ok((row.try_get("seq")?, queued))
        })
        .collect()
}

/// Puts deleted queue rows in queue order, records their `queued` events and deletes
/// their acks.
pub(in crate::store) async fn finish_retiring(
    conn: &mut AnyConnection,
    backend: Backend,
    gone: &mut [(i64, Event)],
) -> Result<(), StoreError> {
    gone.sort_by_key(|(seq, _)| *seq);
    let queued: Vec<Event> = gone.iter().map(|(_, e)| *e).collect();
    insert_events(conn, backend, &queued).await?;
    let deleted: Vec<i64> = gone.iter().map(|(seq, _)| *seq).collect();
    let p = backend.placeholders();
    for chunk in deleted.chunks(super::read::LIST_CHUNK) {
        let sql = "DELETE FROM message_acks WHERE seq IN ({list})";
        p.with_list(sql, chunk).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Writes status events, in order, and puts those a gateway ID's status webhook wants into
/// the status outbox; returns how many outbox rows that made.
pub(in crate::store) async fn insert_events(
    conn: &mut AnyConnection,
    backend: Backend,
    events: &[Event],
) -> Result<u64, StoreError> {
    static EVENTS: MultiRow = MultiRow::new(
        "INSERT INTO message_events (sender, message_id, recipient, event, at) VALUES {rows}",
        5,
    );
    EVENTS
        .insert_all(conn, backend.placeholders(), events, |q, e| {
            q.bind(e.sender.as_str())
                .bind(e.message_id.as_bytes().to_vec())
                .bind(e.recipient.as_str())
                .bind(e.event.as_str())
                .bind(e.at)
        })
        .await?;
    queue_status_events(conn, backend, events).await
}

/// Writes a plan of callback entries: each due at once.
pub(super) async fn apply_callbacks(
    conn: &mut AnyConnection,
    backend: Backend,
    plan: &CallbackPlan<'_>,
) -> Result<Result<(), Diverged>, StoreError> {
    static OUTBOX: MultiRow = MultiRow::new(
        "INSERT INTO callback_outbox (gateway_id, sender, message_id, sent_at, nonce, body, \
         nickname, next_attempt_at, created_at) VALUES {rows} \
         ON CONFLICT (gateway_id, sender, message_id) DO NOTHING",
        9,
    );
    let stored = OUTBOX
        .insert_all(conn, backend.placeholders(), &plan.store, |q, job| {
            let e = &job.entry;
            q.bind(e.gateway.as_str())
                .bind(e.sender.as_str())
                .bind(e.message_id.as_bytes().to_vec())
                .bind(e.sent_at)
                .bind(e.nonce.as_bytes().to_vec())
                .bind(e.body.clone())
                .bind(e.nickname.clone())
                .bind(job.now)
                .bind(job.now)
        })
        .await?;
    Ok(if stored { Ok(()) } else { Err(Diverged) })
}
