//! What a logged-in session and its delivery code share: the sealed channel to the device
//! ([`Link`]), why a session ends ([`End`]), and the [`ack`] that marks a message delivered.

use std::time::Duration;

use actix_ws::Session as WsSession;
use tocsin_sdk::protocol::csp::{Payload, Sealer};
use tocsin_sdk::protocol::{IdentityId, MessageId};

use crate::domain::UnixMs;
use crate::state::AppState;
use crate::store::Device;

/// Time a device has to take one frame before it counts as stuck.
pub(super) const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a connection ended; for the log only.
#[derive(Debug)]
pub(super) enum End {
    Closed,
    /// The device's connection broke off (a transport error, not ours): logged at debug.
    Aborted(String),
    Refused(&'static str),
    Stuck,
    Idle,
    Failed(String),
}

/// A limit a device ran into: `/metrics` counts it by its label, and the device is told
/// the reason, with the session closed (it may reconnect) or, for a message it sent, the
/// message refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Limit {
    Sessions,
    Devices,
    NoCallback,
    PendingPerSender,
    PendingPerGateway,
    ReceiptTooLong,
}

impl Limit {
    pub fn reason(self) -> &'static str {
        match self {
            Self::Sessions => "too many sessions of this identity",
            Self::Devices => "too many devices registered for this identity",
            Self::NoCallback => "the gateway ID takes no messages: it has no callback URL",
            Self::PendingPerSender => "too many messages from you wait for this gateway ID",
            Self::PendingPerGateway => "too many messages wait for this gateway ID",
            Self::ReceiptTooLong => "a receipt names too many messages; send several",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Sessions => "sessions",
            Self::Devices => "devices",
            Self::NoCallback => "no_callback",
            Self::PendingPerSender => "pending_per_sender",
            Self::PendingPerGateway => "pending_per_gateway",
            Self::ReceiptTooLong => "receipt_ids",
        }
    }

    pub fn count(self, state: &AppState) {
        state
            .metrics
            .chat_refused
            .with_label_values(&[self.label()])
            .inc();
    }

    /// Counts the refusal and ends the session.
    pub fn end(self, state: &AppState) -> End {
        self.count(state);
        End::Refused(self.reason())
    }
}

/// The established side of a session: what the delivery code needs.
pub(super) struct Link {
    pub ws: WsSession,
    pub sealer: Sealer,
    pub device: Device,
}

impl Link {
    /// Tells the device why the session ends (`close-error`), then ends it.
    pub async fn close_for(&mut self, limit: Limit, state: &AppState) -> End {
        self.say_goodbye(limit.reason(), true).await;
        limit.end(state)
    }

    /// Sends a `close-error` with `reason`; whether it arrives no longer matters.
    pub async fn say_goodbye(&mut self, reason: &str, can_reconnect: bool) {
        let bye = Payload::CloseError {
            can_reconnect,
            reason: reason.into(),
        };
        let _ = self.send(&bye).await;
    }

    /// Seals and sends one payload, giving up on a device that does not drain.
    pub async fn send(&mut self, payload: &Payload) -> Result<(), End> {
        let frame = self
            .sealer
            .seal_frame(payload)
            .map_err(|e| End::Failed(e.to_string()))?;
        match tokio::time::timeout(SEND_TIMEOUT, self.ws.binary(frame)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(End::Closed),
            Err(_) => Err(End::Stuck),
        }
    }
}

/// Commits a device's ack of one message.
pub(super) async fn ack(
    state: &AppState,
    device: &Device,
    sender: &IdentityId,
    id: &MessageId,
) -> Result<(), End> {
    state
        .store
        .ack_message(device, sender, id, UnixMs::now())
        .await
        .map(|_| ())
        .map_err(|e| End::Failed(e.to_string()))
}
