//! Building and running the application: open the store, bind the listeners, serve until told
//! to stop, then drain in-flight requests and close the store.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, Service};
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use futures_util::future::Either;

use crate::blobs::FsBlobStore;
use crate::config::Settings;
use crate::crypto::{DataKey, SharedKeyCache};
use crate::domain::UnixMs;
use crate::http::connections::{self, ConnectionCounts};
use crate::metrics::Metrics;
use crate::ratelimit::RateLimits;
use crate::state::AppState;
use crate::store::{Store, StoreOptions};
use crate::telemetry::redact_query;

/// Basic-mode shared keys kept in memory: 32 bytes each plus map overhead, so about
/// 10 MiB at most, and one X25519 saved per message to a recipient already seen.
const SHARED_KEY_CACHE_ENTRIES: usize = 100_000;

/// Connections the kernel holds for a listener until they are accepted.
/// `std::net::TcpListener::bind` asks for 128, and a burst of clients connecting at once
/// (a load generator, or devices coming back after an outage) overflows that: the
/// dropped handshakes are retried by the clients a second later. The kernel caps it at
/// `net.core.somaxconn` (4096 by default).
const LISTEN_BACKLOG: i32 = 4096;

/// A listening socket on `addr` with [`LISTEN_BACKLOG`].
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    // As std's bind does: a restarted server can bind while old connections linger.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// A built, bound, not yet running server.
pub struct Application {
    http: Server,
    metrics: Server,
    http_addr: SocketAddr,
    metrics_addr: SocketAddr,
    state: AppState,
    /// Held while serving (see [`crate::store::ServingLock`]).
    serving: Option<crate::store::ServingLock>,
}

/// Opens the configured store (running migrations) and the data key.
pub async fn open_state(settings: Settings) -> anyhow::Result<AppState> {
    let url = settings.database_url();
    let storage = &settings.storage;
    let options = StoreOptions {
        max_connections: storage.max_connections.get(),
        allow_unsafe_durability: storage.allow_unsafe_durability,
        busy_timeout: std::time::Duration::from_millis(storage.busy_timeout_ms),
        secure_delete: storage.secure_delete,
    };
    let store = Store::open_with(&url, options)
        .await
        .with_context(|| format!("opening the database ({})", redact_url(&url)))?;
    store.migrate().await.context("migrating the database")?;
    let node = store
        .next_node_number(UnixMs::now())
        .await
        .context("taking a node number from the database")?;
    let key_path = settings.data_key_path();
    let data_key = DataKey::load_or_create(&key_path)?;
    let limits = Arc::new(
        RateLimits::new(&settings.ratelimit)
            .with_identity_quota(settings.directory.identities_per_ip_per_hour)
            .with_lookup_quota(settings.ratelimit.lookups_per_gateway_per_day)
            .with_device_budget(
                (
                    settings.chat.device_frames_per_second,
                    settings.chat.device_frames_burst,
                ),
                (
                    settings.chat.device_bytes_per_second,
                    settings.chat.device_bytes_burst,
                ),
            ),
    );
    let blobs = Arc::new(FsBlobStore::new(settings.storage.data_dir.join("blobs")));
    let server_key = Arc::new(crate::crypto::server_key::load_or_create(
        &settings.server_key_path(),
    )?);
    let hub = Arc::new(crate::hub::Hub::new(settings.chat.inbox_messages));
    // Where every message is queued by this process, the hub hands new ones to connected
    // sessions (the store decides; see `DeliveryMode`).
    store.set_queue_listener(hub.clone());
    // Answers to requests come back through a local task of each HTTP worker thread.
    store.answer_on_threads(Arc::new(|task| {
        actix_web::rt::spawn(task);
    }));
    let metrics = Arc::new(Metrics::new());
    let meter = Arc::new(crate::meter::Meter::new(settings.prices, metrics.clone()));
    let proxies = crate::client_ip::TrustedProxies::new(&settings.server.trusted_proxies)
        .map_err(anyhow::Error::msg)?;
    Ok(AppState {
        proxies: Arc::new(proxies),
        meter,
        message_ids: Arc::new(crate::domain::MessageIds::new(node)),
        hub,
        caches: Arc::new(crate::state::Caches::default()),
        server_key,
        blobs,
        limits,
        settings: Arc::new(settings),
        store,
        data_key: Arc::new(data_key),
        metrics,
        shared_keys: Arc::new(SharedKeyCache::new(SHARED_KEY_CACHE_ENTRIES)),
    })
}

/// Hides the password of a database URL for messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl Application {
    /// Opens everything and binds both listeners (port 0 picks a free port).
    ///
    /// The listener's TLS settings are checked first, before the store is opened: plain
    /// HTTP off loopback (without `server.allow_plain_http`) and unusable certificate
    /// files fail with a [`crate::config::ConfigError`].
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let tls = crate::tls::server_config(&settings.server)?;
        let serving = crate::store::ServingLock::take(&settings.database_url())?;
        let state = open_state(settings).await?;
        // No upload of this server runs yet: whatever is in its upload directory was left.
        crate::housekeeping::sweep_uploads(&state, Duration::ZERO).await;
        let started = std::time::Instant::now();
        let keys = state
            .store
            .load_idempotency_keys()
            .await
            .context("reading the idempotency keys into memory")?;
        if let Some(keys) = keys {
            let ms = started.elapsed().as_millis();
            tracing::info!(
                keys,
                ms,
                "idempotency keys of the retry window read into memory"
            );
        }
        let mut app = Self::bind(state, tls)?;
        app.serving = serving;
        Ok(app)
    }

    /// Binds both listeners around an already opened state (checking TLS as
    /// [`Application::build`] does).
    pub fn with_state(state: AppState) -> anyhow::Result<Self> {
        let tls = crate::tls::server_config(&state.settings.server)?;
        Self::bind(state, tls)
    }

    /// Binds both listeners; the API's serves HTTPS with `tls`.
    fn bind(state: AppState, tls: Option<rustls::ServerConfig>) -> anyhow::Result<Self> {
        let server = &state.settings.server;
        let http_listener = listen(server.http_addr)
            .with_context(|| format!("binding the HTTP API to {}", server.http_addr))?;
        let metrics_listener = listen(server.metrics_addr)
            .with_context(|| format!("binding metrics to {}", server.metrics_addr))?;
        let http_addr = http_listener.local_addr()?;
        let metrics_addr = metrics_listener.local_addr()?;
        let workers = match server.workers {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let grace = server.shutdown_grace_secs;

        let data = web::Data::new(state.clone());
        let roles = state.settings.roles;
        let counts = ConnectionCounts::new(server.connections_per_ip, Arc::clone(&state.proxies));
        let http = HttpServer::new({
            let data = data.clone();
            move || {
                App::new()
                    .app_data(data.clone())
                    .wrap_fn(|req, srv| match connections::refusal(req.request()) {
                        Some(refused) => {
                            if let Some(state) = req.app_data::<web::Data<AppState>>() {
                                state.metrics.connections_refused.inc();
                            }
                            Either::Left(std::future::ready(Ok(req.into_response(refused))))
                        }
                        None => Either::Right(srv.call(req)),
                    })
                    .wrap_fn(|req, srv| {
                        let state = req.app_data::<web::Data<AppState>>().cloned();
                        let endpoint = req.match_pattern().unwrap_or_else(|| "unmatched".into());
                        // Formatted only when it will be logged.
                        let logged = tracing::enabled!(tracing::Level::DEBUG)
                            .then(|| (req.method().clone(), redact_query(&req.uri().to_string())));
                        let started = std::time::Instant::now();
                        let fut = srv.call(req);
                        async move {
                            let res = fut.await?;
                            let status = res.status();
                            if let Some(state) = state {
                                state
                                    .metrics
                                    .http_latency
                                    .with_label_values(&[endpoint.as_str()])
                                    .observe(started.elapsed().as_secs_f64());
                                state
                                    .metrics
                                    .http_requests
                                    .with_label_values(&[endpoint.as_str(), status.as_str()])
                                    .inc();
                            }
                            if let Some((method, path)) = logged {
                                tracing::debug!(%method, %path, status = status.as_u16(),
                                    micros = started.elapsed().as_micros() as u64, "request");
                            }
                            Ok(res)
                        }
                    })
                    .configure(|cfg| crate::http::configure_api(cfg, roles))
            }
        })
        .workers(workers)
        .on_connect(move |io, data| counts.on_connect(io, data))
        // Small frames (alerts, acks, receipts) go out at once instead of waiting for the
        // peer's delayed ACK (Nagle's algorithm costs up to 40 ms per exchange).
        .tcp_nodelay(true)
        .disable_signals()
        .shutdown_timeout(grace);
        let http = match tls {
            Some(config) => http.listen_rustls_0_23(http_listener, config)?,
            None => http.listen(http_listener)?,
        }
        .run();

        let metrics = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .configure(crate::http::configure_metrics)
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(grace)
        .listen(metrics_listener)?
        .run();

        Ok(Self {
            http,
            metrics,
            http_addr,
            metrics_addr,
            state,
            serving: None,
        })
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves (or a listener fails), then stops gracefully.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let http_handle = self.http.handle();
        let metrics_handle = self.metrics.handle();
        let mut http = tokio::spawn(self.http);
        let mut metrics = tokio::spawn(self.metrics);
        let sweeper = tokio::spawn(crate::housekeeping::maintain(self.state.clone()));
        // Alarms' timers fire on nodes that keep house (each once, by its lease).
        let alarm_clock = self.state.settings.roles.housekeeping.then(|| {
            let clock = crate::alarms::AlarmClock::new(self.state.clone());
            tokio::spawn(Arc::new(clock).run())
        });
        // The callbacks role delivers both outboxes: the Threema-compatible callbacks and
        // the status webhook's events.
        let dispatchers = match self.state.settings.roles.callbacks {
            true => {
                use crate::callback::{CallbackDispatcher, StatusDispatcher};
                let callbacks = CallbackDispatcher::new(self.state.clone())?;
                let statuses = StatusDispatcher::new(self.state.clone())?;
                vec![
                    tokio::spawn(Arc::new(callbacks).run()),
                    tokio::spawn(Arc::new(statuses).run()),
                ]
            }
            false => Vec::new(),
        };
        // Where several nodes may share the store, each tells the others what it commits.
        let cluster = match self.state.store.backend() {
            crate::store::Backend::Postgres => crate::cluster::start(
                self.state.store.clone(),
                self.state.settings.database_url(),
                self.state.hub.clone(),
                self.state.metrics.clone(),
            )
            .into(),
            crate::store::Backend::Sqlite => Vec::new(),
        };
        let tls = self.state.settings.server.tls_enabled();
        tracing::info!(http = %self.http_addr, tls, metrics = %self.metrics_addr, "tocsin is serving");
        let (mut http_done, mut metrics_done) = (false, false);
        let early_exit = tokio::select! {
            () = shutdown => None,
            r = &mut http => { http_done = true; Some(("HTTP API", r)) }
            r = &mut metrics => { metrics_done = true; Some(("metrics", r)) }
        };
        tokio::join!(http_handle.stop(true), metrics_handle.stop(true));
        let grace = Duration::from_secs(self.state.settings.server.shutdown_grace_secs + 1);
        let _ = tokio::time::timeout(grace, async {
            if !http_done {
                let _ = http.await;
            }
            if !metrics_done {
                let _ = metrics.await;
            }
        })
        .await;
        sweeper.abort();
        if let Some(clock) = alarm_clock {
            clock.abort();
        }
        for dispatcher in dispatchers {
            dispatcher.abort();
        }
        for task in cluster {
            task.abort();
        }
        self.state.store.close().await;
        tracing::info!("tocsin stopped");
        match early_exit {
            None => Ok(()),
            Some((what, Ok(Ok(())))) => anyhow::bail!("the {what} listener stopped unexpectedly"),
            Some((what, Ok(Err(e)))) => {
                Err(e).with_context(|| format!("the {what} listener failed"))
            }
            Some((what, Err(e))) => Err(e).with_context(|| format!("the {what} listener panicked")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{listen, redact_url};

    /// Clients connecting at once are queued by the kernel, not dropped: with std's
    /// backlog of 128, the 130th handshake would be dropped and retried by the client
    /// after a second, then after three more, past the timeout below.
    #[test]
    fn a_burst_of_connections_waits_in_the_backlog() {
        let listener = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let clients: Vec<_> = (0..300)
            .map(|i| {
                std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2))
                    .unwrap_or_else(|e| panic!("connection {i} was not queued: {e}"))
            })
            .collect();
        // Nothing has been accepted yet; they are all waiting in the queue.
        let (first, _) = listener.accept().unwrap();
        assert_eq!(first.peer_addr().unwrap(), clients[0].local_addr().unwrap());
    }

    #[test]
    fn database_passwords_are_hidden() {
        assert_eq!(
            redact_url("postgres://app:pw@db:5432/t"),
            "postgres://app:***@db:5432/t"
        );
        assert_eq!(redact_url("postgres://app@db/t"), "postgres://app@db/t");
        assert_eq!(
            redact_url("sqlite://./data/tocsin.db"),
            "sqlite://./data/tocsin.db"
        );
    }
}
