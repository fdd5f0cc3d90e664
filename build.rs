//! Tells the tests whether a PostgreSQL server was named for them.
//!
//! Tests that need PostgreSQL carry `#[cfg_attr(not(pg_tests), ignore = "…")]`: without
//! `TOCSIN_TEST_POSTGRES_URL` they are reported as ignored, never as passed. Cargo builds
//! again when the variable changes, so the build and the run always agree.

fn main() {
    println!("cargo::rerun-if-env-changed=TOCSIN_TEST_POSTGRES_URL");
    println!("cargo::rustc-check-cfg=cfg(pg_tests)");
    if std::env::var_os("TOCSIN_TEST_POSTGRES_URL").is_some_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=pg_tests");
    }
}
