//! Files on devices against the real server (port 0, on the run's engine): a file of the
//! largest size a default server carries sent by `E2eClient::send_file`, downloaded,
//! decrypted and checked by a device, and gone from the server once the device reports
//! it done; the listener's file notices, thumbnails, a handler that asks for a message
//! again later, and a file that is gone; and `tocsin-cli device listen --files`.

mod cli;
mod listener;
mod round_trip;

use std::future::Future;
use std::time::Duration;

use tocsin_sdk::client::{ClientBuilder, E2eClient};
use tocsin_sdk::protocol::{ApiSecret, BlobId};

use crate::helpers::{TestApp, TestGateway};

/// Longest wait for anything a test expects; only a hung test ever reaches it.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// An end-to-end client acting as `gw`.
pub fn e2e_client(app: &TestApp, gw: &TestGateway) -> E2eClient {
    let client = ClientBuilder::new(gw.id, ApiSecret::parse(&gw.secret).unwrap())
        .base_url(app.url(""))
        .build()
        .unwrap();
    E2eClient::new(client, gw.keys.secret.clone())
}

/// The status of the device download of blob `id`.
pub async fn blob_status(app: &TestApp, id: &BlobId) -> u16 {
    app.client
        .get(app.url(&format!("/api/v1/blobs/{id}")))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Re-checks `condition` every 10 ms until it holds; fails the test after [`PATIENCE`].
pub async fn until<F, Fut>(what: &str, condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    crate::helpers::wait::until_within(PATIENCE, what, condition).await;
}
