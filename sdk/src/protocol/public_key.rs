//! X25519 public keys, with small-order points refused at construction.
//!
//! A public key of small order (or the all-zero key) makes every X25519 result with it
//! one of a handful of values, whatever our secret key is: anyone could then open boxes
//! "sealed" to such a key. [`PublicKey::from_bytes`] therefore refuses the same inputs
//! libsodium refuses: the seven encodings on its small-order blocklist, compared with
//! the top bit of the last byte ignored. X25519 ignores that bit too, so the comparison
//! also catches the non-canonical encodings (`p`, `p + 1`, and the blocklisted values with
//! bit 255 set). Every other 32-byte string is accepted, exactly as libsodium does.
//!
//! On the wire a key is 64 hex characters (either case accepted, lowercase emitted); the
//! SDK files of some clients prefix it with `public:`, which [`PublicKey::parse`] accepts.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::codec::{decode_hex, deserialize_parsed, write_hex};
use super::ParseError;

/// libsodium's list of X25519 points of order 1, 2, 4 or 8 (including non-canonical
/// encodings), all with bit 255 clear.
const SMALL_ORDER: [[u8; 32]; 7] = [
    // 0 (order 4)
    [0; 32],
    // 1 (order 1)
    [
        1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0,
    ],
    // a point of order 8
    [
        0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4,
        0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49,
        0xb8, 0x00,
    ],
    // the other point of order 8
    [
        0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef,
        0x5b, 0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f,
        0x11, 0x57,
    ],
    // p - 1 (order 2)
    field_edge(0xec),
    // p, a non-canonical 0 (order 4)
    field_edge(0xed),
    // p + 1, a non-canonical 1 (order 1)
    field_edge(0xee),
];

/// Builds `2^255 - 256 + low`, i.e. `p - 1`, `p` and `p + 1` for `low` = 0xec, 0xed, 0xee.
const fn field_edge(low: u8) -> [u8; 32] {
    let mut bytes = [0xff; 32];
    bytes[0] = low;
    bytes[31] = 0x7f;
    bytes
}

/// Whether `bytes` is on libsodium's small-order blocklist, ignoring bit 255.
fn has_small_order(bytes: &[u8; 32]) -> bool {
    let mut masked = *bytes;
    masked[31] &= 0x7f;
    SMALL_ORDER.contains(&masked)
}

/// A Curve25519 (X25519) public key that is safe to use in a key exchange.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// Number of raw bytes.
    pub const LEN: usize = 32;

    /// Accepts 32 raw bytes unless they are all zero or a small-order point (see the
    /// module documentation for the exact rule).
    pub fn from_bytes(bytes: [u8; 32]) -> Result<Self, ParseError> {
        if has_small_order(&bytes) {
            Err(ParseError::WeakPublicKey)
        } else {
            Ok(Self(bytes))
        }
    }

    /// Like [`PublicKey::from_bytes`], from a slice that must be exactly 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ParseError> {
        let array: [u8; 32] = bytes.try_into().map_err(|_| ParseError::ByteLength {
            what: "public key",
            expected: Self::LEN,
            got: bytes.len(),
        })?;
        Self::from_bytes(array)
    }

    /// Parses 64 hex characters (either case), optionally prefixed with `public:`.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let hex = s.strip_prefix("public:").unwrap_or(s);
        Self::from_bytes(decode_hex(hex, "public key")?)
    }

    /// Wraps 32 bytes without the small-order check.
    ///
    /// Only for tests that must reach the key-exchange check behind this one, and for
    /// keys computed from a secret key (those are never of small order). Everything that
    /// comes from outside must go through [`PublicKey::from_bytes`].
    #[doc(hidden)]
    pub const fn from_bytes_unchecked(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_parsed(deserializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every blocklist entry really has small order: a clamped scalar is a multiple of
    /// the cofactor 8, so multiplying such a point by it always gives zero.
    #[test]
    fn every_blocklisted_point_gives_a_zero_shared_secret() {
        let scalar = [0x42u8; 32];
        for point in SMALL_ORDER {
            assert_eq!(x25519_dalek::x25519(scalar, point), [0u8; 32]);
            let mut high = point;
            high[31] |= 0x80;
            assert_eq!(PublicKey::from_bytes(high), Err(ParseError::WeakPublicKey));
        }
    }

    #[test]
    fn the_field_edges_are_p_minus_one_to_p_plus_one() {
        assert_eq!(
            hex::encode(field_edge(0xed)),
            "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"
        );
    }
}
