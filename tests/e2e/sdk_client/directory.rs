//! Lookups, public keys, capabilities and credits through the SDK client.

use tocsin::store::GatewayMode;
use tocsin_sdk::client::{Error, LookupMatch};
use tocsin_sdk::protocol::{hash_email, hash_phone, Capabilities, IdentityId};

use super::{alice, client, wrong_secret_client};
use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn single_lookups_find_the_id_and_answer_none_for_no_match() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 0).await;
    app.identity("ALICE123", Some("41791234567"), Some("alice@example.com"))
        .await;
    let sdk = client(&app, &gw);
    let found = Some(alice());
    assert_eq!(sdk.lookup_phone("41791234567").await.unwrap(), found);
    assert_eq!(sdk.lookup_phone("+41 79 123 45 67").await.unwrap(), found);
    assert_eq!(sdk.lookup_email("Alice@Example.com").await.unwrap(), found);
    let phone_hash = hash_phone("41791234567");
    let email_hash = hash_email("alice@example.com");
    assert_eq!(sdk.lookup_phone_hash(&phone_hash).await.unwrap(), found);
    assert_eq!(sdk.lookup_email_hash(&email_hash).await.unwrap(), found);

    assert_eq!(sdk.lookup_phone("41790000000").await.unwrap(), None);
    assert_eq!(sdk.lookup_phone("-12537825318").await.unwrap(), None);
    assert_eq!(sdk.lookup_phone("").await.unwrap(), None);
    assert_eq!(sdk.lookup_email("invalid").await.unwrap(), None);
    assert_eq!(sdk.lookup_email("a/b@c.d").await.unwrap(), None);
    assert_eq!(sdk.lookup_phone_hash(&email_hash).await.unwrap(), None);
    assert_eq!(sdk.lookup_email_hash(&phone_hash).await.unwrap(), None);
}

#[tokio::test]
async fn bulk_lookup_answers_the_matches_with_their_keys() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 0).await;
    app.allow_bulk_lookup(&gw).await;
    let keys = app
        .identity("ALICE123", Some("41791234567"), Some("alice@example.com"))
        .await;
    let sdk = client(&app, &gw);
    let phone = hash_phone("41791234567");
    let email = hash_email("alice@example.com");
    let matches = sdk
        .lookup_bulk(&[phone, hash_phone("1234567")], &[email])
        .await
        .unwrap();
    assert_eq!(
        matches,
        [
            LookupMatch {
                identity: alice(),
                public_key: keys.public,
                phone_hash: Some(phone),
                email_hash: None,
            },
            LookupMatch {
                identity: alice(),
                public_key: keys.public,
                phone_hash: None,
                email_hash: Some(email),
            },
        ]
    );
    assert!(sdk.lookup_bulk(&[], &[]).await.unwrap().is_empty());
    let too_many = vec![phone; 1001];
    assert!(matches!(
        sdk.lookup_bulk(&too_many, &[]).await,
        Err(Error::TooLarge)
    ));
}

#[tokio::test]
async fn keys_capabilities_and_credits_come_back_typed() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 42).await;
    let keys = app.identity("ALICE123", None, None).await;
    let sdk = client(&app, &gw);
    let nobody = IdentityId::parse("ZZZZZZZZ").unwrap();
    assert_eq!(sdk.pubkey(&alice()).await.unwrap(), Some(keys.public));
    assert_eq!(
        sdk.pubkey(gw.id.as_identity()).await.unwrap(),
        Some(gw.keys.public),
        "gateway IDs answer too"
    );
    assert_eq!(sdk.pubkey(&nobody).await.unwrap(), None);
    assert_eq!(
        sdk.pubkeys_bulk(&[nobody, alice()]).await.unwrap(),
        [(alice(), keys.public)]
    );
    let too_many = vec![alice(); 1001];
    assert!(matches!(
        sdk.pubkeys_bulk(&too_many).await,
        Err(Error::TooLarge)
    ));
    assert_eq!(
        sdk.capabilities(&alice()).await.unwrap(),
        Some(Capabilities::parse("text,image,file").unwrap())
    );
    assert_eq!(sdk.capabilities(&nobody).await.unwrap(), None);
    assert_eq!(sdk.credits().await.unwrap(), 42);
}

#[tokio::test]
async fn every_method_reports_a_wrong_secret_as_unauthorized() {
    let app = spawn_app().await;
    // Five failures per gateway ID and address trigger the login block, so each batch
    // of calls guesses for a gateway ID of its own.
    let (first, second) = (
        app.gateway(GatewayMode::E2e, 5).await,
        app.gateway(GatewayMode::E2e, 5).await,
    );
    app.identity("ALICE123", Some("41791234567"), None).await;
    let hash = hash_phone("41791234567");
    let sdk = wrong_secret_client(&app, &first);
    let mut outcomes = vec![
        sdk.lookup_phone("41791234567").await.map(|_| ()),
        sdk.lookup_email("a@b.c").await.map(|_| ()),
        sdk.lookup_phone_hash(&hash).await.map(|_| ()),
        sdk.lookup_email_hash(&hash).await.map(|_| ()),
        sdk.lookup_bulk(&[hash], &[]).await.map(|_| ()),
    ];
    let sdk = wrong_secret_client(&app, &second);
    outcomes.extend([
        sdk.pubkey(&alice()).await.map(|_| ()),
        sdk.pubkeys_bulk(&[alice()]).await.map(|_| ()),
        sdk.capabilities(&alice()).await.map(|_| ()),
        sdk.credits().await.map(|_| ()),
    ]);
    for (i, outcome) in outcomes.into_iter().enumerate() {
        assert!(
            matches!(outcome, Err(Error::Unauthorized)),
            "call {i}: {outcome:?}"
        );
    }
}

#[tokio::test]
async fn priced_lookups_answer_no_credits_to_an_empty_account() {
    let app = spawn_app_with(&[("TOCSIN__PRICES__LOOKUP", "1".into())]).await;
    let broke = app.gateway(GatewayMode::E2e, 0).await;
    app.allow_bulk_lookup(&broke).await;
    let paying = app.gateway(GatewayMode::E2e, 10).await;
    app.identity("ALICE123", Some("41791234567"), None).await;
    let sdk = client(&app, &broke);
    let hash = hash_phone("41791234567");
    let outcomes = [
        sdk.lookup_phone("41791234567").await.map(|_| ()),
        sdk.lookup_phone_hash(&hash).await.map(|_| ()),
        sdk.lookup_bulk(&[hash], &[]).await.map(|_| ()),
        sdk.pubkey(&alice()).await.map(|_| ()),
        sdk.pubkeys_bulk(&[alice()]).await.map(|_| ()),
        sdk.capabilities(&alice()).await.map(|_| ()),
    ];
    for (i, outcome) in outcomes.into_iter().enumerate() {
        assert!(
            matches!(outcome, Err(Error::NoCredits)),
            "call {i}: {outcome:?}"
        );
    }
    let paid = client(&app, &paying);
    assert_eq!(paid.lookup_phone_hash(&hash).await.unwrap(), Some(alice()));
    assert_eq!(app.balance(&paying).await, 9);
}
