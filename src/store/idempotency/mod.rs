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
//!   row per commit, its keys packed as digest and message ID (see `memory::ENTRY`): a row per
//!   key cost a B-tree insert and four bound values for every accepted message, and a
//!   group of any size now writes its keys with one statement. Rows from before that
//!   change hold one key in clear and are read alike.

mod memory;
mod table;

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::AnyConnection;
use tocsin_sdk::protocol::{IdentityId, MessageId, Nonce};

use memory::Recent;
pub(super) use memory::{digest, Digest};

use super::engine::{Backend, KeyIndex};
use super::queue::Submission;
use super::{Store, StoreError};
use crate::domain::UnixMs;

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
    pub(super) now: UnixMs,
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
        let mut taken = Taken::new();
        match self {
            Self::InMemory(recent) => recent.taken(conn, wanted, &mut taken).await?,
            Self::Indexed => table::taken(conn, backend, wanted, &mut taken).await?,
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
        match self {
            Self::InMemory(recent) => recent.record(conn, claims).await,
            Self::Indexed => table::record(conn, backend, claims).await,
        }
    }

    /// After the commit that held `claims`: keys kept in memory become visible.
    pub(super) fn committed<'a>(&self, claims: impl IntoIterator<Item = Claim<'a>>) {
        if let Self::InMemory(recent) = self {
            recent.committed(claims);
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
        before: UnixMs,
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
                    let total = table::forget(pool, before).await?;
                    let batch = Forgotten { total, early: 0 };
                    (batch, total == FORGET_BATCH as u64)
                }
                Self::InMemory(recent) => {
                    memory::forget(recent, pool, backend, before, excess).await?
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
        before: UnixMs,
        max_keys: u64,
    ) -> Result<Forgotten, StoreError> {
        self.keys
            .forget(&self.write, self.backend, before, max_keys)
            .await
    }
}

/// What forgetting keys removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Forgotten {
    /// Keys forgotten.
    pub total: u64,
    /// Of those, keys still inside their window, forgotten to respect the memory ceiling.
    pub early: u64,
}

/// Keys deleted per transaction by [`Keys::forget`].
pub(super) const FORGET_BATCH: i64 = 5_000;

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
