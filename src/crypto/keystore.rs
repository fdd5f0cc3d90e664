//! Shared keys for basic mode, cached per (gateway ID, recipient key).
//!
//! A `send_simple` needs `crypto_box_beforenm(gateway secret, recipient public)`, which
//! costs one X25519 (~100 µs); the next message to the same recipient then costs only one
//! XSalsa20-Poly1305 pass. The cache key includes the recipient's *current* public key, so a
//! key change simply misses. The cache is bounded: when full it is emptied, which costs
//! one key exchange per recipient afterwards and never serves a stale key.

use std::collections::HashMap;
use std::sync::Mutex;

use tocsin_sdk::crypto::SharedKey;
use tocsin_sdk::protocol::{GatewayId, PublicKey, SecretKey};

use super::DataKey;
use crate::store::GatewayRecord;

#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    #[error("gateway ID {0} has no private key on this server (not in basic mode)")]
    NoPrivateKey(GatewayId),
    #[error("private key of gateway ID {0} cannot be opened with the data key")]
    Sealed(GatewayId),
    #[error("recipient key is unusable: {0}")]
    Crypto(#[from] tocsin_sdk::crypto::CryptoError),
}

#[derive(Debug)]
pub struct SharedKeyCache {
    entries: Mutex<HashMap<(GatewayId, PublicKey), SharedKey>>,
    capacity: usize,
}

impl SharedKeyCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// The shared key between a basic-mode gateway ID and a recipient key.
    pub fn get(
        &self,
        gateway: &GatewayRecord,
        data_key: &DataKey,
        peer: &PublicKey,
    ) -> Result<SharedKey, KeystoreError> {
        let cache_key = (gateway.id, *peer);
        if let Some(hit) = self.lock().get(&cache_key) {
            return Ok(hit.clone());
        }
        let sealed = gateway
            .private_sealed
            .as_deref()
            .ok_or(KeystoreError::NoPrivateKey(gateway.id))?;
        let opened = data_key
            .open(sealed)
            .map_err(|_| KeystoreError::Sealed(gateway.id))?;
        let raw: [u8; 32] = opened
            .as_slice()
            .try_into()
            .map_err(|_| KeystoreError::Sealed(gateway.id))?;
        let shared = SharedKey::new(&SecretKey::from_bytes(raw), peer)?;
        let mut entries = self.lock();
        if entries.len() >= self.capacity {
            entries.clear();
        }
        entries.insert(cache_key, shared.clone());
        Ok(shared)
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(GatewayId, PublicKey), SharedKey>> {
        // A panic while holding the lock leaves a usable map; keep serving.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
