//! Durability under SIGKILL: the real `tocsin` binary is killed mid-burst, at moments
//! drawn from a printed seed (replay with `TOCSIN_CRASH_SEED`), and started again on the
//! same data, at least five times per run, on SQLite and (when
//! `TOCSIN_TEST_POSTGRES_URL` is set) on PostgreSQL.
//!
//! * [`sends`]: what was answered 200 is there and charged once; retries with the same
//!   `Idempotency-Key` are never charged twice.
//! * [`device`]: what a device acked (and the server committed) never comes again;
//!   what it did not ack comes again; everything sent reaches it.
//!
//! And under a full disk, on SQLite, with the data on a small tmpfs of the server's own:
//! * [`disk`]: sends are refused with 503 while writes fail, nothing answered 200 is lost
//!   or charged twice, and the server recovers by itself once space is freed.
//!
//! The kills are decided by events (an answer count, a delivery count), never by time;
//! timeouts only stop a hung test. Every server a test starts is killed when the test
//! ends, whether it passed or not.

#[path = "crash/device.rs"]
mod device;
#[path = "crash/disk.rs"]
mod disk;
#[path = "crash/harness.rs"]
mod harness;
#[path = "crash/sends.rs"]
mod sends;

use harness::Engine;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_answered_before_a_sigkill_survive_it_on_sqlite() {
    sends::sends_survive_sigkill(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(pg_tests), ignore = "TOCSIN_TEST_POSTGRES_URL is not set")]
async fn sends_answered_before_a_sigkill_survive_it_on_postgres() {
    sends::sends_survive_sigkill(Engine::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_acks_survive_a_sigkill_on_sqlite() {
    device::device_acks_survive_sigkill(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(pg_tests), ignore = "TOCSIN_TEST_POSTGRES_URL is not set")]
async fn device_acks_survive_a_sigkill_on_postgres() {
    device::device_acks_survive_sigkill(Engine::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_sends_and_the_store_recovers_once_freed_on_sqlite() {
    disk::full_disk_degrades_then_recovers().await;
}
