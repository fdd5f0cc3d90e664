//! Decoding wire types out of rows. A value that fails its parser means the row was written
//! by something other than this store, so it surfaces as [`StoreError::Corrupt`].

use sqlx::any::AnyRow;
use sqlx::Row;
use tocsin_sdk::protocol::{GatewayId, IdentityId, LookupHash, MessageId, Nonce, PublicKey};

use super::StoreError;

fn corrupt(column: &str, err: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("column {column}: {err}"))
}

pub(super) fn identity_id(row: &AnyRow, column: &str) -> Result<IdentityId, StoreError> {
    let text: String = row.try_get(column)?;
    IdentityId::parse(&text).map_err(|e| corrupt(column, e))
}

pub(super) fn gateway_id(row: &AnyRow, column: &str) -> Result<GatewayId, StoreError> {
    let text: String = row.try_get(column)?;
    GatewayId::parse(&text).map_err(|e| corrupt(column, e))
}

pub(super) fn public_key(row: &AnyRow, column: &str) -> Result<PublicKey, StoreError> {
    let bytes: Vec<u8> = row.try_get(column)?;
    PublicKey::from_slice(&bytes).map_err(|e| corrupt(column, e))
}

pub(super) fn message_id(row: &AnyRow, column: &str) -> Result<MessageId, StoreError> {
    let bytes: Vec<u8> = row.try_get(column)?;
    let raw: [u8; 8] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| corrupt(column, format!("{} bytes, expected 8", bytes.len())))?;
    Ok(MessageId::from_bytes(raw))
}

pub(super) fn nonce(row: &AnyRow, column: &str) -> Result<Nonce, StoreError> {
    let bytes: Vec<u8> = row.try_get(column)?;
    Nonce::from_slice(&bytes).map_err(|e| corrupt(column, e))
}

pub(super) fn lookup_hash(row: &AnyRow, column: &str) -> Result<Option<LookupHash>, StoreError> {
    let bytes: Option<Vec<u8>> = row.try_get(column)?;
    bytes
        .map(|b| {
            let raw: [u8; 32] = b
                .as_slice()
                .try_into()
                .map_err(|_| corrupt(column, format!("{} bytes, expected 32", b.len())))?;
            Ok(LookupHash::from_bytes(raw))
        })
        .transpose()
}
