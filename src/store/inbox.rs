//! Answers delivered to the thread that waits for them, a group at a time.
//!
//! A caller waits for its job's answer on a oneshot channel. Sent from the writer's
//! thread, every such answer wakes the caller's thread on its own: on an actix worker,
//! whose runtime is woken through an eventfd, that is one `write` system call per answer,
//! about 250 per group commit at full load, and 13 % of the writer threads' time in the
//! send benchmark. A thread that opens an [`Inbox`] instead gets all the answers a group
//! has for it as one batch, one wake-up, and hands them out itself. The job travels back
//! with its answer, so its memory is also freed on the thread that allocated it.

use futures_util::future::BoxFuture;

use super::queue::Job;
use super::{StoreError, SubmitOutcome};

/// Where the answers of one thread's jobs go; see the module docs.
#[derive(Debug, Clone)]
pub struct Inbox(tokio::sync::mpsc::UnboundedSender<Vec<Answer>>);

/// A job with its outcome, to be answered on the caller's thread.
#[derive(Debug)]
pub(super) enum Answer {
    Submit(Job, Result<SubmitOutcome, StoreError>),
}

impl Answer {
    fn deliver(self) {
        match self {
            Self::Submit(job, outcome) => job.answer(outcome),
        }
    }
}

impl Inbox {
    /// Opens an inbox whose answers are handed out by the task `spawn` starts, which must
    /// run on the thread whose jobs use the inbox (a local task of that thread).
    pub fn open(spawn: impl FnOnce(BoxFuture<'static, ()>)) -> Self {
        let (inbox, mut answers) = tokio::sync::mpsc::unbounded_channel::<Vec<Answer>>();
        spawn(Box::pin(async move {
            while let Some(batch) = answers.recv().await {
                for answer in batch {
                    answer.deliver();
                }
            }
        }));
        Self(inbox)
    }

    /// Whether the task handing out the answers still runs (it ends with its runtime).
    pub fn is_open(&self) -> bool {
        !self.0.is_closed()
    }
}

/// Answers collected for their inboxes while a group is answered.
#[derive(Default)]
pub(super) struct Batches(Vec<(Inbox, Vec<Answer>)>);

impl Batches {
    pub(super) fn add(&mut self, inbox: Inbox, answer: Answer) {
        // A handful of inboxes (one per worker thread): a list is enough.
        match self.0.iter_mut().find(|(i, _)| i.0.same_channel(&inbox.0)) {
            Some((_, batch)) => batch.push(answer),
            None => self.0.push((inbox, vec![answer])),
        }
    }

    /// Sends every batch; an inbox whose task has ended gets its answers here instead.
    pub(super) fn send(self) {
        for (inbox, batch) in self.0 {
            if let Err(unsent) = inbox.0.send(batch) {
                for answer in unsent.0 {
                    answer.deliver();
                }
            }
        }
    }
}
