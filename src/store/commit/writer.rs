//! The writer: one task that owns every write of the busiest paths.
//!
//! It waits for a job, takes the other jobs already waiting (on SQLite, of many a power of
//! two: [`group_size`]) and commits them in one transaction: read, decide (`plan`), write
//! (`apply`). If a write did not do what was decided, or failed, the transaction is rolled
//! back and the group replayed one job at a time, each in a savepoint of its own with the
//! same read, decide and write, so one bad job never sinks the others.
//!
//! A write that fails for a reason that can pass (see `Backend::is_passing`) fails the
//! whole group with [`StoreError::Unavailable`]; the connection is closed, so no
//! half-open transaction outlives it, and the store is degraded until a commit succeeds
//! again (the writer probes every [`PROBE_EVERY`] while idle). A `COMMIT` whose outcome is
//! unknown fails the store for good.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::Executor;

use super::durable::{syncer, WalLog};
use super::group::{Committed, Group};
use super::job::{Ack, SubmitJob, WriteJob};
use super::transact::{begin_with, transact, Jobs, Trouble};
use super::Writer;
use crate::domain::UnixMs;
use crate::store::engine::Durability;
use crate::store::idempotency::Claim;
use crate::store::queue::SubmitOutcome;
use crate::store::StoreError;

/// What the writer has done since start, for metrics and benchmarks.
#[derive(Debug, Default)]
pub(in crate::store) struct Stats {
    commits: AtomicU64,
    submissions: AtomicU64,
    acks: AtomicU64,
    directs: AtomicU64,
    callbacks: AtomicU64,
    replays: AtomicU64,
}

/// A snapshot of the writer's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterCounts {
    /// Transactions committed (or attempted) by the writer.
    pub commits: u64,
    /// Submissions those carried.
    pub submissions: u64,
    /// Device acks those carried.
    pub acks: u64,
    /// Messages from devices to other identities those carried.
    pub directs: u64,
    /// Replies and receipts from devices to gateway IDs those carried.
    pub callbacks: u64,
    /// Groups that were replayed one job at a time.
    pub replays: u64,
}

impl Stats {
    pub(super) fn replayed(&self) {
        self.replays.fetch_add(1, Ordering::Relaxed);
    }

    pub(in crate::store) fn snapshot(&self) -> WriterCounts {
        WriterCounts {
            commits: self.commits.load(Ordering::Relaxed),
            submissions: self.submissions.load(Ordering::Relaxed),
            acks: self.acks.load(Ordering::Relaxed),
            directs: self.directs.load(Ordering::Relaxed),
            callbacks: self.callbacks.load(Ordering::Relaxed),
            replays: self.replays.load(Ordering::Relaxed),
        }
    }
}

/// Most groups committed and not yet synced. The writer waits for a sync before it
/// commits a third group: more commits than syncs would only make the groups smaller and
/// each job dearer, as every commit rewrites the pages it shares with the one before.
const MAX_UNSYNCED: usize = 2;

/// Most jobs in one commit.
const MAX_BATCH: usize = 1024;

/// Below this many waiting jobs a group takes them all.
const EVEN_FROM: usize = 64;

/// How often a degraded writer with nothing to do tries a commit of its own.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// How many of the `waiting` jobs the next group takes. All of them (up to
/// [`MAX_BATCH`]) unless `even`; with `even`, from [`EVEN_FROM`] on, the largest power of
/// two of them, the rest going first into the group after. A group of submissions then
/// writes each table with one multi-row statement (see `sql::runs`) instead of one per
/// bit set in its size, each a round trip to SQLite's thread.
fn group_size(waiting: usize, even: bool) -> usize {
    if !even || waiting < EVEN_FROM {
        waiting.min(MAX_BATCH)
    } else {
        (1 << waiting.ilog2()).min(MAX_BATCH)
    }
}

/// Runs until every `Store` handle is gone.
pub(in crate::store) async fn run(w: Writer, mut jobs: tokio::sync::mpsc::Receiver<WriteJob>) {
    let to_sync = match &w.durability {
        Durability::Deferred(wal) => {
            let (to_sync, committed) = tokio::sync::mpsc::unbounded_channel();
            let log = WalLog::new(wal.clone());
            tokio::spawn(syncer(
                log,
                w.pool.clone(),
                w.listener.clone(),
                w.health.clone(),
                committed,
            ));
            Some(to_sync)
        }
        Durability::AtCommit => None,
    };
    let unsynced = Arc::new(tokio::sync::Semaphore::new(MAX_UNSYNCED));
    loop {
        let first = if w.health.is_degraded() {
            tokio::select! {
                job = jobs.recv() => job,
                () = tokio::time::sleep(PROBE_EVERY) => {
                    probe(&w).await;
                    continue;
                }
            }
        } else {
            jobs.recv().await
        };
        let Some(first) = first else { return };
        // Jobs go on arriving while earlier commits sync, and join this group.
        let permit = match &to_sync {
            Some(_) => unsynced.clone().acquire_owned().await.ok(),
            None => None,
        };
        let mut group = Group {
            submissions: Vec::new(),
            acks: Vec::new(),
            directs: Vec::new(),
            callbacks: Vec::new(),
            committed: Committed::default(),
            _unsynced: permit,
        };
        let mut take = |job| match job {
            WriteJob::Submit(j) => group.submissions.push(j),
            WriteJob::Ack(a) => group.acks.push(a),
            WriteJob::Direct(d) => group.directs.push(d),
            WriteJob::Callback(c) => group.callbacks.push(c),
        };
        take(first);
        for _ in 1..group_size(1 + jobs.len(), w.backend.evens_groups()) {
            match jobs.try_recv() {
                Ok(job) => take(job),
                Err(_) => break,
            }
        }
        if let Some(reason) = w.health.failure() {
            group.fail(|| StoreError::Failed(reason.clone()));
            continue;
        }
        // Acks lock queue rows; a fixed order keeps two nodes from deadlocking.
        group.acks.sort_by_key(|job| job.ack.key());
        count(&w.stats, &group);
        let acks: Vec<Ack> = group.acks.iter().map(|job| job.ack).collect();
        let jobs_of = Jobs {
            submissions: &group.submissions,
            acks: &acks,
            directs: &group.directs,
            callbacks: &group.callbacks,
        };
        match commit(&w, jobs_of, to_sync.is_some()).await {
            Ok(committed) => {
                w.health.recovered();
                // The writer's own next group must see these keys taken at once; callers
                // hear of them only once the commit is durable, and a failed sync fails
                // every later group too, so no retry is answered from a lost commit.
                w.keys
                    .committed(accepted_claims(&group.submissions, &committed));
                group.committed = committed;
                match &to_sync {
                    Some(to_sync) => {
                        if let Err(unsent) = to_sync.send(group) {
                            unsent
                                .0
                                .fail(|| StoreError::Failed("the log syncer has stopped".into()));
                        }
                    }
                    None => group.finish(&w.pool, w.listener.get()).await,
                }
            }
            Err(Trouble::Passing(e)) => {
                let reason = format!("writes fail for now: {e}");
                tracing::warn!("{reason}; retrying");
                w.health.degrade(&reason);
                group.fail(|| StoreError::Unavailable(reason.clone()));
            }
            Err(Trouble::Unknown(e)) => {
                let reason = format!("a commit's outcome is unknown: {e}");
                tracing::error!("{reason}; the store takes no more writes until a restart");
                w.health.fail(&reason);
                group.fail(|| StoreError::Failed(reason.clone()));
            }
        }
    }
}

fn count(stats: &Stats, group: &Group) {
    stats.commits.fetch_add(1, Ordering::Relaxed);
    let add = |counter: &AtomicU64, n: usize| counter.fetch_add(n as u64, Ordering::Relaxed);
    add(&stats.submissions, group.submissions.len());
    add(&stats.acks, group.acks.len());
    add(&stats.directs, group.directs.len());
    add(&stats.callbacks, group.callbacks.len());
}

/// The keys of the submissions a commit accepted.
fn accepted_claims<'a>(
    submissions: &'a [SubmitJob],
    committed: &'a Committed,
) -> impl Iterator<Item = Claim<'a>> {
    submissions
        .iter()
        .zip(&committed.submitted)
        .filter(|(_, outcome)| matches!(outcome, Ok(SubmitOutcome::Accepted(_))))
        .flat_map(|(job, _)| job.claims())
}

/// Commits one group; the connection is closed when anything failed, so it never goes
/// back to the pool inside a transaction.
async fn commit(w: &Writer, jobs: Jobs<'_>, deferred: bool) -> Result<Committed, Trouble> {
    let mut conn = w
        .pool
        .acquire()
        .await
        .map_err(|e| Trouble::Passing(e.into()))?;
    let outcome = transact(w, &mut conn, jobs, deferred).await;
    if outcome.is_err() {
        conn.close_on_drop();
    } else if deferred {
        // The write connection is shared with the other writes of this process, which
        // sync their own commits: it goes back as it came, or is closed.
        if let Some(statement) = w.backend.after_deferred() {
            if let Err(e) = conn.execute(statement).await {
                tracing::error!("cannot restore synchronous commits on the write connection: {e}");
                conn.close_on_drop();
            }
        }
    }
    outcome
}

/// A degraded writer's own commit: when it goes through, the trouble has passed.
async fn probe(w: &Writer) {
    let tried = async {
        let mut conn = w.pool.acquire().await?;
        let written = async {
            let mut tx = begin_with(&mut conn, w.backend.begin_write()).await?;
            sqlx::query(
                "INSERT INTO store_probe (id, probed_at) VALUES (1, $1) \
                 ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at",
            )
            .bind(UnixMs::now())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<(), StoreError>(())
        }
        .await;
        if written.is_err() {
            conn.close_on_drop();
        }
        written
    };
    match tried.await {
        Ok(()) => {
            tracing::info!("writes succeed again");
            w.health.recovered();
        }
        Err(e) => tracing::debug!("writes still fail: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_takes_all_of_a_few_jobs_and_a_power_of_two_of_many() {
        let waiting = [1, 39, 63, 64, 65, 300, 1024, 5000];
        let even: Vec<usize> = waiting.iter().map(|&w| group_size(w, true)).collect();
        assert_eq!(even, [1, 39, 63, 64, 64, 256, 1024, 1024]);
        let all: Vec<usize> = waiting.iter().map(|&w| group_size(w, false)).collect();
        assert_eq!(all, [1, 39, 63, 64, 65, 300, 1024, 1024]);
    }
}
