//! `GET /pubkeys/{id}`, `GET /capabilities/{id}` (spec §2.6, §2.7).

use actix_web::{web, HttpResponse};
use tocsin_sdk::protocol::{Capabilities, IdentityId, PublicKey};

use super::error::ApiError;
use super::params::Params;
use super::{authed, charge_lookup, plain};
use crate::meter::Operation;
use crate::state::AppState;

/// What gateway IDs can receive (through their callback).
pub(super) const GATEWAY_CAPABILITIES: &str = "text,image,video,file";

/// The current key and capabilities of a live identity or a gateway ID.
async fn directory_entry(
    state: &AppState,
    raw: &str,
) -> Result<(PublicKey, Capabilities), ApiError> {
    const UNKNOWN: ApiError = ApiError::NotFound("no such identity");
    let id = IdentityId::parse(raw).map_err(|_| UNKNOWN)?;
    if id.is_gateway() {
        let gateway_id = tocsin_sdk::protocol::GatewayId::try_from(id).map_err(|_| UNKNOWN)?;
        let record = state.store.gateway(&gateway_id).await?.ok_or(UNKNOWN)?;
        let caps =
            Capabilities::parse(GATEWAY_CAPABILITIES).map_err(|e| ApiError::Internal(e.into()))?;
        return Ok((record.public_key, caps));
    }
    match state.store.identity(&id).await? {
        Some(record) if !record.revoked => Ok((record.public_key, record.capabilities)),
        _ => Err(UNKNOWN),
    }
}

pub async fn pubkey(
    state: web::Data<AppState>,
    id: web::Path<String>,
    params: Params,
) -> Result<HttpResponse, ApiError> {
    let who = authed(&state, &params).await?;
    let (key, _) = directory_entry(&state, &id).await?;
    charge_lookup(&state, &who, Operation::PubkeyLookup).await?;
    Ok(plain(key.to_string()))
}

pub async fn capabilities(
    state: web::Data<AppState>,
    id: web::Path<String>,
    params: Params,
) -> Result<HttpResponse, ApiError> {
    let who = authed(&state, &params).await?;
    let (_, caps) = directory_entry(&state, &id).await?;
    charge_lookup(&state, &who, Operation::CapabilitiesLookup).await?;
    Ok(plain(caps.to_string()))
}
