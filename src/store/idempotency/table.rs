//! The keys in a table unique on (gateway, key) (PostgreSQL): several nodes share it, so
//! only the database can see that another node took a key; a concurrent claim of the same
//! key waits on the index entry until the first transaction ends.

use std::collections::HashMap;

use sqlx::{AnyConnection, Row};

use super::{Claim, Taken, FORGET_BATCH};
use crate::domain::UnixMs;
use crate::store::engine::Backend;
use crate::store::rows::message_id;
use crate::store::sql::{runs, MultiRow};
use crate::store::StoreError;

/// Adds to `taken` the keys of `wanted` earlier commits took, with their message IDs.
pub(super) async fn taken(
    conn: &mut AnyConnection,
    backend: Backend,
    wanted: &[Claim<'_>],
    taken: &mut Taken,
) -> Result<(), StoreError> {
    let params = backend.placeholders();
    // One query per gateway ID, so the primary key index serves it.
    let mut by_gateway: HashMap<&str, Vec<&str>> = HashMap::new();
    for c in wanted {
        by_gateway.entry(c.gateway).or_default().push(c.key);
    }
    for (gateway, keys) in by_gateway {
        let sql = format!(
            "SELECT idem_key, message_id FROM idempotency_keys \
             WHERE gateway_id = {} AND idem_key IN ({})",
            params.one(1),
            params.list(2, keys.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(gateway);
        for k in &keys {
            query = query.bind(*k);
        }
        for row in query.fetch_all(&mut *conn).await? {
            taken.insert(
                (gateway.to_owned(), row.try_get("idem_key")?),
                message_id(&row, "message_id")?,
            );
        }
    }
    Ok(())
}

/// Writes the claims of accepted submissions. `false` when another transaction took one
/// of the keys since [`taken`] looked (only possible with several nodes).
pub(super) async fn record(
    conn: &mut AnyConnection,
    backend: Backend,
    claims: &[Claim<'_>],
) -> Result<bool, StoreError> {
    static INDEXED: MultiRow = MultiRow::new(
        "INSERT INTO idempotency_keys (gateway_id, idem_key, message_id, created_at) \
         VALUES {rows} ON CONFLICT (gateway_id, idem_key) DO NOTHING",
        4,
    );
    for run in runs(claims) {
        let mut query = sqlx::query(INDEXED.sql(backend.placeholders(), run.len()));
        for c in run {
            query = query
                .bind(c.gateway)
                .bind(c.key)
                .bind(c.message_id.as_bytes().to_vec())
                .bind(c.now);
        }
        if query.execute(&mut *conn).await?.rows_affected() != run.len() as u64 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Forgets a batch of the keys claimed before `before`; returns how many.
pub(super) async fn forget(pool: &sqlx::AnyPool, before: UnixMs) -> Result<u64, StoreError> {
    Ok(sqlx::query(
        "DELETE FROM idempotency_keys WHERE (gateway_id, idem_key) IN \
         (SELECT gateway_id, idem_key FROM idempotency_keys WHERE created_at < $1 \
          ORDER BY created_at LIMIT $2)",
    )
    .bind(before)
    .bind(FORGET_BATCH)
    .execute(pool)
    .await?
    .rows_affected())
}
