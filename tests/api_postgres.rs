//! The HTTP suite of `tests/api/` again, each test on a fresh PostgreSQL database (when
//! `TOCSIN_TEST_POSTGRES_URL` is set; otherwise it repeats the SQLite run).

/// Whether `spawn_app` puts the server on a fresh PostgreSQL database.
pub const ON_POSTGRES: bool = true;

#[path = "api/blobs.rs"]
mod blobs;
#[path = "api/bulk_lookup.rs"]
mod bulk_lookup;
#[path = "api/callbacks.rs"]
mod callbacks;
#[path = "api/chat.rs"]
mod chat;
#[path = "api/directory.rs"]
mod directory;
#[path = "api/helpers.rs"]
mod helpers;
#[path = "api/identities.rs"]
mod identities;
#[path = "api/openapi.rs"]
mod openapi;
#[path = "api/ops.rs"]
mod ops;
#[path = "api/ratelimit.rs"]
mod ratelimit;
#[path = "api/send.rs"]
mod send;
#[path = "api/send_bulk.rs"]
mod send_bulk;
#[path = "api/send_simple.rs"]
mod send_simple;
