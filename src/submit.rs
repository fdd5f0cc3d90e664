//! The one "send a message" use case. Every way in (send_simple, send_e2e, bulk) ends here,
//! so charging, idempotency and queueing behave the same for all of them.

use tocsin_sdk::protocol::{IdentityId, MessageId, Nonce};

use crate::auth::Authenticated;
use crate::domain::now_ms;
use crate::state::AppState;
use crate::store::{Charge, Inbox, NewMessage, StoreError, Submission, SubmitOutcome};

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
    /// Credits to charge, and the ledger reason.
    pub price: u32,
    pub reason: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("not enough credits")]
    NoCredits,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Idempotency keys are stored as digests: the nonce of a delivered message must not
/// outlive its box anywhere in the store, and customers' keys stay opaque.
fn key_digest(key: std::fmt::Arguments<'_>) -> String {
    use sha2::{Digest, Sha256};
    /// Hashes what is formatted into it, without building the string first.
    struct Hashing(Sha256);
    impl std::fmt::Write for Hashing {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0.update(s.as_bytes());
            Ok(())
        }
    }
    let mut hashing = Hashing(Sha256::new());
    // Neither the hasher nor the key's parts fail to format.
    let _ = std::fmt::Write::write_fmt(&mut hashing, key);
    let mut hex = [0u8; 64];
    // 32 bytes always fit 64 hex digits, which are ASCII.
    let _ = hex::encode_to_slice(hashing.0.finalize(), &mut hex);
    String::from_utf8_lossy(&hex).into_owned()
}

thread_local! {
    /// This worker thread's inbox for the store's answers.
    static INBOX: std::cell::RefCell<Option<Inbox>> = const { std::cell::RefCell::new(None) };
}

/// The inbox of the calling worker thread (see [`Inbox`]), opened on first use, and again
/// when the runtime that ran its task has ended (a test starts one per test, say). Called
/// from request handlers, which run on actix's workers, where local tasks can be spawned.
fn thread_inbox() -> Inbox {
    INBOX.with(|slot| {
        let mut slot = slot.borrow_mut();
        match &*slot {
            Some(inbox) if inbox.is_open() => inbox.clone(),
            _ => {
                let inbox = Inbox::open(|task| {
                    actix_web::rt::spawn(task);
                });
                *slot = Some(inbox.clone());
                inbox
            }
        }
    })
}

/// Charges and queues `msg`; a retry (same `Idempotency-Key`, or same recipient and nonce)
/// answers the first message ID without charging or queueing again.
#[tracing::instrument(skip_all, fields(gateway_id = %who.gateway().id, to = %msg.to))]
pub async fn submit(
    state: &AppState,
    who: &Authenticated,
    msg: Outgoing,
    idempotency_key: Option<&str>,
) -> Result<MessageId, SubmitError> {
    let gateway = who.gateway();
    let now = now_ms();
    let ttl_ms =
        i64::try_from(state.settings.messages.ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let (msg_reason, msg_price) = (msg.reason, msg.price);
    let mut keys = vec![key_digest(format_args!("nonce:{}:{}", msg.to, msg.nonce))];
    if let Some(key) = idempotency_key {
        keys.push(key_digest(format_args!("header:{key}")));
    }
    let submission = Submission {
        gateway: gateway.id,
        charge: Charge {
            account: gateway.account,
            amount: i64::from(msg.price),
            reason: msg.reason.to_owned(),
        },
        idempotency_keys: keys,
        message: NewMessage {
            message_id: msg.message_id,
            sender: *gateway.id.as_identity(),
            recipient: msg.to,
            flags: msg.flags,
            nonce: msg.nonce,
            body: msg.sealed,
            expires_at: now.saturating_add(ttl_ms),
        },
    };
    let recipient = submission.message.recipient;
    match state
        .store
        .submit_owned(submission, now, Some(thread_inbox()))
        .await?
    {
        SubmitOutcome::Accepted(id) => {
            state.hub.wake(&recipient);
            let metrics = &state.metrics;
            metrics
                .messages_accepted
                .with_label_values(&[gateway.mode.as_str()])
                .inc();
            metrics
                .credits_debited
                .with_label_values(&[msg_reason])
                .inc_by(u64::from(msg_price));
            Ok(id)
        }
        SubmitOutcome::Duplicate(id) => Ok(id),
        SubmitOutcome::InsufficientCredits => Err(SubmitError::NoCredits),
    }
}

#[cfg(test)]
mod tests {
    use super::key_digest;

    /// The digests are stored as idempotency keys, so a retry after an upgrade must still
    /// find them: the hex of SHA-256 over the formatted key, in lower case.
    #[test]
    fn a_key_digest_is_the_lower_hex_sha256_of_the_formatted_key() {
        let (to, nonce) = ("ALICE123", "000102");
        assert_eq!(
            key_digest(format_args!("nonce:{to}:{nonce}")),
            "4a36fe3dca4c9a939cd636a7ed9f09d938ee692e5a8ec39f973402d568712bf3"
        );
    }
}
