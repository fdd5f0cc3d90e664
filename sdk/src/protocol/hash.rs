//! Phone and e-mail lookup hashes.
//!
//! Clients that do not want to reveal a phone number or address send its hash instead:
//! HMAC-SHA256 of the normalised value under one of two fixed, public keys. The keys are
//! part of the Gateway contract, so the hash is a pseudonym, not a secret.
//!
//! Normalisation: a phone number keeps its ASCII digits only (so `+41 79 123 45 67` and
//! `41791234567` hash alike); an e-mail address is trimmed and lowercased.

use std::fmt;
use std::str::FromStr;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Sha256;

use super::codec::{decode_hex, deserialize_parsed, write_hex};
use super::ParseError;

/// HMAC key for phone numbers, fixed by the Gateway contract.
const PHONE_KEY: [u8; 32] = [
    0x85, 0xad, 0xf8, 0x22, 0x69, 0x53, 0xf3, 0xd9, 0x6c, 0xfd, 0x5d, 0x09, 0xbf, 0x29, 0x55, 0x5e,
    0xb9, 0x55, 0xfc, 0xd8, 0xaa, 0x5e, 0xc4, 0xf9, 0xfc, 0xd8, 0x69, 0xe2, 0x58, 0x37, 0x07, 0x23,
];

/// HMAC key for e-mail addresses, fixed by the Gateway contract.
const EMAIL_KEY: [u8; 32] = [
    0x30, 0xa5, 0x50, 0x0f, 0xed, 0x97, 0x01, 0xfa, 0x6d, 0xef, 0xdb, 0x61, 0x08, 0x41, 0x90, 0x0f,
    0xeb, 0xb8, 0xe4, 0x30, 0x88, 0x1f, 0x7a, 0xd8, 0x16, 0x82, 0x62, 0x64, 0xec, 0x09, 0xba, 0xd7,
];

/// HMAC-SHA256 of the concatenation of `parts` under `key`.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = new_hmac(key);
    parts.iter().for_each(|part| mac.update(part));
    mac.finalize().into_bytes().into()
}

/// An HMAC-SHA256 instance keyed with `key`.
pub(crate) fn new_hmac(key: &[u8]) -> Hmac<Sha256> {
    // HMAC hashes long keys and pads short ones, so no key length is ever refused.
    Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

/// A phone or e-mail lookup hash: 32 bytes, 64 hex characters on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LookupHash([u8; 32]);

impl LookupHash {
    /// Number of raw bytes.
    pub const LEN: usize = 32;

    /// Parses exactly 64 hex characters, either case. A wrong length gets its own error
    /// (the lookup endpoints answer it with 400 rather than 404).
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        decode_hex(s, "lookup hash").map(Self)
    }

    /// Wraps 32 raw bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for LookupHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for LookupHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LookupHash({self})")
    }
}

impl FromStr for LookupHash {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for LookupHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LookupHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_parsed(deserializer)
    }
}

/// Keeps only the ASCII digits of a phone number (`+41 79 123 45 67` → `41791234567`).
pub fn normalize_phone(phone: &str) -> String {
    phone.chars().filter(char::is_ascii_digit).collect()
}

/// Trims surrounding whitespace and lowercases an e-mail address.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// The lookup hash of a phone number, after [`normalize_phone`].
pub fn hash_phone(phone: &str) -> LookupHash {
    LookupHash(hmac_sha256(
        &PHONE_KEY,
        &[normalize_phone(phone).as_bytes()],
    ))
}

/// The lookup hash of an e-mail address, after [`normalize_email`].
pub fn hash_email(email: &str) -> LookupHash {
    LookupHash(hmac_sha256(
        &EMAIL_KEY,
        &[normalize_email(email).as_bytes()],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_the_contract() {
        assert_eq!(
            hex::encode(PHONE_KEY),
            "85adf8226953f3d96cfd5d09bf29555eb955fcd8aa5ec4f9fcd869e258370723"
        );
        assert_eq!(
            hex::encode(EMAIL_KEY),
            "30a5500fed9701fa6defdb610841900febb8e430881f7ad816826264ec09bad7"
        );
    }

    #[test]
    fn wrong_length_is_reported_as_such() {
        assert!(matches!(
            LookupHash::parse("abcd"),
            Err(ParseError::HexLength {
                expected: 64,
                got: 4,
                ..
            })
        ));
    }
}
