//! The storage engine of this run, named by `TOCSIN_TEST_ENGINE`: `sqlite` (the default)
//! or `postgres`. A run that asks for PostgreSQL without naming a server fails; it never
//! turns into a SQLite run.
//!
//! A test whose subject only one engine has (SQLite's own files on a disk the test
//! controls) ends its name in [`SQLITE_ONLY`] and starts with
//! [`Engine::require_sqlite`]. The PostgreSQL pass of `scripts/test` leaves such tests
//! out by name, and libtest counts them as filtered out there: it cannot report a test
//! ignored at run time, and one that passed without checking anything would claim a
//! check of PostgreSQL that never ran. Tests of several nodes on one database are the
//! other way round: their names end in [`POSTGRES_ONLY`], and the SQLite pass leaves them
//! out.

use std::env::VarError;

use tocsin::store::Backend;

/// The variable that picks the engine.
pub const ENGINE_VAR: &str = "TOCSIN_TEST_ENGINE";

/// How the name of a test for SQLite alone ends; runs on another engine skip it with
/// `-- --skip on_sqlite_only`.
pub const SQLITE_ONLY: &str = "on_sqlite_only";

/// How the name of a test for PostgreSQL alone ends (several nodes on one database); the
/// SQLite pass skips it with `-- --skip on_postgres_only`.
pub const POSTGRES_ONLY: &str = "on_postgres_only";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// A fresh SQLite file in the test's own data directory.
    Sqlite,
    /// A fresh database on the server `TOCSIN_TEST_POSTGRES_URL` names.
    Postgres,
}

impl Engine {
    /// The engine `TOCSIN_TEST_ENGINE` asks for.
    ///
    /// # Panics
    /// On a value other than `sqlite`, `postgres` or empty.
    pub fn selected() -> Self {
        match std::env::var(ENGINE_VAR) {
            Err(VarError::NotPresent) => Self::Sqlite,
            Ok(name) => match name.as_str() {
                "" | "sqlite" => Self::Sqlite,
                "postgres" => Self::Postgres,
                other => panic!("{ENGINE_VAR}={other:?}: expected `sqlite` or `postgres`"),
            },
            Err(VarError::NotUnicode(name)) => {
                panic!("{ENGINE_VAR}={name:?}: expected `sqlite` or `postgres`")
            }
        }
    }

    /// Fails the test, saying why, unless the run is on SQLite: `what`, the test's
    /// subject, exists on SQLite only. Its name ends in [`SQLITE_ONLY`].
    ///
    /// # Panics
    /// On any other engine.
    pub fn require_sqlite(what: &str) {
        let engine = Self::selected();
        assert!(
            engine == Self::Sqlite,
            "{what} exists on SQLite only: this test does not apply to a run on {engine:?}. \
             Leave it out with `-- --skip {SQLITE_ONLY}`, as scripts/test does."
        );
    }

    /// Fails the test, saying why, unless the run is on PostgreSQL: `what`, the test's
    /// subject, exists there only. Its name ends in [`POSTGRES_ONLY`].
    ///
    /// # Panics
    /// On any other engine.
    pub fn require_postgres(what: &str) {
        let engine = Self::selected();
        assert!(
            engine == Self::Postgres,
            "{what} exists on PostgreSQL only: this test does not apply to a run on {engine:?}. \
             Leave it out with `-- --skip {POSTGRES_ONLY}`, as scripts/test does."
        );
    }

    /// The store backend a server on this engine reports.
    pub fn backend(self) -> Backend {
        match self {
            Self::Sqlite => Backend::Sqlite,
            Self::Postgres => Backend::Postgres,
        }
    }

    /// The `storage.url` of a fresh database on this engine; `None` for SQLite, whose
    /// default file lives in the data directory each test makes for itself.
    ///
    /// # Panics
    /// On PostgreSQL, when `TOCSIN_TEST_POSTGRES_URL` is not set or its server does not
    /// answer.
    pub async fn fresh_storage_url(self) -> Option<String> {
        match self {
            Self::Sqlite => None,
            Self::Postgres => {
                let url = tocsin::store::testing::fresh_postgres_database().await;
                Some(url.unwrap_or_else(|| {
                    panic!(
                        "{ENGINE_VAR}=postgres needs TOCSIN_TEST_POSTGRES_URL, e.g. \
                         postgres://postgres@127.0.0.1:5432/postgres"
                    )
                }))
            }
        }
    }
}
