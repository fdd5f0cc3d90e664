//! The gateway API over HTTP with a raw client: every endpoint family, the chat server
//! at `/chat`, callbacks, rate limits and the operator endpoints.

mod alarms;
mod blobs;
mod bulk_lookup;
mod callbacks;
mod chat;
mod chat_limits;
mod deadlines;
mod directory;
mod identities;
mod log_redaction;
mod openapi;
mod ops;
mod ratelimit;
mod residue;
mod send;
mod send_bulk;
mod send_simple;
mod ttl;
