//! Shared state handed to every request handler and worker: cheap-to-clone handles only.

use std::sync::Arc;

use crate::blobs::FsBlobStore;
use crate::config::Settings;
use crate::crypto::{DataKey, SharedKeyCache};
use crate::metrics::Metrics;
use crate::ratelimit::RateLimits;
use crate::store::Store;
use crate::ws::Hub;
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
}
