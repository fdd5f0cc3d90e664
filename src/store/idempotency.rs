//! Idempotency keys: how a retried submission is recognised.
//!
//! A key is claimed in the transaction that accepts its message, and a later submission
//! under the same (gateway, key) gets the first message ID instead of a new charge. Keys are
//! forgotten after the configured window, oldest first.
//!
//! The two engines keep them differently:
//! * **PostgreSQL** — a table with a unique index on (gateway, key). Several nodes share
//!   the database, so only the database can see that another node took a key; a concurrent
//!   retry blocks on the index entry until the first transaction ends.
//! * **SQLite** — every write goes through this process's single writer, so the keys of
//!   the window are held in memory and the table is only a log in commit order, with no
//!   index on the key. A key's index entry lands on a random page, and SQLite's
//!   write-ahead log writes a whole 4 KiB page for each page a commit dirties: in the store
//!   benchmark the indexed table cost three quarters of the writer's time. The log is read
//!   back into memory when the writer starts, so a retry after a restart is still
//!   recognised. In memory a key is a 16-byte digest and the message ID, 25 bytes per hash
//!   table slot, 30 to 55 bytes per key depending on how full the table is: a million keys
//!   (a day at about 12 messages per second) take about 52 MB, and
//!   `messages.idempotency_max_keys` caps the count (see [`Keys::forget`]). The log has one
//!   row per commit, its keys packed as digest and message ID (see [`ENTRY`]): a row per
//!   key cost a B-tree insert and four bound values for every accepted message, and a
//!   group of any size now writes its keys with one statement. Rows from before that
//!   change hold one key in clear and are read alike.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::TryStreamExt;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use tocsin_sdk::protocol::{IdentityId, MessageId, Nonce};

use super::engine::{begin_write, Backend, KeyIndex};
use super::queue::Submission;
use super::rows::message_id;
use super::sql::{runs, MultiRow};
use super::{Store, StoreError};

/// The keys under which a retry of a send is recognised: the recipient with the nonce, and
/// the request's `Idempotency-Key` header when it has one. They are stored as digests: the
/// nonce of a delivered message must not outlive its box anywhere in the store, and
/// customers' keys stay opaque.
pub fn retry_keys(to: &IdentityId, nonce: &Nonce, header: Option<&str>) -> Vec<String> {
    let mut keys = vec![key_digest(format_args!("nonce:{to}:{nonce}"))];
    if let Some(key) = header {
        keys.push(key_digest(format_args!("header:{key}")));
    }
    keys
}

/// The lower hex of SHA-256 over the formatted key, without building the string first.
/// Stored as the key (and, in memory, digested once more by [`digest`]), so it must
/// never change.
fn key_digest(key: std::fmt::Arguments<'_>) -> String {
    use sha2::{Digest as _, Sha256};
    struct Hashing(Sha256);
    impl std::fmt::Write for Hashing {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0.update(s.as_bytes());
            Ok(())
        }
    }
    let mut hashing = Hashing(Sha256::new());
    // Neither the hasher nor the key's parts fail to format.
    let _ = std::fmt::Write::write_fmt(&mut hashing, key);
    let mut hex = [0u8; 64];
    // 32 bytes always fit 64 hex digits, which are ASCII.
    let _ = hex::encode_to_slice(hashing.0.finalize(), &mut hex);
    String::from_utf8_lossy(&hex).into_owned()
}

/// A key claimed by an accepted submission (or looked up for one).
#[derive(Debug, Clone, Copy)]
pub(super) struct Claim<'a> {
    pub(super) gateway: &'a str,
    pub(super) key: &'a str,
    /// The key's [`digest`] when the caller computed it already (on the request's own
    /// thread, off the writer's path).
    pub(super) digest: Option<Digest>,
    pub(super) message_id: MessageId,
    pub(super) now: i64,
}

impl Claim<'_> {
    fn digest(&self) -> Digest {
        self.digest
            .unwrap_or_else(|| digest(self.gateway, self.key))
    }
}

/// Keys already taken, by (gateway, key).
pub(super) type Taken = HashMap<(String, String), MessageId>;

/// Where a store keeps its keys.
#[derive(Debug, Clone)]
pub(super) enum Keys {
    /// In the `idempotency_keys` table, unique on (gateway, key): PostgreSQL.
    Indexed,
    /// In memory over the `idempotency_log` table: SQLite.
    InMemory(Arc<Recent>),
}

/// The keys of the window, once read from the log.
#[derive(Debug, Default)]
pub(super) struct Recent {
    state: Mutex<RecentState>,
}

#[derive(Debug, Default)]
struct RecentState {
    loaded: bool,
    keys: HashMap<Digest, [u8; 8]>,
}

pub(super) type Digest = [u8; 16];

/// One key in a log row's `entries`: its [`digest`], then the 8-byte message ID.
const ENTRY: usize = 16 + 8;

/// The key a log row or its entries name, by digest. Digests are stored in the log, so
/// this function must never change.
pub(super) fn digest(gateway: &str, key: &str) -> Digest {
    use sha2::{Digest as _, Sha256};
    let full = Sha256::new()
        .chain_update(gateway.as_bytes())
        .chain_update([0])
        .chain_update(key.as_bytes())
        .finalize();
    let mut out = [0; 16];
    out.copy_from_slice(&full[..16]);
    out
}

impl Recent {
    fn lock(&self) -> std::sync::MutexGuard<'_, RecentState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the log into memory, once. Runs on the writer's connection (SQLite's only
    /// write connection), so no key can be committed while it reads.
    pub(super) async fn load(&self, conn: &mut AnyConnection) -> Result<(), StoreError> {
        if self.lock().loaded {
            return Ok(());
        }
        let mut keys = HashMap::new();
        // In slices, so no single statement runs long (about 4.5 s per million keys in all,
        // measured on the benchmark host, when the log still held a row per key).
        let mut after = 0i64;
        loop {
            let mut rows = sqlx::query(
                "SELECT seq, gateway_id, idem_key, message_id, entries FROM idempotency_log \
                 WHERE seq > $1 ORDER BY seq LIMIT $2",
            )
            .bind(after)
            .bind(LOAD_SLICE)
            .fetch(&mut *conn);
            let mut read = 0;
            while let Some(row) = rows.try_next().await? {
                logged_keys(&row, |digest, id| {
                    keys.insert(digest, id);
                })?;
                after = row.try_get("seq")?;
                read += 1;
            }
            if read < LOAD_SLICE {
                break;
            }
        }
        let mut state = self.lock();
        if !state.loaded {
            state.keys = keys;
            state.loaded = true;
        }
        Ok(())
    }

    /// Number of keys held.
    pub(super) fn len(&self) -> usize {
        self.lock().keys.len()
    }
}

impl Keys {
    pub(super) fn of(index: KeyIndex) -> Self {
        match index {
            KeyIndex::Memory => Self::InMemory(Arc::default()),
            KeyIndex::Table => Self::Indexed,
        }
    }

    /// The digests of a submission's keys when they are held in memory (none otherwise),
    /// taken on the caller's thread.
    pub(super) fn digests(&self, s: &Submission) -> Vec<Digest> {
        match self {
            Self::InMemory(_) => s
                .idempotency_keys
                .iter()
                .map(|key| digest(s.gateway.as_str(), key))
                .collect(),
            Self::Indexed => Vec::new(),
        }
    }

    /// Which of the keys of `wanted` earlier commits took, with their message IDs.
    pub(super) async fn taken(
        &self,
        conn: &mut AnyConnection,
        backend: Backend,
        wanted: &[Claim<'_>],
    ) -> Result<Taken, StoreError> {
        let params = backend.placeholders();
        let mut taken = Taken::new();
        match self {
            Self::InMemory(recent) => {
                recent.load(conn).await?;
                let state = recent.lock();
                for c in wanted {
                    if let Some(id) = state.keys.get(&c.digest()) {
                        let key = (c.gateway.to_owned(), c.key.to_owned());
                        taken.insert(key, MessageId::from_bytes(*id));
                    }
                }
            }
            Self::Indexed => {
                // One query per gateway ID, so the primary key index serves it.
                let mut by_gateway: HashMap<&str, Vec<&str>> = HashMap::new();
                for c in wanted {
                    by_gateway.entry(c.gateway).or_default().push(c.key);
                }
                for (gateway, keys) in by_gateway {
                    let sql = format!(
                        "SELECT idem_key, message_id FROM idempotency_keys \
                         WHERE gateway_id = {} AND idem_key IN ({})",
                        params.one(1),
                        params.list(2, keys.len())
                    );
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(gateway);
                    for k in &keys {
                        query = query.bind(*k);
                    }
                    for row in query.fetch_all(&mut *conn).await? {
                        taken.insert(
                            (gateway.to_owned(), row.try_get("idem_key")?),
                            message_id(&row, "message_id")?,
                        );
                    }
                }
            }
        }
        Ok(taken)
    }

    /// Writes the claims of accepted submissions. `false` when another transaction took one
    /// of the keys since [`Keys::taken`] looked (only possible with several nodes).
    pub(super) async fn record(
        &self,
        conn: &mut AnyConnection,
        backend: Backend,
        claims: &[Claim<'_>],
    ) -> Result<bool, StoreError> {
        if claims.is_empty() {
            return Ok(true);
        }
        if let Self::InMemory(_) = self {
            // One row for all of them; the newest claim dates it, so no key in it is
            // forgotten before its window ends.
            let mut entries = Vec::with_capacity(claims.len() * ENTRY);
            for c in claims {
                entries.extend_from_slice(&c.digest());
                entries.extend_from_slice(c.message_id.as_bytes());
            }
            let newest = claims.iter().map(|c| c.now).max().unwrap_or_default();
            sqlx::query("INSERT INTO idempotency_log (created_at, entries) VALUES ($1, $2)")
                .bind(newest)
                .bind(entries)
                .execute(&mut *conn)
                .await?;
            return Ok(true);
        }
        static INDEXED: MultiRow = MultiRow::new(
            "INSERT INTO idempotency_keys (gateway_id, idem_key, message_id, created_at) \
             VALUES {rows} ON CONFLICT (gateway_id, idem_key) DO NOTHING",
            4,
        );
        for run in runs(claims) {
            let mut query = sqlx::query(INDEXED.sql(backend.placeholders(), run.len()));
            for c in run {
                query = query
                    .bind(c.gateway)
                    .bind(c.key)
                    .bind(c.message_id.as_bytes().to_vec())
                    .bind(c.now);
            }
            if query.execute(&mut *conn).await?.rows_affected() != run.len() as u64 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// After the commit that held `claims`: keys kept in memory become visible.
    pub(super) fn committed<'a>(&self, claims: impl IntoIterator<Item = Claim<'a>>) {
        if let Self::InMemory(recent) = self {
            let mut state = recent.lock();
            // Before the first load nothing is looked up in memory; the load reads them.
            if state.loaded {
                for c in claims {
                    state.keys.insert(c.digest(), *c.message_id.as_bytes());
                }
            }
        }
    }

    /// Forgets the keys claimed before `before` (unix ms), in batches of about
    /// [`FORGET_BATCH`], each its own short transaction so the writer is never held up for
    /// long. In memory, also the oldest keys beyond `max_keys`, even if younger (counted as
    /// `early`). The log is trimmed a row, so a commit's keys, at a time: a key waits for
    /// the youngest key of its commit, and the ceiling may take up to a commit's keys more
    /// than it must.
    pub(super) async fn forget(
        &self,
        pool: &sqlx::AnyPool,
        backend: Backend,
        before: i64,
        max_keys: u64,
    ) -> Result<Forgotten, StoreError> {
        let mut forgotten = Forgotten::default();
        let mut excess = match self {
            Self::Indexed => 0,
            Self::InMemory(recent) => (recent.len() as u64).saturating_sub(max_keys),
        };
        loop {
            let (batch, more) = match self {
                Self::Indexed => {
                    let total = forget_indexed(pool, before).await?;
                    let batch = Forgotten { total, early: 0 };
                    (batch, total == FORGET_BATCH as u64)
                }
                Self::InMemory(recent) => {
                    forget_logged(pool, backend, recent, before, excess).await?
                }
            };
            excess = excess.saturating_sub(batch.early);
            forgotten.total += batch.total;
            forgotten.early += batch.early;
            if !more {
                return Ok(forgotten);
            }
        }
    }
}

impl Store {
    /// Forgets the idempotency keys claimed before `before` (unix ms), in batches, each its
    /// own short transaction so the writer is never held up for long. On SQLite, where the
    /// keys are held in memory, the oldest keys beyond `max_keys` go too, even inside their
    /// window. A retry after that is a new request.
    pub async fn forget_idempotency_keys(
        &self,
        before: i64,
        max_keys: u64,
    ) -> Result<Forgotten, StoreError> {
        self.keys
            .forget(&self.write, self.backend, before, max_keys)
            .await
    }
}

/// What [`Keys::forget`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Forgotten {
    /// Keys forgotten.
    pub total: u64,
    /// Of those, keys still inside their window, forgotten to respect the memory ceiling.
    pub early: u64,
}

/// Log rows read per statement when the keys are loaded (a handful in the unit tests, so
/// their few keys span several slices).
const LOAD_SLICE: i64 = if cfg!(test) { 2 } else { 100_000 };

/// Keys deleted per transaction by [`Keys::forget`].
const FORGET_BATCH: i64 = 5_000;

async fn forget_indexed(pool: &sqlx::AnyPool, before: i64) -> Result<u64, StoreError> {
    Ok(sqlx::query(
        "DELETE FROM idempotency_keys WHERE (gateway_id, idem_key) IN \
         (SELECT gateway_id, idem_key FROM idempotency_keys WHERE created_at < $1 \
          ORDER BY created_at LIMIT $2)",
    )
    .bind(before)
    .bind(FORGET_BATCH)
    .execute(pool)
    .await?
    .rows_affected())
}

/// Trims the head of the log: the oldest rows in commit order, up to the first one dated
/// at or after `before`, and rows holding `excess` keys more. Then drops those keys from
/// memory, unless a newer claim of the same key replaced them there. Also says whether
/// it stopped at its batch size, with more to trim.
async fn forget_logged(
    pool: &sqlx::AnyPool,
    backend: Backend,
    recent: &Recent,
    before: i64,
    excess: u64,
) -> Result<(Forgotten, bool), StoreError> {
    let mut tx = begin_write(pool, backend).await?;
    let mut gone = Vec::new();
    let mut last_seq = None;
    let mut early = 0;
    let mut more = false;
    let mut read = 0;
    {
        let mut rows = sqlx::query(
            "SELECT seq, created_at, gateway_id, idem_key, message_id, entries \
             FROM idempotency_log ORDER BY seq LIMIT $1",
        )
        .bind(FORGET_BATCH)
        .fetch(&mut *tx);
        while let Some(row) = rows.try_next().await? {
            if gone.len() >= FORGET_BATCH as usize {
                more = true;
                break;
            }
            let inside = row.try_get::<i64, _>("created_at")? >= before;
            if inside && early >= excess {
                break;
            }
            let keys = logged_keys(&row, |digest, id| gone.push((digest, id)))?;
            if inside {
                early += keys as u64;
            }
            last_seq = Some(row.try_get::<i64, _>("seq")?);
            read += 1;
        }
    }
    // A full slice of rows, each outside the window or wanted for the ceiling.
    more |= read == FORGET_BATCH;
    let Some(last_seq) = last_seq else {
        return Ok((Forgotten::default(), false));
    };
    sqlx::query("DELETE FROM idempotency_log WHERE seq <= $1")
        .bind(last_seq)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let mut state = recent.lock();
    for (digest, id) in &gone {
        if state.keys.get(digest) == Some(id) {
            state.keys.remove(digest);
        }
    }
    let forgotten = Forgotten {
        total: gone.len() as u64,
        early,
    };
    Ok((forgotten, more))
}

/// Hands `each` the keys a log row holds, as digest and message ID; returns how many.
fn logged_keys(row: &AnyRow, mut each: impl FnMut(Digest, [u8; 8])) -> Result<usize, StoreError> {
    let entries: Option<Vec<u8>> = row.try_get("entries")?;
    let Some(entries) = entries else {
        // A row from before the log was kept by commit: one key, in clear.
        let gateway: String = row.try_get("gateway_id")?;
        let key: String = row.try_get("idem_key")?;
        each(
            digest(&gateway, &key),
            *message_id(row, "message_id")?.as_bytes(),
        );
        return Ok(1);
    };
    if entries.len() % ENTRY != 0 {
        return Err(StoreError::Corrupt(format!(
            "an idempotency log row of {} bytes, not a multiple of {ENTRY}",
            entries.len()
        )));
    }
    for entry in entries.chunks_exact(ENTRY) {
        let (mut digest, mut id) = (Digest::default(), [0; 8]);
        digest.copy_from_slice(&entry[..16]);
        id.copy_from_slice(&entry[16..]);
        each(digest, id);
    }
    Ok(entries.len() / ENTRY)
}

#[cfg(test)]
mod tests {
    use super::key_digest;

    /// The digests are stored as idempotency keys, so a retry after an upgrade must still
    /// find them: the hex of SHA-256 over the formatted key, in lower case.
    #[test]
    fn a_key_digest_is_the_lower_hex_sha256_of_the_formatted_key() {
        let (to, nonce) = ("ALICE123", "000102");
        assert_eq!(
            key_digest(format_args!("nonce:{to}:{nonce}")),
            "4a36fe3dca4c9a939cd636a7ed9f09d938ee692e5a8ec39f973402d568712bf3"
        );
    }
}
