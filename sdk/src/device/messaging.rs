//! Opening what arrives and sealing what leaves, on a [`Connection`].
//!
//! A message is opened with the sender's key from the [`super::Directory`]. If a key
//! fetched from the server fails to open a box, it is fetched once more (the sender may
//! have replaced it); a pinned key is never second-guessed. Sending seals with the
//! recipient's key and a fresh random nonce and message ID, then waits for the
//! server's ack, which means the message is stored (not yet delivered).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use super::{Connection, DeviceError, DeviceKeys, Event, Received, Rejected};
use crate::crypto::{CryptoError, SharedKey};
use crate::protocol::csp::{MessageEnvelope, Payload};
use crate::protocol::{
    Answer, E2eMessage, IdentityId, MessageFlags, MessageId, Nonce, PublicKey, ReceiptStatus,
};

/// Time the server has to acknowledge a sent message or answer an echo.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

impl Connection {
    /// Tells the server `received` is handled, so it deletes it. Does nothing for a
    /// message sent with [`MessageFlags::NO_ACK`].
    ///
    /// # Errors
    ///
    /// As [`Connection::next_event`].
    pub async fn ack(&mut self, received: &Received) -> Result<(), DeviceError> {
        self.send_ack(received.sender, received.message_id, received.flags)
            .await
    }

    /// Like [`Connection::ack`], for a message that could not be opened: drops it.
    ///
    /// # Errors
    ///
    /// As [`Connection::next_event`].
    pub async fn ack_rejected(&mut self, rejected: &Rejected) -> Result<(), DeviceError> {
        self.send_ack(rejected.sender, rejected.message_id, rejected.flags)
            .await
    }

    /// Sends a text (with a push notification) and waits until the server stored it.
    ///
    /// # Errors
    ///
    /// [`DeviceError::Invalid`] for an empty text; otherwise as [`Connection::send`].
    pub async fn send_text(
        &mut self,
        to: &IdentityId,
        text: &str,
    ) -> Result<MessageId, DeviceError> {
        if text.is_empty() {
            return Err(DeviceError::Invalid(
                "a text message cannot be empty".into(),
            ));
        }
        let flags = MessageFlags::default().with(MessageFlags::PUSH);
        self.send(to, &E2eMessage::Text(text.to_owned()), flags)
            .await
    }

    /// Sends a delivery receipt about `message_ids` (no push notification) and waits
    /// until the server stored it.
    ///
    /// # Errors
    ///
    /// [`DeviceError::Invalid`] without message IDs; otherwise as [`Connection::send`].
    pub async fn send_receipt(
        &mut self,
        to: &IdentityId,
        status: ReceiptStatus,
        message_ids: &[MessageId],
    ) -> Result<MessageId, DeviceError> {
        if message_ids.is_empty() {
            return Err(DeviceError::Invalid("a receipt needs a message ID".into()));
        }
        let receipt = E2eMessage::DeliveryReceipt {
            status,
            message_ids: message_ids.to_vec(),
        };
        self.send(to, &receipt, MessageFlags::default()).await
    }

    /// Seals `message` for `to` with the key the directory gives and sends it with
    /// `flags`; waits for the server's ack unless `flags` has
    /// [`MessageFlags::NO_ACK`].
    ///
    /// # Errors
    ///
    /// [`DeviceError::UnknownKey`] when no key is known for `to` (unknown or revoked
    /// ID); directory failures; otherwise as [`Connection::send_with_key`].
    pub async fn send(
        &mut self,
        to: &IdentityId,
        message: &E2eMessage,
        flags: MessageFlags,
    ) -> Result<MessageId, DeviceError> {
        let key = self.directory.public_key(to).await?;
        self.send_with_key(to, &key, message, flags).await
    }

    /// Like [`Connection::send`], sealed for `public_key` instead of the directory's.
    ///
    /// # Errors
    ///
    /// [`DeviceError::Frame`] for a message too large for one frame (nothing is sent,
    /// the connection stays usable); [`DeviceError::Crypto`] for an unusable key;
    /// [`DeviceError::Timeout`] without an ack in 30 s; [`DeviceError::Refused`] when the
    /// server refuses the message (nothing was stored); transport failures.
    pub async fn send_with_key(
        &mut self,
        to: &IdentityId,
        public_key: &PublicKey,
        message: &E2eMessage,
        flags: MessageFlags,
    ) -> Result<MessageId, DeviceError> {
        let nonce = Nonce::random();
        let sealed = self
            .shared_keys
            .get(&self.keys, public_key)?
            .seal(&nonce, &message.to_padded());
        let message_id = MessageId::random();
        let envelope = MessageEnvelope {
            sender: self.keys.identity,
            receiver: *to,
            message_id,
            created_at: unix_now(),
            flags,
            nickname: None,
            nonce,
            sealed,
        };
        self.write(&Payload::OutgoingMessage(envelope)).await?;
        if !flags.has(MessageFlags::NO_ACK) {
            let key = (*to, message_id);
            self.wait_for(
                |c| c.server_acks.contains(&key) || c.server_refusals.contains_key(&key),
                "the server's ack",
            )
            .await?;
            self.server_acks.remove(&key);
            if let Some(reason) = self.server_refusals.remove(&key) {
                return Err(DeviceError::Refused(reason));
            }
        }
        Ok(message_id)
    }

    /// Answers the alarm `alarm` (the ID of the message it arrived in) from `gateway`:
    /// coming or not, an optional ETA in minutes, and a note (empty for none, at most
    /// 200 bytes). The server confirms with an [`Event::AlarmStop`] for the alarm
    /// (reason [`crate::protocol::StopReason::Answered`]) on every device of this
    /// identity; an answer to an alarm that ended or did not reach this identity is
    /// dropped without a word, so wait for the stop with a time limit.
    ///
    /// # Errors
    ///
    /// [`DeviceError::Invalid`] for a note over 200 bytes or an ETA of 65535 minutes
    /// (nothing is sent); otherwise as [`Connection::next_event`].
    pub async fn answer_alarm(
        &mut self,
        gateway: &IdentityId,
        alarm: &MessageId,
        answer: Answer,
        eta_minutes: Option<u16>,
        note: &str,
    ) -> Result<(), DeviceError> {
        let payload = Payload::alarm_answer(*gateway, *alarm, answer, eta_minutes, note)
            .map_err(|e| DeviceError::Invalid(e.to_string()))?;
        self.write(&payload).await
    }

    /// Sends an echo and waits for its answer; returns the round-trip time. The server
    /// handles frames in order, so on return it has handled everything sent before.
    ///
    /// # Errors
    ///
    /// As [`Connection::next_event`]; [`DeviceError::Timeout`] without an answer in
    /// 30 s.
    pub async fn round_trip(&mut self) -> Result<Duration, DeviceError> {
        let started = Instant::now();
        let counter = self.send_echo().await?;
        self.wait_for(|c| c.echo_answered >= counter, "an echo answer")
            .await?;
        Ok(started.elapsed())
    }

    async fn send_ack(
        &mut self,
        sender: IdentityId,
        message_id: MessageId,
        flags: MessageFlags,
    ) -> Result<(), DeviceError> {
        if flags.has(MessageFlags::NO_ACK) {
            return Ok(());
        }
        self.write(&Payload::ClientAck { sender, message_id }).await
    }

    /// Reads until `done` holds, keeping every event for `next_event`.
    async fn wait_for(
        &mut self,
        mut done: impl FnMut(&mut Self) -> bool,
        what: &'static str,
    ) -> Result<(), DeviceError> {
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        while !done(self) {
            let step = tokio::time::timeout_at(deadline, self.step())
                .await
                .map_err(|_| DeviceError::Timeout(what))??;
            if let Some(event) = step {
                let closed = match &event {
                    Event::Closed { reason, .. } => Some(reason.clone()),
                    _ => None,
                };
                self.pending.push_back(event);
                if let Some(reason) = closed {
                    return Err(DeviceError::Closed(reason));
                }
            }
        }
        Ok(())
    }

    /// Opens an incoming message; anything that prevents it becomes a [`Rejected`].
    pub(super) async fn open(&self, envelope: MessageEnvelope) -> Event {
        let (sender, message_id, flags) = (envelope.sender, envelope.message_id, envelope.flags);
        let reject = move |reason: String, retryable: bool| {
            Event::Rejected(Rejected {
                sender,
                message_id,
                flags,
                reason,
                retryable,
            })
        };
        if envelope.receiver != self.keys.identity {
            return reject(format!("addressed to {}", envelope.receiver), false);
        }
        let key = match self.directory.public_key(&sender).await {
            Ok(key) => key,
            Err(e) => {
                let retryable = e.is_retryable();
                return reject(e.to_string(), retryable);
            }
        };
        let mut plain = self.decrypt(&key, &envelope);
        if plain.is_err() && self.directory.forget(&sender) {
            if let Ok(fresh) = self.directory.public_key(&sender).await {
                if fresh != key {
                    plain = self.decrypt(&fresh, &envelope);
                }
            }
        }
        let plain = match plain {
            Ok(plain) => plain,
            Err(e) => return reject(format!("the message does not open: {e}"), false),
        };
        match E2eMessage::from_padded(&plain) {
            Ok(message) => Event::Message(Box::new(Received {
                sender,
                message_id,
                created_at: envelope.created_at,
                flags,
                nickname: envelope.nickname,
                nonce: envelope.nonce,
                message,
                // The connection fills it in from the server's `MESSAGE_EXPIRES`.
                expires_at: None,
            })),
            Err(e) => reject(format!("unreadable content: {e}"), false),
        }
    }

    fn decrypt(&self, key: &PublicKey, envelope: &MessageEnvelope) -> Result<Vec<u8>, CryptoError> {
        self.shared_keys
            .get(&self.keys, key)?
            .open(&envelope.nonce, &envelope.sealed)
    }
}

/// Peers kept in [`SharedKeys`]; past this the cache starts over.
const SHARED_KEY_PEERS: usize = 64;

/// A small cache of shared keys by peer public key.
#[derive(Default)]
pub(super) struct SharedKeys(std::sync::Mutex<std::collections::HashMap<PublicKey, SharedKey>>);

impl SharedKeys {
    fn get(&self, keys: &DeviceKeys, peer: &PublicKey) -> Result<SharedKey, CryptoError> {
        let mut cache = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(shared) = cache.get(peer) {
            return Ok(shared.clone());
        }
        let shared = SharedKey::new(&keys.secret_key, peer)?;
        if cache.len() >= SHARED_KEY_PEERS {
            cache.clear();
        }
        cache.insert(*peer, shared.clone());
        Ok(shared)
    }
}

/// Seconds since the Unix epoch; 0 for a clock before it, `u32::MAX` after 2106.
fn unix_now() -> u32 {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    u32::try_from(seconds).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::KeyPair;

    fn keys() -> DeviceKeys {
        let pair = KeyPair::generate();
        DeviceKeys {
            identity: IdentityId::parse("ALICE123").unwrap(),
            secret_key: pair.secret,
            server_key: KeyPair::generate().public,
            server_url: "http://127.0.0.1:1".into(),
            device_id: crate::protocol::csp::CspDeviceId::new(1),
        }
    }

    #[test]
    fn cached_shared_keys_open_what_fresh_ones_seal_and_stay_bounded() {
        let (me, cache) = (keys(), SharedKeys::default());
        let nonce = Nonce::random();
        for _ in 0..(SHARED_KEY_PEERS + 5) {
            let peer = KeyPair::generate();
            let sealed = SharedKey::new(&peer.secret, &me.secret_key.public_key())
                .unwrap()
                .seal(&nonce, b"alarm");
            for _ in 0..2 {
                let shared = cache.get(&me, &peer.public).unwrap();
                assert_eq!(shared.open(&nonce, &sealed).unwrap(), b"alarm");
            }
            assert!(cache.0.lock().unwrap().len() <= SHARED_KEY_PEERS);
        }
    }
}
