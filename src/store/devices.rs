//! Devices and what each still owes an acknowledgement for.
//!
//! Every device of an identity receives every message queued for that identity. A device
//! is responsible for the messages queued after it registered; the first device of an
//! identity also takes over everything already waiting (`registered_after_seq = 0`). A
//! message is deleted, box and nonce with it, as soon as every responsible device has
//! acknowledged it (see `commit`); only its status events (metadata) remain.

use sqlx::Row;
use tocsin_sdk::protocol::IdentityId;

use super::engine::begin_write;
use super::queue::{queued_from_row, QueuedMessage};
use super::{Store, StoreError};
use crate::domain::UnixMs;

/// A device as the queue knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Device {
    pub identity: IdentityId,
    /// The csp-device-id from the login extension (0 when the client sent none).
    pub device_id: u64,
    /// The device receives messages with a larger `seq` than this.
    pub registered_after_seq: i64,
}

impl Device {
    /// Device IDs are u64 on the wire and BIGINT in the database; the bit pattern is kept.
    pub(super) fn db_device_id(&self) -> i64 {
        db_device_id(self.device_id)
    }
}

fn db_device_id(id: u64) -> i64 {
    i64::from_ne_bytes(id.to_ne_bytes())
}

/// What an acknowledgement did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckOutcome {
    /// A queued message matched (false for a repeated or unknown ack: harmless).
    pub matched: bool,
    /// That was the last outstanding device: the message is gone from the store.
    pub deleted: bool,
}

impl Store {
    /// Registers a device on login (idempotent) and returns it; `None` when it is new and
    /// the identity already has `max_devices` devices.
    pub async fn register_device(
        &self,
        identity: &IdentityId,
        device_id: u64,
        max_devices: u32,
        now: UnixMs,
    ) -> Result<Option<Device>, StoreError> {
        let mut tx = begin_write(&self.write, self.backend).await?;
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
                let devices: i64 =
                    sqlx::query("SELECT COUNT(*) AS n FROM devices WHERE identity_id = $1")
                        .bind(identity.as_str())
                        .fetch_one(&mut *tx)
                        .await?
                        .try_get("n")?;
                if devices >= i64::from(max_devices) {
                    tx.rollback().await?;
                    return Ok(None);
                }
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
        Ok(Some(Device {
            identity: *identity,
            device_id,
            registered_after_seq,
        }))
    }

    /// The next `limit` messages this device has not acknowledged, after `after_seq`, in
    /// queue order; none that has expired by `now` (the sweep deletes those later, with
    /// their `expired` event).
    pub async fn pending_for_device(
        &self,
        device: &Device,
        after_seq: i64,
        limit: i64,
        now: UnixMs,
    ) -> Result<Vec<QueuedMessage>, StoreError> {
        let rows = sqlx::query(
            "SELECT q.seq, q.message_id, q.sender, q.recipient, q.flags, q.nonce, q.body, \
             q.created_at, q.expires_at FROM queued_messages q \
             WHERE q.recipient = $1 AND q.seq > $2 AND q.seq > $3 AND q.expires_at > $6 \
             AND NOT EXISTS \
             (SELECT 1 FROM message_acks a WHERE a.seq = q.seq AND a.device_id = $4) \
             ORDER BY q.seq LIMIT $5",
        )
        .bind(device.identity.as_str())
        .bind(device.registered_after_seq)
        .bind(after_seq)
        .bind(device.db_device_id())
        .bind(limit)
        .bind(now)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(queued_from_row).collect()
    }
}
