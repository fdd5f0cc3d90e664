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
    if wanted.is_empty() {
        return Ok(());
    }
    // PostgreSQL plans a prepared statement once for all values after five runs. Made
    // while the table held few keys, that plan reads every key of the gateway at each
    // lookup (80-155 ms at a time in BENCHMARKS.md); planned with its values, the lookup
    // reads the few keys it asks for. Only for this lookup: planning all of the writer's
    // statements anew cost up to a tenth of send_e2e's rate (BENCHMARKS.md).
    sqlx::query("SET LOCAL plan_cache_mode = force_custom_plan")
        .execute(&mut *conn)
        .await?;
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
    sqlx::query("SET LOCAL plan_cache_mode TO DEFAULT")
        .execute(&mut *conn)
        .await?;
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

#[cfg(test)]
mod tests {
    use sqlx::Acquire;

    use super::*;
    use crate::store::Store;

    /// The lookup is planned with its values at every run, also past the five after which
    /// PostgreSQL would otherwise plan it once for all; the writer's other statements
    /// keep their cached plans.
    #[tokio::test]
    #[cfg_attr(not(pg_tests), ignore = "TOCSIN_TEST_POSTGRES_URL is not set")]
    async fn the_lookup_is_planned_with_its_values_every_time() {
        let url = crate::store::testing::fresh_postgres_database()
            .await
            .expect("TOCSIN_TEST_POSTGRES_URL is set");
        let store = Store::open(&url, 2).await.unwrap();
        store.migrate().await.unwrap();
        let mut conn = store.write.acquire().await.unwrap();
        let id = tocsin_sdk::protocol::MessageId::random();
        for round in 0..12 {
            let mut tx = conn.begin().await.unwrap();
            let (first, second) = (format!("k{round}"), format!("j{round}"));
            let wanted = [first.as_str(), second.as_str()].map(|key| Claim {
                gateway: "*GATEWAY",
                key,
                digest: None,
                message_id: id,
                now: UnixMs::new(1),
            });
            taken(&mut tx, Backend::Postgres, &wanted, &mut Taken::new())
                .await
                .unwrap();
            sqlx::query("SELECT COUNT(*) AS n FROM idempotency_keys WHERE gateway_id = $1")
                .bind("*GATEWAY")
                .fetch_one(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
        let plans = |prefix: &str| {
            sqlx::query(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements \
                 WHERE statement LIKE $1",
            )
            .bind(format!("{prefix}%"))
        };
        let counted = |row: sqlx::any::AnyRow| -> (i64, i64) {
            (
                row.try_get("generic_plans").unwrap(),
                row.try_get("custom_plans").unwrap(),
            )
        };
        let lookup = plans("SELECT idem_key, message_id FROM idempotency_keys")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(counted(lookup), (0, 12), "the lookup: never a generic plan");
        let count = plans("SELECT COUNT(*) AS n FROM idempotency_keys")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert!(counted(count).0 > 0, "other statements keep theirs");
    }
}
