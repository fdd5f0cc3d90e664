//! Tocsin: a self-hosted, end-to-end encrypted gateway for machine-to-person alerts.
//!
//! Third-party software calls the HTTP API (wire-compatible with the Threema Gateway API);
//! Tocsin checks the caller, charges credits, encrypts in basic mode, and queues the
//! message for every device of the recipient. Devices connect over WebSocket, take their
//! queue, and send back acks, receipts and replies; receipts and replies reach the customer
//! as callbacks.
//!
//! ```text
//!  customer ─HTTP─► http ─► ratelimit ─► auth ─► meter ─► seal* ─► submit ─► store: charge + queue
//!  device ◄──WS── ws::session ◄── store queue; hub: wake-ups, new messages on SQLite
//!  device ──WS──► ws::session ─► store: acks, receipts, queue, callback outbox
//!  customer callback URL ◄──HTTP── callback::dispatch ◄── store: callback outbox
//!  * basic mode only: the server holds the gateway ID's key and seals.
//! ```
//!
//! Modules, by role:
//! * the process: [`config`] and [`telemetry`] set it up; [`startup`] opens the store,
//!   builds the [`state::AppState`] every handler and worker shares, binds the listeners
//!   (the API's with HTTPS from [`tls`] when configured) and runs the workers;
//!   [`shutdown`] waits for the stop signal; [`metrics`] counts;
//! * the edges: [`http`] (the Gateway API), [`ws`] (devices at `GET /chat`), [`callback`]
//!   (POSTs to customers, only to addresses its guard permits);
//! * the send path: [`ratelimit`] (keyed on the address [`client_ip`] finds), [`auth`],
//!   [`meter`] (the one place that prices a paid
//!   operation), [`crypto`] (server keys, the data key that protects secrets at rest,
//!   basic-mode shared keys), and [`submit`], the one use case every way of sending ends in;
//! * shared by both directions: [`store`], the one durable home of accounts, keys, queues,
//!   ledgers and the callback outbox (its own docs map its parts); [`hub`], the registry of
//!   connected sessions; [`blobs`], blob bytes on disk; [`domain`], server-only vocabulary;
//! * [`admin`]: the operator's command line.

pub mod admin;
pub mod alarms;
pub mod auth;
pub mod blobs;
pub mod callback;
pub mod client_ip;
pub mod cluster;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod housekeeping;
pub mod http;
pub mod hub;
pub mod meter;
pub mod metrics;
pub mod ratelimit;
pub mod shutdown;
pub mod startup;
pub mod state;
pub mod store;
pub mod submit;
pub mod telemetry;
pub mod tls;
pub mod ws;
