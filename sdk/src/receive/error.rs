//! Why a callback or a status event was refused, and the HTTP status that tells the
//! gateway so.

use crate::crypto::CryptoError;
use crate::protocol::{E2eError, IdentityId, MessageId, ParseError, SignatureError};

/// Why [`super::CallbackReceiver::receive`] refused a callback.
///
/// Every variant maps to the status to answer ([`ReceiveError::status`]). The gateway
/// delivers again after anything but 200, so only [`ReceiveError::Duplicate`] answers
/// 200: that message was taken before, and a retry cannot change anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiveError {
    /// The body is longer than [`super::MAX_BODY_BYTES`]; nothing of it was read.
    #[error("the request body has {len} bytes, over the limit of {limit}")]
    TooLarge {
        /// Length of the body.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// A field the MAC covers, or the MAC itself, is missing.
    #[error("the form field {0:?} is missing")]
    MissingField(&'static str),
    /// A field appears twice, so which value the MAC covers is ambiguous.
    #[error("the form field {0:?} appears more than once")]
    RepeatedField(&'static str),
    /// The MAC does not match: the request did not come from a gateway that knows the
    /// API secret, or it was altered. No other field was looked at.
    #[error("the MAC does not match; the request is not from the gateway")]
    BadMac,
    /// Authentic, but addressed to another gateway ID than this receiver's.
    #[error("the callback is addressed to {to}, not to this gateway ID")]
    WrongRecipient {
        /// The `to` field as sent.
        to: String,
    },
    /// Authentic, but a field does not parse.
    #[error("the form field {field:?} is malformed: {reason}")]
    Malformed {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The message is older than the receiver accepts.
    #[error("the message is {age_secs} s old, over the limit of {max_secs} s")]
    Stale {
        /// How old it is, by the receiver's clock.
        age_secs: u64,
        /// The limit.
        max_secs: u64,
    },
    /// The message is dated further in the future than clock skew explains.
    #[error("the message is dated {ahead_secs} s in the future, over the limit of {max_secs} s")]
    FromTheFuture {
        /// How far ahead of the receiver's clock.
        ahead_secs: u64,
        /// The limit.
        max_secs: u64,
    },
    /// This (sender, message ID) was taken before; the gateway is delivering it again.
    #[error("message {message_id} from {from} was already received")]
    Duplicate {
        /// The sender.
        from: IdentityId,
        /// The sender's message ID.
        message_id: MessageId,
    },
}

impl ReceiveError {
    /// The HTTP status to answer: 401 for a bad MAC, 413 for an oversized body, 200
    /// for a duplicate (already taken; the gateway must stop delivering it), and 400 for
    /// the rest (malformed, misaddressed, stale).
    pub fn status(&self) -> u16 {
        match self {
            Self::BadMac => 401,
            Self::TooLarge { .. } => 413,
            Self::Duplicate { .. } => 200,
            Self::MissingField(_)
            | Self::RepeatedField(_)
            | Self::WrongRecipient { .. }
            | Self::Malformed { .. }
            | Self::Stale { .. }
            | Self::FromTheFuture { .. } => 400,
        }
    }

    /// A [`ReceiveError::Malformed`] for `field`.
    pub(super) fn malformed(field: &'static str) -> impl Fn(ParseError) -> Self {
        move |e| Self::Malformed {
            field,
            reason: e.to_string(),
        }
    }
}

impl From<Untimely> for ReceiveError {
    fn from(untimely: Untimely) -> Self {
        match untimely {
            Untimely::Stale { age_secs, max_secs } => Self::Stale { age_secs, max_secs },
            Untimely::Ahead {
                ahead_secs,
                max_secs,
            } => Self::FromTheFuture {
                ahead_secs,
                max_secs,
            },
        }
    }
}

/// Why [`super::StatusReceiver::receive`] refused a status event.
///
/// Every variant maps to the status to answer ([`StatusReceiveError::status`]). The
/// server delivers again after anything but a 2xx, so two refusals answer 200: a
/// duplicate (taken before) and an event of a type this SDK does not know (authentic,
/// but a retry would not make it readable).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StatusReceiveError {
    /// The body is longer than [`super::MAX_BODY_BYTES`]; nothing of it was read.
    #[error("the request body has {len} bytes, over the limit of {limit}")]
    TooLarge {
        /// Length of the body.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The request has no `X-Tocsin-Signature` header.
    #[error("the request has no X-Tocsin-Signature header")]
    MissingSignature,
    /// The signature is malformed or does not match: the request did not come from a
    /// server that knows the signing secret, or it was altered. The body was not read.
    #[error("the signature is refused: {0}")]
    BadSignature(SignatureError),
    /// Authentic, but not a status event of a known type with the fields it needs.
    #[error("the body is not a status event: {0}")]
    Malformed(String),
    /// Authentic, but about another gateway ID than this receiver's.
    #[error("the event is for {gateway_id}, not for this gateway ID")]
    WrongGateway {
        /// The `gatewayId` as sent.
        gateway_id: String,
    },
    /// The signature's `t` is older than the receiver accepts.
    #[error("the signature is {age_secs} s old, over the limit of {max_secs} s")]
    Stale {
        /// How old it is, by the receiver's clock.
        age_secs: u64,
        /// The limit.
        max_secs: u64,
    },
    /// The signature's `t` is further in the future than clock skew explains.
    #[error("the signature is dated {ahead_secs} s in the future, over the limit of {max_secs} s")]
    FromTheFuture {
        /// How far ahead of the receiver's clock.
        ahead_secs: u64,
        /// The limit.
        max_secs: u64,
    },
    /// This event ID was taken before; the server is delivering it again.
    #[error("status event {id} was already received")]
    Duplicate {
        /// The event's ID.
        id: String,
    },
    /// Authentic, addressed to this receiver, fresh and new, but of a `type` this SDK
    /// does not know (a newer server). It counts as taken.
    #[error("status event {id} is of the unknown type {kind:?}")]
    UnknownType {
        /// The event's ID.
        id: String,
        /// Its `type`, as sent.
        kind: String,
    },
}

impl StatusReceiveError {
    /// The HTTP status to answer: 401 for a missing or refused signature, 413 for an
    /// oversized body, 200 for a duplicate or an unknown type (the server must stop
    /// delivering it), and 400 for the rest (malformed, misaddressed, stale).
    pub fn status(&self) -> u16 {
        match self {
            Self::MissingSignature | Self::BadSignature(_) => 401,
            Self::TooLarge { .. } => 413,
            Self::Duplicate { .. } | Self::UnknownType { .. } => 200,
            Self::Malformed(_)
            | Self::WrongGateway { .. }
            | Self::Stale { .. }
            | Self::FromTheFuture { .. } => 400,
        }
    }
}

impl From<Untimely> for StatusReceiveError {
    fn from(untimely: Untimely) -> Self {
        match untimely {
            Untimely::Stale { age_secs, max_secs } => Self::Stale { age_secs, max_secs },
            Untimely::Ahead {
                ahead_secs,
                max_secs,
            } => Self::FromTheFuture {
                ahead_secs,
                max_secs,
            },
        }
    }
}

/// A time (a callback's `date`, a status signature's `t`) too far from the receiver's
/// clock; each receiver's error names it in its own terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Untimely {
    Stale { age_secs: u64, max_secs: u64 },
    Ahead { ahead_secs: u64, max_secs: u64 },
}

/// Why [`super::IncomingCallback::open`] could not read the message. The callback was
/// authentic, so answer 200 anyway: a retry would not open either.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The box does not open with these keys (or the sender's key is unusable).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The box opened, but holds no message this SDK can read.
    #[error("the box opened, but holds no readable message: {0}")]
    Message(#[from] E2eError),
}
