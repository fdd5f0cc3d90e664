//! The one "send a message" use case. Every way in (send_simple, send_e2e, bulk) ends here,
//! so charging, idempotency and queueing behave the same for all of them.

use tocsin_sdk::protocol::{IdentityId, MessageId, Nonce};

use crate::domain::UnixMs;
use crate::meter::Reservation;
use crate::state::AppState;
use crate::store::{retry_keys, GatewayRecord, NewMessage, StoreError, Submission, SubmitOutcome};

/// A sealed message ready to queue.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The ID the recipient will see, from the node's [`crate::domain::MessageIds`];
    /// shared by every message of a bulk request sent with `sameMessageId`.
    pub message_id: MessageId,
    pub to: IdentityId,
    pub nonce: Nonce,
    pub sealed: Vec<u8>,
    pub flags: u8,
    /// How long it may wait for the recipient's devices, when its sender asked for less
    /// than the server's TTL (checked at the edge against `messages.ttl_secs`).
    pub ttl: Option<std::time::Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("not enough credits")]
    NoCredits,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where a submission is made from: an HTTP worker thread (whose answers come back
/// batched per thread) or any other task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Worker,
    Task,
}

/// Charges and queues `msg`; a retry (same `Idempotency-Key`, or same recipient and nonce)
/// answers the first message ID without charging or queueing again.
#[tracing::instrument(skip_all, fields(gateway_id = %gateway.id, to = %msg.to))]
pub async fn submit(
    state: &AppState,
    gateway: &GatewayRecord,
    paid: Reservation,
    msg: Outgoing,
    idempotency_key: Option<&str>,
    caller: Caller,
) -> Result<MessageId, SubmitError> {
    let now = UnixMs::now();
    let ttl = msg.ttl.unwrap_or_else(|| state.settings.messages.ttl());
    let submission = Submission {
        gateway: gateway.id,
        charge: paid.charge(),
        idempotency_keys: retry_keys(&msg.to, &msg.nonce, idempotency_key),
        message: NewMessage {
            message_id: msg.message_id,
            sender: *gateway.id.as_identity(),
            recipient: msg.to,
            flags: msg.flags,
            nonce: msg.nonce,
            body: msg.sealed,
            expires_at: now.plus(ttl),
        },
    };
    // The writer wakes the recipient's sessions (here and on other nodes) once the commit
    // is durable, whatever becomes of this request.
    let outcome = match caller {
        Caller::Worker => state.store.submit_from_worker(submission, now).await?,
        Caller::Task => state.store.submit_owned(submission, now).await?,
    };
    match outcome {
        SubmitOutcome::Accepted(id) => {
            let metrics = &state.metrics;
            metrics
                .messages_accepted
                .with_label_values(&[gateway.mode.as_str()])
                .inc();
            state.meter.taken(paid);
            Ok(id)
        }
        SubmitOutcome::Duplicate(id) => Ok(id),
        SubmitOutcome::InsufficientCredits => Err(SubmitError::NoCredits),
    }
}
