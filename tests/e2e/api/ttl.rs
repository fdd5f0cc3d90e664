//! A sender's TTL on a message (`ttl`, a Tocsin extension of send_simple, send_e2e and each
//! send_e2e_bulk element): checked against its range, kept with the message, sent to the
//! device ahead of the message, and past it the message is never delivered.

use tocsin::domain::UnixMs;
use tocsin::store::{GatewayMode, NewMessage, QueuedMessage};
use tocsin_sdk::protocol::csp::Payload;
use tocsin_sdk::protocol::{IdentityId, MessageFlags, MessageId, Nonce};

use super::chat::Device;
use crate::helpers::{spawn_app_with, TestApp, TestGateway};

async fn send_simple(app: &TestApp, gw: &TestGateway, extra: &str) -> (u16, String) {
    let res = app
        .client
        .post(app.url("/send_simple"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "{}&to=ALICE123&text=482913{extra}",
            gw.credentials()
        ))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn queued(app: &TestApp) -> Vec<QueuedMessage> {
    let alice = IdentityId::parse("ALICE123").unwrap();
    app.state.store.queued_for(&alice, 100).await.unwrap()
}

/// The time a queued message may wait, from its arrival to its expiry.
fn lifetime(m: &QueuedMessage) -> i64 {
    m.message.expires_at.ms_since(m.created_at)
}

#[tokio::test]
async fn a_ttl_is_kept_with_the_message_and_one_outside_its_range_is_refused() {
    let app = spawn_app_with(&[("TOCSIN__MESSAGES__TTL_SECS", "3600".into())]).await;
    let gw = app.gateway(GatewayMode::Basic, 10).await;
    app.identity("ALICE123", None, None).await;
    for bad in ["5", "3601", "abc", "", "-10", "1.5"] {
        let (status, body) = send_simple(&app, &gw, &format!("&ttl={bad}")).await;
        assert_eq!(status, 400, "ttl={bad}");
        assert_eq!(body, "ttl must be whole seconds from 10 to 3600");
    }
    assert!(queued(&app).await.is_empty(), "nothing refused is queued");
    assert_eq!(send_simple(&app, &gw, "&ttl=10").await.0, 200);
    assert_eq!(send_simple(&app, &gw, "&ttl=3600").await.0, 200);
    assert_eq!(send_simple(&app, &gw, "").await.0, 200);
    let lifetimes: Vec<i64> = queued(&app).await.iter().map(lifetime).collect();
    assert_eq!(lifetimes, [10_000, 3_600_000, 3_600_000]);
}

#[tokio::test]
async fn each_bulk_element_has_its_own_ttl() {
    let app = spawn_app_with(&[]).await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    app.identity("ALICE123", None, None).await;
    let element = |ttl: Option<u64>| {
        let mut e = serde_json::json!({
            "to": "ALICE123",
            "nonce": base64_of(Nonce::random().as_bytes()),
            "box": base64_of(&[7; 48]),
        });
        if let Some(ttl) = ttl {
            e["ttl"] = ttl.into();
        }
        e
    };
    let body = serde_json::json!([element(Some(60)), element(Some(3)), element(None)]);
    let res = app
        .client
        .post(app.url(&format!("/send_e2e_bulk?{}", gw.credentials())))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let answers: serde_json::Value = res.json().await.unwrap();
    assert!(answers[0]["messageId"].is_string(), "{answers}");
    assert_eq!(answers[1]["errorCode"], 400, "{answers}");
    assert!(answers[2]["messageId"].is_string(), "{answers}");
    let queued = queued(&app).await;
    assert_eq!(lifetime(&queued[0]), 60_000);
    assert_eq!(
        lifetime(&queued[1]),
        1_000 * i64::try_from(app.state.settings.messages.ttl_secs).unwrap()
    );
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn a_device_is_told_the_expiry_before_the_message_and_never_gets_an_expired_one() {
    let app = spawn_app_with(&[]).await;
    let gw = app.gateway(GatewayMode::Basic, 10).await;
    let keys = app.identity("ALICE123", None, None).await;
    let alice = IdentityId::parse("ALICE123").unwrap();
    // Waiting before the device connects: one whose TTL has passed, one with a TTL, one
    // with the server's.
    let stale = NewMessage {
        message_id: MessageId::random(),
        sender: IdentityId::parse("BOB45678").unwrap(),
        recipient: alice,
        flags: MessageFlags::default().0,
        nonce: Nonce::random(),
        body: vec![1; 40],
        expires_at: UnixMs::now().minus_ms(1),
    };
    let now = UnixMs::now();
    assert!(app.state.store.enqueue_direct(&stale, now).await.unwrap());
    let (status, otp) = send_simple(&app, &gw, "&ttl=300").await;
    assert_eq!(status, 200);
    let (_, plain) = send_simple(&app, &gw, "").await;
    let mut device = Device::connect(&app, "ALICE123", &keys, Some(1)).await;
    let expires = device.recv().await.expect("the expiry of the OTP");
    let (sender, id, at) = expires.as_message_expires().expect("an expiry frame");
    assert_eq!(
        (sender, id.to_string()),
        (*gw.id.as_identity(), otp.clone())
    );
    let otp_row = queued(&app)
        .await
        .into_iter()
        .find(|q| q.message.message_id == id);
    let expected = otp_row.unwrap().message.expires_at.as_secs();
    assert_eq!(i64::from(at), expected);
    let delivered: Vec<String> = device
        .drain_queue()
        .await
        .iter()
        .map(|m| m.message_id.to_string())
        .collect();
    assert_eq!(
        delivered,
        [otp, plain],
        "the stale message is not delivered"
    );

    // Announced to a connected device after its expiry: not delivered either.
    let stale_live = NewMessage {
        message_id: MessageId::random(),
        expires_at: UnixMs::now().minus_ms(1),
        ..stale
    };
    let now = UnixMs::now();
    assert!(app
        .state
        .store
        .enqueue_direct(&stale_live, now)
        .await
        .unwrap());
    let (_, after) = send_simple(&app, &gw, "").await;
    match device.recv().await {
        Some(Payload::IncomingMessage(m)) => assert_eq!(m.message_id.to_string(), after),
        other => panic!("expected the message sent after, got {other:?}"),
    }
}
