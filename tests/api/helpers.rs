//! `spawn_app()`: a private server per test, on port 0, over a fresh SQLite file (or a fresh
//! PostgreSQL database when `TOCSIN_TEST_POSTGRES_URL` is set and the test asks for it).

use std::collections::HashMap;
use std::net::SocketAddr;

use tocsin::config::Settings;
use tocsin::startup::Application;
use tocsin::state::AppState;
use tokio::sync::oneshot;

pub struct TestApp {
    pub http: SocketAddr,
    pub metrics: SocketAddr,
    pub state: AppState,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    finished: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

/// Settings for a test: loopback, port 0, everything under `dir`.
pub fn test_settings(dir: &std::path::Path, extra: &[(&str, String)]) -> Settings {
    let mut vars: HashMap<String, String> = HashMap::from([
        ("TOCSIN__SERVER__HTTP_ADDR".into(), "127.0.0.1:0".into()),
        ("TOCSIN__SERVER__METRICS_ADDR".into(), "127.0.0.1:0".into()),
        ("TOCSIN__SERVER__WORKERS".into(), "2".into()),
        ("TOCSIN__SERVER__SHUTDOWN_GRACE_SECS".into(), "2".into()),
        (
            "TOCSIN__STORAGE__DATA_DIR".into(),
            dir.display().to_string(),
        ),
    ]);
    vars.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    Settings::load_from(&vars).expect("test settings are valid")
}

pub async fn spawn_app() -> TestApp {
    // reqwest is built without a bundled TLS provider; the test client only speaks plain
    // HTTP to loopback, but building a client still needs one installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let settings = test_settings(dir.path(), &[]);
    let app = Application::build(settings)
        .await
        .expect("application builds");
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
        _dir: dir,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    pub fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.metrics)
    }

    /// Stops the server gracefully and returns how `run_until_stopped` ended.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.finished.take().unwrap().await.unwrap()
    }
}
