//! Shared state handed to every request handler and worker: cheap-to-clone handles only.

use std::sync::Arc;

use crate::blobs::FsBlobStore;
use crate::config::Settings;
use crate::crypto::{DataKey, SharedKeyCache};
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimits;
use crate::store::Store;
use tocsin_sdk::protocol::KeyPair;

#[derive(Debug, Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub data_key: Arc<DataKey>,
    pub metrics: Arc<Metrics>,
    /// Basic-mode shared keys per (gateway ID, recipient key).
    pub shared_keys: Arc<SharedKeyCache>,
    pub limits: Arc<RateLimits>,
    /// Blob bytes (metadata is in `store`).
    pub blobs: Arc<FsBlobStore>,
    /// The chat server's long-term key pair (devices pin its public key).
    pub server_key: Arc<KeyPair>,
    /// Wake-ups for connected device sessions.
    pub hub: Arc<Hub>,
    /// Short-lived copies of hot directory rows.
    pub caches: Arc<Caches>,
    /// Prices every paid operation.
    pub meter: Arc<crate::meter::Meter>,
    /// IDs for the messages this node accepts.
    pub message_ids: Arc<crate::domain::MessageIds>,
    /// Who the client of a request is, behind trusted reverse proxies.
    pub proxies: Arc<crate::client_ip::TrustedProxies>,
}

/// How long a cached directory row may be used: a revocation or a new secret takes
/// effect within this time.
pub const CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(2);

/// Caches on the request path.
#[derive(Debug)]
pub struct Caches {
    /// Gateway records by ID, for authentication, shared: a hit costs no copy of the record.
    pub gateways: crate::auth::cache::TtlCache<
        tocsin_sdk::protocol::GatewayId,
        std::sync::Arc<crate::store::GatewayRecord>,
    >,
    /// Current public keys of live identities, for sends.
    pub recipients: crate::auth::cache::TtlCache<
        tocsin_sdk::protocol::IdentityId,
        tocsin_sdk::protocol::PublicKey,
    >,
}

impl Default for Caches {
    fn default() -> Self {
        Self {
            gateways: crate::auth::cache::TtlCache::new(CACHE_TTL, 100_000),
            recipients: crate::auth::cache::TtlCache::new(CACHE_TTL, 100_000),
        }
    }
}
