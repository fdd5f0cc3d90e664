//! Prometheus metrics, owned by `AppState` (no global registry). Label values are bounded:
//! route patterns, status codes, modes and ledger reasons — never IDs.

use prometheus::core::Collector;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Requests answered, by route pattern and status code.
    pub http_requests: IntCounterVec,
    /// Connections refused because their address held `server.connections_per_ip`.
    pub connections_refused: IntCounter,
    /// Time to answer, by route pattern.
    pub http_latency: HistogramVec,
    /// Requests whose credentials were refused.
    pub auth_failures: IntCounter,
    /// Gateway IDs found past their watch of failed logins from all addresses (at most one
    /// a minute per ID).
    pub auth_failure_alarms: IntCounter,
    /// Messages committed to a queue, by gateway mode (`basic`, `e2e`).
    pub messages_accepted: IntCounterVec,
    /// Credits taken, by ledger reason (`send_simple`, `send_e2e`, lookups, …).
    pub credits_debited: IntCounterVec,
    /// Messages waiting in every queue; refreshed on each scrape.
    pub queue_depth: IntGauge,
    /// Idempotency keys held in memory (SQLite only; PostgreSQL keeps them in a table).
    pub idempotency_keys_in_memory: IntGauge,
    /// 0 while the store takes writes, 1 while writes fail for a reason that may pass, 2
    /// once it has failed for good (a restart is needed).
    pub store_health: IntGauge,
    /// 1 when PostgreSQL runs with fsync or synchronous_commit off (allowed by config).
    pub store_unsafe_durability: IntGauge,
    /// Group commits of the store's writer; refreshed on each scrape.
    pub store_commits: IntCounter,
    /// Messages handed to devices, by where the session took them from: `inbox` (handed
    /// over by the hub after the commit) or `store` (read from the queue).
    pub chat_deliveries: IntCounterVec,
    /// What devices were refused for a limit, by the limit: `sessions`, `devices`,
    /// `no_callback`, `pending_per_sender`, `pending_per_gateway`.
    pub chat_refused: IntCounterVec,
    /// Frames from devices that waited for their identity's budget, by the budget
    /// (`frames`, `bytes`).
    pub chat_throttled: IntCounterVec,
    /// Jobs those commits carried, by kind (`submission`, `ack`, `direct`, `callback`);
    /// refreshed on each scrape.
    pub store_jobs: IntCounterVec,
    /// Groups replayed one job at a time after the fast path diverged or failed.
    pub store_replays: IntCounter,
    /// Devices dropped for not being seen for `devices.stale_after_secs`.
    pub devices_dropped: IntCounter,
    /// Serialises [`Metrics::observe_writer`], so two scrapes never add the same delta.
    writer_catch_up: std::sync::Mutex<()>,
    /// 1 while the server runs; carries the version as a label.
    pub build_info: IntGauge,
    /// 1 while this node listens for the other nodes' wake-ups (PostgreSQL).
    pub cluster_listening: IntGauge,
    /// Times the connection listening for the other nodes' wake-ups was lost.
    pub cluster_listener_lost: IntCounter,
}

/// Creates a metric and registers it; the definitions are constants, so failure is a bug.
fn register<M: Collector + Clone + 'static>(
    registry: &Registry,
    metric: prometheus::Result<M>,
) -> M {
    let metric = metric.expect("metric definition is valid");
    registry
        .register(Box::new(metric.clone()))
        .expect("each metric is registered once");
    metric
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new();
        let build_info = register(
            &r,
            IntGauge::with_opts(
                Opts::new("tocsin_build_info", "Tocsin build information")
                    .const_label("version", env!("CARGO_PKG_VERSION")),
            ),
        );
        build_info.set(1);
        Self {
            cluster_listening: register(
                &r,
                IntGauge::new(
                    "tocsin_cluster_listening",
                    "1 while this node listens for the other nodes' wake-ups (PostgreSQL)",
                ),
            ),
            cluster_listener_lost: register(
                &r,
                IntCounter::new(
                    "tocsin_cluster_listener_lost_total",
                    "Times the connection listening for the other nodes' wake-ups was lost",
                ),
            ),
            connections_refused: register(
                &r,
                IntCounter::new(
                    "tocsin_connections_refused_total",
                    "HTTP connections refused because their address held as many as it may",
                ),
            ),
            http_requests: register(
                &r,
                IntCounterVec::new(
                    Opts::new("tocsin_http_requests_total", "HTTP requests answered"),
                    &["endpoint", "status"],
                ),
            ),
            http_latency: register(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "tocsin_http_request_duration_seconds",
                        "Time to answer an HTTP request",
                    )
                    .buckets(vec![
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                    ]),
                    &["endpoint"],
                ),
            ),
            auth_failures: register(
                &r,
                IntCounter::new(
                    "tocsin_auth_failures_total",
                    "API requests whose gateway ID and secret were refused",
                ),
            ),
            auth_failure_alarms: register(
                &r,
                IntCounter::new(
                    "tocsin_auth_failure_alarms_total",
                    "Gateway IDs with many failed logins from many addresses, at most one a minute per ID",
                ),
            ),
            messages_accepted: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "tocsin_messages_accepted_total",
                        "Messages durably queued, by gateway mode",
                    ),
                    &["mode"],
                ),
            ),
            credits_debited: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "tocsin_credits_debited_total",
                        "Credits taken, by ledger reason",
                    ),
                    &["reason"],
                ),
            ),
            queue_depth: register(
                &r,
                IntGauge::new(
                    "tocsin_queue_depth",
                    "Messages waiting for their recipients' devices",
                ),
            ),
            idempotency_keys_in_memory: register(
                &r,
                IntGauge::new(
                    "tocsin_idempotency_keys_in_memory",
                    "Idempotency keys of the retry window held in memory (SQLite)",
                ),
            ),
            store_health: register(
                &r,
                IntGauge::new(
                    "tocsin_store_health",
                    "0: the store takes writes; 1: writes fail for now; 2: failed until a restart",
                ),
            ),
            store_unsafe_durability: register(
                &r,
                IntGauge::new(
                    "tocsin_store_unsafe_durability",
                    "1 when the database runs with its durability settings off",
                ),
            ),
            chat_deliveries: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "tocsin_chat_deliveries_total",
                        "Messages handed to devices, by where the session took them from",
                    ),
                    &["source"],
                ),
            ),
            chat_refused: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "tocsin_chat_refused_total",
                        "Device sessions closed or messages refused for a limit, by the limit",
                    ),
                    &["limit"],
                ),
            ),
            chat_throttled: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "tocsin_chat_throttled_total",
                        "Frames from devices that waited for their identity's budget, by the budget",
                    ),
                    &["budget"],
                ),
            ),
            store_commits: register(
                &r,
                IntCounter::new(
                    "tocsin_store_commits_total",
                    "Transactions committed by the store's group-commit writer",
                ),
            ),
            store_jobs: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "tocsin_store_jobs_total",
                        "Submissions, device acks and device-to-device messages carried by group commits",
                    ),
                    &["kind"],
                ),
            ),
            store_replays: register(
                &r,
                IntCounter::new(
                    "tocsin_store_replays_total",
                    "Groups replayed one job at a time after the multi-row path gave up",
                ),
            ),
            devices_dropped: register(
                &r,
                IntCounter::new(
                    "tocsin_devices_dropped_total",
                    "Devices dropped for not being seen for devices.stale_after_secs",
                ),
            ),
            writer_catch_up: std::sync::Mutex::new(()),
            build_info,
            registry: r,
        }
    }

    /// Brings the store's writer counters up to `counts` (they only grow).
    pub fn observe_writer(&self, counts: crate::store::WriterCounts) {
        let _one_at_a_time = self
            .writer_catch_up
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let catch_up = |counter: &IntCounter, total: u64| {
            counter.inc_by(total.saturating_sub(counter.get()));
        };
        catch_up(&self.store_commits, counts.commits);
        catch_up(&self.store_replays, counts.replays);
        catch_up(
            &self.store_jobs.with_label_values(&["submission"]),
            counts.submissions,
        );
        catch_up(&self.store_jobs.with_label_values(&["ack"]), counts.acks);
        catch_up(
            &self.store_jobs.with_label_values(&["direct"]),
            counts.directs,
        );
        catch_up(
            &self.store_jobs.with_label_values(&["callback"]),
            counts.callbacks,
        );
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!("cannot encode metrics: {e}");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
