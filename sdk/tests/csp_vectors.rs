//! Known-answer tests for the chat server protocol's key derivation: the vouch vector
//! and the multi-device derivations of the chat-network notes (§2.2), and a 16-byte salt
//! and personal string checked against Python's `hashlib.blake2b`.

use tocsin_sdk::protocol::csp::{blake2b_kdf, vouch, Cookie, CSP_PERSONAL};
use tocsin_sdk::protocol::SecretKey;

fn secret(byte: u8) -> SecretKey {
    SecretKey::from_bytes([byte; 32])
}

/// CK = 32×11, SK = 32×22, TSK = 32×33, TCK = 32×44, SCK = 16×55. The notes' "public
/// keys" are the X25519 public keys of those secrets: with TCK's raw bytes in place of
/// its public key the vouch would be `1fac20ed…`, not the published value.
#[test]
fn the_vouch_matches_the_notes_vector() {
    let (ck, sk, tsk, tck) = (secret(0x11), secret(0x22), secret(0x33), secret(0x44));
    let sck = Cookie::from_bytes([0x55; 16]);
    let result = vouch(
        &ck,
        &sk.public_key(),
        &tsk.public_key(),
        &sck,
        &tck.public_key(),
    )
    .unwrap();
    assert_eq!(
        hex::encode(result),
        "de1986bf1a12db11cec6eaf59a0014501c25e0afb6ea3ed19434a9b3bdf41865"
    );
}

/// The vouch key is not public API; recompute it from its definition with the same
/// derivation function, which pins both the function and the vector.
#[test]
fn the_vouch_key_matches_the_notes_vector() {
    let (ck, sk, tsk) = (secret(0x11), secret(0x22), secret(0x33));
    let ss1 = x25519_hsalsa20(&ck, &sk);
    let ss2 = x25519_hsalsa20(&ck, &tsk);
    let key: Vec<u8> = ss1.iter().chain(ss2.iter()).copied().collect();
    assert_eq!(
        hex::encode(blake2b_kdf(&key, b"v2", CSP_PERSONAL)),
        "6ffacbb34a06b09a9e010951647c4aa96eefb1347cfed9947817bc1869cf4fb1"
    );
}

/// `crypto_box_beforenm(b.public, a.secret)`, built from the primitives directly so this
/// test does not depend on the crate's own shared-key code.
fn x25519_hsalsa20(a: &SecretKey, b: &SecretKey) -> [u8; 32] {
    let shared = x25519_dalek::x25519(*a.as_bytes(), *b.public_key().as_bytes());
    let block = salsa20::hsalsa::<salsa20::cipher::consts::U10>(
        &shared.into(),
        &salsa20::cipher::generic_array::GenericArray::default(),
    );
    block.into()
}

#[test]
fn the_device_group_keys_match_the_notes_vectors() {
    let dgk: Vec<u8> = (0u8..32).collect();
    let expected = [
        (
            &b"p"[..],
            "7778f521159908faf27e10ef0976184fef402d454adc60b19f7835b69ad7bdd7",
        ),
        (
            b"r",
            "438be661c724c165f716d67e385bb895ae7096cc6c4ab32372cd6d3f0c27e3d1",
        ),
        (
            b"di",
            "ad82c4c368b24a35fff9e8f74a2d5f6c1b84009d278fa70bc0d9274299709268",
        ),
        (
            b"sdd",
            "4fe6aad88db8010aa49ea4b9189f8fcbcedcdb715b95687783dea6ac1a5d4987",
        ),
        (
            b"ts",
            "385d1990ebe4670601abf5323cd52f84762caed3cbcfc711776db67bef72bb48",
        ),
    ];
    for (salt, key) in expected {
        assert_eq!(hex::encode(blake2b_kdf(&dgk, salt, b"3ma-mdev")), key);
    }
}

#[test]
fn full_sixteen_byte_salt_and_personal_strings_are_used_whole() {
    let key: Vec<u8> = (0u8..32).collect();
    // hashlib.blake2b(b"", key=key, salt=b"0123456789abcdef",
    //                 person=b"0123456789abcdef", digest_size=32)
    assert_eq!(
        hex::encode(blake2b_kdf(&key, b"0123456789abcdef", b"0123456789abcdef")),
        "9aa2ff75374c69107efc99c3609a9c2aeb92dbe06add5a8224570a8e246031ce"
    );
    // hashlib.blake2b(b"", key=key, salt=b"x", person=b"3ma-rendezvous\0\x01", …)
    assert_eq!(
        hex::encode(blake2b_kdf(&key, b"x", b"3ma-rendezvous\x00\x01")),
        "c8b43a185eea23600c35582bbda87888eae9664697491ca66658758c0a685004"
    );
}

#[test]
fn salt_personal_and_key_each_change_the_output() {
    let key = [0x42u8; 32];
    let base = blake2b_kdf(&key, b"dir", CSP_PERSONAL);
    assert_ne!(base, blake2b_kdf(&key, b"mm", CSP_PERSONAL));
    assert_ne!(base, blake2b_kdf(&key, b"dir", b"3ma-mdev"));
    assert_ne!(base, blake2b_kdf(&[0x43; 32], b"dir", CSP_PERSONAL));
    assert_ne!(base, blake2b_kdf(&key, b"", CSP_PERSONAL));
    // Zero padding means a trailing zero byte is the same parameter.
    assert_eq!(base, blake2b_kdf(&key, b"dir\0", CSP_PERSONAL));
}

#[test]
fn the_vouch_depends_on_every_input() {
    let keys: Vec<SecretKey> = (1..=5).map(secret).collect();
    let sck = Cookie::from_bytes([0x55; 16]);
    let base = vouch(
        &keys[0],
        &keys[1].public_key(),
        &keys[2].public_key(),
        &sck,
        &keys[3].public_key(),
    )
    .unwrap();
    let other = keys[4].public_key();
    let variants = [
        vouch(
            &keys[4],
            &keys[1].public_key(),
            &keys[2].public_key(),
            &sck,
            &keys[3].public_key(),
        ),
        vouch(
            &keys[0],
            &other,
            &keys[2].public_key(),
            &sck,
            &keys[3].public_key(),
        ),
        vouch(
            &keys[0],
            &keys[1].public_key(),
            &other,
            &sck,
            &keys[3].public_key(),
        ),
        vouch(
            &keys[0],
            &keys[1].public_key(),
            &keys[2].public_key(),
            &Cookie::from_bytes([0x56; 16]),
            &keys[3].public_key(),
        ),
        vouch(
            &keys[0],
            &keys[1].public_key(),
            &keys[2].public_key(),
            &sck,
            &other,
        ),
    ];
    for variant in variants {
        assert_ne!(variant.unwrap(), base);
    }
}
