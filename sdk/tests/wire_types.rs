//! Parsers, printers and serde for the wire types: what is accepted, what is refused,
//! how values print, and that no secret leaks through `Debug`.

use std::str::FromStr;

use tocsin_sdk::crypto::{SharedKey, SymmetricKey};
use tocsin_sdk::protocol::{
    ApiSecret, BlobId, Capabilities, GatewayId, IdentityId, KeyPair, LookupHash, MessageId, Nonce,
    ParseError, PublicKey, SecretKey,
};

const SK_HEX: &str = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
const PK_HEX: &str = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";

#[test]
fn identity_ids_accept_the_alphabet_and_refuse_everything_else() {
    let echo = IdentityId::parse("ECHOECHO").unwrap();
    assert_eq!(echo.as_str(), "ECHOECHO");
    assert_eq!(echo.as_bytes(), b"ECHOECHO");
    assert!(!echo.is_gateway());
    assert_eq!(format!("{echo} {echo:?}"), "ECHOECHO IdentityId(ECHOECHO)");
    assert!(IdentityId::parse("*TESTTST").unwrap().is_gateway());
    assert!(IdentityId::parse("0123ABCZ").is_ok());

    assert_eq!(
        IdentityId::parse("echoecho"),
        Err(ParseError::IdentityChar(0))
    );
    assert_eq!(
        IdentityId::parse("ECHOECHo"),
        Err(ParseError::IdentityChar(7))
    );
    assert_eq!(
        IdentityId::parse("ECHOECH"),
        Err(ParseError::IdentityLength(7))
    );
    assert_eq!(
        IdentityId::parse("ECHOECHOE"),
        Err(ParseError::IdentityLength(9))
    );
    assert_eq!(
        IdentityId::parse("E*CHOECH"),
        Err(ParseError::IdentityChar(1))
    );
    assert_eq!(
        IdentityId::parse(" ECHOECH"),
        Err(ParseError::IdentityChar(0))
    );
    assert_eq!(IdentityId::parse(""), Err(ParseError::IdentityLength(0)));
    assert!(IdentityId::from_str("ECHOECHO").is_ok());
    assert_eq!(
        IdentityId::parse("ECHOE").unwrap_err().to_string(),
        "identity ID must be 8 characters of 0-9 and A-Z (gateway IDs start with '*'), got 5"
    );
}

#[test]
fn gateway_ids_need_the_star() {
    let gw = GatewayId::parse("*TESTTST").unwrap();
    assert_eq!(gw.as_str(), "*TESTTST");
    assert_eq!(gw.as_identity(), &IdentityId::parse("*TESTTST").unwrap());
    assert_eq!(gw.to_string(), "*TESTTST");
    assert_eq!(GatewayId::parse("ECHOECHO"), Err(ParseError::NotGateway));
    assert_eq!(
        GatewayId::try_from(IdentityId::parse("ECHOECHO").unwrap()),
        Err(ParseError::NotGateway)
    );
    assert!(GatewayId::parse("*test").is_err());
    assert_eq!(IdentityId::from(gw), *gw.as_identity());
}

#[test]
fn hex_ids_accept_upper_case_and_print_lower_case() {
    let id = MessageId::parse("0102030405060708").unwrap();
    assert_eq!(id.as_bytes(), &[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(
        MessageId::parse("ABCDEF0123456789").unwrap().to_string(),
        "abcdef0123456789"
    );
    assert_eq!(format!("{id:?}"), "MessageId(0102030405060708)");
    assert!(MessageId::parse("0102030405").is_err());
    assert!(MessageId::parse("010203040506070809").is_err());
    assert!(MessageId::parse("010203040506070g").is_err());

    let blob = BlobId::parse(&"AB".repeat(16)).unwrap();
    assert_eq!(blob.to_string(), "ab".repeat(16));
    assert!(BlobId::parse(&"ab".repeat(15)).is_err());
    assert!(BlobId::parse(&"a".repeat(31)).is_err());

    let nonce = Nonce::parse(&"FF".repeat(24)).unwrap();
    assert_eq!(nonce.to_string(), "ff".repeat(24));
    assert_eq!(Nonce::from_slice(&[0xff; 24]).unwrap(), nonce);
    assert!(Nonce::from_slice(&[0; 23]).is_err());
    assert!(Nonce::parse(&"ff".repeat(23)).is_err());

    let hash = LookupHash::parse(&"0A".repeat(32)).unwrap();
    assert_eq!(hash.to_string(), "0a".repeat(32));
    let err = LookupHash::parse(&"0a".repeat(31)).unwrap_err();
    assert!(
        err.to_string()
            .contains("must be 64 hex characters, got 62"),
        "{err}"
    );
    assert_eq!(
        LookupHash::parse(&"zz".repeat(32)),
        Err(ParseError::InvalidHex {
            what: "lookup hash"
        })
    );
}

#[test]
fn random_ids_differ() {
    assert_ne!(MessageId::random(), MessageId::random());
    assert_ne!(BlobId::random(), BlobId::random());
    assert_ne!(Nonce::random(), Nonce::random());
}

#[test]
fn public_keys_parse_with_or_without_prefix_and_refuse_weak_keys() {
    let key = PublicKey::parse(PK_HEX).unwrap();
    assert_eq!(PublicKey::parse(&format!("public:{PK_HEX}")).unwrap(), key);
    assert_eq!(PublicKey::parse(&PK_HEX.to_uppercase()).unwrap(), key);
    assert_eq!(key.to_string(), PK_HEX);
    assert_eq!(PublicKey::from_slice(key.as_bytes()).unwrap(), key);
    assert!(PublicKey::from_slice(&[1; 31]).is_err());
    assert!(PublicKey::parse(&PK_HEX[2..]).is_err());
    assert!(PublicKey::parse(&format!("private:{PK_HEX}")).is_err());
    assert_eq!(
        PublicKey::from_bytes([0; 32]),
        Err(ParseError::WeakPublicKey)
    );
    assert_eq!(
        PublicKey::parse(&"00".repeat(32)),
        Err(ParseError::WeakPublicKey)
    );
    let mut one = [0u8; 32];
    one[0] = 1;
    assert_eq!(PublicKey::from_bytes(one), Err(ParseError::WeakPublicKey));
}

#[test]
fn secret_keys_parse_with_or_without_prefix() {
    let key = SecretKey::parse(SK_HEX).unwrap();
    assert_eq!(
        SecretKey::parse(&format!("private:{SK_HEX}"))
            .unwrap()
            .as_bytes(),
        key.as_bytes()
    );
    assert_eq!(
        SecretKey::parse(&SK_HEX.to_uppercase()).unwrap().as_bytes(),
        key.as_bytes()
    );
    assert_eq!(key.to_hex().as_str(), SK_HEX);
    assert_eq!(key.public_key().to_string(), PK_HEX);
    assert!(SecretKey::parse(&SK_HEX[1..]).is_err());
    assert!(SecretKey::parse(&format!("public:{SK_HEX}")).is_err());
    let pair = KeyPair::from_secret(key.clone());
    assert_eq!(pair.public.to_string(), PK_HEX);
}

#[test]
fn debug_output_never_contains_key_material() {
    let secret = SecretKey::parse(SK_HEX).unwrap();
    assert_eq!(format!("{secret:?}"), "SecretKey(***)");
    let pair = KeyPair::from_secret(secret.clone());
    assert!(!format!("{pair:?}").contains(SK_HEX));

    let api = ApiSecret::parse("nevergonnagiveyouup").unwrap();
    assert_eq!(format!("{api:?}"), "ApiSecret(***)");

    let sym = SymmetricKey::parse(&"5a".repeat(32)).unwrap();
    let debug = format!("{sym:?}");
    assert_eq!(debug, "SymmetricKey(***)");
    assert!(!debug.contains("5a5a"));

    let shared = SharedKey::new(&secret, &PublicKey::parse(PK_HEX).unwrap()).unwrap();
    let debug = format!("{shared:?}");
    assert_eq!(debug, "SharedKey(***)");
}

#[test]
fn api_secrets_are_generated_as_16_alphanumerics_and_parsed_strictly() {
    for _ in 0..100 {
        let secret = ApiSecret::generate();
        assert_eq!(secret.expose().len(), 16);
        assert!(secret.expose().bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(ApiSecret::parse(secret.expose()).unwrap(), secret);
    }
    assert!(ApiSecret::parse("short").is_err());
    assert!(ApiSecret::parse("has space in it").is_err());
    assert!(ApiSecret::parse("percent%20encoded").is_err());
    let err = ApiSecret::parse("s3cr3t!!s3cr3t").unwrap_err().to_string();
    assert!(!err.contains("s3cr3t"), "{err}");
}

#[test]
fn capabilities_follow_the_wire_format() {
    let caps = Capabilities::parse("text, image ,file,text").unwrap();
    assert_eq!(caps.to_string(), "text,image,file");
    assert!(caps.contains("image") && !caps.contains("video"));
    assert!(Capabilities::parse("text,,file").is_err());
    assert_eq!(Capabilities::default().to_string(), "");
    assert_eq!(
        Capabilities::default_for_device().to_string(),
        "text,image,group,audio,video,file"
    );
}

#[test]
fn serde_round_trips_through_the_wire_strings() {
    let id = IdentityId::parse("ECHOECHO").unwrap();
    let gw = GatewayId::parse("*TESTTST").unwrap();
    let msg = MessageId::parse("0102030405060708").unwrap();
    let blob = BlobId::parse(&"ab".repeat(16)).unwrap();
    let nonce = Nonce::parse(&"cd".repeat(24)).unwrap();
    let key = PublicKey::parse(PK_HEX).unwrap();
    let hash = LookupHash::parse(&"ef".repeat(32)).unwrap();
    let caps = Capabilities::default_for_device();
    let json = serde_json::to_string(&(id, gw, msg, blob, nonce, key, hash, &caps)).unwrap();
    assert_eq!(
        json,
        format!(
            r#"["ECHOECHO","*TESTTST","0102030405060708","{}","{}","{PK_HEX}","{}","{caps}"]"#,
            "ab".repeat(16),
            "cd".repeat(24),
            "ef".repeat(32)
        )
    );
    type All = (
        IdentityId,
        GatewayId,
        MessageId,
        BlobId,
        Nonce,
        PublicKey,
        LookupHash,
        Capabilities,
    );
    let back: All = serde_json::from_str(&json).unwrap();
    assert_eq!(back, (id, gw, msg, blob, nonce, key, hash, caps));

    let upper = serde_json::from_str::<MessageId>(r#""0102030405060A0B""#).unwrap();
    assert_eq!(upper.to_string(), "0102030405060a0b");
    assert!(serde_json::from_str::<IdentityId>(r#""echoecho""#).is_err());
    assert!(serde_json::from_str::<GatewayId>(r#""ECHOECHO""#).is_err());
    assert!(serde_json::from_str::<PublicKey>(&format!(r#""{}""#, "00".repeat(32))).is_err());
    assert!(serde_json::from_str::<IdentityId>("12345678").is_err());
}
