//! Durability under SIGKILL: the real `tocsin` binary is killed mid-burst, at moments
//! drawn from a printed seed (replay with `TOCSIN_CRASH_SEED`), and started again on the
//! same data, on the run's engine. Each scenario kills it five times, so every engine
//! `scripts/test` runs sees ten kills.
//!
//! * [`sends`]: what was answered 200 is there and charged once; retries with the same
//!   `Idempotency-Key` are never charged twice.
//! * [`device`]: what a device acked (and the server committed) never comes again;
//!   what it did not ack comes again; everything sent reaches it.
//!
//! And under a full disk, with the data on a small tmpfs of the server's own:
//! * [`disk`]: sends are refused with 503 while writes fail, nothing answered 200 is lost
//!   or charged twice, and the server recovers by itself once space is freed. The tmpfs
//!   holds the whole database on SQLite only, so this one is SQLite's alone (see
//!   [`Engine::require_sqlite`](crate::helpers::Engine::require_sqlite)).
//!
//! The kills are decided by events (an answer count, a delivery count), never by time;
//! timeouts only stop a hung test. Every server a test starts is killed when the test
//! ends, whether it passed or not.

mod device;
mod disk;
pub(crate) mod harness;
mod sends;
