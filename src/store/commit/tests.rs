//! Durability that fails closed: a failed sync fails the store for good; a trouble that
//! may pass refuses writes for now, and they succeed again once it has passed.

use std::time::Duration;

use sqlx::Executor;

use crate::domain::UnixMs;
use crate::store::conformance::{
    account, gateway, hold_write_lock, recipient, sqlite_store, submission,
};
use crate::store::engine::{Connected, Durability};
use crate::store::{GatewayMode, Health, Store, StoreError, StoreOptions, SubmitOutcome};

const NOW: UnixMs = UnixMs::new(1_700_000_000_000);

/// Waits for `done`, checking between yields; the bound only stops a test that would
/// otherwise hang.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let waited = tokio::time::timeout(Duration::from_secs(60), async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "never {what}");
}

/// The order that makes a deferred sync durable, and what a failed one does: a commit is
/// visible in the file at once, but its caller is answered only after the sync; a sync
/// that fails is an error for its caller, never a success, and the store takes no write
/// after it: not even a retry of the same request, whose key the writer had already seen.
#[tokio::test]
async fn a_failed_sync_fails_its_callers_and_the_store_for_good() {
    let (opened, dir) = sqlite_store().await;
    let a = account(&opened, "sync", 10).await;
    let gw = gateway(&opened, a.id, GatewayMode::E2e).await;
    // A "log" that holds its sync until the test lets it go, and then cannot be synced:
    // a FIFO opens only once a writer opens it too, and fdatasync refuses it.
    let fifo = dir.path().join("log.fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.unwrap().success(), "mkfifo");
    let store = Store::assemble(Connected {
        write: opened.write.clone(),
        read: opened.read.clone(),
        backend: opened.backend,
        durability: Durability::Deferred(fifo.clone()),
        unsafe_durability: None,
    });
    let first = submission(&gw, recipient(), &["synced-or-not"]);
    let sending = tokio::spawn({
        let (store, first) = (store.clone(), first.clone());
        async move { store.submit(&first, NOW).await }
    });
    let committed = tokio::time::timeout(Duration::from_secs(60), async {
        while store.queue_depth().await.unwrap() == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    let answered_early = sending.is_finished();
    // Opened for reading and writing, a FIFO never blocks, and it lets the syncer's open
    // go on; nothing between here and the blocked open can panic.
    let _writer_end = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .unwrap();
    let answer = sending.await.unwrap();
    assert!(committed.is_ok(), "the group was never committed");
    assert!(!answered_early, "answered before its sync");
    match answer {
        Err(StoreError::Failed(reason)) => assert!(reason.contains("synced"), "{reason}"),
        other => panic!("a failed sync must fail the caller, got {other:?}"),
    }
    match store.health() {
        Health::Failed(reason) => assert!(reason.contains("synced"), "{reason}"),
        other => panic!("the store must have failed, got {other:?}"),
    }
    let retry = store.submit(&first, NOW).await;
    assert!(matches!(retry, Err(StoreError::Failed(_))), "{retry:?}");
    let other = store
        .submit(&submission(&gw, recipient(), &["after"]), NOW)
        .await;
    assert!(matches!(other, Err(StoreError::Failed(_))), "{other:?}");
}

/// Another process holding SQLite's write lock past the busy timeout: the group is
/// rolled back whole and its caller told to retry, the store is degraded (and says why)
/// meanwhile, and once the lock is gone the writer's own probe finds writes working again
/// and sends succeed, without a restart. Nothing is charged for the refused send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_too_long_refuses_writes_for_now_and_they_succeed_once_it_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let options = StoreOptions {
        max_connections: 2,
        busy_timeout: Duration::from_millis(50),
        ..StoreOptions::default()
    };
    let store = Store::open_with(&url, options).await.unwrap();
    store.migrate().await.unwrap();
    let a = account(&store, "locked", 10).await;
    let gw = gateway(&store, a.id, GatewayMode::E2e).await;
    let mut other =
        hold_write_lock(dir.path(), "UPDATE accounts SET created_at = created_at").await;
    let refused = store
        .submit(&submission(&gw, recipient(), &["refused"]), NOW)
        .await;
    assert!(
        matches!(refused, Err(StoreError::Unavailable(_))),
        "{refused:?}"
    );
    match store.health() {
        Health::Degraded(reason) => assert!(reason.contains("locked"), "{reason}"),
        other => panic!("the store must be degraded, got {other:?}"),
    }
    other.execute("COMMIT").await.unwrap();
    until("recovered", || store.health() == Health::Ok).await;
    let sent = submission(&gw, recipient(), &["accepted"]);
    assert_eq!(
        store.submit(&sent, NOW).await.unwrap(),
        SubmitOutcome::Accepted(sent.message.message_id)
    );
    assert_eq!(store.account(a.id).await.unwrap().unwrap().balance, 9);
    assert_eq!(store.ledger_sum(a.id).await.unwrap(), 9);
}

/// A PostgreSQL server that does not make commits durable is refused at start, with the
/// setting named, unless the operator allows it; then the store says so.
#[tokio::test]
#[cfg_attr(not(pg_tests), ignore = "TOCSIN_TEST_POSTGRES_URL is not set")]
async fn a_postgres_database_without_durable_commits_is_refused_unless_allowed() {
    let url = crate::store::testing::fresh_postgres_database()
        .await
        .expect("TOCSIN_TEST_POSTGRES_URL is set");
    let name = url.rsplit('/').next().unwrap().split('?').next().unwrap();
    let store = Store::open(&url, 1).await.unwrap();
    assert_eq!(store.unsafe_durability(), None);
    store
        .write
        .execute(sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE {name} SET synchronous_commit = off"
        )))
        .await
        .unwrap();
    store.close().await;
    match Store::open(&url, 1).await {
        Err(e @ StoreError::UnsafeDurability(_)) => {
            let said = e.to_string();
            assert!(said.contains("synchronous_commit = off"), "{said}");
            assert!(said.contains("allow_unsafe_durability"), "{said}");
        }
        other => panic!("must be refused, got {other:?}"),
    }
    let options = StoreOptions {
        max_connections: 1,
        allow_unsafe_durability: true,
        ..StoreOptions::default()
    };
    let allowed = Store::open_with(&url, options).await.unwrap();
    assert_eq!(
        allowed.unsafe_durability(),
        Some("synchronous_commit = off")
    );
}
