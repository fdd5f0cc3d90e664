//! The group commit: how submissions, device acks, device messages and devices' replies to
//! gateway IDs (the callback outbox) reach the disk.
//!
//! Read top to bottom, a job's way through:
//!
//! ```text
//!  Store::submit / ack_message / enqueue_direct / enqueue_callback
//!      │                                            (this file: a job with its reply)
//!      │  bounded channel
//!      ▼
//!  writer    takes every job waiting (a group), then in one transaction:
//!      │       read    what the rules need: keys taken, balances, queue rows, acks,
//!      │               outbox rows and what waits per gateway ID
//!      │       plan    decides every job (pure: money, idempotency, acks)
//!      │       apply   writes the plan, each write checked against it
//!      │     a write that diverged: roll back, replay the group one job at a time,
//!      │     each in a savepoint, through the same read, plan and apply
//!      ▼
//!  durable   (SQLite) syncs the write-ahead log beside the writer; PostgreSQL's commit
//!      │     is durable by itself
//!      ▼
//!  group     announces the queued messages to the listener (the hub), then answers
//!            every job; answers for request threads go through their inbox (replies)
//! ```
//!
//! Nothing is answered before it is durable. A failed sync, or a commit whose outcome is
//! unknown, fails the store for good (see `store::health`).

mod announce;
mod apply;
mod durable;
mod group;
mod job;
mod plan;
mod read;
mod replies;
mod transact;
mod writer;

#[cfg(test)]
mod tests;

use std::cell::RefCell;

use crate::domain::UnixMs;
use crate::store::engine::{Backend, Durability};
use crate::store::idempotency::Keys;

pub(super) use announce::ListenerSlot;
pub use announce::QueueListener;
pub(super) use apply::{deleted_rows, finish_retiring, insert_events, retire_delivered};
pub(super) use job::WriteJob;
pub(super) use plan::Event;
pub(super) use read::LIST_CHUNK;
pub use replies::LocalSpawner;
pub use writer::WriterCounts;
pub(super) use writer::{run, Stats};

use job::{Ack, AckJob, CallbackJob, DirectJob, SubmitAnswer, SubmitJob};
use replies::ThreadInbox;
use tocsin_sdk::protocol::{IdentityId, MessageId};

use super::devices::{AckOutcome, Device};
use super::outbox::{CallbackEntry, Enqueued, PendingCaps};
use super::queue::{NewMessage, Submission, SubmitOutcome};
use super::{Store, StoreError};

/// Everything the writer works with.
pub(in crate::store) struct Writer {
    pub(in crate::store) pool: sqlx::AnyPool,
    pub(in crate::store) backend: Backend,
    pub(in crate::store) durability: Durability,
    pub(in crate::store) keys: Keys,
    pub(in crate::store) listener: ListenerSlot,
    pub(in crate::store) stats: std::sync::Arc<Stats>,
    pub(in crate::store) health: std::sync::Arc<crate::store::health::HealthCell>,
}

thread_local! {
    /// This thread's inbox for the answers to its submissions.
    static INBOX: RefCell<Option<ThreadInbox<SubmitAnswer>>> = const { RefCell::new(None) };
}

impl Store {
    /// Charges, records and enqueues one message atomically: the guarded debit and its
    /// ledger row, the queued message and the idempotency keys commit together or not at
    /// all. The caller is answered only after the commit that holds it is durable.
    pub async fn submit(&self, s: &Submission, now: UnixMs) -> Result<SubmitOutcome, StoreError> {
        self.submit_owned(s.clone(), now).await
    }

    /// [`Store::submit`] for a submission the caller no longer needs: no copy of it.
    pub async fn submit_owned(
        &self,
        submission: Submission,
        now: UnixMs,
    ) -> Result<SubmitOutcome, StoreError> {
        self.submit_job(submission, now, None).await
    }

    /// [`Store::submit_owned`] from a request thread: the answer comes back with the others
    /// of its group for this thread, in one wake-up. Call it only on a thread whose
    /// runtime runs local tasks (an HTTP worker), with a spawner set
    /// ([`Store::answer_on_threads`]); without one it answers directly.
    pub async fn submit_from_worker(
        &self,
        submission: Submission,
        now: UnixMs,
    ) -> Result<SubmitOutcome, StoreError> {
        let inbox = self
            .spawner
            .get()
            .map(|spawn| ThreadInbox::of_thread(&INBOX, spawn));
        self.submit_job(submission, now, inbox).await
    }

    async fn submit_job(
        &self,
        submission: Submission,
        now: UnixMs,
        inbox: Option<ThreadInbox<SubmitAnswer>>,
    ) -> Result<SubmitOutcome, StoreError> {
        // The keys' digests are taken here, on the caller's thread, not on the writer's.
        let digests = self.keys.digests(&submission);
        self.through_writer(|reply| {
            WriteJob::Submit(SubmitJob {
                submission,
                digests,
                now,
                reply,
                inbox,
            })
        })
        .await
    }

    /// How request threads start the task that hands out their answers (see
    /// [`Store::submit_from_worker`]). Only the first spawner set counts.
    pub fn answer_on_threads(&self, spawner: LocalSpawner) {
        let _ = self.spawner.set(spawner);
    }

    /// Records that `device` has the message (sender, message ID); deletes the message
    /// once every responsible device has it. Acks are committed in groups, like
    /// submissions, so a busy device does not cost one fsync per message.
    pub async fn ack_message(
        &self,
        device: &Device,
        sender: &IdentityId,
        message_id: &MessageId,
        now: UnixMs,
    ) -> Result<AckOutcome, StoreError> {
        let ack = Ack {
            device: *device,
            sender: *sender,
            message_id: *message_id,
            now,
        };
        self.through_writer(|reply| WriteJob::Ack(AckJob { ack, reply }))
            .await
    }

    /// Queues a message a device sent to another identity: no charge, and a resend of
    /// the same (recipient, sender, message ID) is recognised. Returns whether it is new.
    /// Committed by the writer like submissions, so every queued message is announced to
    /// the [`QueueListener`] in queue order.
    pub async fn enqueue_direct(&self, msg: &NewMessage, now: UnixMs) -> Result<bool, StoreError> {
        let message = msg.clone();
        self.through_writer(|reply| {
            WriteJob::Direct(DirectJob {
                message,
                now,
                reply,
            })
        })
        .await
    }

    /// Stores a device's reply or receipt in its gateway ID's callback outbox, due now,
    /// unless the same (gateway ID, sender, message ID) is there already or what waits
    /// for the gateway ID is at a cap of `caps`. Committed by the writer in groups.
    pub async fn enqueue_callback(
        &self,
        entry: &CallbackEntry,
        caps: PendingCaps,
        now: UnixMs,
    ) -> Result<Enqueued, StoreError> {
        let entry = entry.clone();
        self.through_writer(|reply| {
            WriteJob::Callback(CallbackJob {
                entry,
                caps,
                now,
                reply,
            })
        })
        .await
    }

    /// Hands a job to the writer and waits for the commit that holds it; `job` builds the
    /// job around the channel its answer comes back on. A failed store refuses at once.
    async fn through_writer<T>(
        &self,
        job: impl FnOnce(job::Reply<T>) -> WriteJob,
    ) -> Result<T, StoreError> {
        if let Some(reason) = self.health.failure() {
            return Err(StoreError::Failed(reason));
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.writer
            .send(job(reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}
