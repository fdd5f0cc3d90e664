//! End-to-end tests: the real server on port 0, spoken to over HTTP.

mod blobs;
mod bulk_lookup;
mod directory;
mod helpers;
mod openapi;
mod ops;
mod ratelimit;
mod send;
mod send_bulk;
mod send_simple;
