//! Byte layouts of the payload containers: the type byte, the three reserved bytes, and
//! the data of each payload, checked against hand-written bytes.

use tocsin_sdk::protocol::csp::{Payload, PayloadError};
use tocsin_sdk::protocol::{IdentityId, MessageId};

#[test]
fn the_container_is_type_then_three_zero_bytes_then_data() {
    let bytes = Payload::SetIdleTimeout(300).encode().unwrap();
    assert_eq!(bytes, [0x30, 0, 0, 0, 0x2c, 0x01]);
    let ack = Payload::ServerAck {
        receiver: IdentityId::parse("ABCD1234").unwrap(),
        message_id: MessageId::parse("a1a2a3a4a5a6a7a8").unwrap(),
    };
    let bytes = ack.encode().unwrap();
    assert_eq!(&bytes[..4], &[0x81, 0, 0, 0]);
    assert_eq!(&bytes[4..12], b"ABCD1234");
    assert_eq!(
        &bytes[12..],
        &[0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8]
    );
    assert_eq!(Payload::decode(&bytes), Ok(ack));
}

#[test]
fn close_error_carries_the_reconnect_byte_and_the_reason() {
    let close = Payload::CloseError {
        can_reconnect: false,
        reason: "bye".into(),
    };
    let bytes = close.encode().unwrap();
    assert_eq!(bytes, [0xe0, 0, 0, 0, 0, b'b', b'y', b'e']);
    assert_eq!(Payload::decode(&bytes), Ok(close));
}

#[test]
fn unknown_types_are_kept_and_known_ones_cannot_pose_as_unknown() {
    let bytes = [0x20, 0, 0, 0, 0x11, 0xab];
    let decoded = Payload::decode(&bytes).unwrap();
    assert_eq!(
        decoded,
        Payload::Unknown {
            kind: 0x20,
            data: vec![0x11, 0xab]
        }
    );
    assert_eq!(decoded.encode().unwrap(), bytes);
    let posing = Payload::Unknown {
        kind: Payload::ALERT,
        data: vec![],
    };
    assert_eq!(posing.encode(), Err(PayloadError::KnownKind(0xe1)));
}

#[test]
fn wrong_lengths_and_bad_text_are_refused() {
    assert!(Payload::decode(&[0x81, 0, 0]).is_err());
    assert!(Payload::decode(&[0x81, 0, 0, 0, 1, 2]).is_err());
    assert!(Payload::decode(&[0x03, 0, 0, 0, 1]).is_err());
    assert!(Payload::decode(&[0x30, 0, 0, 0, 1]).is_err());
    assert!(Payload::decode(&[0xe0, 0, 0, 0]).is_err());
    assert!(Payload::decode(&[0xe1, 0, 0, 0, 0xff]).is_err());
}

#[test]
fn a_message_payload_is_the_container_header_then_the_envelope() {
    use tocsin_sdk::protocol::csp::MessageEnvelope;
    use tocsin_sdk::protocol::{MessageFlags, Nonce};

    let envelope = MessageEnvelope {
        sender: IdentityId::parse("ABCD1234").unwrap(),
        receiver: IdentityId::parse("*ALERTS1").unwrap(),
        message_id: MessageId::parse("00112233445566ff").unwrap(),
        created_at: 1,
        flags: MessageFlags(MessageFlags::PUSH),
        nickname: None,
        nonce: Nonce::from_bytes([7; 24]),
        sealed: vec![9; 16],
    };
    let outgoing = Payload::OutgoingMessage(envelope.clone());
    let bytes = outgoing.encode().unwrap();
    assert_eq!(&bytes[..4], &[0x01, 0, 0, 0]);
    assert_eq!(&bytes[4..], envelope.encode().unwrap().as_slice());
    // The message ID's bytes are in the order of its hex form.
    assert_eq!(
        &bytes[4 + 16..4 + 24],
        &[0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0xff]
    );
    assert_eq!(Payload::decode(&bytes), Ok(outgoing));

    let incoming = Payload::IncomingMessage(envelope);
    let bytes = incoming.encode().unwrap();
    assert_eq!(bytes[0], 0x02);
    assert_eq!(Payload::decode(&bytes), Ok(incoming));
}
