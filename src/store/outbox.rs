//! The callback outbox: messages devices sent to gateway IDs (replies, delivery
//! receipts), waiting to be POSTed to the gateway ID's callback URL.
//!
//! An entry is committed before the device gets its server ack, so nothing a device was
//! told is stored can be lost. Delivery to the URL (retries, dead letters) is the
//! dispatcher's job.

use sqlx::Row;
use tocsin_sdk::protocol::{GatewayId, IdentityId, MessageId, Nonce};

use super::{Store, StoreError};

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

impl Store {
    /// Stores an entry, due now; `false` when the same (gateway, sender, message ID) is
    /// already there (a resend).
    pub async fn enqueue_callback(
        &self,
        entry: &CallbackEntry,
        now: i64,
    ) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO callback_outbox (gateway_id, sender, message_id, sent_at, nonce, body, \
             nickname, attempts, next_attempt_at, last_error, dead, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, NULL, 0, $8) \
             ON CONFLICT (gateway_id, sender, message_id) DO NOTHING",
        )
        .bind(entry.gateway.as_str())
        .bind(entry.sender.as_str())
        .bind(entry.message_id.as_bytes().to_vec())
        .bind(entry.sent_at)
        .bind(entry.nonce.as_bytes().to_vec())
        .bind(entry.body.clone())
        .bind(entry.nickname.clone())
        .bind(now)
        .execute(&self.write)
        .await?
        .rows_affected();
        Ok(inserted == 1)
    }

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
