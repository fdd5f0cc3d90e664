//! Several nodes on one PostgreSQL database: what one node commits wakes the sessions and
//! the callback dispatcher of another at once (LISTEN/NOTIFY), also after the listening
//! connection was killed; nodes take the roles they are given; two dispatchers post each
//! callback once. The periodic re-checks are set to an hour where it matters, so only a
//! wake-up can bring a message within the test's patience.

use std::collections::BTreeSet;

use tocsin::domain::{MessageStatus, UnixMs};
use tocsin::store::{GatewayMode, NewMessage};
use tocsin_sdk::device::{Connection, Event};
use tocsin_sdk::protocol::{IdentityId, MessageId, Nonce};

use super::{enrol, send_simple, until, PATIENCE};
use crate::callback_receiver::proxy::answering_receiver;
use crate::helpers::{loopback_allowed, spawn_app_with, Engine, TestApp, TestGateway};

/// Settings of both nodes: no periodic look at the store within any test's time.
fn no_recheck() -> Vec<(&'static str, String)> {
    vec![("TOCSIN__CHAT__RECHECK_SECS", "3600".into())]
}

async fn next_text(connection: &mut Connection) -> String {
    loop {
        let event = tokio::time::timeout(PATIENCE, connection.next_event())
            .await
            .expect("a message within the patience, long before the hourly re-check")
            .unwrap();
        if let Event::Message(received) = event {
            connection.ack(&received).await.unwrap();
            if let tocsin_sdk::protocol::E2eMessage::Text(text) = received.message {
                return text;
            }
        }
    }
}

/// Two nodes on one database, without periodic looks at the store, both listening.
async fn two_quiet_nodes() -> (TestApp, TestApp) {
    Engine::require_postgres("several nodes on one database");
    let a = spawn_app_with(&no_recheck()).await;
    let b = a.spawn_beside(&no_recheck()).await;
    listening(&[&a, &b]).await;
    (a, b)
}

/// Waits until every one of `nodes` listens to the others.
async fn listening(nodes: &[&TestApp]) {
    for node in nodes {
        until("the node listens to the others", || async {
            node.metric("tocsin_cluster_listening").await == Some(1.0)
        })
        .await;
    }
}

/// Kills this node's listening connection on the database server.
async fn kill_listeners(app: &TestApp) -> u64 {
    let url = app.state.settings.database_url();
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let killed: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN %' AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    killed.len() as u64
}

#[tokio::test]
async fn a_device_on_one_node_gets_at_once_what_another_node_accepted_on_postgres_only() {
    let (a, b) = two_quiet_nodes().await;
    let gw = b.gateway(GatewayMode::Basic, 10).await;
    let keys = enrol(&a).await;
    let mut device = Connection::connect(&keys, &keys.directory().unwrap())
        .await
        .unwrap();
    let first = tokio::time::timeout(PATIENCE, device.next_event()).await;
    assert_eq!(first.unwrap().unwrap(), Event::QueueComplete);

    send_simple(&b, &gw, keys.identity, "through the other node").await;
    assert_eq!(next_text(&mut device).await, "through the other node");

    // The listening connections of both nodes die; each listens again, and what is sent
    // meanwhile or after still arrives.
    assert!(kill_listeners(&a).await >= 2);
    until("both nodes listen again", || async {
        a.metric("tocsin_cluster_listener_lost_total").await >= Some(1.0)
            && b.metric("tocsin_cluster_listener_lost_total").await >= Some(1.0)
            && a.metric("tocsin_cluster_listening").await == Some(1.0)
            && b.metric("tocsin_cluster_listening").await == Some(1.0)
    })
    .await;
    send_simple(&b, &gw, keys.identity, "after the connection came back").await;
    assert_eq!(
        next_text(&mut device).await,
        "after the connection came back"
    );
    device.close().await;
}

/// A device on `node` sends `count` texts to `gw` (which takes replies at `url`).
async fn replies(node: &TestApp, gw: &TestGateway, count: usize) -> BTreeSet<MessageId> {
    let keys = enrol(node).await;
    let mut device = Connection::connect(&keys, &keys.directory().unwrap())
        .await
        .unwrap();
    let mut sent = BTreeSet::new();
    for i in 0..count {
        let id = device
            .send_text(gw.id.as_identity(), &format!("reply {i}"))
            .await
            .unwrap();
        sent.insert(id);
    }
    device.close().await;
    sent
}

/// The message IDs of the callbacks `received` gets until it has `count`.
async fn taken(
    received: &mut tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>)>,
    count: usize,
) -> Vec<MessageId> {
    let mut ids = Vec::new();
    while ids.len() < count {
        let (_, body) = tokio::time::timeout(PATIENCE, received.recv())
            .await
            .expect("the callbacks arrive long before the hourly sweep")
            .unwrap();
        let id = url::form_urlencoded::parse(&body)
            .find(|(k, _)| k == "messageId")
            .map(|(_, v)| MessageId::parse(&v).unwrap())
            .expect("a messageId field");
        ids.push(id);
    }
    ids
}

#[tokio::test]
async fn a_reply_on_one_node_is_dispatched_at_once_by_another_on_postgres_only() {
    Engine::require_postgres("several nodes on one database");
    let (receiver, mut received) = answering_receiver().await;
    // No node looks at the outbox within the test's time unless it is woken.
    let mut quiet = loopback_allowed();
    quiet.extend(no_recheck());
    quiet.push(("TOCSIN__CALLBACKS__SWEEP_SECS", "3600".into()));
    let mut devices_only = quiet.clone();
    devices_only.extend([
        ("TOCSIN__ROLES__CALLBACKS", "false".into()),
        ("TOCSIN__ROLES__API", "false".into()),
    ]);
    let mut dispatch_only = quiet.clone();
    dispatch_only.extend([
        ("TOCSIN__ROLES__CHAT", "false".into()),
        ("TOCSIN__ROLES__API", "false".into()),
    ]);
    let a = spawn_app_with(&devices_only).await;
    let b = a.spawn_beside(&dispatch_only).await;
    // Each node serves its roles' routes only.
    let status = |app: &TestApp, path: &str| {
        let url = app.url(path);
        async move { reqwest::get(url).await.unwrap().status().as_u16() }
    };
    assert_eq!(status(&a, "/credits").await, 404);
    assert_eq!(status(&b, "/api/v1/server").await, 404);
    assert_eq!(status(&b, "/health").await, 200);
    listening(&[&b]).await;

    let gw = a.gateway(GatewayMode::E2e, 10).await;
    let url = format!("http://{receiver}/tocsin");
    a.state
        .store
        .set_callback_url(&gw.id, Some(&url))
        .await
        .unwrap();
    let sent = replies(&a, &gw, 3).await;
    let got: BTreeSet<MessageId> = taken(&mut received, 3).await.into_iter().collect();
    assert_eq!(got, sent, "node B posted what node A's device sent");
}

#[tokio::test]
async fn two_dispatchers_post_each_callback_once_on_postgres_only() {
    Engine::require_postgres("several nodes on one database");
    let (receiver, mut received) = answering_receiver().await;
    let a = spawn_app_with(&loopback_allowed()).await;
    let b = a.spawn_beside(&loopback_allowed()).await;
    let gw = a.gateway(GatewayMode::E2e, 10).await;
    let url = format!("http://{receiver}/tocsin");
    a.state
        .store
        .set_callback_url(&gw.id, Some(&url))
        .await
        .unwrap();
    let mut sent = replies(&a, &gw, 20).await;
    sent.extend(replies(&b, &gw, 20).await);
    let got = taken(&mut received, sent.len()).await;
    let unique: BTreeSet<MessageId> = got.iter().copied().collect();
    assert_eq!(unique, sent);
    assert_eq!(got.len(), sent.len(), "no callback was posted twice");
    a.until_outbox_empty(&gw).await;
    // Nothing more comes: every entry was taken, and taken once.
    assert!(received.try_recv().is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_charge_once_and_answer_a_retry_with_the_first_id_on_postgres_only() {
    Engine::require_postgres("several nodes on one database");
    // Hundreds of requests at once from one address: more than the default budgets.
    let open = [
        ("TOCSIN__SERVER__CONNECTIONS_PER_IP", "0".to_owned()),
        ("TOCSIN__RATELIMIT__PER_IP_PER_SECOND", "0".to_owned()),
        ("TOCSIN__RATELIMIT__PER_GATEWAY_PER_SECOND", "0".to_owned()),
    ];
    let a = spawn_app_with(&open).await;
    let b = a.spawn_beside(&open).await;
    let gw = a.gateway(GatewayMode::Basic, 100).await;
    let alice = tocsin_sdk::protocol::IdentityId::parse("ALICE123").unwrap();
    a.identity("ALICE123", None, None).await;
    let recipient = tocsin_sdk::client::Recipient::Id(alice);

    // 200 sends against 100 credits, split over both nodes.
    let clients = [
        crate::helpers::gateway_client(&a, &gw),
        crate::helpers::gateway_client(&b, &gw),
    ];
    let sends: Vec<_> = (0..200)
        .map(|i| {
            let client = clients[i % 2].clone();
            let recipient = recipient.clone();
            tokio::spawn(async move { client.send_simple(&recipient, "once").await })
        })
        .collect();
    let mut accepted = 0;
    for send in sends {
        match send.await.unwrap() {
            Ok(_) => accepted += 1,
            Err(tocsin_sdk::client::Error::NoCredits) => {}
            Err(other) => panic!("{other}"),
        }
    }
    assert_eq!(accepted, 100);
    assert_eq!(a.balance(&gw).await, 0);
    assert_eq!(a.state.store.ledger_sum(gw.account).await.unwrap(), 0);
    assert_eq!(a.queued("ALICE123").await.len(), 100);

    // A retry with the same Idempotency-Key through the other node: the first ID, and
    // no second charge.
    a.state
        .store
        .add_credits(gw.account, 1, "test", tocsin::domain::UnixMs::now())
        .await
        .unwrap();
    let first = clients[0]
        .send_simple_with_idempotency_key(&recipient, "retry me", "order-7")
        .await
        .unwrap();
    let retry = clients[1]
        .send_simple_with_idempotency_key(&recipient, "retry me", "order-7")
        .await
        .unwrap();
    assert_eq!(retry, first);
    assert_eq!(b.balance(&gw).await, 0);
}

#[tokio::test]
async fn two_devices_of_one_identity_on_two_nodes_both_get_it_and_it_goes_once_on_postgres_only() {
    let (a, b) = two_quiet_nodes().await;
    let gw = a.gateway(GatewayMode::Basic, 10).await;
    let phone = enrol(&a).await;
    let mut laptop = phone.clone();
    laptop.device_id = tocsin_sdk::protocol::csp::CspDeviceId::random();
    let mut on_a = Connection::connect(&phone, &phone.directory().unwrap())
        .await
        .unwrap();
    laptop.server_url = b.url("/");
    let mut on_b = Connection::connect(&laptop, &laptop.directory().unwrap())
        .await
        .unwrap();
    for connection in [&mut on_a, &mut on_b] {
        let first = tokio::time::timeout(PATIENCE, connection.next_event()).await;
        assert_eq!(first.unwrap().unwrap(), Event::QueueComplete);
    }
    send_simple(&a, &gw, phone.identity, "to both").await;
    assert_eq!(next_text(&mut on_a).await, "to both");
    assert_eq!(
        a.state.store.queue_depth().await.unwrap(),
        1,
        "the laptop has not acked"
    );
    assert_eq!(next_text(&mut on_b).await, "to both");
    until("the message leaves the queue after both acks", || async {
        a.state.store.queue_depth().await.unwrap() == 0
    })
    .await;
    on_a.close().await;
    on_b.close().await;
}

#[tokio::test]
async fn two_nodes_keeping_house_at_once_expire_each_message_once_on_postgres_only() {
    let (a, b) = two_quiet_nodes().await;
    a.identity("ALICE123", None, None).await;
    let alice = IdentityId::parse("ALICE123").unwrap();
    let sender = IdentityId::parse("*GATEWAY").unwrap();
    let mut expired = Vec::new();
    for round in 0..5 {
        let now = UnixMs::now();
        let mut ids = Vec::new();
        for i in 0..200 {
            let message = NewMessage {
                message_id: MessageId::random(),
                sender,
                recipient: alice,
                flags: 0,
                nonce: Nonce::random(),
                body: vec![7; 40],
                expires_at: now.plus_ms(1 + i % 2),
            };
            let node = if i % 2 == 0 { &a } else { &b };
            assert!(node
                .state
                .store
                .enqueue_direct(&message, now)
                .await
                .unwrap());
            ids.push(message.message_id);
        }
        // Both nodes' housekeeping passes at once, past every TTL.
        let later = now.plus_ms(10 + round);
        tokio::join!(
            tocsin::housekeeping::housekeeping(&a.state, later),
            tocsin::housekeeping::housekeeping(&b.state, later)
        );
        expired.extend(ids);
    }
    assert_eq!(a.state.store.queue_depth().await.unwrap(), 0);
    for id in &expired {
        let events: Vec<MessageStatus> = a
            .state
            .store
            .message_events(&sender, id)
            .await
            .unwrap()
            .into_iter()
            .map(|(event, _)| event)
            .collect();
        assert_eq!(
            events,
            [MessageStatus::Queued, MessageStatus::Expired],
            "message {id}: each event once"
        );
    }
}

/// Two nodes' alarm clocks stepping the same alarms at once: each later tier starts once,
/// is delivered once and charged once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_alarm_clocks_start_each_tier_once_on_postgres_only() {
    let (a, b) = two_quiet_nodes().await;
    let gw = a.gateway(GatewayMode::Basic, 100).await;
    a.identity("ALICE123", None, None).await;
    a.identity("BOB45678", None, None).await;
    let bob = IdentityId::parse("BOB45678").unwrap();
    let body = serde_json::json!({
        "text": "Pump 3 failed",
        "tiers": [{"to": ["ALICE123"]}, {"afterSecs": 60, "to": ["BOB45678"]}],
    });
    let mut alarms = Vec::new();
    for _ in 0..10 {
        let res = a
            .client
            .post(a.url(&format!("/api/v1/alarms?{}", gw.credentials())))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let answer: serde_json::Value = res.json().await.unwrap();
        alarms.push(MessageId::parse(answer["alarmId"].as_str().unwrap()).unwrap());
    }
    let balance = |app: &TestApp| {
        let store = app.state.store.clone();
        let account = gw.account;
        async move { store.account(account).await.unwrap().unwrap().balance }
    };
    assert_eq!(balance(&a).await, 90);
    let later = UnixMs::now().plus_ms(61_000);
    let (clock_a, clock_b) = (
        tocsin::alarms::AlarmClock::new(a.state.clone()),
        tocsin::alarms::AlarmClock::new(b.state.clone()),
    );
    let (stepped_a, stepped_b) = tokio::join!(clock_a.run_once(later), clock_b.run_once(later));
    assert_eq!(
        stepped_a.unwrap() + stepped_b.unwrap(),
        10,
        "each alarm stepped once"
    );
    let queued: BTreeSet<MessageId> = a
        .state
        .store
        .queued_for(&bob, 100)
        .await
        .unwrap()
        .iter()
        .map(|q| q.message.message_id)
        .collect();
    assert_eq!(
        queued,
        alarms.iter().copied().collect(),
        "one delivery each"
    );
    assert_eq!(balance(&b).await, 80, "each charged once");
}
