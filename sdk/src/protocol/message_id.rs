//! Message IDs: eight opaque bytes, sixteen hex characters on the wire.
//!
//! The byte order is preserved end to end: the hex text is the eight bytes in order, and
//! the same eight bytes appear inside delivery receipts. That is what lets a receipt be
//! matched to the ID `send_e2e` returned. Parsing accepts either case; display is always
//! lowercase.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::codec::{decode_hex, deserialize_parsed, write_hex};
use super::ParseError;
use crate::crypto::fill_random;

/// The ID of one message, as returned by the send endpoints and carried in receipts.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId([u8; 8]);

impl MessageId {
    /// Number of raw bytes.
    pub const LEN: usize = 8;

    /// A fresh ID from the operating system's random number generator.
    pub fn random() -> Self {
        let mut bytes = [0u8; 8];
        fill_random(&mut bytes);
        Self(bytes)
    }

    /// Parses exactly 16 hex characters, either case.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        decode_hex(s, "message ID").map(Self)
    }

    /// Wraps eight raw bytes.
    pub const fn from_bytes(bytes: [u8; 8]) -> Self {
        Self(bytes)
    }

    /// The eight raw bytes, in wire order.
    pub fn as_bytes(&self) -> &[u8; 8] {
        &self.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({self})")
    }
}

impl FromStr for MessageId {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for MessageId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MessageId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_parsed(deserializer)
    }
}
