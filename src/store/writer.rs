//! The hot-path writer: paid submissions and device acknowledgements, committed together.
//!
//! One task owns every write of the two busiest paths. It waits for a job, takes every
//! other job already waiting (up to [`MAX_BATCH`]) and commits them all in one
//! transaction, so one durable commit (one fsync on SQLite) serves a whole batch of
//! requests and acks. Each caller is answered only after the commit that holds its job.
//!
//! Inside the transaction, submissions and acks each try their multi-row fast path first,
//! inside a savepoint; if it diverges from what one-by-one would do, or fails, the
//! savepoint is rolled back and every job is replayed in a savepoint of its own, so one bad
//! job never sinks the others.

use std::sync::atomic::{AtomicU64, Ordering};

use super::delivery::{self, AckJob};
use super::group::Params;
use super::idempotency::Keys;
use super::queue::{self, Job};
use super::{Backend, StoreError};

/// One write waiting for the writer.
pub(super) enum WriteJob {
    Submit(Job),
    Ack(AckJob),
}

/// What the writer has done since start, for metrics and benchmarks.
#[derive(Debug, Default)]
pub(super) struct Stats {
    commits: AtomicU64,
    submissions: AtomicU64,
    acks: AtomicU64,
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
    /// Groups whose multi-row fast path was abandoned and replayed one job at a time.
    pub replays: u64,
}

impl Stats {
    pub(super) fn snapshot(&self) -> WriterCounts {
        WriterCounts {
            commits: self.commits.load(Ordering::Relaxed),
            submissions: self.submissions.load(Ordering::Relaxed),
            acks: self.acks.load(Ordering::Relaxed),
            replays: self.replays.load(Ordering::Relaxed),
        }
    }

    pub(super) fn replayed(&self) {
        self.replays.fetch_add(1, Ordering::Relaxed);
    }
}

/// Most jobs in one commit.
const MAX_BATCH: usize = 1024;

/// Runs until every `Store` handle is gone.
pub(super) async fn writer(
    pool: sqlx::AnyPool,
    backend: Backend,
    keys: Keys,
    stats: std::sync::Arc<Stats>,
    mut jobs: tokio::sync::mpsc::Receiver<WriteJob>,
) {
    let params = Params::of(backend);
    while let Some(first) = jobs.recv().await {
        let mut submissions = Vec::new();
        let mut acks = Vec::new();
        let mut take = |job| match job {
            WriteJob::Submit(j) => submissions.push(j),
            WriteJob::Ack(a) => acks.push(a),
        };
        take(first);
        for _ in 1..MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => take(job),
                Err(_) => break,
            }
        }
        // Acks lock queue rows; a fixed order keeps two nodes from deadlocking.
        acks.sort_by_key(AckJob::order_key);
        stats.commits.fetch_add(1, Ordering::Relaxed);
        stats
            .submissions
            .fetch_add(submissions.len() as u64, Ordering::Relaxed);
        stats.acks.fetch_add(acks.len() as u64, Ordering::Relaxed);
        match commit(&pool, params, backend, &keys, &stats, &submissions, &acks).await {
            Ok((submitted, acked)) => {
                keys.committed(
                    submissions
                        .iter()
                        .zip(&submitted)
                        .filter(|(_, outcome)| {
                            matches!(outcome, Ok(queue::SubmitOutcome::Accepted(_)))
                        })
                        .flat_map(|(job, _)| job.claims()),
                );
                for (job, outcome) in submissions.into_iter().zip(submitted) {
                    job.answer(outcome);
                }
                for (job, outcome) in acks.into_iter().zip(acked) {
                    job.answer(outcome);
                }
            }
            Err(e) => {
                let reason = e.to_string();
                for job in submissions {
                    job.answer(Err(StoreError::Group(reason.clone())));
                }
                for job in acks {
                    job.answer(Err(StoreError::Group(reason.clone())));
                }
            }
        }
    }
}

type Outcomes<T> = Vec<Result<T, StoreError>>;

async fn commit(
    pool: &sqlx::AnyPool,
    params: Params,
    backend: Backend,
    keys: &Keys,
    stats: &Stats,
    submissions: &[Job],
    acks: &[AckJob],
) -> Result<
    (
        Outcomes<queue::SubmitOutcome>,
        Outcomes<delivery::AckOutcome>,
    ),
    StoreError,
> {
    let mut tx = pool.begin().await?;
    let submitted = if submissions.is_empty() {
        Vec::new()
    } else {
        queue::apply_submissions(&mut tx, params, keys, stats, submissions).await?
    };
    let acked = if acks.is_empty() {
        Vec::new()
    } else {
        delivery::apply_acks(&mut tx, params, backend, stats, acks).await?
    };
    tx.commit().await?;
    Ok((submitted, acked))
}
