//! Operational endpoints: health and metrics.

use actix_web::{web, HttpResponse};

use crate::state::AppState;

/// `GET /health`: 200 `ok` while the store answers, 503 otherwise.
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    match state.store.ping().await {
        Ok(()) => HttpResponse::Ok().content_type("text/plain").body("ok"),
        Err(e) => {
            tracing::warn!("health check: store unavailable: {e}");
            HttpResponse::ServiceUnavailable()
                .content_type("text/plain")
                .body("store unavailable")
        }
    }
}

/// `GET /metrics`: Prometheus text format. The queue depth, the writer's counters and the
/// idempotency keys in memory are read from the store here, so they cost one `COUNT` per
/// scrape and nothing on the hot path.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    match state.store.queue_depth().await {
        Ok(depth) => state.metrics.queue_depth.set(depth),
        Err(e) => tracing::warn!("metrics: cannot read the queue depth: {e}"),
    }
    state.metrics.observe_writer(state.store.writer_counts());
    if let Some(keys) = state.store.idempotency_keys_in_memory() {
        let keys = i64::try_from(keys).unwrap_or(i64::MAX);
        state.metrics.idempotency_keys_in_memory.set(keys);
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}

/// `GET /openapi.json`: the API description, for tools and client generators.
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(super::OPENAPI_JSON)
}
