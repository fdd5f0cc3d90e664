//! Devices and what each still owes an acknowledgement for.
//!
//! Every device of an identity receives every message queued for that identity. A device
//! is responsible for the messages queued after it registered; the first device of an
//! identity also takes over everything already waiting (`registered_after_seq = 0`). A
//! message is deleted, box and nonce with it, as soon as every responsible device has
//! acknowledged it (see `commit`); only its status events (metadata) remain.
//!
//! A device that is not seen for long (`devices.stale_after_secs`: no login, and no
//! session that housekeeping finds connected) is dropped, so it no longer holds its
//! identity's messages: what the identity's other devices have then leaves the queue by
//! the same rule. The only device of an identity is dropped too, but its messages stay:
//! the identity's next device (the same one logging in again, say) is its first and takes
//! over everything waiting. A dropped device that comes back registers as a new device.
//! A message no device left will ever get, and none has had, leaves `expired`.

use std::collections::HashSet;

use sqlx::{AssertSqlSafe, Row};
use tocsin_sdk::protocol::IdentityId;

use super::commit::{insert_events, retire_delivered, Event, LIST_CHUNK};
use super::engine::begin_write;
use super::queue::{queued_from_row, QueuedMessage};
use super::rows::identity_id;
use super::{Outbox, Store, StoreError};
use crate::domain::{MessageStatus, UnixMs};

/// Most devices one call of [`Store::drop_stale_devices`] drops, the longest unseen
/// first; the others wait for the next housekeeping pass. It bounds the write
/// transaction, which on SQLite holds up every other write while it runs.
const DROP_BATCH: i64 = 500;

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

fn device_id_of_db(id: i64) -> u64 {
    u64::from_ne_bytes(id.to_ne_bytes())
}

/// A device dropped for not being seen since `last_seen_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DroppedDevice {
    pub identity: IdentityId,
    pub device_id: u64,
    /// Its last login, or the last time housekeeping found it connected.
    pub last_seen_at: UnixMs,
}

/// What one call of [`Store::drop_stale_devices`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dropped {
    pub devices: Vec<DroppedDevice>,
    /// Messages that left the queue because the devices that still owed an ack for them
    /// were dropped.
    pub messages: u64,
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

impl Store {
    /// Marks the devices of `connected` (identity, device ID) seen at `now`, those of them
    /// last seen before `seen_before`: a device that stays connected for longer than
    /// `devices.stale_after_secs` is not stale. Each node marks the sessions it holds;
    /// with `seen_before` well behind `now`, a connected device costs one write now and
    /// then, not one per call. Returns how many were marked.
    pub async fn touch_devices(
        &self,
        connected: &[(IdentityId, u64)],
        seen_before: UnixMs,
        now: UnixMs,
    ) -> Result<u64, StoreError> {
        let p = self.backend.placeholders();
        let mut due: Vec<(IdentityId, i64)> = Vec::new();
        for chunk in connected.chunks(LIST_CHUNK / 2) {
            let terms: Vec<String> = (0..chunk.len())
                .map(|i| {
                    format!(
                        "(identity_id = {} AND device_id = {})",
                        p.one(2 * i + 2),
                        p.one(2 * i + 3)
                    )
                })
                .collect();
            let sql = format!(
                "SELECT identity_id, device_id FROM devices WHERE last_seen_at < {} AND ({})",
                p.one(1),
                terms.join(" OR ")
            );
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(seen_before);
            for (identity, device) in chunk {
                query = query.bind(identity.as_str()).bind(db_device_id(*device));
            }
            for row in query.fetch_all(&self.read).await? {
                due.push((identity_id(&row, "identity_id")?, row.try_get("device_id")?));
            }
        }
        if due.is_empty() {
            return Ok(0);
        }
        let mut tx = begin_write(&self.write, self.backend).await?;
        let mut touched = 0;
        for (identity, device) in &due {
            touched += sqlx::query(
                "UPDATE devices SET last_seen_at = $1 \
                 WHERE identity_id = $2 AND device_id = $3 AND last_seen_at < $1",
            )
            .bind(now)
            .bind(identity.as_str())
            .bind(*device)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(touched)
    }

    /// Drops the devices last seen before `seen_before` (at most `DROP_BATCH`, the
    /// longest unseen first) in one write transaction: their rows and their acks go, and
    /// then every message of their identities that no responsible device still owes an ack
    /// leaves the queue by the rule acks follow (`commit::retire_delivered`). A message
    /// that no device ever had leaves `expired` at `now`, as one past its TTL would: no
    /// device will get it. An identity left with no device keeps its messages for its
    /// next device. Returns the devices dropped and how many messages left.
    pub async fn drop_stale_devices(
        &self,
        seen_before: UnixMs,
        now: UnixMs,
    ) -> Result<Dropped, StoreError> {
        // Runs every housekeeping pass: the write lock is taken only when one is stale.
        let due = sqlx::query("SELECT 1 AS due FROM devices WHERE last_seen_at < $1 LIMIT 1")
            .bind(seen_before)
            .fetch_optional(&self.read)
            .await?;
        if due.is_none() {
            return Ok(Dropped::default());
        }
        let backend = self.backend;
        let (p, lock) = (backend.placeholders(), backend.row_lock());
        let mut tx = begin_write(&self.write, backend).await?;
        // Locked: a login of one of them meanwhile waits, then registers a new device.
        let sql = format!(
            "SELECT identity_id, device_id, last_seen_at FROM devices WHERE last_seen_at < $1 \
             ORDER BY last_seen_at, identity_id, device_id LIMIT $2{lock}"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(seen_before)
            .bind(DROP_BATCH)
            .fetch_all(&mut *tx)
            .await?;
        let devices = rows
            .iter()
            .map(|row| {
                Ok(DroppedDevice {
                    identity: identity_id(row, "identity_id")?,
                    device_id: device_id_of_db(row.try_get("device_id")?),
                    last_seen_at: row.try_get("last_seen_at")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let mut identities: Vec<&str> = devices.iter().map(|d| d.identity.as_str()).collect();
        identities.sort_unstable();
        identities.dedup();
        if identities.is_empty() {
            tx.rollback().await?;
            return Ok(Dropped::default());
        }
        // Their identities' queue rows, locked in queue order as acks lock them: an ack
        // committing meanwhile is waited for, and seen by the deletion below.
        let sql = format!(
            "SELECT seq FROM queued_messages WHERE recipient IN ({}) ORDER BY seq{lock}",
            p.list(1, identities.len())
        );
        let seqs = identities
            .iter()
            .fold(sqlx::query(AssertSqlSafe(sql)), |q, id| q.bind(*id))
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| row.try_get("seq"))
            .collect::<Result<Vec<i64>, _>>()?;
        // The rows some device has acked, the dropped ones included: those were delivered.
        let mut delivered: HashSet<i64> = HashSet::new();
        for chunk in seqs.chunks(LIST_CHUNK) {
            let sql = "SELECT DISTINCT seq FROM message_acks WHERE seq IN ({list})";
            for row in p.with_list(sql, chunk).fetch_all(&mut *tx).await? {
                delivered.insert(row.try_get("seq")?);
            }
        }
        for device in &devices {
            let id = db_device_id(device.device_id);
            sqlx::query(
                "DELETE FROM message_acks WHERE device_id = $1 AND seq IN \
                 (SELECT seq FROM queued_messages WHERE recipient = $2)",
            )
            .bind(id)
            .bind(device.identity.as_str())
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM devices WHERE identity_id = $1 AND device_id = $2")
                .bind(device.identity.as_str())
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let gone = retire_delivered(&mut tx, backend, &seqs).await?;
        let expired: Vec<Event> = gone
            .iter()
            .filter(|(seq, _)| !delivered.contains(seq))
            .map(|(_, queued)| Event {
                event: MessageStatus::Expired,
                at: now,
                ..*queued
            })
            .collect();
        let statuses = insert_events(&mut tx, backend, &expired).await?;
        tx.commit().await?;
        self.filled(Outbox::Statuses, statuses);
        Ok(Dropped {
            devices,
            messages: gone.len() as u64,
        })
    }
}
