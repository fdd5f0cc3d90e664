//! Nonces for XSalsa20-Poly1305: twenty-four bytes, forty-eight hex characters on the wire.
//!
//! A nonce is not secret, but it must never repeat under the same key. Boxes between two
//! parties therefore use [`Nonce::random`]; the two fixed nonces for file blobs are safe
//! only because every file gets its own fresh key (see [`crate::crypto::FILE_NONCE`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::codec::{decode_hex, deserialize_parsed, write_hex};
use super::ParseError;
use crate::crypto::fill_random;

/// A 24-byte XSalsa20 nonce.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Nonce([u8; 24]);

impl Nonce {
    /// Number of raw bytes.
    pub const LEN: usize = 24;

    /// A fresh nonce from the operating system's random number generator.
    pub fn random() -> Self {
        let mut bytes = [0u8; 24];
        fill_random(&mut bytes);
        Self(bytes)
    }

    /// Parses exactly 48 hex characters, either case.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        decode_hex(s, "nonce").map(Self)
    }

    /// Takes a nonce from a byte slice that must be exactly 24 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ParseError> {
        bytes
            .try_into()
            .map(Self)
            .map_err(|_| ParseError::ByteLength {
                what: "nonce",
                expected: Self::LEN,
                got: bytes.len(),
            })
    }

    /// Wraps twenty-four raw bytes.
    pub const fn from_bytes(bytes: [u8; 24]) -> Self {
        Self(bytes)
    }

    /// The twenty-four raw bytes.
    pub fn as_bytes(&self) -> &[u8; 24] {
        &self.0
    }
}

impl fmt::Display for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nonce({self})")
    }
}

impl FromStr for Nonce {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Nonce {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Nonce {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_parsed(deserializer)
    }
}
