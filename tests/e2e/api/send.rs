//! `POST /send_e2e`: limits, mode rules, credits and idempotency, over raw HTTP.

use tocsin::domain::UnixMs;
use tocsin::store::GatewayMode;
use tocsin_sdk::crypto::SharedKey;
use tocsin_sdk::protocol::{MessageFlags, MessageId, Nonce};

use crate::helpers::{spawn_app, spawn_app_with, TestApp, TestGateway};

async fn post_form(app: &TestApp, path: &str, body: String, key: Option<&str>) -> (u16, String) {
    let mut req = app
        .client
        .post(app.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(key) = key {
        req = req.header("Idempotency-Key", key);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

fn e2e_form(gw: &TestGateway, to: &str, nonce: &Nonce, sealed: &[u8]) -> String {
    format!(
        "{}&to={to}&nonce={nonce}&box={}",
        gw.credentials(),
        hex::encode(sealed)
    )
}

#[tokio::test]
async fn a_sealed_box_is_queued_as_sent_and_charged_once() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    let alice = app.identity("ALICE123", None, None).await;
    let nonce = Nonce::random();
    let sealed = SharedKey::new(&gw.keys.secret, &alice.public)
        .unwrap()
        .seal(&nonce, b"\x01hello");
    let (status, body) = post_form(
        &app,
        "/send_e2e",
        e2e_form(&gw, "ALICE123", &nonce, &sealed),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = MessageId::parse(&body).unwrap();
    assert_eq!(body.len(), 16, "no trailing newline");
    let q = app.queued("ALICE123").await;
    assert_eq!(q.len(), 1);
    assert_eq!(
        (q[0].message_id, q[0].nonce, &q[0].body),
        (id, nonce, &sealed)
    );
    assert_eq!(q[0].sender, *gw.id.as_identity());
    assert_eq!(q[0].flags, MessageFlags::PUSH);
    // The recipient opens exactly what the customer sealed.
    let opened = SharedKey::new(&alice.secret, &gw.keys.public)
        .unwrap()
        .open(&q[0].nonce, &q[0].body)
        .unwrap();
    assert_eq!(opened, b"\x01hello");
    assert_eq!(app.balance(&gw).await, 9);
}

#[tokio::test]
async fn retries_by_nonce_or_idempotency_key_answer_the_first_id() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    app.identity("ALICE123", None, None).await;
    let nonce = Nonce::random();
    let form = e2e_form(&gw, "ALICE123", &nonce, &[7; 40]);
    let first = post_form(&app, "/send_e2e", form.clone(), Some("order-77")).await;
    assert_eq!(first.0, 200);
    assert_eq!(
        post_form(&app, "/send_e2e", form, None).await,
        first,
        "same recipient and nonce"
    );
    let other_nonce = e2e_form(&gw, "ALICE123", &Nonce::random(), &[7; 40]);
    assert_eq!(
        post_form(&app, "/send_e2e", other_nonce, Some("order-77")).await,
        first,
        "same key"
    );
    assert_eq!(app.queued("ALICE123").await.len(), 1);
    assert_eq!(app.balance(&gw).await, 9);
}

/// Message IDs grow with time (the store's indexes append instead of scattering), a
/// restarted server takes another node number, and a retry sent after the restart still
/// answers the first ID.
#[tokio::test]
async fn ids_grow_and_a_retry_after_a_restart_answers_the_first_id() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    app.identity("ALICE123", None, None).await;
    let value = |body: &str| u64::from_be_bytes(*MessageId::parse(body).unwrap().as_bytes());
    let node = |id: u64| (id >> 13) & 0x3ff;
    let mut ids = Vec::new();
    let retried = e2e_form(&gw, "ALICE123", &Nonce::random(), &[7; 40]);
    for i in 0..3 {
        let form = if i == 0 {
            retried.clone()
        } else {
            e2e_form(&gw, "ALICE123", &Nonce::random(), &[7; 40])
        };
        let (status, body) = post_form(&app, "/send_e2e", form, None).await;
        assert_eq!(status, 200, "{body}");
        ids.push(value(&body));
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:x?}");

    let app = app.restart().await;
    let (status, body) = post_form(&app, "/send_e2e", retried, None).await;
    assert_eq!(
        (status, value(&body)),
        (200, ids[0]),
        "the retry answers the first ID"
    );
    let fresh = e2e_form(&gw, "ALICE123", &Nonce::random(), &[7; 40]);
    let (status, body) = post_form(&app, "/send_e2e", fresh, None).await;
    assert_eq!(status, 200, "{body}");
    assert_ne!(
        node(value(&body)),
        node(ids[0]),
        "a new process, a new node number"
    );
    assert_eq!(app.balance(&gw).await, 6);
}

/// Housekeeping forgets keys past `messages.idempotency_window_secs`: the same request
/// a day later is a new message, charged again.
#[tokio::test]
async fn a_retry_after_the_idempotency_window_is_a_new_message() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    app.identity("ALICE123", None, None).await;
    let form = e2e_form(&gw, "ALICE123", &Nonce::random(), &[7; 40]);
    let first = post_form(&app, "/send_e2e", form.clone(), Some("order-78")).await;
    assert_eq!(first.0, 200);
    let now = UnixMs::now();
    tocsin::housekeeping::housekeeping(&app.state, now).await;
    assert_eq!(
        post_form(&app, "/send_e2e", form.clone(), Some("order-78")).await,
        first,
        "inside the window"
    );
    let window_ms = 86_400_000;
    tocsin::housekeeping::housekeeping(&app.state, now.plus_ms(window_ms + 60_000)).await;
    let later = post_form(&app, "/send_e2e", form, Some("order-78")).await;
    assert_eq!(later.0, 200);
    assert_ne!(later.1, first.1, "a new message ID");
    assert_eq!(app.queued("ALICE123").await.len(), 2);
    assert_eq!(app.balance(&gw).await, 8);
}

#[tokio::test]
async fn box_limit_is_4000_bytes_exactly() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    app.identity("ALICE123", None, None).await;
    // The SDK test-suite sends 4000 bytes of 0x31 as a box: opaque to the server.
    let at_limit = e2e_form(&gw, "ALICE123", &Nonce::random(), &[0x31; 4000]);
    assert_eq!(post_form(&app, "/send_e2e", at_limit, None).await.0, 200);
    let over = e2e_form(&gw, "ALICE123", &Nonce::random(), &[0x31; 4001]);
    assert_eq!(post_form(&app, "/send_e2e", over, None).await.0, 413);
    let far_over = e2e_form(&gw, "ALICE123", &Nonce::random(), &[0x31; 20_000]);
    assert_eq!(post_form(&app, "/send_e2e", far_over, None).await.0, 413);
    assert_eq!(app.queued("ALICE123").await.len(), 1);
}

#[tokio::test]
async fn bad_requests_get_400_and_queue_nothing() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    app.identity("ALICE123", None, None).await;
    let creds = gw.credentials();
    let nonce = Nonce::random();
    let cases = [
        format!("{creds}&to=ALICE123&nonce=abcd&box=00ff"),
        format!("{creds}&to=ALICE123&nonce={nonce}&box=zz"),
        format!("{creds}&to=ALICE123&nonce={nonce}&box=abc"),
        format!("{creds}&to=ALICE123&nonce={nonce}"),
        format!("{creds}&to=00000000&nonce={nonce}&box=00ff"),
        format!("{creds}&to=alice123&nonce={nonce}&box=00ff"),
        format!("{creds}&nonce={nonce}&box=00ff"),
    ];
    for form in cases {
        let (status, body) = post_form(&app, "/send_e2e", form.clone(), None).await;
        assert_eq!(status, 400, "{form}: {body}");
        assert!(!body.is_empty() && !body.contains('\n'));
    }
    let (status, _) = post_form(
        &app,
        "/send_e2e",
        format!("{creds}&to=ALICE123&nonce={nonce}&box=00"),
        Some(&"k".repeat(256)),
    )
    .await;
    assert_eq!(status, 400);
    assert!(app.queued("ALICE123").await.is_empty());
    assert_eq!(app.balance(&gw).await, 10);
}

#[tokio::test]
async fn basic_mode_ids_cannot_send_e2e_and_empty_accounts_get_402() {
    let app = spawn_app().await;
    app.identity("ALICE123", None, None).await;
    let basic = app.gateway(GatewayMode::Basic, 10).await;
    let form = e2e_form(&basic, "ALICE123", &Nonce::random(), &[1; 32]);
    assert_eq!(post_form(&app, "/send_e2e", form, None).await.0, 400);
    let broke = app.gateway(GatewayMode::E2e, 0).await;
    let form = e2e_form(&broke, "ALICE123", &Nonce::random(), &[1; 32]);
    assert_eq!(
        post_form(&app, "/send_e2e", form, None).await,
        (402, "not enough credits".into())
    );
    assert!(app.queued("ALICE123").await.is_empty());
}

#[tokio::test]
async fn flags_follow_the_optional_fields() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    app.identity("ALICE123", None, None).await;
    let form = format!(
        "{}&noPush=1&noDeliveryReceipts=true&extra=ignored",
        e2e_form(&gw, "ALICE123", &Nonce::random(), &[1; 32])
    );
    assert_eq!(post_form(&app, "/send_e2e", form, None).await.0, 200);
    assert_eq!(
        app.queued("ALICE123").await[0].flags,
        MessageFlags::NO_RECEIPTS
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_parallel_sends_against_500_credits_accept_exactly_500() {
    // A thousand connections from one address: more than the default cap allows.
    let app = spawn_app_with(&[("TOCSIN__SERVER__CONNECTIONS_PER_IP", "0".into())]).await;
    let gw = app.gateway(GatewayMode::E2e, 500).await;
    app.identity("ALICE123", None, None).await;
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (client, url) = (app.client.clone(), app.url("/send_e2e"));
            let form = e2e_form(&gw, "ALICE123", &Nonce::random(), &[5; 64]);
            tokio::spawn(async move {
                let res = client
                    .post(url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form)
                    .send()
                    .await
                    .unwrap();
                res.status().as_u16()
            })
        })
        .collect();
    let mut by_status = std::collections::BTreeMap::new();
    for task in tasks {
        *by_status.entry(task.await.unwrap()).or_insert(0) += 1;
    }
    assert_eq!(by_status, [(200, 500), (402, 500)].into_iter().collect());
    assert_eq!(app.balance(&gw).await, 0);
    assert_eq!(app.state.store.ledger_sum(gw.account).await.unwrap(), 0);
    assert_eq!(app.queued("ALICE123").await.len(), 500);
}
