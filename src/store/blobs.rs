//! Blob metadata: who uploaded it, how big, whether it persists, when it expires. The
//! bytes themselves live in a `BlobStore`.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use tocsin_sdk::protocol::BlobId;

use super::{flag, AccountId, Store, StoreError};
use crate::domain::UnixMs;

/// A blob to record once its bytes are stored.
#[derive(Debug, Clone)]
pub struct NewBlob {
    pub id: BlobId,
    pub account: AccountId,
    pub size: i64,
    /// Keep after recipients marked it done (one upload sent to many recipients).
    pub persist: bool,
    pub expires_at: UnixMs,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRecord {
    pub id: BlobId,
    pub account: AccountId,
    pub size: i64,
    pub persist: bool,
    pub created_at: UnixMs,
    pub expires_at: UnixMs,
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
    /// Bytes the recorded blobs take together.
    pub async fn blob_bytes(&self) -> Result<u64, StoreError> {
        let total: i64 =
            sqlx::query("SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) AS n FROM blobs")
                .fetch_one(&self.read)
                .await?
                .try_get("n")?;
        Ok(u64::try_from(total).unwrap_or(0))
    }

    /// Records a stored blob (its upload was charged before its bytes were taken).
    pub async fn record_blob(&self, blob: &NewBlob, now: UnixMs) -> Result<(), StoreError> {
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
        .execute(&self.write)
        .await?;
        Ok(())
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

impl Store {
    /// Records that `device` is done with a blob. Returns `true` when the blob's metadata
    /// was removed because of it (no `persist`, and every device of that identity is now
    /// done); the caller then removes the bytes. Unknown blobs are ignored.
    pub async fn mark_blob_done(
        &self,
        id: &BlobId,
        device: &super::Device,
        now: UnixMs,
    ) -> Result<bool, StoreError> {
        let mut tx = super::engine::begin_write(&self.write, self.backend).await?;
        let blob = sqlx::query("SELECT persist FROM blobs WHERE id = $1")
            .bind(id.as_bytes().to_vec())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(blob) = blob else {
            tx.commit().await?;
            return Ok(false);
        };
        sqlx::query(
            "INSERT INTO blob_done (blob_id, identity_id, device_id, done_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (blob_id, identity_id, device_id) DO NOTHING",
        )
        .bind(id.as_bytes().to_vec())
        .bind(device.identity.as_str())
        .bind(i64::from_ne_bytes(device.device_id.to_ne_bytes()))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let persist = flag(&blob, "persist")?;
        let removed = !persist
            && sqlx::query(
                "DELETE FROM blobs WHERE id = $1 AND NOT EXISTS \
                 (SELECT 1 FROM devices d WHERE d.identity_id = $2 AND NOT EXISTS \
                  (SELECT 1 FROM blob_done b WHERE b.blob_id = $1 AND b.identity_id = d.identity_id \
                   AND b.device_id = d.device_id))",
            )
            .bind(id.as_bytes().to_vec())
            .bind(device.identity.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
        if removed {
            forget_done(&mut tx, id).await?;
        }
        tx.commit().await?;
        Ok(removed)
    }

    /// Removes the metadata of every blob past its TTL and returns their IDs, so the
    /// caller can remove the bytes.
    pub async fn expire_blobs(&self, now: UnixMs) -> Result<Vec<BlobId>, StoreError> {
        let mut tx = super::engine::begin_write(&self.write, self.backend).await?;
        let rows = sqlx::query("DELETE FROM blobs WHERE expires_at <= $1 RETURNING id, account_id, size, persist, created_at, expires_at")
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
        let ids: Vec<BlobId> = rows
            .iter()
            .map(|r| blob_from_row(r).map(|b| b.id))
            .collect::<Result<_, _>>()?;
        for id in &ids {
            forget_done(&mut tx, id).await?;
        }
        tx.commit().await?;
        Ok(ids)
    }
}

/// Forgets which devices were done with a blob that is gone.
async fn forget_done(conn: &mut AnyConnection, id: &BlobId) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM blob_done WHERE blob_id = $1")
        .bind(id.as_bytes().to_vec())
        .execute(conn)
        .await?;
    Ok(())
}
