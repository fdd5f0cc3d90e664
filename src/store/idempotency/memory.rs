//! The keys of the window held in memory over a log in commit order (SQLite).
//!
//! Every write goes through this process's one writer, so the memory is the index and the
//! `idempotency_log` table only a log, read back when the writer starts (see the module
//! docs of `idempotency`).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use futures_util::TryStreamExt;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use tocsin_sdk::protocol::MessageId;

use super::{Claim, Forgotten, Taken, FORGET_BATCH};
use crate::domain::UnixMs;
use crate::store::engine::{begin_write, Backend};
use crate::store::rows::message_id;
use crate::store::StoreError;

/// The keys of the window, once read from the log.
#[derive(Debug, Default)]
pub(in crate::store) struct Recent {
    state: Mutex<RecentState>,
}

#[derive(Debug, Default)]
struct RecentState {
    loaded: bool,
    keys: HashMap<Digest, [u8; 8]>,
}

pub(in crate::store) type Digest = [u8; 16];

/// One key in a log row's `entries`: its [`digest`], then the 8-byte message ID.
const ENTRY: usize = 16 + 8;

/// The key a log row or its entries name, by digest. Digests are stored in the log, so
/// this function must never change.
pub(in crate::store) fn digest(gateway: &str, key: &str) -> Digest {
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
    pub(in crate::store) async fn load(&self, conn: &mut AnyConnection) -> Result<(), StoreError> {
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
    pub(in crate::store) fn len(&self) -> usize {
        self.lock().keys.len()
    }

    /// Adds to `taken` the keys of `wanted` held, with their message IDs.
    pub(super) async fn taken(
        &self,
        conn: &mut AnyConnection,
        wanted: &[Claim<'_>],
        taken: &mut Taken,
    ) -> Result<(), StoreError> {
        self.load(conn).await?;
        let state = self.lock();
        for c in wanted {
            if let Some(id) = state.keys.get(&c.digest()) {
                let key = (c.gateway.to_owned(), c.key.to_owned());
                taken.insert(key, MessageId::from_bytes(*id));
            }
        }
        Ok(())
    }

    /// Logs the claims of a commit in one row; the newest claim dates it, so no key in it
    /// is forgotten before its window ends.
    pub(super) async fn record(
        &self,
        conn: &mut AnyConnection,
        claims: &[Claim<'_>],
    ) -> Result<bool, StoreError> {
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
        Ok(true)
    }

    /// After the commit that held `claims`: they become visible.
    pub(super) fn committed<'a>(&self, claims: impl IntoIterator<Item = Claim<'a>>) {
        let mut state = self.lock();
        // Before the first load nothing is looked up in memory; the load reads them.
        if state.loaded {
            for c in claims {
                state.keys.insert(c.digest(), *c.message_id.as_bytes());
            }
        }
    }
}

/// Log rows read per statement when the keys are loaded (a handful in the unit tests, so
/// their few keys span several slices).
const LOAD_SLICE: i64 = if cfg!(test) { 2 } else { 100_000 };

/// Trims the head of the log: the oldest rows in commit order, up to the first one dated
/// at or after `before`, and rows holding `excess` keys more. Then drops those keys from
/// memory, unless a newer claim of the same key replaced them there. Also says whether
/// it stopped at its batch size, with more to trim.
pub(super) async fn forget(
    recent: &Recent,
    pool: &sqlx::AnyPool,
    backend: Backend,
    before: UnixMs,
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
            let inside = row.try_get::<UnixMs, _>("created_at")? >= before;
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
