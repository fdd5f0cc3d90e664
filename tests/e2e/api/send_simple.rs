//! `POST /send_simple`: the server seals a text the recipient can open.

use tocsin::store::GatewayMode;
use tocsin_sdk::crypto::SharedKey;
use tocsin_sdk::protocol::{E2eMessage, IdentityId, MessageId};

use crate::helpers::{spawn_app, urlencode, TestApp, TestGateway};

async fn send(app: &TestApp, gw: &TestGateway, recipient: &str, text: &str) -> (u16, String) {
    let body = format!("{}&{recipient}&text={}", gw.credentials(), urlencode(text));
    let res = app
        .client
        .post(app.url("/send_simple"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// Opens the newest message queued for `to` with the recipient's key.
async fn read_last(
    app: &TestApp,
    gw: &TestGateway,
    to: &str,
    keys: &tocsin_sdk::protocol::KeyPair,
) -> (MessageId, E2eMessage) {
    let queued = app.queued(to).await;
    let last = queued.last().expect("a queued message");
    let plain = SharedKey::new(&keys.secret, &gw.keys.public)
        .unwrap()
        .open(&last.nonce, &last.body)
        .unwrap();
    (last.message_id, E2eMessage::from_padded(&plain).unwrap())
}

#[tokio::test]
async fn texts_reach_recipients_by_id_phone_and_email() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::Basic, 10).await;
    let alice = app
        .identity("ALICE123", Some("41791234567"), Some("alice@example.org"))
        .await;
    for (recipient, text) in [
        ("to=ALICE123", "Your code is 482913"),
        ("phone=41791234567", "by phone"),
        ("email=Alice%40Example.org", "by e-mail ✓"),
    ] {
        let (status, body) = send(&app, &gw, recipient, text).await;
        assert_eq!(status, 200, "{recipient}: {body}");
        let (id, message) = read_last(&app, &gw, "ALICE123", &alice).await;
        assert_eq!(body, id.to_string());
        assert!(
            matches!(message, E2eMessage::Text(ref t) if t == text),
            "{message:?}"
        );
    }
    assert_eq!(app.balance(&gw).await, 7);
    assert_eq!(
        app.state.shared_keys.len(),
        1,
        "one key exchange for three messages"
    );
}

#[tokio::test]
async fn text_limit_is_3500_bytes_not_characters() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::Basic, 10).await;
    app.identity("ALICE123", None, None).await;
    assert_eq!(
        send(&app, &gw, "to=ALICE123", &"é".repeat(1750)).await.0,
        200
    );
    assert_eq!(
        send(&app, &gw, "to=ALICE123", &format!("{}x", "é".repeat(1750)))
            .await
            .0,
        413
    );
    assert_eq!(
        send(&app, &gw, "to=ALICE123", &"x".repeat(3500)).await.0,
        200
    );
    assert_eq!(
        send(&app, &gw, "to=ALICE123", &"x".repeat(3501)).await.0,
        413
    );
    assert_eq!(app.balance(&gw).await, 8);
}

#[tokio::test]
async fn recipients_mode_and_credits_map_to_the_spec_statuses() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::Basic, 10).await;
    app.identity("ALICE123", Some("41791234567"), None).await;
    assert_eq!(
        send(&app, &gw, "to=00000000", "hi").await.0,
        400,
        "well-formed but unknown ID"
    );
    assert_eq!(send(&app, &gw, "to=bad", "hi").await.0, 400);
    assert_eq!(send(&app, &gw, "phone=44123456789", "hi").await.0, 404);
    assert_eq!(
        send(&app, &gw, "email=nobody%40example.org", "hi").await.0,
        404
    );
    assert_eq!(
        send(&app, &gw, "to=ALICE123&phone=41791234567", "hi")
            .await
            .0,
        400
    );
    assert_eq!(send(&app, &gw, "to=ALICE123", "").await.0, 400);
    let e2e = app.gateway(GatewayMode::E2e, 10).await;
    assert_eq!(
        send(&app, &e2e, "to=ALICE123", "hi").await.0,
        400,
        "E2E IDs cannot use send_simple"
    );
    let broke = app.gateway(GatewayMode::Basic, 0).await;
    assert_eq!(
        send(&app, &broke, "to=ALICE123", "hi").await,
        (402, "not enough credits".into())
    );
    assert!(app
        .state
        .store
        .queued_for(&IdentityId::parse("ALICE123").unwrap(), 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(app.balance(&gw).await, 10);
}
