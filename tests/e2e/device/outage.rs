//! A database that stops answering, without closing anything (a hung server, a dropped
//! route): `/health` still answers at once, 503 with Retry-After, so a load balancer's
//! probe reads the outage instead of timing out.

use std::time::Duration;

use super::proxy::Proxy;
use crate::helpers::{spawn_app, Engine};

/// How long the test waits for a `/health` answer: a load balancer's probe gives up
/// after a second or two.
const PROBE: Duration = Duration::from_secs(2);

async fn probe(url: &str) -> (u16, Option<String>, String) {
    let res = reqwest::Client::new()
        .get(url)
        .timeout(PROBE)
        .send()
        .await
        .expect("an answer within a load balancer's probe");
    let retry = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (res.status().as_u16(), retry, res.text().await.unwrap())
}

#[tokio::test]
async fn health_answers_at_once_while_the_database_does_not_on_postgres_only() {
    Engine::require_postgres("a database reached over TCP");
    let a = spawn_app().await;
    let url = a.state.settings.database_url();
    // postgres://user@host:port/database: node B reaches the same database through a
    // relay the test controls.
    let (user, rest) = url.split_once('@').unwrap();
    let (host_port, database) = rest.split_once('/').unwrap();
    let server = tokio::net::lookup_host(host_port)
        .await
        .unwrap()
        .next()
        .unwrap();
    let mut relay = Proxy::start(server, false).await;
    let through = format!("{user}@{}/{database}", relay.addr);
    let b = a.spawn_beside(&[("TOCSIN__STORAGE__URL", through)]).await;
    assert_eq!(probe(&b.url("/health")).await, (200, None, "ok".into()));

    relay.fall_silent();
    let (status, retry, reason) = probe(&b.url("/health")).await;
    assert_eq!((status, retry.as_deref()), (503, Some("5")), "{reason}");
    assert_eq!(reason, "store does not answer within 400 ms");
    // The node beside it, on a database that answers, is healthy.
    assert_eq!(probe(&a.url("/health")).await, (200, None, "ok".into()));
}
