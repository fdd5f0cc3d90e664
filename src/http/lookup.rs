//! `GET /lookup/{phone,phone_hash,email,email_hash}/{value}` (spec §2.4).
//!
//! Plain values are normalised and hashed here, exactly as clients hash them, so both
//! forms meet the same stored hashes. Garbage that cannot match is a 404, a hash of the
//! wrong length a 400. Every lookup of a hash counts against the gateway ID's daily quota
//! (`ratelimit.lookups_per_gateway_per_day`) and is charged `prices.lookup`, found or not.

use actix_web::{web, HttpResponse};
use tocsin_sdk::protocol::{hash_email, hash_phone, normalize_email, normalize_phone, LookupHash};

use super::error::ApiError;
use super::params::Params;
use super::{authed, charge_lookup, plain};
use crate::auth::Authenticated;
use crate::meter::Operation;
use crate::state::AppState;
use crate::store::IdentityRecord;

const NO_MATCH: ApiError = ApiError::NotFound("no identity found");

#[derive(Clone, Copy)]
enum Kind {
    Phone,
    Email,
}

async fn find(
    state: &AppState,
    kind: Kind,
    hash: &LookupHash,
) -> Result<Option<IdentityRecord>, ApiError> {
    Ok(match kind {
        Kind::Phone => state.store.identity_by_phone_hash(hash).await?,
        Kind::Email => state.store.identity_by_email_hash(hash).await?,
    })
}

/// Looks `hash` up for `who`: counted against its daily quota and charged before the
/// search, so a miss costs what a match does (misses are how a number range would be
/// tried). A value that cannot hash to anything is a free 404.
async fn answer(
    state: &AppState,
    who: &Authenticated,
    kind: Kind,
    hash: Option<LookupHash>,
) -> Result<HttpResponse, ApiError> {
    let hash = hash.ok_or(NO_MATCH)?;
    state.limits.check_lookups(&who.gateway().id, 1)?;
    charge_lookup(state, who, Operation::IdLookup).await?;
    let record = find(state, kind, &hash).await?.ok_or(NO_MATCH)?;
    Ok(plain(record.id.to_string()))
}

pub async fn by_phone(
    state: web::Data<AppState>,
    value: web::Path<String>,
    params: Params,
) -> Result<HttpResponse, ApiError> {
    let who = authed(&state, &params).await?;
    // A phone number is digits (punctuation tolerated); a leading '-' or letters cannot match.
    let valid = !value.starts_with('-')
        && value
            .chars()
            .all(|c| c.is_ascii_digit() || " +().-/".contains(c));
    let hash = (valid && normalize_phone(&value).len() >= 4).then(|| hash_phone(&value));
    answer(&state, &who, Kind::Phone, hash).await
}

pub async fn by_email(
    state: web::Data<AppState>,
    value: web::Path<String>,
    params: Params,
) -> Result<HttpResponse, ApiError> {
    let who = authed(&state, &params).await?;
    let normalized = normalize_email(&value);
    let valid = normalized
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
    let hash = valid.then(|| hash_email(&value));
    answer(&state, &who, Kind::Email, hash).await
}

fn parse_hash(raw: &str) -> Result<LookupHash, ApiError> {
    LookupHash::parse(raw)
        .map_err(|_| ApiError::bad_request("hash length is wrong: expected 64 hex characters"))
}

pub async fn by_phone_hash(
    state: web::Data<AppState>,
    value: web::Path<String>,
    params: Params,
) -> Result<HttpResponse, ApiError> {
    let who = authed(&state, &params).await?;
    let hash = parse_hash(&value)?;
    answer(&state, &who, Kind::Phone, Some(hash)).await
}

pub async fn by_email_hash(
    state: web::Data<AppState>,
    value: web::Path<String>,
    params: Params,
) -> Result<HttpResponse, ApiError> {
    let who = authed(&state, &params).await?;
    let hash = parse_hash(&value)?;
    answer(&state, &who, Kind::Email, Some(hash)).await
}
