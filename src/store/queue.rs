//! The paid submission and the message queue.
//!
//! [`Store::submit`] is the one place where money and messages meet. In one transaction it
//! checks the idempotency keys, debits the account, writes the ledger row, enqueues the
//! message and claims the keys. The order matters:
//! 1. the keys are looked up ([`super::idempotency`]): a retry finds one taken and gets the
//!    original message ID without paying again.
//! 2. the guarded debit (`UPDATE … WHERE balance >= $1`): no row means 402, and nothing
//!    of this submission is kept.
//! 3. ledger row and queued message.
//! 4. the keys are claimed. On PostgreSQL this is `INSERT … ON CONFLICT DO NOTHING` on the
//!    unique key index: a retry that ran concurrently on another node waits for the first
//!    transaction there (and already on the account row), finds the key taken, undoes its
//!    own writes and answers the first message ID, so both answer alike.
//!
//! On SQLite the writer's transaction begins `IMMEDIATE`, taking the write lock before its
//! first read, so a commit by another process can never leave it with a stale snapshot.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use tocsin_sdk::protocol::{GatewayId, IdentityId, MessageId, Nonce};

use super::accounts::debit;
use super::group::Params;
use super::idempotency::{digest, Claim, Digest, Forgotten, Keys, Taken};
use super::rows::{identity_id, message_id, nonce};
use super::writer::{in_savepoint, WriteJob};
use super::{AccountId, Inbox, Store, StoreError};

/// Credits to take for a submission, and the ledger reason to record.
#[derive(Debug, Clone)]
pub struct Charge {
    pub account: AccountId,
    pub amount: i64,
    pub reason: String,
}

/// A message to put on a recipient's queue.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub message_id: MessageId,
    pub sender: IdentityId,
    pub recipient: IdentityId,
    /// Header flags of the chat protocol (push, no-queue, no-ack, …).
    pub flags: u8,
    pub nonce: Nonce,
    /// The NaCl box, as it will be delivered.
    pub body: Vec<u8>,
    pub expires_at: i64,
}

/// Everything one paid send commits at once.
#[derive(Debug, Clone)]
pub struct Submission {
    pub gateway: GatewayId,
    pub charge: Charge,
    /// Keys under which a retry of this request is recognised (e.g. the `Idempotency-Key`
    /// header, and the recipient + nonce pair).
    pub idempotency_keys: Vec<String>,
    pub message: NewMessage,
}

/// What became of a submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// Committed: charged, recorded and queued.
    Accepted(MessageId),
    /// A retry of an earlier request: nothing charged or queued, this is the first answer.
    Duplicate(MessageId),
    /// The balance cannot cover the charge: nothing charged or queued.
    InsufficientCredits,
}

/// A message waiting on a recipient's queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    pub seq: i64,
    pub message_id: MessageId,
    pub sender: IdentityId,
    pub recipient: IdentityId,
    pub flags: u8,
    pub nonce: Nonce,
    pub body: Vec<u8>,
    pub created_at: i64,
    pub expires_at: i64,
}

pub(super) fn queued_from_row(row: &AnyRow) -> Result<QueuedMessage, StoreError> {
    let flags: i64 = row.try_get("flags")?;
    Ok(QueuedMessage {
        seq: row.try_get("seq")?,
        message_id: message_id(row, "message_id")?,
        sender: identity_id(row, "sender")?,
        recipient: identity_id(row, "recipient")?,
        flags: u8::try_from(flags).map_err(|_| StoreError::Corrupt(format!("flags {flags}")))?,
        nonce: nonce(row, "nonce")?,
        body: row.try_get("body")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

impl Store {
    /// Charges, records and enqueues one message atomically (see the module docs).
    ///
    /// Submissions are committed in groups ([`super::writer`]): one writer task takes every
    /// submission and ack that is waiting and commits them together, so one durable commit
    /// (one fsync) serves many requests. The caller is answered only after the commit that
    /// holds its submission.
    pub async fn submit(&self, s: &Submission, now: i64) -> Result<SubmitOutcome, StoreError> {
        self.submit_owned(s.clone(), now, None).await
    }

    /// [`Store::submit`] for a submission the caller no longer needs: no copy of it. With
    /// an `inbox` of the calling thread, the answer comes through it ([`Inbox`]).
    pub async fn submit_owned(
        &self,
        submission: Submission,
        now: i64,
        inbox: Option<Inbox>,
    ) -> Result<SubmitOutcome, StoreError> {
        // The keys' digests are taken here, on the caller's thread, not on the writer's.
        let digests = match &self.keys {
            Keys::InMemory(_) => submission
                .idempotency_keys
                .iter()
                .map(|key| digest(submission.gateway.as_str(), key))
                .collect(),
            Keys::Indexed => Vec::new(),
        };
        self.through_writer(|reply| {
            WriteJob::Submit(Job {
                submission,
                digests,
                now,
                reply,
                inbox,
            })
        })
        .await
    }

    /// Queues a message a device sent to another identity: no charge, and a resend of
    /// the same (recipient, sender, message ID) is recognised. Returns whether it is new.
    /// Committed by the writer like submissions, so every queued message is announced to
    /// the [`super::QueueListener`] in queue order.
    pub async fn enqueue_direct(&self, msg: &NewMessage, now: i64) -> Result<bool, StoreError> {
        self.through_writer(|reply| {
            WriteJob::Direct(DirectJob {
                message: msg.clone(),
                now,
                reply,
            })
        })
        .await
    }

    /// The oldest `limit` messages queued for `recipient`, in arrival order.
    pub async fn queued_for(
        &self,
        recipient: &IdentityId,
        limit: i64,
    ) -> Result<Vec<QueuedMessage>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, message_id, sender, recipient, flags, nonce, body, created_at, expires_at \
             FROM queued_messages WHERE recipient = $1 ORDER BY seq LIMIT $2",
        )
        .bind(recipient.as_str())
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(queued_from_row).collect()
    }

    /// Forgets the idempotency keys claimed before `before` (unix ms), in batches, each its
    /// own short transaction so the writer is never held up for long. On SQLite, where the
    /// keys are held in memory, the oldest keys beyond `max_keys` go too, even inside their
    /// window. A retry after that is a new request.
    pub async fn forget_idempotency_keys(
        &self,
        before: i64,
        max_keys: u64,
    ) -> Result<Forgotten, StoreError> {
        self.keys.forget(&self.write, before, max_keys).await
    }

    /// Number of messages waiting in every queue.
    pub async fn queue_depth(&self) -> Result<i64, StoreError> {
        let depth: i64 = sqlx::query("SELECT COUNT(*) AS depth FROM queued_messages")
            .fetch_one(&self.read)
            .await?
            .try_get("depth")?;
        Ok(depth)
    }
}

/// Inserts a queued message; `false` when (sender, message ID, recipient) is already
/// queued. The row itself is the message's `queued` status until it is deleted (see
/// [`super::delivery`]), so no status event is written here.
async fn insert_message(
    conn: &mut AnyConnection,
    msg: &NewMessage,
    now: i64,
) -> Result<bool, StoreError> {
    let query = sqlx::query(
        "INSERT INTO queued_messages (message_id, sender, recipient, flags, nonce, body, \
         created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (sender, message_id, recipient) DO NOTHING",
    );
    let inserted = bind_message(query, msg, now)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(inserted == 1)
}

/// Binds the values of one `queued_messages` row, in the column order `message_id, sender,
/// recipient, flags, nonce, body, created_at, expires_at`.
pub(super) fn bind_message<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    msg: &NewMessage,
    now: i64,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    query
        .bind(msg.message_id.as_bytes().to_vec())
        .bind(msg.sender.as_str())
        .bind(msg.recipient.as_str())
        .bind(i64::from(msg.flags))
        .bind(msg.nonce.as_bytes().to_vec())
        .bind(msg.body.clone())
        .bind(now)
        .bind(msg.expires_at)
}

/// Appends a status event (metadata only: who, which message, what, when).
pub(super) async fn record_event(
    conn: &mut AnyConnection,
    sender: &IdentityId,
    message_id: &MessageId,
    recipient: &IdentityId,
    event: &str,
    at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO message_events (sender, message_id, recipient, event, at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(sender.as_str())
    .bind(message_id.as_bytes().to_vec())
    .bind(recipient.as_str())
    .bind(event)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// One submission waiting for the writer ([`super::writer`]).
#[derive(Debug)]
pub(super) struct Job {
    pub(super) submission: Submission,
    /// The digests of its idempotency keys, in order, when the keys are held in memory.
    digests: Vec<Digest>,
    pub(super) now: i64,
    reply: tokio::sync::oneshot::Sender<Result<SubmitOutcome, StoreError>>,
    /// Where the answer goes when not straight to `reply`'s thread.
    pub(super) inbox: Option<Inbox>,
}

impl Job {
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

/// How [`apply_submissions`] goes about a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Attempt {
    /// With multi-row statements ([`super::group`]), straight in the transaction: no
    /// savepoint, whose statement journal would copy every page the group touches. When
    /// the fast path diverges or fails, the caller rolls the whole transaction back and
    /// starts again with [`Attempt::OneByOne`].
    Fast,
    /// Each submission in a savepoint of its own, so a refused or failed one leaves no
    /// trace.
    OneByOne,
}

/// Applies a group of submissions inside the caller's transaction. `None` when the fast
/// attempt diverged or failed: the transaction then holds partial writes and must be
/// rolled back.
pub(super) async fn apply_submissions(
    tx: &mut AnyConnection,
    params: Params,
    keys: &Keys,
    group: &[Job],
    attempt: Attempt,
) -> Result<Option<Vec<Result<SubmitOutcome, StoreError>>>, StoreError> {
    if attempt == Attempt::Fast {
        return Ok(
            match super::group::apply_group(&mut *tx, params, keys, group).await {
                Ok(Ok(outcomes)) => Some(outcomes.into_iter().map(Ok).collect()),
                Ok(Err(super::group::Diverged)) => None,
                Err(e) => {
                    tracing::warn!("group commit fast path failed, replaying one by one: {e}");
                    None
                }
            },
        );
    }
    let mut outcomes = Vec::with_capacity(group.len());
    // Keys claimed by the submissions kept so far in this group (not yet committed).
    let mut pending = Taken::new();
    for job in group {
        let mut savepoint = sqlx::Connection::begin(&mut *tx).await?;
        match apply(&mut savepoint, params, keys, &pending, job).await {
            Ok(Applied::Keep(outcome)) => {
                savepoint.commit().await?;
                for c in job.claims() {
                    pending.insert((c.gateway.to_owned(), c.key.to_owned()), c.message_id);
                }
                outcomes.push(Ok(outcome));
            }
            Ok(Applied::Undo(outcome)) => {
                savepoint.rollback().await?;
                outcomes.push(Ok(outcome));
            }
            Err(e) => {
                savepoint.rollback().await?;
                outcomes.push(Err(e));
            }
        }
    }
    Ok(Some(outcomes))
}

/// A device's message to another identity, waiting for the writer.
pub(super) struct DirectJob {
    pub(super) message: NewMessage,
    now: i64,
    reply: tokio::sync::oneshot::Sender<Result<bool, StoreError>>,
}

impl DirectJob {
    pub(super) fn answer(self, outcome: Result<bool, StoreError>) {
        let _ = self.reply.send(outcome);
    }
}

/// Applies direct messages inside the caller's transaction, each in its own savepoint.
pub(super) async fn apply_directs(
    tx: &mut AnyConnection,
    jobs: &[DirectJob],
) -> Result<Vec<Result<bool, StoreError>>, StoreError> {
    let mut outcomes = Vec::with_capacity(jobs.len());
    for job in jobs {
        let apply =
            async |conn: &mut AnyConnection| insert_message(conn, &job.message, job.now).await;
        outcomes.push(in_savepoint(tx, apply).await?);
    }
    Ok(outcomes)
}

/// The highest queue sequence number so far (0 for an empty queue).
pub(super) async fn last_seq(conn: &mut AnyConnection) -> Result<i64, StoreError> {
    let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS last FROM queued_messages")
        .fetch_one(&mut *conn)
        .await?;
    Ok(row.try_get("last")?)
}

/// The messages queued after `after` up to `last`, in queue order.
pub(super) async fn queued_between(
    conn: &mut AnyConnection,
    after: i64,
    last: i64,
) -> Result<Vec<QueuedMessage>, StoreError> {
    let rows = sqlx::query(
        "SELECT seq, message_id, sender, recipient, flags, nonce, body, created_at, expires_at \
         FROM queued_messages WHERE seq > $1 AND seq <= $2 ORDER BY seq",
    )
    .bind(after)
    .bind(last)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(queued_from_row).collect()
}

/// What one submission did inside its savepoint.
enum Applied {
    /// Keep the writes: the submission was accepted.
    Keep(SubmitOutcome),
    /// Undo the writes: a retry, or no credits.
    Undo(SubmitOutcome),
}

/// One submission on its own: the idempotency check, the debit, the queue row, then the
/// key claims (which, on PostgreSQL, also catch a key another node took meanwhile).
async fn apply(
    conn: &mut AnyConnection,
    params: Params,
    keys: &Keys,
    pending: &Taken,
    job: &Job,
) -> Result<Applied, StoreError> {
    let (s, now) = (&job.submission, job.now);
    let msg = &s.message;
    let wanted: Vec<Claim<'_>> = job.claims().collect();
    let earlier = |taken: &Taken| {
        wanted.iter().find_map(|c| {
            taken
                .get(&(c.gateway.to_owned(), c.key.to_owned()))
                .copied()
        })
    };
    if let Some(id) = earlier(pending) {
        return Ok(Applied::Undo(SubmitOutcome::Duplicate(id)));
    }
    if let Some(id) = earlier(&keys.taken(conn, params, &wanted).await?) {
        return Ok(Applied::Undo(SubmitOutcome::Duplicate(id)));
    }
    if s.charge.amount > 0 {
        let charge = &s.charge;
        let id = msg.message_id.as_bytes();
        let paid = debit(
            conn,
            charge.account,
            charge.amount,
            &charge.reason,
            Some(id),
            now,
        )
        .await?;
        if paid.is_none() {
            return Ok(Applied::Undo(SubmitOutcome::InsufficientCredits));
        }
    }
    if !insert_message(conn, msg, now).await? {
        // The same message ID is already queued for this recipient (a bulk request with
        // a shared ID naming one recipient twice): the first one stands.
        return Ok(Applied::Undo(SubmitOutcome::Duplicate(msg.message_id)));
    }
    if !keys.record(conn, params, &wanted).await? {
        // Another node claimed a key since we looked: its transaction has ended (the
        // insert waited for it), so the key now answers.
        let id = earlier(&keys.taken(conn, params, &wanted).await?).ok_or_else(|| {
            StoreError::Group("an idempotency key was taken but cannot be read".into())
        })?;
        return Ok(Applied::Undo(SubmitOutcome::Duplicate(id)));
    }
    Ok(Applied::Keep(SubmitOutcome::Accepted(msg.message_id)))
}
