//! Every difference between the two engines, in one place.
//!
//! The SQL text is shared (DESIGN §4); what differs is said here and only here, as
//! capabilities the rest of the store asks for:
//! * how a statement writes its bind parameters ([`Backend::placeholders`]) and how a read
//!   locks the rows it will change ([`Backend::row_lock`]);
//! * how pools are opened: SQLite has one write connection (a single writer queues
//!   in-process instead of failing with `SQLITE_BUSY`) and a pool of readers, with PRAGMAs;
//!   PostgreSQL has one pool, and must run with `fsync` and `synchronous_commit` on
//!   ([`connect`]);
//! * how a commit becomes durable ([`Durability`]): within the commit on PostgreSQL; on
//!   SQLite by a sync of the write-ahead log beside the writer;
//! * where idempotency keys are looked up ([`KeyIndex`]);
//! * how committed messages reach device sessions ([`DeliveryMode`]);
//! * whether a failed `COMMIT` left anything behind ([`Backend::commit_outcome_unknown`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor, Row};

use super::sql::Placeholders;
use super::StoreError;

/// Which database engine a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How messages committed by the store reach the device sessions waiting for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryMode {
    /// Every message is committed by this process, which announces it to its queue
    /// listener; a session reads the store again only after an overflow and at its
    /// periodic re-check, a safety net (SQLite).
    Announced,
    /// Other processes commit messages too: sessions read the store when woken, by this
    /// node or, through the `cluster` module, by another (PostgreSQL).
    Polled,
}

/// When a commit reaches the disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Durability {
    /// Within the commit (PostgreSQL).
    AtCommit,
    /// Later: the commit runs with `synchronous = NORMAL`, and the write-ahead log at this
    /// path is synced beside the writer (SQLite; see `commit::durable`).
    Deferred(PathBuf),
}

/// Where idempotency keys are looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeyIndex {
    /// In memory, over a log in commit order: every write goes through this process's one
    /// writer (SQLite).
    Memory,
    /// In a table unique on (gateway, key), which sees what other nodes took (PostgreSQL).
    Table,
}

impl Backend {
    fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Some(Self::Postgres)
        } else {
            None
        }
    }

    pub(super) fn placeholders(self) -> Placeholders {
        match self {
            Self::Sqlite => Placeholders::Anonymous,
            Self::Postgres => Placeholders::Numbered,
        }
    }

    /// Appended to a read of rows the transaction will change, so two nodes acking or
    /// paying at once wait for each other instead of both missing the other's write. One
    /// SQLite writer needs none.
    pub(super) fn row_lock(self) -> &'static str {
        match self {
            Self::Sqlite => "",
            Self::Postgres => " FOR UPDATE",
        }
    }

    /// The statement that begins a transaction that writes (`None`: the driver's own). On
    /// SQLite it is `BEGIN IMMEDIATE`, taking the write lock before the first read: a
    /// deferred transaction that read first could not write if another process (an admin
    /// command, say) committed in between, as its snapshot would be stale.
    pub(super) fn begin_write(self) -> Option<&'static str> {
        match self {
            Self::Sqlite => Some("BEGIN IMMEDIATE"),
            Self::Postgres => None,
        }
    }

    /// The same, for a commit whose sync is deferred to the log syncer.
    pub(super) fn begin_deferred(self) -> Option<&'static str> {
        match self {
            Self::Sqlite => Some("PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE"),
            Self::Postgres => None,
        }
    }

    /// What the write connection is set back to after a deferred commit, so the other
    /// writes of the process sync their own commits.
    pub(super) fn after_deferred(self) -> Option<&'static str> {
        match self {
            Self::Sqlite => Some("PRAGMA synchronous = FULL"),
            Self::Postgres => None,
        }
    }

    pub(super) fn key_index(self) -> KeyIndex {
        match self {
            Self::Sqlite => KeyIndex::Memory,
            Self::Postgres => KeyIndex::Table,
        }
    }

    pub fn delivery_mode(self) -> DeliveryMode {
        match self {
            Self::Sqlite => DeliveryMode::Announced,
            Self::Postgres => DeliveryMode::Polled,
        }
    }

    /// Whether a group may be cut to a power of two of the waiting jobs. Only where the
    /// commit does not wait for the disk (SQLite): the jobs left over then wait for one
    /// cheap commit more. Where each commit waits for its fsync (PostgreSQL), up to half
    /// of the jobs waiting a commit longer cut the throughput by as much.
    pub(super) fn evens_groups(self) -> bool {
        matches!(self, Self::Sqlite)
    }

    /// Whether a `COMMIT` that failed with `err` may have committed all the same. SQLite
    /// rolls a transaction back when its commit fails (a full disk, an I/O error), and a
    /// commit frame that never reached the log does not count at recovery. A PostgreSQL
    /// server that answered with an error rolled back; one whose answer never came (the
    /// connection broke) may have committed.
    pub(super) fn commit_outcome_unknown(self, err: &StoreError) -> bool {
        match self {
            Self::Sqlite => false,
            Self::Postgres => !matches!(err, StoreError::Database(sqlx::Error::Database(_))),
        }
    }

    /// Whether `err` is a trouble that may pass and is not the job's own: a full disk, an
    /// I/O error, a lock held too long, a lost or refused connection, a deadlock. A group
    /// that meets one is rolled back whole and its callers told to retry.
    pub(super) fn is_passing(self, err: &StoreError) -> bool {
        let StoreError::Database(err) = err else {
            return matches!(err, StoreError::Unavailable(_));
        };
        match err {
            sqlx::Error::Database(db) => {
                let code = db.code().unwrap_or_default();
                match self {
                    // Primary result codes: BUSY, LOCKED, NOMEM, IOERR, FULL, CANTOPEN.
                    Self::Sqlite => code
                        .parse::<i32>()
                        .is_ok_and(|c| matches!(c & 0xff, 5 | 6 | 7 | 10 | 13 | 14)),
                    // SQLSTATE classes: 08 connection, 53 resources (disk full), 57
                    // operator intervention, 40 rollback (deadlock, serialization), 55P03
                    // lock not available.
                    Self::Postgres => {
                        ["08", "53", "57", "40"].iter().any(|c| code.starts_with(c))
                            || code == "55P03"
                    }
                }
            }
            other => unreachable(other),
        }
    }

    /// The migration SQL of this engine, out of a pair.
    pub(super) fn pick<T>(self, sqlite: T, postgres: T) -> T {
        match self {
            Self::Sqlite => sqlite,
            Self::Postgres => postgres,
        }
    }
}

/// Whether `err` says the database could not be reached at all: the connection was
/// refused, broken or timed out, or the pool had none to give.
pub fn unreachable(err: &sqlx::Error) -> bool {
    matches!(
        err,
        sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
    )
}

/// How a store is opened.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    /// Connections of the pool (of the read pool on SQLite, whose writes have one).
    pub max_connections: u32,
    /// Start on a PostgreSQL server that runs with `fsync` or `synchronous_commit` off
    /// (commits answered 200 can then be lost at a crash). Off by default.
    pub allow_unsafe_durability: bool,
    /// How long a SQLite write waits for a lock held by another process.
    pub busy_timeout: Duration,
    /// SQLite overwrites what it deletes (an acked message's box and nonce) with zeros,
    /// instead of leaving it in the file's free space.
    pub secure_delete: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            allow_unsafe_durability: false,
            busy_timeout: Duration::from_secs(5),
            secure_delete: true,
        }
    }
}

/// The pools of an opened database.
pub(super) struct Connected {
    pub(super) write: AnyPool,
    pub(super) read: AnyPool,
    pub(super) backend: Backend,
    pub(super) durability: Durability,
    /// The durability settings of a PostgreSQL server that are off, when allowed.
    pub(super) unsafe_durability: Option<String>,
}

/// Opens the database at `url`, creating a SQLite file (and its directory) if missing.
pub(super) async fn connect(url: &str, options: StoreOptions) -> Result<Connected, StoreError> {
    sqlx::any::install_default_drivers();
    let max_connections = options.max_connections.max(1);
    match Backend::of_url(url) {
        Some(Backend::Sqlite) => connect_sqlite(url, max_connections, options).await,
        Some(Backend::Postgres) => {
            let pool = AnyPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await?;
            let unsafe_durability = unsafe_settings(&pool).await?;
            if let Some(off) = &unsafe_durability {
                if !options.allow_unsafe_durability {
                    pool.close().await;
                    return Err(StoreError::UnsafeDurability(off.clone()));
                }
                tracing::warn!(
                    "PostgreSQL runs with {off}: commits answered as durable can be lost at a \
                     crash (allowed by storage.allow_unsafe_durability)"
                );
            }
            Ok(Connected {
                write: pool.clone(),
                read: pool,
                backend: Backend::Postgres,
                durability: Durability::AtCommit,
                unsafe_durability,
            })
        }
        None => Err(StoreError::UnsupportedUrl(url.to_owned())),
    }
}

/// The server settings that make commits not durable, named as PostgreSQL names them.
async fn unsafe_settings(pool: &AnyPool) -> Result<Option<String>, StoreError> {
    let mut off = Vec::new();
    for setting in ["fsync", "synchronous_commit"] {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT current_setting('{setting}') AS value"
        )))
        .fetch_one(pool)
        .await?;
        let value: String = row.try_get("value")?;
        if value == "off" {
            off.push(format!("{setting} = off"));
        }
    }
    Ok((!off.is_empty()).then(|| off.join(" and ")))
}

async fn connect_sqlite(
    url: &str,
    max_connections: u32,
    options: StoreOptions,
) -> Result<Connected, StoreError> {
    let path = sqlite_path(url).unwrap_or_default();
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
    let write = sqlite_pool(1, WRITER_CACHE_KIB, true, options)
        .connect(&url)
        .await?;
    // WAL is a property of the file; set it once, before readers open it.
    write.execute("PRAGMA journal_mode = WAL").await?;
    let read = sqlite_pool(max_connections, READER_CACHE_KIB, false, options)
        .connect(&url)
        .await?;
    // Commits are synced apart from the writer, by this file. SQLite keeps it while a
    // connection is open. An absolute path, so a later change of directory cannot make it
    // miss.
    let wal = std::path::absolute(format!("{path}-wal"))
        .unwrap_or_else(|_| PathBuf::from(format!("{path}-wal")));
    Ok(Connected {
        write,
        read,
        backend: Backend::Sqlite,
        durability: Durability::Deferred(wal),
        unsafe_durability: None,
    })
}

/// Page cache of the writer connection. A group commit dirties a few random index pages
/// per message; with SQLite's default 2 MiB the writer keeps re-reading them from the OS.
const WRITER_CACHE_KIB: u32 = 64 * 1024;
/// Page cache of each reader connection (SQLite's default).
const READER_CACHE_KIB: u32 = 2 * 1024;

/// Options for a pool of SQLite connections. `writes`: the pool of the one write
/// connection, which keeps its temporary files in memory: SQLite keeps the undo record of
/// each statement of a transaction (its statement journal) there, and spills it into a
/// temporary file past 64 KiB, which every multi-row insert of a group commit passed.
fn sqlite_pool(
    max_connections: u32,
    cache_kib: u32,
    writes: bool,
    options: StoreOptions,
) -> AnyPoolOptions {
    let busy_ms = options.busy_timeout.as_millis();
    let secure_delete = if options.secure_delete { "ON" } else { "OFF" };
    AnyPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(30))
        // A connection to a local file does not go stale: skip the ping sqlx otherwise
        // sends (one round trip to the connection's worker thread) on every acquire.
        .test_before_acquire(false)
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                // FULL: a commit is on disk (WAL fsynced) before it returns.
                conn.execute("PRAGMA synchronous = FULL").await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                conn.execute(sqlx::AssertSqlSafe(format!(
                    "PRAGMA secure_delete = {secure_delete}"
                )))
                .await?;
                if writes {
                    conn.execute("PRAGMA temp_store = MEMORY").await?;
                }
                conn.execute(sqlx::AssertSqlSafe(format!(
                    "PRAGMA cache_size = -{cache_kib}"
                )))
                .await?;
                conn.execute(sqlx::AssertSqlSafe(format!(
                    "PRAGMA busy_timeout = {busy_ms}"
                )))
                .await?;
                Ok(())
            })
        })
}

/// The file of a `sqlite:` URL (without its `?` options); `None` for other engines.
pub(super) fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite:")?;
    rest.trim_start_matches("//").split('?').next()
}

/// Begins a transaction that writes (see [`Backend::begin_write`]).
pub(super) async fn begin_write(
    pool: &AnyPool,
    backend: Backend,
) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
    Ok(match backend.begin_write() {
        Some(statement) => pool.begin_with(statement).await?,
        None => pool.begin().await?,
    })
}

/// Held while a server serves the database: where every message must be queued by this
/// process (SQLite: the idempotency keys it holds in memory and the messages it hands to
/// its sessions assume it), an exclusive lock on `<database>.serve-lock` makes a second
/// server refuse to start. Admin commands do not take it: they queue no messages.
#[derive(Debug)]
pub struct ServingLock {
    /// The lock lasts as long as the file is open.
    _file: std::fs::File,
}

impl ServingLock {
    /// Takes the lock for the database at `url`; `None` where the engine needs none (or
    /// for a URL the store refuses with its own message at open).
    pub fn take(url: &str) -> Result<Option<Self>, StoreError> {
        let Some(db) = sqlite_path(url).filter(|p| !p.is_empty() && *p != ":memory:") else {
            return Ok(None);
        };
        let path = PathBuf::from(format!("{db}.serve-lock"));
        let io = |what: &str, e: std::io::Error| {
            StoreError::Io(format!("{what} {}: {e}", path.display()))
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io("creating the directory of", e))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io("opening the lock file", e))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Self { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::AlreadyServed(format!(
                "another Tocsin server is already serving {db} (it holds {}); stop it, or \
                 give this one its own storage.data_dir or storage.url",
                path.display()
            ))),
            Err(std::fs::TryLockError::Error(e)) => Err(io("locking", e)),
        }
    }
}
