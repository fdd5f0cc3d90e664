//! Tocsin: a self-hosted, end-to-end encrypted gateway for machine-to-person alerts.
//!
//! Third-party software calls the HTTP API (wire-compatible with the Threema Gateway API);
//! Tocsin checks the caller, debits credits, encrypts in basic mode, and queues the message
//! for every device of the recipient.
//!
//! ```text
//!  customer ──HTTP──► http ─► auth ─► ratelimit ─► meter ─► seal* ─► submit ──► store queue
//!  device ◄──WS── chat session ◄── hub ◄── dispatch ◄──────────────────────────── store queue
//!  device ──WS──► chat session ─► receipts ─► callback outbox ──HTTP──► customer callback URL
//!  * basic mode only: the server holds the key and seals.
//! ```
//!
//! Modules in flow order: [`config`] and [`telemetry`] set the process up; [`startup`] binds
//! the listeners around an [`state::AppState`]; [`http`] is the edge; [`store`] is the one
//! durable home of accounts, keys, queues and ledgers; [`crypto`] protects secrets at rest;
//! [`admin`] is the operator's command line.

pub mod admin;
pub mod auth;
pub mod blobs;
pub mod callback;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod http;
pub mod hub;
pub mod metrics;
pub mod ratelimit;
pub mod shutdown;
pub mod startup;
pub mod state;
pub mod store;
pub mod submit;
pub mod telemetry;
pub mod ws;
