//! The jobs the writer takes, and how each is answered.

use tocsin_sdk::protocol::{GatewayId, IdentityId, MessageId};
use tokio::sync::oneshot;

use super::replies::{Deliver, ThreadInbox};
use crate::domain::UnixMs;
use crate::store::devices::Device;
use crate::store::idempotency::{Claim, Digest};
use crate::store::outbox::{CallbackEntry, Enqueued, PendingCaps};
use crate::store::queue::{NewMessage, QueueKey, Submission, SubmitOutcome};
use crate::store::StoreError;

/// One write waiting for the writer.
pub(in crate::store) enum WriteJob {
    Submit(SubmitJob),
    Ack(AckJob),
    Direct(DirectJob),
    Callback(CallbackJob),
}

/// Where a job's outcome goes.
pub(in crate::store) type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// A paid submission.
#[derive(Debug)]
pub(in crate::store) struct SubmitJob {
    pub(super) submission: Submission,
    /// The digests of its idempotency keys, in order, when the keys are held in memory
    /// (taken on the caller's thread, off the writer's path).
    pub(in crate::store) digests: Vec<Digest>,
    pub(super) now: UnixMs,
    pub(in crate::store) reply: Reply<SubmitOutcome>,
    /// The calling thread's inbox, when its answer goes there rather than straight back.
    pub(in crate::store) inbox: Option<ThreadInbox<SubmitAnswer>>,
}

impl SubmitJob {
    /// The idempotency keys this submission claims if it is accepted.
    pub(super) fn claims(&self) -> impl Iterator<Item = Claim<'_>> {
        let s = &self.submission;
        s.idempotency_keys
            .iter()
            .enumerate()
            .map(move |(i, key)| Claim {
                gateway: s.gateway.as_str(),
                key,
                digest: self.digests.get(i).copied(),
                message_id: s.message.message_id,
                now: self.now,
            })
    }

    pub(super) fn answer(self, outcome: Result<SubmitOutcome, StoreError>) {
        // The caller may have gone (a dropped request); the commit stands either way.
        let _ = self.reply.send(outcome);
    }
}

/// A submission with its outcome, handed out on the caller's thread.
#[derive(Debug)]
pub(in crate::store) struct SubmitAnswer(SubmitJob, Result<SubmitOutcome, StoreError>);

impl Deliver for SubmitAnswer {
    fn deliver(self) {
        self.0.answer(self.1);
    }
}

/// A device's acknowledgement of one message.
#[derive(Debug, Clone, Copy)]
pub(in crate::store) struct Ack {
    pub(super) device: Device,
    pub(super) sender: IdentityId,
    pub(super) message_id: MessageId,
    pub(super) now: UnixMs,
}

impl Ack {
    /// The queue row it names. Acks are applied in this order: queue rows are locked in
    /// the same order on every node, so two nodes never deadlock.
    pub(super) fn key(&self) -> QueueKey {
        (self.device.identity, self.sender, self.message_id)
    }
}

pub(in crate::store) struct AckJob {
    pub(super) ack: Ack,
    pub(super) reply: Reply<crate::store::devices::AckOutcome>,
}

/// A device's message to another identity: queued without charge, and a resend of the
/// same (recipient, sender, message ID) is recognised.
pub(in crate::store) struct DirectJob {
    pub(super) message: NewMessage,
    pub(super) now: UnixMs,
    pub(super) reply: Reply<bool>,
}

/// A reply or receipt a device sent to a gateway ID, for its callback outbox: stored
/// unless it is a resend or what waits for the gateway ID is at a cap.
#[derive(Debug)]
pub(in crate::store) struct CallbackJob {
    pub(super) entry: CallbackEntry,
    pub(super) caps: PendingCaps,
    pub(super) now: UnixMs,
    pub(super) reply: Reply<Enqueued>,
}

/// An outbox row's identity: (gateway ID, sender, message ID). The outbox holds each once.
pub(super) type CallbackKey = (GatewayId, IdentityId, MessageId);

impl CallbackJob {
    pub(super) fn key(&self) -> CallbackKey {
        (self.entry.gateway, self.entry.sender, self.entry.message_id)
    }

    pub(super) fn answer(self, outcome: Result<Enqueued, StoreError>) {
        let _ = self.reply.send(outcome);
    }
}

impl AckJob {
    pub(super) fn answer(self, outcome: Result<crate::store::devices::AckOutcome, StoreError>) {
        // A device that went away meanwhile only misses the answer; the ack is committed.
        let _ = self.reply.send(outcome);
    }
}

impl DirectJob {
    pub(super) fn answer(self, outcome: Result<bool, StoreError>) {
        let _ = self.reply.send(outcome);
    }
}

/// Hands a submission's outcome back: through its thread's inbox, batched, or at once.
pub(super) fn answer_submission(
    mut job: SubmitJob,
    outcome: Result<SubmitOutcome, StoreError>,
    batches: &mut super::replies::Batches<SubmitAnswer>,
) {
    match job.inbox.take() {
        Some(inbox) => batches.add(inbox, SubmitAnswer(job, outcome)),
        None => job.answer(outcome),
    }
}
