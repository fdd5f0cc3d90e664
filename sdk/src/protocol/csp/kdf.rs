//! Keyed BLAKE2b key derivation, and the vouch by which a client proves it holds its
//! permanent key.
//!
//! Every key the protocol family derives comes from [`blake2b_kdf`]: BLAKE2b with a
//! 32-byte output, keyed, and with a salt and a personalisation string placed (zero
//! padded) in the parameter block. The personal string names the protocol (`3ma-csp`
//! here) and the salt names the key within it, so two derivations from the same secret
//! never collide.
//!
//! The vouch binds the client's permanent key `CK` to one connection: it is a MAC over
//! the server's cookie and the client's ephemeral key, under a key only the holders of
//! `CK.secret` or of the server's secrets can compute. Intermediate secrets are wiped.

use blake2::digest::consts::U32;
use blake2::digest::{FixedOutput, Update};
use blake2::Blake2bMac;
use zeroize::Zeroizing;

use super::Cookie;
use crate::crypto::{CryptoError, SharedKey};
use crate::protocol::{PublicKey, SecretKey};

/// Personal string of every chat-server-protocol derivation.
pub const CSP_PERSONAL: &[u8] = b"3ma-csp";

/// Salt of the vouch key derivation.
const VOUCH_SALT: &[u8] = b"v2";

/// Longest key BLAKE2b accepts.
pub const MAX_KDF_KEY_LEN: usize = 64;

/// Longest salt, and longest personal string, the BLAKE2b parameter block holds.
pub const MAX_KDF_PARAM_LEN: usize = 16;

/// Keyed BLAKE2b-256 of `input` with `salt` and `personal` in the parameter block.
fn blake2b_mac(key: &[u8], salt: &[u8], personal: &[u8], input: &[u8]) -> [u8; 32] {
    assert!(
        key.len() <= MAX_KDF_KEY_LEN,
        "a BLAKE2b key has at most 64 bytes"
    );
    assert!(
        salt.len() <= MAX_KDF_PARAM_LEN && personal.len() <= MAX_KDF_PARAM_LEN,
        "a BLAKE2b salt or personal string has at most 16 bytes"
    );
    // An empty key means unkeyed hashing, which the constructor spells as `None`.
    let key = (!key.is_empty()).then_some(key);
    let mut mac = Blake2bMac::<U32>::new_with_salt_and_personal(key, salt, personal)
        .expect("lengths were checked above");
    mac.update(input);
    mac.finalize_fixed().into()
}

/// Derives a 32-byte key: BLAKE2b-256 keyed with `key`, with `salt` and `personal`
/// zero-padded to 16 bytes in the parameter block, over empty input.
///
/// An empty `key` gives the unkeyed hash. Cost: one BLAKE2b compression.
///
/// # Panics
///
/// When `key` is longer than 64 bytes, or `salt` or `personal` longer than 16. Callers
/// pass fixed-size secrets and constant labels, never bytes read from the wire.
///
/// ```
/// use tocsin_sdk::protocol::csp::{blake2b_kdf, CSP_PERSONAL};
///
/// let derived = blake2b_kdf(&[7; 32], b"dir", CSP_PERSONAL);
/// assert_ne!(derived, blake2b_kdf(&[7; 32], b"mm", CSP_PERSONAL));
/// ```
pub fn blake2b_kdf(key: &[u8], salt: &[u8], personal: &[u8]) -> [u8; 32] {
    blake2b_mac(key, salt, personal, &[])
}

/// `VouchKey = BLAKE2b(key = SS1 ‖ SS2, salt "v2", personal "3ma-csp")`.
pub(crate) fn vouch_key(ss1: &SharedKey, ss2: &SharedKey) -> Zeroizing<[u8; 32]> {
    let mut joined = Zeroizing::new([0u8; 64]);
    joined[..32].copy_from_slice(ss1.as_bytes());
    joined[32..].copy_from_slice(ss2.as_bytes());
    Zeroizing::new(blake2b_kdf(&joined[..], VOUCH_SALT, CSP_PERSONAL))
}

/// The vouch from the two shared secrets, whichever side computed them.
///
/// The client computes `SS1 = (CK.secret, SK.public)` and `SS2 = (CK.secret,
/// TSK.public)`; the server gets the same keys from `(SK.secret, CK.public)` and
/// `(TSK.secret, CK.public)`.
pub(crate) fn vouch_from_shared(
    ss1: &SharedKey,
    ss2: &SharedKey,
    server_cookie: &Cookie,
    client_ephemeral_public: &PublicKey,
) -> [u8; 32] {
    let key = vouch_key(ss1, ss2);
    let mut input = [0u8; Cookie::LEN + PublicKey::LEN];
    input[..Cookie::LEN].copy_from_slice(server_cookie.as_bytes());
    input[Cookie::LEN..].copy_from_slice(client_ephemeral_public.as_bytes());
    blake2b_mac(&key[..], &[], &[], &input)
}

/// Computes the client's vouch for one connection.
///
/// * `SS1 = X25519HSalsa20(CK.secret, SK.public)`
/// * `SS2 = X25519HSalsa20(CK.secret, TSK.public)`
/// * `VouchKey = BLAKE2b(key = SS1 ‖ SS2, salt "v2", personal "3ma-csp")`
/// * `vouch = BLAKE2b-256(key = VouchKey, input = SCK ‖ TCK.public)`
///
/// Cost: two X25519 exchanges and three BLAKE2b compressions. Fails with
/// [`CryptoError::WeakKey`] if a public key makes a shared secret all zero.
pub fn vouch(
    client_secret: &SecretKey,
    server_public: &PublicKey,
    server_ephemeral_public: &PublicKey,
    server_cookie: &Cookie,
    client_ephemeral_public: &PublicKey,
) -> Result<[u8; 32], CryptoError> {
    let ss1 = SharedKey::new(client_secret, server_public)?;
    let ss2 = SharedKey::new(client_secret, server_ephemeral_public)?;
    Ok(vouch_from_shared(
        &ss1,
        &ss2,
        server_cookie,
        client_ephemeral_public,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector of the chat-network notes: every public key is the X25519 public key
    /// of the repeated secret byte.
    #[test]
    fn the_vouch_key_matches_the_notes_vector() {
        let ck = SecretKey::from_bytes([0x11; 32]);
        let sk = SecretKey::from_bytes([0x22; 32]);
        let tsk = SecretKey::from_bytes([0x33; 32]);
        let ss1 = SharedKey::new(&ck, &sk.public_key()).unwrap();
        let ss2 = SharedKey::new(&ck, &tsk.public_key()).unwrap();
        assert_eq!(
            hex::encode(*vouch_key(&ss1, &ss2)),
            "6ffacbb34a06b09a9e010951647c4aa96eefb1347cfed9947817bc1869cf4fb1"
        );
    }

    #[test]
    fn the_server_side_keys_give_the_same_vouch() {
        let (ck, sk, tsk, tck) = (
            SecretKey::generate(),
            SecretKey::generate(),
            SecretKey::generate(),
            SecretKey::generate(),
        );
        let cookie = Cookie::random();
        let client = vouch(
            &ck,
            &sk.public_key(),
            &tsk.public_key(),
            &cookie,
            &tck.public_key(),
        )
        .unwrap();
        let ss1 = SharedKey::new(&sk, &ck.public_key()).unwrap();
        let ss2 = SharedKey::new(&tsk, &ck.public_key()).unwrap();
        assert_eq!(
            vouch_from_shared(&ss1, &ss2, &cookie, &tck.public_key()),
            client
        );
    }

    #[test]
    fn an_empty_key_hashes_unkeyed() {
        // BLAKE2b-256 of the empty string with no key, salt or personal string.
        assert_eq!(
            hex::encode(blake2b_kdf(&[], &[], &[])),
            "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"
        );
    }
}
