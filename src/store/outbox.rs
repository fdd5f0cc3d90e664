//! The callback outbox: messages devices sent to gateway IDs (replies, delivery
//! receipts), waiting to be POSTed to the gateway ID's callback URL.
//!
//! An entry is committed before the device gets its server ack, so nothing a device was
//! told is stored can be lost. Delivery to the URL (retries, dead letters) is the
//! dispatcher's job.

use sqlx::any::AnyRow;
use sqlx::Row;
use tocsin_sdk::protocol::{GatewayId, IdentityId, MessageId, Nonce};

use super::{Store, StoreError};
use crate::domain::UnixMs;

/// A message for a gateway ID's callback.
#[derive(Debug, Clone)]
pub struct CallbackEntry {
    pub gateway: GatewayId,
    pub sender: IdentityId,
    pub message_id: MessageId,
    /// The sender's timestamp, unix seconds.
    pub sent_at: i64,
    pub nonce: Nonce,
    pub body: Vec<u8>,
    pub nickname: Option<String>,
}

/// How many entries may wait for one gateway ID's callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingCaps {
    /// From one sender.
    pub per_sender: u32,
    /// In all.
    pub per_gateway: u32,
}

/// What became of an entry given to `Store::enqueue_callback`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    Stored,
    /// The same (gateway, sender, message ID) is already there: nothing stored.
    Resent,
    /// The sender's pending entries are at their cap: nothing stored.
    SenderFull,
    /// The gateway ID's pending entries are at their cap: nothing stored.
    GatewayFull,
}

impl Store {
    /// Entries waiting for one gateway ID, oldest first (for the dispatcher and tests).
    pub async fn callbacks_for(
        &self,
        gateway: &GatewayId,
    ) -> Result<Vec<(IdentityId, MessageId)>, StoreError> {
        let rows = sqlx::query(
            "SELECT sender, message_id FROM callback_outbox WHERE gateway_id = $1 ORDER BY id",
        )
        .bind(gateway.as_str())
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                let sender: String = r.try_get("sender")?;
                let id: Vec<u8> = r.try_get("message_id")?;
                let sender =
                    IdentityId::parse(&sender).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let id: [u8; 8] = id
                    .as_slice()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("message ID".into()))?;
                Ok((sender, MessageId::from_bytes(id)))
            })
            .collect()
    }
}

/// The outboxes the dispatcher delivers: the Threema-compatible callbacks (device replies
/// and receipts) and the status webhook's events. Both follow one lease discipline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outbox {
    Callbacks,
    Statuses,
}

impl Outbox {
    fn table(self) -> &'static str {
        match self {
            Self::Callbacks => "callback_outbox",
            Self::Statuses => "status_outbox",
        }
    }
}

/// What one outbox holds per entry, read from the row a claim returns.
pub trait OutboxEntry: Sized + Send + 'static {
    const OUTBOX: Outbox;
    /// The entry's columns, as the claim returns them.
    const COLUMNS: &'static str;
    fn from_row(row: &AnyRow) -> Result<Self, StoreError>;
}

impl OutboxEntry for CallbackEntry {
    const OUTBOX: Outbox = Outbox::Callbacks;
    const COLUMNS: &'static str = "gateway_id, sender, message_id, sent_at, nonce, body, nickname";
    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        use super::rows::{gateway_id, identity_id, message_id, nonce};
        Ok(CallbackEntry {
            gateway: gateway_id(row, "gateway_id")?,
            sender: identity_id(row, "sender")?,
            message_id: message_id(row, "message_id")?,
            sent_at: row.try_get("sent_at")?,
            nonce: nonce(row, "nonce")?,
            body: row.try_get("body")?,
            nickname: row.try_get("nickname")?,
        })
    }
}

/// An outbox entry claimed for one delivery attempt.
#[derive(Debug, Clone)]
pub struct Claimed<T> {
    pub id: i64,
    pub entry: T,
    /// Attempts made before this one.
    pub attempts: i64,
    pub created_at: UnixMs,
    /// The claim holds until then (unix ms); see [`Store::renew_lease`].
    pub lease_until: UnixMs,
}

/// A callback entry claimed for one delivery attempt.
pub type ClaimedCallback = Claimed<CallbackEntry>;

/// A dead-lettered entry, for operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadCallback {
    pub sender: IdentityId,
    pub message_id: MessageId,
    pub attempts: i64,
    pub last_error: Option<String>,
}

impl Store {
    /// Claims up to `limit` due entries of `T`'s outbox for `lease_ms`: they are not due
    /// again before the lease ends, so another worker (or node) does not deliver them
    /// meanwhile.
    pub async fn claim<T: OutboxEntry>(
        &self,
        now: UnixMs,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<Claimed<T>>, StoreError> {
        let table = T::OUTBOX.table();
        let sql = format!(
            "UPDATE {table} SET next_attempt_at = $2 WHERE id IN \
             (SELECT id FROM {table} WHERE dead = 0 AND next_attempt_at <= $1 \
              ORDER BY next_attempt_at, id LIMIT $3) AND dead = 0 AND next_attempt_at <= $1 \
             RETURNING id, {}, attempts, created_at, next_attempt_at",
            T::COLUMNS
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(now.plus_ms(lease_ms))
            .bind(limit)
            .fetch_all(&self.write)
            .await?;
        let mut claimed: Vec<Claimed<T>> = rows
            .iter()
            .map(|row| {
                Ok(Claimed {
                    id: row.try_get("id")?,
                    entry: T::from_row(row)?,
                    attempts: row.try_get("attempts")?,
                    created_at: row.try_get("created_at")?,
                    lease_until: row.try_get("next_attempt_at")?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        claimed.sort_by_key(|c| c.id);
        Ok(claimed)
    }

    /// Claims due callback entries (see [`Store::claim`]).
    pub async fn claim_callbacks(
        &self,
        now: UnixMs,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<ClaimedCallback>, StoreError> {
        self.claim(now, lease_ms, limit).await
    }

    /// Extends a claim that is still held as it was claimed (`held_until` unchanged) to
    /// `until`; `false` when the lease ran out and another worker claimed the entry since,
    /// in which case this one must not deliver it.
    pub async fn renew_lease(
        &self,
        outbox: Outbox,
        id: i64,
        held_until: UnixMs,
        until: UnixMs,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE {} SET next_attempt_at = $3 \
             WHERE id = $1 AND next_attempt_at = $2 AND dead = 0",
            outbox.table()
        );
        let renewed = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(held_until)
            .bind(until)
            .execute(&self.write)
            .await?
            .rows_affected();
        Ok(renewed == 1)
    }

    /// The receiver took the entry: it leaves the outbox.
    pub async fn outbox_delivered(&self, outbox: Outbox, id: i64) -> Result<(), StoreError> {
        let sql = format!("DELETE FROM {} WHERE id = $1", outbox.table());
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// The attempt failed: retry at `next_attempt_at`, or dead-letter the entry.
    pub async fn outbox_failed(
        &self,
        outbox: Outbox,
        id: i64,
        error: &str,
        next_attempt_at: Option<UnixMs>,
    ) -> Result<(), StoreError> {
        let (dead, next) = match next_attempt_at {
            Some(at) => (0i64, at),
            None => (1, UnixMs::MAX),
        };
        let sql = format!(
            "UPDATE {} SET attempts = attempts + 1, last_error = $2, \
             next_attempt_at = $3, dead = $4 WHERE id = $1",
            outbox.table()
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(error)
            .bind(next)
            .bind(dead)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Dead-lettered entries of a gateway ID, oldest first.
    pub async fn dead_callbacks(
        &self,
        gateway: &GatewayId,
    ) -> Result<Vec<DeadCallback>, StoreError> {
        use super::rows::{identity_id, message_id};
        let rows = sqlx::query(
            "SELECT sender, message_id, attempts, last_error FROM callback_outbox \
             WHERE gateway_id = $1 AND dead = 1 ORDER BY id",
        )
        .bind(gateway.as_str())
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DeadCallback {
                    sender: identity_id(r, "sender")?,
                    message_id: message_id(r, "message_id")?,
                    attempts: r.try_get("attempts")?,
                    last_error: r.try_get("last_error")?,
                })
            })
            .collect()
    }
}
