//! `POST /send_e2e_bulk` (spec §2.3): up to 1000 sealed messages in one JSON request.
//!
//! Every element is handled like a `send_e2e` of its own (same checks, same charge, same
//! idempotency by recipient and nonce) and gets its own result; one bad element never
//! fails the others. With `sameMessageId=1` all accepted messages share one message ID.
//!
//! The elements are checked concurrently, then all submitted at once: the store's group
//! commit takes them in one or a few commits instead of one commit each. Submissions
//! enter the store's queue in element order, so when the credits run out it is the
//! later elements that are refused.

use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use tocsin_sdk::protocol::{IdentityId, MessageId, Nonce};

use super::authed;
use super::bulk::MAX_BULK_ITEMS;
use super::error::ApiError;
use super::json;
use super::params::Params;
use super::send::{header_flags, idempotency_key, recipient, require_mode, ttl, MAX_BOX_BYTES};
use crate::domain::UnixMs;
use crate::meter::Operation;
use crate::state::AppState;
use crate::store::GatewayMode;
use crate::submit::{submit, Caller, Outgoing};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkMessage {
    to: String,
    nonce: String,
    #[serde(rename = "box")]
    sealed: String,
    // Flags may be absent, a boolean, or `null` (one published SDK always sends
    // `"group": null`); absent and null both mean "not set".
    #[serde(default)]
    no_delivery_receipts: Option<bool>,
    #[serde(default)]
    no_push: Option<bool>,
    #[serde(default)]
    group: Option<bool>,
    /// Seconds the message may wait for the recipient's devices (a Tocsin extension).
    #[serde(default, deserialize_with = "whole_seconds")]
    ttl: Option<u64>,
}

/// A count of seconds as JSON writes it: an integer, or a number with no fraction (some
/// encoders write every number as a float, `600.0`); `null` is none.
fn whole_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let Some(number) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    if let Some(n) = number.as_u64() {
        return Ok(Some(n));
    }
    match number.as_f64() {
        // Below 2^64, so the conversion is exact for every float with no fraction.
        Some(f) if f.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&f) => {
            Ok(Some(f as u64))
        }
        _ => Err(serde::de::Error::custom("ttl must be whole seconds")),
    }
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum BulkResult {
    Accepted {
        #[serde(rename = "messageId")]
        message_id: String,
    },
    Failed {
        #[serde(rename = "errorCode")]
        error_code: u16,
    },
}

fn decode_base64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

/// Checks one element and resolves its recipient; nothing is charged or queued yet.
/// Reads the recipients' keys that are not cached yet in one go, so that the elements,
/// checked one by one below, find them in the cache instead of reading the store each.
/// Invalid and unknown IDs are left to the per-element check, which reports them.
async fn warm_recipients(state: &AppState, items: &[BulkMessage]) -> Result<(), ApiError> {
    let mut missing: Vec<IdentityId> = items
        .iter()
        .filter_map(|item| IdentityId::parse(&item.to).ok())
        .filter(|id| state.caches.recipients.get(id).is_none())
        .collect();
    missing.sort_unstable();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    for record in state.store.identities(&missing).await? {
        if !record.revoked {
            state.caches.recipients.put(record.id, record.public_key);
        }
    }
    Ok(())
}

async fn prepare(
    state: &AppState,
    item: &BulkMessage,
    message_id: MessageId,
) -> Result<Outgoing, ApiError> {
    let nonce = decode_base64(&item.nonce)
        .and_then(|bytes| Nonce::from_slice(&bytes).ok())
        .ok_or_else(|| ApiError::bad_request("nonce must be 24 bytes in base64"))?;
    let sealed =
        decode_base64(&item.sealed).ok_or_else(|| ApiError::bad_request("box is not base64"))?;
    if sealed.is_empty() {
        return Err(ApiError::bad_request("box is empty"));
    }
    if sealed.len() > MAX_BOX_BYTES {
        return Err(ApiError::TooLarge(format!(
            "box over {MAX_BOX_BYTES} bytes"
        )));
    }
    let (to, _) = recipient(state, Some(&item.to)).await?;
    Ok(Outgoing {
        message_id,
        to,
        nonce,
        sealed,
        flags: header_flags(
            item.no_push.unwrap_or(false),
            item.no_delivery_receipts.unwrap_or(false),
            item.group.unwrap_or(false),
        ),
        ttl: ttl(state, item.ttl)?,
    })
}

pub async fn send_e2e_bulk(
    state: web::Data<AppState>,
    req: HttpRequest,
    params: Params,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let who = authed(&state, &params).await?;
    require_mode(&who, GatewayMode::E2e)?;
    let body: Vec<BulkMessage> = json::read(&req, payload, json::BULK_SEND).await?;
    if body.len() > MAX_BULK_ITEMS {
        return Err(ApiError::TooLarge(format!(
            "more than {MAX_BULK_ITEMS} messages in one request"
        )));
    }
    let key = idempotency_key(&req)?;
    warm_recipients(&state, &body).await?;
    let now = UnixMs::now();
    let shared_id = params
        .flag("sameMessageId")
        .then(|| state.message_ids.next(now));
    let prepared = join_all(body.iter().map(|item| {
        let id = shared_id.unwrap_or_else(|| state.message_ids.next(now));
        prepare(&state, item, id)
    }))
    .await;
    // join_all polls in order, and `submit` reaches the store's queue on its first poll
    // (or waits its turn in that queue's fair line), so element order is kept.
    let submitted = join_all(prepared.into_iter().enumerate().map(|(index, msg)| {
        let (state, who) = (&state, &who);
        async move {
            let item_key = key.map(|k| format!("{k}#{index}"));
            let paid = state
                .meter
                .reserve(who.gateway().account, Operation::SendE2e);
            Ok::<_, ApiError>(
                submit(
                    state,
                    who.gateway(),
                    paid,
                    msg?,
                    item_key.as_deref(),
                    Caller::Worker,
                )
                .await?,
            )
        }
    }))
    .await;
    let results: Vec<BulkResult> = submitted
        .into_iter()
        .enumerate()
        .map(|(index, outcome)| match outcome {
            Ok(id) => BulkResult::Accepted {
                message_id: id.to_string(),
            },
            Err(ApiError::Internal(cause)) => {
                tracing::error!("bulk element {index} failed: {cause:#}");
                BulkResult::Failed { error_code: 500 }
            }
            Err(e) => BulkResult::Failed {
                error_code: actix_web::ResponseError::status_code(&e).as_u16(),
            },
        })
        .collect();
    Ok(HttpResponse::Ok().json(results))
}
