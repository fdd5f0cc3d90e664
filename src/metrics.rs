//! Prometheus metrics, owned by `AppState` (no global registry). Label values are bounded:
//! route patterns and status codes, never IDs.

use prometheus::{Encoder, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Requests answered, by route pattern and status code.
    pub http_requests: IntCounterVec,
    /// Requests whose credentials were refused.
    pub auth_failures: IntCounter,
    /// 1 while the server runs; carries the version as a label.
    pub build_info: IntGauge,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new("tocsin_http_requests_total", "HTTP requests answered"),
            &["endpoint", "status"],
        )
        .expect("metric definition is valid");
        let build_info = IntGauge::with_opts(
            Opts::new("tocsin_build_info", "Tocsin build information")
                .const_label("version", env!("CARGO_PKG_VERSION")),
        )
        .expect("metric definition is valid");
        let auth_failures = IntCounter::new(
            "tocsin_auth_failures_total",
            "API requests whose gateway ID and secret were refused",
        )
        .expect("metric definition is valid");
        build_info.set(1);
        registry
            .register(Box::new(auth_failures.clone()))
            .expect("registered once");
        registry
            .register(Box::new(http_requests.clone()))
            .expect("registered once");
        registry
            .register(Box::new(build_info.clone()))
            .expect("registered once");
        Self {
            registry,
            http_requests,
            auth_failures,
            build_info,
        }
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
