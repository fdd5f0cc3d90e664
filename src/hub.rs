//! The registry of connected device sessions: wake-ups for them, and for the callback
//! dispatcher.
//!
//! Chat sessions (`ws::session`) join it; whatever queues a message (`submit`, a device
//! sending to another device) wakes the recipient's sessions through it; startup makes it
//! the store's queue listener.
//!
//! The queue lives in the store; the hub tells a session "look again" when something was
//! committed for its identity, so delivery to a connected device takes no polling.
//! Each session registers one [`Notify`] and is woken by [`Hub::wake`]. A registration
//! is removed when its [`Presence`] is dropped. On a multi-node PostgreSQL deployment every
//! wake-up is also relayed to the other nodes (the `cluster` module), whose hubs wake their
//! own sessions and dispatchers with it.
//!
//! The hub also listens to the store's writer ([`QueueListener`]): every message committed
//! for a connected identity is put in each of its sessions' inboxes, in queue order, so a
//! session that has caught up with the store can deliver it without reading the store again
//! (see `ws::session`). An inbox holds at most `chat.inbox_messages` messages; beyond
//! that it is marked overflowed and the session goes back to the store.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use tocsin_sdk::protocol::csp::Payload;
use tocsin_sdk::protocol::IdentityId;
use tokio::sync::Notify;

use crate::store::{Outbox, QueueListener, QueuedMessage};

type Sessions = HashMap<IdentityId, Vec<(u64, Arc<Slot>)>>;

/// What the hub holds for one session.
#[derive(Debug, Default)]
pub struct Slot {
    pub notify: Notify,
    inbox: Mutex<Inbox>,
    /// The csp-device-id the session logged in with.
    device_id: u64,
    /// Why the session must end, once it must: a newer login of the same device took its
    /// place, or its identity was revoked.
    ended: OnceLock<&'static str>,
    /// Transport-level frames for the device (an alarm's rings and stops), sent as they
    /// come; at most [`MAX_SIGNALS`] wait, the newest are dropped past that.
    signals: Mutex<Vec<Payload>>,
}

/// Signals waiting for one session at most.
const MAX_SIGNALS: usize = 64;

/// A wake-up for the other nodes (the `cluster` module carries it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relayed {
    /// Messages were committed for this identity.
    Identity(IdentityId),
    /// Entries were committed to this outbox.
    Outbox(Outbox),
    /// A frame for every session of this identity (see [`Hub::signal`]).
    Signal(IdentityId, Payload),
}

/// Where the hub sends wake-ups for the other nodes: cheap, never blocks, never fails
/// (a wake-up is a hint; the store stays the truth).
#[derive(Debug, Clone)]
pub struct Relay {
    tx: tokio::sync::mpsc::UnboundedSender<Relayed>,
}

impl Relay {
    pub fn new(tx: tokio::sync::mpsc::UnboundedSender<Relayed>) -> Self {
        Self { tx }
    }

    fn identity(&self, identity: IdentityId) {
        let _ = self.tx.send(Relayed::Identity(identity));
    }

    fn outbox(&self, outbox: Outbox) {
        let _ = self.tx.send(Relayed::Outbox(outbox));
    }

    fn signal(&self, identity: IdentityId, payload: Payload) {
        let _ = self.tx.send(Relayed::Signal(identity, payload));
    }
}

/// Why a session whose device logged in again ends.
pub const REPLACED: &str = "replaced by a newer login of this device";
/// Why the sessions of a revoked identity end.
pub const REVOKED: &str = "this identity has been revoked";

/// Messages committed for a session since it last looked.
#[derive(Debug, Default)]
pub struct Inbox {
    pub messages: VecDeque<QueuedMessage>,
    /// Messages were dropped for want of room: only the store has them all.
    pub overflowed: bool,
}

impl Slot {
    fn inbox(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn put(&self, message: &QueuedMessage, capacity: usize) {
        let mut inbox = self.inbox();
        if inbox.messages.len() < capacity {
            inbox.messages.push_back(message.clone());
        } else {
            inbox.overflowed = true;
        }
    }

    /// The signals that came since the last look, oldest first.
    pub fn take_signals(&self) -> Vec<Payload> {
        std::mem::take(&mut *self.signals.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Why the session must end, once it must ([`REPLACED`], [`REVOKED`]).
    pub fn ended(&self) -> Option<&'static str> {
        self.ended.get().copied()
    }

    /// Tells the session to end for `why` (the first reason given stands).
    fn end(&self, why: &'static str) {
        if self.ended.set(why).is_ok() {
            self.notify.notify_one();
        }
    }

    /// Takes what the inbox holds, leaving it empty and not overflowed.
    pub fn take(&self) -> Inbox {
        std::mem::take(&mut *self.inbox())
    }
}

#[derive(Debug)]
pub struct Hub {
    sessions: Mutex<Sessions>,
    /// Most messages waiting in one session's inbox.
    inbox_capacity: usize,
    /// Set when callback entries were committed; the callback dispatcher waits on it.
    callbacks: Notify,
    /// Set when status events were committed; the status dispatcher waits on it.
    statuses: Notify,
    /// Carries wake-ups to the other nodes, where there are any.
    relay: OnceLock<Relay>,
}

/// A live session's registration; dropping it unregisters the session.
#[derive(Debug)]
pub struct Presence {
    hub: Arc<Hub>,
    identity: IdentityId,
    token: u64,
    pub slot: Arc<Slot>,
}

impl Hub {
    /// A hub whose sessions' inboxes hold at most `inbox_capacity` messages.
    pub fn new(inbox_capacity: usize) -> Self {
        Self {
            sessions: Mutex::default(),
            inbox_capacity,
            callbacks: Notify::new(),
            statuses: Notify::new(),
            relay: OnceLock::new(),
        }
    }

    /// Relays every later wake-up to the other nodes too.
    pub fn set_relay(&self, relay: Relay) {
        let _ = self.relay.set(relay);
    }

    fn lock(&self) -> MutexGuard<'_, Sessions> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a session of `identity` logged in as `device_id`; `token` must be unique
    /// per session. An older session of the same device is told it was replaced (it ends
    /// and leaves); `None` when the identity already holds `max_sessions` other sessions.
    pub fn join(
        self: &Arc<Self>,
        identity: IdentityId,
        device_id: u64,
        token: u64,
        max_sessions: usize,
    ) -> Option<Presence> {
        let slot = Arc::new(Slot {
            device_id,
            ..Slot::default()
        });
        let mut sessions = self.lock();
        let list = sessions.entry(identity).or_default();
        let mut others = 0;
        for (_, older) in list.iter() {
            if older.device_id == device_id {
                older.end(REPLACED);
            } else if older.ended().is_none() {
                others += 1;
            }
        }
        if others >= max_sessions {
            return None;
        }
        list.push((token, slot.clone()));
        Some(Presence {
            hub: self.clone(),
            identity,
            token,
            slot,
        })
    }

    /// Something was committed for `identity`: wakes its sessions here and on the other
    /// nodes.
    pub fn wake(&self, identity: &IdentityId) {
        self.wake_here(identity);
        if let Some(relay) = self.relay.get() {
            relay.identity(*identity);
        }
    }

    /// Wakes every session of `identity` on this node (a no-op when none is connected).
    pub fn wake_here(&self, identity: &IdentityId) {
        if let Some(sessions) = self.lock().get(identity) {
            for (_, slot) in sessions {
                slot.notify.notify_one();
            }
        }
    }

    /// Wakes every session on this node and the dispatchers: each looks at the store
    /// again (after wake-ups from other nodes may have been missed).
    pub fn wake_everything_here(&self) {
        for (_, slot) in self.lock().values().flatten() {
            slot.notify.notify_one();
        }
        self.callbacks.notify_one();
        self.statuses.notify_one();
    }

    /// Entries were committed to `outbox`: its dispatchers on every node should look now
    /// rather than at their next round. Wake-ups coalesce; none is lost if a dispatcher
    /// is busy.
    pub fn outbox_filled(&self, outbox: Outbox) {
        self.outbox_filled_here(outbox);
        if let Some(relay) = self.relay.get() {
            relay.outbox(outbox);
        }
    }

    /// Sends `payload` to every session of `identity`, on this node and the others: a
    /// hint like any wake-up (a session that is not connected now misses it), for frames
    /// that are repeated or can be missed (an alarm's rings and stops).
    pub fn signal(&self, identity: &IdentityId, payload: &Payload) {
        self.signal_here(identity, payload);
        if let Some(relay) = self.relay.get() {
            relay.signal(*identity, payload.clone());
        }
    }

    /// [`Hub::signal`] to this node's sessions only.
    pub fn signal_here(&self, identity: &IdentityId, payload: &Payload) {
        if let Some(sessions) = self.lock().get(identity) {
            for (_, slot) in sessions {
                let mut signals = slot.signals.lock().unwrap_or_else(PoisonError::into_inner);
                if signals.len() < MAX_SIGNALS {
                    signals.push(payload.clone());
                }
                drop(signals);
                slot.notify.notify_one();
            }
        }
    }

    /// Wakes this node's dispatcher of `outbox`.
    pub fn outbox_filled_here(&self, outbox: Outbox) {
        self.notify_of(outbox).notify_one();
    }

    /// Resolves at the next [`Hub::outbox_filled`] of `outbox` (at once if one came
    /// meanwhile).
    pub async fn outbox_waiting(&self, outbox: Outbox) {
        self.notify_of(outbox).notified().await;
    }

    fn notify_of(&self, outbox: Outbox) -> &Notify {
        match outbox {
            Outbox::Callbacks => &self.callbacks,
            Outbox::Statuses => &self.statuses,
        }
    }

    /// Whether `identity` has at least one connected session.
    pub fn is_online(&self, identity: &IdentityId) -> bool {
        self.lock().get(identity).is_some_and(|s| !s.is_empty())
    }

    /// The identities with at least one session.
    pub fn identities(&self) -> Vec<IdentityId> {
        self.lock().keys().copied().collect()
    }

    /// The devices with a session that has not been told to end, as (identity, device
    /// ID).
    pub fn devices(&self) -> Vec<(IdentityId, u64)> {
        let sessions = self.lock();
        let mut devices: Vec<(IdentityId, u64)> = sessions
            .iter()
            .flat_map(|(identity, list)| {
                list.iter()
                    .filter(|(_, slot)| slot.ended().is_none())
                    .map(|(_, slot)| (*identity, slot.device_id))
            })
            .collect();
        devices.sort_unstable();
        devices.dedup();
        devices
    }

    /// Ends every session of `identity` for `why`.
    pub fn end_sessions(&self, identity: &IdentityId, why: &'static str) {
        for (_, slot) in self.lock().get(identity).into_iter().flatten() {
            slot.end(why);
        }
    }

    /// Number of connected sessions.
    pub fn sessions(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }
}

impl QueueListener for Hub {
    fn listening(&self, recipient: &IdentityId) -> bool {
        self.is_online(recipient)
    }

    fn missed(&self, recipients: &[IdentityId]) {
        let sessions = self.lock();
        for recipient in recipients {
            for (_, slot) in sessions.get(recipient).into_iter().flatten() {
                slot.inbox().overflowed = true;
                slot.notify.notify_one();
            }
        }
    }

    fn committed(&self, recipients: &[IdentityId], outboxes: &[Outbox]) {
        for recipient in recipients {
            self.wake(recipient);
        }
        for outbox in outboxes {
            self.outbox_filled(*outbox);
        }
    }

    fn queued(&self, messages: &[QueuedMessage]) {
        let sessions = self.lock();
        for message in messages {
            if let Some(list) = sessions.get(&message.message.recipient) {
                for (_, slot) in list {
                    slot.put(message, self.inbox_capacity);
                    slot.notify.notify_one();
                }
            }
        }
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

    const CAPACITY: usize = 16;

    #[tokio::test]
    async fn wake_reaches_every_session_of_the_identity_and_leaving_unregisters() {
        let hub = Arc::new(Hub::new(CAPACITY));
        let alice = IdentityId::parse("ALICE123").unwrap();
        let a = hub.join(alice, 1, 1, 8).unwrap();
        let b = hub.join(alice, 2, 2, 8).unwrap();
        assert!(hub.is_online(&alice));
        hub.wake(&alice);
        // notify_one stores a permit, so a session that was busy still sees the wake-up.
        a.slot.notify.notified().await;
        b.slot.notify.notified().await;
        drop(a);
        assert_eq!(hub.sessions(), 1);
        drop(b);
        assert!(!hub.is_online(&alice));
        hub.wake(&alice);
    }

    fn message(recipient: IdentityId, seq: i64) -> QueuedMessage {
        QueuedMessage {
            seq,
            message: crate::store::NewMessage {
                message_id: tocsin_sdk::protocol::MessageId::random(),
                sender: IdentityId::parse("*GATEWAY").unwrap(),
                recipient,
                flags: 0,
                nonce: tocsin_sdk::protocol::Nonce::random(),
                body: vec![1, 2, 3],
                expires_at: crate::domain::UnixMs::new(1),
            },
            created_at: crate::domain::UnixMs::new(0),
        }
    }

    #[tokio::test]
    async fn queued_messages_reach_the_inboxes_of_their_recipient_in_order() {
        let hub = Arc::new(Hub::new(CAPACITY));
        let (alice, bob) = (
            IdentityId::parse("ALICE123").unwrap(),
            IdentityId::parse("BOB45678").unwrap(),
        );
        let (a1, a2, b) = (
            hub.join(alice, 1, 1, 8).unwrap(),
            hub.join(alice, 2, 2, 8).unwrap(),
            hub.join(bob, 1, 3, 8).unwrap(),
        );
        hub.queued(&[message(alice, 7), message(bob, 8), message(alice, 9)]);
        for session in [&a1, &a2] {
            session.slot.notify.notified().await;
            let inbox = session.slot.take();
            let seqs: Vec<i64> = inbox.messages.iter().map(|m| m.seq).collect();
            assert_eq!((seqs, inbox.overflowed), (vec![7, 9], false));
            assert!(session.slot.take().messages.is_empty(), "taking empties it");
        }
        assert_eq!(b.slot.take().messages.len(), 1);
    }

    #[tokio::test]
    async fn the_hub_listens_for_connected_identities_and_sends_them_back_to_the_store() {
        let hub = Arc::new(Hub::new(CAPACITY));
        let alice = IdentityId::parse("ALICE123").unwrap();
        assert!(
            !hub.listening(&alice),
            "nobody connected: the writer reads nothing back"
        );
        let a = hub.join(alice, 1, 1, 8).unwrap();
        assert!(hub.listening(&alice));
        hub.queued(&[message(alice, 1)]);
        hub.missed(&[alice]);
        a.slot.notify.notified().await;
        let inbox = a.slot.take();
        assert!(
            inbox.overflowed,
            "a missed announcement sends the session to the store"
        );
        drop(a);
        assert!(!hub.listening(&alice));
    }

    #[test]
    fn a_full_inbox_keeps_what_it_has_and_says_it_overflowed() {
        let hub = Arc::new(Hub::new(CAPACITY));
        let alice = IdentityId::parse("ALICE123").unwrap();
        let a = hub.join(alice, 1, 1, 8).unwrap();
        let many: Vec<QueuedMessage> = (0..CAPACITY as i64 + 5)
            .map(|seq| message(alice, seq))
            .collect();
        hub.queued(&many);
        let inbox = a.slot.take();
        assert_eq!(inbox.messages.len(), CAPACITY);
        assert_eq!(
            inbox.messages.back().map(|m| m.seq),
            Some(CAPACITY as i64 - 1)
        );
        assert!(inbox.overflowed);
        assert!(!a.slot.take().overflowed, "taking clears the mark");
    }

    #[tokio::test]
    async fn a_newer_login_of_a_device_replaces_its_session_and_other_devices_are_capped() {
        let hub = Arc::new(Hub::new(CAPACITY));
        let alice = IdentityId::parse("ALICE123").unwrap();
        let phone = hub.join(alice, 7, 1, 2).unwrap();
        let laptop = hub.join(alice, 8, 2, 2).unwrap();
        assert!(
            hub.join(alice, 9, 3, 2).is_none(),
            "a third device is over the cap of two"
        );
        assert_eq!(hub.sessions(), 2);
        assert_eq!(hub.devices(), [(alice, 7), (alice, 8)]);
        let phone_again = hub
            .join(alice, 7, 4, 2)
            .expect("the same device may log in again");
        phone.slot.notify.notified().await;
        assert_eq!(
            (
                phone.slot.ended(),
                laptop.slot.ended(),
                phone_again.slot.ended()
            ),
            (Some(REPLACED), None, None)
        );
        drop(phone);
        assert_eq!(hub.sessions(), 2);
        hub.end_sessions(&alice, REVOKED);
        laptop.slot.notify.notified().await;
        assert_eq!(laptop.slot.ended(), Some(REVOKED));
        assert_eq!(phone_again.slot.ended(), Some(REVOKED));
        assert!(
            hub.devices().is_empty(),
            "revoked sessions are on their way out"
        );
        drop((laptop, phone_again));
        assert!(!hub.is_online(&alice));
        assert!(hub.join(alice, 9, 5, 2).is_some());
    }
}
