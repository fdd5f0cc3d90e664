//! The way round: a device replies to an end-to-end gateway ID and receipts its alert;
//! the server's own dispatcher (woken when each is stored) POSTs both to a receiver built on
//! `CallbackReceiver`, which checks them, fetches the sender's key from the gateway and
//! opens them. A receiver with the wrong secret answers 401, and the entry stays for a
//! retry.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::{web, App, HttpResponse, HttpServer};
use tocsin_sdk::client::{Client, E2eClient};
use tocsin_sdk::device::{Admission, Connection, DeviceKeys, Event};
use tocsin_sdk::protocol::{ApiSecret, E2eMessage, MessageId, ReceiptStatus, SecretKey};
use tocsin_sdk::receive::{CallbackReceiver, IncomingCallback};
use tokio::sync::mpsc;

use crate::helpers::wait::{until, PATIENCE};
use crate::helpers::{gateway_client, loopback_allowed, spawn_app_with, TestApp, TestGateway};

/// What the test receiver got: the checked callback and the message inside.
type Taken = (IncomingCallback, E2eMessage);

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A receiver on 127.0.0.1: checks with `receiver`, fetches keys with `client`, opens
/// with `secret_key`; reports what it took and counts the statuses it answered.
async fn serve(
    receiver: CallbackReceiver,
    client: Client,
    secret_key: SecretKey,
) -> (
    SocketAddr,
    mpsc::UnboundedReceiver<Taken>,
    Arc<Mutex<Vec<u16>>>,
) {
    let (taken, got) = mpsc::unbounded_channel();
    let statuses = Arc::new(Mutex::new(Vec::new()));
    let shared = Arc::new((receiver, client, secret_key, taken, statuses.clone()));
    let server = HttpServer::new(move || {
        let shared = shared.clone();
        App::new().default_service(web::to(move |body: web::Bytes| {
            let shared = shared.clone();
            async move {
                let (receiver, client, secret_key, taken, statuses) = &*shared;
                let status = match receiver.receive(&body, unix_now()) {
                    Err(refused) => refused.status(),
                    Ok(incoming) => {
                        let key = client.pubkey(&incoming.from).await.unwrap().unwrap();
                        let message = incoming.open(secret_key, &key).unwrap();
                        taken.send((incoming, message)).unwrap();
                        200
                    }
                };
                statuses.lock().unwrap().push(status);
                HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).finish()
            }
        }))
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .unwrap();
    let addr = server.addrs()[0];
    tokio::spawn(server.run());
    (addr, got, statuses)
}

/// The next message on a device connection.
async fn next_message(connection: &mut Connection) -> tocsin_sdk::device::Received {
    loop {
        let event = tokio::time::timeout(PATIENCE, connection.next_event())
            .await
            .expect("an event in time")
            .unwrap();
        if let Event::Message(received) = event {
            return *received;
        }
    }
}

/// An end-to-end gateway ID whose callbacks go to a receiver (see [`serve`]) at `path`
/// that knows the right secret and key.
async fn gateway_with_receiver(
    app: &TestApp,
    path: &str,
) -> (
    TestGateway,
    mpsc::UnboundedReceiver<Taken>,
    Arc<Mutex<Vec<u16>>>,
) {
    let gw = app.gateway(tocsin::store::GatewayMode::E2e, 10).await;
    let receiver = CallbackReceiver::new(gw.id, ApiSecret::parse(&gw.secret).unwrap());
    let (addr, got, statuses) =
        serve(receiver, gateway_client(app, &gw), gw.keys.secret.clone()).await;
    let url = format!("http://{addr}{path}");
    app.state
        .store
        .set_callback_url(&gw.id, Some(&url))
        .await
        .unwrap();
    (gw, got, statuses)
}

#[tokio::test]
async fn a_device_reply_and_receipt_reach_the_receiver_authentic_and_readable() {
    let app = spawn_app_with(&loopback_allowed()).await;
    let (gw, mut got, statuses) = gateway_with_receiver(&app, "/tocsin/callback").await;

    // The gateway alerts a device; the device reads it, replies and acknowledges it.
    let keys = DeviceKeys::init(&app.url(""), Admission::Open, None)
        .await
        .unwrap();
    let alerts = E2eClient::new(gateway_client(&app, &gw), gw.keys.secret.clone());
    let alert = alerts
        .send_text(&keys.identity, "Disk full on db-1")
        .await
        .unwrap();
    let mut device = Connection::connect(&keys, &keys.directory().unwrap())
        .await
        .unwrap();
    let received = next_message(&mut device).await;
    assert_eq!(received.message_id, alert);
    device.ack(&received).await.unwrap();
    let gateway = *gw.id.as_identity();
    let reply = device.send_text(&gateway, "on it").await.unwrap();
    let receipt = device
        .send_receipt(&gateway, ReceiptStatus::Acknowledged, &[alert])
        .await
        .unwrap();

    let mut taken: HashMap<MessageId, Taken> = HashMap::new();
    while taken.len() < 2 {
        let next = tokio::time::timeout(PATIENCE, got.recv())
            .await
            .expect("the dispatcher delivers both in time")
            .unwrap();
        taken.insert(next.0.message_id, next);
    }
    let (callback, message) = &taken[&reply];
    assert_eq!(*message, E2eMessage::Text("on it".into()));
    assert_eq!(callback.from, keys.identity);
    assert_eq!(callback.to, gw.id);
    assert!(callback.date.abs_diff(unix_now()) < 60, "{}", callback.date);
    let (callback, message) = &taken[&receipt];
    assert_eq!(callback.from, keys.identity);
    assert_eq!(
        *message,
        E2eMessage::DeliveryReceipt {
            status: ReceiptStatus::Acknowledged,
            message_ids: vec![alert],
        }
    );
    app.until_outbox_empty(&gw).await;
    assert_eq!(*statuses.lock().unwrap(), [200, 200], "each delivered once");
    device.close().await;
}

/// With the sweep an hour apart, only the wake-up on commit can bring the reply over.
#[tokio::test]
async fn a_reply_is_dispatched_when_it_is_stored_not_at_the_next_sweep() {
    let mut settings = loopback_allowed();
    settings.push(("TOCSIN__CALLBACKS__SWEEP_SECS", "3600".into()));
    let app = spawn_app_with(&settings).await;
    let (gw, mut got, _) = gateway_with_receiver(&app, "/").await;
    let keys = DeviceKeys::init(&app.url(""), Admission::Open, None)
        .await
        .unwrap();
    let mut device = Connection::connect(&keys, &keys.directory().unwrap())
        .await
        .unwrap();
    for text in ["first", "second"] {
        let reply = device.send_text(gw.id.as_identity(), text).await.unwrap();
        let (callback, message) = tokio::time::timeout(PATIENCE, got.recv())
            .await
            .expect("dispatched on the wake-up, long before the sweep")
            .unwrap();
        assert_eq!(callback.message_id, reply);
        assert_eq!(message, E2eMessage::Text(text.into()));
    }
    device.close().await;
}

#[tokio::test]
async fn a_receiver_with_another_secret_answers_401_and_the_callback_waits_for_a_retry() {
    let app = spawn_app_with(&loopback_allowed()).await;
    let gw = app.gateway(tocsin::store::GatewayMode::E2e, 10).await;
    let wrong = ApiSecret::parse("NotTheRightSecret1").unwrap();
    let (addr, mut got, statuses) = serve(
        CallbackReceiver::new(gw.id, wrong),
        gateway_client(&app, &gw),
        gw.keys.secret.clone(),
    )
    .await;
    let url = format!("http://{addr}/");
    app.state
        .store
        .set_callback_url(&gw.id, Some(&url))
        .await
        .unwrap();
    let keys = DeviceKeys::init(&app.url(""), Admission::Open, None)
        .await
        .unwrap();
    let mut device = Connection::connect(&keys, &keys.directory().unwrap())
        .await
        .unwrap();
    let reply = device
        .send_text(gw.id.as_identity(), "anyone there?")
        .await
        .unwrap();
    until("the receiver refused it", || async {
        statuses.lock().unwrap().contains(&401)
    })
    .await;
    assert!(got.try_recv().is_err(), "nothing was taken");
    assert_eq!(
        app.state.store.callbacks_for(&gw.id).await.unwrap(),
        [(keys.identity, reply)],
        "kept for a retry"
    );
    device.close().await;
}
