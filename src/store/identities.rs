//! The directory: recipient identities, their public keys and lookup hashes.
//!
//! Key history is append-only (`identity_keys` gets a new version on a key change, never an
//! update), so a later key-transparency log can be built from it. Revoked identities stay
//! in the table but are invisible to lookups.

use sqlx::any::AnyRow;
use sqlx::Row;
use tocsin_sdk::protocol::{Capabilities, IdentityId, LookupHash, PublicKey};

use super::rows::{identity_id, lookup_hash, public_key};
use super::{flag, insert_error, Store, StoreError};
use crate::domain::UnixMs;

/// An identity to import into the directory.
#[derive(Debug, Clone)]
pub struct NewIdentity {
    pub id: IdentityId,
    pub public_key: PublicKey,
    pub phone_hash: Option<LookupHash>,
    pub email_hash: Option<LookupHash>,
    pub capabilities: Capabilities,
}

/// An identity with its current key.
#[derive(Debug, Clone)]
pub struct IdentityRecord {
    pub id: IdentityId,
    pub public_key: PublicKey,
    pub key_version: i64,
    pub phone_hash: Option<LookupHash>,
    pub email_hash: Option<LookupHash>,
    pub capabilities: Capabilities,
    pub revoked: bool,
    pub created_at: UnixMs,
}

const SELECT_CURRENT: &str = "SELECT i.id, i.phone_hash, i.email_hash, i.capabilities, i.revoked, \
     i.created_at, k.public_key, k.version FROM identities i JOIN identity_keys k \
     ON k.identity_id = i.id AND k.version = \
     (SELECT MAX(version) FROM identity_keys WHERE identity_id = i.id)";

fn identity_from_row(row: &AnyRow) -> Result<IdentityRecord, StoreError> {
    let capabilities: String = row.try_get("capabilities")?;
    Ok(IdentityRecord {
        id: identity_id(row, "id")?,
        public_key: public_key(row, "public_key")?,
        key_version: row.try_get("version")?,
        phone_hash: lookup_hash(row, "phone_hash")?,
        email_hash: lookup_hash(row, "email_hash")?,
        capabilities: Capabilities::parse(&capabilities)
            .map_err(|e| StoreError::Corrupt(format!("capabilities: {e}")))?,
        revoked: flag(row, "revoked")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    /// Adds an identity with key version 1.
    pub async fn import_identity(
        &self,
        new: &NewIdentity,
        now: UnixMs,
    ) -> Result<IdentityRecord, StoreError> {
        self.insert_identity(new, now, None).await
    }

    /// Adds an identity with key version 1, spending the invite with `invite_hash` in the
    /// same transaction when one is given: [`StoreError::InviteRefused`] (and nothing
    /// added) when that invite is unknown, already spent or expired at `now`.
    pub async fn enrol_identity(
        &self,
        new: &NewIdentity,
        now: UnixMs,
        invite_hash: Option<&[u8; 32]>,
    ) -> Result<IdentityRecord, StoreError> {
        self.insert_identity(new, now, invite_hash).await
    }

    async fn insert_identity(
        &self,
        new: &NewIdentity,
        now: UnixMs,
        invite_hash: Option<&[u8; 32]>,
    ) -> Result<IdentityRecord, StoreError> {
        let mut tx = super::engine::begin_write(&self.write, self.backend).await?;
        sqlx::query(
            "INSERT INTO identities (id, phone_hash, email_hash, capabilities, revoked, created_at) \
             VALUES ($1, $2, $3, $4, 0, $5)",
        )
        .bind(new.id.as_str())
        .bind(new.phone_hash.map(|h| h.as_bytes().to_vec()))
        .bind(new.email_hash.map(|h| h.as_bytes().to_vec()))
        .bind(new.capabilities.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| insert_error(e, || format!("identity {}", new.id)))?;
        sqlx::query(
            "INSERT INTO identity_keys (identity_id, version, public_key, created_at) \
             VALUES ($1, 1, $2, $3)",
        )
        .bind(new.id.as_str())
        .bind(new.public_key.as_bytes().to_vec())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if let Some(hash) = invite_hash {
            super::invites::spend(&mut tx, hash, &new.id, now).await?;
        }
        tx.commit().await?;
        Ok(IdentityRecord {
            id: new.id,
            public_key: new.public_key,
            key_version: 1,
            phone_hash: new.phone_hash,
            email_hash: new.email_hash,
            capabilities: new.capabilities.clone(),
            revoked: false,
            created_at: now,
        })
    }

    /// The identity with its current key, revoked or not.
    pub async fn identity(&self, id: &IdentityId) -> Result<Option<IdentityRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("{SELECT_CURRENT} WHERE i.id = $1"));
        let row = sqlx::query(sql)
            .bind(id.as_str())
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(identity_from_row).transpose()
    }

    /// The identities among `ids` that exist, with their current keys, revoked or not, in
    /// a few queries however many are asked for (a bulk send resolves its recipients so).
    pub async fn identities(&self, ids: &[IdentityId]) -> Result<Vec<IdentityRecord>, StoreError> {
        let params = self.backend.placeholders();
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let sql = sqlx::AssertSqlSafe(format!(
                "{SELECT_CURRENT} WHERE i.id IN ({})",
                params.list(1, chunk.len())
            ));
            let mut query = sqlx::query(sql);
            for id in chunk {
                query = query.bind(id.as_str());
            }
            for row in query.fetch_all(&self.read).await? {
                found.push(identity_from_row(&row)?);
            }
        }
        Ok(found)
    }

    /// Which of `ids` are revoked (IDs only: checked every few seconds for the connected).
    pub async fn revoked_among(&self, ids: &[IdentityId]) -> Result<Vec<IdentityId>, StoreError> {
        let params = self.backend.placeholders();
        let mut revoked = Vec::new();
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT id FROM identities WHERE revoked = 1 AND id IN ({})",
                params.list(1, chunk.len())
            ));
            let mut query = sqlx::query(sql);
            for id in chunk {
                query = query.bind(id.as_str());
            }
            for row in query.fetch_all(&self.read).await? {
                revoked.push(identity_id(&row, "id")?);
            }
        }
        Ok(revoked)
    }

    pub async fn list_identities(&self) -> Result<Vec<IdentityRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("{SELECT_CURRENT} ORDER BY i.id"));
        let rows = sqlx::query(sql).fetch_all(&self.read).await?;
        rows.iter().map(identity_from_row).collect()
    }

    /// The live (not revoked) identity linked to a phone hash.
    pub async fn identity_by_phone_hash(
        &self,
        hash: &LookupHash,
    ) -> Result<Option<IdentityRecord>, StoreError> {
        self.identity_by_hash("i.phone_hash", hash).await
    }

    /// The live (not revoked) identity linked to an e-mail hash.
    pub async fn identity_by_email_hash(
        &self,
        hash: &LookupHash,
    ) -> Result<Option<IdentityRecord>, StoreError> {
        self.identity_by_hash("i.email_hash", hash).await
    }

    async fn identity_by_hash(
        &self,
        column: &'static str,
        hash: &LookupHash,
    ) -> Result<Option<IdentityRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "{SELECT_CURRENT} WHERE {column} = $1 AND i.revoked = 0 ORDER BY i.created_at LIMIT 1"
        ));
        let row = sqlx::query(sql)
            .bind(hash.as_bytes().to_vec())
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(identity_from_row).transpose()
    }

    /// Marks an identity revoked; it no longer resolves and can no longer log in.
    pub async fn revoke_identity(&self, id: &IdentityId) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE identities SET revoked = 1 WHERE id = $1")
            .bind(id.as_str())
            .execute(&self.write)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(format!("identity {id}")));
        }
        Ok(())
    }
}

/// Identity IDs looked up per query by [`Store::identities`].
const IDS_PER_QUERY: usize = 500;
