//! The directory for devices (native JSON API): create an identity, read one, and learn the
//! chat server's public key.
//!
//! A device generates its key pair itself and sends only the public key; the server picks
//! a fresh 8-character ID. Creation is rate-limited per client (an IPv6 client by its
//! /64) and, unless `directory.open_enrollment` is on, needs a one-time invite code in the
//! body or the configured enrollment token as a bearer token. An invite is spent in the
//! transaction that creates the identity.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tocsin_sdk::protocol::{Capabilities, GatewayId, IdentityId, InviteCode, PublicKey};

use super::error::ApiError;
use super::json;
use super::keys::GATEWAY_CAPABILITIES;
use crate::domain::UnixMs;
use crate::state::AppState;
use crate::store::{NewIdentity, StoreError};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateIdentity {
    public_key: String,
    #[serde(default)]
    invite: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct IdentityView {
    identity: String,
    public_key: String,
    capabilities: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ServerView {
    public_key: String,
}

/// Whether the request carries the configured enrollment token (compared in constant
/// time): `Ok(false)` when none is configured or none is presented, 401 for a wrong one.
fn presents_enrollment_token(state: &AppState, req: &HttpRequest) -> Result<bool, ApiError> {
    let expected = &state.settings.directory.enrollment_token;
    if expected.is_empty() {
        return Ok(false);
    }
    let Some(presented) = req
        .headers()
        .get("Authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return Ok(false);
    };
    if bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(true)
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// `POST /api/v1/identities` → 201 with the new ID.
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    if let Some(ip) = state.proxies.client_ip(&req) {
        state.limits.check_identity_creation(ip)?;
    }
    let by_token = presents_enrollment_token(&state, &req)?;
    let body: CreateIdentity = json::read_object(&req, payload, json::IDENTITY).await?;
    let invite = body
        .invite
        .as_deref()
        .map(InviteCode::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("invite: {e}")))?;
    if invite.is_none() && !by_token && !state.settings.directory.open_enrollment {
        return Err(ApiError::Forbidden(
            "enrolment needs an invite code from the operator of this server",
        ));
    }
    let invite_hash = invite.map(|code| state.data_key.hash_invite(&code));
    let public_key = PublicKey::parse(&body.public_key)
        .map_err(|e| ApiError::bad_request(format!("publicKey: {e}")))?;
    for _ in 0..16 {
        let new = NewIdentity {
            id: IdentityId::random_user(),
            public_key,
            phone_hash: None,
            email_hash: None,
            capabilities: Capabilities::default_for_device(),
        };
        match state
            .store
            .enrol_identity(&new, UnixMs::now(), invite_hash.as_ref())
            .await
        {
            Ok(record) => {
                return Ok(HttpResponse::Created().json(IdentityView {
                    identity: record.id.to_string(),
                    public_key: record.public_key.to_string(),
                    capabilities: record.capabilities.to_string(),
                }))
            }
            Err(StoreError::AlreadyExists { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Internal(anyhow::anyhow!(
        "no free identity ID after 16 draws"
    )))
}

/// `GET /api/v1/identities/{id}`: the current key and capabilities of a live identity,
/// or of a gateway ID (devices need it to open alerts and to reply).
pub async fn show(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    const UNKNOWN: ApiError = ApiError::NotFound("no such identity");
    // Anyone may ask, so each address is held to the per-IP budget of the API.
    if let Some(ip) = state.proxies.client_ip(&req) {
        state.limits.check_ip(ip)?;
    }
    let id = IdentityId::parse(&id).map_err(|_| UNKNOWN)?;
    let (public_key, capabilities) = if id.is_gateway() {
        let gateway = GatewayId::try_from(id).map_err(|_| UNKNOWN)?;
        let record = state.store.gateway(&gateway).await?.ok_or(UNKNOWN)?;
        (record.public_key, GATEWAY_CAPABILITIES.to_owned())
    } else {
        let record = state
            .store
            .identity(&id)
            .await?
            .filter(|r| !r.revoked)
            .ok_or(UNKNOWN)?;
        (record.public_key, record.capabilities.to_string())
    };
    Ok(HttpResponse::Ok().json(IdentityView {
        identity: id.to_string(),
        public_key: public_key.to_string(),
        capabilities,
    }))
}

/// `GET /api/v1/server`: the chat server's public key (to pin on first use, or to compare
/// with the value the operator published).
pub async fn server(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(ServerView {
        public_key: state.server_key.public.to_string(),
    })
}
