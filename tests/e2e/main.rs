//! End-to-end tests, one binary: the real server on port 0, driven over HTTP, through the
//! SDK, through the published Threema Gateway SDK and through the command-line tools.
//!
//! Every server a test starts runs on the storage engine `TOCSIN_TEST_ENGINE` names:
//! `sqlite` (the default; a fresh file per test) or `postgres` (a fresh database per test
//! on the server `TOCSIN_TEST_POSTGRES_URL` names, which must then be set). `scripts/test`
//! runs this binary once on each engine. Where an engine shows itself to the outside
//! (what it keeps in memory, whether a second server may share its database), a test
//! states the expectation for each engine rather than picking one. A test about what
//! only SQLite has (its files on a full disk) is named `…_on_sqlite_only`, fails on
//! another engine, and is left out of the PostgreSQL pass by name (`helpers::engine`).
//! Tests of several nodes on one database are named `…_on_postgres_only` and are left
//! out of the SQLite pass the same way.
//!
//! The crash tests ([`crash`]) run the `tocsin` binary itself and kill it with SIGKILL.
//!
//! Nothing here waits a fixed time for something to happen: tests wait for an event or
//! poll a condition, and the timeouts only stop a test that would otherwise hang.

mod api;
mod callback_receiver;
mod cli;
mod compat;
mod crash;
mod device;
mod device_files;
mod helpers;
mod sdk_cli;
mod sdk_client;
mod tls;
