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
use std::sync::{Arc, OnceLock};

use super::delivery::{self, AckJob};
use super::group::Params;
use super::idempotency::Keys;
use super::queue::{self, DirectJob, Job, QueuedMessage};
use super::{Backend, StoreError};
use tocsin_sdk::protocol::IdentityId;

/// One write waiting for the writer.
pub(super) enum WriteJob {
    Submit(Job),
    Ack(AckJob),
    Direct(DirectJob),
}

/// Told about every message the writer queued for a recipient it listens for, right
/// after the commit that holds it, in queue order. On SQLite every queued message is
/// committed here, so a listener misses none; the hub uses this to hand new messages to
/// connected sessions without a read.
pub trait QueueListener: Send + Sync + std::fmt::Debug {
    /// Whether messages for `recipient` are wanted (asked after the commit, so a listener
    /// that starts listening later reads the store and finds them there).
    fn listening(&self, recipient: &IdentityId) -> bool;
    /// Messages committed for recipients it listens for (and maybe others), in queue order.
    fn queued(&self, messages: &[QueuedMessage]);
    /// Messages for these recipients were committed but could not be read back: whoever
    /// waits for them must read the store.
    fn missed(&self, recipients: &[IdentityId]);
}

/// Where the writer finds its listener, once one is set.
pub(super) type ListenerSlot = Arc<OnceLock<Arc<dyn QueueListener>>>;

/// What the writer has done since start, for metrics and benchmarks.
#[derive(Debug, Default)]
pub(super) struct Stats {
    commits: AtomicU64,
    submissions: AtomicU64,
    acks: AtomicU64,
    directs: AtomicU64,
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
    /// Groups whose multi-row fast path was abandoned and replayed one job at a time.
    pub replays: u64,
}

impl Stats {
    pub(super) fn snapshot(&self) -> WriterCounts {
        WriterCounts {
            commits: self.commits.load(Ordering::Relaxed),
            submissions: self.submissions.load(Ordering::Relaxed),
            acks: self.acks.load(Ordering::Relaxed),
            directs: self.directs.load(Ordering::Relaxed),
            replays: self.replays.load(Ordering::Relaxed),
        }
    }

    pub(super) fn replayed(&self) {
        self.replays.fetch_add(1, Ordering::Relaxed);
    }
}

impl super::Store {
    /// Hands a job to the writer and waits for the commit that holds it; `job` builds the
    /// job around the channel its answer comes back on.
    pub(super) async fn through_writer<T>(
        &self,
        job: impl FnOnce(tokio::sync::oneshot::Sender<Result<T, StoreError>>) -> WriteJob,
    ) -> Result<T, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.writer
            .send(job(reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

/// Runs `apply` in a savepoint of `tx`: kept when it succeeds, rolled back when it fails,
/// so one failing job leaves no trace and the others go on. The outer error is the
/// savepoint's own.
pub(super) async fn in_savepoint<T>(
    tx: &mut sqlx::AnyConnection,
    apply: impl AsyncFnOnce(&mut sqlx::AnyConnection) -> Result<T, StoreError>,
) -> Result<Result<T, StoreError>, StoreError> {
    let mut savepoint = sqlx::Connection::begin(&mut *tx).await?;
    match apply(&mut savepoint).await {
        Ok(value) => {
            savepoint.commit().await?;
            Ok(Ok(value))
        }
        Err(e) => {
            savepoint.rollback().await?;
            Ok(Err(e))
        }
    }
}

/// Most jobs in one commit.
const MAX_BATCH: usize = 1024;

/// Runs until every `Store` handle is gone.
pub(super) async fn writer(
    pool: sqlx::AnyPool,
    backend: Backend,
    keys: Keys,
    listener: ListenerSlot,
    stats: std::sync::Arc<Stats>,
    mut jobs: tokio::sync::mpsc::Receiver<WriteJob>,
) {
    let params = Params::of(backend);
    while let Some(first) = jobs.recv().await {
        let mut submissions = Vec::new();
        let mut acks = Vec::new();
        let mut directs = Vec::new();
        let mut take = |job| match job {
            WriteJob::Submit(j) => submissions.push(j),
            WriteJob::Ack(a) => acks.push(a),
            WriteJob::Direct(d) => directs.push(d),
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
        stats
            .directs
            .fetch_add(directs.len() as u64, Ordering::Relaxed);
        let jobs = Jobs {
            submissions: &submissions,
            acks: &acks,
            directs: &directs,
        };
        let listener = listener.get();
        match commit(
            &pool,
            params,
            backend,
            &keys,
            &stats,
            jobs,
            listener.is_some(),
        )
        .await
        {
            Ok(Committed {
                submitted,
                acked,
                direct,
                queued_after,
            }) => {
                if let (Some(listener), Some(before)) = (listener, queued_after) {
                    let recipients: Vec<IdentityId> = submissions
                        .iter()
                        .zip(&submitted)
                        .filter(|(_, o)| matches!(o, Ok(queue::SubmitOutcome::Accepted(_))))
                        .map(|(job, _)| job.submission.message.recipient)
                        .chain(
                            directs
                                .iter()
                                .zip(&direct)
                                .filter(|(_, o)| matches!(o, Ok(true)))
                                .map(|(job, _)| job.message.recipient),
                        )
                        .collect();
                    announce(&pool, listener.as_ref(), before, &recipients).await;
                }
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
                for (job, outcome) in directs.into_iter().zip(direct) {
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
                for job in directs {
                    job.answer(Err(StoreError::Group(reason.clone())));
                }
            }
        }
    }
}

type Outcomes<T> = Vec<Result<T, StoreError>>;

/// The jobs of one commit.
#[derive(Clone, Copy)]
struct Jobs<'a> {
    submissions: &'a [Job],
    acks: &'a [AckJob],
    directs: &'a [DirectJob],
}

/// What one commit did.
struct Committed {
    submitted: Outcomes<queue::SubmitOutcome>,
    acked: Outcomes<delivery::AckOutcome>,
    direct: Outcomes<bool>,
    /// When someone listens: the last queue sequence number before this commit, so the
    /// rows after it are this commit's.
    queued_after: Option<i64>,
}

async fn commit(
    pool: &sqlx::AnyPool,
    params: Params,
    backend: Backend,
    keys: &Keys,
    stats: &Stats,
    jobs: Jobs<'_>,
    announce: bool,
) -> Result<Committed, StoreError> {
    // It reads before it writes: see `begin_write`.
    let mut tx = super::begin_write(pool, backend).await?;
    let queues = announce && !(jobs.submissions.is_empty() && jobs.directs.is_empty());
    let before = if queues {
        queue::last_seq(&mut tx).await?
    } else {
        0
    };
    let submitted = if jobs.submissions.is_empty() {
        Vec::new()
    } else {
        queue::apply_submissions(&mut tx, params, keys, stats, jobs.submissions).await?
    };
    let direct = if jobs.directs.is_empty() {
        Vec::new()
    } else {
        queue::apply_directs(&mut tx, jobs.directs).await?
    };
    let acked = if jobs.acks.is_empty() {
        Vec::new()
    } else {
        delivery::apply_acks(&mut tx, params, backend, stats, jobs.acks).await?
    };
    tx.commit().await?;
    Ok(Committed {
        submitted,
        acked,
        direct,
        queued_after: queues.then_some(before),
    })
}

/// Hands the listener what the last commit queued for recipients it listens for. The
/// single writer inserts every queue row and the next commit has not begun, so the rows
/// after `before` are exactly that commit's (an ack never deletes a message it has just
/// queued). If they cannot be read, the listener is told to send its waiters to the store.
async fn announce(
    pool: &sqlx::AnyPool,
    listener: &dyn QueueListener,
    before: i64,
    recipients: &[IdentityId],
) {
    if !recipients.iter().any(|r| listener.listening(r)) {
        return;
    }
    let read = async {
        let mut conn = pool.acquire().await?;
        queue::queued_after(&mut conn, before).await
    };
    match read.await {
        Ok(messages) => listener.queued(&messages),
        Err(e) => {
            tracing::warn!("cannot read back the messages just queued: {e}");
            listener.missed(recipients);
        }
    }
}
