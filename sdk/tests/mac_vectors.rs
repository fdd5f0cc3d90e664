//! Known-answer tests for the MACs: RFC 4231 HMAC-SHA256 through the same `hmac` and
//! `sha2` API the crate uses, and the lookup-hash and callback-MAC vectors of the Gateway
//! contract.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tocsin_sdk::protocol::{
    callback_mac_hex, hash_email, hash_phone, verify_callback_mac, ApiSecret, CallbackFields,
};

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

#[test]
fn rfc_4231_hmac_sha256_vectors() {
    let long_key = [0xaa; 131];
    let cases: [(&[u8], &[u8], &str); 6] = [
        (&[0x0b; 20], b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        (b"Jefe", b"what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        (&[0xaa; 20], &[0xdd; 50], "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
        (
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25],
            &[0xcd; 50],
            "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
        ),
        (&long_key, b"Test Using Larger Than Block-Size Key - Hash Key First", "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
        (
            &long_key,
            b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.",
            "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
        ),
    ];
    for (key, data, expected) in cases {
        assert_eq!(hex::encode(hmac_sha256(key, data)), expected);
    }
    // Test case 5 publishes only the first 128 bits of the tag.
    let truncated = hmac_sha256(&[0x0c; 20], b"Test With Truncation");
    assert_eq!(
        hex::encode(&truncated[..16]),
        "a3b6167473100ee06e0c796c2955552b"
    );
}

#[test]
fn lookup_hash_vectors_from_the_contract() {
    let cases = [
        (
            hash_phone("41791234567"),
            "ad398f4d7ebe63c6550a486cc6e07f9baa09bd9d8b3d8cb9d9be106d35a7fdbc",
        ),
        (
            hash_email("test@threema.ch"),
            "1ea093239cc5f0e1b6ec81b866265b921f26dc4033025410063309f4d1a8ee2c",
        ),
        (
            hash_phone("44123456789"),
            "98b05f6eda7a878f6f016bdcdc9db6eb61a6b190e814ff787142115af144214c",
        ),
        (
            hash_email("echoecho@example.com"),
            "45a13d422b40f81936a9987245d3f6d9064c90607273af4f578246b4484669e2",
        ),
    ];
    for (hash, expected) in cases {
        assert_eq!(hash.to_string(), expected);
    }
}

#[test]
fn lookup_hashing_normalises_first() {
    assert_eq!(hash_phone("+41 79 123 45 67"), hash_phone("41791234567"));
    assert_eq!(
        hash_email(" Test@Threema.CH "),
        hash_email("test@threema.ch")
    );
    assert_ne!(hash_phone("41791234567"), hash_email("41791234567"));
}

fn mac_vector_fields() -> (ApiSecret, String) {
    (
        ApiSecret::parse("nevergonnagiveyouup").unwrap(),
        "ff".repeat(24),
    )
}

#[test]
fn callback_mac_vector_from_the_contract() {
    let (secret, nonce) = mac_vector_fields();
    let fields = CallbackFields {
        from: "ECHOECHO",
        to: "*TESTTST",
        message_id: "0102030405060708",
        date: "1616950936",
        nonce: &nonce,
        box_hex: "012345abcdef",
    };
    let expected = "622b362e8353658ee649a5548acecc9ce9b88384d6b7e08e212446d68455b14e";
    assert_eq!(callback_mac_hex(&secret, &fields), expected);
    assert!(verify_callback_mac(&secret, &fields, expected));
    assert!(verify_callback_mac(
        &secret,
        &fields,
        &expected.to_uppercase()
    ));

    let mut wrong = expected.to_owned();
    wrong.replace_range(0..1, "7");
    assert!(!verify_callback_mac(&secret, &fields, &wrong));
    for malformed in [
        "",
        "zz",
        &expected[..62],
        &format!("{expected}00"),
        &expected.replace('6', "g"),
    ] {
        assert!(
            !verify_callback_mac(&secret, &fields, malformed),
            "{malformed}"
        );
    }
    let other_secret = ApiSecret::parse("nevergonnaletyoudown").unwrap();
    assert!(!verify_callback_mac(&other_secret, &fields, expected));
    let changed = CallbackFields {
        date: "1616950937",
        ..fields
    };
    assert!(!verify_callback_mac(&secret, &changed, expected));
}
