//! A full disk under the real server: its data directory is a small tmpfs of its own
//! (see `harness::OnTmpfs`), filled up from outside while it serves.
//!
//! Sends answered 200 first; then, with the tmpfs full, the writes that need more room
//! fail, every send is answered 503 with `Retry-After` and a one-line reason (never 500),
//! and `/health` answers 503 naming the trouble. Once the space is freed the server
//! recovers by itself (no send needed): `/health` answers 200 `ok`, sends are answered
//! 200 again, and a key refused while the disk was full is taken afresh. In the end every
//! message answered 200 is there, charged once, and the only ones charged; the ledger
//! sums to the balance; and the server never logged the wedged transaction of old
//! ("non-zero transaction depth").

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use tocsin_sdk::protocol::MessageId;

use super::harness::{Api, Book, Env, Ledger, LedgerRow, OnTmpfs, ACCOUNT, PATIENCE};
use crate::helpers::wait::until_within;
use crate::helpers::Engine;

/// Credits the account starts with: more than the run spends.
const INITIAL: u32 = 1_000;

/// Size of the server's tmpfs: the database and the log of the first sends fit, with
/// room to spare.
const TMPFS_MIB: u32 = 4;

/// Sends answered 200 before the disk is filled, and again after it is freed.
const BEFORE: usize = 5;
const AFTER: usize = 5;

/// Most sends made on the full disk until one is refused. The first usually is: the
/// write-ahead log must grow for every commit until it is checkpointed.
const MOST_WHILE_FULL: usize = 100;

/// Sends made after the first refusal, while the disk is still full: each is refused too.
const REFUSED_MORE: usize = 3;

/// Letters added to each text, so each commit takes a few pages of the log.
const PADDING: usize = 3_000;

/// What the filler writes at a time.
const CHUNK: usize = 64 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_sends_and_the_store_recovers_once_freed_on_sqlite_only() {
    Engine::require_sqlite("a full disk under the server's database (a tmpfs holding its files)");
    let env = Env::new().await;
    let gateway = env.gateway(INITIAL).await;
    let recipient = env.identity("ALICE123").await;
    let disk = env.serve_on_tmpfs(TMPFS_MIB).await;
    let api = Api::new(disk.server.http, &gateway);
    let ops = Ops::new(&disk);
    let text = |key: &str| format!("alert {key} {}", "x".repeat(PADDING));
    let mut book = Book::default();

    for n in 0..BEFORE {
        let key = format!("before-{n}");
        let id = accepted(&disk, api.post_send(&recipient, &key, &text(&key)).await).await;
        book.resolve(&key, id);
    }
    assert_eq!(ops.health().await, (200, "ok".to_owned()));

    let filler = disk.path("filler");
    let filled = fill(&filler);
    println!("the tmpfs is full after a filler of {filled} bytes");

    // Sends until one is refused: each is either committed (answered 200) or refused
    // with 503, nothing else.
    let mut refused = Vec::new();
    for n in 0..MOST_WHILE_FULL {
        let key = format!("full-{n}");
        match answer(&disk, api.post_send(&recipient, &key, &text(&key)).await).await {
            Answer::Accepted(id) => book.resolve(&key, id),
            Answer::Unavailable => {
                refused.push(key);
                break;
            }
        }
    }
    assert!(
        !refused.is_empty(),
        "{MOST_WHILE_FULL} sends on a full disk were all answered 200:\n{}",
        disk.server.log_tail()
    );
    println!(
        "the first send refused on the full disk came after {} accepted there",
        book.resolved.len() - BEFORE
    );
    // A store that wedged after its first failure would answer these otherwise.
    for n in 0..REFUSED_MORE {
        let key = format!("still-full-{n}");
        match answer(&disk, api.post_send(&recipient, &key, &text(&key)).await).await {
            Answer::Unavailable => refused.push(key),
            Answer::Accepted(id) => panic!("{key} was answered {id} on a full disk"),
        }
    }
    let (status, reason) = ops.health().await;
    assert_eq!(status, 503, "/health on a full disk: {reason}");
    assert!(
        reason.starts_with("store degraded: ") && reason.contains("full"),
        "/health names the full disk: {reason:?}"
    );
    assert_eq!(
        ops.store_health().await,
        1,
        "tocsin_store_health is degraded"
    );

    // Freed: the server finds out by itself.
    std::fs::remove_file(&filler).unwrap();
    until_within(
        PATIENCE,
        "/health answers 200 ok once the disk has room",
        || async { ops.health().await == (200, "ok".to_owned()) },
    )
    .await;
    assert_eq!(ops.store_health().await, 0, "tocsin_store_health is ok");

    // A key refused on the full disk was not kept: it is taken afresh, like a new one.
    let retried = refused[0].clone();
    let mut keys = vec![retried];
    keys.extend((0..AFTER).map(|n| format!("after-{n}")));
    for key in &keys {
        let id = accepted(&disk, api.post_send(&recipient, key, &text(key)).await).await;
        book.resolve(key, id);
    }

    let ids = book.ids();
    for id in &ids {
        assert!(
            api.state(id).await.is_some(),
            "{id}, answered 200 for {:?}, is missing",
            book.key_of(id)
        );
    }
    let ledger = ledger(&disk).await;
    assert_eq!(
        ledger.charged, ids,
        "the messages answered 200 are the ones charged"
    );
    let spent = i64::try_from(ids.len()).unwrap();
    assert_eq!(ledger.balance, i64::from(INITIAL) - spent);
    assert_eq!(api.credits().await, ledger.balance);

    // A full disk is a passing trouble: warnings, and no error (a failed request, a
    // commit of unknown outcome, a failed sync) is ever logged.
    let notable = disk.server.notable_lines();
    let tail = disk.server.log_tail();
    let wedged: Vec<&str> = notable
        .iter()
        .map(String::as_str)
        .chain(tail.lines())
        .filter(|l| l.contains("non-zero transaction depth"))
        .collect();
    assert!(wedged.is_empty(), "the writer wedged: {wedged:#?}");
    let errors: Vec<&String> = notable
        .iter()
        .filter(|l| !l.contains(r#""level":"WARN""#))
        .collect();
    assert!(errors.is_empty(), "errors logged: {errors:#?}");
    println!(
        "{} sends answered 200, {} refused while the disk was full; {} warnings or errors \
         logged",
        ids.len(),
        refused.len(),
        notable.len()
    );
}

/// Writes `path` until the filesystem has no room left; returns the bytes written.
fn fill(path: &std::path::Path) -> u64 {
    let mut file = std::fs::File::create_new(path).unwrap();
    let chunk = vec![0xa5u8; CHUNK];
    let mut written = 0u64;
    // More chunks than the whole tmpfs holds.
    for _ in 0..=(TMPFS_MIB as usize * 1024 * 1024 / CHUNK) {
        match file.write(&chunk) {
            Ok(n) => written += n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => return written,
            Err(e) => panic!("filling the tmpfs: {e}"),
        }
    }
    panic!("the tmpfs of {TMPFS_MIB} MiB took {written} bytes without filling up");
}

/// How a send on a full disk may be answered.
enum Answer {
    Accepted(MessageId),
    /// 503 with `Retry-After` and a one-line reason.
    Unavailable,
}

/// Checks that a send was answered either 200 with a message ID or 503 as a store that
/// cannot write for now must answer.
async fn answer(disk: &OnTmpfs<'_>, response: reqwest::Result<reqwest::Response>) -> Answer {
    let response = response
        .unwrap_or_else(|e| panic!("a send got no answer: {e}\n{}", disk.server.log_tail()));
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("Retry-After")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.text().await.unwrap();
    match status {
        200 => Answer::Accepted(
            MessageId::parse(body.trim()).unwrap_or_else(|_| panic!("not a message ID: {body:?}")),
        ),
        503 => {
            let after = retry_after.unwrap_or_else(|| panic!("503 without Retry-After: {body}"));
            assert!(
                after.parse::<u64>().is_ok_and(|s| s > 0),
                "Retry-After is a number of seconds: {after:?}"
            );
            assert!(
                !body.trim().is_empty() && !body.contains('\n'),
                "a 503 gives a one-line reason: {body:?}"
            );
            Answer::Unavailable
        }
        _ => panic!(
            "a send was answered {status}: {body}\n{}",
            disk.server.log_tail()
        ),
    }
}

/// A send that must be answered 200.
async fn accepted(disk: &OnTmpfs<'_>, response: reqwest::Result<reqwest::Response>) -> MessageId {
    match answer(disk, response).await {
        Answer::Accepted(id) => id,
        Answer::Unavailable => panic!(
            "a send was refused with room on the disk:\n{}",
            disk.server.log_tail()
        ),
    }
}

/// The server's health and metrics endpoints.
struct Ops {
    http: SocketAddr,
    metrics: SocketAddr,
    client: reqwest::Client,
}

impl Ops {
    fn new(disk: &OnTmpfs<'_>) -> Self {
        Self {
            http: disk.server.http,
            metrics: disk.server.metrics,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
        }
    }

    /// `GET /health`: its status and body.
    async fn health(&self) -> (u16, String) {
        self.get(format!("http://{}/health", self.http)).await
    }

    /// The `tocsin_store_health` gauge: 0 ok, 1 degraded, 2 failed.
    async fn store_health(&self) -> i64 {
        let (status, text) = self.get(format!("http://{}/metrics", self.metrics)).await;
        assert_eq!(status, 200, "/metrics: {text}");
        text.lines()
            .find_map(|l| l.strip_prefix("tocsin_store_health "))
            .unwrap_or_else(|| panic!("no tocsin_store_health in /metrics:\n{text}"))
            .trim()
            .parse()
            .unwrap()
    }

    /// `GET url`: its status and body.
    async fn get(&self, url: String) -> (u16, String) {
        let response = self.client.get(url).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }
}

/// The account's whole ledger as `tocsin admin account show` prints it, read in the
/// server's namespace, after checking its invariants.
async fn ledger(disk: &OnTmpfs<'_>) -> Ledger {
    let shown = disk
        .admin(&["account", "show", ACCOUNT, "--ledger", "100000"])
        .await;
    let mut lines = shown.lines();
    let balance: i64 = lines
        .find_map(|l| l.strip_prefix("balance: "))
        .unwrap_or_else(|| panic!("no balance in {shown}"))
        .parse()
        .unwrap();
    lines
        .find(|l| l.starts_with("ledger"))
        .unwrap_or_else(|| panic!("no ledger in {shown}"));
    // "  #5       -1 -> 996      send_simple      0abff9fe5e008000"
    // "  #1    +1000 -> 1000     initial credits  "
    let rows: Vec<LedgerRow> = lines
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            assert!(
                words.len() >= 5 && words[0].starts_with('#') && words[2] == "->",
                "a ledger row: {line:?}"
            );
            let (reason, message_id) = match MessageId::parse(words[words.len() - 1]) {
                Ok(id) => (&words[4..words.len() - 1], Some(id)),
                Err(_) => (&words[4..], None),
            };
            LedgerRow {
                delta: words[1].parse().unwrap(),
                reason: reason.join(" "),
                message_id,
            }
        })
        .collect();
    Ledger::check(&rows, balance, i64::from(INITIAL))
}
