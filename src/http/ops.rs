//! Operational endpoints: health and metrics.

use actix_web::{web, HttpRequest, HttpResponse};

use crate::state::AppState;
use crate::store::Health;

/// `GET /health`: 200 `ok` while the store answers and takes writes; 503 with the reason
/// otherwise (writes failing for now, or the store failed until a restart).
/// How long `/health` waits for the store to answer.
const HEALTH_PING: std::time::Duration = std::time::Duration::from_millis(400);

pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let unavailable = |reason: String| {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .content_type("text/plain; charset=utf-8")
            .body(reason)
    };
    match state.store.health() {
        Health::Ok => {}
        Health::Degraded(reason) => return unavailable(format!("store degraded: {reason}")),
        Health::Failed(reason) => return unavailable(format!("store failed: {reason}")),
    }
    // A load balancer's probe gives up after a second or two: the answer comes within
    // HEALTH_PING even while the database does not answer at all.
    match tokio::time::timeout(HEALTH_PING, state.store.ping()).await {
        Ok(Ok(())) => HttpResponse::Ok().content_type("text/plain").body("ok"),
        Ok(Err(e)) => {
            tracing::warn!("health check: store unavailable: {e}");
            unavailable("store unavailable".to_owned())
        }
        Err(_) => unavailable(format!(
            "store does not answer within {} ms",
            HEALTH_PING.as_millis()
        )),
    }
}

/// `GET /metrics`: Prometheus text format. The queue depth, the writer's counters and the
/// idempotency keys in memory are read from the store here, so they cost one `COUNT` per
/// scrape and nothing on the hot path.
pub async fn metrics(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    if !metrics_allowed(&state.settings.server.metrics_token, &req) {
        return HttpResponse::Unauthorized()
            .insert_header(("WWW-Authenticate", "Bearer"))
            .content_type("text/plain")
            .body("a bearer token is needed for /metrics");
    }
    match state.store.queue_depth().await {
        Ok(depth) => state.metrics.queue_depth.set(depth),
        Err(e) => tracing::warn!("metrics: cannot read the queue depth: {e}"),
    }
    state.metrics.observe_writer(state.store.writer_counts());
    let health = match state.store.health() {
        Health::Ok => 0,
        Health::Degraded(_) => 1,
        Health::Failed(_) => 2,
    };
    state.metrics.store_health.set(health);
    let unsafe_durability = i64::from(state.store.unsafe_durability().is_some());
    state.metrics.store_unsafe_durability.set(unsafe_durability);
    if let Some(keys) = state.store.idempotency_keys_in_memory() {
        let keys = i64::try_from(keys).unwrap_or(i64::MAX);
        state.metrics.idempotency_keys_in_memory.set(keys);
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}

/// Whether the request may read `/metrics`: always without a configured token, else only
/// with `Authorization: Bearer <token>` (compared in constant time).
fn metrics_allowed(token: &str, req: &HttpRequest) -> bool {
    if token.is_empty() {
        return true;
    }
    let given = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    bool::from(subtle::ConstantTimeEq::ct_eq(
        given.as_bytes(),
        token.as_bytes(),
    ))
}

/// `GET /openapi.json`: the API description, for tools and client generators.
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(super::OPENAPI_JSON)
}
