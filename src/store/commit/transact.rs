//! One group in one transaction: read, decide, write; and the replay one job at a time
//! when the group's writes diverged from its plan or failed.

use sqlx::AnyConnection;

use super::apply::{apply, apply_acks, apply_callbacks, Diverged};
use super::group::Committed;
use super::job::{Ack, CallbackJob, DirectJob, SubmitJob};
use super::plan::{decide, decide_acks, decide_callbacks};
use super::read::{ack_found, callback_found, found, Lookup};
use super::Writer;
use crate::store::devices::AckOutcome;
use crate::store::idempotency::Taken;
use crate::store::outbox::Enqueued;
use crate::store::queue::{last_seq, SubmitOutcome};
use crate::store::{DeliveryMode, StoreError};

/// Why a group was not committed.
pub(super) enum Trouble {
    /// It may pass: the group was rolled back whole.
    Passing(StoreError),
    /// The commit's outcome is unknown.
    Unknown(StoreError),
}

/// The jobs of one commit.
#[derive(Clone, Copy)]
pub(super) struct Jobs<'a> {
    pub(super) submissions: &'a [SubmitJob],
    pub(super) acks: &'a [Ack],
    pub(super) directs: &'a [DirectJob],
    pub(super) callbacks: &'a [CallbackJob],
}

pub(super) async fn transact(
    w: &Writer,
    conn: &mut AnyConnection,
    jobs: Jobs<'_>,
    deferred: bool,
) -> Result<Committed, Trouble> {
    let passing = |e: StoreError| Trouble::Passing(e);
    let begin = if deferred {
        w.backend.begin_deferred()
    } else {
        w.backend.begin_write()
    };
    let mut tx = begin_with(conn, begin).await.map_err(passing)?;
    let committed = match write_group(w, &mut tx, jobs).await {
        Ok(Ok(committed)) => committed,
        Err(e) if w.backend.is_passing(&e) => return Err(Trouble::Passing(e)),
        other => {
            if let Err(e) = other {
                tracing::warn!("a group failed, replaying it one job at a time: {e}");
            }
            tx.rollback().await.map_err(|e| passing(e.into()))?;
            w.stats.replayed();
            tx = begin_with(conn, begin).await.map_err(passing)?;
            replay(w, &mut tx, jobs).await.map_err(passing)?
        }
    };
    match tx.commit().await {
        Ok(()) => Ok(committed),
        Err(e) => {
            let e = StoreError::from(e);
            if w.backend.commit_outcome_unknown(&e) {
                Err(Trouble::Unknown(e))
            } else {
                Err(Trouble::Passing(e))
            }
        }
    }
}

pub(super) async fn begin_with<'c>(
    conn: &'c mut AnyConnection,
    statement: Option<&'static str>,
) -> Result<sqlx::Transaction<'c, sqlx::Any>, StoreError> {
    Ok(match statement {
        Some(statement) => sqlx::Connection::begin_with(conn, statement).await?,
        None => sqlx::Connection::begin(conn).await?,
    })
}

/// The whole group at once: read, decide, write. `Err(Diverged)` when a write did not do
/// what was decided.
async fn write_group(
    w: &Writer,
    tx: &mut AnyConnection,
    jobs: Jobs<'_>,
) -> Result<Result<Committed, Diverged>, StoreError> {
    let before = announced_from(w, tx, jobs).await?;
    let found = found(
        tx,
        w.backend,
        &w.keys,
        jobs.submissions,
        jobs.directs,
        Lookup::Group,
    )
    .await?;
    let plan = decide(jobs.submissions, jobs.directs, &found);
    if let Err(diverged) = apply(tx, w.backend, &w.keys, &plan).await? {
        return Ok(Err(diverged));
    }
    let (acked, statuses) = if jobs.acks.is_empty() {
        (Vec::new(), 0)
    } else {
        let found = ack_found(tx, w.backend, jobs.acks).await?;
        match apply_acks(tx, w.backend, decide_acks(jobs.acks, &found)).await? {
            Ok(outcomes) => outcomes,
            Err(diverged) => return Ok(Err(diverged)),
        }
    };
    let enqueued = if jobs.callbacks.is_empty() {
        Vec::new()
    } else {
        let found = callback_found(tx, w.backend, jobs.callbacks).await?;
        let plan = decide_callbacks(jobs.callbacks, &found);
        if let Err(diverged) = apply_callbacks(tx, w.backend, &plan).await? {
            return Ok(Err(diverged));
        }
        plan.outcomes
    };
    Ok(Ok(Committed {
        submitted: plan.submitted.into_iter().map(Ok).collect(),
        acked: acked.into_iter().map(Ok).collect(),
        direct: plan.direct.into_iter().map(Ok).collect(),
        enqueued: enqueued.into_iter().map(Ok).collect(),
        statuses,
        queued: announced_to(tx, before).await?,
    }))
}

/// The group again, one job at a time, each in a savepoint with the same read, decide and
/// write. A job that diverges is decided once more from fresh reads (another node's
/// transaction it waited for has ended by then); a job that fails for a reason of its own
/// gets that error, and a trouble that may pass fails the whole group.
async fn replay(
    w: &Writer,
    tx: &mut AnyConnection,
    jobs: Jobs<'_>,
) -> Result<Committed, StoreError> {
    let before = announced_from(w, tx, jobs).await?;
    let mut committed = Committed::default();
    // Keys claimed by the jobs kept so far; on SQLite the index in memory learns them only
    // after the commit.
    let mut pending = Taken::new();
    for job in jobs.submissions {
        let done = one_job(w, tx, One::Submit(job), &pending).await?;
        let outcome = done.and_then(|d| match d {
            Done::Submit(outcome) => Ok(outcome),
            _ => Err(mismatched()),
        });
        if let Ok(SubmitOutcome::Accepted(_)) = outcome {
            for c in job.claims() {
                pending.insert((c.gateway.to_owned(), c.key.to_owned()), c.message_id);
            }
        }
        committed.submitted.push(outcome);
    }
    for job in jobs.directs {
        let done = one_job(w, tx, One::Direct(job), &pending).await?;
        committed.direct.push(done.and_then(|d| match d {
            Done::Direct(new) => Ok(new),
            _ => Err(mismatched()),
        }));
    }
    for ack in jobs.acks {
        let done = one_job(w, tx, One::Ack(ack), &pending).await?;
        committed.acked.push(done.and_then(|d| match d {
            Done::Ack(outcome, statuses) => {
                committed.statuses += statuses;
                Ok(outcome)
            }
            _ => Err(mismatched()),
        }));
    }
    for job in jobs.callbacks {
        let done = one_job(w, tx, One::Callback(job), &pending).await?;
        committed.enqueued.push(done.and_then(|d| match d {
            Done::Callback(outcome) => Ok(outcome),
            _ => Err(mismatched()),
        }));
    }
    committed.queued = announced_to(tx, before).await?;
    Ok(committed)
}

/// A replayed job answered as another kind of job (it cannot be: each kind is attempted
/// by its own arm).
fn mismatched() -> StoreError {
    StoreError::Corrupt("a replayed job was answered as another kind of job".into())
}

/// One job of a replayed group.
#[derive(Clone, Copy)]
enum One<'j> {
    Submit(&'j SubmitJob),
    Direct(&'j DirectJob),
    Ack(&'j Ack),
    Callback(&'j CallbackJob),
}

/// What one job of a replayed group did.
enum Done {
    Submit(SubmitOutcome),
    Direct(bool),
    /// With the status outbox rows it made.
    Ack(AckOutcome, u64),
    Callback(Enqueued),
}

/// Runs one job's read, decide and write in a savepoint, twice at most when it diverges.
/// The outer error is a trouble that fails the whole group.
async fn one_job(
    w: &Writer,
    tx: &mut AnyConnection,
    one: One<'_>,
    pending: &Taken,
) -> Result<Result<Done, StoreError>, StoreError> {
    for _ in 0..2 {
        let mut savepoint = sqlx::Connection::begin(&mut *tx).await?;
        match attempt(w, &mut savepoint, one, pending).await {
            Ok(Ok(done)) => {
                savepoint.commit().await?;
                return Ok(Ok(done));
            }
            Ok(Err(Diverged)) => savepoint.rollback().await?,
            Err(e) if w.backend.is_passing(&e) => return Err(e),
            Err(e) => {
                savepoint.rollback().await?;
                return Ok(Err(e));
            }
        }
    }
    Ok(Err(StoreError::Conflict(
        "the job's writes kept conflicting with another writer".into(),
    )))
}

/// Read, decide and write for one job, as for a group of one.
async fn attempt(
    w: &Writer,
    tx: &mut AnyConnection,
    one: One<'_>,
    pending: &Taken,
) -> Result<Result<Done, Diverged>, StoreError> {
    let (b, keys) = (w.backend, &w.keys);
    match one {
        One::Submit(job) => {
            let one = std::slice::from_ref(job);
            let mut found = found(tx, b, keys, one, &[], Lookup::OneJob).await?;
            found
                .taken
                .extend(pending.iter().map(|(k, v)| (k.clone(), *v)));
            let plan = decide(one, &[], &found);
            let applied = apply(tx, b, keys, &plan).await?;
            Ok(applied.map(|()| Done::Submit(plan.submitted[0])))
        }
        One::Direct(job) => {
            let one = std::slice::from_ref(job);
            let found = found(tx, b, keys, &[], one, Lookup::OneJob).await?;
            let plan = decide(&[], one, &found);
            let applied = apply(tx, b, keys, &plan).await?;
            Ok(applied.map(|()| Done::Direct(plan.direct[0])))
        }
        One::Ack(ack) => {
            let one = std::slice::from_ref(ack);
            let found = ack_found(tx, b, one).await?;
            let applied = apply_acks(tx, b, decide_acks(one, &found)).await?;
            Ok(applied.map(|(outcomes, statuses)| Done::Ack(outcomes[0], statuses)))
        }
        One::Callback(job) => {
            let one = std::slice::from_ref(job);
            let found = callback_found(tx, b, one).await?;
            let plan = decide_callbacks(one, &found);
            let applied = apply_callbacks(tx, b, &plan).await?;
            Ok(applied.map(|()| Done::Callback(plan.outcomes[0])))
        }
    }
}

/// Where queued messages are announced, someone listens and the group queues any: the
/// last queue sequence number before the group's writes.
async fn announced_from(
    w: &Writer,
    tx: &mut AnyConnection,
    jobs: Jobs<'_>,
) -> Result<Option<i64>, StoreError> {
    let queues = !(jobs.submissions.is_empty() && jobs.directs.is_empty());
    let announces = matches!(w.backend.delivery_mode(), DeliveryMode::Announced);
    if queues && announces && w.listener.get().is_some() {
        Ok(Some(last_seq(tx).await?))
    } else {
        Ok(None)
    }
}

async fn announced_to(
    tx: &mut AnyConnection,
    before: Option<i64>,
) -> Result<Option<(i64, i64)>, StoreError> {
    match before {
        Some(before) => Ok(Some((before, last_seq(tx).await?))),
        None => Ok(None),
    }
}
