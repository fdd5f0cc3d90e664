//! The chat server protocol end to end in memory: a client and a server handshake, then
//! exchange frames both ways. Every refusal the protocol promises is checked here too.

use tocsin_sdk::protocol::csp::{
    ClientHandshake, ClientHello, Cookie, CspDeviceId, DeviceCookie, FrameError, HandshakeError,
    LoginExtensions, MessageEnvelope, Opener, Payload, PayloadVersion, Sealer, ServerHandshake,
    ServerHello, Session, CLIENT_HELLO_LEN, LOGIN_ACK_LEN, LOGIN_LEN, MAX_FRAME_BOX_LEN,
    MAX_PAYLOAD_LEN, SERVER_HELLO_LEN,
};
use tocsin_sdk::protocol::{IdentityId, KeyPair, MessageFlags, MessageId, Nonce};

fn device_id() -> IdentityId {
    IdentityId::parse("ABCD1234").unwrap()
}

fn full_extensions() -> LoginExtensions {
    LoginExtensions {
        client_info: Some("0.1.0;B;en/CH;tocsin-test".into()),
        device_id: Some(CspDeviceId::new(0x1122_3344_5566_7788)),
        payload_version: Some(PayloadVersion::Legacy),
        device_cookie: Some(DeviceCookie::from_bytes([0x3c; 16])),
    }
}

/// Runs a whole handshake; returns (client session, server session).
fn connect(extensions: LoginExtensions) -> (Session, Session) {
    let (server_key, device_key) = (KeyPair::generate(), KeyPair::generate());
    let (mut client, hello) = ClientHandshake::new(
        device_id(),
        &device_key.secret,
        server_key.public,
        extensions.clone(),
    );
    assert_eq!(hello.len(), CLIENT_HELLO_LEN);
    let mut server = ServerHandshake::new(&server_key.secret);
    let server_hello = server.on_client_hello(&hello).unwrap();
    assert_eq!(server_hello.len(), SERVER_HELLO_LEN);
    let login = client.on_server_hello(&server_hello).unwrap();
    assert_eq!(server.login_len(&login[..LOGIN_LEN]), Ok(login.len()));
    let request = server.on_login(&login).unwrap();
    assert_eq!(request.identity, device_id());
    assert_eq!(request.extensions, extensions);
    let (ack, server_session) = server.accept(&device_key.public).unwrap();
    assert_eq!(ack.len(), LOGIN_ACK_LEN);
    (client.on_login_ack(&ack).unwrap(), server_session)
}

fn envelope(sender: &str, receiver: &str) -> MessageEnvelope {
    MessageEnvelope {
        sender: IdentityId::parse(sender).unwrap(),
        receiver: IdentityId::parse(receiver).unwrap(),
        message_id: MessageId::random(),
        created_at: 1_700_000_000,
        flags: MessageFlags::default().with(MessageFlags::PUSH),
        nickname: Some("Pager".into()),
        nonce: Nonce::random(),
        sealed: vec![0xab; 48],
    }
}

fn pass(from: &mut Sealer, to: &mut Opener, payload: &Payload) {
    let frame = from.seal_frame(payload).unwrap();
    assert_eq!(to.open_frame(&frame).as_ref(), Ok(payload));
}

#[test]
fn a_handshake_with_every_extension_yields_working_sessions_in_both_directions() {
    let (client, server) = connect(full_extensions());
    let (mut client_out, mut client_in) = client.split();
    let (mut server_out, mut server_in) = server.split();
    // Client: login 1, extensions 2. Server: server-hello 1, login-ack 2.
    assert_eq!(client_out.next_sequence(), Some(3));
    assert_eq!(server_in.next_sequence(), Some(3));
    assert_eq!(server_out.next_sequence(), Some(3));
    assert_eq!(client_in.next_sequence(), Some(3));

    let outgoing = envelope("ABCD1234", "WXYZ9876");
    let client_sends = [
        Payload::EchoRequest(b"ping".to_vec()),
        Payload::OutgoingMessage(outgoing.clone()),
        Payload::ClientAck {
            sender: IdentityId::parse("*ALERTS1").unwrap(),
            message_id: MessageId::random(),
        },
        Payload::SetIdleTimeout(120),
        Payload::UnblockIncoming,
    ];
    let server_sends = [
        Payload::EchoResponse(b"ping".to_vec()),
        Payload::ServerAck {
            receiver: outgoing.receiver,
            message_id: outgoing.message_id,
        },
        Payload::IncomingMessage(envelope("*ALERTS1", "ABCD1234")),
        Payload::QueueSendComplete,
        Payload::Alert("maintenance at noon".into()),
        Payload::CloseError {
            can_reconnect: true,
            reason: "server restarting".into(),
        },
    ];
    // Interleave the two directions: each keeps its own count.
    for (i, payload) in client_sends.iter().enumerate() {
        pass(&mut client_out, &mut server_in, payload);
        if let Some(reply) = server_sends.get(i) {
            pass(&mut server_out, &mut client_in, reply);
        }
    }
    pass(&mut server_out, &mut client_in, &server_sends[5]);
    assert_eq!(client_out.next_sequence(), Some(3 + 5));
    assert_eq!(server_in.next_sequence(), Some(3 + 5));
    assert_eq!(server_out.next_sequence(), Some(3 + 6));
    assert_eq!(client_in.next_sequence(), Some(3 + 6));
}

#[test]
fn without_extensions_the_login_is_144_bytes_and_the_client_continues_at_two() {
    let (client, server) = connect(LoginExtensions::default());
    let (mut client_out, _) = client.split();
    let (_, mut server_in) = server.split();
    assert_eq!(client_out.next_sequence(), Some(2));
    pass(
        &mut client_out,
        &mut server_in,
        &Payload::EchoRequest(vec![]),
    );
}

#[test]
fn frames_arrive_in_order_and_a_skipped_frame_breaks_the_stream() {
    let (client, server) = connect(full_extensions());
    let (mut out, _) = client.split();
    let (_, mut incoming) = server.split();
    let first = out.seal_frame(&Payload::EchoRequest(vec![1])).unwrap();
    let second = out.seal_frame(&Payload::EchoRequest(vec![2])).unwrap();
    assert_eq!(incoming.open_frame(&second), Err(FrameError::Decrypt));
    assert_eq!(
        incoming.open_frame(&first),
        Ok(Payload::EchoRequest(vec![1]))
    );
    assert_eq!(
        incoming.open_frame(&second),
        Ok(Payload::EchoRequest(vec![2]))
    );
}

#[test]
fn a_replayed_frame_does_not_open() {
    let (client, server) = connect(full_extensions());
    let (mut out, _) = client.split();
    let (_, mut incoming) = server.split();
    let frame = out.seal_frame(&Payload::EchoRequest(vec![9])).unwrap();
    assert!(incoming.open_frame(&frame).is_ok());
    assert_eq!(incoming.open_frame(&frame), Err(FrameError::Decrypt));
}

#[test]
fn a_frame_reflected_back_to_its_sender_does_not_open() {
    let (client, server) = connect(full_extensions());
    let (mut client_out, mut client_in) = client.split();
    let (mut server_out, mut server_in) = server.split();
    // Same key and counter value 3 in both directions: only the cookie differs.
    let from_client = client_out.seal_frame(&Payload::UnblockIncoming).unwrap();
    assert_eq!(client_in.open_frame(&from_client), Err(FrameError::Decrypt));
    let from_server = server_out.seal_frame(&Payload::QueueSendComplete).unwrap();
    assert_eq!(server_in.open_frame(&from_server), Err(FrameError::Decrypt));
    // The rightful receivers still open them.
    assert!(server_in.open_frame(&from_client).is_ok());
    assert!(client_in.open_frame(&from_server).is_ok());
}

#[test]
fn frames_over_8192_bytes_are_refused_on_both_sides() {
    let (client, server) = connect(full_extensions());
    let (mut out, _) = client.split();
    let (_, mut incoming) = server.split();
    let largest = Payload::EchoRequest(vec![0; MAX_PAYLOAD_LEN - 4]);
    let frame = out.seal_frame(&largest).unwrap();
    assert_eq!(frame.len(), 2 + MAX_FRAME_BOX_LEN);
    assert_eq!(incoming.open_frame(&frame), Ok(largest));

    let one_more = Payload::EchoRequest(vec![0; MAX_PAYLOAD_LEN - 3]);
    assert_eq!(
        out.seal_frame(&one_more),
        Err(FrameError::TooLarge(MAX_FRAME_BOX_LEN + 1))
    );
    // The refusal used no sequence number: the next frame still opens.
    let next = out.seal_frame(&Payload::EchoRequest(vec![])).unwrap();

    let mut oversized = vec![0x01, 0x20]; // 8193, little-endian
    oversized.extend_from_slice(&[0; 8193]);
    assert_eq!(
        incoming.open_frame(&oversized),
        Err(FrameError::TooLarge(8193))
    );
    assert!(incoming.open_frame(&next).is_ok());
}

#[test]
fn the_server_refuses_a_vouch_made_with_another_key() {
    let (server_key, device_key, impostor) = (
        KeyPair::generate(),
        KeyPair::generate(),
        KeyPair::generate(),
    );
    let (mut client, hello) = ClientHandshake::new(
        device_id(),
        &impostor.secret,
        server_key.public,
        full_extensions(),
    );
    let mut server = ServerHandshake::new(&server_key.secret);
    let login = client
        .on_server_hello(&server.on_client_hello(&hello).unwrap())
        .unwrap();
    server.on_login(&login).unwrap();
    // The directory holds `device_key` for this identity, not the impostor's key.
    assert_eq!(
        server.accept(&device_key.public).map(|_| ()),
        Err(HandshakeError::BadVouch)
    );
}

/// A client-hello from a fresh client, with its handshake and the server's key pair.
fn started() -> (ClientHandshake, ClientHello, KeyPair) {
    let server_key = KeyPair::generate();
    let (client, hello) = ClientHandshake::new(
        device_id(),
        &KeyPair::generate().secret,
        server_key.public,
        LoginExtensions::default(),
    );
    (client, ClientHello::decode(&hello).unwrap(), server_key)
}

#[test]
fn the_client_refuses_a_tampered_server_hello() {
    let (mut client, hello, server_key) = started();
    let mut server = ServerHandshake::new(&server_key.secret);
    let mut reply = server.on_client_hello(&hello.encode()).unwrap();
    reply[40] ^= 0x01;
    assert_eq!(
        client.on_server_hello(&reply),
        Err(HandshakeError::Decrypt("server-hello"))
    );
    // A failed handshake stays failed.
    reply[40] ^= 0x01;
    assert_eq!(
        client.on_server_hello(&reply),
        Err(HandshakeError::OutOfOrder("server-hello"))
    );
}

#[test]
fn the_client_refuses_a_server_that_does_not_hold_the_pinned_key() {
    let (mut client, hello, _) = started();
    let mut stranger = ServerHandshake::new(&KeyPair::generate().secret);
    let reply = stranger.on_client_hello(&hello.encode()).unwrap();
    assert_eq!(
        client.on_server_hello(&reply),
        Err(HandshakeError::Decrypt("server-hello"))
    );
}

#[test]
fn the_client_refuses_a_wrong_echoed_cookie() {
    let (mut client, hello, server_key) = started();
    let reply = ServerHello {
        cookie: Cookie::random(),
        ephemeral_public: KeyPair::generate().public,
        echoed_cookie: Cookie::random(),
    }
    .seal(&server_key.secret, &hello.ephemeral_public)
    .unwrap();
    assert_eq!(
        client.on_server_hello(&reply),
        Err(HandshakeError::CookieMismatch("server-hello"))
    );
}

#[test]
fn the_client_refuses_a_server_cookie_equal_to_its_own() {
    let (mut client, hello, server_key) = started();
    let reply = ServerHello {
        cookie: hello.cookie,
        ephemeral_public: KeyPair::generate().public,
        echoed_cookie: hello.cookie,
    }
    .seal(&server_key.secret, &hello.ephemeral_public)
    .unwrap();
    assert_eq!(
        client.on_server_hello(&reply),
        Err(HandshakeError::SameCookies)
    );
}

#[test]
fn handshake_messages_of_the_wrong_length_are_refused() {
    let (mut client, hello, server_key) = started();
    let mut server = ServerHandshake::new(&server_key.secret);
    for len in [0, 47, 49] {
        let mut probe = ServerHandshake::new(&server_key.secret);
        assert!(matches!(
            probe.on_client_hello(&vec![9; len]),
            Err(HandshakeError::Length { .. })
        ));
    }
    let reply = server.on_client_hello(&hello.encode()).unwrap();
    let mut longer = reply.clone();
    longer.push(0);
    assert!(matches!(
        client.on_server_hello(&longer),
        Err(HandshakeError::Length { .. })
    ));

    let (mut client, hello, server_key) = started();
    let mut server = ServerHandshake::new(&server_key.secret);
    let login = client
        .on_server_hello(&server.on_client_hello(&hello.encode()).unwrap())
        .unwrap();
    assert!(server.login_len(&login[..100]).is_err());
    let mut padded = login.clone();
    padded.push(0);
    assert!(matches!(
        server.on_login(&padded),
        Err(HandshakeError::Length { .. })
    ));
}

#[test]
fn a_truncated_or_tampered_login_ack_is_refused() {
    for bad in [vec![], vec![0; LOGIN_ACK_LEN - 1], vec![0; LOGIN_ACK_LEN]] {
        let (server_key, device_key) = (KeyPair::generate(), KeyPair::generate());
        let (mut client, hello) = ClientHandshake::new(
            device_id(),
            &device_key.secret,
            server_key.public,
            LoginExtensions::default(),
        );
        let mut server = ServerHandshake::new(&server_key.secret);
        let login = client
            .on_server_hello(&server.on_client_hello(&hello).unwrap())
            .unwrap();
        server.on_login(&login).unwrap();
        assert!(server.accept(&device_key.public).is_ok());
        assert!(client.on_login_ack(&bad).is_err());
    }
}
