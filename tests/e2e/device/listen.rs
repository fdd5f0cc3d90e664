//! The listener: a gateway alert arrives live and decrypted and is acked away; its
//! automatic receipt reaches the gateway; a redelivered message is shown once; a locally
//! pinned key wins over the directory.

use tocsin::domain::UnixMs;
use tocsin::store::GatewayMode;
use tocsin_sdk::client::{E2eClient, Recipient};
use tocsin_sdk::crypto::SharedKey;
use tocsin_sdk::device::{Connection, Event, ListenEnd, Notice, SeenStore};
use tocsin_sdk::protocol::{E2eMessage, KeyPair, MessageFlags, ReceiptStatus};

use super::{
    depth, directory_with, enrol, gateway_client, send_simple, until, Listening, PATIENCE,
};
use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn a_basic_mode_alert_arrives_at_once_decrypted_and_is_acked_away() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::Basic, 10).await;
    let keys = enrol(&app).await;
    // Nothing pinned: the gateway ID's key comes from the open directory.
    let mut device = Listening::caught_up(&keys).await;

    let id = send_simple(&app, &gw, keys.identity, "Server down").await;
    let received = device.message().await;
    assert_eq!(received.sender, *gw.id.as_identity());
    assert_eq!(received.message_id, id);
    assert_eq!(received.message, E2eMessage::Text("Server down".into()));
    assert!(received.flags.has(MessageFlags::PUSH));
    assert!(!received.flags.has(MessageFlags::NO_RECEIPTS));
    // At once: on SQLite the commit hands the message to the session's inbox, where the
    // periodic re-check would have read it from the store. On PostgreSQL the session reads
    // the store either way, woken by the commit.
    let handed_over = if on_sqlite(&app) { (1, 0) } else { (0, 1) };
    assert_eq!(
        deliveries(&app),
        handed_over,
        "(from the inbox, from the store)"
    );

    until("the ack removed the message", || async {
        depth(&app).await == 0
    })
    .await;
    let gateway = *gw.id.as_identity();
    let events = app.state.store.message_events(&gateway, &id).await.unwrap();
    assert!(
        events
            .iter()
            .any(|(event, _)| *event == tocsin::domain::MessageStatus::Delivered),
        "{events:?}"
    );
    assert_eq!(device.stop().await, ListenEnd::Stopped);
}

/// A one-time password sent with a TTL reaches the listener with its expiry.
#[tokio::test]
async fn a_message_with_a_ttl_arrives_with_its_expiry() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::Basic, 10).await;
    let keys = enrol(&app).await;
    let mut device = Listening::caught_up(&keys).await;
    let form = format!(
        "{}&to={}&text=Your+code+is+482913&ttl=300",
        gw.credentials(),
        keys.identity
    );
    assert_eq!(app.post_form("/send_simple", form).await.0, 200);
    let received = device.message().await;
    let queued = app
        .state
        .store
        .message_status(gw.id.as_identity(), &received.message_id);
    let (_, _, queued_at) = queued.await.unwrap()[0];
    let expected = queued_at.plus_ms(300_000).as_secs();
    assert_eq!(received.expires_at.map(i64::from), Some(expected));
    // One without a TTL of its own carries none.
    let id = send_simple(&app, &gw, keys.identity, "plain").await;
    let plain = device.message().await;
    assert_eq!((plain.message_id, plain.expires_at), (id, None));
    assert_eq!(device.stop().await, ListenEnd::Stopped);
}

/// Messages the sessions of `app` have sent devices, taken from the hub's inboxes and
/// read from the store.
fn deliveries(app: &crate::helpers::TestApp) -> (u64, u64) {
    let count = |source| {
        app.state
            .metrics
            .chat_deliveries
            .with_label_values(&[source])
            .get()
    };
    (count("inbox"), count("store"))
}

fn on_sqlite(app: &crate::helpers::TestApp) -> bool {
    app.state.store.backend() == tocsin::store::Backend::Sqlite
}

/// A connected device that has caught up is handed new messages from the hub, not from
/// the store. With an inbox of one message, two bursts of 150 alerts overflow it again and
/// again; they still arrive complete, once each, and the first burst before the second.
/// (On PostgreSQL, where other nodes queue messages too, sessions read the store.)
#[tokio::test]
async fn bursts_larger_than_the_sessions_inbox_arrive_complete_and_in_order() {
    const BURST: usize = 150;
    let app = spawn_app_with(&[("TOCSIN__CHAT__INBOX_MESSAGES", "1".into())]).await;
    let gw = app.gateway(GatewayMode::Basic, 1_000).await;
    let keys = enrol(&app).await;
    let mut device = Listening::start(
        keys.clone(),
        keys.directory().unwrap(),
        SeenStore::in_memory(1_000),
    );
    assert_eq!(device.next().await, Notice::Connected);
    assert_eq!(device.next().await, Notice::QueueComplete);
    let client = gateway_client(&app, &gw);
    let to = Recipient::Id(keys.identity);
    let mut sent = Vec::new();
    for burst in 0..2 {
        let texts: Vec<String> = (0..BURST).map(|i| format!("{burst}:{i}")).collect();
        let ids =
            futures_util::future::join_all(texts.iter().map(|t| client.send_simple(&to, t))).await;
        sent.extend(ids.into_iter().map(Result::unwrap));
    }
    let mut bursts = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..2 * BURST {
        let received = device.message().await;
        assert!(seen.insert(received.message_id), "delivered twice");
        let E2eMessage::Text(text) = received.message else {
            panic!("not a text: {:?}", received.message)
        };
        bursts.push(text.split(':').next().unwrap().to_owned());
    }
    assert!(
        bursts.windows(2).all(|w| w[0] <= w[1]),
        "the bursts interleaved"
    );
    assert_eq!(seen, sent.into_iter().collect());
    until("every message acked away", || async {
        depth(&app).await == 0
    })
    .await;
    assert_eq!(device.stop().await, ListenEnd::Stopped);
}

#[tokio::test]
async fn the_automatic_receipt_reaches_an_end_to_end_gateway_sealed_for_its_key() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    app.takes_replies(&gw).await;
    let keys = enrol(&app).await;
    let alerts = E2eClient::new(gateway_client(&app, &gw), gw.keys.secret.clone());
    let id = alerts
        .send_text(&keys.identity, "Backup failed")
        .await
        .unwrap();
    let mut device = Listening::start(
        keys.clone(),
        keys.directory().unwrap(),
        SeenStore::in_memory(100),
    );
    let received = device.message().await;
    assert_eq!(received.message, E2eMessage::Text("Backup failed".into()));
    until("the ack removed the message", || async {
        depth(&app).await == 0
    })
    .await;

    // The receipt went out before the ack, into the gateway ID's callback outbox.
    let outbox = app.state.store.callbacks_for(&gw.id).await.unwrap();
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].0, keys.identity);
    // Read it back as the gateway will: a far-future clock makes the entry due even if
    // the dispatcher holds a lease on it.
    let claimed = app
        .state
        .store
        .claim_callbacks(UnixMs::new(i64::MAX / 2), 1, 10)
        .await
        .unwrap();
    let entry = &claimed[0].entry;
    let plain = SharedKey::new(&gw.keys.secret, &keys.public_key())
        .unwrap()
        .open(&entry.nonce, &entry.body)
        .unwrap();
    assert_eq!(
        E2eMessage::from_padded(&plain).unwrap(),
        E2eMessage::DeliveryReceipt {
            status: ReceiptStatus::Received,
            message_ids: vec![id],
        }
    );
    device.stop().await;
}

#[tokio::test]
async fn a_message_delivered_again_after_a_lost_ack_is_shown_once_and_acked() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::Basic, 10).await;
    let keys = enrol(&app).await;
    let directory = directory_with(&keys, &gw);
    let dir = tempfile::tempdir().unwrap();
    let seen_path = dir.path().join("device.seen");

    // First session: the message is handled (recorded as seen), then the connection
    // drops before the ack goes out.
    let id = send_simple(&app, &gw, keys.identity, "Disk full").await;
    let mut connection = Connection::connect(&keys, &directory).await.unwrap();
    let first = tokio::time::timeout(PATIENCE, connection.next_event())
        .await
        .unwrap()
        .unwrap();
    let Event::Message(received) = first else {
        panic!("expected the message, got {first:?}");
    };
    assert_eq!(received.message_id, id);
    let mut seen = SeenStore::open(&seen_path, 100).unwrap();
    assert!(seen.insert(&received).unwrap());
    drop(seen);
    drop(connection);
    assert_eq!(depth(&app).await, 1, "not acked: still queued");

    // Second session: the same message comes again; it is acked but not shown.
    let seen = SeenStore::open(&seen_path, 100).unwrap();
    let mut device = Listening::start(keys.clone(), directory, seen);
    assert_eq!(device.next().await, Notice::Connected);
    assert_eq!(
        device.next().await,
        Notice::Duplicate {
            sender: *gw.id.as_identity(),
            message_id: id
        }
    );
    assert_eq!(device.next().await, Notice::QueueComplete);
    until("the duplicate was acked", || async {
        depth(&app).await == 0
    })
    .await;

    // New messages are still shown.
    let next = send_simple(&app, &gw, keys.identity, "Disk fine").await;
    assert_eq!(device.message().await.message_id, next);
    assert_eq!(device.stop().await, ListenEnd::Stopped);
    let reopened = SeenStore::open(&seen_path, 100).unwrap();
    assert_eq!(reopened.len(), 2, "both messages are on file");
}

#[tokio::test]
async fn a_pinned_key_wins_over_the_directory_and_a_message_it_cannot_open_is_dropped() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    app.takes_replies(&gw).await;
    let keys = enrol(&app).await;
    let alerts = E2eClient::new(gateway_client(&app, &gw), gw.keys.secret.clone());
    let id = alerts.send_text(&keys.identity, "who am I").await.unwrap();

    // The device pinned another key for the gateway ID than the server has.
    let mut directory = keys.directory().unwrap();
    directory.pin(*gw.id.as_identity(), KeyPair::generate().public);
    let mut device = Listening::start(keys.clone(), directory, SeenStore::in_memory(100));
    let notice = device
        .next_where(|n| matches!(n, Notice::Rejected(_)))
        .await;
    let Notice::Rejected(rejected) = notice else {
        unreachable!()
    };
    assert_eq!(
        (rejected.sender, rejected.message_id),
        (*gw.id.as_identity(), id)
    );
    assert!(!rejected.retryable, "{}", rejected.reason);
    assert_eq!(device.next().await, Notice::QueueComplete);
    until("the unreadable message was acked away", || async {
        depth(&app).await == 0
    })
    .await;
    assert!(
        app.state
            .store
            .callbacks_for(&gw.id)
            .await
            .unwrap()
            .is_empty(),
        "no receipt for a message that was not read"
    );
    device.stop().await;
}
