//! NaCl `crypto_secretbox` under a symmetric key, and the blob encryption of file
//! messages.
//!
//! A file message encrypts the file and its thumbnail with one fresh random key and two
//! fixed nonces ([`FILE_NONCE`], [`THUMBNAIL_NONCE`]). Fixed nonces are safe only
//! because the key is used for exactly those two blobs; never reuse a blob key. For any
//! other use of a [`SymmetricKey`], pass a random nonce.

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::{fill_random, xsalsa_open, xsalsa_seal, CryptoError};
use crate::protocol::{Nonce, ParseError};

/// Nonce for the file blob of a file message: 23 zero bytes, then 1.
pub const FILE_NONCE: Nonce = Nonce::from_bytes(last_byte_nonce(1));

/// Nonce for the thumbnail blob of a file message: 23 zero bytes, then 2.
pub const THUMBNAIL_NONCE: Nonce = Nonce::from_bytes(last_byte_nonce(2));

const fn last_byte_nonce(last: u8) -> [u8; 24] {
    let mut bytes = [0u8; 24];
    bytes[23] = last;
    bytes
}

/// A 32-byte XSalsa20-Poly1305 key.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SymmetricKey([u8; 32]);

impl SymmetricKey {
    /// Number of raw bytes.
    pub const LEN: usize = 32;

    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Self {
        let mut key = Self([0u8; 32]);
        fill_random(&mut key.0);
        key
    }

    /// Wraps 32 raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Parses 64 hex characters, either case.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let mut key = Self([0u8; 32]);
        crate::protocol::codec::decode_hex_into(s, "symmetric key", &mut key.0)?;
        Ok(key)
    }

    /// The 32 raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key as 64 lowercase hex characters, in a string wiped on drop.
    pub fn to_hex(&self) -> Zeroizing<String> {
        crate::protocol::codec::hex_zeroizing(&self.0)
    }

    /// Encrypts and authenticates `data`: the 16-byte tag, then the ciphertext.
    pub fn seal(&self, nonce: &Nonce, data: &[u8]) -> Vec<u8> {
        xsalsa_seal(&self.0, nonce, data)
    }

    /// Checks and decrypts data made by [`SymmetricKey::seal`].
    pub fn open(&self, nonce: &Nonce, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        xsalsa_open(&self.0, nonce, data)
    }
}

impl PartialEq for SymmetricKey {
    /// Constant-time comparison.
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for SymmetricKey {}

impl fmt::Debug for SymmetricKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SymmetricKey(***)")
    }
}

/// Encrypts a file for upload as the file blob of a file message.
pub fn encrypt_file_blob(key: &SymmetricKey, data: &[u8]) -> Vec<u8> {
    key.seal(&FILE_NONCE, data)
}

/// Decrypts a downloaded file blob.
pub fn decrypt_file_blob(key: &SymmetricKey, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    key.open(&FILE_NONCE, data)
}

/// Encrypts a thumbnail for upload as the thumbnail blob of a file message.
pub fn encrypt_thumbnail_blob(key: &SymmetricKey, data: &[u8]) -> Vec<u8> {
    key.seal(&THUMBNAIL_NONCE, data)
}

/// Decrypts a downloaded thumbnail blob.
pub fn decrypt_thumbnail_blob(key: &SymmetricKey, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    key.open(&THUMBNAIL_NONCE, data)
}
