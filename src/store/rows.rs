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

/// Times bind and decode as the BIGINT of milliseconds they are.
mod unix_ms {
    use sqlx::any::{Any, AnyTypeInfo};
    use sqlx::encode::IsNull;
    use sqlx::error::BoxDynError;
    use sqlx::{Database, Decode, Encode, Type};

    use crate::domain::UnixMs;

    impl Type<Any> for UnixMs {
        fn type_info() -> AnyTypeInfo {
            <i64 as Type<Any>>::type_info()
        }

        fn compatible(ty: &AnyTypeInfo) -> bool {
            <i64 as Type<Any>>::compatible(ty)
        }
    }

    impl Encode<'_, Any> for UnixMs {
        fn encode_by_ref(
            &self,
            buf: &mut <Any as Database>::ArgumentBuffer,
        ) -> Result<IsNull, BoxDynError> {
            <i64 as Encode<Any>>::encode_by_ref(&self.get(), buf)
        }
    }

    impl<'r> Decode<'r, Any> for UnixMs {
        fn decode(value: <Any as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
            <i64 as Decode<Any>>::decode(value).map(UnixMs::new)
        }
    }
}
