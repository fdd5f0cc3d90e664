//! Per-device delivery: which device still owes an acknowledgement for which message.
//!
//! Every device of an identity receives every message queued for that identity. A device
//! is responsible for the messages queued after it registered; the first device of an
//! identity also takes over everything already waiting (`registered_after_seq = 0`). A
//! message is deleted, box and nonce with it, as soon as every responsible device has
//! acknowledged it; only its status events (metadata) remain. Undelivered messages expire.

use std::collections::{HashMap, HashSet};

use sqlx::Row;
use tocsin_sdk::protocol::{IdentityId, MessageId};

use super::group::Params;
use super::queue::record_event;
use super::{Backend, QueuedMessage, Store, StoreError};

/// A device as the queue knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Device {
    pub identity: IdentityId,
    /// The csp-device-id from the login extension (0 when the client sent none).
    pub device_id: u64,
    /// The device receives messages with a larger `seq` than this.
    pub registered_after_seq: i64,
}

/// What an acknowledgement did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckOutcome {
    /// A queued message matched (false for a repeated or unknown ack: harmless).
    pub matched: bool,
    /// That was the last outstanding device: the message is gone from the store.
    pub deleted: bool,
}

/// Device IDs are u64 on the wire and BIGINT in the database; keep the bit pattern.
fn db_device_id(id: u64) -> i64 {
    i64::from_ne_bytes(id.to_ne_bytes())
}

impl Store {
    /// Registers a device on login (idempotent) and returns it.
    pub async fn register_device(
        &self,
        identity: &IdentityId,
        device_id: u64,
        now: i64,
    ) -> Result<Device, StoreError> {
        let mut tx = super::begin_write(&self.write, self.backend).await?;
        let existing = sqlx::query(
            "UPDATE devices SET last_seen_at = $1 WHERE identity_id = $2 AND device_id = $3 \
             RETURNING registered_after_seq",
        )
        .bind(now)
        .bind(identity.as_str())
        .bind(db_device_id(device_id))
        .fetch_optional(&mut *tx)
        .await?;
        let registered_after_seq = match existing {
            Some(row) => row.try_get("registered_after_seq")?,
            None => {
                // The first device inherits the waiting queue; later ones start from now.
                let after: i64 = sqlx::query(
                    "SELECT CASE WHEN EXISTS (SELECT 1 FROM devices WHERE identity_id = $1) \
                     THEN (SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) FROM queued_messages) \
                     ELSE 0 END AS after_seq",
                )
                .bind(identity.as_str())
                .fetch_one(&mut *tx)
                .await?
                .try_get("after_seq")?;
                sqlx::query(
                    "INSERT INTO devices (identity_id, device_id, created_at, last_seen_at, \
                     registered_after_seq) VALUES ($1, $2, $3, $3, $4)",
                )
                .bind(identity.as_str())
                .bind(db_device_id(device_id))
                .bind(now)
                .bind(after)
                .execute(&mut *tx)
                .await?;
                after
            }
        };
        tx.commit().await?;
        Ok(Device {
            identity: *identity,
            device_id,
            registered_after_seq,
        })
    }

    /// The next `limit` messages this device has not acknowledged, after `after_seq`, in
    /// queue order.
    pub async fn pending_for_device(
        &self,
        device: &Device,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<QueuedMessage>, StoreError> {
        let rows = sqlx::query(
            "SELECT q.seq, q.message_id, q.sender, q.recipient, q.flags, q.nonce, q.body, \
             q.created_at, q.expires_at FROM queued_messages q \
             WHERE q.recipient = $1 AND q.seq > $2 AND q.seq > $3 AND NOT EXISTS \
             (SELECT 1 FROM message_acks a WHERE a.seq = q.seq AND a.device_id = $4) \
             ORDER BY q.seq LIMIT $5",
        )
        .bind(device.identity.as_str())
        .bind(device.registered_after_seq)
        .bind(after_seq)
        .bind(db_device_id(device.device_id))
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(super::queue::queued_from_row).collect()
    }

    /// Records that `device` has the message (sender, message ID); deletes the message
    /// once every responsible device has it. Acks are committed in groups, like
    /// submissions, so a busy device does not cost one fsync per message.
    pub async fn ack_message(
        &self,
        device: &Device,
        sender: &IdentityId,
        message_id: &MessageId,
        now: i64,
    ) -> Result<AckOutcome, StoreError> {
        self.through_writer(|reply| {
            super::writer::WriteJob::Ack(AckJob {
                device: *device,
                sender: *sender,
                message_id: *message_id,
                now,
                reply,
            })
        })
        .await
    }

    /// Deletes every message whose TTL has passed, recording its `queued` and `expired`
    /// events; returns how many expired.
    pub async fn expire_messages(&self, now: i64) -> Result<u64, StoreError> {
        let mut tx = super::begin_write(&self.write, self.backend).await?;
        // The queue row was the `queued` status; it becomes an event before it goes.
        sqlx::query(
            "INSERT INTO message_events (sender, message_id, recipient, event, at) \
             SELECT sender, message_id, recipient, 'queued', created_at FROM queued_messages \
             WHERE expires_at <= $1 ORDER BY seq",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO message_events (sender, message_id, recipient, event, at) \
             SELECT sender, message_id, recipient, 'expired', $1 FROM queued_messages \
             WHERE expires_at <= $1",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM message_acks WHERE seq IN \
             (SELECT seq FROM queued_messages WHERE expires_at <= $1)",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let expired = sqlx::query("DELETE FROM queued_messages WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(expired)
    }

    /// Records a status event for each of `message_ids` sent by `sender` to `recipient`
    /// (a receipt the server could read), ignoring IDs this sender never sent there.
    pub async fn record_receipt(
        &self,
        sender: &IdentityId,
        recipient: &IdentityId,
        message_ids: &[MessageId],
        event: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        let mut tx = super::begin_write(&self.write, self.backend).await?;
        for id in message_ids {
            let known = sqlx::query(
                "SELECT 1 AS known FROM queued_messages WHERE sender = $1 AND message_id = $2 \
                 AND recipient = $3 UNION ALL SELECT 1 AS known FROM message_events \
                 WHERE sender = $1 AND message_id = $2 AND recipient = $3 AND event = 'queued'",
            )
            .bind(sender.as_str())
            .bind(id.as_bytes().to_vec())
            .bind(recipient.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            if known.is_some() {
                record_event(&mut tx, sender, id, recipient, event, at).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// The status events of one message, oldest first: `(event, unix ms)`.
    pub async fn message_events(
        &self,
        sender: &IdentityId,
        message_id: &MessageId,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(self
            .message_status(sender, message_id)
            .await?
            .into_iter()
            .map(|(_, event, at)| (event, at))
            .collect())
    }

    /// The status events of one message with their recipient, oldest first.
    pub async fn message_status(
        &self,
        sender: &IdentityId,
        message_id: &MessageId,
    ) -> Result<Vec<(IdentityId, String, i64)>, StoreError> {
        // A message still queued has no `queued` event yet: its queue row stands for it.
        let rows = sqlx::query(
            "SELECT recipient, event, at FROM ( \
               SELECT recipient, event, at, id FROM message_events \
               WHERE sender = $1 AND message_id = $2 \
               UNION ALL \
               SELECT recipient, 'queued' AS event, created_at AS at, 0 AS id FROM queued_messages \
               WHERE sender = $1 AND message_id = $2 \
             ) s ORDER BY at, CASE WHEN event = 'queued' THEN 0 ELSE 1 END, id",
        )
        .bind(sender.as_str())
        .bind(message_id.as_bytes().to_vec())
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                let recipient = super::rows::identity_id(r, "recipient")?;
                Ok((recipient, r.try_get("event")?, r.try_get("at")?))
            })
            .collect()
    }
}

/// One acknowledgement waiting for the writer ([`super::writer`]).
pub(super) struct AckJob {
    device: Device,
    sender: IdentityId,
    message_id: MessageId,
    now: i64,
    reply: tokio::sync::oneshot::Sender<Result<AckOutcome, StoreError>>,
}

impl AckJob {
    /// The order acks are applied in: queue rows are locked in this order on every node.
    pub(super) fn order_key(&self) -> (IdentityId, IdentityId, MessageId) {
        (self.device.identity, self.sender, self.message_id)
    }

    pub(super) fn answer(self, outcome: Result<AckOutcome, StoreError>) {
        // A device that went away meanwhile only misses the answer; the ack is committed.
        let _ = self.reply.send(outcome);
    }
}

/// Applies a group of acks (sorted by [`AckJob::order_key`]) inside the caller's
/// transaction: multi-row statements first, inside a savepoint; if that fails (on
/// PostgreSQL, say, a deadlock with another node), each ack in its own savepoint.
pub(super) async fn apply_acks(
    tx: &mut sqlx::AnyConnection,
    params: Params,
    backend: Backend,
    stats: &super::writer::Stats,
    group: &[AckJob],
) -> Result<Vec<Result<AckOutcome, StoreError>>, StoreError> {
    // Two devices acking at once must not both miss the other's ack.
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    let mut fast = sqlx::Connection::begin(&mut *tx).await?;
    match apply_ack_group(&mut fast, params, lock, group).await {
        Ok(Some(outcomes)) => {
            fast.commit().await?;
            return Ok(outcomes.into_iter().map(Ok).collect());
        }
        Ok(None) => fast.rollback().await?,
        Err(e) => {
            tracing::warn!("ack group fast path failed, replaying one by one: {e}");
            fast.rollback().await?;
        }
    }
    stats.replayed();
    let mut outcomes = Vec::with_capacity(group.len());
    for job in group {
        let apply = async |conn: &mut sqlx::AnyConnection| {
            apply_ack(
                conn,
                lock,
                &job.device,
                &job.sender,
                &job.message_id,
                job.now,
            )
            .await
        };
        outcomes.push(super::writer::in_savepoint(tx, apply).await?);
    }
    Ok(outcomes)
}

/// The whole ack group in a fixed handful of statements, deciding in memory exactly as
/// [`apply_ack`] would one by one. `None` when a write did not do what was decided
/// (another node got in between): the caller replays one by one.
async fn apply_ack_group(
    conn: &mut sqlx::AnyConnection,
    params: Params,
    lock: &str,
    group: &[AckJob],
) -> Result<Option<Vec<AckOutcome>>, StoreError> {
    type Key = (IdentityId, IdentityId, MessageId);
    // 1. The queue rows the acks name.
    let mut keys: Vec<Key> = group.iter().map(AckJob::order_key).collect();
    keys.dedup();
    let mut seq_of: HashMap<Key, i64> = HashMap::new();
    for chunk in keys.chunks(ACK_LOOKUP_CHUNK) {
        let terms: Vec<String> = (0..chunk.len())
            .map(|i| {
                format!(
                    "(recipient = {} AND sender = {} AND message_id = {})",
                    params.one(3 * i + 1),
                    params.one(3 * i + 2),
                    params.one(3 * i + 3)
                )
            })
            .collect();
        let sql = format!(
            "SELECT seq, recipient, sender, message_id FROM queued_messages WHERE {}{lock}",
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
                super::rows::identity_id(&row, "recipient")?,
                super::rows::identity_id(&row, "sender")?,
                super::rows::message_id(&row, "message_id")?,
            );
            seq_of.insert(key, row.try_get("seq")?);
        }
    }
    let mut seqs: Vec<i64> = seq_of.values().copied().collect();
    seqs.sort_unstable();
    // 2. The acks those rows already have.
    let mut acked: HashSet<(i64, i64)> = HashSet::new();
    let mut has_acks: HashSet<i64> = HashSet::new();
    for chunk in seqs.chunks(SEQ_CHUNK) {
        let sql = "SELECT seq, device_id FROM message_acks WHERE seq IN ({seqs})";
        for row in with_seqs(sql, params, chunk).fetch_all(&mut *conn).await? {
            let seq: i64 = row.try_get("seq")?;
            acked.insert((seq, row.try_get("device_id")?));
            has_acks.insert(seq);
        }
    }
    // 3. Decide in order.
    let mut outcomes = Vec::with_capacity(group.len());
    let mut new_acks: Vec<(i64, i64, i64)> = Vec::new();
    let mut delivered: Vec<&AckJob> = Vec::new();
    let mut last_ack_of: HashMap<i64, usize> = HashMap::new();
    for (i, job) in group.iter().enumerate() {
        let Some(&seq) = seq_of.get(&job.order_key()) else {
            outcomes.push(AckOutcome {
                matched: false,
                deleted: false,
            });
            continue;
        };
        let device = db_device_id(job.device.device_id);
        if acked.insert((seq, device)) {
            new_acks.push((seq, device, job.now));
            if has_acks.insert(seq) {
                delivered.push(job);
            }
        }
        last_ack_of.insert(seq, i);
        outcomes.push(AckOutcome {
            matched: true,
            deleted: false,
        });
    }
    if seqs.is_empty() {
        return Ok(Some(outcomes));
    }
    // 4. Writes, each checked against the decision.
    for chunk in new_acks.chunks(SEQ_CHUNK / 3) {
        let sql = format!(
            "INSERT INTO message_acks (seq, device_id, acked_at) VALUES {} \
             ON CONFLICT (seq, device_id) DO NOTHING",
            params.tuples(1, chunk.len(), 3)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (seq, device, at) in chunk {
            query = query.bind(*seq).bind(*device).bind(*at);
        }
        if query.execute(&mut *conn).await?.rows_affected() != chunk.len() as u64 {
            return Ok(None);
        }
    }
    let delivered: Vec<EventRow> = delivered
        .iter()
        .map(|job| EventRow {
            sender: job.sender,
            message_id: job.message_id,
            recipient: job.device.identity,
            event: "delivered",
            at: job.now,
        })
        .collect();
    insert_events(conn, params, &delivered).await?;
    // 5. Delete what every responsible device now has, then its acks.
    let mut gone: Vec<GoneRow> = Vec::new();
    for chunk in seqs.chunks(SEQ_CHUNK) {
        let sql = "DELETE FROM queued_messages WHERE seq IN ({seqs}) AND NOT EXISTS \
             (SELECT 1 FROM devices d WHERE d.identity_id = queued_messages.recipient \
              AND d.registered_after_seq < queued_messages.seq AND NOT EXISTS \
              (SELECT 1 FROM message_acks a WHERE a.seq = queued_messages.seq \
               AND a.device_id = d.device_id)) \
             RETURNING seq, sender, message_id, recipient, created_at";
        for row in with_seqs(sql, params, chunk).fetch_all(&mut *conn).await? {
            gone.push(GoneRow::read(&row)?);
        }
    }
    // Their queue rows were the `queued` status; it becomes an event as they go.
    gone.sort_by_key(|g| g.seq);
    let queued: Vec<EventRow> = gone.iter().map(GoneRow::queued_event).collect();
    insert_events(conn, params, &queued).await?;
    let deleted: Vec<i64> = gone.iter().map(|g| g.seq).collect();
    for chunk in deleted.chunks(SEQ_CHUNK) {
        let sql = "DELETE FROM message_acks WHERE seq IN ({seqs})";
        with_seqs(sql, params, chunk).execute(&mut *conn).await?;
    }
    // The last ack of a message in the group is the one that completed it.
    for seq in deleted {
        if let Some(&i) = last_ack_of.get(&seq) {
            outcomes[i].deleted = true;
        }
    }
    Ok(Some(outcomes))
}

/// `sql` with its `{seqs}` placeholder turned into one parameter per sequence number of
/// `chunk`, all bound.
fn with_seqs<'q>(
    sql: &str,
    params: Params,
    chunk: &[i64],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    let sql = sql.replace("{seqs}", &params.list(1, chunk.len()));
    chunk
        .iter()
        .fold(sqlx::query(sqlx::AssertSqlSafe(sql)), |query, seq| {
            query.bind(*seq)
        })
}

/// A queue row deleted by the last ack: what its `queued` event needs.
struct GoneRow {
    seq: i64,
    sender: IdentityId,
    message_id: MessageId,
    recipient: IdentityId,
    created_at: i64,
}

impl GoneRow {
    fn read(row: &sqlx::any::AnyRow) -> Result<Self, StoreError> {
        Ok(Self {
            seq: row.try_get("seq")?,
            sender: super::rows::identity_id(row, "sender")?,
            message_id: super::rows::message_id(row, "message_id")?,
            recipient: super::rows::identity_id(row, "recipient")?,
            created_at: row.try_get("created_at")?,
        })
    }

    fn queued_event(&self) -> EventRow {
        EventRow {
            sender: self.sender,
            message_id: self.message_id,
            recipient: self.recipient,
            event: "queued",
            at: self.created_at,
        }
    }
}

/// A status event about to be written.
struct EventRow {
    sender: IdentityId,
    message_id: MessageId,
    recipient: IdentityId,
    event: &'static str,
    at: i64,
}

/// Writes `rows` with multi-row inserts, in order.
async fn insert_events(
    conn: &mut sqlx::AnyConnection,
    params: Params,
    rows: &[EventRow],
) -> Result<(), StoreError> {
    for chunk in rows.chunks(SEQ_CHUNK / 5) {
        let sql = format!(
            "INSERT INTO message_events (sender, message_id, recipient, event, at) VALUES {}",
            params.tuples(1, chunk.len(), 5)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for row in chunk {
            query = query
                .bind(row.sender.as_str())
                .bind(row.message_id.as_bytes().to_vec())
                .bind(row.recipient.as_str())
                .bind(row.event)
                .bind(row.at);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Acks looked up per statement (three parameters each).
const ACK_LOOKUP_CHUNK: usize = 300;
/// Parameters per `IN (…)` list or multi-row insert.
const SEQ_CHUNK: usize = 900;

async fn apply_ack(
    conn: &mut sqlx::AnyConnection,
    lock: &str,
    device: &Device,
    sender: &IdentityId,
    message_id: &MessageId,
    now: i64,
) -> Result<AckOutcome, StoreError> {
    let found = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT seq FROM queued_messages WHERE recipient = $1 AND sender = $2 \
             AND message_id = $3{lock}"
    )))
    .bind(device.identity.as_str())
    .bind(sender.as_str())
    .bind(message_id.as_bytes().to_vec())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = found else {
        return Ok(AckOutcome {
            matched: false,
            deleted: false,
        });
    };
    let seq: i64 = row.try_get("seq")?;
    let first = sqlx::query(
        "INSERT INTO message_acks (seq, device_id, acked_at) VALUES ($1, $2, $3) \
             ON CONFLICT (seq, device_id) DO NOTHING",
    )
    .bind(seq)
    .bind(db_device_id(device.device_id))
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    let acks: i64 = sqlx::query("SELECT COUNT(*) AS n FROM message_acks WHERE seq = $1")
        .bind(seq)
        .fetch_one(&mut *conn)
        .await?
        .try_get("n")?;
    if first && acks == 1 {
        record_event(
            &mut *conn,
            sender,
            message_id,
            &device.identity,
            "delivered",
            now,
        )
        .await?;
    }
    let gone = sqlx::query(
        "DELETE FROM queued_messages WHERE seq = $1 AND NOT EXISTS \
             (SELECT 1 FROM devices d WHERE d.identity_id = $2 AND d.registered_after_seq < $1 \
              AND NOT EXISTS (SELECT 1 FROM message_acks a WHERE a.seq = $1 \
                              AND a.device_id = d.device_id)) \
         RETURNING seq, sender, message_id, recipient, created_at",
    )
    .bind(seq)
    .bind(device.identity.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let deleted = gone.is_some();
    if let Some(row) = gone {
        let event = GoneRow::read(&row)?.queued_event();
        record_event(
            conn,
            &event.sender,
            &event.message_id,
            &event.recipient,
            event.event,
            event.at,
        )
        .await?;
        sqlx::query("DELETE FROM message_acks WHERE seq = $1")
            .bind(seq)
            .execute(&mut *conn)
            .await?;
    }
    Ok(AckOutcome {
        matched: true,
        deleted,
    })
}
