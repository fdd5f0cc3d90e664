//! The storage contract, run against every engine: SQLite always, PostgreSQL when
//! `TOCSIN_TEST_POSTGRES_URL` is set (each test then gets a fresh database of its own).

use std::sync::Arc;

use tocsin_sdk::protocol::{
    hash_email, hash_phone, Capabilities, GatewayId, IdentityId, KeyPair, MessageId, Nonce,
};

use sqlx::Executor;

use super::*;
use crate::domain::{AccountName, Credits, LedgerReason, MessageStatus, UnixMs};

const NOW: UnixMs = UnixMs::new(1_700_000_000_000);

pub(super) async fn sqlite_store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = Store::open(&url, 4).await.unwrap();
    store.migrate().await.unwrap();
    (store, dir)
}

/// Another connection to the SQLite file in `dir`, holding the write lock in a transaction
/// that has run `update`; `COMMIT` on it lets go.
pub(super) async fn hold_write_lock(dir: &std::path::Path, update: &str) -> sqlx::AnyConnection {
    use sqlx::Connection;
    let url = format!("sqlite://{}", dir.join("t.db").display());
    let mut other = sqlx::AnyConnection::connect(&url).await.unwrap();
    other.execute("BEGIN IMMEDIATE").await.unwrap();
    other.execute(sqlx::AssertSqlSafe(update)).await.unwrap();
    other
}

/// A store on a brand-new PostgreSQL database, or `None` when no server is configured.
async fn postgres_store() -> Option<Store> {
    let url = super::testing::fresh_postgres_database().await?;
    let store = Store::open(&url, 8).await.unwrap();
    store.migrate().await.unwrap();
    Some(store)
}

/// Migration 4 on a database written by an earlier version: a message queued then carries
/// a `queued` event, which must not be counted twice now that the queue row stands for it.
async fn migration_4_keeps_one_queued_status(store: Store) {
    store.migrate_to(3).await.unwrap();
    let m = direct("BOB45678", "ALICE123", NOW.plus_ms(1000));
    sqlx::query(
        "INSERT INTO queued_messages (message_id, sender, recipient, flags, nonce, body, \
         created_at, expires_at) VALUES ($1, $2, $3, 1, $4, $5, $6, $7)",
    )
    .bind(m.message_id.as_bytes().to_vec())
    .bind(m.sender.as_str())
    .bind(m.recipient.as_str())
    .bind(m.nonce.as_bytes().to_vec())
    .bind(m.body.clone())
    .bind(NOW)
    .bind(m.expires_at)
    .execute(&store.write)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO message_events (sender, message_id, recipient, event, at) \
         VALUES ($1, $2, $3, 'queued', $4)",
    )
    .bind(m.sender.as_str())
    .bind(m.message_id.as_bytes().to_vec())
    .bind(m.recipient.as_str())
    .bind(NOW)
    .execute(&store.write)
    .await
    .unwrap();
    store.migrate().await.unwrap();
    let queued = [(MessageStatus::Queued, NOW)];
    assert_eq!(
        store
            .message_events(&m.sender, &m.message_id)
            .await
            .unwrap(),
        queued
    );
    assert_eq!(store.expire_messages(NOW.plus_ms(1000)).await.unwrap(), 1);
    assert_eq!(
        store
            .message_events(&m.sender, &m.message_id)
            .await
            .unwrap(),
        [queued[0], (MessageStatus::Expired, NOW.plus_ms(1000))]
    );
}

#[tokio::test]
async fn migration_4_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    migration_4_keeps_one_queued_status(Store::open(&url, 4).await.unwrap()).await;
}

/// On SQLite the write connection keeps its temporary files, among them the statement
/// journals of a group's multi-row inserts, in memory; the readers keep the default.
#[tokio::test]
async fn on_sqlite_the_write_connection_keeps_its_statement_journals_in_memory() {
    let (store, _dir) = sqlite_store().await;
    let temp_store = |pool: sqlx::AnyPool| async move {
        let row = sqlx::query("PRAGMA temp_store")
            .fetch_one(&pool)
            .await
            .unwrap();
        sqlx::Row::try_get::<i64, _>(&row, "temp_store").unwrap()
    };
    assert_eq!(temp_store(store.write.clone()).await, 2, "MEMORY");
    assert_eq!(temp_store(store.read.clone()).await, 0, "DEFAULT");
}

/// On SQLite the writer commits without syncing and syncs the write-ahead log itself
/// before it answers; the write connection it shares goes back to syncing its own commits,
/// so the other writes of the process stay durable.
#[tokio::test]
async fn on_sqlite_the_write_connection_syncs_its_own_commits_after_a_group() {
    let (store, dir) = sqlite_store().await;
    assert!(
        dir.path().join("t.db-wal").exists(),
        "the log the writer syncs"
    );
    let m = direct("BOB45678", "ALICE123", NOW.plus_ms(1000));
    assert!(store.enqueue_direct(&m, NOW).await.unwrap());
    let level: i64 = sqlx::Row::try_get(
        &sqlx::query("PRAGMA synchronous")
            .fetch_one(&store.write)
            .await
            .unwrap(),
        "synchronous",
    )
    .unwrap();
    assert_eq!(level, 2, "synchronous = FULL");
    assert_eq!(store.queue_depth().await.unwrap(), 1);
}

#[tokio::test]
#[cfg_attr(not(pg_tests), ignore = "TOCSIN_TEST_POSTGRES_URL is not set")]
async fn migration_4_on_postgres() {
    let url = super::testing::fresh_postgres_database()
        .await
        .expect("TOCSIN_TEST_POSTGRES_URL is set");
    migration_4_keeps_one_queued_status(Store::open(&url, 4).await.unwrap()).await;
}

/// A store at migration `version` with a gateway whose idempotency key `key` that
/// version kept in `table`, then migrated to the latest; with the key's message ID.
async fn upgraded_with_a_key(
    url: &str,
    version: i64,
    table: &str,
    key: &str,
) -> (Store, GatewayRecord, MessageId) {
    let store = Store::open(url, 4).await.unwrap();
    store.migrate_to(version).await.unwrap();
    let a = account(&store, "upgrade", 100).await;
    // Written with the columns of the first schema: today's `create_gateway` knows
    // columns that later migrations add.
    let gw = gateway_record(a.id, GatewayMode::E2e);
    sqlx::query(
        "INSERT INTO gateway_ids (id, account_id, mode, secret_hash, secret_sealed, public_key, \
         private_sealed, callback_url, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(gw.id.as_str())
    .bind(gw.account.0)
    .bind(gw.mode.as_str())
    .bind(gw.secret_hash.clone())
    .bind(gw.secret_sealed.clone())
    .bind(gw.public_key.as_bytes().to_vec())
    .bind(gw.private_sealed.clone())
    .bind(gw.callback_url.clone())
    .bind(gw.created_at)
    .execute(&store.write)
    .await
    .unwrap();
    let earlier = MessageId::random();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {table} (gateway_id, idem_key, message_id, created_at) \
         VALUES ($1, $2, $3, $4)"
    )))
    .bind(gw.id.as_str())
    .bind(key)
    .bind(earlier.as_bytes().to_vec())
    .bind(NOW)
    .execute(&store.write)
    .await
    .unwrap();
    store.migrate().await.unwrap();
    (store, gw, earlier)
}

/// Migration 5 on a database with idempotency keys: a retry of a request accepted before
/// the upgrade is still recognised (on SQLite the keys move to the log read into memory).
async fn migration_5_keeps_the_idempotency_keys(url: &str) {
    let (store, gw, earlier) =
        upgraded_with_a_key(url, 4, "idempotency_keys", "before-upgrade").await;
    let retry = submission(&gw, recipient(), &["before-upgrade"]);
    assert_eq!(
        store.submit(&retry, NOW.plus_ms(10)).await.unwrap(),
        SubmitOutcome::Duplicate(earlier)
    );
    assert_eq!(forget(&store, NOW.plus_ms(1)).await, 1);
    assert!(matches!(
        store.submit(&retry, NOW.plus_ms(20)).await.unwrap(),
        SubmitOutcome::Accepted(_)
    ));
}

/// Keys outlive the process and end with their window: a retry after the store is closed
/// and opened again is still recognised; keys claimed before the cutoff are forgotten (a
/// retry after that is a new, charged message) while younger ones still answer.
async fn a_retry_after_a_restart_is_recognised(url: &str) {
    let store = Store::open(url, 4).await.unwrap();
    store.migrate().await.unwrap();
    let a = account(&store, "restart", 10).await;
    let gw = gateway(&store, a.id, GatewayMode::E2e).await;
    let old = submission(&gw, recipient(), &["old"]);
    let young = submission(&gw, recipient(), &["young-1", "young-2"]);
    assert!(matches!(
        store.submit(&old, NOW).await.unwrap(),
        SubmitOutcome::Accepted(_)
    ));
    assert!(matches!(
        store.submit(&young, NOW.plus_ms(100)).await.unwrap(),
        SubmitOutcome::Accepted(_)
    ));
    store.close().await;
    drop(store);

    let store = Store::open(url, 4).await.unwrap();
    store.migrate().await.unwrap();
    let held = (store.backend() == Backend::Sqlite).then_some(3);
    assert_eq!(store.load_idempotency_keys().await.unwrap(), held);
    let mut retry = retry_of(&young);
    retry.idempotency_keys = vec!["young-2".into()];
    assert_eq!(
        store.submit(&retry, NOW.plus_ms(200)).await.unwrap(),
        SubmitOutcome::Duplicate(young.message.message_id)
    );
    assert_eq!(store.idempotency_keys_in_memory(), held);
    assert_eq!(forget(&store, NOW.plus_ms(50)).await, 1);
    let retry = retry_of(&old);
    assert_eq!(
        store.submit(&retry, NOW.plus_ms(300)).await.unwrap(),
        SubmitOutcome::Accepted(retry.message.message_id),
        "past the window a retry is a new message"
    );
    // The key now names the new message; forgetting the old claim again changes nothing.
    assert_eq!(forget(&store, NOW.plus_ms(50)).await, 0);
    let again = retry_of(&old);
    assert_eq!(
        store.submit(&again, NOW.plus_ms(400)).await.unwrap(),
        SubmitOutcome::Duplicate(retry.message.message_id)
    );
    assert_eq!(
        store
            .submit(&retry_of(&young), NOW.plus_ms(400))
            .await
            .unwrap(),
        SubmitOutcome::Duplicate(young.message.message_id)
    );
    assert_eq!(store.account(a.id).await.unwrap().unwrap().balance, 7);
}

/// On SQLite the keys in memory stay under their ceiling: the oldest go first, even inside
/// their window, and are counted as early; a retry of a younger one is still recognised.
/// PostgreSQL keeps its keys in a table and ignores the ceiling.
async fn the_key_ceiling_forgets_the_oldest_first(store: Store) {
    let a = account(&store, "ceiling", 10).await;
    let gw = gateway(&store, a.id, GatewayMode::E2e).await;
    let subs: Vec<Submission> = (0..4)
        .map(|i| submission(&gw, recipient(), &[format!("c-{i}").as_str()]))
        .collect();
    for (i, s) in subs.iter().enumerate() {
        assert!(matches!(
            store.submit(s, NOW.plus_ms(i as i64)).await.unwrap(),
            SubmitOutcome::Accepted(_)
        ));
    }
    let forgotten = store.forget_idempotency_keys(NOW, 2).await.unwrap();
    let retry = |i: usize| retry_of(&subs[i]);
    if store.backend() == Backend::Sqlite {
        assert_eq!(forgotten, Forgotten { total: 2, early: 2 });
        assert_eq!(store.idempotency_keys_in_memory(), Some(2));
        let again = retry(0);
        assert_eq!(
            store.submit(&again, NOW.plus_ms(10)).await.unwrap(),
            SubmitOutcome::Accepted(again.message.message_id),
            "the oldest key went"
        );
    } else {
        assert_eq!(forgotten, Forgotten::default());
        assert_eq!(
            store.submit(&retry(0), NOW.plus_ms(10)).await.unwrap(),
            SubmitOutcome::Duplicate(subs[0].message.message_id)
        );
    }
    assert_eq!(
        store.submit(&retry(2), NOW.plus_ms(10)).await.unwrap(),
        SubmitOutcome::Duplicate(subs[2].message.message_id)
    );
}

/// Each process that opens the database gets a node number of its own.
async fn node_numbers_count_up(store: Store) {
    let first = store.next_node_number(NOW).await.unwrap();
    let second = store.next_node_number(NOW).await.unwrap();
    assert_eq!(second, first + 1);
}

/// Runs `suite`, which opens the store itself from a URL, on a fresh SQLite file, and on
/// a fresh PostgreSQL database when available.
macro_rules! on_every_url {
    ($($sqlite:ident, $postgres:ident => $suite:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $sqlite() {
                let dir = tempfile::tempdir().unwrap();
                $suite(&format!("sqlite://{}", dir.path().join("t.db").display())).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            #[cfg_attr(not(pg_tests), ignore = "TOCSIN_TEST_POSTGRES_URL is not set")]
            async fn $postgres() {
                let url = super::testing::fresh_postgres_database()
                    .await
                    .expect("TOCSIN_TEST_POSTGRES_URL is set");
                $suite(&url).await;
            }
        )*
    };
}

on_every_url!(
    migration_5_on_sqlite, migration_5_on_postgres => migration_5_keeps_the_idempotency_keys,
    restart_on_sqlite, restart_on_postgres => a_retry_after_a_restart_is_recognised,
    grouping_on_sqlite, grouping_on_postgres => waiting_jobs_are_grouped_after_a_wait,
);

/// Another process holding SQLite's write lock (an admin command, say) makes the writer
/// wait, not fail: its transaction takes the lock before it reads anything, so it never
/// holds a read snapshot that another commit made stale.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_writer_waits_for_another_processs_write_on_sqlite() {
    let (store, dir) = sqlite_store().await;
    let a = account(&store, "lock", 10).await;
    let gw = gateway(&store, a.id, GatewayMode::E2e).await;
    let first = submission(&gw, recipient(), &["warm-up"]);
    assert!(matches!(
        store.submit(&first, NOW).await.unwrap(),
        SubmitOutcome::Accepted(_)
    ));
    let mut other = hold_write_lock(dir.path(), "UPDATE accounts SET balance = balance + 1").await;
    let pending = tokio::spawn({
        let (store, s) = (store.clone(), submission(&gw, recipient(), &["during"]));
        async move { store.submit(&s, NOW).await }
    });
    // The writer has taken the job (it may or may not wait for the lock yet: the outcome
    // must not depend on it).
    while store.writer_counts().submissions < 2 {
        tokio::task::yield_now().await;
    }
    other.execute("COMMIT").await.unwrap();
    let outcome = pending.await.unwrap().unwrap();
    assert!(matches!(outcome, SubmitOutcome::Accepted(_)), "{outcome:?}");
    assert_eq!(store.account(a.id).await.unwrap().unwrap().balance, 9);
}

/// A request thread's callers are answered through its inbox: the answers wait there
/// until the inbox's task runs. A caller whose inbox closed before its answer came is
/// answered directly.
#[tokio::test]
async fn answers_come_through_the_threads_inbox_or_directly_once_it_has_closed() {
    use futures_util::future::BoxFuture;
    use std::future::Future;
    use std::pin::Pin;
    let (store, _dir) = sqlite_store().await;
    let a = account(&store, "inbox", 100).await;
    let gw = gateway(&store, a.id, GatewayMode::E2e).await;
    // The inbox tasks the store starts are held here until the test runs them.
    let held: Arc<std::sync::Mutex<Vec<BoxFuture<'static, ()>>>> = Arc::default();
    let spawner: LocalSpawner = Arc::new({
        let held = held.clone();
        move |task| held.lock().unwrap().push(task)
    });
    store.answer_on_threads(spawner);
    type Waiting<'a> = Pin<Box<dyn Future<Output = Result<SubmitOutcome, StoreError>> + 'a>>;
    let subs: Vec<Submission> = (0..8)
        .map(|i| submission(&gw, recipient(), &[&format!("inbox-{i}")]))
        .collect();
    let mut waiting: Vec<Waiting<'_>> = Vec::new();
    for s in &subs {
        let mut next: Waiting<'_> = Box::pin(store.submit_from_worker(s.clone(), NOW));
        // Polled once: the job is with the writer.
        assert!(futures_util::poll!(next.as_mut()).is_pending());
        waiting.push(next);
    }
    while store.queue_depth().await.unwrap() < 8 {
        tokio::task::yield_now().await;
    }
    // A later group, answered directly: the group of the eight has been answered too.
    let later = submission(&gw, recipient(), &["later"]);
    store.submit(&later, NOW).await.unwrap();
    for next in &mut waiting {
        assert!(
            futures_util::poll!(next.as_mut()).is_pending(),
            "answered before the inbox's task ran"
        );
    }
    let tasks: Vec<_> = held.lock().unwrap().drain(..).collect();
    assert_eq!(tasks.len(), 1, "one inbox for the thread");
    let inbox_task = tokio::spawn(tasks.into_iter().next().unwrap());
    for (next, s) in waiting.into_iter().zip(&subs) {
        assert_eq!(
            next.await.unwrap(),
            SubmitOutcome::Accepted(s.message.message_id)
        );
    }
    // The job of this one carries the inbox; the inbox closes before the answer comes.
    let last = submission(&gw, recipient(), &["after-close"]);
    let mut next: Waiting<'_> = Box::pin(store.submit_from_worker(last.clone(), NOW));
    assert!(futures_util::poll!(next.as_mut()).is_pending());
    inbox_task.abort();
    assert!(inbox_task.await.unwrap_err().is_cancelled());
    assert_eq!(
        next.await.unwrap(),
        SubmitOutcome::Accepted(last.message.message_id)
    );
}

/// On SQLite a commit logs all its keys in one row, and rows logged a key at a time before
/// migration 6 are still read and forgotten: after a restart every key of both kinds
/// answers a retry, and each goes when its window ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_commit_logs_its_keys_in_one_row_beside_the_keys_logged_before_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let (store, gw, earlier) =
        upgraded_with_a_key(&url, 5, "idempotency_log", "logged-alone").await;
    let subs: Vec<Submission> = (0..20)
        .map(|i| submission(&gw, recipient(), &[&format!("k{i}-a"), &format!("k{i}-b")]))
        .collect();
    let sent = subs.iter().map(|s| {
        let store = store.clone();
        let s = s.clone();
        tokio::spawn(async move { store.submit(&s, NOW.plus_ms(10)).await })
    });
    for outcome in futures_util::future::join_all(sent).await {
        assert!(matches!(
            outcome.unwrap().unwrap(),
            SubmitOutcome::Accepted(_)
        ));
    }
    let (rows, bytes): (i64, i64) = {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, SUM(LENGTH(entries)) AS bytes FROM idempotency_log \
             WHERE entries IS NOT NULL",
        )
        .fetch_one(&store.write)
        .await
        .unwrap();
        use sqlx::Row;
        (row.get("n"), row.get("bytes"))
    };
    assert_eq!(
        rows as u64,
        store.writer_counts().commits,
        "one row per commit"
    );
    assert_eq!(
        bytes,
        40 * 24,
        "a 16-byte digest and the message ID per key"
    );
    store.close().await;
    drop(store);

    let store = Store::open(&url, 4).await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(store.load_idempotency_keys().await.unwrap(), Some(41));
    let mut old = submission(&gw, recipient(), &["logged-alone"]);
    assert_eq!(
        store.submit(&old, NOW.plus_ms(20)).await.unwrap(),
        SubmitOutcome::Duplicate(earlier)
    );
    let mut retry = retry_of(&subs[7]);
    retry.idempotency_keys = vec!["k7-b".into()];
    assert_eq!(
        store.submit(&retry, NOW.plus_ms(20)).await.unwrap(),
        SubmitOutcome::Duplicate(subs[7].message.message_id)
    );
    assert_eq!(
        forget(&store, NOW.plus_ms(10)).await,
        1,
        "only the key logged alone"
    );
    old.message.message_id = MessageId::random();
    assert!(matches!(
        store.submit(&old, NOW.plus_ms(30)).await.unwrap(),
        SubmitOutcome::Accepted(_)
    ));
    assert_eq!(forget(&store, NOW.plus_ms(11)).await, 40);
    assert_eq!(store.idempotency_keys_in_memory(), Some(1));
    assert!(matches!(
        store
            .submit(&retry_of(&subs[7]), NOW.plus_ms(40))
            .await
            .unwrap(),
        SubmitOutcome::Accepted(_)
    ));
    // A row cut short is reported, not read as some other key.
    sqlx::query("INSERT INTO idempotency_log (created_at, entries) VALUES ($1, $2)")
        .bind(NOW.plus_ms(50))
        .bind(vec![1u8; 23])
        .execute(&store.write)
        .await
        .unwrap();
    store.close().await;
    drop(store);
    let store = Store::open(&url, 4).await.unwrap();
    let loaded = store.load_idempotency_keys().await;
    assert!(matches!(loaded, Err(StoreError::Corrupt(_))), "{loaded:?}");
}

/// Jobs that pile up while the writer waits for a lock: 1 job that found the writer idle,
/// then 99 waiting. On SQLite, whose commits do not wait for the disk, they go out in
/// groups of a power of two, the rest first in the next group (64 + 35); on PostgreSQL,
/// where each commit waits for its fsync, all 99 at once.
async fn waiting_jobs_are_grouped_after_a_wait(url: &str) {
    use sqlx::Connection;
    let store = Store::open(url, 4).await.unwrap();
    store.migrate().await.unwrap();
    let a = account(&store, "even", 1000).await;
    let gw = gateway(&store, a.id, GatewayMode::E2e).await;
    let mut other = sqlx::AnyConnection::connect(url).await.unwrap();
    match store.backend() {
        Backend::Sqlite => {
            other.execute("BEGIN IMMEDIATE").await.unwrap();
        }
        Backend::Postgres => {
            other.execute("BEGIN").await.unwrap();
            sqlx::query("SELECT balance FROM accounts WHERE id = $1 FOR UPDATE")
                .bind(a.id.0)
                .fetch_one(&mut other)
                .await
                .unwrap();
        }
    }
    let subs: Vec<Submission> = (0..100)
        .map(|i| submission(&gw, recipient(), &[&format!("even-{i}")]))
        .collect();
    let first = {
        let (store, s) = (store.clone(), subs[0].clone());
        tokio::spawn(async move { store.submit(&s, NOW).await })
    };
    // The writer takes the first job alone and waits for the lock; the others queue.
    while store.writer_counts().submissions < 1 {
        tokio::task::yield_now().await;
    }
    let rest: Vec<_> = subs[1..]
        .iter()
        .map(|s| {
            let (store, s) = (store.clone(), s.clone());
            tokio::spawn(async move { store.submit(&s, NOW).await })
        })
        .collect();
    while store.writer_backlog() < 99 {
        tokio::task::yield_now().await;
    }
    other.execute("COMMIT").await.unwrap();
    for sent in std::iter::once(first).chain(rest) {
        let outcome = sent.await.unwrap().unwrap();
        assert!(matches!(outcome, SubmitOutcome::Accepted(_)), "{outcome:?}");
    }
    let commits = match store.backend() {
        Backend::Sqlite => 3,
        Backend::Postgres => 2,
    };
    let counts = store.writer_counts();
    assert_eq!(
        (counts.submissions, counts.commits),
        (100, commits),
        "{counts:?}"
    );
}

/// Runs `suite` on SQLite, and on PostgreSQL when available.
macro_rules! on_every_backend {
    ($($suite:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $suite() {
                    let (store, _dir) = super::sqlite_store().await;
                    super::$suite(store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                #[cfg_attr(not(pg_tests), ignore = "TOCSIN_TEST_POSTGRES_URL is not set")]
                async fn $suite() {
                    let store = super::postgres_store()
                        .await
                        .expect("TOCSIN_TEST_POSTGRES_URL is set");
                    super::$suite(store).await;
                }
            )*
        }
    };
}

on_every_backend!(
    migrations_are_idempotent,
    accounts_and_ledger,
    gateway_ids,
    identities_and_lookups,
    submit_charges_records_and_enqueues_once,
    submit_without_credits_changes_nothing,
    concurrent_debits_never_overdraw,
    concurrent_retries_are_charged_once,
    every_device_receives_and_the_last_ack_deletes,
    resends_are_queued_once,
    expired_messages_leave_an_event,
    concurrent_acks_delete_exactly_once,
    a_burst_of_acks_is_committed_as_one_group,
    a_callback_claim_is_renewed_only_while_it_is_held,
    devices_are_capped_per_identity,
    pending_callbacks_are_capped_per_sender_and_per_gateway,
    a_burst_of_callback_entries_keeps_each_senders_cap,
    history_past_retention_is_purged,
    blobs_go_when_every_device_is_done_unless_persistent,
    a_group_that_meets_an_existing_message_falls_back_and_charges_nothing_extra,
    a_group_replayed_one_by_one_still_sees_its_own_keys,
    node_numbers_count_up,
    the_key_ceiling_forgets_the_oldest_first,
    many_identities_are_read_at_once,
);

mod stale;
mod statuses;

pub(super) async fn account(store: &Store, name: &str, credits: i64) -> Account {
    let a = store
        .create_account(&AccountName::parse(name).unwrap(), NOW)
        .await
        .unwrap();
    if credits > 0 {
        store.add_credits(a.id, credits, "test", NOW).await.unwrap();
    }
    store.account(a.id).await.unwrap().unwrap()
}

pub(super) async fn gateway(store: &Store, account: AccountId, mode: GatewayMode) -> GatewayRecord {
    store
        .create_gateway(&gateway_record(account, mode))
        .await
        .unwrap()
}

/// A fresh gateway ID's record, not yet stored.
fn gateway_record(account: AccountId, mode: GatewayMode) -> GatewayRecord {
    GatewayRecord {
        id: GatewayId::random(),
        account,
        mode,
        secret_hash: vec![7; 32],
        secret_sealed: vec![8; 56],
        public_key: KeyPair::generate().public,
        private_sealed: (mode == GatewayMode::Basic).then(|| vec![9; 72]),
        callback_url: None,
        bulk_lookup: false,
        created_at: NOW,
    }
}

pub(super) fn submission(gw: &GatewayRecord, to: IdentityId, keys: &[&str]) -> Submission {
    Submission {
        gateway: gw.id,
        charge: Charge {
            account: gw.account,
            amount: Credits::new(1),
            reason: LedgerReason::SendE2e,
        },
        idempotency_keys: keys.iter().map(|k| (*k).to_owned()).collect(),
        message: NewMessage {
            message_id: MessageId::random(),
            sender: *gw.id.as_identity(),
            recipient: to,
            flags: 1,
            nonce: Nonce::random(),
            body: vec![0xab; 48],
            expires_at: NOW.plus_ms(1000),
        },
    }
}

pub(super) fn recipient() -> IdentityId {
    IdentityId::parse("ECHOECHO").unwrap()
}

/// The same request sent again: same keys, but the fresh message ID a new request gets.
fn retry_of(s: &Submission) -> Submission {
    let mut retry = s.clone();
    retry.message.message_id = MessageId::random();
    retry
}

/// Forgets the keys claimed before `before`, with no ceiling; returns how many went.
async fn forget(store: &Store, before: UnixMs) -> u64 {
    store
        .forget_idempotency_keys(before, u64::MAX)
        .await
        .unwrap()
        .total
}

async fn migrations_are_idempotent(store: Store) {
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
}

async fn accounts_and_ledger(store: Store) {
    let a = account(&store, "acme", 0).await;
    assert_eq!(a.balance, 0);
    let dup = store
        .create_account(&AccountName::parse("acme").unwrap(), NOW)
        .await;
    assert!(
        matches!(dup, Err(StoreError::AlreadyExists { .. })),
        "{dup:?}"
    );
    assert_eq!(
        store.add_credits(a.id, 50, "top-up", NOW).await.unwrap(),
        50
    );
    assert_eq!(
        store
            .add_credits(a.id, 25, "bonus", NOW.plus_ms(1))
            .await
            .unwrap(),
        75
    );
    let ledger = store.ledger(a.id, 10).await.unwrap();
    assert_eq!(ledger.len(), 2);
    assert_eq!(
        (
            ledger[0].delta,
            ledger[0].balance_after,
            ledger[0].reason.as_str()
        ),
        (25, 75, "bonus")
    );
    assert_eq!(store.ledger_sum(a.id).await.unwrap(), 75);
    let missing = store.add_credits(AccountId(999_999), 1, "x", NOW).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );
    let names: Vec<_> = store
        .list_accounts()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, ["acme"]);
    assert!(store
        .account_by_name(&AccountName::parse("nobody").unwrap())
        .await
        .unwrap()
        .is_none());
}

async fn gateway_ids(store: Store) {
    let a = account(&store, "bank", 0).await;
    let basic = gateway(&store, a.id, GatewayMode::Basic).await;
    let e2e = gateway(&store, a.id, GatewayMode::E2e).await;
    let loaded = store.gateway(&basic.id).await.unwrap().unwrap();
    assert_eq!(loaded.mode, GatewayMode::Basic);
    assert_eq!(loaded.public_key, basic.public_key);
    assert_eq!(loaded.private_sealed, Some(vec![9; 72]));
    assert_eq!(
        store
            .gateway(&e2e.id)
            .await
            .unwrap()
            .unwrap()
            .private_sealed,
        None
    );
    let again = GatewayRecord {
        id: basic.id,
        account: a.id,
        mode: GatewayMode::E2e,
        secret_hash: vec![],
        secret_sealed: vec![],
        public_key: basic.public_key,
        private_sealed: None,
        callback_url: None,
        bulk_lookup: false,
        created_at: NOW,
    };
    assert!(matches!(
        store.create_gateway(&again).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    store
        .set_callback_url(&e2e.id, Some("https://example.org/cb"))
        .await
        .unwrap();
    let listed = store.list_gateways(Some(a.id)).await.unwrap();
    assert_eq!(listed.len(), 2);
    let with_cb = listed.iter().find(|g| g.id == e2e.id).unwrap();
    assert_eq!(
        with_cb.callback_url.as_deref(),
        Some("https://example.org/cb")
    );
    store.set_callback_url(&e2e.id, None).await.unwrap();
    assert_eq!(
        store.gateway(&e2e.id).await.unwrap().unwrap().callback_url,
        None
    );
    let unknown = GatewayId::parse("*NOSUCH1").unwrap();
    assert!(matches!(
        store.set_callback_url(&unknown, None).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn identities_and_lookups(store: Store) {
    let key = KeyPair::generate().public;
    let new = NewIdentity {
        id: IdentityId::parse("ABCD1234").unwrap(),
        public_key: key,
        phone_hash: Some(hash_phone("+41 79 123 45 67")),
        email_hash: Some(hash_email("Alice@Example.org")),
        capabilities: Capabilities::parse("text,file").unwrap(),
    };
    store.import_identity(&new, NOW).await.unwrap();
    assert!(matches!(
        store.import_identity(&new, NOW).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    let got = store.identity(&new.id).await.unwrap().unwrap();
    assert_eq!(
        (got.public_key, got.key_version, got.revoked),
        (key, 1, false)
    );
    assert_eq!(got.capabilities.to_string(), "text,file");
    let by_phone = store
        .identity_by_phone_hash(&hash_phone("41791234567"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_phone.id, new.id);
    let by_email = store
        .identity_by_email_hash(&hash_email("alice@example.org"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_email.id, new.id);
    assert!(store
        .identity_by_phone_hash(&hash_phone("4411"))
        .await
        .unwrap()
        .is_none());
    store.revoke_identity(&new.id).await.unwrap();
    assert!(store.identity(&new.id).await.unwrap().unwrap().revoked);
    assert!(store
        .identity_by_phone_hash(&hash_phone("41791234567"))
        .await
        .unwrap()
        .is_none());
    assert_eq!(store.list_identities().await.unwrap().len(), 1);
}

async fn submit_charges_records_and_enqueues_once(store: Store) {
    let a = account(&store, "ops", 5).await;
    let gw = gateway(&store, a.id, GatewayMode::E2e).await;
    let first = submission(&gw, recipient(), &["hdr:abc", "nonce:1"]);
    let id = first.message.message_id;
    assert_eq!(
        store.submit(&first, NOW).await.unwrap(),
        SubmitOutcome::Accepted(id)
    );
    // A retry builds a new message ID, but either key identifies it as the same request.
    let retry = submission(&gw, recipient(), &["hdr:abc"]);
    assert_eq!(
        store.submit(&retry, NOW).await.unwrap(),
        SubmitOutcome::Duplicate(id)
    );
    let retry = submission(&gw, recipient(), &["nonce:1"]);
    assert_eq!(
        store.submit(&retry, NOW).await.unwrap(),
        SubmitOutcome::Duplicate(id)
    );
    assert_eq!(store.account(a.id).await.unwrap().unwrap().balance, 4);
    let queued = store.queued_for(&recipient(), 10).await.unwrap();
    assert_eq!(queued.len(), 1);
    let first = &queued[0].message;
    assert_eq!(first.message_id, id);
    assert_eq!(first.sender, *gw.id.as_identity());
    assert_eq!(
        (first.flags, first.body.as_slice()),
        (1, [0xab; 48].as_slice())
    );
    let ledger = store.ledger(a.id, 10).await.unwrap();
    assert_eq!(ledger[0].delta, -1);
    assert_eq!(
        ledger[0].message_id.as_deref(),
        Some(id.as_bytes().as_slice())
    );
    assert_eq!(store.ledger_sum(a.id).await.unwrap(), 4);
    // Another gateway ID may use the same key text independently.
    let other = gateway(&store, a.id, GatewayMode::E2e).await;
    let theirs = submission(&other, recipient(), &["hdr:abc"]);
    assert!(matches!(
        store.submit(&theirs, NOW).await.unwrap(),
        SubmitOutcome::Accepted(_)
    ));
}

async fn submit_without_credits_changes_nothing(store: Store) {
    let a = account(&store, "broke", 0).await;
    let gw = gateway(&store, a.id, GatewayMode::E2e).await;
    let s = submission(&gw, recipient(), &["k1"]);
    assert_eq!(
        store.submit(&s, NOW).await.unwrap(),
        SubmitOutcome::InsufficientCredits
    );
    assert_eq!(store.queue_depth().await.unwrap(), 0);
    assert!(store.ledger(a.id, 10).await.unwrap().is_empty());
    // The refused request left no key behind: once paid for, the same retry goes through.
    store.add_credits(a.id, 1, "top-up", NOW).await.unwrap();
    let id = s.message.message_id;
    assert_eq!(
        store.submit(&s, NOW).await.unwrap(),
        SubmitOutcome::Accepted(id)
    );
    assert_eq!(store.account(a.id).await.unwrap().unwrap().balance, 0);
}

/// Submits one message per key to `recipient()`, all at once from their own tasks; the
/// outcomes in the keys' order.
async fn submit_at_once(
    store: &Store,
    gw: &GatewayRecord,
    keys: impl Iterator<Item = String>,
) -> Vec<SubmitOutcome> {
    let tasks: Vec<_> = keys
        .map(|key| {
            let (store, s) = (store.clone(), submission(gw, recipient(), &[key.as_str()]));
            tokio::spawn(async move { store.submit(&s, NOW).await.unwrap() })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    outcomes
}

async fn concurrent_debits_never_overdraw(store: Store) {
    let a = account(&store, "race", 100).await;
    let gw = gateway(&store, a.id, GatewayMode::E2e).await;
    let keys = (0..200).map(|i| format!("req-{i}"));
    let mut accepted = 0;
    let mut refused = 0;
    for outcome in submit_at_once(&store, &gw, keys).await {
        match outcome {
            SubmitOutcome::Accepted(_) => accepted += 1,
            SubmitOutcome::InsufficientCredits => refused += 1,
            SubmitOutcome::Duplicate(_) => panic!("distinct keys must not collide"),
        }
    }
    assert_eq!((accepted, refused), (100, 100));
    assert_eq!(store.account(a.id).await.unwrap().unwrap().balance, 0);
    assert_eq!(store.ledger_sum(a.id).await.unwrap(), 0);
    assert_eq!(store.queue_depth().await.unwrap(), 100);
}

async fn concurrent_retries_are_charged_once(store: Store) {
    let a = account(&store, "retry", 10).await;
    let gw = gateway(&store, a.id, GatewayMode::E2e).await;
    let keys = std::iter::repeat_n("same-key".to_owned(), 20);
    let mut ids = Vec::new();
    let mut accepted = 0;
    for outcome in submit_at_once(&store, &gw, keys).await {
        match outcome {
            SubmitOutcome::Accepted(id) => {
                accepted += 1;
                ids.push(id);
            }
            SubmitOutcome::Duplicate(id) => ids.push(id),
            SubmitOutcome::InsufficientCredits => panic!("there are credits"),
        }
    }
    assert_eq!(accepted, 1);
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "every retry answers the first message ID"
    );
    assert_eq!(store.account(a.id).await.unwrap().unwrap().balance, 9);
    assert_eq!(store.queue_depth().await.unwrap(), 1);
}

fn direct(from: &str, to: &str, expires_at: UnixMs) -> NewMessage {
    NewMessage {
        message_id: MessageId::random(),
        sender: IdentityId::parse(from).unwrap(),
        recipient: IdentityId::parse(to).unwrap(),
        flags: 1,
        nonce: Nonce::random(),
        body: vec![0xcd; 40],
        expires_at,
    }
}

/// Puts `id` into the directory (devices belong to identities).
async fn import(store: &Store, id: &str) -> IdentityId {
    let new = NewIdentity {
        id: IdentityId::parse(id).unwrap(),
        public_key: KeyPair::generate().public,
        phone_hash: None,
        email_hash: None,
        capabilities: Capabilities::default_for_device(),
    };
    store.import_identity(&new, NOW).await.unwrap().id
}

/// Registers device `id` of `to` at `at`, with no cap on the identity's devices.
async fn device(store: &Store, to: &IdentityId, id: u64, at: UnixMs) -> Device {
    let registered = store.register_device(to, id, u32::MAX, at).await.unwrap();
    registered.expect("no cap on devices")
}

const UNCAPPED: PendingCaps = PendingCaps {
    per_sender: u32::MAX,
    per_gateway: u32::MAX,
};

/// An identity registers at most the devices its cap allows; a device it has already
/// registered logs in again whatever the cap.
async fn devices_are_capped_per_identity(store: Store) {
    let to = import(&store, "ALICE123").await;
    for id in [1, 2] {
        assert!(store
            .register_device(&to, id, 2, NOW)
            .await
            .unwrap()
            .is_some());
    }
    assert_eq!(store.register_device(&to, 3, 2, NOW).await.unwrap(), None);
    assert!(store
        .register_device(&to, 1, 2, NOW)
        .await
        .unwrap()
        .is_some());
    let bob = import(&store, "BOB45678").await;
    assert!(store
        .register_device(&bob, 3, 2, NOW)
        .await
        .unwrap()
        .is_some());
}

/// Replies and receipts wait for a gateway ID's callback up to a cap per sender and one
/// per gateway ID; a resend is recognised before either; dead entries do not count.
async fn pending_callbacks_are_capped_per_sender_and_per_gateway(store: Store) {
    let gateway = GatewayId::random();
    let entry = |from: &str| CallbackEntry {
        gateway,
        sender: IdentityId::parse(from).unwrap(),
        message_id: MessageId::random(),
        sent_at: 1_700_000_000,
        nonce: Nonce::random(),
        body: vec![1; 40],
        nickname: None,
    };
    let caps = PendingCaps {
        per_sender: 2,
        per_gateway: 3,
    };
    let enqueue = |e: CallbackEntry| {
        let store = store.clone();
        async move { store.enqueue_callback(&e, caps, NOW).await.unwrap() }
    };
    let first = entry("ALICE123");
    assert_eq!(enqueue(first.clone()).await, Enqueued::Stored);
    assert_eq!(enqueue(first.clone()).await, Enqueued::Resent);
    assert_eq!(enqueue(entry("ALICE123")).await, Enqueued::Stored);
    assert_eq!(enqueue(entry("ALICE123")).await, Enqueued::SenderFull);
    assert_eq!(enqueue(entry("BOB45678")).await, Enqueued::Stored);
    assert_eq!(enqueue(entry("CAROL123")).await, Enqueued::GatewayFull);
    assert_eq!(store.callbacks_for(&gateway).await.unwrap().len(), 3);
    // Another gateway ID has room of its own.
    let elsewhere = CallbackEntry {
        gateway: GatewayId::random(),
        ..entry("CAROL123")
    };
    assert_eq!(enqueue(elsewhere).await, Enqueued::Stored);
    // A dead-lettered entry no longer waits: its sender has room again.
    let claimed = store.claim_callbacks(NOW, 10, 10).await.unwrap();
    let of_alice = claimed
        .iter()
        .find(|c| c.entry.gateway == gateway && c.entry.sender == first.sender)
        .unwrap();
    store
        .outbox_failed(Outbox::Callbacks, of_alice.id, "gone", None)
        .await
        .unwrap();
    assert_eq!(enqueue(entry("ALICE123")).await, Enqueued::Stored);
    assert_eq!(enqueue(entry("CAROL123")).await, Enqueued::GatewayFull);
}

/// Entries from many senders at once, grouped by the writer however it likes: each
/// sender gets exactly its cap, a resend in the same burst is recognised, and the outbox
/// holds exactly what was answered stored.
async fn a_burst_of_callback_entries_keeps_each_senders_cap(store: Store) {
    let gateway = GatewayId::random();
    let caps = PendingCaps {
        per_sender: 6,
        per_gateway: 1_000,
    };
    let senders = ["ALICE123", "BOB45678", "CAROL123", "DAVE1234", "ERIN1234"];
    let mut entries = Vec::new();
    for sender in senders {
        for _ in 0..10 {
            entries.push(CallbackEntry {
                gateway,
                sender: IdentityId::parse(sender).unwrap(),
                message_id: MessageId::random(),
                sent_at: 1_700_000_000,
                nonce: Nonce::random(),
                body: vec![2; 40],
                nickname: None,
            });
        }
    }
    entries.push(entries[0].clone());
    let tasks: Vec<_> = entries
        .iter()
        .cloned()
        .map(|e| {
            let store = store.clone();
            tokio::spawn(async move {
                (
                    e.sender,
                    store.enqueue_callback(&e, caps, NOW).await.unwrap(),
                )
            })
        })
        .collect();
    let mut stored: std::collections::HashMap<IdentityId, usize> = Default::default();
    let mut resent = 0;
    for task in tasks {
        match task.await.unwrap() {
            (sender, Enqueued::Stored) => *stored.entry(sender).or_default() += 1,
            (_, Enqueued::Resent) => resent += 1,
            (_, Enqueued::SenderFull) => {}
            (_, other) => panic!("{other:?}"),
        }
    }
    // The first entry and its resend: once one of them is stored, the other is a resend.
    assert!(resent <= 1);
    assert!(stored.values().all(|n| *n == 6), "{stored:?}");
    assert_eq!(store.callbacks_for(&gateway).await.unwrap().len(), 30);
}

/// Status events of messages that have left the queue are purged once past their
/// retention, those of a message still queued stay, and dead-lettered callback entries go
/// after theirs.
async fn history_past_retention_is_purged(store: Store) {
    let to = import(&store, "ALICE123").await;
    let (a, _b) = (
        device(&store, &to, 1, NOW).await,
        device(&store, &to, 2, NOW).await,
    );
    let gone = direct("BOB45678", "ALICE123", NOW.plus_ms(10));
    assert!(store.enqueue_direct(&gone, NOW).await.unwrap());
    let waiting = direct("BOB45678", "ALICE123", NOW.plus_ms(1_000_000));
    assert!(store.enqueue_direct(&waiting, NOW).await.unwrap());
    assert_eq!(
        ack(&store, &a, &waiting, NOW.plus_ms(5)).await,
        (true, false)
    );
    assert_eq!(store.expire_messages(NOW.plus_ms(10)).await.unwrap(), 1);
    let events = |m: &NewMessage| {
        let (store, m) = (store.clone(), m.clone());
        async move {
            store
                .message_events(&m.sender, &m.message_id)
                .await
                .unwrap()
                .len()
        }
    };
    assert_eq!((events(&gone).await, events(&waiting).await), (2, 2));

    let entry = CallbackEntry {
        gateway: GatewayId::random(),
        sender: to,
        message_id: MessageId::random(),
        sent_at: 1_700_000_000,
        nonce: Nonce::random(),
        body: vec![1; 40],
        nickname: None,
    };
    store.enqueue_callback(&entry, UNCAPPED, NOW).await.unwrap();
    let claimed = store.claim_callbacks(NOW, 10, 10).await.unwrap();
    store
        .outbox_failed(Outbox::Callbacks, claimed[0].id, "gone", None)
        .await
        .unwrap();

    assert_eq!(store.purge_history(NOW, NOW).await.unwrap(), (0, 0));
    assert_eq!(
        store
            .purge_history(NOW.plus_ms(100), NOW.plus_ms(1))
            .await
            .unwrap(),
        (2, 1)
    );
    // The queue row stands for `queued`; its delivered event stays while it waits.
    assert_eq!((events(&gone).await, events(&waiting).await), (0, 2));
    assert!(store
        .dead_callbacks(&entry.gateway)
        .await
        .unwrap()
        .is_empty());
}

/// Acks `m` from `device` at `at`: (matched, deleted).
async fn ack(store: &Store, device: &Device, m: &NewMessage, at: UnixMs) -> (bool, bool) {
    let done = store.ack_message(device, &m.sender, &m.message_id, at);
    let AckOutcome { matched, deleted } = done.await.unwrap();
    (matched, deleted)
}

fn ids(messages: &[QueuedMessage]) -> Vec<MessageId> {
    messages.iter().map(|m| m.message.message_id).collect()
}

async fn every_device_receives_and_the_last_ack_deletes(store: Store) {
    let to = import(&store, "ALICE123").await;
    let early = direct("BOB45678", "ALICE123", NOW.plus_ms(1000));
    assert!(store.enqueue_direct(&early, NOW).await.unwrap());
    // The first device inherits what was waiting; a later one starts from its arrival.
    let a = device(&store, &to, 1, NOW).await;
    let b = device(&store, &to, u64::MAX, NOW).await;
    assert_eq!(
        device(&store, &to, 1, NOW.plus_ms(5)).await,
        a,
        "idempotent"
    );
    let late = direct("BOB45678", "ALICE123", NOW.plus_ms(1000));
    assert!(store.enqueue_direct(&late, NOW).await.unwrap());
    assert_eq!(
        ids(&store.pending_for_device(&a, 0, 10, NOW).await.unwrap()),
        [early.message_id, late.message_id]
    );
    assert_eq!(
        ids(&store.pending_for_device(&b, 0, 10, NOW).await.unwrap()),
        [late.message_id]
    );

    let sender = early.sender;
    assert_eq!(
        ack(&store, &a, &early, NOW).await,
        (true, true),
        "b was never responsible"
    );
    assert_eq!(ack(&store, &a, &late, NOW).await, (true, false));
    assert!(store
        .pending_for_device(&a, 0, 10, NOW)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        ids(&store.pending_for_device(&b, 0, 10, NOW).await.unwrap()),
        [late.message_id]
    );
    assert_eq!(
        store
            .message_events(&sender, &late.message_id)
            .await
            .unwrap(),
        [
            (MessageStatus::Queued, NOW),
            (MessageStatus::Delivered, NOW)
        ],
        "delivered to one device, still queued for the other"
    );
    assert_eq!(
        ack(&store, &a, &late, NOW).await,
        (true, false),
        "a repeated ack changes nothing"
    );
    assert_eq!(ack(&store, &b, &late, NOW.plus_ms(1)).await, (true, true));
    assert_eq!(
        store.queue_depth().await.unwrap(),
        0,
        "no box or nonce remains"
    );
    assert_eq!(ack(&store, &b, &late, NOW.plus_ms(2)).await, (false, false));
    let events = store
        .message_events(&sender, &late.message_id)
        .await
        .unwrap();
    assert_eq!(
        events,
        [
            (MessageStatus::Queued, NOW),
            (MessageStatus::Delivered, NOW)
        ]
    );
}

async fn resends_are_queued_once(store: Store) {
    let m = direct("BOB45678", "ALICE123", NOW.plus_ms(1000));
    assert!(store.enqueue_direct(&m, NOW).await.unwrap());
    let resend = NewMessage {
        nonce: Nonce::random(),
        ..m.clone()
    };
    assert!(!store.enqueue_direct(&resend, NOW).await.unwrap());
    assert_eq!(store.queue_depth().await.unwrap(), 1);
    // The same ID from another sender, or to another recipient, is a different message.
    assert!(store
        .enqueue_direct(
            &NewMessage {
                sender: IdentityId::parse("CAROL123").unwrap(),
                ..m.clone()
            },
            NOW
        )
        .await
        .unwrap());
    assert!(store
        .enqueue_direct(
            &NewMessage {
                recipient: IdentityId::parse("CAROL123").unwrap(),
                ..m
            },
            NOW
        )
        .await
        .unwrap());
    assert_eq!(store.writer_counts().directs, 4, "committed by the writer");
}

async fn expired_messages_leave_an_event(store: Store) {
    let old = direct("BOB45678", "ALICE123", NOW.plus_ms(10));
    let fresh = direct("BOB45678", "ALICE123", NOW.plus_ms(1000));
    store.enqueue_direct(&old, NOW).await.unwrap();
    store.enqueue_direct(&fresh, NOW).await.unwrap();
    assert_eq!(store.expire_messages(NOW.plus_ms(9)).await.unwrap(), 0);
    assert_eq!(store.expire_messages(NOW.plus_ms(10)).await.unwrap(), 1);
    assert_eq!(store.queue_depth().await.unwrap(), 1);
    let events = store
        .message_events(&old.sender, &old.message_id)
        .await
        .unwrap();
    assert_eq!(
        events,
        [
            (MessageStatus::Queued, NOW),
            (MessageStatus::Expired, NOW.plus_ms(10))
        ],
        "the queue row's status became an event as the row went"
    );
    // A message still waiting has its `queued` status from its queue row.
    assert_eq!(
        store
            .message_events(&fresh.sender, &fresh.message_id)
            .await
            .unwrap(),
        [(MessageStatus::Queued, NOW)]
    );
}

async fn concurrent_acks_delete_exactly_once(store: Store) {
    let to = import(&store, "ALICE123").await;
    let devices: Vec<_> =
        futures_util::future::join_all((1..=4).map(|d| device(&store, &to, d, NOW))).await;
    for _ in 0..10 {
        let m = direct("BOB45678", "ALICE123", NOW.plus_ms(1000));
        store.enqueue_direct(&m, NOW).await.unwrap();
        let acks = devices.iter().map(|d| {
            let store = store.clone();
            let d = *d;
            tokio::spawn(async move {
                store
                    .ack_message(&d, &m.sender, &m.message_id, NOW)
                    .await
                    .unwrap()
            })
        });
        let outcomes: Vec<AckOutcome> = futures_util::future::join_all(acks)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            outcomes.iter().filter(|o| o.deleted).count(),
            1,
            "{outcomes:?}"
        );
    }
    assert_eq!(store.queue_depth().await.unwrap(), 0);
}

/// A claim can be renewed by its holder as long as nobody claimed the entry since; once
/// another worker has claimed it after the lease ran out, the first one cannot.
async fn a_callback_claim_is_renewed_only_while_it_is_held(store: Store) {
    let entry = CallbackEntry {
        gateway: GatewayId::random(),
        sender: IdentityId::parse("ALICE123").unwrap(),
        message_id: MessageId::random(),
        sent_at: 1_700_000_000,
        nonce: Nonce::random(),
        body: vec![1; 40],
        nickname: None,
    };
    assert_eq!(
        store.enqueue_callback(&entry, UNCAPPED, NOW).await.unwrap(),
        Enqueued::Stored
    );
    let first = store.claim_callbacks(NOW, 10, 5).await.unwrap();
    assert_eq!(first.len(), 1);
    let first = &first[0];
    assert_eq!(first.lease_until, NOW.plus_ms(10));
    assert!(store
        .renew_lease(
            Outbox::Callbacks,
            first.id,
            NOW.plus_ms(10),
            NOW.plus_ms(100)
        )
        .await
        .unwrap());
    assert!(
        store
            .claim_callbacks(NOW.plus_ms(50), 10, 5)
            .await
            .unwrap()
            .is_empty(),
        "renewed: not due"
    );
    // The renewed lease runs out; another worker claims the entry.
    let second = store
        .claim_callbacks(NOW.plus_ms(100), 10, 5)
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    assert!(
        !store
            .renew_lease(
                Outbox::Callbacks,
                first.id,
                NOW.plus_ms(100),
                NOW.plus_ms(1_000)
            )
            .await
            .unwrap(),
        "the first holder lost it"
    );
    assert!(store
        .renew_lease(
            Outbox::Callbacks,
            second[0].id,
            second[0].lease_until,
            NOW.plus_ms(1_000)
        )
        .await
        .unwrap());
}

/// Many acks at once (three devices, repeats, an unknown message) go through the
/// multi-row path and end exactly as one-by-one would: each message deleted once, by
/// its last ack, with one `delivered` event.
async fn a_burst_of_acks_is_committed_as_one_group(store: Store) {
    let to = import(&store, "ALICE123").await;
    let mut devices = Vec::new();
    for d in 1..=3 {
        devices.push(device(&store, &to, d, NOW).await);
    }
    let mut messages = Vec::new();
    for _ in 0..20 {
        let m = direct("BOB45678", "ALICE123", NOW.plus_ms(1000));
        assert!(store.enqueue_direct(&m, NOW).await.unwrap());
        messages.push(m);
    }
    let unknown = direct("BOB45678", "ALICE123", NOW.plus_ms(1000));
    let mut acks = Vec::new();
    for m in messages.iter().chain([&unknown]) {
        // The first device acks twice.
        for d in devices.iter().chain([&devices[0]]) {
            let (store, d, sender, id) = (store.clone(), *d, m.sender, m.message_id);
            acks.push(tokio::spawn(async move {
                (
                    id,
                    store
                        .ack_message(&d, &sender, &id, NOW.plus_ms(5))
                        .await
                        .unwrap(),
                )
            }));
        }
    }
    let outcomes: Vec<(MessageId, AckOutcome)> = futures_util::future::join_all(acks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    for m in &messages {
        let of_m: Vec<&AckOutcome> = outcomes
            .iter()
            .filter(|(id, _)| *id == m.message_id)
            .map(|(_, o)| o)
            .collect();
        assert_eq!(of_m.iter().filter(|o| o.deleted).count(), 1, "{of_m:?}");
        let delivered = store
            .message_events(&m.sender, &m.message_id)
            .await
            .unwrap()
            .into_iter()
            .filter(|(event, _)| *event == MessageStatus::Delivered)
            .count();
        assert_eq!(delivered, 1);
    }
    assert!(outcomes
        .iter()
        .filter(|(id, _)| *id == unknown.message_id)
        .all(|(_, o)| !o.matched && !o.deleted));
    assert_eq!(store.queue_depth().await.unwrap(), 0);
    // Nothing needed the one-by-one replay, and the acks shared commits.
    let counts = store.writer_counts();
    assert_eq!(counts.replays, 0, "{counts:?}");
    assert_eq!(counts.acks, 84);
    assert!(counts.commits < 84, "{counts:?}");
    // What is left of the acks does not hold up a later message.
    let later = direct("BOB45678", "ALICE123", NOW.plus_ms(1000));
    store.enqueue_direct(&later, NOW).await.unwrap();
    for d in &devices {
        store
            .ack_message(d, &later.sender, &later.message_id, NOW.plus_ms(6))
            .await
            .unwrap();
    }
    assert_eq!(store.queue_depth().await.unwrap(), 0);
}

async fn blobs_go_when_every_device_is_done_unless_persistent(store: Store) {
    let a = account(&store, "files", 10).await;
    let to = import(&store, "ALICE123").await;
    let phone = device(&store, &to, 1, NOW).await;
    let laptop = device(&store, &to, 2, NOW).await;
    let blob = |persist| NewBlob {
        id: tocsin_sdk::protocol::BlobId::random(),
        account: a.id,
        size: 3,
        persist,
        expires_at: NOW.plus_ms(100),
    };
    let once = blob(false);
    let kept = blob(true);
    let charge = Charge {
        account: a.id,
        amount: Credits::new(1),
        reason: LedgerReason::UploadBlob,
    };
    for blob in [&once, &kept] {
        // The upload is charged before its bytes arrive, then recorded.
        assert!(store.charge(&charge, NOW).await.unwrap().is_some());
        store.record_blob(blob, NOW).await.unwrap();
    }
    assert!(!store.mark_blob_done(&once.id, &phone, NOW).await.unwrap());
    assert!(store.blob(&once.id).await.unwrap().is_some());
    assert!(
        store.mark_blob_done(&once.id, &laptop, NOW).await.unwrap(),
        "the last device removes it"
    );
    assert!(store.blob(&once.id).await.unwrap().is_none());
    assert!(!store.mark_blob_done(&kept.id, &phone, NOW).await.unwrap());
    assert!(!store.mark_blob_done(&kept.id, &laptop, NOW).await.unwrap());
    assert!(store.blob(&kept.id).await.unwrap().is_some());
    assert_eq!(store.expire_blobs(NOW.plus_ms(99)).await.unwrap(), []);
    assert_eq!(
        store.expire_blobs(NOW.plus_ms(100)).await.unwrap(),
        [kept.id]
    );
    assert_eq!(
        store.account(a.id).await.unwrap().unwrap().balance,
        8,
        "one credit per blob"
    );
}

/// Queues a message, and returns it with a new submission (other keys) that reuses its
/// message ID for the same recipient, which sends a group down its one-by-one path.
async fn queued_and_clashing(store: &Store, gw: &GatewayRecord) -> (Submission, Submission) {
    let first = submission(gw, recipient(), &["k-first"]);
    assert!(matches!(
        store.submit(&first, NOW).await.unwrap(),
        SubmitOutcome::Accepted(_)
    ));
    let mut clash = submission(gw, recipient(), &["k-clash"]);
    clash.message.message_id = first.message.message_id;
    (first, clash)
}

async fn a_group_that_meets_an_existing_message_falls_back_and_charges_nothing_extra(store: Store) {
    let a = account(&store, "fallback", 10).await;
    let gw = gateway(&store, a.id, GatewayMode::E2e).await;
    // The same (recipient, sender, message ID) is already queued, under other keys: the
    // multi-row insert finds it, the group is replayed one by one, and the result is a
    // duplicate that costs nothing; the other submissions of the group go through.
    let (first, clash) = queued_and_clashing(&store, &gw).await;
    let others: Vec<Submission> = (0..5)
        .map(|i| submission(&gw, recipient(), &[format!("k-{i}").as_str()]))
        .collect();
    let mut tasks = vec![tokio::spawn({
        let store = store.clone();
        async move { store.submit(&clash, NOW).await.unwrap() }
    })];
    for s in others {
        let store = store.clone();
        tasks.push(tokio::spawn(
            async move { store.submit(&s, NOW).await.unwrap() },
        ));
    }
    let outcomes: Vec<SubmitOutcome> = futures_util::future::join_all(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        outcomes[0],
        SubmitOutcome::Duplicate(first.message.message_id)
    );
    assert!(
        outcomes[1..]
            .iter()
            .all(|o| matches!(o, SubmitOutcome::Accepted(_))),
        "{outcomes:?}"
    );
    assert_eq!(store.account(a.id).await.unwrap().unwrap().balance, 4);
    assert_eq!(store.ledger_sum(a.id).await.unwrap(), 4);
    assert_eq!(store.queue_depth().await.unwrap(), 6);
    assert!(
        store.writer_counts().replays >= 1,
        "the fast path must have given up"
    );
}

/// A group that falls back to one-by-one still recognises a key claimed earlier in the same
/// group (not yet committed, so not yet in the store's memory or table).
async fn a_group_replayed_one_by_one_still_sees_its_own_keys(store: Store) {
    let a = account(&store, "replay-keys", 10).await;
    let gw = gateway(&store, a.id, GatewayMode::E2e).await;
    let (first, clash) = queued_and_clashing(&store, &gw).await;
    let original = submission(&gw, recipient(), &["shared"]);
    let retry = submission(&gw, recipient(), &["shared"]);
    // Submitted together, so they usually share a group; the outcome is the same if not.
    let outcomes = futures_util::future::join_all(
        [clash, original.clone(), retry]
            .iter()
            .map(|s| store.submit(s, NOW)),
    )
    .await;
    let outcomes: Vec<SubmitOutcome> = outcomes.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        outcomes,
        [
            SubmitOutcome::Duplicate(first.message.message_id),
            SubmitOutcome::Accepted(original.message.message_id),
            SubmitOutcome::Duplicate(original.message.message_id),
        ]
    );
    assert_eq!(store.account(a.id).await.unwrap().unwrap().balance, 8);
    assert_eq!(store.ledger_sum(a.id).await.unwrap(), 8);
    assert_eq!(store.queue_depth().await.unwrap(), 2);
}

/// A bulk read of identities returns those that exist (revoked ones flagged), skips
/// unknown IDs, and spans several queries when asked for many.
async fn many_identities_are_read_at_once(store: Store) {
    let mut wanted = Vec::new();
    for i in 0..1_200 {
        let id = format!("B{i:07}");
        wanted.push(import(&store, &id).await);
    }
    store.revoke_identity(&wanted[7]).await.unwrap();
    wanted.push(IdentityId::parse("NOBODY00").unwrap());
    let found = store.identities(&wanted).await.unwrap();
    assert_eq!(found.len(), 1_200);
    let revoked: Vec<IdentityId> = found.iter().filter(|r| r.revoked).map(|r| r.id).collect();
    assert_eq!(revoked, [wanted[7]]);
    let one = store.identity(&wanted[500]).await.unwrap().unwrap();
    let same = found.iter().find(|r| r.id == wanted[500]).unwrap();
    assert_eq!(
        (same.public_key, same.key_version),
        (one.public_key, one.key_version)
    );
    assert!(store.identities(&[]).await.unwrap().is_empty());
}
