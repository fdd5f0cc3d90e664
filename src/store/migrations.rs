//! Schema migrations, compiled into the binary so a fresh data directory needs no files.
//!
//! Each engine has its own folder of numbered SQL files; a new migration is a new file with
//! the next number in *both* folders, listed in [`MIGRATIONS`].

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::SqlSafeStr;

use super::Backend;

/// `(version, description, sqlite SQL, postgres SQL)`, in order.
const MIGRATIONS: &[(i64, &str, &str, &str)] = &[
    (
        1,
        "foundation",
        include_str!("migrations/sqlite/0001_foundation.sql"),
        include_str!("migrations/postgres/0001_foundation.sql"),
    ),
    (
        2,
        "device queue",
        include_str!("migrations/sqlite/0002_device_queue.sql"),
        include_str!("migrations/postgres/0002_device_queue.sql"),
    ),
    (
        3,
        "blob done",
        include_str!("migrations/sqlite/0003_blob_done.sql"),
        include_str!("migrations/postgres/0003_blob_done.sql"),
    ),
    (
        4,
        "queued status in queue",
        include_str!("migrations/sqlite/0004_queued_status_in_queue.sql"),
        include_str!("migrations/postgres/0004_queued_status_in_queue.sql"),
    ),
    (
        5,
        "node numbers and key log",
        include_str!("migrations/sqlite/0005_node_numbers_and_key_log.sql"),
        include_str!("migrations/postgres/0005_node_numbers_and_key_log.sql"),
    ),
    (
        6,
        "key log by commit",
        include_str!("migrations/sqlite/0006_key_log_by_commit.sql"),
        include_str!("migrations/postgres/0006_key_log_by_commit.sql"),
    ),
    (
        7,
        "store probe",
        include_str!("migrations/sqlite/0007_store_probe.sql"),
        include_str!("migrations/postgres/0007_store_probe.sql"),
    ),
];

pub(super) fn migrator(backend: Backend) -> Migrator {
    let migrations = MIGRATIONS
        .iter()
        .map(|&(version, description, sqlite, postgres)| {
            let sql = backend.pick(sqlite, postgres);
            Migration::new(
                version,
                Cow::Borrowed(description),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect();
    Migrator::with_migrations(migrations)
}
