//! A committed group of jobs, waiting to be answered once it is durable.

use std::sync::Arc;

use tocsin_sdk::protocol::IdentityId;

use super::announce::{announce, QueueListener};
use super::job::{answer_submission, AckJob, CallbackJob, DirectJob, SubmitJob};
use super::replies::Batches;
use crate::store::devices::AckOutcome;
use crate::store::outbox::{Enqueued, Outbox};
use crate::store::queue::SubmitOutcome;
use crate::store::StoreError;

pub(super) type Outcomes<T> = Vec<Result<T, StoreError>>;

/// What one commit did, job by job.
#[derive(Debug, Default)]
pub(super) struct Committed {
    pub(super) submitted: Outcomes<SubmitOutcome>,
    pub(super) acked: Outcomes<AckOutcome>,
    pub(super) direct: Outcomes<bool>,
    pub(super) enqueued: Outcomes<Enqueued>,
    /// Rows the group put into the status outbox.
    pub(super) statuses: u64,
    /// When someone listens: the queue sequence numbers this commit used, as the last one
    /// before it and its own last one.
    pub(super) queued: Option<(i64, i64)>,
}

/// The jobs of one commit, with what the commit did.
pub(super) struct Group {
    pub(super) submissions: Vec<SubmitJob>,
    pub(super) acks: Vec<AckJob>,
    pub(super) directs: Vec<DirectJob>,
    pub(super) callbacks: Vec<CallbackJob>,
    pub(super) committed: Committed,
    /// Held until the group is synced (see `writer::MAX_UNSYNCED`).
    pub(super) _unsynced: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Group {
    /// Announces what the group queued, then answers every job with its outcome.
    pub(super) async fn finish(
        self,
        pool: &sqlx::AnyPool,
        listener: Option<&Arc<dyn QueueListener>>,
    ) {
        let Committed {
            submitted,
            acked,
            direct,
            enqueued,
            statuses,
            queued,
        } = self.committed;
        if let Some(listener) = listener {
            let recipients: Vec<IdentityId> = self
                .submissions
                .iter()
                .zip(&submitted)
                .filter(|(_, o)| {
                    matches!(
                        o,
                        Ok(SubmitOutcome::Accepted(_) | SubmitOutcome::Duplicate(_))
                    )
                })
                .map(|(job, _)| job.submission.message.recipient)
                .chain(
                    self.directs
                        .iter()
                        .zip(&direct)
                        .filter(|(_, o)| o.is_ok())
                        .map(|(job, _)| job.message.recipient),
                )
                .collect();
            if let Some(seqs) = queued {
                announce(pool, listener.as_ref(), seqs, &recipients).await;
            }
            let callbacks = enqueued
                .iter()
                .any(|o| matches!(o, Ok(Enqueued::Stored | Enqueued::Resent)));
            let outboxes: &[Outbox] = match (callbacks, statuses > 0) {
                (true, true) => &[Outbox::Callbacks, Outbox::Statuses],
                (true, false) => &[Outbox::Callbacks],
                (false, true) => &[Outbox::Statuses],
                (false, false) => &[],
            };
            if !recipients.is_empty() || !outboxes.is_empty() {
                listener.committed(&recipients, outboxes);
            }
        }
        let mut batches = Batches::default();
        for (job, outcome) in self.submissions.into_iter().zip(submitted) {
            answer_submission(job, outcome, &mut batches);
        }
        batches.send();
        for (job, outcome) in self.acks.into_iter().zip(acked) {
            job.answer(outcome);
        }
        for (job, outcome) in self.directs.into_iter().zip(direct) {
            job.answer(outcome);
        }
        for (job, outcome) in self.callbacks.into_iter().zip(enqueued) {
            job.answer(outcome);
        }
    }

    /// Answers every job with the error `error` makes: the group was not committed, or
    /// not synced.
    pub(super) fn fail(self, error: impl Fn() -> StoreError) {
        let mut batches = Batches::default();
        for job in self.submissions {
            answer_submission(job, Err(error()), &mut batches);
        }
        batches.send();
        for job in self.acks {
            job.answer(Err(error()));
        }
        for job in self.directs {
            job.answer(Err(error()));
        }
        for job in self.callbacks {
            job.answer(Err(error()));
        }
    }
}
