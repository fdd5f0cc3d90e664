//! Wake-ups for connected devices, and for the callback dispatcher.
//!
//! The queue lives in the store; the hub only tells a session "look again" when something
//! was committed for its identity, so delivery to a connected device takes no polling.
//! Each session registers one [`Notify`] and is woken by [`Hub::wake`]. A registration
//! is removed when its [`Presence`] is dropped. On a multi-node PostgreSQL deployment the
//! sessions also re-check the store periodically, since a wake-up cannot cross nodes yet.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tocsin_sdk::protocol::IdentityId;
use tokio::sync::Notify;

type Sessions = HashMap<IdentityId, Vec<(u64, Arc<Notify>)>>;

#[derive(Debug, Default)]
pub struct Hub {
    sessions: Mutex<Sessions>,
    /// Set when a callback entry was committed; the dispatcher waits on it.
    callbacks: Notify,
}

/// A live session's registration; dropping it unregisters the session.
#[derive(Debug)]
pub struct Presence {
    hub: Arc<Hub>,
    identity: IdentityId,
    token: u64,
    pub notify: Arc<Notify>,
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, Sessions> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a session of `identity`; `token` must be unique per session.
    pub fn join(self: &Arc<Self>, identity: IdentityId, token: u64) -> Presence {
        let notify = Arc::new(Notify::new());
        self.lock()
            .entry(identity)
            .or_default()
            .push((token, notify.clone()));
        Presence {
            hub: self.clone(),
            identity,
            token,
            notify,
        }
    }

    /// Wakes every session of `identity` (a no-op when none is connected).
    pub fn wake(&self, identity: &IdentityId) {
        if let Some(sessions) = self.lock().get(identity) {
            for (_, notify) in sessions {
                notify.notify_one();
            }
        }
    }

    /// A callback entry was committed: the dispatcher should look now rather than at its
    /// next round. Wake-ups coalesce; none is lost if the dispatcher is busy.
    pub fn callback_queued(&self) {
        self.callbacks.notify_one();
    }

    /// Resolves at the next [`Hub::callback_queued`] (at once if one came meanwhile).
    pub async fn callbacks_waiting(&self) {
        self.callbacks.notified().await;
    }

    /// Whether `identity` has at least one connected session.
    pub fn is_online(&self, identity: &IdentityId) -> bool {
        self.lock().get(identity).is_some_and(|s| !s.is_empty())
    }

    /// Number of connected sessions.
    pub fn sessions(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }
}

impl Drop for Presence {
    fn drop(&mut self) {
        let mut sessions = self.hub.lock();
        if let Some(list) = sessions.get_mut(&self.identity) {
            list.retain(|(token, _)| *token != self.token);
            if list.is_empty() {
                sessions.remove(&self.identity);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wake_reaches_every_session_of_the_identity_and_leaving_unregisters() {
        let hub = Arc::new(Hub::default());
        let alice = IdentityId::parse("ALICE123").unwrap();
        let a = hub.join(alice, 1);
        let b = hub.join(alice, 2);
        assert!(hub.is_online(&alice));
        hub.wake(&alice);
        // notify_one stores a permit, so a session that was busy still sees the wake-up.
        a.notify.notified().await;
        b.notify.notified().await;
        drop(a);
        assert_eq!(hub.sessions(), 1);
        drop(b);
        assert!(!hub.is_online(&alice));
        hub.wake(&alice);
    }
}
