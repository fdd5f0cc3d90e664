//! What the tests share: the server per test, seeding and waits from `tocsin-testkit`, and
//! running this package's `tocsin-cli`.

pub mod tocsin_cli;

pub use tocsin_testkit::*;
