//! The customer's side of the callback: check what the gateway POSTs, refuse what is
//! forged, stale or repeated, and open the message inside (cargo feature `receive`).
//!
//! The gateway POSTs a form (`from`, `to`, `messageId`, `date`, `nonce`, `box`, `mac`,
//! optional `nickname`) to the callback URL of an end-to-end gateway ID.
//! [`CallbackReceiver::receive`] takes the raw body and, in this order:
//!
//! 1. refuses a body over [`MAX_BODY_BYTES`] (16 KiB; a real callback is under 9 KiB);
//! 2. parses the form, refusing a missing or repeated field (nothing is interpreted
//!    yet);
//! 3. checks the MAC in constant time, before any field is trusted;
//! 4. checks that `to` is this receiver's gateway ID, and parses `from`, the hex fields
//!    and `date`;
//! 5. refuses a (from, messageId) pair it has taken before ([`ReceiveError::Duplicate`],
//!    which still answers 200, so the gateway stops);
//! 6. refuses a `date` older than the maximum age (300 s by default) or further in the
//!    future than the allowed skew (60 s);
//! 7. remembers the pair (the newest 10,000 by default) and returns the
//!    [`IncomingCallback`].
//!
//! The duplicate check comes before the age check on purpose: a redelivery of a message
//! that was taken long ago (our 200 got lost) is answered 200 and ends the gateway's
//! retries, instead of being refused as stale again and again.
//!
//! Opening the box needs the sender's public key, which is the caller's business (the
//! gateway's `GET /pubkeys/{from}`, or a pinned key); [`IncomingCallback::open`] does
//! the rest. A box that does not open is no reason for the gateway to retry, so answer
//! 200 then, as the official bot SDK does.
//!
//! The status webhook of a gateway ID (basic or end-to-end) is the other channel: one
//! JSON event per request, signed in `X-Tocsin-Signature` with a signing secret of its
//! own. [`StatusReceiver`] checks those in the same manner; [`StatusReceiver::receive`]
//! lists its steps.
//!
//! ```
//! use tocsin_sdk::receive::CallbackReceiver;
//! use tocsin_sdk::protocol::{ApiSecret, GatewayId};
//!
//! let receiver = CallbackReceiver::new(
//!     GatewayId::parse("*TESTTST")?,
//!     ApiSecret::parse("nevergonnagiveyouup")?,
//! );
//! let forged = b"from=ECHOECHO&to=%2ATESTTST&messageId=0102030405060708&date=1616950936\
//!     &nonce=ffffffffffffffffffffffffffffffffffffffffffffffff&box=012345abcdef&mac=00";
//! let refused = receiver.receive(forged, 1_616_950_940).unwrap_err();
//! assert_eq!(refused.status(), 401);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod form;
mod seen;
mod status;

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use error::Untimely;
pub use error::{OpenError, ReceiveError, StatusReceiveError};
pub use status::StatusReceiver;

use crate::crypto::SharedKey;
use crate::protocol::{
    verify_callback_mac, ApiSecret, CallbackFields, E2eMessage, GatewayId, IdentityId, MessageId,
    Nonce, PublicKey, SecretKey,
};
use form::{
    parse_box, parse_date, Form, BOX, DATE, FROM, KNOWN, MAC, MESSAGE_ID, NICKNAME, NONCE, TO,
};
use seen::Seen;

/// Largest request body [`CallbackReceiver::receive`] and [`StatusReceiver::receive`]
/// read: 16 KiB, like the Python SDK's receiver. A real callback (a box of at most 4000
/// bytes, hex-encoded, plus the other fields) stays well below it, a status event (a few
/// hundred bytes of JSON) far below.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// How a [`CallbackReceiver`] or a [`StatusReceiver`] judges times (a callback's
/// `date`, a status signature's `t`) and how much it remembers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverOptions {
    /// Oldest time accepted, relative to `now`; `None` accepts any age.
    pub max_age: Option<Duration>,
    /// Furthest time in the future accepted (clock skew); `None` accepts any.
    pub max_future: Option<Duration>,
    /// How many (from, messageId) pairs, or status event IDs, are remembered to refuse
    /// duplicates.
    pub dedupe_capacity: usize,
}

impl Default for ReceiverOptions {
    /// 300 s of age (as the official bot SDK), 60 s of skew, 10,000 keys.
    fn default() -> Self {
        Self {
            max_age: Some(Duration::from_secs(300)),
            max_future: Some(Duration::from_secs(60)),
            dedupe_capacity: 10_000,
        }
    }
}

/// Checks the callbacks of one gateway ID. Shareable between threads (`&self`
/// everywhere); the duplicate memory sits behind a mutex.
pub struct CallbackReceiver {
    own: GatewayId,
    secret: ApiSecret,
    options: ReceiverOptions,
    seen: Mutex<Seen<(IdentityId, MessageId)>>,
}

impl fmt::Debug for CallbackReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackReceiver")
            .field("own", &self.own)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// An authentic callback, addressed to this receiver, fresh and new.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingCallback {
    /// The sender's ID.
    pub from: IdentityId,
    /// This receiver's gateway ID.
    pub to: GatewayId,
    /// The sender's ID for the message.
    pub message_id: MessageId,
    /// The sender's timestamp, Unix seconds.
    pub date: u64,
    /// The nonce the box was sealed with.
    pub nonce: Nonce,
    /// The box.
    pub sealed: Vec<u8>,
    /// The sender's public nickname, if sent. The MAC does not cover it: treat it as a
    /// display hint only.
    pub nickname: Option<String>,
}

impl IncomingCallback {
    /// Opens the box with the gateway ID's secret key and the sender's public key, and
    /// decodes the message.
    ///
    /// # Errors
    ///
    /// [`OpenError::Crypto`] when it does not open with these keys;
    /// [`OpenError::Message`] when the content is not a message this SDK reads.
    pub fn open(
        &self,
        own_secret_key: &SecretKey,
        sender_public: &PublicKey,
    ) -> Result<E2eMessage, OpenError> {
        let plain =
            SharedKey::new(own_secret_key, sender_public)?.open(&self.nonce, &self.sealed)?;
        Ok(E2eMessage::from_padded(&plain)?)
    }
}

impl CallbackReceiver {
    /// A receiver for `own_gateway_id`, checking MACs with its API `secret`, with the
    /// default [`ReceiverOptions`].
    pub fn new(own_gateway_id: GatewayId, secret: ApiSecret) -> Self {
        Self::with_options(own_gateway_id, secret, ReceiverOptions::default())
    }

    /// Like [`CallbackReceiver::new`], with other options.
    pub fn with_options(
        own_gateway_id: GatewayId,
        secret: ApiSecret,
        options: ReceiverOptions,
    ) -> Self {
        let seen = Mutex::new(Seen::new(options.dedupe_capacity));
        Self {
            own: own_gateway_id,
            secret,
            options,
            seen,
        }
    }

    /// The gateway ID callbacks must be addressed to.
    pub fn gateway_id(&self) -> &GatewayId {
        &self.own
    }

    /// The options in force.
    pub fn options(&self) -> &ReceiverOptions {
        &self.options
    }

    /// Checks one request body (`application/x-www-form-urlencoded`) at time
    /// `now_unix_secs`, as the module documentation lists, and remembers the message as
    /// taken.
    ///
    /// # Errors
    ///
    /// A [`ReceiveError`]; answer its [`ReceiveError::status`].
    pub fn receive(
        &self,
        form_body: &[u8],
        now_unix_secs: u64,
    ) -> Result<IncomingCallback, ReceiveError> {
        if form_body.len() > MAX_BODY_BYTES {
            return Err(ReceiveError::TooLarge {
                len: form_body.len(),
                limit: MAX_BODY_BYTES,
            });
        }
        let mut form = Form::parse(form_body)?;
        let fields = CallbackFields {
            from: form.get(FROM)?,
            to: form.get(TO)?,
            message_id: form.get(MESSAGE_ID)?,
            date: form.get(DATE)?,
            nonce: form.get(NONCE)?,
            box_hex: form.get(BOX)?,
        };
        if !verify_callback_mac(&self.secret, &fields, form.get(MAC)?) {
            return Err(ReceiveError::BadMac);
        }
        // From here on, the six fields are as the gateway sent them.
        if fields.to != self.own.as_str() {
            return Err(ReceiveError::WrongRecipient {
                to: fields.to.to_owned(),
            });
        }
        let from = IdentityId::parse(fields.from).map_err(ReceiveError::malformed(KNOWN[FROM]))?;
        let message_id = MessageId::parse(fields.message_id)
            .map_err(ReceiveError::malformed(KNOWN[MESSAGE_ID]))?;
        let nonce = Nonce::parse(fields.nonce).map_err(ReceiveError::malformed(KNOWN[NONCE]))?;
        let sealed = parse_box(fields.box_hex)?;
        let date = parse_date(fields.date)?;
        let nickname = form.take(NICKNAME).filter(|n| !n.is_empty());
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.contains(&(from, message_id)) {
            return Err(ReceiveError::Duplicate { from, message_id });
        }
        self.options.check_time(date, now_unix_secs)?;
        seen.insert((from, message_id));
        Ok(IncomingCallback {
            from,
            to: self.own,
            message_id,
            date,
            nonce,
            sealed,
            nickname,
        })
    }

    /// Forgets that `callback` was taken, so that the gateway's next delivery of it is
    /// accepted. For a caller that could not handle it for a passing reason (the
    /// sender's key could not be fetched) and answers an error status to get it again.
    /// Returns whether it was remembered.
    pub fn forget(&self, callback: &IncomingCallback) -> bool {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(callback.from, callback.message_id))
    }
}

impl ReceiverOptions {
    /// Whether `time` (unix seconds) is within the limits around `now`.
    fn check_time(&self, time: u64, now: u64) -> Result<(), Untimely> {
        if let Some(max) = self.max_age {
            let age_secs = now.saturating_sub(time);
            if age_secs > max.as_secs() {
                return Err(Untimely::Stale {
                    age_secs,
                    max_secs: max.as_secs(),
                });
            }
        }
        if let Some(max) = self.max_future {
            let ahead_secs = time.saturating_sub(now);
            if ahead_secs > max.as_secs() {
                return Err(Untimely::Ahead {
                    ahead_secs,
                    max_secs: max.as_secs(),
                });
            }
        }
        Ok(())
    }
}
