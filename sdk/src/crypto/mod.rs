//! NaCl-compatible encryption: `crypto_box` between key pairs and `crypto_secretbox`
//! under a symmetric key, both XSalsa20-Poly1305.
//!
//! Output layout is NaCl's "easy" form: the 16-byte Poly1305 tag followed by the
//! ciphertext, with the nonce sent separately. This is what Threema clients and libsodium
//! produce, and the test suite checks it byte for byte against libsodium.
//!
//! The key exchange is RFC 7748 X25519 (not a variant that reduces the scalar first),
//! followed by HSalsa20, like libsodium's `crypto_box_beforenm`. Small-order public keys
//! are refused twice: by [`crate::protocol::PublicKey::from_bytes`] and again here when
//! the shared secret comes out all zero. All key material is wiped on drop.

mod nacl_box;
mod secretbox;

use xsalsa20poly1305::aead::rand_core::RngCore;
use xsalsa20poly1305::aead::{AeadInPlace, KeyInit, OsRng};
use xsalsa20poly1305::{Tag, XSalsa20Poly1305};

pub use nacl_box::{open, seal, SharedKey};
pub use secretbox::{
    decrypt_file_blob, decrypt_thumbnail_blob, encrypt_file_blob, encrypt_thumbnail_blob,
    SymmetricKey, FILE_NONCE, THUMBNAIL_NONCE,
};

use crate::protocol::Nonce;

/// Length of the Poly1305 tag that starts every sealed box.
pub const TAG_LEN: usize = 16;

/// Why an encryption operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The peer's public key is of small order, so the shared secret would be all zero.
    #[error("public key is of small order; refusing a key exchange that ignores our secret")]
    WeakKey,
    /// The box was tampered with, truncated, or sealed for another key or nonce.
    #[error("decryption failed: the box is corrupt or was sealed with another key or nonce")]
    Decrypt,
}

/// Fills `buf` from the operating system's random number generator.
pub(crate) fn fill_random(buf: &mut [u8]) {
    OsRng.fill_bytes(buf);
}

/// XSalsa20-Poly1305 encryption with a raw 32-byte key: tag, then ciphertext.
fn xsalsa_seal(key: &[u8; 32], nonce: &Nonce, plaintext: &[u8]) -> Vec<u8> {
    let cipher = XSalsa20Poly1305::new(key.into());
    let mut out = vec![0u8; TAG_LEN + plaintext.len()];
    let (tag_out, body) = out.split_at_mut(TAG_LEN);
    body.copy_from_slice(plaintext);
    // The only refusal is for associated data, which NaCl boxes never have.
    let tag = cipher
        .encrypt_in_place_detached(nonce.as_bytes().into(), b"", body)
        .expect("XSalsa20-Poly1305 without associated data cannot fail");
    tag_out.copy_from_slice(&tag);
    out
}

/// XSalsa20-Poly1305 decryption with a raw 32-byte key of `tag || ciphertext`.
fn xsalsa_open(key: &[u8; 32], nonce: &Nonce, boxed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if boxed.len() < TAG_LEN {
        return Err(CryptoError::Decrypt);
    }
    let (tag, ciphertext) = boxed.split_at(TAG_LEN);
    let cipher = XSalsa20Poly1305::new(key.into());
    let mut out = ciphertext.to_vec();
    cipher
        .decrypt_in_place_detached(nonce.as_bytes().into(), b"", &mut out, Tag::from_slice(tag))
        .map_err(|_| CryptoError::Decrypt)?;
    Ok(out)
}
