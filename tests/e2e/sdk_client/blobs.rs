//! `upload_blob` and `download_blob` through the SDK client.

use tocsin::store::GatewayMode;
use tocsin_sdk::client::Error;
use tocsin_sdk::protocol::BlobId;

use super::{client, wrong_secret_client};
use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn a_blob_uploads_for_one_credit_and_downloads_byte_for_byte() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    let reader = app.gateway(GatewayMode::E2e, 0).await;
    let data: Vec<u8> = (0..70_000u32).map(|n| (n % 251) as u8).collect();
    let sdk = client(&app, &gw);
    let id = sdk.upload_blob(data.clone(), true).await.unwrap();
    let record = app.state.store.blob(&id).await.unwrap().unwrap();
    assert_eq!((record.size, record.persist), (70_000, true));
    let plain = sdk.upload_blob(vec![1, 2, 3], false).await.unwrap();
    assert!(!app.state.store.blob(&plain).await.unwrap().unwrap().persist);
    assert_eq!(app.balance(&gw).await, 8);

    // Any authenticated account may download, even one without credits.
    let downloaded = client(&app, &reader).download_blob(&id).await.unwrap();
    assert_eq!(downloaded, Some(data));
    let unknown = BlobId::random();
    assert_eq!(sdk.download_blob(&unknown).await.unwrap(), None);
}

#[tokio::test]
async fn blob_refusals_map_to_their_errors() {
    let app = spawn_app_with(&[("TOCSIN__BLOBS__MAX_BYTES", "1000".into())]).await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    let broke = app.gateway(GatewayMode::E2e, 0).await;
    let sdk = client(&app, &gw);
    assert!(sdk.upload_blob(vec![9; 1000], false).await.is_ok());
    let over = sdk.upload_blob(vec![9; 1001], false).await;
    assert!(matches!(over, Err(Error::TooLarge)), "{over:?}");
    let empty = sdk.upload_blob(Vec::new(), false).await;
    assert!(matches!(empty, Err(Error::BadRequest(_))), "{empty:?}");
    let no_credits = client(&app, &broke).upload_blob(vec![1], false).await;
    assert!(matches!(no_credits, Err(Error::NoCredits)));
    let outsider = wrong_secret_client(&app, &gw);
    assert!(matches!(
        outsider.upload_blob(vec![1], false).await,
        Err(Error::Unauthorized)
    ));
    assert!(matches!(
        outsider.download_blob(&BlobId::random()).await,
        Err(Error::Unauthorized)
    ));
    assert_eq!(app.balance(&gw).await, 9);
}

#[tokio::test]
async fn a_download_larger_than_the_client_allows_is_refused() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    let id = client(&app, &gw)
        .upload_blob(vec![5; 5000], false)
        .await
        .unwrap();
    let small = tocsin_sdk::client::ClientBuilder::new(
        gw.id,
        tocsin_sdk::protocol::ApiSecret::parse(&gw.secret).unwrap(),
    )
    .base_url(app.url(""))
    .max_download_bytes(4999)
    .build()
    .unwrap();
    assert!(matches!(
        small.download_blob(&id).await,
        Err(Error::Decode(_))
    ));
}
