//! `POST /send_e2e_bulk`: one result per element, in order; base64 fields; limits.

use base64::Engine;
use serde_json::{json, Value};
use tocsin::store::GatewayMode;
use tocsin_sdk::protocol::{IdentityId, MessageId, Nonce};

use crate::helpers::{spawn_app, TestApp, TestGateway};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn item(to: &str, sealed: &[u8]) -> Value {
    json!({"to": to, "nonce": b64(Nonce::random().as_bytes()), "box": b64(sealed)})
}

async fn bulk(app: &TestApp, gw: &TestGateway, query: &str, body: &Value) -> (u16, Value) {
    let url = app.url(&format!("/send_e2e_bulk?{}{query}", gw.credentials()));
    let res = app.client.post(url).json(body).send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn depth(app: &TestApp, to: &str) -> usize {
    app.state
        .store
        .queued_for(&IdentityId::parse(to).unwrap(), 10_000)
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn each_element_gets_its_own_result_in_order() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 2).await;
    app.identity("ALICE123", None, None).await;
    app.identity("BOB45678", None, None).await;
    let mut bad_nonce = item("ALICE123", &[1; 40]);
    bad_nonce["nonce"] = json!("AAAA");
    let body = json!([
        item("ALICE123", &[1; 40]),
        item("00000000", &[1; 40]),
        bad_nonce,
        item("BOB45678", &[0x31; 4001]),
        item("BOB45678", &[0x31; 4000]),
        item("ALICE123", &[2; 40]),
    ]);
    let (status, answer) = bulk(&app, &gw, "", &body).await;
    assert_eq!(status, 200);
    let answer = answer.as_array().unwrap();
    assert_eq!(answer.len(), 6);
    assert!(MessageId::parse(answer[0]["messageId"].as_str().unwrap()).is_ok());
    let codes: Vec<_> = answer[1..]
        .iter()
        .map(|r| r["errorCode"].as_u64())
        .collect();
    assert_eq!(codes, [Some(400), Some(400), Some(413), None, Some(402)]);
    assert!(answer[4]["messageId"].is_string());
    assert_eq!(
        (depth(&app, "ALICE123").await, depth(&app, "BOB45678").await),
        (1, 1)
    );
    assert_eq!(app.balance(&gw).await, 0);
}

/// The recipients' keys are read for the whole request at once; a revoked or malformed
/// recipient still gets its own 400 and the others go through.
#[tokio::test]
async fn recipients_read_together_keep_their_own_answers() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    app.identity("ALICE123", None, None).await;
    app.identity("CAROL123", None, None).await;
    let carol = tocsin_sdk::protocol::IdentityId::parse("CAROL123").unwrap();
    app.state.store.revoke_identity(&carol).await.unwrap();
    let body = json!([
        item("CAROL123", &[1; 40]),
        item("not an ID", &[1; 40]),
        item("ALICE123", &[1; 40]),
    ]);
    let (status, answer) = bulk(&app, &gw, "", &body).await;
    assert_eq!(status, 200);
    let codes: Vec<_> = answer
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["errorCode"].as_u64())
        .collect();
    assert_eq!(codes, [Some(400), Some(400), None]);
    assert_eq!(depth(&app, "ALICE123").await, 1);
    assert_eq!(app.balance(&gw).await, 9);
}

#[tokio::test]
async fn same_message_id_is_shared_by_every_recipient() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    app.identity("ALICE123", None, None).await;
    app.identity("BOB45678", None, None).await;
    let body = json!([item("ALICE123", &[1; 40]), item("BOB45678", &[2; 40])]);
    let (_, first) = bulk(&app, &gw, "&sameMessageId=1", &body).await;
    assert!(first[0]["messageId"].is_string());
    assert_eq!(first[0]["messageId"], first[1]["messageId"]);
    let (_, retry) = bulk(&app, &gw, "", &body).await;
    assert_eq!(retry, first, "a retry answers the first IDs");
    assert_eq!(
        app.balance(&gw).await,
        8,
        "the retried elements (same nonces) were not charged again"
    );
}

#[tokio::test]
async fn limits_mode_and_body_errors() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 0).await;
    let many: Vec<Value> = (0..1001).map(|_| item("ALICE123", &[1; 16])).collect();
    assert_eq!(bulk(&app, &gw, "", &json!(many)).await.0, 413);
    assert_eq!(bulk(&app, &gw, "", &json!({"to": "x"})).await.0, 400);
    let basic = app.gateway(GatewayMode::Basic, 5).await;
    assert_eq!(bulk(&app, &basic, "", &json!([])).await.0, 400);
    assert_eq!(bulk(&app, &gw, "", &json!([])).await, (200, json!([])));
}

#[tokio::test]
async fn null_flags_mean_not_set() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    app.identity("ALICE123", None, None).await;
    let mut element = item("ALICE123", &[1; 40]);
    element["group"] = Value::Null;
    element["noPush"] = json!(true);
    let (status, answer) = bulk(&app, &gw, "", &json!([element])).await;
    assert_eq!(status, 200);
    assert!(answer[0]["messageId"].is_string(), "{answer}");
    let queued = app.queued("ALICE123").await;
    assert_eq!(queued[0].flags, 0, "no push, no group");
}
