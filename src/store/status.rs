//! The status webhook's side of the store: each gateway ID's status URL and sealed signing
//! secret, and the status outbox.
//!
//! A status event (delivered, read, acknowledged, declined, expired) becomes an outbox row
//! in the transaction that records it, when its sender is a gateway ID with a status URL
//! at that moment; the dispatcher then delivers it like a callback entry (see
//! [`super::outbox::Outbox`]). The row holds the event's JSON as it will be sent, with an
//! event ID drawn once, so every retry carries the same body.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use tocsin_sdk::protocol::{new_event_id, GatewayId, MessageReport, StatusEvent, StatusKind};

use super::commit::Event;
use super::rows::gateway_id;
use super::sql::MultiRow;
use super::{Backend, Outbox, OutboxEntry, Store, StoreError};
use crate::domain::{MessageStatus, UnixMs};

/// A status event waiting for its gateway ID's status URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusEntry {
    pub gateway: GatewayId,
    /// The JSON body, exactly as it is sent.
    pub payload: String,
}

impl OutboxEntry for StatusEntry {
    const OUTBOX: Outbox = Outbox::Statuses;
    const COLUMNS: &'static str = "gateway_id, payload";
    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        Ok(Self {
            gateway: gateway_id(row, "gateway_id")?,
            payload: row.try_get("payload")?,
        })
    }
}

/// Where a gateway ID's status events go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusHook {
    pub url: String,
    /// The signing secret, sealed with the data key.
    pub secret_sealed: Vec<u8>,
}

/// A status event past its deliveries, for operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadStatus {
    pub payload: String,
    pub attempts: i64,
    pub last_error: Option<String>,
}

/// The webhook event an event of the store becomes, if any (`queued` is not one: a send's
/// answer already says it).
fn status_kind(event: &Event) -> Option<StatusKind> {
    let report = MessageReport {
        message_id: event.message_id,
        recipient: event.recipient,
        at: event.at.get(),
    };
    Some(match event.event {
        MessageStatus::Queued => return None,
        MessageStatus::Delivered => StatusKind::Delivered(report),
        MessageStatus::Read => StatusKind::Read(report),
        MessageStatus::Acknowledged => StatusKind::Acknowledged(report),
        MessageStatus::Declined => StatusKind::Declined(report),
        MessageStatus::Expired => StatusKind::Expired(report),
    })
}

/// Puts the webhook events of `events` into the status outbox, for the senders that are
/// gateway IDs with a status URL; returns how many rows that made. Runs inside the
/// transaction that records the events.
pub(in crate::store) async fn queue_status_events(
    conn: &mut AnyConnection,
    backend: Backend,
    events: &[Event],
) -> Result<u64, StoreError> {
    let reports: Vec<(GatewayId, StatusKind, UnixMs)> = events
        .iter()
        .filter_map(|event| {
            let gateway = GatewayId::parse(event.sender.as_str()).ok()?;
            Some((gateway, status_kind(event)?, event.at))
        })
        .collect();
    queue_statuses(conn, backend, &reports).await
}

/// Puts each `(gateway ID, event, when)` into the status outbox if that gateway ID has a
/// status URL; returns how many rows that made. Each event gets its ID here, once.
pub(in crate::store) async fn queue_statuses(
    conn: &mut AnyConnection,
    backend: Backend,
    reports: &[(GatewayId, StatusKind, UnixMs)],
) -> Result<u64, StoreError> {
    // The gateway ID of each row is matched against the gateway table inside the insert,
    // so the events of gateway IDs without a status URL cost no row and no extra read.
    static STATUS: MultiRow = MultiRow::new(
        "INSERT INTO status_outbox (gateway_id, payload, next_attempt_at, created_at) \
         SELECT v.column1, v.column2, v.column3, v.column3 FROM (VALUES {rows}) AS v \
         WHERE EXISTS (SELECT 1 FROM gateway_ids g WHERE g.id = v.column1 \
                       AND g.status_url IS NOT NULL)",
        3,
    );
    let rows: Vec<(String, String, UnixMs)> = reports
        .iter()
        .filter_map(|(gateway, kind, at)| {
            let body = StatusEvent {
                id: new_event_id(),
                gateway_id: *gateway,
                kind: kind.clone(),
            };
            let payload = serde_json::to_string(&body).ok()?;
            Some((gateway.as_str().to_owned(), payload, *at))
        })
        .collect();
    if rows.is_empty() {
        return Ok(0);
    }
    STATUS
        .execute_all(
            conn,
            backend.placeholders(),
            &rows,
            |q, (gateway, payload, at)| q.bind(gateway.as_str()).bind(payload.as_str()).bind(*at),
        )
        .await
}

impl Store {
    /// Where `id`'s status events go, when it has a status URL.
    pub async fn status_hook(&self, id: &GatewayId) -> Result<Option<StatusHook>, StoreError> {
        let row = sqlx::query(
            "SELECT status_url, status_secret_sealed FROM gateway_ids \
             WHERE id = $1 AND status_url IS NOT NULL",
        )
        .bind(id.as_str())
        .fetch_optional(&self.read)
        .await?;
        row.map(|row| {
            Ok(StatusHook {
                url: row.try_get("status_url")?,
                secret_sealed: row
                    .try_get::<Option<Vec<u8>>, _>("status_secret_sealed")?
                    .ok_or_else(|| StoreError::Corrupt("a status URL without its secret".into()))?,
            })
        })
        .transpose()
    }

    /// Sets `id`'s status URL (the caller has checked it), keeping its signing secret, or
    /// replacing it when `new_secret_sealed` is given. [`StoreError::NotFound`] for an
    /// unknown ID; [`StoreError::Conflict`] when the ID has no secret yet and none is given.
    pub async fn set_status_url(
        &self,
        id: &GatewayId,
        url: &str,
        new_secret_sealed: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE gateway_ids SET status_url = $1, \
             status_secret_sealed = COALESCE($2, status_secret_sealed) \
             WHERE id = $3 AND ($2 IS NOT NULL OR status_secret_sealed IS NOT NULL)",
        )
        .bind(url)
        .bind(new_secret_sealed.map(<[u8]>::to_vec))
        .bind(id.as_str())
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        match self.gateway(id).await? {
            None => Err(StoreError::not_found(format!("gateway ID {id}"))),
            Some(_) => Err(StoreError::Conflict(format!(
                "gateway ID {id} has no status signing secret yet"
            ))),
        }
    }

    /// Whether `id` has a status signing secret.
    pub async fn has_status_secret(&self, id: &GatewayId) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT 1 AS found FROM gateway_ids WHERE id = $1 AND status_secret_sealed IS NOT NULL",
        )
        .bind(id.as_str())
        .fetch_optional(&self.read)
        .await?;
        Ok(row.is_some())
    }

    /// Removes `id`'s status URL and signing secret: no new events are queued for it, and
    /// those waiting fail until dead-lettered.
    pub async fn clear_status_url(&self, id: &GatewayId) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE gateway_ids SET status_url = NULL, status_secret_sealed = NULL WHERE id = $1",
        )
        .bind(id.as_str())
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(format!("gateway ID {id}")));
        }
        Ok(())
    }

    /// Status events of `id` waiting for delivery (dead ones aside), oldest first.
    pub async fn pending_statuses(&self, id: &GatewayId) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT payload FROM status_outbox WHERE gateway_id = $1 AND dead = 0 ORDER BY id",
        )
        .bind(id.as_str())
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(|row| Ok(row.try_get("payload")?)).collect()
    }

    /// Dead-lettered status events of `id`, oldest first.
    pub async fn dead_statuses(&self, id: &GatewayId) -> Result<Vec<DeadStatus>, StoreError> {
        let rows = sqlx::query(
            "SELECT payload, attempts, last_error FROM status_outbox \
             WHERE gateway_id = $1 AND dead = 1 ORDER BY id",
        )
        .bind(id.as_str())
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DeadStatus {
                    payload: row.try_get("payload")?,
                    attempts: row.try_get("attempts")?,
                    last_error: row.try_get("last_error")?,
                })
            })
            .collect()
    }
}
