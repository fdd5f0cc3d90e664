//! The chat server at `/chat`: handshake refusals, delivery to connected and reconnecting
//! devices, acks, several devices per identity, device-to-device and device-to-gateway
//! sends, and frame limits. The device here is a bare protocol peer over tokio-tungstenite.

use futures_util::{SinkExt, StreamExt};
use tocsin::domain::UnixMs;
use tocsin::store::GatewayMode;
use tocsin_sdk::crypto::SharedKey;
use tocsin_sdk::protocol::csp::{
    ClientHandshake, CspDeviceId, LoginExtensions, MessageEnvelope, Opener, Payload, Sealer,
};
use tocsin_sdk::protocol::{
    E2eMessage, IdentityId, KeyPair, MessageFlags, MessageId, Nonce, PublicKey, ReceiptStatus,
};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::wait::PATIENCE;
use crate::helpers::{spawn_app, TestApp, TestGateway};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub(super) struct Device {
    ws: Ws,
    sealer: Sealer,
    opener: Opener,
    pub(super) id: IdentityId,
}

async fn raw(app: &TestApp) -> Ws {
    tokio_tungstenite::connect_async(format!("ws://{}/chat", app.http))
        .await
        .unwrap()
        .0
}

/// The next binary message; `None` once the server has closed the connection. A server
/// that neither answers nor closes fails the test.
async fn next_binary(ws: &mut Ws) -> Option<Vec<u8>> {
    loop {
        match tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("the server answers or closes")?
        {
            Ok(Message::Binary(b)) => return Some(b.to_vec()),
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            _ => return None,
        }
    }
}

/// Runs the handshake; `Err` when the server refuses (closes instead of answering).
pub(super) async fn login(
    app: &TestApp,
    id: &str,
    keys: &KeyPair,
    device: Option<u64>,
    server: PublicKey,
) -> Result<Device, String> {
    let mut ws = raw(app).await;
    let id = IdentityId::parse(id).unwrap();
    let extensions = LoginExtensions {
        client_info: Some("test;B;en/CH;tocsin".into()),
        device_id: device.map(CspDeviceId::new),
        ..LoginExtensions::default()
    };
    let (mut handshake, hello) = ClientHandshake::new(id, &keys.secret, server, extensions);
    ws.send(Message::Binary(hello.into())).await.unwrap();
    let server_hello = next_binary(&mut ws).await.ok_or("no server-hello")?;
    let login = handshake
        .on_server_hello(&server_hello)
        .map_err(|e| e.to_string())?;
    ws.send(Message::Binary(login.into())).await.unwrap();
    let ack = next_binary(&mut ws).await.ok_or("login refused")?;
    let (sealer, opener) = handshake
        .on_login_ack(&ack)
        .map_err(|e| e.to_string())?
        .split();
    Ok(Device {
        ws,
        sealer,
        opener,
        id,
    })
}

impl Device {
    pub(super) async fn connect(
        app: &TestApp,
        id: &str,
        keys: &KeyPair,
        device: Option<u64>,
    ) -> Self {
        login(app, id, keys, device, app.state.server_key.public)
            .await
            .unwrap()
    }

    pub(super) async fn recv(&mut self) -> Option<Payload> {
        let frame = next_binary(&mut self.ws).await?;
        Some(self.opener.open_frame(&frame).unwrap())
    }

    pub(super) async fn send(&mut self, payload: &Payload) {
        let frame = self.sealer.seal_frame(payload).unwrap();
        self.ws.send(Message::Binary(frame.into())).await.unwrap();
    }

    /// Receives incoming messages until queue-send-complete.
    pub(super) async fn drain_queue(&mut self) -> Vec<MessageEnvelope> {
        let mut got = Vec::new();
        loop {
            match self.recv().await.expect("queue-send-complete") {
                Payload::IncomingMessage(m) => got.push(m),
                Payload::QueueSendComplete => return got,
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    async fn incoming(&mut self) -> MessageEnvelope {
        match self.recv().await.expect("an incoming message") {
            Payload::IncomingMessage(m) => m,
            other => panic!("unexpected {other:?}"),
        }
    }

    async fn ack(&mut self, m: &MessageEnvelope) {
        self.send(&Payload::ClientAck {
            sender: m.sender,
            message_id: m.message_id,
        })
        .await;
    }
}

async fn send_simple(app: &TestApp, gw: &TestGateway, to: &str, text: &str) -> MessageId {
    let res = app
        .client
        .post(app.url("/send_simple"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("{}&to={to}&text={text}", gw.credentials()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    MessageId::parse(&res.text().await.unwrap()).unwrap()
}

fn text_of(m: &MessageEnvelope, keys: &KeyPair, sender: &PublicKey) -> String {
    let plain = SharedKey::new(&keys.secret, sender)
        .unwrap()
        .open(&m.nonce, &m.sealed)
        .unwrap();
    match E2eMessage::from_padded(&plain).unwrap() {
        E2eMessage::Text(t) => t,
        other => panic!("not text: {other:?}"),
    }
}

async fn depth(app: &TestApp) -> i64 {
    app.state.store.queue_depth().await.unwrap()
}

#[tokio::test]
async fn a_connected_device_gets_a_gateway_message_live_and_its_ack_deletes_it() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::Basic, 10).await;
    let alice = app.identity("ALICE123", None, None).await;
    let mut device = Device::connect(&app, "ALICE123", &alice, Some(7)).await;
    assert!(device.drain_queue().await.is_empty());
    let id = send_simple(&app, &gw, "ALICE123", "code+482913").await;
    let m = device.incoming().await;
    assert_eq!(
        (m.message_id, m.sender, m.receiver),
        (id, *gw.id.as_identity(), device.id)
    );
    assert!(m.flags.has(MessageFlags::PUSH));
    assert_eq!(text_of(&m, &alice, &gw.keys.public), "code 482913");
    assert_eq!(depth(&app).await, 1);
    device.ack(&m).await;
    // The echo round trip orders after the ack on the same connection.
    device.send(&Payload::EchoRequest(b"ping".to_vec())).await;
    assert_eq!(
        device.recv().await,
        Some(Payload::EchoResponse(b"ping".to_vec()))
    );
    assert_eq!(depth(&app).await, 0, "acked by the only device: gone");
}

#[tokio::test]
async fn offline_messages_arrive_in_order_on_login_and_unacked_ones_come_again() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::Basic, 10).await;
    let alice = app.identity("ALICE123", None, None).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(send_simple(&app, &gw, "ALICE123", &format!("n{n}")).await);
    }
    let mut device = Device::connect(&app, "ALICE123", &alice, None).await;
    let got = device.drain_queue().await;
    assert_eq!(got.iter().map(|m| m.message_id).collect::<Vec<_>>(), ids);
    // Ack only the first two, then drop the connection between receive and ack.
    device.ack(&got[0]).await;
    device.ack(&got[1]).await;
    device.send(&Payload::EchoRequest(vec![])).await;
    device.recv().await;
    drop(device);
    let mut again = Device::connect(&app, "ALICE123", &alice, None).await;
    let redelivered = again.drain_queue().await;
    assert_eq!(
        redelivered.iter().map(|m| m.message_id).collect::<Vec<_>>(),
        ids[2..]
    );
}

#[tokio::test]
async fn two_devices_both_receive_and_the_message_stays_until_both_acked() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::Basic, 10).await;
    let alice = app.identity("ALICE123", None, None).await;
    let mut phone = Device::connect(&app, "ALICE123", &alice, Some(1)).await;
    let mut laptop = Device::connect(&app, "ALICE123", &alice, Some(2)).await;
    phone.drain_queue().await;
    laptop.drain_queue().await;
    let id = send_simple(&app, &gw, "ALICE123", "alarm").await;
    let a = phone.incoming().await;
    let b = laptop.incoming().await;
    assert_eq!((a.message_id, b.message_id), (id, id));
    phone.ack(&a).await;
    phone.send(&Payload::EchoRequest(vec![])).await;
    phone.recv().await;
    assert_eq!(depth(&app).await, 1, "the laptop has not acked yet");
    laptop.ack(&b).await;
    laptop.send(&Payload::EchoRequest(vec![])).await;
    laptop.recv().await;
    assert_eq!(depth(&app).await, 0);
}

#[tokio::test]
async fn devices_send_to_each_other_and_replies_to_gateway_ids_go_to_the_outbox() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    let alice = app.identity("ALICE123", None, None).await;
    let bob = app.identity("BOB45678", None, None).await;
    let mut a = Device::connect(&app, "ALICE123", &alice, None).await;
    let mut b = Device::connect(&app, "BOB45678", &bob, None).await;
    a.drain_queue().await;
    b.drain_queue().await;
    let nonce = Nonce::random();
    let sealed = SharedKey::new(&alice.secret, &bob.public)
        .unwrap()
        .seal(&nonce, &E2eMessage::Text("hi bob".into()).to_padded());
    let envelope = MessageEnvelope {
        sender: a.id,
        receiver: b.id,
        message_id: MessageId::random(),
        created_at: 1_700_000_000,
        flags: MessageFlags(MessageFlags::PUSH),
        nickname: None,
        nonce,
        sealed,
    };
    a.send(&Payload::OutgoingMessage(envelope.clone())).await;
    assert_eq!(
        a.recv().await,
        Some(Payload::ServerAck {
            receiver: b.id,
            message_id: envelope.message_id
        })
    );
    let got = b.incoming().await;
    assert_eq!(text_of(&got, &bob, &alice.public), "hi bob");
    // A resend after a lost server ack is acked again but queued once.
    a.send(&Payload::OutgoingMessage(envelope.clone())).await;
    assert!(matches!(a.recv().await, Some(Payload::ServerAck { .. })));
    assert_eq!(depth(&app).await, 1);

    let reply = MessageEnvelope {
        receiver: *gw.id.as_identity(),
        message_id: MessageId::random(),
        ..envelope.clone()
    };
    let callback = Some("https://callback.invalid/tocsin");
    app.state
        .store
        .set_callback_url(&gw.id, callback)
        .await
        .unwrap();
    a.send(&Payload::OutgoingMessage(reply.clone())).await;
    assert!(matches!(a.recv().await, Some(Payload::ServerAck { .. })));
    let outbox = app.state.store.callbacks_for(&gw.id).await.unwrap();
    assert_eq!(outbox, [(a.id, reply.message_id)]);

    let forged = MessageEnvelope {
        sender: b.id,
        message_id: MessageId::random(),
        ..envelope
    };
    a.send(&Payload::OutgoingMessage(forged)).await;
    assert!(matches!(
        a.recv().await,
        Some(Payload::CloseError {
            can_reconnect: false,
            ..
        })
    ));
}

#[tokio::test]
async fn logins_with_a_wrong_key_unknown_or_revoked_identity_or_wrong_server_are_refused() {
    let app = spawn_app().await;
    let alice = app.identity("ALICE123", None, None).await;
    let server = app.state.server_key.public;
    let other = KeyPair::generate();
    assert!(
        login(&app, "ALICE123", &other, None, server).await.is_err(),
        "vouch with the wrong key"
    );
    assert!(
        login(&app, "NOSUCHID", &alice, None, server).await.is_err(),
        "unknown identity"
    );
    assert!(
        login(&app, "ALICE123", &alice, None, other.public)
            .await
            .is_err(),
        "not the pinned server"
    );
    app.state
        .store
        .revoke_identity(&"ALICE123".parse().unwrap())
        .await
        .unwrap();
    assert!(
        login(&app, "ALICE123", &alice, None, server).await.is_err(),
        "revoked identity"
    );
}

#[tokio::test]
async fn an_oversized_websocket_message_closes_the_connection() {
    let app = spawn_app().await;
    let alice = app.identity("ALICE123", None, None).await;
    let mut device = Device::connect(&app, "ALICE123", &alice, None).await;
    device.drain_queue().await;
    device
        .ws
        .send(Message::Binary(vec![0u8; 9000].into()))
        .await
        .unwrap();
    assert!(
        next_binary(&mut device.ws).await.is_none(),
        "the server closes instead of answering"
    );
    let mut garbage = raw(&app).await;
    garbage
        .send(Message::Binary(vec![1u8; 47].into()))
        .await
        .unwrap();
    assert!(
        next_binary(&mut garbage).await.is_none(),
        "a malformed client-hello is refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_stops_reading_does_not_hold_up_another() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::Basic, 10).await;
    let alice = app.identity("ALICE123", None, None).await;
    let bob = app.identity("BOB45678", None, None).await;
    let mut stuck = Device::connect(&app, "ALICE123", &alice, None).await;
    stuck.drain_queue().await;
    let mut fine = Device::connect(&app, "BOB45678", &bob, None).await;
    fine.drain_queue().await;
    // Far more than the socket and the session's bounded send channel can hold.
    for _ in 0..400 {
        let m = tocsin::store::NewMessage {
            message_id: MessageId::random(),
            sender: IdentityId::parse("CAROL123").unwrap(),
            recipient: stuck.id,
            flags: MessageFlags::PUSH,
            nonce: Nonce::random(),
            body: vec![7; 4000],
            expires_at: UnixMs::MAX,
        };
        app.state
            .store
            .enqueue_direct(&m, UnixMs::new(0))
            .await
            .unwrap();
    }
    app.state.hub.wake(&stuck.id);
    let id = send_simple(&app, &gw, "BOB45678", "still+here").await;
    let got = fine.incoming().await;
    // Served while the stuck session still holds on, not once the server gave up on it.
    assert!(
        app.state.hub.is_online(&stuck.id),
        "the stuck device is still connected"
    );
    assert_eq!(got.message_id, id);
    assert_eq!(text_of(&got, &bob, &gw.keys.public), "still here");
    drop(stuck);
}

async fn status(app: &TestApp, gw: &TestGateway, id: &MessageId) -> (u16, serde_json::Value) {
    let res = app
        .client
        .get(app.url(&format!("/api/v1/messages/{id}?{}", gw.credentials())))
        .send()
        .await
        .unwrap();
    let code = res.status().as_u16();
    (code, res.json().await.unwrap_or(serde_json::Value::Null))
}

pub(super) fn receipt(
    from: &Device,
    keys: &KeyPair,
    to: &TestGateway,
    status: ReceiptStatus,
    ids: Vec<MessageId>,
) -> Payload {
    let nonce = Nonce::random();
    let body = E2eMessage::DeliveryReceipt {
        status,
        message_ids: ids,
    }
    .to_padded();
    Payload::OutgoingMessage(MessageEnvelope {
        sender: from.id,
        receiver: *to.id.as_identity(),
        message_id: MessageId::random(),
        created_at: 1_700_000_000,
        flags: MessageFlags::default(),
        nickname: None,
        nonce,
        sealed: SharedKey::new(&keys.secret, &to.keys.public)
            .unwrap()
            .seal(&nonce, &body),
    })
}

#[tokio::test]
async fn senders_see_queued_delivered_read_and_acknowledged_and_nobody_else_does() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::Basic, 10).await;
    let other = app.gateway(GatewayMode::Basic, 10).await;
    let alice = app.identity("ALICE123", None, None).await;
    let id = send_simple(&app, &gw, "ALICE123", "hello").await;
    let (code, body) = status(&app, &gw, &id).await;
    assert_eq!((code, body["state"].as_str()), (200, Some("queued")));
    assert_eq!(body["recipient"], "ALICE123");
    assert!(body["queuedAt"].is_i64() && body.get("deliveredAt").is_none());
    assert_eq!(
        status(&app, &other, &id).await.0,
        404,
        "another gateway ID learns nothing"
    );
    assert_eq!(status(&app, &gw, &MessageId::random()).await.0, 404);

    let mut device = Device::connect(&app, "ALICE123", &alice, None).await;
    let m = device.drain_queue().await.remove(0);
    device.ack(&m).await;
    device
        .send(&receipt(
            &device,
            &alice,
            &gw,
            ReceiptStatus::Read,
            vec![id],
        ))
        .await;
    assert!(matches!(
        device.recv().await,
        Some(Payload::ServerAck { .. })
    ));
    let (_, body) = status(&app, &gw, &id).await;
    assert_eq!(body["state"], "read");
    assert!(body["deliveredAt"].is_i64() && body["readAt"].is_i64());
    device
        .send(&receipt(
            &device,
            &alice,
            &gw,
            ReceiptStatus::Acknowledged,
            vec![id],
        ))
        .await;
    device.recv().await;
    assert_eq!(status(&app, &gw, &id).await.1["state"], "acknowledged");
    // A receipt naming a message this gateway never sent to Alice changes nothing.
    let foreign = send_simple(&app, &other, "ALICE123", "x").await;
    device
        .send(&receipt(
            &device,
            &alice,
            &gw,
            ReceiptStatus::Declined,
            vec![foreign],
        ))
        .await;
    device.recv().await;
    assert_eq!(status(&app, &other, &foreign).await.1["state"], "queued");
    assert!(
        app.state
            .store
            .callbacks_for(&gw.id)
            .await
            .unwrap()
            .is_empty(),
        "basic mode has no callback"
    );
}

#[tokio::test]
async fn an_undelivered_message_shows_expired() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::Basic, 10).await;
    app.identity("ALICE123", None, None).await;
    let id = send_simple(&app, &gw, "ALICE123", "too+late").await;
    app.state.store.expire_messages(UnixMs::MAX).await.unwrap();
    let (_, body) = status(&app, &gw, &id).await;
    assert_eq!(body["state"], "expired");
    assert!(body["expiredAt"].is_i64());
    assert_eq!(depth(&app).await, 0);
}

async fn upload(
    app: &TestApp,
    gw: &TestGateway,
    persist: bool,
    data: &[u8],
) -> tocsin_sdk::protocol::BlobId {
    let form = reqwest::multipart::Form::new()
        .part("blob", reqwest::multipart::Part::bytes(data.to_vec()));
    let persist = if persist { "&persist=1" } else { "" };
    let res = app
        .client
        .post(app.url(&format!("/upload_blob?{}{persist}", gw.credentials())))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    tocsin_sdk::protocol::BlobId::parse(&res.text().await.unwrap()).unwrap()
}

async fn device_get(app: &TestApp, id: &tocsin_sdk::protocol::BlobId) -> (u16, Vec<u8>) {
    let res = app
        .client
        .get(app.url(&format!("/api/v1/blobs/{id}")))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.bytes().await.unwrap().to_vec())
}

async fn done(device: &mut Device, id: &tocsin_sdk::protocol::BlobId) {
    device
        .send(&Payload::Unknown {
            kind: Payload::BLOB_DONE,
            data: id.as_bytes().to_vec(),
        })
        .await;
    // The echo round trip orders after the done mark on the same connection.
    device.send(&Payload::EchoRequest(vec![])).await;
    assert_eq!(device.recv().await, Some(Payload::EchoResponse(vec![])));
}

#[tokio::test]
async fn a_blob_without_persist_is_removed_once_every_device_is_done_and_persistent_ones_stay() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    let alice = app.identity("ALICE123", None, None).await;
    let mut phone = Device::connect(&app, "ALICE123", &alice, Some(1)).await;
    let mut laptop = Device::connect(&app, "ALICE123", &alice, Some(2)).await;
    phone.drain_queue().await;
    laptop.drain_queue().await;
    let once = upload(&app, &gw, false, b"sealed file bytes").await;
    let kept = upload(&app, &gw, true, b"for many recipients").await;
    assert_eq!(
        device_get(&app, &once).await,
        (200, b"sealed file bytes".to_vec())
    );
    done(&mut phone, &once).await;
    assert_eq!(
        device_get(&app, &once).await.0,
        200,
        "the laptop is not done yet"
    );
    done(&mut laptop, &once).await;
    assert_eq!(device_get(&app, &once).await.0, 404);
    let path = app
        .state
        .settings
        .storage
        .data_dir
        .join("blobs")
        .join(&once.to_string()[..2])
        .join(once.to_string());
    assert!(!path.exists(), "the bytes are gone too");
    done(&mut phone, &kept).await;
    done(&mut laptop, &kept).await;
    assert_eq!(device_get(&app, &kept).await.0, 200, "persist keeps it");
}

#[tokio::test]
async fn housekeeping_expires_blobs_and_messages_by_ttl() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::Basic, 10).await;
    app.identity("ALICE123", None, None).await;
    let blob = upload(&app, &gw, true, b"old").await;
    send_simple(&app, &gw, "ALICE123", "old").await;
    let now = UnixMs::now();
    tocsin::housekeeping::housekeeping(&app.state, now).await;
    assert_eq!(device_get(&app, &blob).await.0, 200);
    assert_eq!(depth(&app).await, 1);
    let ttl = 14 * 24 * 3600 * 1000;
    tocsin::housekeeping::housekeeping(&app.state, now.plus_ms(ttl + 1000)).await;
    assert_eq!(device_get(&app, &blob).await.0, 404);
    assert_eq!(depth(&app).await, 0);
    let tmp_and_shards =
        std::fs::read_dir(app.state.settings.storage.data_dir.join("blobs")).unwrap();
    let files: usize = tmp_and_shards
        .map(|d| std::fs::read_dir(d.unwrap().path()).unwrap().count())
        .sum();
    assert_eq!(files, 0, "no blob file left on disk");
}
