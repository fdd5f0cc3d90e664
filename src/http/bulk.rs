//! `POST /pubkeys/bulk` and `POST /lookup/bulk` (spec §2.5, §2.6): credentials in the
//! query, a JSON body, a JSON array of the matches only. `/lookup/bulk` is open only to
//! gateway IDs whose operator turned it on, and its hashes count against the daily lookup
//! quota and are charged before the search, each whether it matches or not.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use tocsin_sdk::protocol::{IdentityId, LookupHash};

use super::error::ApiError;
use super::json;
use super::params::Params;
use super::{authed, charge_lookup};
use crate::meter::Operation;
use crate::state::AppState;
use crate::store::IdentityRecord;

/// Most items one bulk request may carry.
pub const MAX_BULK_ITEMS: usize = 1000;

#[derive(Debug, Deserialize)]
pub struct IdentitiesBody {
    identities: Vec<WireIdentity>,
}

/// An identity ID in a JSON body: normally a string, but one published SDK serialises its
/// ID type as an array of the 8 ASCII bytes. Both are accepted.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum WireIdentity {
    Text(String),
    Bytes(Vec<u8>),
}

impl WireIdentity {
    fn parse(&self) -> Option<IdentityId> {
        match self {
            Self::Text(s) => IdentityId::parse(s).ok(),
            Self::Bytes(b) => IdentityId::from_bytes(b).ok(),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct KeyEntry {
    identity: String,
    public_key: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HashesBody {
    phone_hashes: Vec<String>,
    email_hashes: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct LookupEntry {
    identity: String,
    public_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_hash: Option<String>,
}

fn check_count(n: usize) -> Result<(), ApiError> {
    if n > MAX_BULK_ITEMS {
        return Err(ApiError::TooLarge(format!(
            "more than {MAX_BULK_ITEMS} items in one request"
        )));
    }
    Ok(())
}

fn live(record: Option<IdentityRecord>) -> Option<IdentityRecord> {
    record.filter(|r| !r.revoked)
}

pub async fn pubkeys(
    state: web::Data<AppState>,
    req: HttpRequest,
    params: Params,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let who = authed(&state, &params).await?;
    let body: IdentitiesBody = json::read_object(&req, payload, json::BULK_LOOKUP).await?;
    check_count(body.identities.len())?;
    let mut found = Vec::new();
    for raw in &body.identities {
        let Some(id) = raw.parse() else {
            continue;
        };
        if let Some(record) = live(state.store.identity(&id).await?) {
            found.push(KeyEntry {
                identity: record.id.to_string(),
                public_key: record.public_key.to_string(),
            });
        }
    }
    let lookups = Operation::BulkPubkeyLookup { found: found.len() };
    charge_lookup(&state, &who, lookups).await?;
    Ok(HttpResponse::Ok().json(found))
}

fn parse_hashes(raw: &[String]) -> Result<Vec<LookupHash>, ApiError> {
    raw.iter()
        .map(|h| {
            LookupHash::parse(h).map_err(|_| {
                ApiError::bad_request("hash length is wrong: expected 64 hex characters")
            })
        })
        .collect()
}

pub async fn lookup(
    state: web::Data<AppState>,
    req: HttpRequest,
    params: Params,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let who = authed(&state, &params).await?;
    if !who.gateway().bulk_lookup {
        return Err(ApiError::Forbidden(
            "bulk lookups are off for this gateway ID; its operator can turn them on \
             (tocsin admin gateway set-lookup ID --bulk on)",
        ));
    }
    let body: HashesBody = json::read_object(&req, payload, json::BULK_LOOKUP).await?;
    check_count(body.phone_hashes.len() + body.email_hashes.len())?;
    let phones = parse_hashes(&body.phone_hashes)?;
    let emails = parse_hashes(&body.email_hashes)?;
    let asked = phones.len() + emails.len();
    state.limits.check_lookups(&who.gateway().id, asked)?;
    charge_lookup(&state, &who, Operation::BulkIdLookup { hashes: asked }).await?;
    let mut found = Vec::new();
    for hash in phones {
        if let Some(r) = live(state.store.identity_by_phone_hash(&hash).await?) {
            found.push(LookupEntry {
                identity: r.id.to_string(),
                public_key: r.public_key.to_string(),
                phone_hash: Some(hash.to_string()),
                email_hash: None,
            });
        }
    }
    for hash in emails {
        if let Some(r) = live(state.store.identity_by_email_hash(&hash).await?) {
            found.push(LookupEntry {
                identity: r.id.to_string(),
                public_key: r.public_key.to_string(),
                phone_hash: None,
                email_hash: Some(hash.to_string()),
            });
        }
    }
    Ok(HttpResponse::Ok().json(found))
}
