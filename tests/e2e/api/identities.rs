//! The device directory: `POST /api/v1/identities`, `GET /api/v1/identities/{id}`,
//! `GET /api/v1/server`.

use std::time::Duration;

use serde_json::{json, Value};
use tocsin_sdk::protocol::{IdentityId, InviteCode, KeyPair};

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

/// Enrolment as a real server has it: closed.
fn closed(extra: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    let mut vars = vec![("TOCSIN__DIRECTORY__OPEN_ENROLLMENT", "false".to_owned())];
    vars.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    vars
}

/// A creation request for a fresh key, with an invite code when given.
fn enrolment(invite: Option<&str>) -> Value {
    let mut body = json!({"publicKey": KeyPair::generate().public.to_string()});
    if let Some(code) = invite {
        body["invite"] = json!(code);
    }
    body
}

#[tokio::test]
async fn enrollment_token_and_per_ip_limit_gate_creation() {
    let gate = [
        ("TOCSIN__DIRECTORY__ENROLLMENT_TOKEN", "s3cret-enrol"),
        ("TOCSIN__DIRECTORY__IDENTITIES_PER_IP_PER_HOUR", "2"),
    ];
    let app = spawn_app_with(&closed(&gate)).await;
    assert_eq!(create(&app, &enrolment(None), None).await.0, 403);
    assert_eq!(create(&app, &enrolment(None), Some("wrong")).await.0, 401);
    assert_eq!(
        create(&app, &enrolment(None), Some("s3cret-enrol")).await.0,
        429,
        "the two refused attempts counted"
    );
    let fresh = spawn_app_with(&closed(&gate)).await;
    assert_eq!(
        create(&fresh, &enrolment(None), Some("s3cret-enrol"))
            .await
            .0,
        201
    );
    assert_eq!(
        create(&fresh, &enrolment(None), Some("s3cret-enrol"))
            .await
            .0,
        201
    );
    let (status, _) = create(&fresh, &enrolment(None), Some("s3cret-enrol")).await;
    assert_eq!(status, 429);
}

#[tokio::test]
async fn enrolment_is_closed_by_default_and_each_invite_admits_one_device() {
    let app = spawn_app_with(&closed(&[])).await;
    let (status, reason) = create(&app, &enrolment(None), None).await;
    assert_eq!(status, 403);
    assert_eq!(
        reason,
        "enrolment needs an invite code from the operator of this server"
    );

    let codes = app.invites(2, Duration::from_secs(3600)).await;
    // As a person may type it: lower case, dashes.
    let typed = codes[0].display().to_lowercase();
    let (status, created) = create(&app, &enrolment(Some(&typed)), None).await;
    assert_eq!(status, 201, "{created}");
    let alice = IdentityId::parse(created["identity"].as_str().unwrap()).unwrap();

    let spent = "the invite code is unknown, already used or expired";
    assert_eq!(
        create(&app, &enrolment(Some(&typed)), None).await,
        (403, Value::String(spent.into())),
        "a code admits one device"
    );
    let unknown = InviteCode::generate().display();
    assert_eq!(create(&app, &enrolment(Some(&unknown)), None).await.0, 403);
    let expired = app.invites(1, Duration::ZERO).await;
    assert_eq!(
        create(&app, &enrolment(Some(expired[0].canonical())), None)
            .await
            .0,
        403
    );
    let (status, reason) = create(&app, &enrolment(Some("not-a-code")), None).await;
    assert_eq!(status, 400);
    assert!(reason.as_str().unwrap().starts_with("invite: "), "{reason}");

    let (status, _) = create(&app, &enrolment(Some(codes[1].canonical())), None).await;
    assert_eq!(status, 201);
    assert_eq!(app.state.store.list_identities().await.unwrap().len(), 2);
    let invites = app.state.store.list_invites().await.unwrap();
    assert_eq!(invites.len(), 3);
    assert_eq!(
        invites.iter().filter(|i| i.identity == Some(alice)).count(),
        1,
        "the invite records who spent it"
    );
}

#[tokio::test]
async fn two_devices_racing_with_one_invite_enrol_once() {
    let app = spawn_app_with(&closed(&[])).await;
    let code = app.invites(1, Duration::from_secs(3600)).await.remove(0);
    for _ in 0..3 {
        // Every round spends nothing more: the code went in the first.
        let (first, second) = (
            enrolment(Some(code.canonical())),
            enrolment(Some(code.canonical())),
        );
        let (a, b) = tokio::join!(create(&app, &first, None), create(&app, &second, None));
        let mut statuses = [a.0, b.0];
        statuses.sort_unstable();
        let created = app.state.store.list_identities().await.unwrap().len();
        assert!(matches!(statuses, [201, 403] | [403, 403]), "{statuses:?}");
        assert_eq!(created, 1, "{statuses:?}");
    }
}

#[tokio::test]
async fn open_enrolment_needs_no_invite_and_an_ipv6_client_is_limited_by_its_64() {
    let app = spawn_app_with(&[
        ("TOCSIN__DIRECTORY__OPEN_ENROLLMENT", "true".into()),
        ("TOCSIN__DIRECTORY__IDENTITIES_PER_IP_PER_HOUR", "2".into()),
        ("TOCSIN__SERVER__TRUSTED_PROXIES", "127.0.0.1/32".into()),
    ])
    .await;
    let from = |client: &str| {
        app.client
            .post(app.url("/api/v1/identities"))
            .header("X-Forwarded-For", client)
            .json(&enrolment(None))
            .send()
    };
    for host in ["2001:db8:7:1::1", "2001:db8:7:1::2"] {
        assert_eq!(from(host).await.unwrap().status(), 201);
    }
    // Another address of the same /64 is the same client.
    let res = from("2001:db8:7:1:ffff::9").await.unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("Retry-After"));
    // The next /64 is another.
    assert_eq!(from("2001:db8:7:2::1").await.unwrap().status(), 201);
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
