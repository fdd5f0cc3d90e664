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
    Refused(&'static str),
    Stuck,
    Idle,
    Failed(String),
}

/// The established side of a session: what the delivery code needs.
pub(super) struct Link {
    pub ws: WsSession,
    pub sealer: Sealer,
    pub device: Device,
}

impl Link {
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
