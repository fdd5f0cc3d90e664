//! What a plan is decided from, read inside the group's transaction.
//!
//! Rows the plan will change are read with the engine's row lock (PostgreSQL: `FOR
//! UPDATE`, in a fixed order), so on several nodes the writes find them as they were read.
//! What another node may still add meanwhile (an idempotency key, a queue row) the writes
//! themselves check.

use std::collections::HashMap;

use sqlx::{AnyConnection, Row};

use super::job::{Ack, CallbackJob, DirectJob, SubmitJob};
use super::plan::{AckFound, CallbackFound, Found};
use crate::store::accounts::AccountId;
use crate::store::engine::Backend;
use crate::store::idempotency::{Claim, Keys};
use crate::store::queue::QueueKey;
use crate::store::rows::{identity_id, message_id};
use crate::store::StoreError;

/// How much a read looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lookup {
    /// A whole group: messages are taken to be new (fresh IDs), which the insert checks.
    Group,
    /// One job of a replayed group: whether its message is queued already is read too.
    OneJob,
}

/// Reads what the plan of `submissions` and `directs` needs.
pub(super) async fn found(
    conn: &mut AnyConnection,
    backend: Backend,
    keys: &Keys,
    submissions: &[SubmitJob],
    directs: &[DirectJob],
    lookup: Lookup,
) -> Result<Found, StoreError> {
    let mut found = Found::default();
    if !submissions.is_empty() {
        let wanted: Vec<Claim<'_>> = submissions.iter().flat_map(SubmitJob::claims).collect();
        found.taken = keys.taken(conn, backend, &wanted).await?;
        let mut accounts: Vec<i64> = submissions
            .iter()
            .map(|j| &j.submission.charge)
            .filter(|c| !c.amount.is_zero())
            .map(|c| c.account.0)
            .collect();
        accounts.sort_unstable();
        accounts.dedup();
        found.balances = balances(conn, backend, &accounts).await?;
    }
    if lookup == Lookup::OneJob {
        let messages = submissions
            .iter()
            .map(|j| &j.submission.message)
            .chain(directs.iter().map(|j| &j.message));
        let wanted: Vec<QueueKey> = messages.map(|m| m.key()).collect();
        found.queued = queue_rows(conn, backend, &wanted, "")
            .await?
            .into_keys()
            .collect();
    }
    Ok(found)
}

/// Reads what the plan of `acks` needs.
pub(super) async fn ack_found(
    conn: &mut AnyConnection,
    backend: Backend,
    acks: &[Ack],
) -> Result<AckFound, StoreError> {
    let mut keys: Vec<QueueKey> = acks.iter().map(Ack::key).collect();
    keys.dedup();
    // Two devices acking at once must not both miss the other's ack.
    let seq_of = queue_rows(conn, backend, &keys, backend.row_lock()).await?;
    let mut seqs: Vec<i64> = seq_of.values().copied().collect();
    seqs.sort_unstable();
    let mut found = AckFound {
        seq_of,
        ..AckFound::default()
    };
    for chunk in seqs.chunks(LIST_CHUNK) {
        let sql = "SELECT seq, device_id FROM message_acks WHERE seq IN ({list})";
        let rows = backend
            .placeholders()
            .with_list(sql, chunk)
            .fetch_all(&mut *conn)
            .await?;
        for row in rows {
            found
                .acked
                .insert((row.try_get("seq")?, row.try_get("device_id")?));
        }
    }
    Ok(found)
}

/// Reads what the plan of callback entries needs: which are in the outbox already, and
/// how many entries wait per (gateway ID, sender) and per gateway ID, each counted only
/// up to its cap (through the index of pending entries).
pub(super) async fn callback_found(
    conn: &mut AnyConnection,
    backend: Backend,
    jobs: &[CallbackJob],
) -> Result<CallbackFound, StoreError> {
    let p = backend.placeholders();
    let mut found = CallbackFound::default();
    let resent = format!(
        "SELECT 1 AS x FROM callback_outbox WHERE gateway_id = {} AND sender = {} \
         AND message_id = {}",
        p.one(1),
        p.one(2),
        p.one(3)
    );
    let from_sender = format!(
        "SELECT COUNT(*) AS n FROM (SELECT 1 FROM callback_outbox WHERE gateway_id = {} \
         AND sender = {} AND dead = 0 LIMIT {}) p",
        p.one(1),
        p.one(2),
        p.one(3)
    );
    let in_all = format!(
        "SELECT COUNT(*) AS n FROM (SELECT 1 FROM callback_outbox WHERE gateway_id = {} \
         AND dead = 0 LIMIT {}) p",
        p.one(1),
        p.one(2)
    );
    for job in jobs {
        let (gateway, sender) = (job.entry.gateway, job.entry.sender);
        let row = sqlx::query(sqlx::AssertSqlSafe(resent.as_str()))
            .bind(gateway.as_str())
            .bind(sender.as_str())
            .bind(job.entry.message_id.as_bytes().to_vec())
            .fetch_optional(&mut *conn)
            .await?;
        if row.is_some() {
            found.stored.insert(job.key());
        }
        if let std::collections::hash_map::Entry::Vacant(slot) =
            found.per_sender.entry((gateway, sender))
        {
            let n: i64 = sqlx::query(sqlx::AssertSqlSafe(from_sender.as_str()))
                .bind(gateway.as_str())
                .bind(sender.as_str())
                .bind(i64::from(job.caps.per_sender))
                .fetch_one(&mut *conn)
                .await?
                .try_get("n")?;
            slot.insert(n);
        }
        if let std::collections::hash_map::Entry::Vacant(slot) = found.per_gateway.entry(gateway) {
            let n: i64 = sqlx::query(sqlx::AssertSqlSafe(in_all.as_str()))
                .bind(gateway.as_str())
                .bind(i64::from(job.caps.per_gateway))
                .fetch_one(&mut *conn)
                .await?
                .try_get("n")?;
            slot.insert(n);
        }
    }
    Ok(found)
}

/// Balances of `accounts` (sorted), read with the engine's row lock.
async fn balances(
    conn: &mut AnyConnection,
    backend: Backend,
    accounts: &[i64],
) -> Result<HashMap<AccountId, i64>, StoreError> {
    let mut balances = HashMap::with_capacity(accounts.len());
    for chunk in accounts.chunks(LIST_CHUNK) {
        let sql = format!(
            "SELECT id, balance FROM accounts WHERE id IN ({{list}}) ORDER BY id{}",
            backend.row_lock()
        );
        let rows = backend
            .placeholders()
            .with_list(&sql, chunk)
            .fetch_all(&mut *conn)
            .await?;
        for row in rows {
            balances.insert(AccountId(row.try_get("id")?), row.try_get("balance")?);
        }
    }
    Ok(balances)
}

/// The sequence numbers of the queue rows among `keys` that exist, read with `lock`.
async fn queue_rows(
    conn: &mut AnyConnection,
    backend: Backend,
    keys: &[QueueKey],
    lock: &str,
) -> Result<HashMap<QueueKey, i64>, StoreError> {
    let p = backend.placeholders();
    let mut seq_of = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(LIST_CHUNK / 3) {
        let terms: Vec<String> = (0..chunk.len())
            .map(|i| {
                format!(
                    "(recipient = {} AND sender = {} AND message_id = {})",
                    p.one(3 * i + 1),
                    p.one(3 * i + 2),
                    p.one(3 * i + 3)
                )
            })
            .collect();
        let sql = format!(
            "SELECT seq, recipient, sender, message_id FROM queued_messages WHERE {} \
             ORDER BY seq{lock}",
            terms.join(" OR ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (recipient, sender, id) in chunk {
            query = query
                .bind(recipient.as_str())
                .bind(sender.as_str())
                .bind(id.as_bytes().to_vec());
        }
        for row in query.fetch_all(&mut *conn).await? {
            let key = (
                identity_id(&row, "recipient")?,
                identity_id(&row, "sender")?,
                message_id(&row, "message_id")?,
            );
            seq_of.insert(key, row.try_get("seq")?);
        }
    }
    Ok(seq_of)
}

/// Parameters per `IN (…)` list or lookup statement.
pub(in crate::store) const LIST_CHUNK: usize = 900;
