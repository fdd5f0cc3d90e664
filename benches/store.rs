//! Micro-benchmarks of the paid enqueue on SQLite (WAL, `synchronous=FULL`, so every
//! commit is an fsync): one submission per commit, and groups of concurrent submissions
//! that the store's writer commits together.
//!
//! ```sh
//! cargo bench --bench store
//! ```
//!
//! The database lives in a temporary directory on the same disk as the build (`TMPDIR`
//! moves it); the figure includes that disk's fsync.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tocsin::domain::{MessageIds, UnixMs};
use tocsin::store::{
    AccountId, Charge, GatewayMode, GatewayRecord, NewMessage, Store, Submission, SubmitOutcome,
};
use tocsin_sdk::protocol::{GatewayId, IdentityId, KeyPair, Nonce};

const NOW: UnixMs = UnixMs::new(1_700_000_000_000);

struct Bench {
    runtime: tokio::runtime::Runtime,
    store: Store,
    gateway: GatewayRecord,
    recipient: IdentityId,
    /// The server's generator, so the queue index sees the IDs it sees in production.
    ids: MessageIds,
    _dir: tempfile::TempDir,
}

fn open() -> Bench {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let (store, gateway) = runtime.block_on(async {
        let store = Store::open(&url, 4).await.expect("open the store");
        store.migrate().await.expect("migrate");
        let name = tocsin::domain::AccountName::parse("bench").expect("account name");
        let account = store.create_account(&name, NOW).await.expect("account");
        store
            .add_credits(account.id, i64::MAX / 2, "bench", NOW)
            .await
            .expect("credits");
        let gateway = store
            .create_gateway(&new_gateway(account.id))
            .await
            .expect("gateway");
        (store, gateway)
    });
    Bench {
        runtime,
        store,
        gateway,
        recipient: IdentityId::parse("ECHOECHO").expect("identity ID"),
        ids: MessageIds::new(0),
        _dir: dir,
    }
}

fn new_gateway(account: AccountId) -> GatewayRecord {
    GatewayRecord {
        id: GatewayId::random(),
        account,
        mode: GatewayMode::E2e,
        secret_hash: vec![7; 32],
        secret_sealed: vec![8; 56],
        public_key: KeyPair::generate().public,
        private_sealed: None,
        callback_url: None,
        bulk_lookup: false,
        created_at: NOW,
    }
}

/// A send_e2e-sized submission with its own (recipient, nonce) idempotency key.
fn submission(b: &Bench) -> Submission {
    let nonce = Nonce::random();
    Submission {
        gateway: b.gateway.id,
        charge: Charge {
            account: b.gateway.account,
            amount: tocsin::domain::Credits::new(1),
            reason: tocsin::domain::LedgerReason::SendE2e,
        },
        idempotency_keys: vec![format!("{}:{}", b.recipient, hex::encode(nonce.as_bytes()))],
        message: NewMessage {
            message_id: b.ids.next(NOW),
            sender: *b.gateway.id.as_identity(),
            recipient: b.recipient,
            flags: 1,
            nonce,
            body: vec![0xab; 116],
            expires_at: NOW.plus_ms(14 * 86_400_000),
        },
    }
}

async fn submit(store: &Store, s: Submission) {
    match store.submit(&s, NOW).await {
        Ok(SubmitOutcome::Accepted(_)) => {}
        other => panic!("submission not accepted: {other:?}"),
    }
}

fn enqueue(c: &mut Criterion) {
    let b = open();
    let mut group = c.benchmark_group("enqueue_sqlite");
    group.measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Elements(1));
    group.bench_function("one_by_one", |bench| {
        bench.iter_custom(|iters| {
            let batch: Vec<Submission> = (0..iters).map(|_| submission(&b)).collect();
            b.runtime.block_on(async {
                let started = Instant::now();
                for s in batch {
                    submit(&b.store, s).await;
                }
                started.elapsed()
            })
        });
    });
    for size in [64u64, 512] {
        group.throughput(Throughput::Elements(size));
        group.bench_with_input(BenchmarkId::new("grouped", size), &size, |bench, &size| {
            bench.iter_custom(|iters| {
                let batches: Vec<Vec<Submission>> = (0..iters)
                    .map(|_| (0..size).map(|_| submission(&b)).collect())
                    .collect();
                b.runtime.block_on(async {
                    let started = Instant::now();
                    for batch in batches {
                        let mut tasks = tokio::task::JoinSet::new();
                        for s in batch {
                            let store = b.store.clone();
                            tasks.spawn(async move { submit(&store, s).await });
                        }
                        while let Some(done) = tasks.join_next().await {
                            done.expect("submission task");
                        }
                    }
                    started.elapsed()
                })
            });
        });
    }
    group.finish();
}

criterion_group!(benches, enqueue);
criterion_main!(benches);
