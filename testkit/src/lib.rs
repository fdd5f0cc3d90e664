//! What Tocsin's tests share: `spawn_app()`, a private server per test on port 0 over a
//! fresh database of the run's [`Engine`], with ways to seed it; and waiting for conditions.
//! The end-to-end tests and the load harness's test use it alike.

pub mod engine;
pub mod wait;

use std::collections::HashMap;
use std::net::SocketAddr;

use tocsin::config::Settings;
use tocsin::domain::{AccountName, UnixMs};
use tocsin::startup::Application;
use tocsin::state::AppState;
use tocsin::store::{AccountId, GatewayMode, GatewayRecord, NewIdentity};
use tocsin_sdk::protocol::{
    hash_email, hash_phone, ApiSecret, Capabilities, GatewayId, IdentityId, InviteCode, KeyPair,
    MessageId,
};
use tokio::sync::oneshot;

pub use engine::Engine;

pub struct TestApp {
    pub http: SocketAddr,
    pub metrics: SocketAddr,
    pub state: AppState,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    finished: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    /// The settings this app was built with, to build it again over the same data.
    vars: Vec<(String, String)>,
    dir: tempfile::TempDir,
}

/// Settings for a test: loopback, port 0, everything under `dir`. Enrolment is open, so
/// that tests enrol the devices they need freely; the tests of enrolment itself close it
/// with `TOCSIN__DIRECTORY__OPEN_ENROLLMENT=false`, the default of a real server.
pub fn test_settings(dir: &std::path::Path, extra: &[(String, String)]) -> Settings {
    let mut vars: HashMap<String, String> = HashMap::from([
        ("TOCSIN__DIRECTORY__OPEN_ENROLLMENT".into(), "true".into()),
        ("TOCSIN__SERVER__HTTP_ADDR".into(), "127.0.0.1:0".into()),
        ("TOCSIN__SERVER__METRICS_ADDR".into(), "127.0.0.1:0".into()),
        ("TOCSIN__SERVER__WORKERS".into(), "2".into()),
        ("TOCSIN__SERVER__SHUTDOWN_GRACE_SECS".into(), "2".into()),
        (
            "TOCSIN__STORAGE__DATA_DIR".into(),
            dir.display().to_string(),
        ),
    ]);
    vars.extend(extra.iter().cloned());
    Settings::load_from(&vars).expect("test settings are valid")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Like [`spawn_app`], with extra `TOCSIN__…` settings.
pub async fn spawn_app_with(extra: &[(&str, String)]) -> TestApp {
    install_tls_provider();
    let dir = tempfile::tempdir().unwrap();
    let mut vars: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    let engine = Engine::selected();
    if let Some(url) = engine.fresh_storage_url().await {
        vars.push(("TOCSIN__STORAGE__URL".to_owned(), url));
    }
    let settings = test_settings(dir.path(), &vars);
    let built = Application::build(settings).await;
    let app = start(built.expect("application builds"), dir, vars);
    assert_eq!(
        app.state.store.backend(),
        engine.backend(),
        "the server runs on the engine {} selects",
        engine::ENGINE_VAR
    );
    app
}

/// Installs the process's TLS provider, once: reqwest is built without a bundled one, and
/// building a client needs one even though tests only speak plain HTTP to loopback.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Takes every `TOCSIN_*` variable of the test's own environment away from `cmd`, so a
/// binary a test runs gets only the settings the test gives it.
pub fn without_tocsin_vars(cmd: &mut std::process::Command) -> &mut std::process::Command {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("TOCSIN_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// Runs a built server in the background.
fn start(app: Application, dir: tempfile::TempDir, vars: Vec<(String, String)>) -> TestApp {
    let (http, metrics, state) = (app.http_addr(), app.metrics_addr(), app.state().clone());
    let (stop, stopped) = oneshot::channel::<()>();
    let finished = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestApp {
        http,
        metrics,
        state,
        client: reqwest::Client::new(),
        stop: Some(stop),
        finished: Some(finished),
        vars,
        dir,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    pub fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.metrics)
    }

    /// Invite codes, as `tocsin admin identity invite` makes them, valid for `lifetime`.
    pub async fn invites(&self, count: u32, lifetime: std::time::Duration) -> Vec<InviteCode> {
        tocsin::admin::make_invites(&self.state, count, lifetime)
            .await
            .unwrap()
            .0
    }

    /// Stops the server gracefully and returns how `run_until_stopped` ended.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.stop_now().await
    }

    async fn stop_now(&mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.finished.take().unwrap().await.unwrap()
    }

    /// Builds a second server over the same data while this one runs, and returns how
    /// that went (it is dropped at once if it builds).
    pub async fn build_another(&self) -> anyhow::Result<()> {
        let settings = test_settings(self.dir.path(), &self.vars);
        Application::build(settings).await.map(drop)
    }

    /// A second node beside this one: another server on the same database, with the same
    /// data key and chat server key, its other files in a directory of its own, and
    /// `extra` settings. PostgreSQL only (SQLite has one server per database).
    pub async fn spawn_beside(&self, extra: &[(&str, String)]) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let mut vars: Vec<(String, String)> = self
            .vars
            .iter()
            .filter(|(k, _)| k == "TOCSIN__STORAGE__URL")
            .cloned()
            .collect();
        assert!(
            !vars.is_empty(),
            "a second node needs a shared PostgreSQL database"
        );
        let shared = |name: &str| self.dir.path().join(name).display().to_string();
        vars.push(("TOCSIN__STORAGE__DATA_KEY_FILE".into(), shared("data.key")));
        vars.push(("TOCSIN__CHAT__SERVER_KEY_FILE".into(), shared("server.key")));
        vars.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        let built = Application::build(test_settings(dir.path(), &vars)).await;
        start(built.expect("the second node builds"), dir, vars)
    }

    /// Stops this server and starts a new one over the same data (files and database).
    ///
    /// On SQLite the new server takes the lock on the database that the old one let go
    /// of. A child process another test is starting at that moment holds a copy of every
    /// descriptor of this process until it execs, so the lock can outlive the old server
    /// for as long; the new server is built again until it gets the lock (one never let go
    /// fails the test after [`wait::PATIENCE`]).
    pub async fn restart(mut self) -> TestApp {
        self.stop_now().await.unwrap();
        let vars = std::mem::take(&mut self.vars);
        let building = async {
            loop {
                match Application::build(test_settings(self.dir.path(), &vars)).await {
                    Err(e) if format!("{e:#}").contains("already serving") => {
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    }
                    built => return built,
                }
            }
        };
        let built = tokio::time::timeout(wait::PATIENCE, building)
            .await
            .expect("the stopped server's lock on the database is let go");
        start(built.expect("application builds"), self.dir, vars)
    }
}

/// A gateway ID seeded for a test, with the secret a client would hold.
pub struct TestGateway {
    pub id: GatewayId,
    pub secret: String,
    pub account: AccountId,
    pub keys: KeyPair,
}

impl TestGateway {
    /// `from=…&secret=…` for a query string or form body.
    pub fn credentials(&self) -> String {
        format!(
            "from={}&secret={}",
            urlencode(self.id.as_str()),
            self.secret
        )
    }
}

/// A gateway API client of the SDK acting as `gw`.
pub fn gateway_client(app: &TestApp, gw: &TestGateway) -> tocsin_sdk::client::Client {
    tocsin_sdk::client::ClientBuilder::new(gw.id, ApiSecret::parse(&gw.secret).unwrap())
        .base_url(app.url(""))
        .build()
        .unwrap()
}

/// Settings that let the callback dispatcher deliver to receivers on this machine.
pub fn loopback_allowed() -> Vec<(&'static str, String)> {
    vec![("TOCSIN__CALLBACKS__ALLOWED_RANGES", "127.0.0.0/8".into())]
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl TestApp {
    /// POSTs `form` (already encoded) to `path`; the status and the body.
    pub async fn post_form(&self, path: &str, form: String) -> (u16, String) {
        let res = self
            .client
            .post(self.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }

    /// Waits until no callback entry for `gw` is left in the outbox (each was taken).
    pub async fn until_outbox_empty(&self, gw: &TestGateway) {
        wait::until("the callback outbox is empty", || async {
            self.state
                .store
                .callbacks_for(&gw.id)
                .await
                .unwrap()
                .is_empty()
        })
        .await;
    }

    /// Gives `gw` a status URL signed with `secret`, as `tocsin admin gateway
    /// set-status-url` does with the secret it makes.
    pub async fn status_webhook(
        &self,
        gw: &TestGateway,
        url: &str,
        secret: &tocsin_sdk::protocol::StatusSecret,
    ) {
        let sealed = self.state.data_key.seal(secret.expose().as_bytes());
        self.state
            .store
            .set_status_url(&gw.id, url, Some(&sealed))
            .await
            .unwrap();
    }

    /// Waits until no status event for `gw` waits for delivery (each was taken).
    pub async fn until_statuses_sent(&self, gw: &TestGateway) {
        wait::until("the status outbox is empty", || async {
            self.state
                .store
                .pending_statuses(&gw.id)
                .await
                .unwrap()
                .is_empty()
        })
        .await;
    }

    /// Opens `/lookup/bulk` to `gw`, as `tocsin admin gateway set-lookup --bulk on` does.
    pub async fn allow_bulk_lookup(&self, gw: &TestGateway) {
        self.state
            .store
            .set_bulk_lookup(&gw.id, true)
            .await
            .unwrap();
    }

    /// Gives `gw` a callback URL, so that devices' replies and receipts to it are taken and
    /// wait in its outbox. The URL never answers (its domain is `.invalid`): the entries
    /// stay there, retried later.
    pub async fn takes_replies(&self, gw: &TestGateway) {
        let url = Some("https://callback.invalid/tocsin");
        self.state
            .store
            .set_callback_url(&gw.id, url)
            .await
            .unwrap();
    }

    /// The value of one series of `/metrics`, named with its labels as it prints them
    /// (`tocsin_x_total{kind="a"}`); `None` when it is not there.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let text = self.metrics_text().await;
        text.lines().find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
    }

    /// What `/metrics` shows now.
    pub async fn metrics_text(&self) -> String {
        let response = self.client.get(self.metrics_url()).send().await.unwrap();
        response.text().await.unwrap()
    }

    /// The messages queued for `to`, oldest first.
    pub async fn queued(&self, to: &str) -> Vec<tocsin::store::NewMessage> {
        let to = IdentityId::parse(to).unwrap();
        let queued = self.state.store.queued_for(&to, 1_000_000).await.unwrap();
        queued.into_iter().map(|q| q.message).collect()
    }

    /// Seeds an account holding `credits` and a gateway ID in `mode`.
    pub async fn gateway(&self, mode: GatewayMode, credits: i64) -> TestGateway {
        let store = &self.state.store;
        let name = format!("acct-{}", MessageId::random());
        let account = store
            .create_account(&AccountName::parse(&name).unwrap(), UnixMs::now())
            .await
            .unwrap();
        if credits > 0 {
            store
                .add_credits(account.id, credits, "test", UnixMs::now())
                .await
                .unwrap();
        }
        let secret = ApiSecret::generate();
        let keys = KeyPair::generate();
        let new = GatewayRecord {
            id: GatewayId::random(),
            account: account.id,
            mode,
            secret_hash: self.state.data_key.hash_secret(&secret).to_vec(),
            secret_sealed: self.state.data_key.seal(secret.expose().as_bytes()),
            public_key: keys.public,
            private_sealed: (mode == GatewayMode::Basic)
                .then(|| self.state.data_key.seal(keys.secret.as_bytes())),
            callback_url: None,
            bulk_lookup: false,
            created_at: UnixMs::now(),
        };
        let record = store.create_gateway(&new).await.unwrap();
        TestGateway {
            id: record.id,
            secret: secret.expose().to_owned(),
            account: account.id,
            keys,
        }
    }

    /// Imports a recipient identity; returns its key pair.
    pub async fn identity(&self, id: &str, phone: Option<&str>, email: Option<&str>) -> KeyPair {
        let keys = KeyPair::generate();
        let new = NewIdentity {
            id: IdentityId::parse(id).unwrap(),
            public_key: keys.public,
            phone_hash: phone.map(hash_phone),
            email_hash: email.map(hash_email),
            capabilities: Capabilities::parse("text,image,file").unwrap(),
        };
        self.state
            .store
            .import_identity(&new, UnixMs::now())
            .await
            .unwrap();
        keys
    }

    /// GET `path` with the gateway's credentials in the query; returns status and body.
    pub async fn get_as(&self, gw: &TestGateway, path: &str) -> (u16, String) {
        let sep = if path.contains('?') { '&' } else { '?' };
        let res = self
            .client
            .get(self.url(&format!("{path}{sep}{}", gw.credentials())))
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }

    pub async fn balance(&self, gw: &TestGateway) -> i64 {
        self.state
            .store
            .account(gw.account)
            .await
            .unwrap()
            .unwrap()
            .balance
    }
}
