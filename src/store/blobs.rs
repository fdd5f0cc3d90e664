//! Blob metadata: who uploaded it, how big, whether it persists, when it expires. The
//! bytes themselves live in a `BlobStore`.

use sqlx::any::AnyRow;
use sqlx::Row;
use tocsin_sdk::protocol::BlobId;

use super::accounts::debit;
use super::{flag, AccountId, Store, StoreError};

/// A blob to record once its bytes are stored.
#[derive(Debug, Clone)]
pub struct NewBlob {
    pub id: BlobId,
    pub account: AccountId,
    pub size: i64,
    /// Keep after recipients marked it done (one upload sent to many recipients).
    pub persist: bool,
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRecord {
    pub id: BlobId,
    pub account: AccountId,
    pub size: i64,
    pub persist: bool,
    pub created_at: i64,
    pub expires_at: i64,
}

fn blob_from_row(row: &AnyRow) -> Result<BlobRecord, StoreError> {
    let raw: Vec<u8> = row.try_get("id")?;
    let bytes: [u8; 16] = raw
        .as_slice()
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("blob ID of {} bytes", raw.len())))?;
    Ok(BlobRecord {
        id: BlobId::from_bytes(bytes),
        account: AccountId(row.try_get("account_id")?),
        size: row.try_get("size")?,
        persist: flag(row, "persist")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

impl Store {
    /// Charges `price` and records the blob in one transaction; `false` (nothing recorded)
    /// when the balance cannot cover it.
    pub async fn record_blob(
        &self,
        blob: &NewBlob,
        price: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write.begin().await?;
        if price > 0
            && debit(&mut tx, blob.account, price, "upload_blob", None, now)
                .await?
                .is_none()
        {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO blobs (id, account_id, size, persist, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(blob.id.as_bytes().to_vec())
        .bind(blob.account.0)
        .bind(blob.size)
        .bind(i64::from(blob.persist))
        .bind(now)
        .bind(blob.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn blob(&self, id: &BlobId) -> Result<Option<BlobRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, account_id, size, persist, created_at, expires_at FROM blobs WHERE id = $1",
        )
        .bind(id.as_bytes().to_vec())
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(blob_from_row).transpose()
    }
}
