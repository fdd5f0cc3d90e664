//! The device directory: `POST /api/v1/identities`, `GET /api/v1/identities/{id}`,
//! `GET /api/v1/server`.

use serde_json::{json, Value};
use tocsin_sdk::protocol::{IdentityId, KeyPair};

use crate::helpers::{spawn_app, spawn_app_with, TestApp};

async fn create(app: &TestApp, body: &Value, token: Option<&str>) -> (u16, Value) {
    let mut req = app.client.post(app.url("/api/v1/identities")).json(body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn a_device_registers_its_key_and_gets_a_fresh_id_that_the_gateway_api_serves() {
    let app = spawn_app().await;
    let keys = KeyPair::generate();
    let (status, body) = create(&app, &json!({"publicKey": keys.public.to_string()}), None).await;
    assert_eq!(status, 201, "{body}");
    let id = IdentityId::parse(body["identity"].as_str().unwrap()).unwrap();
    assert!(!id.is_gateway());
    assert_eq!(body["publicKey"], keys.public.to_string());
    let shown: Value = app
        .client
        .get(app.url(&format!("/api/v1/identities/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown, body);
    // The same directory answers the gateway's pubkey lookup.
    let gw = app.gateway(tocsin::store::GatewayMode::E2e, 0).await;
    assert_eq!(
        app.get_as(&gw, &format!("/pubkeys/{id}")).await,
        (200, keys.public.to_string())
    );
    // Gateway IDs are in the same directory (devices open their alerts with this key).
    let shown: Value = app
        .client
        .get(app.url(&format!("/api/v1/identities/{}", gw.id)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["publicKey"], gw.keys.public.to_string());
    let (_, second) = create(
        &app,
        &json!({"publicKey": KeyPair::generate().public.to_string()}),
        None,
    )
    .await;
    assert_ne!(second["identity"], body["identity"]);
}

#[tokio::test]
async fn bad_keys_are_refused_and_unknown_or_revoked_ids_are_404() {
    let app = spawn_app().await;
    assert_eq!(
        create(&app, &json!({"publicKey": "00".repeat(32)}), None)
            .await
            .0,
        400
    );
    assert_eq!(
        create(&app, &json!({"publicKey": "abcd"}), None).await.0,
        400
    );
    assert_eq!(create(&app, &json!({}), None).await.0, 400);
    let missing = app
        .client
        .get(app.url("/api/v1/identities/NOSUCHID"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    app.identity("REVOKED1", None, None).await;
    app.state
        .store
        .revoke_identity(&"REVOKED1".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(
        app.client
            .get(app.url("/api/v1/identities/REVOKED1"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn enrollment_token_and_per_ip_limit_gate_creation() {
    let app = spawn_app_with(&[
        ("TOCSIN__DIRECTORY__ENROLLMENT_TOKEN", "s3cret-enrol".into()),
        ("TOCSIN__DIRECTORY__IDENTITIES_PER_IP_PER_HOUR", "2".into()),
    ])
    .await;
    let body = || json!({"publicKey": KeyPair::generate().public.to_string()});
    assert_eq!(create(&app, &body(), None).await.0, 401);
    assert_eq!(create(&app, &body(), Some("wrong")).await.0, 401);
    assert_eq!(
        create(&app, &body(), Some("s3cret-enrol")).await.0,
        429,
        "the two refused attempts counted"
    );
    let fresh = spawn_app_with(&[
        ("TOCSIN__DIRECTORY__ENROLLMENT_TOKEN", "s3cret-enrol".into()),
        ("TOCSIN__DIRECTORY__IDENTITIES_PER_IP_PER_HOUR", "2".into()),
    ])
    .await;
    assert_eq!(create(&fresh, &body(), Some("s3cret-enrol")).await.0, 201);
    assert_eq!(create(&fresh, &body(), Some("s3cret-enrol")).await.0, 201);
    let (status, _) = create(&fresh, &body(), Some("s3cret-enrol")).await;
    assert_eq!(status, 429);
}

#[tokio::test]
async fn the_server_key_is_published_and_stable_across_restarts() {
    let app = spawn_app().await;
    let body: Value = app
        .client
        .get(app.url("/api/v1/server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["publicKey"], app.state.server_key.public.to_string());
    let path = app.state.settings.server_key_path();
    let reloaded = tocsin::crypto::server_key::load_or_create(&path).unwrap();
    assert_eq!(reloaded.public, app.state.server_key.public);
}
