//! Sending from a device: texts and receipts between two devices, automatic receipts
//! withheld for `NO_RECEIPTS`, and replies and receipts to an end-to-end gateway ID,
//! which wait in its callback outbox.

use tocsin::store::GatewayMode;
use tocsin_sdk::client::{E2eClient, E2eSend};
use tocsin_sdk::device::{Connection, DeviceError, Event, Received, SeenStore};
use tocsin_sdk::protocol::{E2eMessage, MessageFlags, MessageId, ReceiptStatus};

use super::{depth, directory_with, enrol, gateway_client, until, Listening, PATIENCE};
use crate::helpers::spawn_app;

/// The next event of `connection`, which must be a message.
async fn next_message(connection: &mut Connection) -> Received {
    let event = tokio::time::timeout(PATIENCE, connection.next_event())
        .await
        .expect("an event in time")
        .unwrap();
    match event {
        Event::Message(received) => *received,
        other => panic!("expected a message, got {other:?}"),
    }
}

fn receipt(status: ReceiptStatus, ids: &[MessageId]) -> E2eMessage {
    E2eMessage::DeliveryReceipt {
        status,
        message_ids: ids.to_vec(),
    }
}

#[tokio::test]
async fn devices_exchange_texts_and_receipts_and_no_receipt_answers_no_receipts() {
    let app = spawn_app().await;
    let (alice_keys, bob_keys) = (enrol(&app).await, enrol(&app).await);
    let bob = bob_keys.identity;
    let mut alice = Connection::connect(&alice_keys, &alice_keys.directory().unwrap())
        .await
        .unwrap();
    let mut bob_device = Listening::start(
        bob_keys.clone(),
        bob_keys.directory().unwrap(),
        SeenStore::in_memory(100),
    );

    let hello = alice.send_text(&bob, "hi bob").await.unwrap();
    let got = bob_device.message().await;
    assert_eq!((got.sender, got.message_id), (alice_keys.identity, hello));
    assert_eq!(got.message, E2eMessage::Text("hi bob".into()));
    assert!(got.flags.has(MessageFlags::PUSH));
    assert_eq!(alice.next_event().await.unwrap(), Event::QueueComplete);
    let automatic = next_message(&mut alice).await;
    assert_eq!(automatic.sender, bob);
    assert_eq!(
        automatic.message,
        receipt(ReceiptStatus::Received, &[hello])
    );
    assert!(
        !automatic.flags.has(MessageFlags::PUSH),
        "receipts do not push"
    );
    alice.ack(&automatic).await.unwrap();

    // A message flagged NO_RECEIPTS gets none; the next one does, so the first receipt
    // alice sees is about the second message.
    let quiet_flags = MessageFlags(MessageFlags::PUSH | MessageFlags::NO_RECEIPTS);
    let quiet = alice
        .send(&bob, &E2eMessage::Text("quiet".into()), quiet_flags)
        .await
        .unwrap();
    let loud = alice.send_text(&bob, "loud").await.unwrap();
    assert_eq!(bob_device.message().await.message_id, quiet);
    assert_eq!(bob_device.message().await.message_id, loud);
    let automatic = next_message(&mut alice).await;
    assert_eq!(automatic.message, receipt(ReceiptStatus::Received, &[loud]));
    alice.ack(&automatic).await.unwrap();
    // The listener acks after its receipt is through; stopping it sooner would leave
    // "loud" queued for its next login (by design), so wait for the acks to land.
    until("bob's listener acked both", || async {
        depth(&app).await == 0
    })
    .await;
    bob_device.stop().await;

    // An explicit receipt from bob's own connection.
    let mut bob_connection = Connection::connect(&bob_keys, &bob_keys.directory().unwrap())
        .await
        .unwrap();
    let read = bob_connection
        .send_receipt(&alice_keys.identity, ReceiptStatus::Read, &[hello, loud])
        .await
        .unwrap();
    let explicit = next_message(&mut alice).await;
    assert_eq!(explicit.message_id, read);
    assert_eq!(
        explicit.message,
        receipt(ReceiptStatus::Read, &[hello, loud])
    );
    alice.ack(&explicit).await.unwrap();
    alice.round_trip().await.unwrap();
    assert_eq!(depth(&app).await, 0, "every message was acked");
    assert!(matches!(
        bob_connection.send_text(&alice_keys.identity, "").await,
        Err(DeviceError::Invalid(_))
    ));
}

#[tokio::test]
async fn a_reply_to_a_gateway_id_is_sealed_for_its_key_and_lands_in_its_outbox() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    app.takes_replies(&gw).await;
    let gateway = *gw.id.as_identity();
    let keys = enrol(&app).await;

    // The gateway ID's key comes from the open directory; an unknown ID has none.
    let mut device = Connection::connect(&keys, &keys.directory().unwrap())
        .await
        .unwrap();
    let id = device.send_text(&gateway, "ack, on it").await.unwrap();
    let outbox = app.state.store.callbacks_for(&gw.id).await.unwrap();
    assert_eq!(
        outbox,
        [(keys.identity, id)],
        "stored before the server ack"
    );
    let nobody = "*NOSUCH1".parse().unwrap();
    let err = device.send_text(&nobody, "hello?").await.unwrap_err();
    assert!(
        matches!(err, DeviceError::UnknownKey(id) if id == nobody),
        "{err}"
    );

    // Alerts from an end-to-end gateway: one that forbids receipts gets none.
    let e2e = E2eClient::new(gateway_client(&app, &gw), gw.keys.secret.clone());
    let mut quiet = {
        let (nonce, sealed) = e2e
            .seal(&keys.public_key(), &E2eMessage::Text("fyi".into()))
            .unwrap();
        E2eSend::new(keys.identity, nonce, sealed)
    };
    quiet.no_delivery_receipts = true;
    let quiet_id = e2e.client().send_e2e(&quiet).await.unwrap();
    let loud_id = e2e.send_text(&keys.identity, "act now").await.unwrap();
    device.close().await;
    let mut listening = Listening::start(
        keys.clone(),
        directory_with(&keys, &gw),
        SeenStore::in_memory(100),
    );
    let first = listening.message().await;
    assert_eq!(first.message_id, quiet_id);
    assert!(first.flags.has(MessageFlags::NO_RECEIPTS));
    assert_eq!(listening.message().await.message_id, loud_id);
    until("both alerts were acked", || async {
        depth(&app).await == 0
    })
    .await;
    let outbox = app.state.store.callbacks_for(&gw.id).await.unwrap();
    assert_eq!(outbox.len(), 2, "the reply and one receipt: {outbox:?}");
    listening.stop().await;
}

/// Whatever commits a message wakes its recipient's sessions: the store's writer does, once
/// the commit is durable, not the request that asked for it (which may be gone by then).
/// The message is submitted to the store directly, past every HTTP handler, and the
/// sessions' periodic look at the store is an hour away.
#[tokio::test]
async fn a_message_committed_without_any_request_still_wakes_its_device() {
    use tocsin::domain::{Credits, LedgerReason, UnixMs};
    use tocsin::store::{Charge, NewMessage, Submission};

    let app =
        crate::helpers::spawn_app_with(&[("TOCSIN__CHAT__RECHECK_SECS", "3600".into())]).await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    let keys = enrol(&app).await;
    let mut device = Connection::connect(&keys, &directory_with(&keys, &gw))
        .await
        .unwrap();
    let first = tokio::time::timeout(PATIENCE, device.next_event()).await;
    assert_eq!(first.unwrap().unwrap(), Event::QueueComplete);
    let id = MessageId::random();
    let now = UnixMs::now();
    let submission = Submission {
        gateway: gw.id,
        charge: Charge {
            account: gw.account,
            amount: Credits::new(1),
            reason: LedgerReason::SendE2e,
        },
        idempotency_keys: Vec::new(),
        message: NewMessage {
            message_id: id,
            sender: *gw.id.as_identity(),
            recipient: keys.identity,
            flags: 0,
            nonce: tocsin_sdk::protocol::Nonce::random(),
            body: vec![7; 64],
            expires_at: now.plus(std::time::Duration::from_secs(600)),
        },
    };
    app.state.store.submit(&submission, now).await.unwrap();
    loop {
        let event = tokio::time::timeout(PATIENCE, device.next_event())
            .await
            .expect("woken by the writer, long before the hourly look")
            .unwrap();
        match event {
            Event::Message(received) => {
                assert_eq!(received.message_id, id);
                break;
            }
            Event::Rejected(rejected) => {
                assert_eq!(rejected.message_id, id, "{rejected:?}");
                break;
            }
            _ => {}
        }
    }
    device.close().await;
}
