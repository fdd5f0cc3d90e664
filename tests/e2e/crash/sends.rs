//! Sends under SIGKILL: bursts of concurrent `send_simple` requests, each with its own
//! `Idempotency-Key`, with the server killed at a random answer count mid-burst and
//! started again on the same data, several times over.
//!
//! After every restart: each message answered 200 is there (status API) and charged
//! exactly once; the balance is the initial one less one credit per message charged; a
//! retry of an answered key gives the same message ID and costs nothing; a retry of a
//! key that got no answer is answered, and charged only if the lost request had not
//! been committed. In the end every key stands for exactly one charged message and every
//! charged message for exactly one key.

use futures_util::StreamExt;
use tocsin_sdk::protocol::{IdentityId, MessageId};

use super::harness::{
    retry, some, Api, Book, Burst, Env, Ledger, Rng, Running, Senders, Sent, PATIENCE,
    RETRIES_IN_FLIGHT,
};

/// Credits the account starts with: more than any run spends.
const INITIAL: u32 = 1_000_000;

/// Kills per run.
const KILLS: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_answered_before_a_sigkill_survive_it() {
    let env = Env::new().await;
    let mut rng = Rng::seeded(&format!("sends on {:?}", env.engine()));
    let gateway = env.gateway(INITIAL).await;
    let recipient = env.identity("ALICE123").await;
    let mut book = Book::default();
    let mut server = env.serve().await;
    for kill in 0..KILLS {
        let senders = rng.between(16, 32);
        let kill_at = rng.between(20, 300);
        let api = Api::new(server.http, &gateway);
        let burst = burst(server, &api, recipient, kill, senders, kill_at).await;
        // What the killed server committed.
        let db = env.database_after_kill().await;
        let before = db.ledger(i64::from(INITIAL)).await;
        db.close().await;
        server = env.serve().await;
        let api = Api::new(server.http, &gateway);
        let committed =
            check_after_restart(&env, &api, recipient, &mut book, &burst, &before).await;
        println!(
            "kill {kill}: {senders} senders, killed at answer {kill_at}: {} answered, {} \
             without an answer, of which {committed} had been committed",
            burst.answered.len(),
            burst.unanswered.len()
        );
    }

    // Every key of every burst, once more: still its message, still charged once.
    let api = Api::new(server.http, &gateway);
    let keys: Vec<String> = book.resolved.keys().cloned().collect();
    for (key, sent) in retry(&api, recipient, keys.into_iter()).await {
        let Sent::Accepted(id) = sent else {
            panic!("the retry of {key} after {KILLS} kills: {sent:?}");
        };
        book.resolve(&key, id);
    }
    let db = env.database().await;
    let ledger = db.ledger(i64::from(INITIAL)).await;
    db.close().await;
    assert_eq!(ledger.charged, book.ids(), "one charged message per key");
    assert_eq!(api.credits().await, ledger.balance);
    let states: Vec<(MessageId, Option<String>)> = futures_util::stream::iter(book.ids())
        .map(|id| {
            let api = &api;
            async move { (id, api.state(&id).await) }
        })
        .buffer_unordered(RETRIES_IN_FLIGHT)
        .collect()
        .await;
    for (id, state) in states {
        assert_eq!(state.as_deref(), Some("queued"), "message {id} in the end");
    }
    drop(server);
}

/// Runs `senders` concurrent senders until `kill_at` of their requests were answered 200,
/// then kills the server with SIGKILL while the others are still out.
async fn burst(
    server: Running,
    api: &Api,
    to: IdentityId,
    kill: usize,
    senders: u64,
    kill_at: u64,
) -> Burst {
    let running = Senders::start(api, to, &format!("k{kill}"), senders, kill_at);
    let tripped = tokio::time::timeout(PATIENCE, running.tripped.notified()).await;
    let log = server.log_tail();
    server.kill();
    let burst = running.stop().await;
    assert!(
        tripped.is_ok(),
        "{kill_at} answers did not come; refused: {}\n{log}",
        some(&burst.refused)
    );
    assert!(
        burst.refused.is_empty(),
        "requests refused: {}",
        some(&burst.refused)
    );
    burst
}

/// The checks after a restart that follows `burst`'s kill, which left the ledger
/// `before`; resolves every key of the burst in `book`. Returns how many requests without
/// an answer had been committed.
async fn check_after_restart(
    env: &Env,
    api: &Api,
    to: IdentityId,
    book: &mut Book,
    burst: &Burst,
    before: &Ledger,
) -> usize {
    for (key, id) in &burst.answered {
        book.resolve(key, *id);
    }
    let lost: Vec<_> = book.ids().difference(&before.charged).copied().collect();
    assert!(
        lost.is_empty(),
        "messages answered 200 before a kill are not charged after it: {}",
        some(&lost)
    );
    assert_eq!(
        before.balance,
        i64::from(INITIAL) - before.charged.len() as i64
    );
    assert_eq!(api.credits().await, before.balance);
    // Charged but never answered: only requests out at the kill can be such.
    let unknown = before.charged.len() - book.resolved.len();
    assert!(
        unknown <= burst.unanswered.len(),
        "{unknown} messages charged that no request out at the kill can explain"
    );
    for (key, id) in &burst.answered {
        let state = api.state(id).await;
        assert_eq!(
            state.as_deref(),
            Some("queued"),
            "message {id} (key {key}) after the restart"
        );
    }

    // Retries: answered keys give their message again, unanswered ones get answered.
    let answered = burst.answered.iter().map(|(key, _)| key.clone());
    let keys = answered.chain(burst.unanswered.iter().cloned());
    let mut committed_unanswered = 0;
    for (key, sent) in retry(api, to, keys).await {
        let Sent::Accepted(id) = sent else {
            panic!("the retry of {key} after the restart: {sent:?}");
        };
        if !book.resolved.contains_key(&key) && before.charged.contains(&id) {
            committed_unanswered += 1;
        }
        book.resolve(&key, id);
    }
    let db = env.database().await;
    let after = db.ledger(i64::from(INITIAL)).await;
    db.close().await;
    assert_eq!(
        after.charged,
        book.ids(),
        "after the retries, each key stands for exactly one charged message"
    );
    assert_eq!(
        after.balance,
        i64::from(INITIAL) - book.resolved.len() as i64
    );
    assert_eq!(api.credits().await, after.balance);
    committed_unanswered
}
