//! Wire compatibility: the published `threema-gateway` SDK, pointed at our server with
//! nothing changed but its endpoint, drives every endpoint family.

use threema_gateway::errors::ApiError;
use threema_gateway::{ApiBuilder, E2eApi, LookupCriterion, Recipient, SimpleApi, ThreemaId};
use tocsin::store::GatewayMode;
use tocsin_sdk::crypto::SharedKey;
use tocsin_sdk::protocol::{E2eMessage, KeyPair};

use crate::helpers::{spawn_app, TestApp, TestGateway};

fn endpoint(app: &TestApp) -> String {
    format!("http://{}", app.http)
}

fn simple(app: &TestApp, gw: &TestGateway, secret: &str) -> SimpleApi {
    let id = ThreemaId::try_from(gw.id.as_str()).unwrap();
    ApiBuilder::new(id, secret)
        .with_custom_endpoint(endpoint(app))
        .into_simple()
}

fn e2e(app: &TestApp, gw: &TestGateway) -> E2eApi {
    let id = ThreemaId::try_from(gw.id.as_str()).unwrap();
    ApiBuilder::new(id, gw.secret.clone())
        .with_custom_endpoint(endpoint(app))
        .with_private_key_str(&gw.keys.secret.to_hex())
        .and_then(ApiBuilder::into_e2e)
        .unwrap()
}

fn tid(s: &str) -> ThreemaId {
    ThreemaId::try_from(s).unwrap()
}

/// Opens the newest message queued for `to` and decodes it.
async fn last_message(
    app: &TestApp,
    gw: &TestGateway,
    to: &str,
    keys: &KeyPair,
) -> (String, E2eMessage) {
    let queued = app.queued(to).await;
    let last = queued.last().unwrap();
    let plain = SharedKey::new(&keys.secret, &gw.keys.public)
        .unwrap()
        .open(&last.nonce, &last.body)
        .unwrap();
    (
        last.message_id.to_string(),
        E2eMessage::from_padded(&plain).unwrap(),
    )
}

#[tokio::test]
async fn simple_api_sends_by_id_phone_and_email() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::Basic, 10).await;
    let alice = app
        .identity("ALICE123", Some("41791234567"), Some("alice@example.org"))
        .await;
    let api = simple(&app, &gw, &gw.secret);
    for (recipient, text) in [
        (Recipient::new_id(tid("ALICE123")), "by id"),
        (Recipient::new_phone("41791234567"), "by phone"),
        (Recipient::new_email("alice@example.org"), "by e-mail"),
    ] {
        let id = api.send(&recipient, text).await.unwrap();
        let (queued_id, message) = last_message(&app, &gw, "ALICE123", &alice).await;
        assert_eq!(
            id.to_string(),
            queued_id,
            "the SDK reads our message ID byte for byte"
        );
        assert!(matches!(message, E2eMessage::Text(ref t) if t == text));
    }
    let err = api
        .send(&Recipient::new_phone("44123456789"), "x")
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::IdNotFound), "{err:?}");
    let err = api
        .send(&Recipient::new_id(tid("ALICE123")), &"x".repeat(3501))
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::MessageTooLong), "{err:?}");
    let wrong = simple(&app, &gw, "WrongSecret1234");
    let err = wrong
        .send(&Recipient::new_id(tid("ALICE123")), "x")
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::BadCredentials), "{err:?}");
}

#[tokio::test]
async fn e2e_api_looks_up_encrypts_and_sends() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    app.allow_bulk_lookup(&gw).await;
    let bob = app
        .identity("BOB45678", Some("41791234567"), Some("test@threema.ch"))
        .await;
    let api = e2e(&app, &gw);

    let key = api.lookup_pubkey(&tid("BOB45678")).await.unwrap();
    assert_eq!(key.0.as_bytes(), bob.public.as_bytes());
    let err = api.lookup_pubkey(&tid("NOSUCHID")).await.unwrap_err();
    assert!(matches!(err, ApiError::IdNotFound), "{err:?}");
    for criterion in [
        LookupCriterion::Phone("41791234567".into()),
        LookupCriterion::Email("test@threema.ch".into()),
        LookupCriterion::PhoneHash(
            "ad398f4d7ebe63c6550a486cc6e07f9baa09bd9d8b3d8cb9d9be106d35a7fdbc".into(),
        ),
        LookupCriterion::EmailHash(
            "1ea093239cc5f0e1b6ec81b866265b921f26dc4033025410063309f4d1a8ee2c".into(),
        ),
    ] {
        assert_eq!(
            api.lookup_id(&criterion).await.unwrap(),
            tid("BOB45678"),
            "{criterion:?}"
        );
    }
    let caps = api.lookup_capabilities(&tid("BOB45678")).await.unwrap();
    assert!(caps.text && caps.image && caps.file && !caps.video);
    assert_eq!(api.lookup_credits().await.unwrap(), 10);

    let encrypted = api
        .encode_and_encrypt(&"alarm: pump 3 failed".to_owned().into(), &key)
        .unwrap();
    let id = api.send(&tid("BOB45678"), &encrypted, true).await.unwrap();
    let (queued_id, message) = last_message(&app, &gw, "BOB45678", &bob).await;
    assert_eq!(id.to_string(), queued_id);
    assert!(matches!(message, E2eMessage::Text(ref t) if t == "alarm: pump 3 failed"));
    assert_eq!(api.lookup_credits().await.unwrap(), 9);

    let keys = api
        .lookup_pubkeys_bulk(&[tid("BOB45678"), tid("NOSUCHID")])
        .await
        .unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[&tid("BOB45678")].0.as_bytes(), bob.public.as_bytes());
    let phone = LookupCriterion::Phone("41791234567".into());
    let found = api.lookup_ids_bulk(&[&phone]).await.unwrap();
    assert_eq!(found.len(), 1);
}

#[tokio::test]
async fn e2e_api_bulk_sends_and_blobs_round_trip() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    let bob = app.identity("BOB45678", None, None).await;
    let api = e2e(&app, &gw);
    let key = api.lookup_pubkey(&tid("BOB45678")).await.unwrap();

    let messages: Vec<threema_gateway::BulkE2eMessage> = ["one", "two"]
        .iter()
        .map(|t| threema_gateway::BulkE2eMessage {
            to: tid("BOB45678"),
            message: api
                .encode_and_encrypt(&(*t).to_owned().into(), &key)
                .unwrap(),
            delivery_receipts: true,
            push: true,
            is_group_message: false,
        })
        .collect();
    let refs: Vec<&threema_gateway::BulkE2eMessage> = messages.iter().collect();
    let statuses = api.send_bulk(&refs, false).await.unwrap();
    assert_eq!(statuses.len(), 2);
    let accepted = statuses
        .iter()
        .filter(|s| matches!(s, threema_gateway::BulkE2eMessageSendStatus::Success { .. }));
    assert_eq!(accepted.count(), 2);
    let (_, last) = last_message(&app, &gw, "BOB45678", &bob).await;
    assert!(matches!(last, E2eMessage::Text(ref t) if t == "two"));

    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let blob = api.blob_upload_raw(&data, false).await.unwrap();
    assert_eq!(api.blob_download(&blob).await.unwrap(), data);
    assert_eq!(
        api.lookup_credits().await.unwrap(),
        7,
        "two messages and one blob"
    );
}
