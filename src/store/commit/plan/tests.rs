//! The rules of money, idempotency and acks, decided without a database.

use std::collections::{HashMap, HashSet};

use tocsin_sdk::protocol::{GatewayId, IdentityId, MessageId, Nonce};

use super::*;
use crate::domain::{Credits, LedgerReason};
use crate::store::accounts::Charge;
use crate::store::commit::job::{Ack, CallbackJob, DirectJob, SubmitJob};
use crate::store::devices::Device;
use crate::store::queue::{NewMessage, Submission};

fn id(s: &str) -> IdentityId {
    IdentityId::parse(s).unwrap()
}

fn message(recipient: &str, message_id: MessageId) -> NewMessage {
    NewMessage {
        message_id,
        sender: id("*GATEWAY"),
        recipient: id(recipient),
        flags: 1,
        nonce: Nonce::random(),
        body: vec![1, 2, 3],
        expires_at: UnixMs::MAX,
    }
}

fn job(account: i64, amount: u32, keys: &[&str], m: NewMessage) -> SubmitJob {
    SubmitJob {
        submission: Submission {
            gateway: GatewayId::parse("*GATEWAY").unwrap(),
            charge: Charge {
                account: AccountId(account),
                amount: Credits::new(amount),
                reason: LedgerReason::SendE2e,
            },
            idempotency_keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            message: m,
        },
        digests: Vec::new(),
        now: UnixMs::new(5),
        reply: tokio::sync::oneshot::channel().0,
        inbox: None,
    }
}

fn funds(balances: &[(i64, i64)]) -> Found {
    Found {
        balances: balances.iter().map(|(a, b)| (AccountId(*a), *b)).collect(),
        ..Found::default()
    }
}

#[test]
fn charges_count_down_from_the_balance_read_and_stop_at_what_it_covers() {
    let jobs: Vec<SubmitJob> = (0..4)
        .map(|i| {
            job(
                1,
                2,
                &[&format!("k{i}")],
                message("ALICE123", MessageId::random()),
            )
        })
        .collect();
    let plan = decide(&jobs, &[], &funds(&[(1, 5)]));
    let ids: Vec<MessageId> = jobs
        .iter()
        .map(|j| j.submission.message.message_id)
        .collect();
    assert_eq!(
        plan.submitted,
        [
            SubmitOutcome::Accepted(ids[0]),
            SubmitOutcome::Accepted(ids[1]),
            SubmitOutcome::InsufficientCredits,
            SubmitOutcome::InsufficientCredits,
        ]
    );
    let after: Vec<i64> = plan.ledger.iter().map(|l| l.balance_after).collect();
    assert_eq!(after, [3, 1]);
    assert!(plan
        .ledger
        .iter()
        .all(|l| l.delta == -2 && l.reason == LedgerReason::SendE2e));
    assert_eq!(
        plan.debits,
        [Debit {
            account: AccountId(1),
            total: 4,
            balance_after: 1
        }]
    );
    assert_eq!(plan.queue.len(), 2);
    assert_eq!(plan.claims.len(), 2, "a refused job claims no key");
}

#[test]
fn an_account_not_found_pays_nothing_and_a_free_send_needs_no_balance() {
    let paying = job(9, 1, &["a"], message("ALICE123", MessageId::random()));
    let free = job(9, 0, &["b"], message("ALICE123", MessageId::random()));
    let jobs = [paying, free];
    let plan = decide(&jobs, &[], &Found::default());
    assert_eq!(plan.submitted[0], SubmitOutcome::InsufficientCredits);
    assert_eq!(
        plan.submitted[1],
        SubmitOutcome::Accepted(jobs[1].submission.message.message_id)
    );
    assert!(plan.debits.is_empty() && plan.ledger.is_empty());
}

#[test]
fn a_key_taken_before_or_earlier_in_the_group_answers_the_first_message_id() {
    let first = MessageId::random();
    let jobs = [
        job(
            1,
            1,
            &["fresh", "shared"],
            message("ALICE123", MessageId::random()),
        ),
        job(1, 1, &["shared"], message("ALICE123", MessageId::random())),
        job(1, 1, &["old"], message("ALICE123", MessageId::random())),
    ];
    let mut found = funds(&[(1, 10)]);
    found.taken.insert(("*GATEWAY".into(), "old".into()), first);
    let plan = decide(&jobs, &[], &found);
    let accepted = jobs[0].submission.message.message_id;
    assert_eq!(
        plan.submitted,
        [
            SubmitOutcome::Accepted(accepted),
            SubmitOutcome::Duplicate(accepted),
            SubmitOutcome::Duplicate(first),
        ]
    );
    assert_eq!(plan.ledger.len(), 1, "retries are not charged");
    assert_eq!(plan.debits[0].balance_after, 9);
}

#[test]
fn a_message_queued_before_or_twice_in_the_group_is_queued_once() {
    let shared = MessageId::random();
    let jobs = [
        job(1, 1, &["a"], message("ALICE123", shared)),
        job(1, 1, &["b"], message("ALICE123", shared)),
        job(1, 1, &["c"], message("BOB45678", shared)),
    ];
    let directs = [
        DirectJob {
            message: message("CAROL123", MessageId::random()),
            now: UnixMs::new(7),
            reply: tokio::sync::oneshot::channel().0,
        },
        DirectJob {
            message: message("ALICE123", shared),
            now: UnixMs::new(7),
            reply: tokio::sync::oneshot::channel().0,
        },
    ];
    let mut found = funds(&[(1, 10)]);
    found.queued.insert(jobs[2].submission.message.key());
    let plan = decide(&jobs, &directs, &found);
    assert_eq!(
        plan.submitted,
        [
            SubmitOutcome::Accepted(shared),
            SubmitOutcome::Duplicate(shared),
            SubmitOutcome::Duplicate(shared),
        ]
    );
    assert_eq!(plan.direct, [true, false]);
    let queued: Vec<IdentityId> = plan.queue.iter().map(|(m, _)| m.recipient).collect();
    assert_eq!(queued, [id("ALICE123"), id("CAROL123")]);
    assert_eq!(plan.ledger.len(), 1, "a duplicate is not charged");
}

#[test]
fn accounts_are_debited_in_a_fixed_order() {
    let jobs = [
        job(7, 1, &["a"], message("ALICE123", MessageId::random())),
        job(3, 2, &["b"], message("ALICE123", MessageId::random())),
        job(7, 1, &["c"], message("ALICE123", MessageId::random())),
    ];
    let plan = decide(&jobs, &[], &funds(&[(3, 5), (7, 5)]));
    let debits: Vec<(i64, i64, i64)> = plan
        .debits
        .iter()
        .map(|d| (d.account.0, d.total, d.balance_after))
        .collect();
    assert_eq!(debits, [(3, 2, 3), (7, 2, 3)]);
}

fn ack(identity: &str, device_id: u64, message_id: MessageId) -> Ack {
    Ack {
        device: Device {
            identity: id(identity),
            device_id,
            registered_after_seq: 0,
        },
        sender: id("*GATEWAY"),
        message_id,
        now: UnixMs::new(9),
    }
}

#[test]
fn the_first_ack_of_a_row_delivers_it_and_repeated_or_unknown_acks_change_nothing() {
    let (m1, m2, unknown) = (
        MessageId::random(),
        MessageId::random(),
        MessageId::random(),
    );
    let acks = [
        ack("ALICE123", 1, m1),
        ack("ALICE123", 2, m1),
        ack("ALICE123", 1, m1),
        ack("ALICE123", 1, m2),
        ack("ALICE123", 1, unknown),
    ];
    let found = AckFound {
        seq_of: HashMap::from([(acks[0].key(), 10), (acks[3].key(), 11)]),
        // Another device had m2 already: it was delivered before.
        acked: HashSet::from([(11, 3)]),
    };
    let plan = decide_acks(&acks, &found);
    const T9: UnixMs = UnixMs::new(9);
    let matched: Vec<bool> = plan.outcomes.iter().map(|o| o.matched).collect();
    assert_eq!(matched, [true, true, true, true, false]);
    assert_eq!(plan.new_acks, [(10, 1, T9), (10, 2, T9), (11, 1, T9)]);
    let delivered: Vec<MessageId> = plan.delivered.iter().map(|e| e.message_id).collect();
    assert_eq!(delivered, [m1], "m2 was delivered before");
    assert_eq!(plan.seqs, [10, 11]);
    assert_eq!(plan.last_ack_of, HashMap::from([(10, 2), (11, 3)]));
}

fn callback(gateway: GatewayId, sender: &str, message_id: MessageId) -> CallbackJob {
    CallbackJob {
        entry: crate::store::CallbackEntry {
            gateway,
            sender: id(sender),
            message_id,
            sent_at: 1_700_000_000,
            nonce: Nonce::random(),
            body: vec![1; 40],
            nickname: None,
        },
        caps: crate::store::PendingCaps {
            per_sender: 2,
            per_gateway: 4,
        },
        now: UnixMs::new(5),
        reply: tokio::sync::oneshot::channel().0,
    }
}

#[test]
fn callback_entries_are_stored_once_and_refused_past_the_caps_counting_the_group() {
    let (gw, other_gw) = (GatewayId::random(), GatewayId::random());
    let (m1, m2, m3, m4, m5) = (
        MessageId::random(),
        MessageId::random(),
        MessageId::random(),
        MessageId::random(),
        MessageId::random(),
    );
    let jobs = [
        // Already in the outbox: a resend.
        callback(gw, "ALICE123", m1),
        // Alice has one waiting: the first new one fits, the second one would be her third.
        callback(gw, "ALICE123", m2),
        callback(gw, "ALICE123", m2),
        callback(gw, "ALICE123", m3),
        // Bob: the gateway ID holds 3 of its 4 now; Bob's first fills it, his second is
        // over the gateway's cap (not his own).
        callback(gw, "BOB45678", m4),
        callback(gw, "BOB45678", m5),
        // Another gateway ID has room of its own.
        callback(other_gw, "BOB45678", m5),
    ];
    let found = CallbackFound {
        stored: HashSet::from([(gw, id("ALICE123"), m1)]),
        per_sender: HashMap::from([((gw, id("ALICE123")), 1)]),
        per_gateway: HashMap::from([(gw, 2)]),
    };
    let plan = decide_callbacks(&jobs, &found);
    assert_eq!(
        plan.outcomes,
        [
            Enqueued::Resent,
            Enqueued::Stored,
            Enqueued::Resent,
            Enqueued::SenderFull,
            Enqueued::Stored,
            Enqueued::GatewayFull,
            Enqueued::Stored,
        ]
    );
    let stored: Vec<MessageId> = plan.store.iter().map(|j| j.entry.message_id).collect();
    assert_eq!(stored, [m2, m4, m5]);
}
