//! What a group of jobs does, decided without touching the database.
//!
//! Every rule of money, idempotency and acks lives here, once. The writer reads what the
//! rules need ([`Found`], [`AckFound`]), these functions decide in job order, and
//! `apply` writes the decision, checking that each write did what was decided. A group
//! of one job is decided by the same functions, so the replay of a group one job at a
//! time follows the same rules as the group.
//!
//! The rules, in the order they are applied to each submission:
//! 1. a key already taken (by an earlier commit or an earlier job of the group) makes it a
//!    retry: the first message ID is the answer, nothing is charged or queued;
//! 2. a charge the account's balance cannot cover refuses it: nothing charged or queued;
//! 3. the same (recipient, sender, message ID) already queued, or queued by an earlier job
//!    of the group, is a duplicate: the first one stands (a bulk request with a shared ID
//!    naming one recipient twice);
//! 4. otherwise it is accepted: its charge is debited with a ledger row whose
//!    `balance_after` counts down from the balance read, its message queued and its keys
//!    claimed.
//!
//! An ack names a queue row; the first ack of a row by a device is recorded, and the first
//! ack of a row by any device makes it `delivered`. Which rows every responsible device
//! now has is for the database to say (it knows the devices); `apply` deletes those.
//!
//! A callback entry (a device's reply or receipt to a gateway ID) already in the outbox,
//! or stored by an earlier job of the group, is a resend: nothing is stored again. Else it
//! is refused when the sender's pending entries for the gateway ID, or all of the gateway
//! ID's, are at their cap (counting those the group stores before it); otherwise stored.

use std::collections::{HashMap, HashSet};

use tocsin_sdk::protocol::{GatewayId, IdentityId, MessageId};

use crate::domain::{LedgerReason, MessageStatus, UnixMs};

use super::job::{Ack, CallbackJob, CallbackKey, DirectJob, SubmitJob};
use crate::store::accounts::AccountId;
use crate::store::devices::AckOutcome;
use crate::store::idempotency::{Claim, Taken};
use crate::store::outbox::Enqueued;
use crate::store::queue::{NewMessage, QueueKey, SubmitOutcome};

/// What the reads before a group's plan found.
#[derive(Debug, Default)]
pub(super) struct Found {
    /// Keys of the group's submissions that earlier commits took.
    pub(super) taken: Taken,
    /// Balances of the paying accounts.
    pub(super) balances: HashMap<AccountId, i64>,
    /// Messages of the group already queued (read only when a group is replayed: a fresh
    /// message ID is never queued yet, and the insert checks it).
    pub(super) queued: HashSet<QueueKey>,
}

/// A debit of one account for all the charges of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Debit {
    pub(super) account: AccountId,
    pub(super) total: i64,
    /// The balance the debit must leave: anything else means another writer got in.
    pub(super) balance_after: i64,
}

/// One ledger row of a charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LedgerLine {
    pub(super) account: AccountId,
    pub(super) delta: i64,
    pub(super) balance_after: i64,
    pub(super) reason: LedgerReason,
    pub(super) message_id: MessageId,
    pub(super) at: UnixMs,
}

/// What a group of submissions and device messages writes, and what each is answered.
#[derive(Debug, Default)]
pub(super) struct Plan<'j> {
    pub(super) submitted: Vec<SubmitOutcome>,
    /// For each device message: whether it is new.
    pub(super) direct: Vec<bool>,
    /// Messages to queue, in queue order, with the time each was taken.
    pub(super) queue: Vec<(&'j NewMessage, UnixMs)>,
    pub(super) claims: Vec<Claim<'j>>,
    pub(super) debits: Vec<Debit>,
    pub(super) ledger: Vec<LedgerLine>,
}

/// Decides a group of submissions, then device messages, in order (see the module docs).
pub(super) fn decide<'j>(
    submissions: &'j [SubmitJob],
    directs: &'j [DirectJob],
    found: &Found,
) -> Plan<'j> {
    let mut plan = Plan {
        submitted: Vec::with_capacity(submissions.len()),
        direct: Vec::with_capacity(directs.len()),
        ..Plan::default()
    };
    // Keyed by the jobs' own strings: no copy of a key per lookup. Keys found taken are
    // rare (retries), and only then is a key copied to look it up.
    let mut taken: HashMap<(&str, &str), MessageId> = HashMap::new();
    if !found.taken.is_empty() {
        for c in submissions.iter().flat_map(SubmitJob::claims) {
            if let Some(id) = found.taken.get(&(c.gateway.to_owned(), c.key.to_owned())) {
                taken.insert((c.gateway, c.key), *id);
            }
        }
    }
    let mut funds = found.balances.clone();
    let mut queued: HashSet<QueueKey> = HashSet::new();
    let mut new_message = |m: &NewMessage| {
        let key = m.key();
        !found.queued.contains(&key) && queued.insert(key)
    };
    let mut totals: Vec<(AccountId, i64)> = Vec::new();
    for job in submissions {
        let s = &job.submission;
        let retry = s
            .idempotency_keys
            .iter()
            .find_map(|k| taken.get(&(s.gateway.as_str(), k.as_str())));
        if let Some(id) = retry {
            plan.submitted.push(SubmitOutcome::Duplicate(*id));
            continue;
        }
        let charge = &s.charge;
        let amount = charge.amount.as_i64();
        let balance = funds.entry(charge.account).or_insert(0);
        if amount > 0 && *balance < amount {
            plan.submitted.push(SubmitOutcome::InsufficientCredits);
            continue;
        }
        let m = &s.message;
        if !new_message(m) {
            plan.submitted.push(SubmitOutcome::Duplicate(m.message_id));
            continue;
        }
        if amount > 0 {
            *balance -= amount;
            plan.ledger.push(LedgerLine {
                account: charge.account,
                delta: -amount,
                balance_after: *balance,
                reason: charge.reason,
                message_id: m.message_id,
                at: job.now,
            });
            match totals.iter_mut().find(|(a, _)| *a == charge.account) {
                Some((_, total)) => *total += amount,
                None => totals.push((charge.account, amount)),
            }
        }
        for c in job.claims() {
            taken.insert((c.gateway, c.key), c.message_id);
            plan.claims.push(c);
        }
        plan.queue.push((m, job.now));
        plan.submitted.push(SubmitOutcome::Accepted(m.message_id));
    }
    for job in directs {
        let new = new_message(&job.message);
        if new {
            plan.queue.push((&job.message, job.now));
        }
        plan.direct.push(new);
    }
    // Accounts in a fixed order, so two nodes debiting the same two accounts lock them
    // alike.
    totals.sort_by_key(|(account, _)| account.0);
    plan.debits = totals
        .into_iter()
        .map(|(account, total)| Debit {
            account,
            total,
            balance_after: funds[&account],
        })
        .collect();
    plan
}

/// What the reads before a group of acks found.
#[derive(Debug, Default)]
pub(super) struct AckFound {
    /// The queue rows the acks name, by key.
    pub(super) seq_of: HashMap<QueueKey, i64>,
    /// The acks those rows already have, as (seq, device).
    pub(super) acked: HashSet<(i64, i64)>,
}

/// A status event to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::store) struct Event {
    pub(in crate::store) sender: IdentityId,
    pub(in crate::store) message_id: MessageId,
    pub(in crate::store) recipient: IdentityId,
    pub(in crate::store) event: MessageStatus,
    pub(in crate::store) at: UnixMs,
}

/// What a group of acks writes.
#[derive(Debug, Default)]
pub(super) struct AckPlan {
    /// For each ack; `deleted` is filled in by `apply`, which learns it from the database.
    pub(super) outcomes: Vec<AckOutcome>,
    /// New acks as (seq, device, at).
    pub(super) new_acks: Vec<(i64, i64, UnixMs)>,
    pub(super) delivered: Vec<Event>,
    /// The queue rows the acks name, in order: those to check for completion.
    pub(super) seqs: Vec<i64>,
    /// For each of those rows, the last ack of the group naming it: the one that completes
    /// it if it is deleted.
    pub(super) last_ack_of: HashMap<i64, usize>,
}

/// Decides a group of acks in order (see the module docs).
pub(super) fn decide_acks(acks: &[Ack], found: &AckFound) -> AckPlan {
    let mut plan = AckPlan::default();
    let mut acked = found.acked.clone();
    let mut has_acks: HashSet<i64> = acked.iter().map(|(seq, _)| *seq).collect();
    for (i, ack) in acks.iter().enumerate() {
        let Some(&seq) = found.seq_of.get(&ack.key()) else {
            plan.outcomes.push(AckOutcome {
                matched: false,
                deleted: false,
            });
            continue;
        };
        let device = ack.device.db_device_id();
        if acked.insert((seq, device)) {
            plan.new_acks.push((seq, device, ack.now));
            if has_acks.insert(seq) {
                plan.delivered.push(Event {
                    sender: ack.sender,
                    message_id: ack.message_id,
                    recipient: ack.device.identity,
                    event: MessageStatus::Delivered,
                    at: ack.now,
                });
            }
        }
        plan.last_ack_of.insert(seq, i);
        plan.outcomes.push(AckOutcome {
            matched: true,
            deleted: false,
        });
    }
    plan.seqs = found.seq_of.values().copied().collect();
    plan.seqs.sort_unstable();
    plan
}

#[cfg(test)]
mod tests;

/// What the reads before a group of callback entries found.
#[derive(Debug, Default)]
pub(super) struct CallbackFound {
    /// Entries of the group the outbox holds already.
    pub(super) stored: HashSet<CallbackKey>,
    /// Pending entries per (gateway ID, sender), counted up to the cap at most.
    pub(super) per_sender: HashMap<(GatewayId, IdentityId), i64>,
    /// Pending entries per gateway ID, counted up to the cap at most.
    pub(super) per_gateway: HashMap<GatewayId, i64>,
}

/// What a group of callback entries writes, and what each is answered.
#[derive(Debug, Default)]
pub(super) struct CallbackPlan<'j> {
    pub(super) outcomes: Vec<Enqueued>,
    /// The entries to store, in order.
    pub(super) store: Vec<&'j CallbackJob>,
}

/// Decides a group of callback entries in order (see the module docs).
pub(super) fn decide_callbacks<'j>(
    jobs: &'j [CallbackJob],
    found: &CallbackFound,
) -> CallbackPlan<'j> {
    let mut plan = CallbackPlan::default();
    let mut stored: HashSet<CallbackKey> = HashSet::new();
    let (mut per_sender, mut per_gateway) = (found.per_sender.clone(), found.per_gateway.clone());
    for job in jobs {
        let key = job.key();
        let (gateway, sender) = (job.entry.gateway, job.entry.sender);
        let from_sender = per_sender.entry((gateway, sender)).or_insert(0);
        let in_all = per_gateway.entry(gateway).or_insert(0);
        let outcome = if found.stored.contains(&key) || stored.contains(&key) {
            Enqueued::Resent
        } else if *from_sender >= i64::from(job.caps.per_sender) {
            Enqueued::SenderFull
        } else if *in_all >= i64::from(job.caps.per_gateway) {
            Enqueued::GatewayFull
        } else {
            *from_sender += 1;
            *in_all += 1;
            stored.insert(key);
            plan.store.push(job);
            Enqueued::Stored
        };
        plan.outcomes.push(outcome);
    }
    plan
}
