//! The SDK's HTTP client against the real server (port 0, on the run's engine): every
//! method with its success and its error statuses, the E2E helpers end to end, the
//! status table against the server's, and transport errors free of the secret.

mod alarms;
mod blobs;
mod directory;
mod e2e;
mod errors;
mod send;

use tocsin_sdk::client::{Client, ClientBuilder, E2eClient};
use tocsin_sdk::protocol::{ApiSecret, IdentityId};

use crate::helpers::{TestApp, TestGateway};

/// A client acting as `gw` against `app`.
pub fn client(app: &TestApp, gw: &TestGateway) -> Client {
    ClientBuilder::new(gw.id, ApiSecret::parse(&gw.secret).unwrap())
        .base_url(app.url("/"))
        .build()
        .unwrap()
}

/// A client acting as `gw` with the wrong secret.
pub fn wrong_secret_client(app: &TestApp, gw: &TestGateway) -> Client {
    ClientBuilder::new(gw.id, ApiSecret::parse("WrongSecret123").unwrap())
        .base_url(app.url(""))
        .build()
        .unwrap()
}

/// An E2E client acting as `gw`, holding its secret key.
pub fn e2e_client(app: &TestApp, gw: &TestGateway) -> E2eClient {
    E2eClient::new(client(app, gw), gw.keys.secret.clone())
}

/// `ALICE123`, the usual recipient.
pub fn alice() -> IdentityId {
    IdentityId::parse("ALICE123").unwrap()
}
