//! The hot-path writer: paid submissions and device acknowledgements, committed together.
//!
//! One task owns every write of the two busiest paths. It waits for a job, takes the
//! other jobs already waiting (on SQLite, of many a power of two: [`group_size`]) and
//! commits them all in one transaction, so one durable commit (one fsync on SQLite)
//! serves a whole batch of requests and acks. Each caller is answered only after the
//! commit that holds its job.
//!
//! On SQLite the commit itself does not wait for the disk. The writer commits with
//! `synchronous = NORMAL` and goes on with the next group at once (up to
//! [`MAX_UNSYNCED`] groups ahead), while [`syncer`] syncs the write-ahead log and only then
//! announces the messages of every group committed before that sync to the sessions and
//! answers their callers. The fsync so overlaps the next group's statements instead of
//! holding them up. The log is written in commit order, so a sync makes every earlier
//! commit durable, and no caller hears of a commit before that. What the catch costs: another
//! reader of the file (a session reading its queue, `/credits`) can see a commit a few
//! milliseconds before it is on disk; after a power cut in that window the commit is gone,
//! its senders got no answer and retry, and a device may see such a message twice.
//!
//! Inside the transaction, submissions and acks each try their multi-row fast path first.
//! The submissions' runs straight in the transaction; if it diverges from what one-by-one
//! would do, or fails, the whole transaction is rolled back and run again with every
//! submission in a savepoint of its own, so one bad job never sinks the others. The acks'
//! runs in a savepoint, which is rolled back before they are replayed one by one.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use sqlx::Executor;

use super::delivery::{self, AckJob};
use super::group::Params;
use super::idempotency::Keys;
use super::inbox::{Answer, Batches};
use super::queue::{self, Attempt, DirectJob, Job, QueuedMessage};
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

/// Most groups committed and not yet synced. The writer waits for a sync before it
/// commits a third group: more commits than syncs would only make the groups smaller and
/// each job dearer, as every commit rewrites the pages it shares with the one before.
const MAX_UNSYNCED: usize = 2;

/// Most jobs in one commit.
const MAX_BATCH: usize = 1024;

/// How many of the `waiting` jobs the next group takes. All of them (up to
/// [`MAX_BATCH`]) unless `even`; with `even`, from [`EVEN_FROM`] on, the largest power of
/// two of them, the rest going first into the group after. A group of submissions then
/// writes each table with one multi-row statement (see `group::runs`) instead of one per
/// bit set in its size (four per table for 300), each a round trip to SQLite's thread.
///
/// `even` only where the commit does not wait for the disk (SQLite, see [`syncer`]): the
/// jobs left over then wait for one cheap commit more. Where each commit waits for its
/// fsync (PostgreSQL), that wait is the commit's cost, and up to half of the jobs waiting
/// a commit longer cut the throughput by as much: 2,830–3,266/s against 7,425–7,775/s at
/// 512 in flight.
fn group_size(waiting: usize, even: bool) -> usize {
    if !even || waiting < EVEN_FROM {
        waiting.min(MAX_BATCH)
    } else {
        (1 << waiting.ilog2()).min(MAX_BATCH)
    }
}

/// Below this many waiting jobs a group takes them all.
const EVEN_FROM: usize = 64;

/// Runs until every `Store` handle is gone. With `wal` (SQLite: the path of the
/// write-ahead log) commits are synced apart from the writer, by [`syncer`].
pub(super) async fn writer(
    pool: sqlx::AnyPool,
    backend: Backend,
    keys: Keys,
    listener: ListenerSlot,
    stats: std::sync::Arc<Stats>,
    mut jobs: tokio::sync::mpsc::Receiver<WriteJob>,
    wal: Option<PathBuf>,
) {
    let params = Params::of(backend);
    let to_sync = wal.map(|wal| {
        let (to_sync, committed) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(syncer(wal, pool.clone(), listener.clone(), committed));
        to_sync
    });
    let unsynced = Arc::new(tokio::sync::Semaphore::new(MAX_UNSYNCED));
    while let Some(first) = jobs.recv().await {
        // Jobs go on arriving while earlier commits sync, and join this group.
        let permit = match &to_sync {
            Some(_) => unsynced.clone().acquire_owned().await.ok(),
            None => None,
        };
        let mut submissions = Vec::new();
        let mut acks = Vec::new();
        let mut directs = Vec::new();
        let mut take = |job| match job {
            WriteJob::Submit(j) => submissions.push(j),
            WriteJob::Ack(a) => acks.push(a),
            WriteJob::Direct(d) => directs.push(d),
        };
        take(first);
        for _ in 1..group_size(1 + jobs.len(), to_sync.is_some()) {
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
        let announce = listener.get().is_some();
        let durable = if to_sync.is_some() {
            Durable::Deferred
        } else {
            Durable::AtCommit
        };
        let writing = Writing {
            params,
            backend,
            keys: &keys,
            stats: &stats,
            announce,
            durable,
        };
        match commit(&pool, writing, jobs).await {
            Ok(committed) => {
                // The writer's own next group must see these keys taken at once; callers
                // hear of them only once the commit is on disk.
                keys.committed(
                    submissions
                        .iter()
                        .zip(&committed.submitted)
                        .filter(|(_, outcome)| {
                            matches!(outcome, Ok(queue::SubmitOutcome::Accepted(_)))
                        })
                        .flat_map(|(job, _)| job.claims()),
                );
                let group = Group {
                    submissions,
                    acks,
                    directs,
                    committed,
                    _unsynced: permit,
                };
                match &to_sync {
                    Some(to_sync) => {
                        if let Err(unsent) = to_sync.send(group) {
                            unsent.0.fail("the store's log syncer has stopped");
                        }
                    }
                    None => group.finish(&pool, listener.get()).await,
                }
            }
            Err(e) => Group {
                submissions,
                acks,
                directs,
                committed: Committed::default(),
                _unsynced: None,
            }
            .fail(&e.to_string()),
        }
    }
}

/// Syncs the write-ahead log at `wal` for the groups the writer committed, as many at a
/// time as are waiting, then finishes them in commit order.
async fn syncer(
    wal: PathBuf,
    pool: sqlx::AnyPool,
    listener: ListenerSlot,
    mut committed: tokio::sync::mpsc::UnboundedReceiver<Group>,
) {
    while let Some(first) = committed.recv().await {
        let mut groups = vec![first];
        while let Ok(more) = committed.try_recv() {
            groups.push(more);
        }
        let path = wal.clone();
        let synced = tokio::task::spawn_blocking(move || sync_log(&path))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        match synced {
            Ok(()) => {
                for group in groups {
                    group.finish(&pool, listener.get()).await;
                }
            }
            Err(e) => {
                tracing::error!("cannot sync the write-ahead log {}: {e}", wal.display());
                let reason = format!("the commit could not be synced to disk: {e}");
                for group in groups {
                    group.fail(&reason);
                }
            }
        }
    }
}

/// Makes every commit written to the log at `wal` so far durable. A log that is gone was
/// checkpointed into the database and synced there before SQLite removed it (it does so
/// when its last connection closes), so there is nothing left to sync.
pub(super) fn sync_log(wal: &Path) -> std::io::Result<()> {
    match std::fs::File::open(wal) {
        Ok(file) => file.sync_data(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// A committed group of jobs, waiting to be answered.
struct Group {
    submissions: Vec<Job>,
    acks: Vec<AckJob>,
    directs: Vec<DirectJob>,
    committed: Committed,
    /// Held until the group is synced (see [`MAX_UNSYNCED`]).
    _unsynced: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Group {
    /// Announces what the group queued, then answers every job with its outcome.
    async fn finish(self, pool: &sqlx::AnyPool, listener: Option<&Arc<dyn QueueListener>>) {
        let Committed {
            submitted,
            acked,
            direct,
            queued,
        } = self.committed;
        if let (Some(listener), Some(seqs)) = (listener, queued) {
            let recipients: Vec<IdentityId> = self
                .submissions
                .iter()
                .zip(&submitted)
                .filter(|(_, o)| matches!(o, Ok(queue::SubmitOutcome::Accepted(_))))
                .map(|(job, _)| job.submission.message.recipient)
                .chain(
                    self.directs
                        .iter()
                        .zip(&direct)
                        .filter(|(_, o)| matches!(o, Ok(true)))
                        .map(|(job, _)| job.message.recipient),
                )
                .collect();
            announce(pool, listener.as_ref(), seqs, &recipients).await;
        }
        let mut batches = Batches::default();
        for (mut job, outcome) in self.submissions.into_iter().zip(submitted) {
            match job.inbox.take() {
                Some(inbox) => batches.add(inbox, Answer::Submit(job, outcome)),
                None => job.answer(outcome),
            }
        }
        batches.send();
        for (job, outcome) in self.acks.into_iter().zip(acked) {
            job.answer(outcome);
        }
        for (job, outcome) in self.directs.into_iter().zip(direct) {
            job.answer(outcome);
        }
    }

    /// Answers every job with `reason`: the group was not committed, or not synced.
    fn fail(self, reason: &str) {
        for job in self.submissions {
            job.answer(Err(StoreError::Group(reason.to_owned())));
        }
        for job in self.acks {
            job.answer(Err(StoreError::Group(reason.to_owned())));
        }
        for job in self.directs {
            job.answer(Err(StoreError::Group(reason.to_owned())));
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
#[derive(Default)]
struct Committed {
    submitted: Outcomes<queue::SubmitOutcome>,
    acked: Outcomes<delivery::AckOutcome>,
    direct: Outcomes<bool>,
    /// When someone listens: the queue sequence numbers this commit used, as the last one
    /// before it and its own last one.
    queued: Option<(i64, i64)>,
}

/// When a commit reaches the disk.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Durable {
    /// Within the commit (PostgreSQL; SQLite with `synchronous = FULL`).
    AtCommit,
    /// Later, by [`syncer`]: the commit runs with `synchronous = NORMAL` (SQLite).
    Deferred,
}

/// What every commit of the writer works with.
#[derive(Clone, Copy)]
struct Writing<'a> {
    params: Params,
    backend: Backend,
    keys: &'a Keys,
    stats: &'a Stats,
    /// Someone listens for queued messages: note the sequence numbers a commit uses.
    announce: bool,
    durable: Durable,
}

async fn commit(
    pool: &sqlx::AnyPool,
    w: Writing<'_>,
    jobs: Jobs<'_>,
) -> Result<Committed, StoreError> {
    let Writing {
        backend,
        stats,
        durable,
        ..
    } = w;
    let mut conn = pool.acquire().await?;
    let outcome = async {
        // The fast attempt first; when it diverges, the whole group again, one by one.
        for attempt in [Attempt::Fast, Attempt::OneByOne] {
            let mut tx = begin(&mut conn, backend, durable).await?;
            match apply(&mut tx, w, jobs, attempt).await? {
                Some(committed) => {
                    tx.commit().await?;
                    return Ok(committed);
                }
                None => {
                    tx.rollback().await?;
                    stats.replayed();
                }
            }
        }
        Err(StoreError::Group(
            "submissions replayed one by one did not apply".into(),
        ))
    }
    .await;
    if durable == Durable::Deferred {
        // The write connection is shared with the other writes of this process, which
        // sync their own commits: it goes back as it came, or is closed.
        if let Err(e) = conn.execute("PRAGMA synchronous = FULL").await {
            tracing::error!("cannot restore synchronous commits on the write connection: {e}");
            conn.close_on_drop();
        }
    }
    outcome
}

/// Begins a group's transaction. On SQLite it is `BEGIN IMMEDIATE` (see `begin_write`),
/// after switching the commit's own sync off when [`syncer`] syncs instead, in the same
/// round trip to the connection.
async fn begin(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    durable: Durable,
) -> Result<sqlx::Transaction<'_, sqlx::Any>, StoreError> {
    let statement = match (backend, durable) {
        (Backend::Postgres, _) => return Ok(sqlx::Connection::begin(conn).await?),
        (Backend::Sqlite, Durable::AtCommit) => "BEGIN IMMEDIATE",
        (Backend::Sqlite, Durable::Deferred) => "PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE",
    };
    Ok(sqlx::Connection::begin_with(conn, statement).await?)
}

/// The statements of one group, inside its transaction; `None` when the fast attempt at
/// its submissions diverged (roll back and try again one by one).
async fn apply(
    tx: &mut sqlx::AnyConnection,
    w: Writing<'_>,
    jobs: Jobs<'_>,
    attempt: Attempt,
) -> Result<Option<Committed>, StoreError> {
    let Writing {
        params,
        backend,
        keys,
        stats,
        announce,
        ..
    } = w;
    let queues = announce && !(jobs.submissions.is_empty() && jobs.directs.is_empty());
    let before = if queues {
        queue::last_seq(&mut *tx).await?
    } else {
        0
    };
    let submitted = if jobs.submissions.is_empty() {
        Vec::new()
    } else {
        match queue::apply_submissions(&mut *tx, params, keys, jobs.submissions, attempt).await? {
            Some(outcomes) => outcomes,
            None => return Ok(None),
        }
    };
    let direct = if jobs.directs.is_empty() {
        Vec::new()
    } else {
        queue::apply_directs(&mut *tx, jobs.directs).await?
    };
    let acked = if jobs.acks.is_empty() {
        Vec::new()
    } else {
        delivery::apply_acks(&mut *tx, params, backend, stats, jobs.acks).await?
    };
    let queued = if queues {
        Some((before, queue::last_seq(&mut *tx).await?))
    } else {
        None
    };
    Ok(Some(Committed {
        submitted,
        acked,
        direct,
        queued,
    }))
}

/// Hands the listener what a commit queued for recipients it listens for. The single
/// writer inserts every queue row, so the rows in `(before, last]` are exactly that
/// commit's (an ack never deletes a message it has just queued). If they cannot be read,
/// the listener is told to send its waiters to the store.
async fn announce(
    pool: &sqlx::AnyPool,
    listener: &dyn QueueListener,
    (before, last): (i64, i64),
    recipients: &[IdentityId],
) {
    if !recipients.iter().any(|r| listener.listening(r)) {
        return;
    }
    let read = async {
        let mut conn = pool.acquire().await?;
        queue::queued_between(&mut conn, before, last).await
    };
    match read.await {
        Ok(messages) => listener.queued(&messages),
        Err(e) => {
            tracing::warn!("cannot read back the messages just queued: {e}");
            listener.missed(recipients);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NewMessage, Store};
    use tocsin_sdk::protocol::{MessageId, Nonce};

    /// The order that makes a deferred sync durable: a commit is visible in the file at
    /// once, but its caller is answered only after the sync, and a sync that fails is an
    /// error for the caller, never a success.
    #[tokio::test]
    async fn callers_hear_of_a_commit_only_after_its_sync_and_a_failed_sync_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let opened = Store::open(&url, 2).await.unwrap();
        opened.migrate().await.unwrap();
        // A "log" that holds its sync until the test lets it go, and then cannot be synced:
        // a FIFO opens only once a writer opens it too, and fdatasync refuses it.
        let fifo = dir.path().join("log.fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success(), "mkfifo");
        let store = Store::assemble(
            opened.write.clone(),
            opened.read.clone(),
            Backend::Sqlite,
            Some(fifo.clone()),
        );
        let message = NewMessage {
            message_id: MessageId::random(),
            sender: IdentityId::parse("BOB45678").unwrap(),
            recipient: IdentityId::parse("ALICE123").unwrap(),
            flags: 1,
            nonce: Nonce::random(),
            body: vec![0xcd; 40],
            expires_at: i64::MAX,
        };
        let sending = tokio::spawn({
            let store = store.clone();
            async move { store.enqueue_direct(&message, 1).await }
        });
        // A bound only so that a broken writer fails the test instead of hanging it.
        let committed = tokio::time::timeout(std::time::Duration::from_secs(60), async {
            while store.queue_depth().await.unwrap() == 0 {
                tokio::task::yield_now().await;
            }
        })
        .await;
        let answered_early = sending.is_finished();
        // Opened for reading and writing, a FIFO never blocks, and it lets the syncer's
        // open go on; nothing between here and the blocked open can panic.
        let _writer_end = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .unwrap();
        let answer = sending.await.unwrap();
        assert!(committed.is_ok(), "the group was never committed");
        assert!(!answered_early, "answered before its sync");
        match answer {
            Err(StoreError::Group(reason)) => assert!(reason.contains("synced"), "{reason}"),
            other => panic!("a failed sync must fail the caller, got {other:?}"),
        }
    }

    #[test]
    fn a_group_takes_all_of_a_few_jobs_and_a_power_of_two_of_many() {
        let waiting = [1, 39, 63, 64, 65, 300, 1024, 5000];
        let even: Vec<usize> = waiting.iter().map(|&w| group_size(w, true)).collect();
        assert_eq!(even, [1, 39, 63, 64, 64, 256, 1024, 1024]);
        let all: Vec<usize> = waiting.iter().map(|&w| group_size(w, false)).collect();
        assert_eq!(all, [1, 39, 63, 64, 65, 300, 1024, 1024]);
    }

    #[test]
    fn a_log_is_synced_and_a_log_that_is_gone_needs_no_sync() {
        let dir = tempfile::tempdir().unwrap();
        let wal = dir.path().join("t.db-wal");
        sync_log(&wal).expect("checkpointed and removed");
        std::fs::write(&wal, b"frames").unwrap();
        sync_log(&wal).unwrap();
        let err = sync_log(&wal.join("x")).expect_err("a path through a file is no log");
        assert_eq!(err.kind(), std::io::ErrorKind::NotADirectory);
    }
}
