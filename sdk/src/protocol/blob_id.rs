//! Blob IDs: sixteen opaque bytes, thirty-two hex characters on the wire.
//!
//! A blob ID names one uploaded (already encrypted) blob. Parsing accepts either case and
//! exactly 32 characters; display is always lowercase.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::codec::{decode_hex, deserialize_parsed, write_hex};
use super::ParseError;
use crate::crypto::fill_random;

/// The ID of an uploaded blob, as returned by `upload_blob`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobId([u8; 16]);

impl BlobId {
    /// Number of raw bytes.
    pub const LEN: usize = 16;

    /// A fresh ID from the operating system's random number generator.
    pub fn random() -> Self {
        let mut bytes = [0u8; 16];
        fill_random(&mut bytes);
        Self(bytes)
    }

    /// Parses exactly 32 hex characters, either case.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        decode_hex(s, "blob ID").map(Self)
    }

    /// Wraps sixteen raw bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The sixteen raw bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobId({self})")
    }
}

impl FromStr for BlobId {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for BlobId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BlobId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_parsed(deserializer)
    }
}
