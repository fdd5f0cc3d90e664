//! Test support: a fresh PostgreSQL database per test, so tests never share rows.

use tocsin_sdk::protocol::MessageId;

use super::Store;

/// Creates an empty database on the server named by `TOCSIN_TEST_POSTGRES_URL` and returns
/// its URL; `None` when the variable is unset or empty.
///
/// # Panics
/// When the variable is set but the server cannot be reached: a configured PostgreSQL run
/// must not silently turn into a skipped one.
pub async fn fresh_postgres_database() -> Option<String> {
    let base = std::env::var("TOCSIN_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())?;
    let name = format!("tocsin_t_{}", MessageId::random());
    let admin = Store::open(&base, 1)
        .await
        .expect("TOCSIN_TEST_POSTGRES_URL must answer");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin.write)
        .await
        .expect("CREATE DATABASE on the test server");
    admin.close().await;
    let (without_query, query) = base
        .split_once('?')
        .map_or((base.as_str(), None), |(a, b)| (a, Some(b)));
    let authority_start = without_query.find("://").map_or(0, |i| i + 3);
    let server = match without_query[authority_start..].find('/') {
        Some(slash) => &without_query[..authority_start + slash],
        None => without_query,
    };
    Some(match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    })
}
