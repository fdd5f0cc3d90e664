//! The real `tocsin` binary as a process the tests can kill: its data (a temporary
//! directory, and on PostgreSQL a fresh database, as the run's engine asks), the admin
//! CLI that seeds it, the server started on that data (or on a copy of it on a small
//! tmpfs of the server's own), the database read while no server runs, a relay that
//! gives a device one address across restarts, and a seeded random source.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use sqlx::Row;
use tocsin_sdk::protocol::{GatewayId, IdentityId, KeyPair, MessageId, PublicKey};

use crate::helpers::wait::until_within;
use crate::helpers::{install_tls_provider, urlencode, without_tocsin_vars, Engine};

/// Longest wait for anything a test expects; only a hung test ever reaches it. Longer
/// than [`crate::helpers::wait::PATIENCE`]: a wait here may span a whole burst, or a
/// server process starting on the data a kill left.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Name of the account every scenario charges.
pub const ACCOUNT: &str = "acme";

/// Log lines of a server kept for a failure message.
const LOG_LINES: usize = 200;

/// Locks a mutex, ignoring poisoning: a panic elsewhere already fails the test, and the
/// data is still worth printing.
pub fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One server's data: kept across every kill and restart of a scenario.
pub struct Env {
    engine: Engine,
    dir: tempfile::TempDir,
    /// The PostgreSQL database; `None` on SQLite (a file under `dir`).
    url: Option<String>,
    /// Settings of this data beyond the harness's own (`TOCSIN__…`), for every command.
    settings: Vec<(String, String)>,
}

impl Env {
    /// Fresh data on the run's engine.
    pub async fn new() -> Self {
        install_tls_provider();
        let engine = Engine::selected();
        Self {
            engine,
            dir: tempfile::tempdir().unwrap(),
            url: engine.fresh_storage_url().await,
            settings: Vec::new(),
        }
    }

    /// Fresh data whose every command also gets `settings`.
    pub async fn with(settings: &[(&str, &str)]) -> Self {
        let mut env = Self::new().await;
        env.settings = settings
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        env
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The binary with this data as its whole configuration.
    fn command(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tocsin"));
        self.configure(&mut cmd, self.dir.path());
        cmd
    }

    /// Gives `cmd` this data, found in `data_dir`, as its whole configuration: no
    /// `TOCSIN_*` variable of the test's own environment reaches it.
    fn configure(&self, cmd: &mut std::process::Command, data_dir: &Path) {
        without_tocsin_vars(cmd)
            .env_remove("RUST_LOG")
            .env("TOCSIN__STORAGE__DATA_DIR", data_dir)
            .env("TOCSIN__SERVER__HTTP_ADDR", "127.0.0.1:0")
            .env("TOCSIN__SERVER__METRICS_ADDR", "127.0.0.1:0")
            .env("TOCSIN__SERVER__WORKERS", "2")
            // The bursts are faster than the default budgets allow.
            .env("TOCSIN__RATELIMIT__PER_IP_PER_SECOND", "0")
            .env("TOCSIN__RATELIMIT__PER_GATEWAY_PER_SECOND", "0")
            // Devices enrol without invites, as in every other end-to-end test.
            .env("TOCSIN__DIRECTORY__OPEN_ENROLLMENT", "true")
            .env("TOCSIN__LOG__LEVEL", "info")
            .env("TOCSIN__LOG__FORMAT", "json")
            .stdin(Stdio::null());
        if let Some(url) = &self.url {
            cmd.env("TOCSIN__STORAGE__URL", url);
        }
        cmd.envs(self.settings.iter().map(|(k, v)| (k, v)));
    }

    /// Runs `tocsin admin …`, which must succeed; returns its standard output.
    pub async fn admin(&self, args: &[&str]) -> String {
        admin(self.command(), args).await
    }

    /// An account holding `credits` and a basic-mode gateway ID charged to it, made with
    /// the admin CLI as an operator would.
    pub async fn gateway(&self, credits: u32) -> Gateway {
        self.admin(&[
            "account",
            "create",
            ACCOUNT,
            "--credits",
            &credits.to_string(),
        ])
        .await;
        let created = self
            .admin(&["gateway", "create", "--account", ACCOUNT, "--mode", "basic"])
            .await;
        // "created gateway ID *K3J9QX2 (basic mode) for account acme"
        let id = created
            .lines()
            .next()
            .and_then(|line| line.split_whitespace().nth(3))
            .unwrap_or_else(|| panic!("no gateway ID in {created}"));
        Gateway {
            id: GatewayId::parse(id).unwrap(),
            secret: field(&created, "secret:").to_owned(),
            public_key: PublicKey::parse(field(&created, "public key:")).unwrap(),
        }
    }

    /// Imports the identity `id` with a fresh public key, with the admin CLI as an
    /// operator would.
    pub async fn identity(&self, id: &str) -> IdentityId {
        let key = KeyPair::generate().public.to_string();
        self.admin(&["identity", "import", id, "--public-key", &key])
            .await;
        IdentityId::parse(id).unwrap()
    }

    /// Starts `tocsin serve` on this data and waits until it serves.
    pub async fn serve(&self) -> Running {
        self.serve_with(&[]).await
    }

    /// Like [`Env::serve`], with `vars` in the server's environment.
    pub async fn serve_with(&self, vars: &[(&str, &str)]) -> Running {
        let mut cmd = self.command();
        cmd.arg("serve").envs(vars.iter().copied());
        Running::start(cmd).await
    }

    /// Starts `tocsin serve` with its data directory on a tmpfs of `mib` MiB, made for it
    /// and seen by no other process (see [`OnTmpfs`]), holding a copy of this data; waits
    /// until it serves. SQLite only: the data directory holds the whole database there.
    pub async fn serve_on_tmpfs(&self, mib: u32) -> OnTmpfs<'_> {
        assert!(self.url.is_none(), "a tmpfs holds the data of SQLite only");
        let mount_point = tempfile::tempdir().unwrap();
        let mut cmd = std::process::Command::new("unshare");
        // $1 the size, $2 the data to copy, $3 the mount point, then the server's command.
        cmd.args(["--map-root-user", "--mount", "--propagation", "private"])
            .args(["sh", "-c", TMPFS_SCRIPT, "sh"])
            .arg(format!("size={mib}m"))
            .arg(self.dir.path())
            .arg(mount_point.path())
            .args([env!("CARGO_BIN_EXE_tocsin"), "serve"]);
        self.configure(&mut cmd, mount_point.path());
        OnTmpfs {
            server: Running::start(cmd).await,
            mount_point,
            env: self,
        }
    }

    fn database_url(&self) -> String {
        match &self.url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.dir.path().join("tocsin.db").display()),
        }
    }

    /// A connection to the server's database, for reading what it committed.
    pub async fn database(&self) -> Database {
        sqlx::any::install_default_drivers();
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(&self.database_url())
            .await
            .expect("the test reaches the server's database");
        Database { pool }
    }

    /// The database as a killed server left it. On PostgreSQL the server's sessions may
    /// still be finishing a statement that reached them before the kill (a commit, say);
    /// this waits until they are gone, so nothing changes under the reads that follow.
    pub async fn database_after_kill(&self) -> Database {
        let db = self.database().await;
        if self.engine == Engine::Postgres {
            until_within(
                PATIENCE,
                "the killed server's database sessions end",
                || async {
                    let others: i64 = sqlx::query(
                        "SELECT COUNT(*) AS n FROM pg_stat_activity \
                     WHERE datname = current_database() AND pid <> pg_backend_pid() \
                     AND backend_type = 'client backend'",
                    )
                    .fetch_one(&db.pool)
                    .await
                    .unwrap()
                    .try_get("n")
                    .unwrap();
                    others == 0
                },
            )
            .await;
        }
        db
    }
}

/// Mounts a tmpfs (`$1` its size option) on `$3`, copies the data in `$2` onto it, and
/// becomes the command that follows (`exec`, so the process started is that command's).
const TMPFS_SCRIPT: &str =
    r#"mount -t tmpfs -o "$1" tmpfs "$3" && cp -a "$2"/. "$3"/ && shift 3 && exec "$@""#;

/// Runs `cmd` (the binary, configured) as `tocsin admin …`, which must succeed; returns
/// its standard output.
async fn admin(cmd: std::process::Command, args: &[&str]) -> String {
    let mut cmd = tokio::process::Command::from(cmd);
    let out = cmd.arg("admin").args(args).output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "tocsin admin {args:?} failed: {stderr}"
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A server whose data directory is a tmpfs of its own, which nothing outside the server
/// sees, so a test can fill it without touching the host's disks.
///
/// `unshare` gives the server a mount namespace of its own (private: no mount propagates
/// to the host) inside a user namespace where the test's user is root. The user
/// namespace is what lets an ordinary user mount the tmpfs; for root it is not needed,
/// and changes nothing the test relies on (the test's files stay reachable, as uid 0 maps
/// to itself), so one command serves both. A shell there mounts the tmpfs on an empty
/// directory, copies the data seeded by [`Env`] onto it and `exec`s the server, so the
/// child's PID is the server's. The namespace, and the tmpfs in it, end with the server.
///
/// The test reaches the tmpfs through the server's root in `/proc` ([`OnTmpfs::path`]).
/// SQLite cannot open a database there (it resolves the `root` link to `/`, the host's
/// root), so the database is read by the admin CLI run inside the namespace
/// ([`OnTmpfs::admin`]). [`Env::admin`] still works on the seed only.
pub struct OnTmpfs<'e> {
    /// Dropped (killed) before the mount point is removed.
    pub server: Running,
    /// Empty on the host; the tmpfs inside the server's namespace.
    mount_point: tempfile::TempDir,
    env: &'e Env,
}

impl OnTmpfs<'_> {
    /// `name` in the server's data directory, as this process reaches it.
    pub fn path(&self, name: &str) -> PathBuf {
        let inside = self.mount_point.path().join(name);
        let inside = inside
            .strip_prefix("/")
            .expect("an absolute temporary directory");
        Path::new("/proc")
            .join(self.server.pid().to_string())
            .join("root")
            .join(inside)
    }

    /// Runs `tocsin admin …` in the server's namespaces, on its data; it must succeed.
    pub async fn admin(&self, args: &[&str]) -> String {
        let mut cmd = std::process::Command::new("nsenter");
        // Without --preserve-credentials nsenter calls setgroups, which a user namespace
        // made by an ordinary user forbids.
        cmd.args(["--target", &self.server.pid().to_string()])
            .args(["--user", "--mount", "--preserve-credentials", "--"])
            .arg(env!("CARGO_BIN_EXE_tocsin"));
        self.env.configure(&mut cmd, self.mount_point.path());
        admin(cmd, args).await
    }
}

/// The value after `label` on a line of admin output.
fn field<'a>(output: &'a str, label: &str) -> &'a str {
    output
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} in {output}"))
        .trim()
}

/// The HTTP and metrics addresses of a JSON log line saying the server is serving.
fn serving_addresses(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let event: serde_json::Value = serde_json::from_str(line).ok()?;
    let fields = event.get("fields")?;
    if fields.get("message")?.as_str()? != "tocsin is serving" {
        return None;
    }
    let address = |name| fields.get(name)?.as_str()?.parse().ok();
    Some((address("http")?, address("metrics")?))
}

/// Whether a log line is worth keeping whole: a warning, an error, or anything not in the
/// JSON log format (a shell's or a panic's message).
fn notable(line: &str) -> bool {
    let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
        return true;
    };
    !matches!(
        event.get("level").and_then(|l| l.as_str()),
        Some("INFO" | "DEBUG" | "TRACE")
    )
}

/// A running server; killed (and reaped) when dropped, whatever the test's outcome.
pub struct Running {
    child: Child,
    pub http: SocketAddr,
    pub metrics: SocketAddr,
    /// The last [`LOG_LINES`] lines of its log.
    log: Arc<Mutex<VecDeque<String>>>,
    /// Every [`notable`] line of its log.
    notable: Arc<Mutex<Vec<String>>>,
}

impl Running {
    /// Spawns `cmd`, which becomes `tocsin serve` (logging JSON to its standard error),
    /// and waits until it serves.
    async fn start(mut cmd: std::process::Command) -> Self {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let notable_lines = Arc::new(Mutex::new(Vec::new()));
        let (serving, addresses) = tokio::sync::oneshot::channel();
        let (lines, kept) = (log.clone(), notable_lines.clone());
        // Reads the log to its end, or the server would block on a full pipe.
        std::thread::spawn(move || {
            let mut serving = Some(serving);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addresses) = serving_addresses(&line) {
                    if let Some(serving) = serving.take() {
                        let _ = serving.send(addresses);
                    }
                }
                if notable(&line) {
                    lock(&kept).push(line.clone());
                }
                let mut lines = lock(&lines);
                if lines.len() == LOG_LINES {
                    lines.pop_front();
                }
                lines.push_back(line);
            }
        });
        let unknown: SocketAddr = "0.0.0.0:0".parse().unwrap();
        let mut running = Running {
            child,
            http: unknown,
            metrics: unknown,
            log,
            notable: notable_lines,
        };
        match tokio::time::timeout(PATIENCE, addresses).await {
            Ok(Ok((http, metrics))) => (running.http, running.metrics) = (http, metrics),
            _ => panic!("the server did not start:\n{}", running.log_tail()),
        }
        running
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every warning and error the server logged so far, and any line not in its log
    /// format.
    pub fn notable_lines(&self) -> Vec<String> {
        lock(&self.notable).clone()
    }

    /// The last lines the server logged.
    pub fn log_tail(&self) -> String {
        lock(&self.log)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Kills the server with SIGKILL and waits until it is gone. Fails if it had already
    /// ended on its own.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        let status = self.child.wait().unwrap();
        assert_eq!(
            status.signal(),
            Some(SIGKILL),
            "the server ended before it was killed ({status}):\n{}",
            self.log_tail()
        );
    }
}

/// SIGKILL's number, the same on every Unix.
const SIGKILL: i32 = 9;

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A gateway ID made by the admin CLI, with the secret it printed once.
#[derive(Clone)]
pub struct Gateway {
    pub id: GatewayId,
    pub secret: String,
    pub public_key: PublicKey,
}

/// What became of one send.
#[derive(Debug)]
pub enum Sent {
    /// 200 with this message ID.
    Accepted(MessageId),
    /// Another status: never expected here.
    Refused(u16, String),
    /// No answer: the server died (or was dead) while the request was out.
    Lost(#[allow(dead_code, reason = "shown by Debug when a test fails")] String),
}

/// The gateway API of one running server, over raw HTTP.
#[derive(Clone)]
pub struct Api {
    base: String,
    client: reqwest::Client,
    gateway: Gateway,
}

impl Api {
    pub fn new(http: SocketAddr, gateway: &Gateway) -> Self {
        Self {
            base: format!("http://{http}"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            gateway: gateway.clone(),
        }
    }

    fn credentials(&self) -> String {
        format!(
            "from={}&secret={}",
            urlencode(self.gateway.id.as_str()),
            self.gateway.secret
        )
    }

    /// `POST /send_simple` of `text` to `to` with `key` as its `Idempotency-Key`.
    pub async fn send(&self, to: &IdentityId, key: &str, text: &str) -> Sent {
        let response = match self.post_send(to, key, text).await {
            Ok(response) => response,
            Err(e) => return Sent::Lost(e.to_string()),
        };
        let status = response.status().as_u16();
        match response.text().await {
            Ok(body) if status == 200 => match MessageId::parse(body.trim()) {
                Ok(id) => Sent::Accepted(id),
                Err(_) => Sent::Refused(status, format!("not a message ID: {body:?}")),
            },
            Ok(body) => Sent::Refused(status, body),
            Err(e) => Sent::Lost(e.to_string()),
        }
    }

    /// The same request as [`Api::send`], answered as it came.
    pub async fn post_send(
        &self,
        to: &IdentityId,
        key: &str,
        text: &str,
    ) -> reqwest::Result<reqwest::Response> {
        // Keys and texts here are letters, digits, '-' and spaces.
        let body = format!(
            "{}&to={}&text={}",
            self.credentials(),
            to.as_str(),
            text.replace(' ', "+")
        );
        self.client
            .post(format!("{}/send_simple", self.base))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Idempotency-Key", key)
            .body(body)
            .send()
            .await
    }

    /// `GET /credits`.
    pub async fn credits(&self) -> i64 {
        let response = self
            .client
            .get(format!("{}/credits?{}", self.base, self.credentials()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap().trim().parse().unwrap()
    }

    /// `GET /api/v1/messages/{id}`: the message's state, or `None` for 404.
    pub async fn state(&self, id: &MessageId) -> Option<String> {
        let response = self
            .client
            .get(format!(
                "{}/api/v1/messages/{id}?{}",
                self.base,
                self.credentials()
            ))
            .send()
            .await
            .unwrap();
        if response.status() == 404 {
            return None;
        }
        assert_eq!(response.status(), 200, "status of {id}");
        let view: serde_json::Value = response.json().await.unwrap();
        assert_eq!(view["messageId"], id.to_string());
        Some(view["state"].as_str().unwrap().to_owned())
    }
}

/// One ledger row as stored.
#[derive(Debug)]
pub struct LedgerRow {
    pub delta: i64,
    pub reason: String,
    pub message_id: Option<MessageId>,
}

/// What the account's ledger says, checked for the invariants every state must keep:
/// each debit costs one credit and names a message, no message is charged twice, and the
/// rows sum to the balance.
#[derive(Debug)]
pub struct Ledger {
    pub balance: i64,
    /// The messages charged, each once.
    pub charged: BTreeSet<MessageId>,
}

impl Ledger {
    /// The ledger of `rows` and `balance`, after checking its invariants; `initial` is
    /// the only credit.
    pub fn check(rows: &[LedgerRow], balance: i64, initial: i64) -> Self {
        let sum: i64 = rows.iter().map(|r| r.delta).sum();
        assert_eq!(sum, balance, "the ledger rows sum to the balance");
        let mut charges: BTreeMap<MessageId, usize> = BTreeMap::new();
        for row in rows {
            if row.delta > 0 {
                assert_eq!(
                    (row.delta, row.reason.as_str(), row.message_id),
                    (initial, "initial credits", None),
                    "the only credit is the initial one"
                );
                continue;
            }
            assert_eq!(row.delta, -1, "a text costs one credit: {row:?}");
            let id = row
                .message_id
                .unwrap_or_else(|| panic!("a debit names its message: {row:?}"));
            *charges.entry(id).or_default() += 1;
        }
        let twice: Vec<_> = charges.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            twice.is_empty(),
            "messages charged more than once: {twice:?}"
        );
        Self {
            balance,
            charged: charges.into_keys().collect(),
        }
    }
}

/// A reader of the server's database.
pub struct Database {
    pool: sqlx::AnyPool,
}

impl Database {
    pub async fn close(self) {
        self.pool.close().await;
    }

    pub async fn ledger_rows(&self) -> Vec<LedgerRow> {
        let rows = sqlx::query(
            "SELECT l.delta, l.reason, l.message_id FROM ledger l \
             JOIN accounts a ON a.id = l.account_id WHERE a.name = $1 ORDER BY l.id",
        )
        .bind(ACCOUNT)
        .fetch_all(&self.pool)
        .await
        .unwrap();
        rows.iter()
            .map(|row| LedgerRow {
                delta: row.try_get("delta").unwrap(),
                reason: row.try_get("reason").unwrap(),
                message_id: row
                    .try_get::<Option<Vec<u8>>, _>("message_id")
                    .unwrap()
                    .map(|b| MessageId::from_bytes(b.as_slice().try_into().unwrap())),
            })
            .collect()
    }

    pub async fn balance(&self) -> i64 {
        sqlx::query("SELECT balance FROM accounts WHERE name = $1")
            .bind(ACCOUNT)
            .fetch_one(&self.pool)
            .await
            .unwrap()
            .try_get("balance")
            .unwrap()
    }

    /// The ledger, after checking its invariants.
    pub async fn ledger(&self, initial: i64) -> Ledger {
        Ledger::check(&self.ledger_rows().await, self.balance().await, initial)
    }

    /// The messages still queued for `recipient` (not yet acked by its device).
    pub async fn queued_for(&self, recipient: &IdentityId) -> BTreeSet<MessageId> {
        let sql = "SELECT message_id FROM queued_messages WHERE recipient = $1";
        self.message_ids(sql, recipient).await
    }

    /// The messages with a `delivered` event for `recipient`: a device acked them.
    pub async fn delivered_to(&self, recipient: &IdentityId) -> BTreeSet<MessageId> {
        let sql = "SELECT message_id FROM message_events \
                   WHERE recipient = $1 AND event = 'delivered'";
        self.message_ids(sql, recipient).await
    }

    async fn message_ids(&self, sql: &'static str, recipient: &IdentityId) -> BTreeSet<MessageId> {
        sqlx::query(sql)
            .bind(recipient.as_str())
            .fetch_all(&self.pool)
            .await
            .unwrap()
            .iter()
            .map(|row| {
                let bytes: Vec<u8> = row.try_get("message_id").unwrap();
                MessageId::from_bytes(bytes.as_slice().try_into().unwrap())
            })
            .collect()
    }
}

/// Every `Idempotency-Key` a scenario sent and the message it stands for, once known.
#[derive(Default)]
pub struct Book {
    pub resolved: BTreeMap<String, MessageId>,
    /// Which key each message ID was answered for: two keys must never share one.
    by_id: HashMap<MessageId, String>,
}

impl Book {
    /// Records that `key` stands for `id`; fails if it stood for another message, or if
    /// another key stands for the same one.
    pub fn resolve(&mut self, key: &str, id: MessageId) {
        if let Some(before) = self.resolved.insert(key.to_owned(), id) {
            assert_eq!(
                before, id,
                "the key {key} was answered with two message IDs"
            );
        }
        if let Some(other) = self.by_id.insert(id, key.to_owned()) {
            assert_eq!(
                other, key,
                "the keys {other} and {key} got the same message {id}"
            );
        }
    }

    pub fn ids(&self) -> BTreeSet<MessageId> {
        self.resolved.values().copied().collect()
    }

    pub fn key_of(&self, id: &MessageId) -> Option<&str> {
        self.by_id.get(id).map(String::as_str)
    }
}

/// A small random source (SplitMix64): the seed is printed, so a failing run's kill
/// points can be replayed with `TOCSIN_CRASH_SEED`.
pub struct Rng(u64);

impl Rng {
    /// The seed from `TOCSIN_CRASH_SEED`, or a fresh one; printed either way.
    pub fn seeded(scenario: &str) -> Self {
        let seed = std::env::var("TOCSIN_CRASH_SEED")
            .ok()
            .map(|s| s.parse().expect("TOCSIN_CRASH_SEED is a number"))
            .unwrap_or_else(|| u64::from_le_bytes(*MessageId::random().as_bytes()));
        println!("{scenario}: seed {seed} (replay with TOCSIN_CRASH_SEED={seed})");
        Self(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number from `low` to `high`, both included.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

/// A TCP relay on a fixed local port to whichever server runs now, so a device keeps
/// one server URL across restarts (the restarted server gets another port). Between a
/// kill and the next start it points at the dead server, and connections fail there.
pub struct Relay {
    pub addr: SocketAddr,
    target: Arc<Mutex<Option<SocketAddr>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let target = Arc::new(Mutex::new(None::<SocketAddr>));
        let to = target.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let Some(server) = *lock(&to) else {
                    continue;
                };
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(server).await else {
                        return;
                    };
                    let _ = inbound.set_nodelay(true);
                    let _ = outbound.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
            }
        });
        Self { addr, target, task }
    }

    pub fn point_to(&self, server: SocketAddr) {
        *lock(&self.target) = Some(server);
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A spawned task, aborted when dropped (a failing test leaves none behind).
pub struct Task<T>(pub tokio::task::JoinHandle<T>);

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How many `items` there are, and the first few, for a failure message.
pub fn some<T: std::fmt::Debug>(items: &[T]) -> String {
    const SHOWN: usize = 5;
    match items.len() {
        n if n <= SHOWN => format!("{items:?}"),
        n => format!("{n}, the first {SHOWN}: {:?}", &items[..SHOWN]),
    }
}

/// What the senders of one burst saw.
#[derive(Debug, Default)]
pub struct Burst {
    /// Keys answered 200, with the message ID.
    pub answered: Vec<(String, MessageId)>,
    /// Keys whose request got no answer (out when the server died, or sent after).
    pub unanswered: Vec<String>,
    /// Keys answered with another status, which no request here should get.
    pub refused: Vec<(String, u16, String)>,
}

/// Concurrent senders, each sending one message after another, every request with a
/// key of its own, until stopped or until a request gets no answer.
pub struct Senders {
    stop: Arc<std::sync::atomic::AtomicBool>,
    tasks: Vec<Task<()>>,
    seen: Arc<Mutex<Burst>>,
    /// Told when the answers reach the count given to [`Senders::start`].
    pub tripped: Arc<tokio::sync::Notify>,
}

impl Senders {
    /// `count` senders to `to`; keys are `<prefix>-<sender>-<n>`. After the `trip_at`th
    /// answer (counted over all senders) [`Senders::tripped`] is notified.
    pub fn start(api: &Api, to: IdentityId, prefix: &str, count: u64, trip_at: u64) -> Self {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Burst::default()));
        let tripped = Arc::new(tokio::sync::Notify::new());
        let answers = Arc::new(AtomicU64::new(0));
        let tasks = (0..count)
            .map(|sender| {
                let (api, stop, seen, tripped, answers) = (
                    api.clone(),
                    stop.clone(),
                    seen.clone(),
                    tripped.clone(),
                    answers.clone(),
                );
                let prefix = format!("{prefix}-{sender}");
                Task(tokio::spawn(async move {
                    let mut n = 0u64;
                    while !stop.load(Ordering::SeqCst) {
                        let key = format!("{prefix}-{n}");
                        n += 1;
                        match api.send(&to, &key, &format!("alert {key}")).await {
                            Sent::Accepted(id) => {
                                lock(&seen).answered.push((key, id));
                                if answers.fetch_add(1, Ordering::SeqCst) + 1 == trip_at {
                                    tripped.notify_one();
                                }
                            }
                            Sent::Refused(status, body) => {
                                lock(&seen).refused.push((key, status, body));
                                break;
                            }
                            Sent::Lost(_) => {
                                lock(&seen).unanswered.push(key);
                                break;
                            }
                        }
                    }
                }))
            })
            .collect();
        Self {
            stop,
            tasks,
            seen,
            tripped,
        }
    }

    /// Stops every sender (the server is dead by now, so each is at most one failing
    /// request away from stopping) and returns what they saw.
    pub async fn stop(mut self) -> Burst {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for task in &mut self.tasks {
            tokio::time::timeout(PATIENCE, &mut task.0)
                .await
                .expect("a sender stops")
                .unwrap();
        }
        std::mem::take(&mut *lock(&self.seen))
    }
}

/// Requests in flight at once when keys are retried.
pub const RETRIES_IN_FLIGHT: usize = 16;

/// Sends each key again (same text), a few at a time; returns what each got.
pub async fn retry(
    api: &Api,
    to: IdentityId,
    keys: impl Iterator<Item = String>,
) -> Vec<(String, Sent)> {
    futures_util::stream::iter(keys)
        .map(|key| async move {
            let sent = api.send(&to, &key, &format!("alert {key}")).await;
            (key, sent)
        })
        .buffer_unordered(RETRIES_IN_FLIGHT)
        .collect()
        .await
}
