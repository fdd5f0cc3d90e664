//! End-to-end tests: the real server on port 0, spoken to over HTTP, on SQLite.
//! `tests/api_postgres.rs` runs the same modules on PostgreSQL.

/// Whether `spawn_app` puts the server on a fresh PostgreSQL database.
pub const ON_POSTGRES: bool = false;

mod blobs;
mod bulk_lookup;
mod callbacks;
mod chat;
mod directory;
mod helpers;
mod identities;
mod openapi;
mod ops;
mod ratelimit;
mod send;
mod send_bulk;
mod send_simple;
