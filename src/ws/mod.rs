//! The chat network edge: devices connect at `GET /chat` (WebSocket) and speak the chat
//! server protocol ([`session`]); the [`crate::hub`] wakes their sessions when messages
//! arrive, and on SQLite hands them the messages themselves.
//!
//! [`session`] runs the handshake and the session loop; `deliver` moves messages from the
//! store to the device and from the device to the store; `link` holds what both need (the
//! sealed channel to the device, why a session ends, the ack), so `deliver` does not
//! import `session`.

mod deliver;
mod link;
pub mod session;

use actix_web::{web, HttpRequest, HttpResponse};

use crate::state::AppState;

/// `GET /chat`: upgrades to WebSocket and serves the device on this worker.
pub async fn chat(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, actix_web::Error> {
    // A connection and its handshake cost a key exchange before anyone is known: each
    // address is held to the per-IP budget of the API.
    if let Some(ip) = state.proxies.client_ip(&req) {
        if let Err(limited) = state.limits.check_ip(ip) {
            return Ok(HttpResponse::TooManyRequests()
                .insert_header(("Retry-After", limited.retry_after_secs.to_string()))
                .content_type("text/plain")
                .body("rate limit reached"));
        }
    }
    // Anything but a WebSocket upgrade gets the API's plain-text 400 with the reason.
    let (response, session, stream) = actix_ws::handle(&req, body).map_err(|e| {
        crate::http::error::ApiError::bad_request(format!(
            "/chat takes WebSocket upgrades only: {e}"
        ))
    })?;
    let state = state.get_ref().clone();
    actix_web::rt::spawn(session::run(state, session, stream));
    Ok(response)
}
