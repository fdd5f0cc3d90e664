//! The HTTP edge: route tables for the API listener and the metrics listener, and the few
//! helpers every handler shares. Handlers parse, call one stage, and render.

mod alarms;
mod blobs;
mod body;
mod bulk;
pub mod connections;
mod credits;
mod directory;
pub mod error;
mod hooks;
mod json;
mod keys;
mod lookup;
mod ops;
pub mod params;
mod send;
mod send_bulk;
mod status;

use actix_web::http::Method;
use actix_web::{web, HttpResponse, Route};

use crate::auth::{authenticate, AuthError, Authenticated};
use crate::meter::Operation;
use crate::state::AppState;
use error::ApiError;
use params::Params;

pub use alarms::check_template as check_alarm_template;

/// The OpenAPI 3 document of the public listener, served at `/openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

/// Every route of the public listener. The OpenAPI document lists exactly these; a test
/// compares the two.
fn api_routes() -> Vec<(Method, &'static str, Route)> {
    vec![
        (Method::GET, "/health", web::get().to(ops::health)),
        (Method::GET, "/openapi.json", web::get().to(ops::openapi)),
        (
            Method::POST,
            "/send_simple",
            web::post().to(send::send_simple),
        ),
        (Method::POST, "/send_e2e", web::post().to(send::send_e2e)),
        (
            Method::POST,
            "/send_e2e_bulk",
            web::post().to(send_bulk::send_e2e_bulk),
        ),
        (Method::GET, "/credits", web::get().to(credits::credits)),
        (Method::POST, "/upload_blob", web::post().to(blobs::upload)),
        (Method::GET, "/blobs/{id}", web::get().to(blobs::download)),
        (Method::POST, "/pubkeys/bulk", web::post().to(bulk::pubkeys)),
        (Method::POST, "/lookup/bulk", web::post().to(bulk::lookup)),
        (Method::GET, "/pubkeys/{id}", web::get().to(keys::pubkey)),
        (
            Method::GET,
            "/capabilities/{id}",
            web::get().to(keys::capabilities),
        ),
        (
            Method::GET,
            "/lookup/phone/{value}",
            web::get().to(lookup::by_phone),
        ),
        (
            Method::GET,
            "/lookup/phone_hash/{value}",
            web::get().to(lookup::by_phone_hash),
        ),
        (
            Method::GET,
            "/lookup/email/{value}",
            web::get().to(lookup::by_email),
        ),
        (
            Method::GET,
            "/lookup/email_hash/{value}",
            web::get().to(lookup::by_email_hash),
        ),
        (
            Method::POST,
            "/api/v1/identities",
            web::post().to(directory::create),
        ),
        (
            Method::GET,
            "/api/v1/identities/{id}",
            web::get().to(directory::show),
        ),
        (
            Method::GET,
            "/api/v1/server",
            web::get().to(directory::server),
        ),
        (Method::GET, "/chat", web::get().to(crate::ws::chat)),
        (
            Method::GET,
            "/api/v1/messages/{id}",
            web::get().to(status::show),
        ),
        (
            Method::GET,
            "/api/v1/blobs/{id}",
            web::get().to(blobs::device_download),
        ),
        (
            Method::POST,
            "/api/v1/alarms",
            web::post().to(alarms::trigger),
        ),
        (Method::GET, "/api/v1/alarms", web::get().to(alarms::list)),
        (
            Method::GET,
            "/api/v1/alarms/{id}",
            web::get().to(alarms::show),
        ),
        (
            Method::POST,
            "/api/v1/alarms/{id}/resolve",
            web::post().to(alarms::resolve),
        ),
        (
            Method::POST,
            "/hooks/alertmanager/{token}",
            web::post().to(hooks::alertmanager),
        ),
    ]
}

/// `(method, path)` of every public route, for checking the OpenAPI document.
pub fn api_route_list() -> Vec<(Method, &'static str)> {
    api_routes()
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect()
}

/// The paths devices use; the role `chat` serves them.
const DEVICE_PATHS: [&str; 5] = [
    "/chat",
    "/api/v1/identities",
    "/api/v1/identities/{id}",
    "/api/v1/server",
    "/api/v1/blobs/{id}",
];

/// Whether a node with `roles` serves `path`: `/health` always, device paths with the role
/// `chat`, the rest (the gateway API and its document) with the role `api`.
fn serves(roles: crate::config::RoleSettings, path: &str) -> bool {
    match path {
        "/health" => true,
        _ if DEVICE_PATHS.contains(&path) => roles.chat,
        _ => roles.api,
    }
}

/// Routes of the public listener, those of the node's `roles`. A path asked with a
/// method it does not serve is answered 405 with `Allow`.
pub fn configure_api(cfg: &mut web::ServiceConfig, roles: crate::config::RoleSettings) {
    cfg.app_data(web::FormConfig::default().limit(params::FORM_LIMIT));
    let mut paths: Vec<(&'static str, Vec<(Method, Route)>)> = Vec::new();
    for (method, path, route) in api_routes() {
        if !serves(roles, path) {
            continue;
        }
        match paths.iter_mut().find(|(p, _)| *p == path) {
            Some((_, routes)) => routes.push((method, route)),
            None => paths.push((path, vec![(method, route)])),
        }
    }
    for (path, routes) in paths {
        let allow: Vec<&str> = routes.iter().map(|(m, _)| m.as_str()).collect();
        let allow = allow.join(", ");
        let resource = routes
            .into_iter()
            .fold(web::resource(path), |resource, (_, route)| {
                resource.route(route)
            });
        cfg.service(resource.default_service(web::to(move || {
            let allow = allow.clone();
            async move {
                HttpResponse::MethodNotAllowed()
                    .insert_header(("Allow", allow.as_str()))
                    .content_type("text/plain; charset=utf-8")
                    .body(format!("method not allowed; this path takes {allow}"))
            }
        })));
    }
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
    // Failures are recorded for gateway IDs only: anything else in `from` can never log
    // in, and keying on it would let a caller grow the table with junk keys.
    let claimed = from.and_then(|f| tocsin_sdk::protocol::GatewayId::parse(f).ok());
    let attempt = claimed.zip(params.client_ip());
    if let Some(ip) = params.client_ip() {
        limits.check_ip(ip)?;
    }
    if let Some((from, ip)) = attempt {
        limits.check_not_blocked(&from, ip)?;
    }
    match authenticate(state, from, params.get("secret")).await {
        Ok(who) => {
            limits.check_gateway(&who.gateway().id)?;
            Ok(who)
        }
        Err(AuthError::Rejected) => {
            state.metrics.auth_failures.inc();
            if let Some(from) = claimed {
                if limits.gateway_failure_alarm(&from) {
                    state.metrics.auth_failure_alarms.inc();
                    tracing::warn!(
                        gateway_id = %from,
                        "many failed logins for this gateway ID from many addresses"
                    );
                }
            }
            if let Some((from, ip)) = attempt {
                limits.record_failure(&from, ip)?;
            }
            Err(ApiError::Unauthorized)
        }
        Err(AuthError::Store(e)) => Err(e.into()),
    }
}

/// Charges the price of a lookup, if any (402 when the balance cannot cover it).
async fn charge_lookup(
    state: &AppState,
    who: &Authenticated,
    lookup: Operation,
) -> Result<(), ApiError> {
    state
        .meter
        .charge_now(&state.store, who.gateway().account, lookup)
        .await
        .map_err(ApiError::from)
}

/// A `text/plain` success body, without a trailing newline (spec §1).
fn plain(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(body)
}
