//! Gateway IDs: the `*XXXXXXX` identities customers send from.
//!
//! The API secret is stored twice, for two jobs: `secret_hash` (keyed hash) to check
//! requests in constant time, and `secret_sealed` (encrypted with the data key) because the
//! callback MAC needs the secret itself. The private key of a basic-mode ID is sealed with
//! the same data key; an E2E-mode ID has no private key on the server.

use sqlx::any::AnyRow;
use sqlx::Row;
use tocsin_sdk::protocol::{GatewayId, PublicKey};

use super::rows::{gateway_id, public_key};
use super::{flag, insert_error, AccountId, Store, StoreError};
use crate::domain::UnixMs;

/// Who encrypts: the server (basic) or the customer (end-to-end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayMode {
    /// The server holds the private key and encrypts `send_simple` texts itself.
    Basic,
    /// The customer encrypts; the server only relays boxes.
    E2e,
}

impl GatewayMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Basic => "basic",
            Self::E2e => "e2e",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "basic" => Some(Self::Basic),
            "e2e" => Some(Self::E2e),
            _ => None,
        }
    }
}

impl std::fmt::Display for GatewayMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A gateway ID as stored, and as given to [`Store::create_gateway`].
#[derive(Debug, Clone)]
pub struct GatewayRecord {
    pub id: GatewayId,
    pub account: AccountId,
    pub mode: GatewayMode,
    pub secret_hash: Vec<u8>,
    pub secret_sealed: Vec<u8>,
    pub public_key: PublicKey,
    /// Present exactly when `mode` is [`GatewayMode::Basic`].
    pub private_sealed: Option<Vec<u8>>,
    pub callback_url: Option<String>,
    /// `/lookup/bulk` is open to this gateway ID (off until the operator turns it on).
    pub bulk_lookup: bool,
    pub created_at: UnixMs,
}

const COLUMNS: &str = "id, account_id, mode, secret_hash, secret_sealed, public_key, \
                       private_sealed, callback_url, bulk_lookup, created_at";

fn gateway_from_row(row: &AnyRow) -> Result<GatewayRecord, StoreError> {
    let mode: String = row.try_get("mode")?;
    Ok(GatewayRecord {
        id: gateway_id(row, "id")?,
        account: AccountId(row.try_get("account_id")?),
        mode: GatewayMode::parse(&mode)
            .ok_or_else(|| StoreError::Corrupt(format!("gateway mode {mode:?}")))?,
        secret_hash: row.try_get("secret_hash")?,
        secret_sealed: row.try_get("secret_sealed")?,
        public_key: public_key(row, "public_key")?,
        private_sealed: row.try_get("private_sealed")?,
        callback_url: row.try_get("callback_url")?,
        bulk_lookup: flag(row, "bulk_lookup")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    /// Inserts `new` as it is (its `created_at` included) and returns it as stored.
    pub async fn create_gateway(&self, new: &GatewayRecord) -> Result<GatewayRecord, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO gateway_ids ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             RETURNING {COLUMNS}"
        ));
        let row = sqlx::query(sql)
            .bind(new.id.as_str())
            .bind(new.account.0)
            .bind(new.mode.as_str())
            .bind(new.secret_hash.clone())
            .bind(new.secret_sealed.clone())
            .bind(new.public_key.as_bytes().to_vec())
            .bind(new.private_sealed.clone())
            .bind(new.callback_url.clone())
            .bind(i64::from(new.bulk_lookup))
            .bind(new.created_at)
            .fetch_one(&self.write)
            .await
            .map_err(|e| insert_error(e, || format!("gateway ID {}", new.id)))?;
        gateway_from_row(&row)
    }

    pub async fn gateway(&self, id: &GatewayId) -> Result<Option<GatewayRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM gateway_ids WHERE id = $1"));
        let row = sqlx::query(sql)
            .bind(id.as_str())
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(gateway_from_row).transpose()
    }

    /// Every gateway ID, or those of one account, ordered by ID.
    pub async fn list_gateways(
        &self,
        account: Option<AccountId>,
    ) -> Result<Vec<GatewayRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM gateway_ids WHERE ($1 = 0 OR account_id = $1) ORDER BY id"
        ));
        let rows = sqlx::query(sql)
            .bind(account.map_or(0, |a| a.0))
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(gateway_from_row).collect()
    }

    /// Opens or closes `/lookup/bulk` to `id`.
    pub async fn set_bulk_lookup(&self, id: &GatewayId, on: bool) -> Result<(), StoreError> {
        let query = sqlx::query("UPDATE gateway_ids SET bulk_lookup = $1 WHERE id = $2")
            .bind(i64::from(on));
        self.update_gateway(id, query).await
    }

    /// Sets or clears the callback URL; the caller has validated it.
    pub async fn set_callback_url(
        &self,
        id: &GatewayId,
        url: Option<&str>,
    ) -> Result<(), StoreError> {
        let query = sqlx::query("UPDATE gateway_ids SET callback_url = $1 WHERE id = $2")
            .bind(url.map(str::to_owned));
        self.update_gateway(id, query).await
    }

    /// Runs an update of one gateway ID's row, binding `id` as its last parameter;
    /// [`StoreError::NotFound`] when there is no such row.
    async fn update_gateway<'q>(
        &self,
        id: &'q GatewayId,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> Result<(), StoreError> {
        let done = query.bind(id.as_str()).execute(&self.write).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(format!("gateway ID {id}")));
        }
        Ok(())
    }
}
