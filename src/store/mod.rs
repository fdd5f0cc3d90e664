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
//!   transaction — all of it is durable or none of it is (see `commit`);
//! * every difference between the engines is stated in `engine`, and nowhere else;
//! * durability fails closed: a write is answered only once it is durable, and a store
//!   that cannot be sure of that any more takes no writes (see `health`).

mod accounts;
mod alarms;
mod blobs;
mod commit;
mod devices;
mod engine;
mod events;
mod gateways;
mod health;
mod idempotency;
mod identities;
mod invites;
mod migrations;
mod outbox;
mod queue;
mod rows;
mod sql;
mod status;

#[cfg(test)]
mod conformance;
#[doc(hidden)]
pub mod testing;

use std::sync::{Arc, OnceLock};

use sqlx::AnyPool;

use crate::domain::UnixMs;

pub use accounts::{Account, AccountId, Charge, LedgerEntry};
pub use alarms::{
    Alarm, AlarmRecipient, AlarmState, AlarmSummary, AlarmTier, Answered, HeldBox, NewAlarm,
    NewTier, Triggered,
};
pub use blobs::{BlobRecord, NewBlob};
pub use commit::{LocalSpawner, QueueListener, WriterCounts};
pub use devices::{AckOutcome, Device, Dropped, DroppedDevice};
pub use engine::{unreachable, Backend, DeliveryMode, ServingLock, StoreOptions};
pub use gateways::{GatewayMode, GatewayRecord};
pub use health::Health;
pub use idempotency::{retry_keys, Forgotten};
pub use identities::{IdentityRecord, NewIdentity};
pub use invites::Invite;
pub use outbox::{
    CallbackEntry, Claimed, ClaimedCallback, DeadCallback, Enqueued, Outbox, OutboxEntry,
    PendingCaps,
};
pub use queue::{NewMessage, QueueKey, QueuedMessage, Submission, SubmitOutcome};
pub use status::{DeadStatus, StatusEntry, StatusHook};

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
    /// Writes fail for a reason that may pass (a full disk, a lock held too long, a lost
    /// connection); nothing of the request was kept. Retry later.
    #[error("the store cannot write for now: {0}")]
    Unavailable(String),
    /// The store takes no more writes until a restart (see [`Health::Failed`]).
    #[error("the store has failed: {0}")]
    Failed(String),
    /// A write kept conflicting with another writer; nothing of it was kept.
    #[error("write conflict: {0}")]
    Conflict(String),
    /// The PostgreSQL server does not make commits durable.
    #[error(
        "PostgreSQL runs with {0}: commits could be lost at a crash. Turn it on, or set \
         storage.allow_unsafe_durability = true to start anyway"
    )]
    UnsafeDurability(String),
    /// Another server already serves this database.
    #[error("{0}")]
    AlreadyServed(String),
    #[error("{0}")]
    Io(String),
    #[error("the store is closed")]
    Closed,
    /// The invite code given for an enrolment is unknown, already spent or expired.
    #[error("the invite code is unknown, already used or expired")]
    InviteRefused,
}

impl StoreError {
    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound { what: what.into() }
    }

    pub(crate) fn exists(what: impl Into<String>) -> Self {
        Self::AlreadyExists { what: what.into() }
    }
}

/// The error of an insert: [`StoreError::AlreadyExists`] naming `what` when a unique or
/// primary key refused the row, the database error otherwise.
fn insert_error(err: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::exists(what()),
        _ => err.into(),
    }
}

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    /// Pool for statements that write. One connection on SQLite (a single writer).
    write: AnyPool,
    /// Pool for read-only statements.
    read: AnyPool,
    backend: Backend,
    /// Submissions, device acks and device messages on their way to the writer ([`commit`]).
    writer: tokio::sync::mpsc::Sender<commit::WriteJob>,
    writer_stats: Arc<commit::Stats>,
    /// Where idempotency keys are looked up ([`idempotency`]).
    keys: idempotency::Keys,
    /// Told about every message the writer queues ([`Store::set_queue_listener`]).
    listener: commit::ListenerSlot,
    health: Arc<health::HealthCell>,
    /// Starts the task that hands out a request thread's answers.
    spawner: Arc<OnceLock<LocalSpawner>>,
    /// The PostgreSQL durability settings found off (and allowed).
    unsafe_durability: Option<String>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .field("health", &self.health.get())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the database at `url` with `max_connections`, creating a SQLite file (and
    /// its directory) if missing. Does not run migrations; call [`Store::migrate`].
    pub async fn open(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options = StoreOptions {
            max_connections,
            ..StoreOptions::default()
        };
        Self::open_with(url, options).await
    }

    /// [`Store::open`] with every option.
    pub async fn open_with(url: &str, options: StoreOptions) -> Result<Self, StoreError> {
        Ok(Self::assemble(engine::connect(url, options).await?))
    }

    fn assemble(connected: engine::Connected) -> Self {
        let engine::Connected {
            write,
            read,
            backend,
            durability,
            unsafe_durability,
        } = connected;
        let (writer, jobs) = tokio::sync::mpsc::channel(4096);
        let writer_stats = Arc::<commit::Stats>::default();
        let keys = idempotency::Keys::of(backend.key_index());
        let listener = commit::ListenerSlot::default();
        let health = Arc::<health::HealthCell>::default();
        let w = commit::Writer {
            pool: write.clone(),
            backend,
            durability,
            keys: keys.clone(),
            listener: listener.clone(),
            stats: writer_stats.clone(),
            health: health.clone(),
        };
        tokio::spawn(commit::run(w, jobs));
        Self {
            write,
            read,
            backend,
            writer,
            writer_stats,
            keys,
            listener,
            health,
            spawner: Arc::default(),
            unsafe_durability,
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

    /// How committed messages reach device sessions on this engine.
    /// Sends `payload` on the PostgreSQL notification `channel` (a no-op on SQLite, where
    /// one process holds the store).
    pub async fn notify(&self, channel: &str, payload: &str) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(channel)
                .bind(payload)
                .execute(&self.read)
                .await?;
        }
        Ok(())
    }

    pub fn delivery_mode(&self) -> DeliveryMode {
        self.backend.delivery_mode()
    }

    /// Whether the store takes writes, and why not.
    pub fn health(&self) -> Health {
        self.health.get()
    }

    /// The durability settings of the PostgreSQL server found off and allowed by
    /// `storage.allow_unsafe_durability`.
    pub fn unsafe_durability(&self) -> Option<&str> {
        self.unsafe_durability.as_deref()
    }

    /// What the group-commit writer has done since the store opened.
    pub fn writer_counts(&self) -> WriterCounts {
        self.writer_stats.snapshot()
    }

    /// Jobs waiting for the writer.
    pub fn writer_backlog(&self) -> usize {
        self.writer.max_capacity() - self.writer.capacity()
    }

    /// From now on, every message the writer queues is announced to `listener` right after
    /// its commit is durable, in queue order, where the engine's delivery mode is
    /// [`DeliveryMode::Announced`] (elsewhere sessions read the store, and nothing is
    /// announced); on every engine it is told whom each commit concerns
    /// ([`QueueListener::committed`]). Only the first listener set counts.
    pub fn set_queue_listener(&self, listener: Arc<dyn QueueListener>) {
        let _ = self.listener.set(listener);
    }

    /// Tells the listener that a commit outside the writer stored `n` entries in `outbox`
    /// (nothing when `n` is 0).
    fn filled(&self, outbox: Outbox, n: u64) {
        if let (true, Some(listener)) = (n > 0, self.listener.get()) {
            listener.committed(&[], &[outbox]);
        }
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
    pub async fn next_node_number(&self, now: UnixMs) -> Result<u64, StoreError> {
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

/// Reads a column that holds 0/1 as a bool.
fn flag(row: &sqlx::any::AnyRow, column: &str) -> Result<bool, StoreError> {
    use sqlx::Row;
    Ok(row.try_get::<i64, _>(column)? != 0)
}
