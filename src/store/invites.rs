//! One-time invite codes for enrolment (`tocsin admin identity invite`).
//!
//! Only a keyed hash of each code is stored ([`crate::crypto::DataKey::hash_invite`]). A
//! code is spent in the transaction that creates the identity it admits, so two devices
//! racing with one code cannot both enrol.

use sqlx::{AnyConnection, Row};
use tocsin_sdk::protocol::IdentityId;

use super::rows::identity_id;
use super::{Store, StoreError};
use crate::domain::UnixMs;

/// An invite as the operator may see it: never the code, which is not kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    /// The first bytes of the code's keyed hash, to tell invites apart.
    pub tag: String,
    pub created_at: UnixMs,
    pub expires_at: UnixMs,
    pub redeemed_at: Option<UnixMs>,
    /// The identity that spent it.
    pub identity: Option<IdentityId>,
}

/// Marks the invite with `hash` spent by `identity`; [`StoreError::InviteRefused`] when
/// no unspent, unexpired invite has that hash.
pub(super) async fn spend(
    conn: &mut AnyConnection,
    hash: &[u8; 32],
    identity: &IdentityId,
    now: UnixMs,
) -> Result<(), StoreError> {
    let spent = sqlx::query(
        "UPDATE invites SET redeemed_at = $1, identity_id = $2 \
         WHERE code_hash = $3 AND redeemed_at IS NULL AND expires_at > $1",
    )
    .bind(now)
    .bind(identity.as_str())
    .bind(hash.to_vec())
    .execute(conn)
    .await?
    .rows_affected();
    if spent == 1 {
        Ok(())
    } else {
        Err(StoreError::InviteRefused)
    }
}

impl Store {
    /// Stores invites with the given code hashes, valid until `expires_at`.
    pub async fn create_invites(
        &self,
        hashes: &[[u8; 32]],
        now: UnixMs,
        expires_at: UnixMs,
    ) -> Result<(), StoreError> {
        let mut tx = super::engine::begin_write(&self.write, self.backend).await?;
        for hash in hashes {
            sqlx::query(
                "INSERT INTO invites (code_hash, created_at, expires_at) VALUES ($1, $2, $3)",
            )
            .bind(hash.to_vec())
            .bind(now)
            .bind(expires_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| super::insert_error(e, || "an invite with that code".to_owned()))?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every invite kept, oldest first.
    pub async fn list_invites(&self) -> Result<Vec<Invite>, StoreError> {
        let rows = sqlx::query(
            "SELECT code_hash, created_at, expires_at, redeemed_at, identity_id FROM invites \
             ORDER BY created_at, code_hash",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                let hash: Vec<u8> = row.try_get("code_hash")?;
                let identity = match row.try_get::<Option<String>, _>("identity_id")? {
                    Some(_) => Some(identity_id(row, "identity_id")?),
                    None => None,
                };
                Ok(Invite {
                    tag: hex::encode(&hash[..hash.len().min(4)]),
                    created_at: row.try_get("created_at")?,
                    expires_at: row.try_get("expires_at")?,
                    redeemed_at: row.try_get("redeemed_at")?,
                    identity,
                })
            })
            .collect()
    }

    /// Deletes the invites that expired before `before`, spent or not; returns how many.
    pub async fn purge_invites(&self, before: UnixMs) -> Result<u64, StoreError> {
        let gone = sqlx::query("DELETE FROM invites WHERE expires_at < $1")
            .bind(before)
            .execute(&self.write)
            .await?
            .rows_affected();
        Ok(gone)
    }
}
