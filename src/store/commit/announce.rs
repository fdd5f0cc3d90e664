//! Committed messages handed to the sessions waiting for them, without a read per session.

use std::sync::{Arc, OnceLock};

use tocsin_sdk::protocol::IdentityId;

use crate::store::queue::{queued_between, QueuedMessage};
use crate::store::Outbox;

/// Told about every message the writer queued for a recipient it listens for, right
/// after the commit that holds it is durable, in queue order, where the engine's delivery
/// mode is `Announced` (every queued message is committed by this process, so a listener
/// misses none; the hub uses this to hand new messages to connected sessions); and, on
/// every engine, of whom each commit concerns ([`QueueListener::committed`]).
pub trait QueueListener: Send + Sync + std::fmt::Debug {
    /// Whether messages for `recipient` are wanted (asked after the commit, so a listener
    /// that starts listening later reads the store and finds them there).
    fn listening(&self, recipient: &IdentityId) -> bool;
    /// Messages committed for recipients it listens for (and maybe others), in queue order.
    fn queued(&self, messages: &[QueuedMessage]);
    /// Messages for these recipients were committed but could not be read back: whoever
    /// waits for them must read the store.
    fn missed(&self, recipients: &[IdentityId]);
    /// A commit queued messages for `recipients` (or found them queued already) and stored
    /// entries in `outboxes`: whoever waits for them, on this node or another, should
    /// look. Called after every durable commit on every engine, whatever became of the
    /// requests that asked for it, and by the store's other writes that fill an outbox.
    fn committed(&self, recipients: &[IdentityId], outboxes: &[Outbox]);
}

/// Where the writer finds its listener, once one is set.
pub(in crate::store) type ListenerSlot = Arc<OnceLock<Arc<dyn QueueListener>>>;

/// Hands the listener what a commit queued for recipients it listens for. The single
/// writer inserts every queue row, so the rows in `(before, last]` are exactly that
/// commit's (an ack never deletes a message it has just queued). If they cannot be read,
/// the listener is told to send its waiters to the store.
pub(super) async fn announce(
    pool: &sqlx::AnyPool,
    listener: &dyn QueueListener,
    (before, last): (i64, i64),
    recipients: &[IdentityId],
) {
    if !recipients.iter().any(|r| listener.listening(r)) {
        return;
    }
    let read = async {
        let mut conn = pool.acquire().await?;
        queued_between(&mut conn, before, last).await
    };
    match read.await {
        Ok(messages) => listener.queued(&messages),
        Err(e) => {
            tracing::warn!("cannot read back the messages just queued: {e}");
            listener.missed(recipients);
        }
    }
}
