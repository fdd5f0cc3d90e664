//! Status events: what became of a message, kept as metadata after its box is gone.

use sqlx::Row;
use tocsin_sdk::protocol::{IdentityId, MessageId};

use super::commit::{deleted_rows, finish_retiring, insert_events, Event};
use super::engine::begin_write;
use super::rows::{identity_id, message_id};
use super::{Outbox, Store, StoreError};
use crate::domain::{MessageStatus, UnixMs};

/// Messages expired per transaction: a backlog of them expires in several, each short.
const EXPIRE_BATCH: usize = 5_000;

impl Store {
    /// Deletes every message whose TTL has passed, recording its `queued` and `expired`
    /// events; returns how many expired. Each message is claimed by the statement that
    /// deletes it, so nodes expiring at once on one database record its events once.
    pub async fn expire_messages(&self, now: UnixMs) -> Result<u64, StoreError> {
        let mut expired = 0;
        loop {
            // Runs every few seconds: the write lock is taken only when something expired.
            let due =
                sqlx::query("SELECT 1 AS due FROM queued_messages WHERE expires_at <= $1 LIMIT 1")
                    .bind(now)
                    .fetch_optional(&self.read)
                    .await?;
            if due.is_none() {
                return Ok(expired);
            }
            let batch = self.expire_batch(now).await?;
            expired += batch as u64;
            if batch < EXPIRE_BATCH {
                return Ok(expired);
            }
        }
    }

    /// Deletes up to [`EXPIRE_BATCH`] messages past their TTL in one transaction, with
    /// their acks, and records their events; returns how many.
    async fn expire_batch(&self, now: UnixMs) -> Result<usize, StoreError> {
        let backend = self.backend;
        let mut tx = begin_write(&self.write, backend).await?;
        // Another node deleting the same rows meanwhile makes this statement wait for it
        // and then skip them.
        let rows = sqlx::query(
            "DELETE FROM queued_messages WHERE seq IN \
             (SELECT seq FROM queued_messages WHERE expires_at <= $1 ORDER BY seq LIMIT $2) \
             AND expires_at <= $1 RETURNING seq, sender, message_id, recipient, created_at",
        )
        .bind(now)
        .bind(EXPIRE_BATCH as i64)
        .fetch_all(&mut *tx)
        .await?;
        let mut gone = deleted_rows(&rows)?;
        finish_retiring(&mut tx, backend, &mut gone).await?;
        let expired: Vec<Event> = gone
            .iter()
            .map(|(_, queued)| Event {
                event: MessageStatus::Expired,
                at: now,
                ..*queued
            })
            .collect();
        let statuses = insert_events(&mut tx, backend, &expired).await?;
        tx.commit().await?;
        self.filled(Outbox::Statuses, statuses);
        Ok(gone.len())
    }

    /// Deletes the status events recorded before `events_before` (of messages no longer
    /// queued) and the dead-lettered callback entries that arrived before `dead_before`;
    /// returns how many of each went.
    pub async fn purge_history(
        &self,
        events_before: UnixMs,
        dead_before: UnixMs,
    ) -> Result<(u64, u64), StoreError> {
        let mut tx = begin_write(&self.write, self.backend).await?;
        let events = sqlx::query(
            "DELETE FROM message_events WHERE at < $1 AND NOT EXISTS \
             (SELECT 1 FROM queued_messages q WHERE q.sender = message_events.sender \
              AND q.message_id = message_events.message_id \
              AND q.recipient = message_events.recipient)",
        )
        .bind(events_before)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let mut dead = 0;
        for table in ["callback_outbox", "status_outbox"] {
            let sql = format!("DELETE FROM {table} WHERE dead = 1 AND created_at < $1");
            dead += sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(dead_before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok((events, dead))
    }

    /// Records a status event for each of `message_ids` sent by `sender` to `recipient`
    /// (a receipt the server could read), ignoring IDs this sender never sent there.
    pub async fn record_receipt(
        &self,
        sender: &IdentityId,
        recipient: &IdentityId,
        message_ids: &[MessageId],
        event: MessageStatus,
        at: UnixMs,
    ) -> Result<(), StoreError> {
        if message_ids.is_empty() {
            return Ok(());
        }
        // Which of them this sender sent there, read in one query before the write
        // transaction: queued still, or gone with a `queued` event left behind.
        let p = self.backend.placeholders();
        let n = message_ids.len();
        let sql = format!(
            "SELECT message_id FROM queued_messages WHERE sender = {} AND recipient = {} \
             AND message_id IN ({}) UNION SELECT message_id FROM message_events \
             WHERE sender = {} AND recipient = {} AND event = 'queued' AND message_id IN ({})",
            p.one(1),
            p.one(2),
            p.list(3, n),
            p.one(3 + n),
            p.one(4 + n),
            p.list(5 + n, n)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for _ in 0..2 {
            query = query.bind(sender.as_str()).bind(recipient.as_str());
            for id in message_ids {
                query = query.bind(id.as_bytes().to_vec());
            }
        }
        let rows = query.fetch_all(&self.read).await?;
        let mut known: std::collections::HashSet<MessageId> = rows
            .iter()
            .map(|row| message_id(row, "message_id"))
            .collect::<Result<_, _>>()?;
        // A receipt repeated (by a second device, or for a state the transport's ack
        // recorded already) records nothing new: each state of a message is reported once.
        let sql = format!(
            "SELECT message_id FROM message_events WHERE sender = {} AND recipient = {} \
             AND event = {} AND message_id IN ({})",
            p.one(1),
            p.one(2),
            p.one(3),
            p.list(4, n)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(sender.as_str())
            .bind(recipient.as_str())
            .bind(event.as_str());
        for id in message_ids {
            query = query.bind(id.as_bytes().to_vec());
        }
        for row in query.fetch_all(&self.read).await? {
            known.remove(&message_id(&row, "message_id")?);
        }
        // Each once, in the receipt's order.
        let events: Vec<Event> = message_ids
            .iter()
            .filter(|id| known.remove(id))
            .map(|id| Event {
                sender: *sender,
                message_id: *id,
                recipient: *recipient,
                event,
                at,
            })
            .collect();
        if events.is_empty() {
            return Ok(());
        }
        let mut tx = begin_write(&self.write, self.backend).await?;
        let statuses = insert_events(&mut tx, self.backend, &events).await?;
        tx.commit().await?;
        self.filled(Outbox::Statuses, statuses);
        Ok(())
    }

    /// The status events of one message, oldest first: `(event, unix ms)`.
    pub async fn message_events(
        &self,
        sender: &IdentityId,
        message_id: &MessageId,
    ) -> Result<Vec<(MessageStatus, UnixMs)>, StoreError> {
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
    ) -> Result<Vec<(IdentityId, MessageStatus, UnixMs)>, StoreError> {
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
                let recipient = identity_id(r, "recipient")?;
                let event: String = r.try_get("event")?;
                let event = MessageStatus::parse(&event)
                    .ok_or_else(|| StoreError::Corrupt(format!("message status {event:?}")))?;
                Ok((recipient, event, r.try_get("at")?))
            })
            .collect()
    }
}
