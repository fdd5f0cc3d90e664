//! `E2eClient`: what it sends is what the recipient can open, files included.

use tocsin::store::GatewayMode;
use tocsin_sdk::client::Error;
use tocsin_sdk::crypto::{decrypt_file_blob, decrypt_thumbnail_blob, SharedKey};
use tocsin_sdk::protocol::{E2eMessage, IdentityId, KeyPair, Nonce};

use super::{alice, client, e2e_client};
use crate::helpers::spawn_app;

#[tokio::test]
async fn send_text_is_opened_by_the_recipient_as_the_same_text() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    let keys = app.identity("ALICE123", None, None).await;
    let sdk = e2e_client(&app, &gw);
    assert_eq!(sdk.public_key(), gw.keys.public);
    let id = sdk
        .send_text(&alice(), "Disk full on db-1 ✓")
        .await
        .unwrap();
    let q = app.queued("ALICE123").await;
    assert_eq!(q[0].message_id, id);
    let plain = SharedKey::new(&keys.secret, &gw.keys.public)
        .unwrap()
        .open(&q[0].nonce, &q[0].body)
        .unwrap();
    assert_eq!(
        E2eMessage::from_padded(&plain).unwrap(),
        E2eMessage::Text("Disk full on db-1 ✓".into())
    );
    assert_eq!(app.balance(&gw).await, 9);
}

#[tokio::test]
async fn send_file_uploads_blobs_the_recipient_can_decrypt() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    let keys = app.identity("ALICE123", None, None).await;
    let sdk = e2e_client(&app, &gw);
    let file: Vec<u8> = (0..100_000u32).map(|n| (n * 31 % 256) as u8).collect();
    let thumb = vec![0xab; 700];
    let id = sdk
        .send_file(
            &alice(),
            &file,
            "application/pdf",
            Some("report.pdf"),
            Some("Q3 report"),
            Some((&thumb, "image/jpeg")),
        )
        .await
        .unwrap();
    assert_eq!(app.balance(&gw).await, 7, "message plus two blobs");
    let q = app.queued("ALICE123").await;
    assert_eq!(q[0].message_id, id);
    let plain = SharedKey::new(&keys.secret, &gw.keys.public)
        .unwrap()
        .open(&q[0].nonce, &q[0].body)
        .unwrap();
    let E2eMessage::File(msg) = E2eMessage::from_padded(&plain).unwrap() else {
        panic!("not a file message");
    };
    assert_eq!(msg.media_type, "application/pdf");
    assert_eq!(msg.size, 100_000);
    assert_eq!(msg.name.as_deref(), Some("report.pdf"));
    assert_eq!(msg.caption.as_deref(), Some("Q3 report"));
    assert_eq!(msg.thumbnail_media_type.as_deref(), Some("image/jpeg"));

    // The recipient downloads with any account and decrypts with the key in the message.
    let reader = client(&app, &app.gateway(GatewayMode::E2e, 0).await);
    let blob = reader.download_blob(&msg.blob_id).await.unwrap().unwrap();
    assert_eq!(decrypt_file_blob(&msg.key, &blob).unwrap(), file);
    let thumb_id = msg.thumbnail_blob_id.unwrap();
    let thumb_blob = reader.download_blob(&thumb_id).await.unwrap().unwrap();
    assert_eq!(
        decrypt_thumbnail_blob(&msg.key, &thumb_blob).unwrap(),
        thumb
    );
    assert_eq!(sdk.download_file(&msg).await.unwrap(), file);
}

#[tokio::test]
async fn an_unknown_recipient_is_not_found_and_costs_nothing() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    let sdk = e2e_client(&app, &gw);
    let nobody = IdentityId::parse("ZZZZZZZZ").unwrap();
    assert!(matches!(
        sdk.send_text(&nobody, "hi").await,
        Err(Error::NotFound)
    ));
    let file = sdk
        .send_file(&nobody, b"data", "text/plain", None, None, None)
        .await;
    assert!(matches!(file, Err(Error::NotFound)));
    assert_eq!(app.balance(&gw).await, 10, "nothing uploaded, nothing sent");
}

#[tokio::test]
async fn open_message_reads_what_a_user_sealed_for_the_gateway_and_refuses_tampering() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    let sdk = e2e_client(&app, &gw);
    let user = KeyPair::generate();
    let nonce = Nonce::random();
    let reply = E2eMessage::Text("ack".into());
    let mut sealed = SharedKey::new(&user.secret, &gw.keys.public)
        .unwrap()
        .seal(&nonce, &reply.to_padded());
    assert_eq!(
        sdk.open_message(&user.public, &nonce, &sealed).unwrap(),
        reply
    );
    let stranger = KeyPair::generate().public;
    assert!(matches!(
        sdk.open_message(&stranger, &nonce, &sealed),
        Err(Error::Crypto(_))
    ));
    sealed[20] ^= 1;
    assert!(matches!(
        sdk.open_message(&user.public, &nonce, &sealed),
        Err(Error::Crypto(_))
    ));
    // A box that opens but holds no valid container.
    let junk = SharedKey::new(&user.secret, &gw.keys.public)
        .unwrap()
        .seal(&nonce, &[1, 0]);
    assert!(matches!(
        sdk.open_message(&user.public, &nonce, &junk),
        Err(Error::Message(_))
    ));
}
