//! Authentication of Gateway API callers: `from` (a gateway ID) plus `secret`.
//!
//! Only [`authenticate`] builds an [`Authenticated`], so a handler that skips it cannot
//! reach the stages that need one. An unknown ID, a malformed ID and a wrong secret all end
//! in the same [`AuthError::Rejected`]; for an unknown ID a keyed hash is still computed and
//! compared, so the answer takes as long as for a known one.

pub mod cache;

use subtle::ConstantTimeEq;
use tocsin_sdk::protocol::{ApiSecret, GatewayId};

use crate::state::AppState;
use crate::store::{GatewayRecord, StoreError};

/// Proof that the caller holds the secret of this gateway ID.
#[derive(Debug, Clone)]
pub struct Authenticated {
    gateway: std::sync::Arc<GatewayRecord>,
}

impl Authenticated {
    pub fn gateway(&self) -> &GatewayRecord {
        &self.gateway
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid credentials")]
    Rejected,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks `from` and `secret` as they came in the request.
#[tracing::instrument(skip_all, fields(gateway_id = from.unwrap_or("-")))]
pub async fn authenticate(
    state: &AppState,
    from: Option<&str>,
    secret: Option<&str>,
) -> Result<Authenticated, AuthError> {
    let (Some(from), Some(secret)) = (from, secret) else {
        return Err(AuthError::Rejected);
    };
    let Ok(secret) = ApiSecret::parse(secret) else {
        return Err(AuthError::Rejected);
    };
    let record = match GatewayId::parse(from) {
        Ok(id) => match state.caches.gateways.get(&id) {
            Some(hit) => Some(hit),
            None => {
                let found = state.store.gateway(&id).await?.map(std::sync::Arc::new);
                if let Some(record) = &found {
                    state.caches.gateways.put(id, record.clone());
                }
                found
            }
        },
        Err(_) => None,
    };
    match record {
        Some(gateway) if state.data_key.verify_secret(&secret, &gateway.secret_hash) => {
            Ok(Authenticated { gateway })
        }
        Some(_) => Err(AuthError::Rejected),
        None => {
            // Same work as a real check, against a hash no secret produces.
            let _ = state.data_key.hash_secret(&secret).ct_eq(&[0u8; 32]);
            Err(AuthError::Rejected)
        }
    }
}
