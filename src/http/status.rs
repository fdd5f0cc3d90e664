//! `GET /api/v1/messages/{messageId}`: what became of a message, for the gateway ID that
//! sent it. Metadata only (states and times); the box is long gone once delivered.
//!
//! States, in order: `queued` → `delivered` (a device of the recipient has it) → `read` →
//! `acknowledged` or `declined`; or `expired` when no device took it in time. `read` and the
//! user's answers are known only for basic-mode IDs, whose receipts the server can open;
//! an E2E-mode ID receives them sealed at its callback. Any other gateway ID gets 404,
//! exactly as for an unknown message.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use tocsin_sdk::protocol::MessageId;

use super::authed;
use super::error::ApiError;
use super::params::Params;
use crate::domain::MessageStatus;
use crate::state::AppState;

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusView {
    message_id: String,
    recipient: String,
    state: &'static str,
    /// Unix milliseconds of each state reached, absent when not reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    queued_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delivered_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    read_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    acknowledged_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    declined_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expired_at: Option<i64>,
}

pub async fn show(
    state: web::Data<AppState>,
    id: web::Path<String>,
    params: Params,
) -> Result<HttpResponse, ApiError> {
    const UNKNOWN: ApiError = ApiError::NotFound("no such message");
    let who = authed(&state, &params).await?;
    let id = MessageId::parse(&id).map_err(|_| UNKNOWN)?;
    let events = state
        .store
        .message_status(who.gateway().id.as_identity(), &id)
        .await?;
    let (recipient, _, _) = events.first().ok_or(UNKNOWN)?;
    let mut view = StatusView {
        message_id: id.to_string(),
        recipient: recipient.to_string(),
        ..StatusView::default()
    };
    // The furthest state reached is the message's state.
    let mut furthest = MessageStatus::Queued;
    for (_, event, at) in events.iter().filter(|(r, _, _)| r == recipient) {
        let slot = match event {
            MessageStatus::Queued => &mut view.queued_at,
            MessageStatus::Delivered => &mut view.delivered_at,
            MessageStatus::Read => &mut view.read_at,
            MessageStatus::Acknowledged => &mut view.acknowledged_at,
            MessageStatus::Declined => &mut view.declined_at,
            MessageStatus::Expired => &mut view.expired_at,
        };
        slot.get_or_insert(at.get());
        furthest = furthest.max(*event);
    }
    view.state = furthest.as_str();
    Ok(HttpResponse::Ok().json(view))
}
