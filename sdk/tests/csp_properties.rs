//! Property tests for the chat server protocol: every payload survives a session, every
//! envelope survives its codec, a changed bit never opens, and no input makes a decoder
//! or a handshake step panic.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use tocsin_sdk::protocol::csp::{
    ClientHandshake, ClientHello, LoginExtensions, MessageEnvelope, Payload, ServerHandshake,
    ServerHello, Session,
};
use tocsin_sdk::protocol::{IdentityId, KeyPair, MessageFlags, MessageId, Nonce};

fn identity() -> impl Strategy<Value = IdentityId> {
    "[*0-9A-Z][0-9A-Z]{7}".prop_map(|s| IdentityId::parse(&s).unwrap())
}

fn envelope() -> impl Strategy<Value = MessageEnvelope> {
    (
        (identity(), identity(), any::<[u8; 8]>(), any::<u32>()),
        (
            any::<u8>(),
            option::of("[^\u{0}]{1,8}"),
            any::<[u8; 24]>(),
            vec(any::<u8>(), 16..200),
        ),
    )
        .prop_map(
            |((sender, receiver, id, created_at), (flags, nickname, nonce, sealed))| {
                MessageEnvelope {
                    sender,
                    receiver,
                    message_id: MessageId::from_bytes(id),
                    created_at,
                    flags: MessageFlags(flags),
                    nickname,
                    nonce: Nonce::from_bytes(nonce),
                    sealed,
                }
            },
        )
}

fn unknown_kind() -> impl Strategy<Value = u8> {
    any::<u8>().prop_filter("a type without its own variant", |kind| {
        !Payload::KNOWN_KINDS.contains(kind)
    })
}

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        vec(any::<u8>(), 0..100).prop_map(Payload::EchoRequest),
        vec(any::<u8>(), 0..100).prop_map(Payload::EchoResponse),
        envelope().prop_map(Payload::OutgoingMessage),
        envelope().prop_map(Payload::IncomingMessage),
        (identity(), any::<[u8; 8]>()).prop_map(|(receiver, id)| Payload::ServerAck {
            receiver,
            message_id: MessageId::from_bytes(id),
        }),
        (identity(), any::<[u8; 8]>()).prop_map(|(sender, id)| Payload::ClientAck {
            sender,
            message_id: MessageId::from_bytes(id),
        }),
        Just(Payload::UnblockIncoming),
        any::<u16>().prop_map(Payload::SetIdleTimeout),
        Just(Payload::QueueSendComplete),
        (any::<bool>(), ".{0,40}").prop_map(|(can_reconnect, reason)| Payload::CloseError {
            can_reconnect,
            reason,
        }),
        ".{0,40}".prop_map(Payload::Alert),
        (unknown_kind(), vec(any::<u8>(), 0..100))
            .prop_map(|(kind, data)| Payload::Unknown { kind, data }),
    ]
}

/// A finished client and server session pair with a random key.
fn sessions() -> (Session, Session) {
    let (server_key, device_key) = (KeyPair::generate(), KeyPair::generate());
    let (mut client, hello) = ClientHandshake::new(
        IdentityId::parse("ABCD1234").unwrap(),
        &device_key.secret,
        server_key.public,
        LoginExtensions::default(),
    );
    let mut server = ServerHandshake::new(&server_key.secret);
    let login = client
        .on_server_hello(&server.on_client_hello(&hello).unwrap())
        .unwrap();
    server.on_login(&login).unwrap();
    let (ack, server_session) = server.accept(&device_key.public).unwrap();
    (client.on_login_ack(&ack).unwrap(), server_session)
}

proptest! {
    #[test]
    fn every_payload_crosses_a_session_in_both_directions(
        payloads in vec(payload(), 1..6),
    ) {
        let (client, server) = sessions();
        let (mut client_out, mut client_in) = client.split();
        let (mut server_out, mut server_in) = server.split();
        for payload in &payloads {
            let up = client_out.seal_frame(payload).unwrap();
            prop_assert_eq!(&server_in.open_frame(&up).unwrap(), payload);
            let down = server_out.seal_frame(payload).unwrap();
            prop_assert_eq!(&client_in.open_frame(&down).unwrap(), payload);
        }
    }

    #[test]
    fn every_envelope_round_trips(envelope in envelope()) {
        let bytes = envelope.encode().unwrap();
        prop_assert_eq!(bytes.len(), 64 + 24 + envelope.sealed.len());
        prop_assert_eq!(MessageEnvelope::decode(&bytes).unwrap(), envelope);
    }

    #[test]
    fn any_flipped_bit_keeps_a_frame_from_opening(
        payload in payload(),
        bit in any::<prop::sample::Index>(),
    ) {
        let (client, server) = sessions();
        let (mut out, _) = client.split();
        let (_, mut incoming) = server.split();
        let mut frame = out.seal_frame(&payload).unwrap();
        let at = bit.index(frame.len() * 8);
        frame[at / 8] ^= 1 << (at % 8);
        prop_assert!(incoming.open_frame(&frame).is_err());
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in vec(any::<u8>(), 0..300)) {
        let _ = Payload::decode(&bytes);
        let _ = MessageEnvelope::decode(&bytes);
        let _ = ClientHello::decode(&bytes);
        let key = KeyPair::generate();
        let _ = ServerHello::open(&bytes, &key.public, &key.secret);
    }

    #[test]
    fn arbitrary_bytes_at_any_handshake_step_are_refused_without_panicking(
        first in vec(any::<u8>(), 0..100),
        second in vec(any::<u8>(), 0..300),
    ) {
        let (server_key, device_key) = (KeyPair::generate(), KeyPair::generate());
        let mut server = ServerHandshake::new(&server_key.secret);
        let _ = server.on_client_hello(&first);
        let _ = server.login_len(&second);
        let _ = server.on_login(&second);

        let (mut client, hello) = ClientHandshake::new(
            IdentityId::parse("ABCD1234").unwrap(),
            &device_key.secret,
            server_key.public,
            LoginExtensions::default(),
        );
        prop_assert!(client.on_server_hello(&first).is_err());
        prop_assert!(client.on_login_ack(&second).is_err());

        // A server past client-hello, fed garbage as the login.
        let mut server = ServerHandshake::new(&server_key.secret);
        server.on_client_hello(&hello).unwrap();
        prop_assert!(server.login_len(&second).is_err());
        prop_assert!(server.on_login(&second).is_err());
    }

    #[test]
    fn arbitrary_frames_never_open_and_never_panic(bytes in vec(any::<u8>(), 0..300)) {
        let (client, _) = sessions();
        let (_, mut incoming) = client.split();
        prop_assert!(incoming.open_frame(&bytes).is_err());
    }
}
