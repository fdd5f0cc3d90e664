//! Known-answer tests for the NaCl cryptography: libsodium's classic `box.c` and
//! `secretbox.c` vectors, all 518 Wycheproof X25519 inputs compared with the boxes
//! libsodium made for them, and secretbox round trips for file blobs.

use std::collections::HashMap;

use serde_json::Value;
use tocsin_sdk::crypto::{
    self, decrypt_file_blob, decrypt_thumbnail_blob, encrypt_file_blob, encrypt_thumbnail_blob,
    CryptoError, SharedKey, SymmetricKey, FILE_NONCE, THUMBNAIL_NONCE,
};
use tocsin_sdk::protocol::{Nonce, ParseError, PublicKey, SecretKey};

const ALICE_SK: &str = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
const ALICE_PK: &str = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
const BOB_SK: &str = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
const BOB_PK: &str = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
const BOX_NONCE: &str = "69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37";
const BOX_MESSAGE: &str = "be075fc53c81f2d5cf141316ebeb0c7b5228c52a4c62cbd44b66849b64244ffce5ecbaaf33bd751a1ac728d45e6c61296cdc3c01233561f41db66cce314adb310e3be8250c46f06dceea3a7fa1348057e2f6556ad6b1318a024a838f21af1fde048977eb48f59ffd4924ca1c60902e52f0a089bc76897040e082f937763848645e0705";
const BOX_EXPECTED: &str = "f3ffc7703f9400e52a7dfb4b3d3305d98e993b9f48681273c29650ba32fc76ce48332ea7164d96a4476fb8c531a1186ac0dfc17c98dce87b4da7f011ec48c97271d2c20f9b928fe2270d6fb863d51738b48eeee314a7cc8ab932164548e526ae90224368517acfeabd6bb3732bc0e9da99832b61ca01b6de56244a9e88d5f9b37973f622a43d14a6599b1f654cb45a74e355a5";
const ORDER_8_POINT: &str = "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800";

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn array32(s: &str) -> [u8; 32] {
    unhex(s).try_into().unwrap()
}

#[test]
fn libsodium_box_vector_seals_to_the_expected_bytes() {
    let alice = SecretKey::parse(ALICE_SK).unwrap();
    let bob = PublicKey::parse(BOB_PK).unwrap();
    let nonce = Nonce::parse(BOX_NONCE).unwrap();
    let sealed = crypto::seal(&alice, &bob, &nonce, &unhex(BOX_MESSAGE)).unwrap();
    assert_eq!(hex::encode(&sealed), BOX_EXPECTED);
    assert_eq!(sealed.len(), 147);
}

/// libsodium's `secretbox.c` uses the `beforenm` key of the same pair ("firstkey"), so a
/// secretbox under it must give the very same bytes as the box above.
#[test]
fn libsodium_secretbox_vector_matches_the_box_vector() {
    let firstkey = array32("1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389");
    let key = SymmetricKey::from_bytes(firstkey);
    let nonce = Nonce::parse(BOX_NONCE).unwrap();
    assert_eq!(
        hex::encode(key.seal(&nonce, &unhex(BOX_MESSAGE))),
        BOX_EXPECTED
    );
    assert_eq!(
        key.open(&nonce, &unhex(BOX_EXPECTED)).unwrap(),
        unhex(BOX_MESSAGE)
    );
}

#[test]
fn libsodium_box_vector_opens_with_bobs_key_and_detects_tampering() {
    let bob = SecretKey::parse(BOB_SK).unwrap();
    let alice = PublicKey::parse(ALICE_PK).unwrap();
    assert_eq!(SecretKey::parse(ALICE_SK).unwrap().public_key(), alice);
    let nonce = Nonce::parse(BOX_NONCE).unwrap();
    let boxed = unhex(BOX_EXPECTED);
    assert_eq!(
        crypto::open(&bob, &alice, &nonce, &boxed).unwrap(),
        unhex(BOX_MESSAGE)
    );

    for position in [0, 15, 16, 146] {
        let mut tampered = boxed.clone();
        tampered[position] ^= 0x01;
        assert_eq!(
            crypto::open(&bob, &alice, &nonce, &tampered),
            Err(CryptoError::Decrypt)
        );
    }
    let mut other_nonce = *nonce.as_bytes();
    other_nonce[0] ^= 1;
    let other_nonce = Nonce::from_bytes(other_nonce);
    assert_eq!(
        crypto::open(&bob, &alice, &other_nonce, &boxed),
        Err(CryptoError::Decrypt)
    );
}

#[test]
fn the_order_8_point_is_refused_by_the_parser_and_by_the_key_exchange() {
    assert_eq!(
        PublicKey::from_bytes(array32(ORDER_8_POINT)),
        Err(ParseError::WeakPublicKey)
    );
    assert_eq!(
        PublicKey::parse(ORDER_8_POINT),
        Err(ParseError::WeakPublicKey)
    );
    let unchecked = PublicKey::from_bytes_unchecked(array32(ORDER_8_POINT));
    let alice = SecretKey::parse(ALICE_SK).unwrap();
    assert_eq!(
        SharedKey::new(&alice, &unchecked).unwrap_err(),
        CryptoError::WeakKey
    );
}

/// Every Wycheproof X25519 input: where libsodium refused the pair, we refuse it too;
/// elsewhere the shared secret matches Wycheproof and the box matches libsodium's.
#[test]
fn all_wycheproof_x25519_vectors_agree_with_libsodium() {
    let vectors: Value = serde_json::from_str(include_str!("data/x25519_test.json")).unwrap();
    let sodium: Value =
        serde_json::from_str(include_str!("data/x25519_libsodium_box.json")).unwrap();
    let message = unhex(sodium["message_hex"].as_str().unwrap());
    let nonce = Nonce::parse(sodium["nonce_hex"].as_str().unwrap()).unwrap();
    let boxes: HashMap<u64, Option<&str>> = sodium["boxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["tcId"].as_u64().unwrap(), b["box"].as_str()))
        .collect();

    let (mut accepted, mut refused, mut refused_by_exchange) = (0, 0, 0);
    for group in vectors["testGroups"].as_array().unwrap() {
        for test in group["tests"].as_array().unwrap() {
            let id = test["tcId"].as_u64().unwrap();
            let public = array32(test["public"].as_str().unwrap());
            let secret = SecretKey::from_bytes(array32(test["private"].as_str().unwrap()));
            match boxes[&id] {
                None => {
                    refused += 1;
                    if PublicKey::from_bytes(public).is_ok() {
                        refused_by_exchange += 1;
                    }
                    let unchecked = PublicKey::from_bytes_unchecked(public);
                    assert_eq!(
                        SharedKey::new(&secret, &unchecked).unwrap_err(),
                        CryptoError::WeakKey,
                        "tcId {id}"
                    );
                }
                Some(expected_box) => {
                    accepted += 1;
                    let raw = x25519_dalek::x25519(*secret.as_bytes(), public);
                    assert_eq!(
                        hex::encode(raw),
                        test["shared"].as_str().unwrap(),
                        "tcId {id}"
                    );
                    let key = PublicKey::from_bytes(public)
                        .unwrap_or_else(|e| panic!("tcId {id} wrongly refused: {e}"));
                    let shared = SharedKey::new(&secret, &key).unwrap();
                    assert_eq!(
                        hex::encode(shared.seal(&nonce, &message)),
                        expected_box,
                        "tcId {id}"
                    );
                }
            }
        }
    }
    assert_eq!((accepted, refused), (487, 31));
    // libsodium's blocklist catches every refused vector before the key exchange would.
    assert_eq!(refused_by_exchange, 0);
}

#[test]
fn file_and_thumbnail_blobs_round_trip_and_need_the_right_key_and_nonce() {
    assert_eq!(FILE_NONCE.to_string(), format!("{}01", "00".repeat(23)));
    assert_eq!(
        THUMBNAIL_NONCE.to_string(),
        format!("{}02", "00".repeat(23))
    );

    let key = SymmetricKey::generate();
    let file = b"%PDF-1.7 pretend this is a report".to_vec();
    let thumb = vec![0x89u8; 300];
    let file_blob = encrypt_file_blob(&key, &file);
    let thumb_blob = encrypt_thumbnail_blob(&key, &thumb);
    assert_eq!(file_blob.len(), file.len() + 16);
    assert_eq!(decrypt_file_blob(&key, &file_blob).unwrap(), file);
    assert_eq!(decrypt_thumbnail_blob(&key, &thumb_blob).unwrap(), thumb);

    let wrong = SymmetricKey::generate();
    assert_eq!(
        decrypt_file_blob(&wrong, &file_blob),
        Err(CryptoError::Decrypt)
    );
    assert_eq!(
        decrypt_thumbnail_blob(&key, &file_blob),
        Err(CryptoError::Decrypt)
    );
    let random = Nonce::random();
    assert_eq!(key.open(&random, &key.seal(&random, b"x")).unwrap(), b"x");
}
