//! NaCl `crypto_box`: public-key authenticated encryption between two key pairs.
//!
//! [`SharedKey`] is libsodium's `crypto_box_beforenm` value: HSalsa20 of the X25519
//! shared secret. Computing it costs one scalar multiplication, so a sender that writes
//! to the same peer repeatedly should keep it and call [`SharedKey::seal`]; the free
//! functions [`seal`] and [`open`] redo the key exchange every time. Either side of a
//! pair derives the same key: `SharedKey::new(a_secret, b_public)` equals
//! `SharedKey::new(b_secret, a_public)`.

use std::fmt;

use salsa20::cipher::consts::U10;
use salsa20::cipher::generic_array::GenericArray;
use x25519_dalek::StaticSecret;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::{xsalsa_open, xsalsa_seal, CryptoError};
use crate::protocol::{Nonce, PublicKey, SecretKey};

/// The precomputed key for boxes between one secret key and one public key.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SharedKey([u8; 32]);

impl SharedKey {
    /// Runs the X25519 key exchange and derives the box key.
    ///
    /// Fails with [`CryptoError::WeakKey`] when the shared secret is all zero, which
    /// happens exactly for public keys of small order (libsodium refuses the same).
    pub fn new(secret: &SecretKey, public: &PublicKey) -> Result<Self, CryptoError> {
        let ours = StaticSecret::from(*secret.as_bytes());
        let theirs = x25519_dalek::PublicKey::from(*public.as_bytes());
        let shared = ours.diffie_hellman(&theirs);
        if !shared.was_contributory() {
            return Err(CryptoError::WeakKey);
        }
        // HSalsa20 with 20 rounds (10 double rounds) and a zero input block.
        let mut derived =
            salsa20::hsalsa::<U10>(shared.as_bytes().into(), &GenericArray::default());
        let mut key = Self([0u8; 32]);
        key.0.copy_from_slice(&derived);
        derived.as_mut_slice().zeroize();
        Ok(key)
    }

    /// Encrypts and authenticates `plaintext`: the 16-byte tag, then the ciphertext.
    ///
    /// Never reuse a nonce with the same key; use [`Nonce::random`].
    pub fn seal(&self, nonce: &Nonce, plaintext: &[u8]) -> Vec<u8> {
        xsalsa_seal(&self.0, nonce, plaintext)
    }

    /// Checks and decrypts a box made by [`SharedKey::seal`] (or by any NaCl client).
    pub fn open(&self, nonce: &Nonce, boxed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        xsalsa_open(&self.0, nonce, boxed)
    }

    /// The raw 32-byte key, for key derivations that take a shared secret as input (the
    /// chat protocol's vouch). Kept inside the crate so that no caller can copy the key
    /// out of its wiped storage.
    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedKey(***)")
    }
}

/// Seals `plaintext` from the holder of `secret` to the holder of `public`.
pub fn seal(
    secret: &SecretKey,
    public: &PublicKey,
    nonce: &Nonce,
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    Ok(SharedKey::new(secret, public)?.seal(nonce, plaintext))
}

/// Opens a box sent by the holder of `public` to the holder of `secret`.
pub fn open(
    secret: &SecretKey,
    public: &PublicKey,
    nonce: &Nonce,
    boxed: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    SharedKey::new(secret, public)?.open(nonce, boxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_derive_the_same_key() {
        let (a, b) = (SecretKey::generate(), SecretKey::generate());
        let nonce = Nonce::random();
        let boxed = seal(&a, &b.public_key(), &nonce, b"hello").unwrap();
        assert_eq!(open(&b, &a.public_key(), &nonce, &boxed).unwrap(), b"hello");
    }

    #[test]
    fn short_or_empty_boxes_fail_cleanly() {
        let key =
            SharedKey::new(&SecretKey::generate(), &SecretKey::generate().public_key()).unwrap();
        let nonce = Nonce::random();
        for len in 0..16 {
            assert_eq!(key.open(&nonce, &vec![0; len]), Err(CryptoError::Decrypt));
        }
        assert_eq!(key.open(&nonce, &key.seal(&nonce, b"")).unwrap(), b"");
    }
}
