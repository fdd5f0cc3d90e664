//! The SDK's callback receiver (`tocsin_sdk::receive`): the contract's MAC vector and
//! every refusal in its order, arbitrary bodies without a panic, and the whole way
//! round against the real server (port 0; a fresh PostgreSQL database per test when
//! `TOCSIN_TEST_POSTGRES_URL` is set, else a fresh SQLite file): a device replies to an
//! end-to-end gateway ID and receipts its alert, the server's dispatcher POSTs both to
//! a receiver, which opens them; and `tocsin-cli callback serve` doing the same.
//!
//! Nothing here waits a fixed time for something to happen: tests wait for an event or
//! poll a condition, and the timeouts only stop a test that would otherwise hang.

/// Whether `spawn_app` puts the server on a fresh PostgreSQL database.
pub const ON_POSTGRES: bool = true;

// The shared harness has helpers these tests do not call.
#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

#[path = "common/wait.rs"]
mod wait;

#[allow(dead_code)]
#[path = "common/tocsin_cli.rs"]
mod tocsin_cli;

#[path = "callback_receiver/cli.rs"]
mod cli;
#[path = "callback_receiver/dispatch.rs"]
mod dispatch;
#[path = "callback_receiver/fuzz.rs"]
mod fuzz;
#[path = "callback_receiver/vectors.rs"]
mod vectors;

use std::future::Future;
use std::time::Duration;

use tocsin::store::GatewayMode;
use tocsin_sdk::client::{Client, ClientBuilder};
use tocsin_sdk::protocol::ApiSecret;

use helpers::{TestApp, TestGateway};

/// Longest wait for anything a test expects; only a hung test ever reaches it.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// Settings that let the dispatcher deliver to receivers on this machine.
pub fn loopback_allowed() -> Vec<(&'static str, String)> {
    vec![("TOCSIN__CALLBACKS__ALLOWED_RANGES", "127.0.0.0/8".into())]
}

/// An end-to-end gateway ID with credits whose callbacks go to `url`.
pub async fn gateway_with_callback(app: &TestApp, url: &str) -> TestGateway {
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    app.state
        .store
        .set_callback_url(&gw.id, Some(url))
        .await
        .unwrap();
    gw
}

/// A gateway API client acting as `gw`.
pub fn gateway_client(app: &TestApp, gw: &TestGateway) -> Client {
    ClientBuilder::new(gw.id, ApiSecret::parse(&gw.secret).unwrap())
        .base_url(app.url(""))
        .build()
        .unwrap()
}

/// Re-checks `condition` every 10 ms until it holds; fails the test after [`PATIENCE`].
pub async fn until<F, Fut>(what: &str, condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait::until(PATIENCE, what, condition).await;
}
