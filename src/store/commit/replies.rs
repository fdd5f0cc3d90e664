//! Answers delivered to the thread that waits for them, a group at a time.
//!
//! A caller waits for its job's answer on a oneshot channel. Sent from the writer's
//! thread, every such answer wakes the caller's thread on its own: on an actix worker,
//! whose runtime is woken through an eventfd, that is one `write` system call per answer,
//! hundreds per group commit at full load. A thread that opens a [`ThreadInbox`] instead gets
//! all the answers a group has for it as one batch, one wake-up, and hands them out
//! itself. The job travels back with its answer, so its memory is also freed on the
//! thread that allocated it.
//!
//! The inbox of a thread is opened on its first use and kept in a thread-local, and opened
//! again when the runtime that ran its task has ended (a test starts one per test, say).

use std::cell::RefCell;
use std::sync::Arc;

use futures_util::future::BoxFuture;

/// Something answered on the caller's thread.
pub(in crate::store) trait Deliver: Send + 'static {
    fn deliver(self);
}

/// Starts a task on the calling thread (a local task of that thread's runtime).
pub type LocalSpawner = Arc<dyn Fn(BoxFuture<'static, ()>) + Send + Sync>;

/// Where the answers of one thread's jobs go; see the module docs.
#[derive(Debug)]
pub(in crate::store) struct ThreadInbox<A>(tokio::sync::mpsc::UnboundedSender<Vec<A>>);

impl<A> Clone for ThreadInbox<A> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<A: Deliver> ThreadInbox<A> {
    /// Opens an inbox whose answers are handed out by the task `spawn` starts, which must
    /// run on the thread whose jobs use the inbox.
    pub(in crate::store) fn open(spawn: &LocalSpawner) -> Self {
        let (inbox, mut answers) = tokio::sync::mpsc::unbounded_channel::<Vec<A>>();
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
    pub(in crate::store) fn is_open(&self) -> bool {
        !self.0.is_closed()
    }

    /// The inbox of the calling thread kept in `slot`, opened if it has none that runs.
    pub(in crate::store) fn of_thread(
        slot: &'static std::thread::LocalKey<RefCell<Option<Self>>>,
        spawn: &LocalSpawner,
    ) -> Self {
        slot.with(|slot| {
            let mut slot = slot.borrow_mut();
            match &*slot {
                Some(inbox) if inbox.is_open() => inbox.clone(),
                _ => {
                    let inbox = Self::open(spawn);
                    *slot = Some(inbox.clone());
                    inbox
                }
            }
        })
    }
}

/// Answers collected for their inboxes while a group is answered.
pub(in crate::store) struct Batches<A>(Vec<(ThreadInbox<A>, Vec<A>)>);

impl<A> Default for Batches<A> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<A: Deliver> Batches<A> {
    pub(in crate::store) fn add(&mut self, inbox: ThreadInbox<A>, answer: A) {
        // A handful of inboxes (one per worker thread): a list is enough.
        match self.0.iter_mut().find(|(i, _)| i.0.same_channel(&inbox.0)) {
            Some((_, batch)) => batch.push(answer),
            None => self.0.push((inbox, vec![answer])),
        }
    }

    /// Sends every batch; an inbox whose task has ended gets its answers here instead.
    pub(in crate::store) fn send(self) {
        for (inbox, batch) in self.0 {
            if let Err(unsent) = inbox.0.send(batch) {
                for answer in unsent.0 {
                    answer.deliver();
                }
            }
        }
    }
}
