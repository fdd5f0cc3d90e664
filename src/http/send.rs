//! `POST /send_simple` (spec §2.1): the server seals a text with the gateway ID's key.
//! `POST /send_e2e` (spec §2.2): relay a box the customer sealed.

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use tocsin_sdk::protocol::{
    hash_email, hash_phone, E2eMessage, IdentityId, MessageFlags, Nonce, PublicKey,
};

use super::error::ApiError;
use super::params::Params;
use super::{authed, plain};
use crate::auth::Authenticated;
use crate::config::MessageSettings;
use crate::domain::UnixMs;
use crate::meter::Operation;
use crate::state::AppState;
use crate::store::GatewayMode;
use crate::submit::{submit, Caller, Outgoing, SubmitError};

/// Largest text accepted by `send_simple`, in UTF-8 bytes.
pub const MAX_TEXT_BYTES: usize = 3500;

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
pub(super) fn idempotency_key(req: &HttpRequest) -> Result<Option<&str>, ApiError> {
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

/// A live identity that can receive, with its key, or 400 (spec: unknown IDs are a 400
/// when sending).
pub(super) async fn recipient(
    state: &AppState,
    raw: Option<&str>,
) -> Result<(IdentityId, PublicKey), ApiError> {
    let id = raw
        .and_then(|r| IdentityId::parse(r).ok())
        .ok_or_else(|| ApiError::bad_request("recipient ID is invalid"))?;
    if let Some(key) = state.caches.recipients.get(&id) {
        return Ok((id, key));
    }
    match state.store.identity(&id).await? {
        Some(record) if !record.revoked => {
            state.caches.recipients.put(id, record.public_key);
            Ok((id, record.public_key))
        }
        _ => Err(ApiError::bad_request("recipient ID is unknown")),
    }
}

/// `send_simple` names its recipient by exactly one of `to`, `phone` and `email`; the
/// latter two resolve through the directory (404 when nobody matches).
async fn simple_recipient(
    state: &AppState,
    params: &Params,
) -> Result<(IdentityId, PublicKey), ApiError> {
    const NO_MATCH: ApiError = ApiError::NotFound("phone or e-mail could not be resolved to an ID");
    match (params.get("to"), params.get("phone"), params.get("email")) {
        (Some(to), None, None) => recipient(state, Some(to)).await,
        (None, Some(phone), None) => {
            let record = state
                .store
                .identity_by_phone_hash(&hash_phone(phone))
                .await?
                .ok_or(NO_MATCH)?;
            Ok((record.id, record.public_key))
        }
        (None, None, Some(email)) => {
            let record = state
                .store
                .identity_by_email_hash(&hash_email(email))
                .await?
                .ok_or(NO_MATCH)?;
            Ok((record.id, record.public_key))
        }
        _ => Err(ApiError::bad_request(
            "give exactly one of to, phone and email",
        )),
    }
}

/// Refuses (400) a gateway ID set up for the other mode (spec §2.1, §2.2).
pub(super) fn require_mode(who: &Authenticated, mode: GatewayMode) -> Result<(), ApiError> {
    if who.gateway().mode == mode {
        return Ok(());
    }
    let name = match mode {
        GatewayMode::Basic => "basic",
        GatewayMode::E2e => "end-to-end",
    };
    Err(ApiError::bad_request(format!(
        "this gateway ID is not set up for {name} mode"
    )))
}

/// The optional `ttl` of a send, a Tocsin extension: how long the message may wait for
/// the recipient's devices, in whole seconds from 10 up to `messages.ttl_secs`. Past it,
/// it is not delivered and its status becomes `expired`. Absent: the server's TTL.
pub(super) fn ttl(state: &AppState, secs: Option<u64>) -> Result<Option<Duration>, ApiError> {
    let Some(secs) = secs else {
        return Ok(None);
    };
    let (min, max) = (
        MessageSettings::MIN_TTL.as_secs(),
        state.settings.messages.ttl_secs,
    );
    if (min..=max).contains(&secs) {
        Ok(Some(Duration::from_secs(secs)))
    } else {
        Err(ttl_error(min, max))
    }
}

fn ttl_error(min: u64, max: u64) -> ApiError {
    ApiError::bad_request(format!("ttl must be whole seconds from {min} to {max}"))
}

/// The `ttl` form field, when present.
fn ttl_field(state: &AppState, params: &Params) -> Result<Option<Duration>, ApiError> {
    let secs = match params.get("ttl") {
        None => None,
        Some(raw) => Some(raw.parse::<u64>().map_err(|_| {
            ttl_error(
                MessageSettings::MIN_TTL.as_secs(),
                state.settings.messages.ttl_secs,
            )
        })?),
    };
    ttl(state, secs)
}

/// Header flags from the optional fields of a send request.
pub(super) fn header_flags(no_push: bool, no_receipts: bool, group: bool) -> u8 {
    let mut flags = MessageFlags::default();
    if !no_push {
        flags = flags.with(MessageFlags::PUSH);
    }
    if no_receipts {
        flags = flags.with(MessageFlags::NO_RECEIPTS);
    }
    if group {
        flags = flags.with(MessageFlags::GROUP);
    }
    flags.0
}

/// Header flags from the optional form fields.
fn flags(params: &Params) -> u8 {
    header_flags(
        params.flag("noPush"),
        params.flag("noDeliveryReceipts"),
        params.flag("group"),
    )
}

pub async fn send_e2e(
    state: web::Data<AppState>,
    req: HttpRequest,
    params: Params,
) -> Result<HttpResponse, ApiError> {
    let who = authed(&state, &params).await?;
    require_mode(&who, GatewayMode::E2e)?;
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
    let mut sealed = vec![0; box_hex.len() / 2];
    hex::decode_to_slice(box_hex, &mut sealed)
        .map_err(|_| ApiError::bad_request("box is not hex"))?;
    let (to, _) = recipient(&state, params.get("to")).await?;
    let msg = Outgoing {
        message_id: state.message_ids.next(UnixMs::now()),
        to,
        nonce,
        sealed,
        flags: flags(&params),
        ttl: ttl_field(&state, &params)?,
    };
    let paid = state
        .meter
        .reserve(who.gateway().account, Operation::SendE2e);
    let id = submit(&state, who.gateway(), paid, msg, key, Caller::Worker).await?;
    Ok(plain(id.to_string()))
}

pub async fn send_simple(
    state: web::Data<AppState>,
    req: HttpRequest,
    params: Params,
) -> Result<HttpResponse, ApiError> {
    let who = authed(&state, &params).await?;
    require_mode(&who, GatewayMode::Basic)?;
    let key = idempotency_key(&req)?;
    let text = params
        .get("text")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::bad_request("text is missing"))?;
    if text.len() > MAX_TEXT_BYTES {
        return Err(ApiError::TooLarge(format!(
            "text over {MAX_TEXT_BYTES} bytes"
        )));
    }
    let (to, public_key) = simple_recipient(&state, &params).await?;
    let shared = state
        .shared_keys
        .get(who.gateway(), &state.data_key, &public_key)
        .map_err(|e| ApiError::Internal(e.into()))?;
    let nonce = Nonce::random();
    let sealed = shared.seal(&nonce, &E2eMessage::Text(text.to_owned()).to_padded());
    let msg = Outgoing {
        message_id: state.message_ids.next(UnixMs::now()),
        to,
        nonce,
        sealed,
        flags: flags(&params),
        ttl: ttl_field(&state, &params)?,
    };
    let paid = state
        .meter
        .reserve(who.gateway().account, Operation::SendSimple);
    let id = submit(&state, who.gateway(), paid, msg, key, Caller::Worker).await?;
    Ok(plain(id.to_string()))
}
