//! `POST /pubkeys/bulk` and `POST /lookup/bulk`: JSON in, the matches out.

use serde_json::{json, Value};
use tocsin::store::GatewayMode;

use crate::helpers::wait::until;
use crate::helpers::{spawn_app, spawn_app_with, TestApp, TestGateway};

async fn post_json(app: &TestApp, gw: &TestGateway, path: &str, body: &Value) -> (u16, Value) {
    let url = app.url(&format!("{path}?{}", gw.credentials()));
    let res = app.client.post(url).json(body).send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn pubkeys_bulk_answers_known_live_identities_only() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 0).await;
    let alice = app.identity("ALICE123", None, None).await;
    app.identity("REVOKED1", None, None).await;
    app.state
        .store
        .revoke_identity(&"REVOKED1".parse().unwrap())
        .await
        .unwrap();
    let body = json!({"identities": ["ALICE123", "NOSUCHID", "REVOKED1", "bad"]});
    let (status, answer) = post_json(&app, &gw, "/pubkeys/bulk", &body).await;
    assert_eq!(status, 200);
    assert_eq!(
        answer,
        json!([{"identity": "ALICE123", "publicKey": alice.public.to_string()}])
    );
}

#[tokio::test]
async fn lookup_bulk_matches_phone_and_email_hashes() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 0).await;
    app.allow_bulk_lookup(&gw).await;
    let carol = app
        .identity("CAROL123", Some("41791234567"), Some("test@threema.ch"))
        .await;
    let phone = "ad398f4d7ebe63c6550a486cc6e07f9baa09bd9d8b3d8cb9d9be106d35a7fdbc";
    let email = "1ea093239cc5f0e1b6ec81b866265b921f26dc4033025410063309f4d1a8ee2c";
    let unknown = "0".repeat(64);
    let body = json!({"phoneHashes": [phone.to_uppercase(), unknown], "emailHashes": [email]});
    let (status, answer) = post_json(&app, &gw, "/lookup/bulk", &body).await;
    assert_eq!(status, 200);
    let key = carol.public.to_string();
    assert_eq!(
        answer,
        json!([
            {"identity": "CAROL123", "publicKey": key, "phoneHash": phone},
            {"identity": "CAROL123", "publicKey": key, "emailHash": email},
        ])
    );
    let (status, _) = post_json(&app, &gw, "/lookup/bulk", &json!({"phoneHashes": ["abcd"]})).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn bulk_limits_and_malformed_bodies() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 0).await;
    let ids: Vec<String> = (0..1000).map(|i| format!("ID{i:06}")).collect();
    assert_eq!(
        post_json(&app, &gw, "/pubkeys/bulk", &json!({"identities": ids}))
            .await
            .0,
        200
    );
    let ids: Vec<String> = (0..1001).map(|i| format!("ID{i:06}")).collect();
    assert_eq!(
        post_json(&app, &gw, "/pubkeys/bulk", &json!({"identities": ids}))
            .await
            .0,
        413
    );
    assert_eq!(
        post_json(&app, &gw, "/pubkeys/bulk", &json!({"nope": 1}))
            .await
            .0,
        400
    );
    let res = app
        .client
        .post(app.url(&format!("/pubkeys/bulk?{}", gw.credentials())))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let no_creds = app
        .client
        .post(app.url("/pubkeys/bulk"))
        .json(&json!({"identities": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(no_creds.status(), 401);
}

#[tokio::test]
async fn pubkeys_bulk_accepts_ids_as_byte_arrays_too() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 0).await;
    let alice = app.identity("ALICE123", None, None).await;
    let as_bytes: Vec<u8> = b"ALICE123".to_vec();
    let (status, answer) = post_json(
        &app,
        &gw,
        "/pubkeys/bulk",
        &json!({"identities": [as_bytes]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        answer,
        json!([{"identity": "ALICE123", "publicKey": alice.public.to_string()}])
    );
}

/// A JSON body is read only after the credentials, and each route reads no more than its
/// largest valid body: a stranger's body is refused for its credentials before it is
/// parsed; a lookup body over 128 KiB and an identity request over 4 KiB are refused as
/// too large.
#[tokio::test]
async fn json_bodies_are_read_after_the_credentials_and_within_the_routes_limit() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 0).await;
    let res = app
        .client
        .post(app.url("/lookup/bulk?from=*NOSUCH1&secret=Guess0000000000"))
        .header("content-type", "application/json")
        .body("not JSON at all")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "the credentials are checked first");

    let ids: Vec<String> = (0..20_000).map(|i| format!("ID{i:06}")).collect();
    let (status, body) = post_json(&app, &gw, "/pubkeys/bulk", &json!({ "identities": ids })).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body, Value::String("JSON body over 131072 bytes".into()));

    let padded = json!({ "publicKey": "00".repeat(32), "padding": "x".repeat(5000) });
    let res = app
        .client
        .post(app.url("/api/v1/identities"))
        .json(&padded)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);

    let res = app
        .client
        .post(app.url(&format!("/pubkeys/bulk?{}", gw.credentials())))
        .header("content-type", "text/plain")
        .body(r#"{"identities": []}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("application/json"));
}

#[tokio::test]
async fn bulk_lookup_is_off_until_the_operator_turns_it_on() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 0).await;
    let body = json!({"phoneHashes": ["0".repeat(64)]});
    let (status, answer) = post_json(&app, &gw, "/lookup/bulk", &body).await;
    assert_eq!(status, 403);
    assert!(
        answer.as_str().unwrap().contains("set-lookup ID --bulk on"),
        "{answer}"
    );
    app.allow_bulk_lookup(&gw).await;
    until("the change reaches the cached gateway record", || async {
        post_json(&app, &gw, "/lookup/bulk", &body).await == (200, json!([]))
    })
    .await;
}

#[tokio::test]
async fn lookups_are_charged_and_counted_found_or_not_within_a_daily_quota() {
    let app = spawn_app_with(&[
        ("TOCSIN__RATELIMIT__LOOKUPS_PER_GATEWAY_PER_DAY", "5".into()),
        ("TOCSIN__PRICES__LOOKUP", "1".into()),
    ])
    .await;
    let gw = app.gateway(GatewayMode::E2e, 100).await;
    app.allow_bulk_lookup(&gw).await;
    app.identity("CAROL123", Some("41791234567"), None).await;
    let zero = "0".repeat(64);
    // Misses cost what matches do, and count alike.
    assert_eq!(app.get_as(&gw, "/lookup/phone/41790000000").await.0, 404);
    let miss = format!("/lookup/email_hash/{zero}");
    assert_eq!(app.get_as(&gw, &miss).await.0, 404);
    assert_eq!(app.balance(&gw).await, 98);
    // Something that cannot be a number is no lookup: free, and not counted.
    assert_eq!(app.get_as(&gw, "/lookup/phone/not-a-number").await.0, 404);
    let found = "ad398f4d7ebe63c6550a486cc6e07f9baa09bd9d8b3d8cb9d9be106d35a7fdbc";
    let body = json!({"phoneHashes": [found, zero], "emailHashes": [zero]});
    let (status, answer) = post_json(&app, &gw, "/lookup/bulk", &body).await;
    assert_eq!(status, 200);
    assert_eq!(answer.as_array().unwrap().len(), 1);
    assert_eq!(app.balance(&gw).await, 95, "three hashes, three credits");

    // The day's five are spent: refused with the wait, and nothing charged.
    let res = app
        .client
        .get(app.url(&format!("/lookup/phone/41791234567?{}", gw.credentials())))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    let wait: u64 = res.headers()["Retry-After"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (17_000..=17_280).contains(&wait),
        "one lookup comes back each 4.8 h: {wait}"
    );
    assert_eq!(
        post_json(&app, &gw, "/lookup/bulk", &json!({"phoneHashes": [found]}))
            .await
            .0,
        429
    );
    assert_eq!(app.balance(&gw).await, 95);

    // Another gateway ID has a quota of its own.
    let other = app.gateway(GatewayMode::E2e, 10).await;
    assert_eq!(
        app.get_as(&other, "/lookup/phone/41791234567").await,
        (200, "CAROL123".into())
    );
}
