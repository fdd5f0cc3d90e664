//! `POST /send_e2e` (spec §2.2): relay a box the customer sealed.

use actix_web::{web, HttpRequest, HttpResponse};
use tocsin_sdk::protocol::{IdentityId, MessageFlags, Nonce};

use super::error::ApiError;
use super::params::Params;
use super::{authed, plain};
use crate::state::AppState;
use crate::store::GatewayMode;
use crate::submit::{submit, Outgoing, SubmitError};

/// Largest box accepted, in bytes (8000 hex characters).
pub const MAX_BOX_BYTES: usize = 4000;

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::NoCredits => ApiError::NoCredits,
            SubmitError::Store(e) => e.into(),
        }
    }
}

/// The `Idempotency-Key` header, if present: 1–255 visible ASCII characters.
fn idempotency_key(req: &HttpRequest) -> Result<Option<&str>, ApiError> {
    let Some(value) = req.headers().get("Idempotency-Key") else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key) if (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(Some(key))
        }
        _ => Err(ApiError::bad_request(
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        )),
    }
}

/// A live identity that can receive, or 400 (spec: unknown IDs are a 400 when sending).
async fn recipient(state: &AppState, raw: Option<&str>) -> Result<IdentityId, ApiError> {
    let id = raw
        .and_then(|r| IdentityId::parse(r).ok())
        .ok_or_else(|| ApiError::bad_request("recipient ID is invalid"))?;
    match state.store.identity(&id).await? {
        Some(record) if !record.revoked => Ok(id),
        _ => Err(ApiError::bad_request("recipient ID is unknown")),
    }
}

/// Header flags from the optional form fields.
fn flags(params: &Params) -> u8 {
    let mut flags = MessageFlags::default();
    if !params.flag("noPush") {
        flags = flags.with(MessageFlags::PUSH);
    }
    if params.flag("noDeliveryReceipts") {
        flags = flags.with(MessageFlags::NO_RECEIPTS);
    }
    if params.flag("group") {
        flags = flags.with(MessageFlags::GROUP);
    }
    flags.0
}

pub async fn send_e2e(
    state: web::Data<AppState>,
    req: HttpRequest,
    params: Params,
) -> Result<HttpResponse, ApiError> {
    let who = authed(&state, &params).await?;
    if who.gateway().mode != GatewayMode::E2e {
        return Err(ApiError::bad_request(
            "this gateway ID is not set up for end-to-end mode",
        ));
    }
    let key = idempotency_key(&req)?;
    let nonce = params
        .get("nonce")
        .and_then(|n| Nonce::parse(n).ok())
        .ok_or_else(|| ApiError::bad_request("nonce must be 24 bytes as 48 hex characters"))?;
    let box_hex = params
        .get("box")
        .filter(|b| !b.is_empty())
        .ok_or_else(|| ApiError::bad_request("box is missing"))?;
    if box_hex.len() > 2 * MAX_BOX_BYTES {
        return Err(ApiError::TooLarge(format!(
            "box over {MAX_BOX_BYTES} bytes"
        )));
    }
    let sealed = hex::decode(box_hex).map_err(|_| ApiError::bad_request("box is not hex"))?;
    let to = recipient(&state, params.get("to")).await?;
    let msg = Outgoing {
        to,
        nonce,
        sealed,
        flags: flags(&params),
        price: state.settings.prices.text,
        reason: "send_e2e",
    };
    let id = submit(&state, &who, msg, key).await?;
    Ok(plain(id.to_string()))
}
