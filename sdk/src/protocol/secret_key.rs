//! X25519 secret keys and key pairs.
//!
//! A [`SecretKey`] is wiped from memory when dropped, prints as `SecretKey(***)` in
//! `Debug` output, and has no `Display`: turning it into text takes an explicit
//! [`SecretKey::to_hex`], whose result is wiped as well.

use std::fmt;

use x25519_dalek::StaticSecret;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::codec::{decode_hex_into, hex_zeroizing};
use super::{ParseError, PublicKey};
use crate::crypto::fill_random;

/// A Curve25519 (X25519) secret key.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey([u8; 32]);

impl SecretKey {
    /// Number of raw bytes.
    pub const LEN: usize = 32;

    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Self {
        let mut key = Self([0u8; 32]);
        fill_random(&mut key.0);
        key
    }

    /// Wraps 32 raw bytes. Every 32-byte string is a usable X25519 secret key (the
    /// scalar is clamped when used).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Parses 64 hex characters (either case), optionally prefixed with `private:`.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let hex = s.strip_prefix("private:").unwrap_or(s);
        let mut key = Self([0u8; 32]);
        decode_hex_into(hex, "private key", &mut key.0)?;
        Ok(key)
    }

    /// The 32 raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The matching public key (X25519 multiplication of the base point).
    ///
    /// The result is never refused by [`PublicKey::from_bytes`]: a clamped scalar is not
    /// a multiple of the group order, so the product is a point of prime order, whose
    /// canonical encoding is not on the small-order list.
    pub fn public_key(&self) -> PublicKey {
        let secret = StaticSecret::from(self.0);
        PublicKey::from_bytes_unchecked(x25519_dalek::PublicKey::from(&secret).to_bytes())
    }

    /// The key as 64 lowercase hex characters, in a string wiped on drop.
    pub fn to_hex(&self) -> Zeroizing<String> {
        hex_zeroizing(&self.0)
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

/// A secret key together with its public key.
#[derive(Clone, Debug)]
pub struct KeyPair {
    /// The secret half; never leaves the holder.
    pub secret: SecretKey,
    /// The public half, derived from `secret`.
    pub public: PublicKey,
}

impl KeyPair {
    /// A fresh random key pair.
    pub fn generate() -> Self {
        Self::from_secret(SecretKey::generate())
    }

    /// Completes a secret key with its public key.
    pub fn from_secret(secret: SecretKey) -> Self {
        let public = secret.public_key();
        Self { secret, public }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7748 §6.1: Alice's key pair.
    #[test]
    fn public_key_matches_rfc_7748() {
        let secret =
            SecretKey::parse("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
                .unwrap();
        assert_eq!(
            secret.public_key().to_string(),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
    }

    #[test]
    fn generated_pairs_are_consistent() {
        let pair = KeyPair::generate();
        assert_eq!(pair.public, pair.secret.public_key());
        assert!(PublicKey::from_bytes(*pair.public.as_bytes()).is_ok());
    }
}
