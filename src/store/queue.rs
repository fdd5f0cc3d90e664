//! The message queue: what a submission carries, and the queue as sessions read it.
//!
//! Writes to the queue go through the writer (`commit`); this module holds the types and
//! the reads.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use tocsin_sdk::protocol::{GatewayId, IdentityId, MessageId, Nonce};

use super::accounts::Charge;
use super::rows::{identity_id, message_id, nonce};
use super::sql::Query;
use super::{Store, StoreError};
use crate::domain::UnixMs;

/// A message to put on a recipient's queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub message_id: MessageId,
    pub sender: IdentityId,
    pub recipient: IdentityId,
    /// Header flags of the chat protocol (push, no-queue, no-ack, …).
    pub flags: u8,
    pub nonce: Nonce,
    /// The NaCl box, as it will be delivered.
    pub body: Vec<u8>,
    pub expires_at: UnixMs,
}

/// A queued message's identity: (recipient, sender, message ID). The queue holds each once.
pub type QueueKey = (IdentityId, IdentityId, MessageId);

impl NewMessage {
    pub fn key(&self) -> QueueKey {
        (self.recipient, self.sender, self.message_id)
    }
}

/// Everything one paid send commits at once.
#[derive(Debug, Clone)]
pub struct Submission {
    pub gateway: GatewayId,
    pub charge: Charge,
    /// Keys under which a retry of this request is recognised (e.g. the `Idempotency-Key`
    /// header, and the recipient + nonce pair).
    pub idempotency_keys: Vec<String>,
    pub message: NewMessage,
}

/// What became of a submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// Committed: charged, recorded and queued.
    Accepted(MessageId),
    /// A retry of an earlier request: nothing charged or queued, this is the first answer.
    Duplicate(MessageId),
    /// The balance cannot cover the charge: nothing charged or queued.
    InsufficientCredits,
}

/// A message waiting on a recipient's queue: the message as submitted, where it stands in
/// the queue, and when it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    pub seq: i64,
    pub message: NewMessage,
    pub created_at: UnixMs,
}

pub(super) fn queued_from_row(row: &AnyRow) -> Result<QueuedMessage, StoreError> {
    let flags: i64 = row.try_get("flags")?;
    let message = NewMessage {
        message_id: message_id(row, "message_id")?,
        sender: identity_id(row, "sender")?,
        recipient: identity_id(row, "recipient")?,
        flags: u8::try_from(flags).map_err(|_| StoreError::Corrupt(format!("flags {flags}")))?,
        nonce: nonce(row, "nonce")?,
        body: row.try_get("body")?,
        expires_at: row.try_get("expires_at")?,
    };
    Ok(QueuedMessage {
        seq: row.try_get("seq")?,
        message,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    /// The oldest `limit` messages queued for `recipient`, in arrival order.
    pub async fn queued_for(
        &self,
        recipient: &IdentityId,
        limit: i64,
    ) -> Result<Vec<QueuedMessage>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, message_id, sender, recipient, flags, nonce, body, created_at, expires_at \
             FROM queued_messages WHERE recipient = $1 ORDER BY seq LIMIT $2",
        )
        .bind(recipient.as_str())
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(queued_from_row).collect()
    }

    /// Number of messages waiting in every queue.
    pub async fn queue_depth(&self) -> Result<i64, StoreError> {
        let depth: i64 = sqlx::query("SELECT COUNT(*) AS depth FROM queued_messages")
            .fetch_one(&self.read)
            .await?
            .try_get("depth")?;
        Ok(depth)
    }
}

/// Binds the values of one `queued_messages` row, in the column order `message_id, sender,
/// recipient, flags, nonce, body, created_at, expires_at`.
pub(super) fn bind_message<'q>(query: Query<'q>, msg: &'q NewMessage, now: UnixMs) -> Query<'q> {
    query
        .bind(msg.message_id.as_bytes().to_vec())
        .bind(msg.sender.as_str())
        .bind(msg.recipient.as_str())
        .bind(i64::from(msg.flags))
        .bind(msg.nonce.as_bytes().to_vec())
        .bind(msg.body.as_slice())
        .bind(now)
        .bind(msg.expires_at)
}

/// The highest queue sequence number so far (0 for an empty queue).
pub(super) async fn last_seq(conn: &mut AnyConnection) -> Result<i64, StoreError> {
    let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS last FROM queued_messages")
        .fetch_one(&mut *conn)
        .await?;
    Ok(row.try_get("last")?)
}

/// The messages queued after `after` up to `last`, in queue order.
pub(super) async fn queued_between(
    conn: &mut AnyConnection,
    after: i64,
    last: i64,
) -> Result<Vec<QueuedMessage>, StoreError> {
    let rows = sqlx::query(
        "SELECT seq, message_id, sender, recipient, flags, nonce, body, created_at, expires_at \
         FROM queued_messages WHERE seq > $1 AND seq <= $2 ORDER BY seq",
    )
    .bind(after)
    .bind(last)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(queued_from_row).collect()
}
