//! Durable storage: one contract, two engines.
//!
//! Every table lives behind [`Store`]. The engine is picked by the URL: `sqlite:` (the embedded
//! default, a WAL-mode file under the data directory) or `postgres:` (several nodes sharing one
//! database). Both run the *same* SQL text through sqlx's `Any` driver; only the migrations
//! differ (`BLOB` vs `BYTEA`, identity columns), so they live in one folder per engine.
//!
//! Invariants the rest of the server relies on:
//! * an account's `balance` equals the sum of its ledger rows and never goes negative;
//! * a paid submission (debit + ledger row + queued message + idempotency keys) is one
//!   transaction — all of it is durable or none of it is (see [`queue`]);
//! * on SQLite every write goes through a single connection, so writers queue in-process
//!   instead of failing with `SQLITE_BUSY`; reads use a separate pool.

mod accounts;
mod blobs;
mod delivery;
mod gateways;
mod group;
mod idempotency;
mod identities;
mod inbox;
mod migrations;
mod outbox;
mod queue;
mod rows;
mod writer;

#[cfg(test)]
mod conformance;
#[doc(hidden)]
pub mod testing;

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor};

pub use accounts::{Account, AccountId, LedgerEntry};
pub use blobs::{BlobRecord, NewBlob};
pub use delivery::{AckOutcome, Device};
pub use gateways::{GatewayMode, GatewayRecord, NewGateway};
pub use idempotency::Forgotten;
pub use identities::{IdentityRecord, NewIdentity};
pub use inbox::Inbox;
pub use outbox::{CallbackEntry, ClaimedCallback, DeadCallback};
pub use queue::{Charge, NewMessage, QueuedMessage, Submission, SubmitOutcome};
pub use writer::{QueueListener, WriterCounts};

/// Which database engine a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// What went wrong in the store. Callers map these to their own outcomes; the text is for logs.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
    #[error("{what} already exists")]
    AlreadyExists { what: String },
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("stored row is corrupt: {0}")]
    Corrupt(String),
    #[error("group commit failed: {0}")]
    Group(String),
    #[error("the store is closed")]
    Closed,
}

impl StoreError {
    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound { what: what.into() }
    }

    pub(crate) fn exists(what: impl Into<String>) -> Self {
        Self::AlreadyExists { what: what.into() }
    }
}

/// True when `err` is a unique or primary-key violation (the row already exists).
fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Handle to the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    /// Pool for statements that write. One connection on SQLite (a single writer).
    write: AnyPool,
    /// Pool for read-only statements.
    read: AnyPool,
    backend: Backend,
    /// Submissions and device acks on their way to the group-commit writer ([`writer`]).
    writer: tokio::sync::mpsc::Sender<writer::WriteJob>,
    writer_stats: std::sync::Arc<writer::Stats>,
    /// Where idempotency keys are looked up ([`idempotency`]).
    keys: idempotency::Keys,
    /// Told about every message the writer queues ([`Store::set_queue_listener`]).
    listener: writer::ListenerSlot,
}

/// How long a SQLite connection waits for a lock before giving up.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 5_000;

impl Store {
    /// Opens the database at `url`, creating a SQLite file (and its directory) if missing.
    /// Does not run migrations; call [`Store::migrate`].
    pub async fn open(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let max_connections = max_connections.max(1);
        if let Some(path) = sqlite_path(url) {
            if path.is_empty() || path == ":memory:" {
                return Err(StoreError::UnsupportedUrl(url.to_owned()));
            }
            if let Some(dir) = Path::new(path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Database(sqlx::Error::Configuration(
                        format!("cannot create directory {}: {e}", dir.display()).into(),
                    ))
                })?;
            }
            let url = if url.contains('?') {
                url.to_owned()
            } else {
                format!("{url}?mode=rwc")
            };
            let write = sqlite_pool(1, WRITER_CACHE_KIB, true).connect(&url).await?;
            // WAL is a property of the file; set it once, before readers open it.
            write.execute("PRAGMA journal_mode = WAL").await?;
            let read = sqlite_pool(max_connections, READER_CACHE_KIB, false)
                .connect(&url)
                .await?;
            // Commits are synced apart from the writer (see `writer`), by this file. SQLite
            // keeps it while a connection is open; should it not be there, every commit
            // syncs itself instead.
            // An absolute path, so a later change of directory cannot make it miss.
            let wal = std::path::absolute(format!("{path}-wal"))
                .unwrap_or_else(|_| PathBuf::from(format!("{path}-wal")));
            let wal = if wal.exists() {
                Some(wal)
            } else {
                tracing::warn!(
                    "no write-ahead log at {}: each commit syncs itself",
                    wal.display()
                );
                None
            };
            Ok(Self::assemble(write, read, Backend::Sqlite, wal))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = AnyPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await?;
            Ok(Self::assemble(pool.clone(), pool, Backend::Postgres, None))
        } else {
            Err(StoreError::UnsupportedUrl(url.to_owned()))
        }
    }

    fn assemble(write: AnyPool, read: AnyPool, backend: Backend, wal: Option<PathBuf>) -> Self {
        let (writer, jobs) = tokio::sync::mpsc::channel(4096);
        let writer_stats = std::sync::Arc::<writer::Stats>::default();
        let keys = idempotency::Keys::of(backend);
        let listener = writer::ListenerSlot::default();
        tokio::spawn(writer::writer(
            write.clone(),
            backend,
            keys.clone(),
            listener.clone(),
            writer_stats.clone(),
            jobs,
            wal,
        ));
        Self {
            write,
            read,
            backend,
            writer,
            writer_stats,
            keys,
            listener,
        }
    }

    /// Applies every pending migration of this engine.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrations::migrator(self.backend).run(&self.write).await?;
        Ok(())
    }

    /// Applies the migrations up to `version` only (tests of a migration's data step).
    #[cfg(test)]
    pub(crate) async fn migrate_to(&self, version: i64) -> Result<(), StoreError> {
        migrations::migrator(self.backend)
            .run_to(version, &self.write)
            .await?;
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// What the group-commit writer has done since the store opened.
    pub fn writer_counts(&self) -> WriterCounts {
        self.writer_stats.snapshot()
    }

    /// From now on, every message the writer queues is announced to `listener` right after
    /// its commit, in queue order. Only the first listener set counts. On SQLite that is
    /// every queued message; on PostgreSQL other nodes queue messages too.
    pub fn set_queue_listener(&self, listener: std::sync::Arc<dyn QueueListener>) {
        let _ = self.listener.set(listener);
    }

    /// Reads the idempotency keys of the window into memory now (SQLite), rather than at
    /// the first submission, so a server that starts with many keys is ready before it
    /// takes requests. Returns how many are held; `None` on PostgreSQL.
    pub async fn load_idempotency_keys(&self) -> Result<Option<usize>, StoreError> {
        match &self.keys {
            idempotency::Keys::InMemory(recent) => {
                let mut conn = self.write.acquire().await?;
                recent.load(&mut conn).await?;
                Ok(Some(recent.len()))
            }
            idempotency::Keys::Indexed => Ok(None),
        }
    }

    /// Idempotency keys held in memory (SQLite; `None` on PostgreSQL, which keeps them in
    /// an indexed table).
    pub fn idempotency_keys_in_memory(&self) -> Option<usize> {
        match &self.keys {
            idempotency::Keys::InMemory(recent) => Some(recent.len()),
            idempotency::Keys::Indexed => None,
        }
    }

    /// Takes the next node number for this process's message IDs
    /// ([`crate::domain::MessageIds`]): a counter in the database, so processes sharing it
    /// differ.
    pub async fn next_node_number(&self, now: i64) -> Result<u64, StoreError> {
        use sqlx::Row;
        let id: i64 = sqlx::query("INSERT INTO node_starts (started_at) VALUES ($1) RETURNING id")
            .bind(now)
            .fetch_one(&self.write)
            .await?
            .try_get("id")?;
        sqlx::query("DELETE FROM node_starts WHERE id < $1")
            .bind(id)
            .execute(&self.write)
            .await?;
        u64::try_from(id).map_err(|_| StoreError::Corrupt(format!("node number {id}")))
    }

    /// Cheap liveness probe used by `/health`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    /// Closes both pools, waiting for connections to be returned.
    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

/// Page cache of the writer connection. A group commit dirties a few random index pages
/// per message; with SQLite's default 2 MiB the writer keeps re-reading them from the OS
/// (measured during a send benchmark: 12.9 KB read per message with the default, 6.2 KB
/// with 64 MiB).
const WRITER_CACHE_KIB: u32 = 64 * 1024;
/// Page cache of each reader connection (SQLite's default).
const READER_CACHE_KIB: u32 = 2 * 1024;

/// Options for a pool of SQLite connections. `writes`: the pool of the one write
/// connection, which keeps its temporary files in memory: SQLite keeps the undo record of
/// each statement of a transaction (its statement journal) there, and spills it into a
/// temporary file past 64 KiB, which every multi-row insert of a group commit passed.
fn sqlite_pool(max_connections: u32, cache_kib: u32, writes: bool) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(30))
        // A connection to a local file does not go stale: skip the ping sqlx otherwise
        // sends (one round trip to the connection's worker thread) on every acquire.
        .test_before_acquire(false)
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                // FULL: a commit is on disk (WAL fsynced) before we answer the client.
                conn.execute("PRAGMA synchronous = FULL").await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                if writes {
                    conn.execute("PRAGMA temp_store = MEMORY").await?;
                }
                conn.execute(sqlx::AssertSqlSafe(format!(
                    "PRAGMA cache_size = -{cache_kib}"
                )))
                .await?;
                conn.execute(sqlx::AssertSqlSafe(format!(
                    "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}"
                )))
                .await?;
                Ok(())
            })
        })
}

/// The file of a `sqlite:` URL (without its `?` options); `None` for other engines.
pub fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite:")?;
    rest.trim_start_matches("//").split('?').next()
}

/// Begins a transaction that writes. On SQLite it is `BEGIN IMMEDIATE`, taking the write
/// lock before the first read: a deferred transaction that read first could not write if
/// another process (an admin command, say) committed in between, as its snapshot would
/// be stale; an immediate one waits for the lock (up to the busy timeout) instead.
async fn begin_write(
    pool: &AnyPool,
    backend: Backend,
) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
    Ok(match backend {
        Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await?,
        Backend::Postgres => pool.begin().await?,
    })
}

/// Reads a column that holds 0/1 as a bool.
fn flag(row: &AnyRow, column: &str) -> Result<bool, StoreError> {
    use sqlx::Row;
    Ok(row.try_get::<i64, _>(column)? != 0)
}
