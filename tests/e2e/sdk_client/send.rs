//! `send_simple`, `send_e2e` and `send_e2e_bulk` through the SDK client.

use tocsin::store::GatewayMode;
use tocsin_sdk::client::{E2eSend, Error, Recipient};
use tocsin_sdk::crypto::SharedKey;
use tocsin_sdk::protocol::{E2eMessage, IdentityId, MessageFlags, Nonce};

use super::{alice, client, wrong_secret_client};
use crate::helpers::spawn_app;

#[tokio::test]
async fn send_simple_reaches_the_recipient_by_id_phone_and_email_for_one_credit_each() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::Basic, 10).await;
    let keys = app
        .identity("ALICE123", Some("41791234567"), Some("alice@example.com"))
        .await;
    let sdk = client(&app, &gw);
    let recipients = [
        Recipient::Id(alice()),
        Recipient::Phone("+41 79 123 45 67".into()),
        Recipient::Email(" Alice@Example.com".into()),
    ];
    let mut ids = Vec::new();
    for (i, to) in recipients.iter().enumerate() {
        ids.push(sdk.send_simple(to, &format!("alert {i}")).await.unwrap());
    }
    let q = app.queued("ALICE123").await;
    assert_eq!(q.iter().map(|m| m.message_id).collect::<Vec<_>>(), ids);
    let shared = SharedKey::new(&keys.secret, &gw.keys.public).unwrap();
    for (i, msg) in q.iter().enumerate() {
        let plain = shared.open(&msg.nonce, &msg.body).unwrap();
        assert_eq!(
            E2eMessage::from_padded(&plain).unwrap(),
            E2eMessage::Text(format!("alert {i}"))
        );
    }
    assert_eq!(app.balance(&gw).await, 7);
}

#[tokio::test]
async fn send_simple_maps_every_refusal_to_its_error() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::Basic, 10).await;
    let broke = app.gateway(GatewayMode::Basic, 0).await;
    let e2e_only = app.gateway(GatewayMode::E2e, 10).await;
    app.identity("ALICE123", None, None).await;
    let sdk = client(&app, &gw);
    let to = Recipient::Id(alice());
    assert!(sdk.send_simple(&to, &"x".repeat(3500)).await.is_ok());
    let too_long = sdk.send_simple(&to, &"x".repeat(3501)).await;
    assert!(matches!(too_long, Err(Error::TooLarge)), "{too_long:?}");
    let unknown = Recipient::Id(IdentityId::parse("00000000").unwrap());
    let err = sdk.send_simple(&unknown, "hi").await.unwrap_err();
    assert!(
        matches!(&err, Error::BadRequest(r) if r.contains("unknown")),
        "{err}"
    );
    let nobody = Recipient::Phone("999999999".into());
    assert!(matches!(
        sdk.send_simple(&nobody, "hi").await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        sdk.send_simple(&to, "").await,
        Err(Error::BadRequest(_))
    ));
    let wrong_mode = client(&app, &e2e_only).send_simple(&to, "hi").await;
    assert!(
        matches!(wrong_mode, Err(Error::BadRequest(_))),
        "{wrong_mode:?}"
    );
    let no_credits = client(&app, &broke).send_simple(&to, "hi").await;
    assert!(matches!(no_credits, Err(Error::NoCredits)));
    let bad_secret = wrong_secret_client(&app, &gw).send_simple(&to, "hi").await;
    assert!(matches!(bad_secret, Err(Error::Unauthorized)));
    assert_eq!(app.queued("ALICE123").await.len(), 1);
    assert_eq!(app.balance(&gw).await, 9);
}

#[tokio::test]
async fn send_e2e_relays_the_box_with_its_flags_and_maps_refusals() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    let basic = app.gateway(GatewayMode::Basic, 10).await;
    let broke = app.gateway(GatewayMode::E2e, 0).await;
    app.identity("ALICE123", None, None).await;
    let sdk = client(&app, &gw);
    let mut msg = E2eSend::new(alice(), Nonce::random(), vec![0x31; 4000]);
    msg.no_push = true;
    msg.no_delivery_receipts = true;
    msg.group = true;
    let id = sdk.send_e2e(&msg).await.unwrap();
    let q = app.queued("ALICE123").await;
    assert_eq!(
        (q[0].message_id, q[0].nonce, &q[0].body),
        (id, msg.nonce, &msg.sealed)
    );
    assert_eq!(
        q[0].flags,
        MessageFlags::NO_RECEIPTS | MessageFlags::GROUP,
        "no PUSH"
    );

    let fresh = |sealed: Vec<u8>| E2eSend::new(alice(), Nonce::random(), sealed);
    assert!(matches!(
        sdk.send_e2e(&fresh(vec![0x31; 4001])).await,
        Err(Error::TooLarge)
    ));
    assert!(matches!(
        sdk.send_e2e(&fresh(vec![])).await,
        Err(Error::BadRequest(_))
    ));
    let stranger = E2eSend::new(
        IdentityId::parse("00000000").unwrap(),
        Nonce::random(),
        vec![1],
    );
    assert!(matches!(
        sdk.send_e2e(&stranger).await,
        Err(Error::BadRequest(_))
    ));
    let wrong_mode = client(&app, &basic).send_e2e(&fresh(vec![1])).await;
    assert!(matches!(wrong_mode, Err(Error::BadRequest(_))));
    let no_credits = client(&app, &broke).send_e2e(&fresh(vec![1])).await;
    assert!(matches!(no_credits, Err(Error::NoCredits)));
    let bad_secret = wrong_secret_client(&app, &gw)
        .send_e2e(&fresh(vec![1]))
        .await;
    assert!(matches!(bad_secret, Err(Error::Unauthorized)));
    assert_eq!(app.queued("ALICE123").await.len(), 1);
    assert_eq!(app.balance(&gw).await, 9);
}

#[tokio::test]
async fn an_idempotency_key_makes_a_retry_answer_the_first_id_without_a_second_charge() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    let basic = app.gateway(GatewayMode::Basic, 10).await;
    app.identity("ALICE123", None, None).await;
    let sdk = client(&app, &gw);
    let first = E2eSend::new(alice(), Nonce::random(), vec![7; 40]);
    let retry = E2eSend::new(alice(), Nonce::random(), vec![7; 40]);
    let a = sdk
        .send_e2e_with_idempotency_key(&first, "order-1")
        .await
        .unwrap();
    let b = sdk
        .send_e2e_with_idempotency_key(&retry, "order-1")
        .await
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(app.balance(&gw).await, 9);

    let simple = client(&app, &basic);
    let to = Recipient::Id(alice());
    let a = simple
        .send_simple_with_idempotency_key(&to, "hi", "k-2")
        .await
        .unwrap();
    let b = simple
        .send_simple_with_idempotency_key(&to, "hi", "k-2")
        .await
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(app.balance(&basic).await, 9);
    assert_eq!(app.queued("ALICE123").await.len(), 2);

    for bad in ["", "has space", &"k".repeat(256)] {
        let err = sdk.send_e2e_with_idempotency_key(&first, bad).await;
        assert!(matches!(err, Err(Error::Invalid(_))), "{bad:?}");
    }
}

#[tokio::test]
async fn bulk_sends_report_each_element_in_order() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 3).await;
    app.identity("ALICE123", None, None).await;
    app.identity("BOB45678", None, None).await;
    let bob = IdentityId::parse("BOB45678").unwrap();
    let sdk = client(&app, &gw);
    let msgs = [
        E2eSend::new(alice(), Nonce::random(), vec![1; 30]),
        E2eSend::new(
            IdentityId::parse("00000000").unwrap(),
            Nonce::random(),
            vec![1],
        ),
        E2eSend::new(alice(), Nonce::random(), vec![1; 4001]),
        E2eSend::new(bob, Nonce::random(), vec![2; 30]),
    ];
    let results = sdk.send_e2e_bulk(&msgs, true).await.unwrap();
    assert_eq!(results.len(), 4);
    assert_eq!((results[1], results[2]), (Err(400), Err(413)));
    let (a, b) = (results[0].unwrap(), results[3].unwrap());
    assert_eq!(a, b, "sameMessageId");
    assert_eq!(app.queued("BOB45678").await[0].body, vec![2; 30]);

    // One credit left: the first element takes it, the second gets 402.
    let two = [
        E2eSend::new(alice(), Nonce::random(), vec![3; 30]),
        E2eSend::new(bob, Nonce::random(), vec![3; 30]),
    ];
    let results = sdk.send_e2e_bulk(&two, false).await.unwrap();
    assert!(results[0].is_ok());
    assert_eq!(results[1], Err(402));
    assert_eq!(app.balance(&gw).await, 0);

    let too_many: Vec<E2eSend> = (0..1001)
        .map(|_| E2eSend::new(alice(), Nonce::random(), vec![1]))
        .collect();
    assert!(matches!(
        sdk.send_e2e_bulk(&too_many, false).await,
        Err(Error::TooLarge)
    ));
    let bad_secret = wrong_secret_client(&app, &gw)
        .send_e2e_bulk(&two, false)
        .await;
    assert!(matches!(bad_secret, Err(Error::Unauthorized)));
    assert!(sdk.send_e2e_bulk(&[], false).await.unwrap().is_empty());
}
