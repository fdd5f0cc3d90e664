//! `CallbackReceiver` on its own: the contract's MAC vector, the MAC checked before any
//! other field, recipient, freshness, duplicates, and the body cap.

use std::time::Duration;

use tocsin_sdk::crypto::SharedKey;
use tocsin_sdk::protocol::{
    callback_mac_hex, ApiSecret, CallbackFields, E2eMessage, GatewayId, KeyPair, Nonce,
};
use tocsin_sdk::receive::{CallbackReceiver, ReceiveError, ReceiverOptions, MAX_BODY_BYTES};
use url::form_urlencoded::Serializer;

pub const SECRET: &str = "nevergonnagiveyouup";
pub const DATE: u64 = 1_616_950_936;
const VECTOR_MAC: &str = "622b362e8353658ee649a5548acecc9ce9b88384d6b7e08e212446d68455b14e";

/// The callback fields of the contract's vector, as owned strings.
#[derive(Clone)]
pub struct Fields {
    pub from: String,
    pub to: String,
    pub message_id: String,
    pub date: String,
    pub nonce: String,
    pub box_hex: String,
}

impl Fields {
    pub fn vector() -> Self {
        Self {
            from: "ECHOECHO".into(),
            to: "*TESTTST".into(),
            message_id: "0102030405060708".into(),
            date: DATE.to_string(),
            nonce: "ff".repeat(24),
            box_hex: "012345abcdef".into(),
        }
    }

    fn wire(&self) -> CallbackFields<'_> {
        CallbackFields {
            from: &self.from,
            to: &self.to,
            message_id: &self.message_id,
            date: &self.date,
            nonce: &self.nonce,
            box_hex: &self.box_hex,
        }
    }

    /// The form body with the right MAC for `secret` and `extra` pairs after it.
    pub fn signed(&self, secret: &str, extra: &[(&str, &str)]) -> Vec<u8> {
        let mac = callback_mac_hex(&ApiSecret::parse(secret).unwrap(), &self.wire());
        self.body(&mac, extra)
    }

    /// The form body with `mac` as the MAC, as the gateway encodes it.
    pub fn body(&self, mac: &str, extra: &[(&str, &str)]) -> Vec<u8> {
        Serializer::new(String::new())
            .append_pair("from", &self.from)
            .append_pair("to", &self.to)
            .append_pair("messageId", &self.message_id)
            .append_pair("date", &self.date)
            .append_pair("nonce", &self.nonce)
            .append_pair("box", &self.box_hex)
            .append_pair("mac", mac)
            .extend_pairs(extra)
            .finish()
            .into_bytes()
    }
}

pub fn receiver() -> CallbackReceiver {
    CallbackReceiver::new(
        GatewayId::parse("*TESTTST").unwrap(),
        ApiSecret::parse(SECRET).unwrap(),
    )
}

#[test]
fn the_contract_vector_is_accepted_once_and_then_is_a_duplicate() {
    let fields = Fields::vector();
    let body = fields.body(VECTOR_MAC, &[("nickname", "Echo")]);
    assert_eq!(fields.signed(SECRET, &[("nickname", "Echo")]), body);
    let receiver = receiver();
    let taken = receiver.receive(&body, DATE + 10).unwrap();
    assert_eq!(taken.from.as_str(), "ECHOECHO");
    assert_eq!(taken.to.as_str(), "*TESTTST");
    assert_eq!(taken.message_id.to_string(), "0102030405060708");
    assert_eq!(taken.date, DATE);
    assert_eq!(taken.nonce, Nonce::from_bytes([0xff; 24]));
    assert_eq!(taken.sealed, [0x01, 0x23, 0x45, 0xab, 0xcd, 0xef]);
    assert_eq!(taken.nickname.as_deref(), Some("Echo"));

    let again = receiver.receive(&body, DATE + 11).unwrap_err();
    assert!(matches!(again, ReceiveError::Duplicate { .. }), "{again}");
    assert_eq!(again.status(), 200, "taken before: the gateway must stop");
    // Long after, a redelivery is still a duplicate rather than stale.
    let late = receiver.receive(&body, DATE + 3600).unwrap_err();
    assert!(matches!(late, ReceiveError::Duplicate { .. }), "{late}");
    assert!(receiver.forget(&taken));
    assert_eq!(receiver.receive(&body, DATE).unwrap(), taken);
}

#[test]
fn a_wrong_mac_is_refused_before_anything_else_is_looked_at() {
    let mut fields = Fields::vector();
    // Every other check would fail too; the MAC comes first.
    fields.to = "*OTHER01".into();
    fields.date = "yesterday".into();
    fields.box_hex = "xyz".into();
    let wrong_secret = fields.signed("someothersecret1", &[]);
    let garbage_mac = fields.body("not a mac", &[]);
    let flipped = Fields::vector().body(&VECTOR_MAC.replace("622b", "622c"), &[]);
    let receiver = receiver();
    for body in [wrong_secret, garbage_mac, flipped] {
        let refused = receiver.receive(&body, DATE).unwrap_err();
        assert_eq!(refused, ReceiveError::BadMac);
        assert_eq!(refused.status(), 401);
    }
    // The nickname is outside the MAC; everything else is inside.
    let mut tampered = Fields::vector();
    tampered.message_id = "0102030405060709".into();
    let body = tampered.body(VECTOR_MAC, &[]);
    assert_eq!(
        receiver.receive(&body, DATE).unwrap_err(),
        ReceiveError::BadMac
    );
}

#[test]
fn authentic_but_misaddressed_malformed_or_incomplete_callbacks_get_400() {
    let receiver = receiver();
    let mut other = Fields::vector();
    other.to = "*OTHER01".into();
    let refused = receiver
        .receive(&other.signed(SECRET, &[]), DATE)
        .unwrap_err();
    assert_eq!(
        refused,
        ReceiveError::WrongRecipient {
            to: "*OTHER01".into()
        }
    );
    assert_eq!(refused.status(), 400);

    type Spoil = fn(&mut Fields);
    let cases: [(Spoil, &str); 6] = [
        (|f| f.from = "echoecho".into(), "from"),
        (|f| f.message_id = "01020304".into(), "messageId"),
        (|f| f.nonce = "zz".repeat(24), "nonce"),
        (|f| f.box_hex = "abc".into(), "box"),
        (|f| f.box_hex = String::new(), "box"),
        (|f| f.date = "1616950936.5".into(), "date"),
    ];
    for (spoil, field) in cases {
        let mut fields = Fields::vector();
        spoil(&mut fields);
        let refused = receiver
            .receive(&fields.signed(SECRET, &[]), DATE)
            .unwrap_err();
        assert!(
            matches!(&refused, ReceiveError::Malformed { field: f, .. } if *f == field),
            "{field}: {refused}"
        );
        assert_eq!(refused.status(), 400);
    }

    let without_mac = b"from=ECHOECHO&to=%2ATESTTST&messageId=0102030405060708";
    assert_eq!(
        receiver.receive(without_mac, DATE).unwrap_err(),
        ReceiveError::MissingField("date")
    );
    let twice = Fields::vector().signed(SECRET, &[("box", "00")]);
    let refused = receiver.receive(&twice, DATE).unwrap_err();
    assert_eq!(refused, ReceiveError::RepeatedField("box"));
    assert_eq!(refused.status(), 400);
}

#[test]
fn dates_outside_the_window_get_400_and_the_window_is_configurable() {
    let body = Fields::vector().signed(SECRET, &[]);
    let stale = receiver().receive(&body, DATE + 301).unwrap_err();
    assert_eq!(
        stale,
        ReceiveError::Stale {
            age_secs: 301,
            max_secs: 300
        }
    );
    assert_eq!(stale.status(), 400);
    assert!(receiver().receive(&body, DATE + 300).is_ok());
    let ahead = receiver().receive(&body, DATE - 61).unwrap_err();
    assert!(matches!(
        ahead,
        ReceiveError::FromTheFuture { ahead_secs: 61, .. }
    ));
    assert_eq!(ahead.status(), 400);
    assert!(receiver().receive(&body, DATE - 60).is_ok());

    let patient = CallbackReceiver::with_options(
        GatewayId::parse("*TESTTST").unwrap(),
        ApiSecret::parse(SECRET).unwrap(),
        ReceiverOptions {
            max_age: None,
            max_future: Some(Duration::ZERO),
            dedupe_capacity: 1,
        },
    );
    assert!(patient.receive(&body, DATE + 1_000_000).is_ok());
    // With room for one pair, a second message pushes the first out.
    let mut second = Fields::vector();
    second.message_id = "1111111111111111".into();
    assert!(patient.receive(&second.signed(SECRET, &[]), DATE).is_ok());
    assert!(
        patient.receive(&body, DATE).is_ok(),
        "forgotten, so new again"
    );
}

#[test]
fn bodies_over_16_kib_are_refused_unread_and_16_kib_pass() {
    let fields = Fields::vector();
    let base = fields.signed(SECRET, &[("pad", "")]).len();
    let padding = "p".repeat(MAX_BODY_BYTES - base);
    let full = fields.signed(SECRET, &[("pad", &padding)]);
    assert_eq!(full.len(), MAX_BODY_BYTES);
    assert!(receiver().receive(&full, DATE).is_ok());
    let over = fields.signed(SECRET, &[("pad", &format!("{padding}p"))]);
    let refused = receiver().receive(&over, DATE).unwrap_err();
    assert_eq!(
        refused,
        ReceiveError::TooLarge {
            len: MAX_BODY_BYTES + 1,
            limit: MAX_BODY_BYTES
        }
    );
    assert_eq!(refused.status(), 413);
}

#[test]
fn an_accepted_callback_opens_with_the_two_keys() {
    let (gateway, sender) = (KeyPair::generate(), KeyPair::generate());
    let nonce = Nonce::random();
    let sealed = SharedKey::new(&sender.secret, &gateway.public)
        .unwrap()
        .seal(&nonce, &E2eMessage::Text("ack".into()).to_padded());
    let fields = Fields {
        nonce: nonce.to_string(),
        box_hex: hex::encode(&sealed),
        ..Fields::vector()
    };
    let taken = receiver()
        .receive(&fields.signed(SECRET, &[]), DATE)
        .unwrap();
    assert_eq!(
        taken.open(&gateway.secret, &sender.public).unwrap(),
        E2eMessage::Text("ack".into())
    );
    let stranger = KeyPair::generate();
    assert!(taken.open(&gateway.secret, &stranger.public).is_err());
}
