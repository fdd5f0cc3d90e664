//! The SDK's callback receiver (`tocsin_sdk::receive`): the contract's MAC vector and
//! every refusal in its order, arbitrary bodies without a panic, and the whole way
//! round against the real server (port 0, on the run's engine): a device replies to an
//! end-to-end gateway ID and receipts its alert, the server's dispatcher POSTs both to
//! a receiver, which opens them; and `tocsin-cli callback serve` doing the same.
//!
//! Nothing here waits a fixed time for something to happen: tests wait for an event or
//! poll a condition, and the timeouts only stop a test that would otherwise hang.

mod cli;
mod dispatch;
mod fuzz;
mod vectors;

use std::future::Future;
use std::time::Duration;

use tocsin_sdk::client::{Client, ClientBuilder};
use tocsin_sdk::protocol::ApiSecret;

use crate::helpers::{TestApp, TestGateway};

/// Longest wait for anything a test expects; only a hung test ever reaches it.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// Settings that let the dispatcher deliver to receivers on this machine.
pub fn loopback_allowed() -> Vec<(&'static str, String)> {
    vec![("TOCSIN__CALLBACKS__ALLOWED_RANGES", "127.0.0.0/8".into())]
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
    crate::helpers::wait::until(PATIENCE, what, condition).await;
}
