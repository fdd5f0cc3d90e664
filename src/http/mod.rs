//! The HTTP edge: route tables for the API listener and the metrics listener, and the few
//! helpers every handler shares. Handlers parse, call one stage, and render.

mod credits;
pub mod error;
mod keys;
mod lookup;
mod ops;
pub mod params;
mod send;

use actix_web::{web, HttpResponse};

use crate::auth::{authenticate, AuthError, Authenticated};
use crate::domain::now_ms;
use crate::state::AppState;
use error::ApiError;
use params::Params;

/// Routes of the public listener.
pub fn configure_api(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::FormConfig::default().limit(params::FORM_LIMIT))
        .route("/health", web::get().to(ops::health))
        .route("/send_simple", web::post().to(send::send_simple))
        .route("/send_e2e", web::post().to(send::send_e2e))
        .route("/credits", web::get().to(credits::credits))
        .route("/pubkeys/{id}", web::get().to(keys::pubkey))
        .route("/capabilities/{id}", web::get().to(keys::capabilities))
        .route("/lookup/phone/{value}", web::get().to(lookup::by_phone))
        .route(
            "/lookup/phone_hash/{value}",
            web::get().to(lookup::by_phone_hash),
        )
        .route("/lookup/email/{value}", web::get().to(lookup::by_email))
        .route(
            "/lookup/email_hash/{value}",
            web::get().to(lookup::by_email_hash),
        );
}

/// Routes of the metrics listener (bind it to a private address).
pub fn configure_metrics(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(ops::metrics));
}

/// Admits and authenticates the caller: the per-IP limit, the failed-login block for this
/// (ID, IP) pair, `from`/`secret` from the query or form body, then the per-ID limit.
async fn authed(state: &AppState, params: &Params) -> Result<Authenticated, ApiError> {
    let limits = &state.limits;
    let from = params.get("from");
    let attempt = from.zip(params.client_ip());
    if let Some(ip) = params.client_ip() {
        limits.check_ip(ip)?;
    }
    if let Some((from, ip)) = attempt {
        limits.check_not_blocked(from, ip)?;
    }
    match authenticate(state, from, params.get("secret")).await {
        Ok(who) => {
            limits.check_gateway(&who.gateway().id)?;
            Ok(who)
        }
        Err(AuthError::Rejected) => {
            state.metrics.auth_failures.inc();
            if let Some((from, ip)) = attempt {
                limits.record_failure(from, ip)?;
            }
            Err(ApiError::Unauthorized)
        }
        Err(AuthError::Store(e)) => Err(e.into()),
    }
}

/// Charges the configured lookup price, if any (402 when the balance cannot cover it).
async fn charge_lookup(
    state: &AppState,
    who: &Authenticated,
    reason: &str,
) -> Result<(), ApiError> {
    let price = i64::from(state.settings.prices.lookup);
    if price == 0 {
        return Ok(());
    }
    match state
        .store
        .charge(who.gateway().account, price, reason, now_ms())
        .await?
    {
        Some(_) => Ok(()),
        None => Err(ApiError::NoCredits),
    }
}

/// A `text/plain` success body, without a trailing newline (spec §1).
fn plain(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(body)
}
