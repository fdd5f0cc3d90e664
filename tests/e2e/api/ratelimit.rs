//! Rate limits over HTTP: 429 with Retry-After, and a brute force stopped without locking
//! the real sender out.

use std::net::{IpAddr, Ipv4Addr};

use tocsin::store::GatewayMode;

use crate::helpers::{spawn_app_with, urlencode, TestApp};

async fn credits(
    app: &TestApp,
    client: &reqwest::Client,
    from: &str,
    secret: &str,
) -> reqwest::Response {
    let url = app.url(&format!(
        "/credits?from={}&secret={secret}",
        urlencode(from)
    ));
    client.get(url).send().await.unwrap()
}

#[tokio::test]
async fn a_brute_force_is_stopped_within_ten_attempts_but_the_sender_elsewhere_goes_on() {
    let app = spawn_app_with(&[]).await;
    let gw = app.gateway(GatewayMode::E2e, 7).await;
    let mut statuses = Vec::new();
    for i in 0..10 {
        let res = credits(&app, &app.client, gw.id.as_str(), &format!("Guess{i:07}")).await;
        statuses.push(res.status().as_u16());
        if res.status() == 429 {
            let retry: u64 = res.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=60).contains(&retry), "Retry-After {retry}");
        }
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429, 429, 429, 429]);
    // Blocked means blocked: even the right secret is not checked from this address.
    assert_eq!(
        credits(&app, &app.client, gw.id.as_str(), &gw.secret)
            .await
            .status(),
        429
    );
    // The real sender on another address is not locked out.
    let elsewhere = reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        .build()
        .unwrap();
    let res = credits(&app, &elsewhere, gw.id.as_str(), &gw.secret).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "7");
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains("tocsin_auth_failures_total 6"),
        "{metrics}"
    );
}

/// A `from` that is no gateway ID can never log in: its failures are not recorded, so
/// junk in `from` neither fills the failure table nor ends in a block. (The per-IP limit
/// still applies to every request.)
#[tokio::test]
async fn failures_are_recorded_only_for_gateway_ids() {
    let app = spawn_app_with(&[]).await;
    let long = "x".repeat(4000);
    for from in ["*ALERTS1x", "ALERTS12", long.as_str()] {
        for i in 0..10 {
            let res = credits(&app, &app.client, from, &format!("Guess{i:07}")).await;
            assert_eq!(res.status(), 401, "from {:.20}…", from);
        }
    }
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains("tocsin_auth_failures_total 30"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_gateway_id_over_its_budget_gets_429_with_retry_after() {
    let app = spawn_app_with(&[
        ("TOCSIN__RATELIMIT__PER_GATEWAY_PER_SECOND", "1".into()),
        ("TOCSIN__RATELIMIT__PER_GATEWAY_BURST", "3".into()),
    ])
    .await;
    let gw = app.gateway(GatewayMode::E2e, 1).await;
    let other = app.gateway(GatewayMode::E2e, 1).await;
    for _ in 0..3 {
        assert_eq!(app.get_as(&gw, "/credits").await.0, 200);
    }
    let res = credits(&app, &app.client, gw.id.as_str(), &gw.secret).await;
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["retry-after"], "1");
    assert_eq!(res.text().await.unwrap(), "rate limit reached");
    assert_eq!(
        app.get_as(&other, "/credits").await.0,
        200,
        "each ID has its own budget"
    );
}

#[tokio::test]
async fn a_client_address_over_its_budget_gets_429_before_authentication() {
    let app = spawn_app_with(&[
        ("TOCSIN__RATELIMIT__PER_IP_PER_SECOND", "1".into()),
        ("TOCSIN__RATELIMIT__PER_IP_BURST", "2".into()),
    ])
    .await;
    let gw = app.gateway(GatewayMode::E2e, 1).await;
    assert_eq!(app.get_as(&gw, "/credits").await.0, 200);
    assert_eq!(app.get_as(&gw, "/credits").await.0, 200);
    assert_eq!(app.get_as(&gw, "/credits").await.0, 429);
    let res = credits(&app, &app.client, "*NOSUCH1", "whatever1").await;
    assert_eq!(res.status(), 429, "unauthenticated floods are cut off too");
}

/// What anyone may reach without credentials, the directory's lookups and the chat
/// server's handshake, is held to the same per-IP budget.
#[tokio::test]
async fn anonymous_directory_reads_and_chat_connections_are_held_to_the_per_ip_budget() {
    let app = spawn_app_with(&[
        ("TOCSIN__RATELIMIT__PER_IP_PER_SECOND", "1".into()),
        ("TOCSIN__RATELIMIT__PER_IP_BURST", "2".into()),
    ])
    .await;
    app.identity("ALICE123", None, None).await;
    let read = || {
        app.client
            .get(app.url("/api/v1/identities/ALICE123"))
            .send()
    };
    assert_eq!(read().await.unwrap().status(), 200);
    assert_eq!(read().await.unwrap().status(), 200);
    let limited = read().await.unwrap();
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    // The same address has spent its budget: the chat upgrade is refused before any
    // handshake, with 429.
    let url = format!("ws://{}/chat", app.http);
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
        }
        other => panic!("expected 429, got {:?}", other.map(|(_, r)| r.status())),
    }
}

async fn credits_from(
    app: &TestApp,
    forwarded_for: &str,
    from: &str,
    secret: &str,
) -> reqwest::StatusCode {
    let url = app.url(&format!(
        "/credits?from={}&secret={secret}",
        urlencode(from)
    ));
    let req = app.client.get(url).header("x-forwarded-for", forwarded_for);
    req.send().await.unwrap().status()
}

/// Behind a reverse proxy the operator trusts, a brute force from one client is blocked
/// without locking out the real sender coming through the same proxy; from a peer that is
/// not trusted, the header changes nothing.
#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_the_one_limited() {
    let app = spawn_app_with(&[("TOCSIN__SERVER__TRUSTED_PROXIES", "127.0.0.0/8".into())]).await;
    let gw = app.gateway(GatewayMode::E2e, 7).await;
    let id = gw.id.as_str();
    let mut statuses = Vec::new();
    for i in 0..8 {
        let guess = format!("Guess{i:07}");
        statuses.push(
            credits_from(&app, "198.51.100.1", id, &guess)
                .await
                .as_u16(),
        );
    }
    assert_eq!(statuses[..5], [401; 5]);
    assert_eq!(statuses[5..], [429; 3]);
    assert_eq!(
        credits_from(&app, "198.51.100.1", id, &gw.secret).await,
        429
    );
    assert_eq!(
        credits_from(&app, "198.51.100.2", id, &gw.secret).await,
        200
    );

    // Without trusted proxies, a forged header gives no fresh budget.
    let direct = spawn_app_with(&[]).await;
    let gw = direct.gateway(GatewayMode::E2e, 7).await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        let (forged, guess) = (format!("198.51.100.{i}"), format!("Guess{i:07}"));
        let status = credits_from(&direct, &forged, gw.id.as_str(), &guess).await;
        statuses.push(status.as_u16());
    }
    assert_eq!(statuses[5..], [429; 3]);
}

/// Guesses for one gateway ID from many addresses block none of them beyond their own
/// pair, and the real sender goes on; past the per-ID watch the server raises one alarm.
#[tokio::test]
async fn guesses_from_many_addresses_raise_an_alarm_and_lock_nobody_out() {
    let app = spawn_app_with(&[
        ("TOCSIN__SERVER__TRUSTED_PROXIES", "127.0.0.0/8".into()),
        (
            "TOCSIN__RATELIMIT__AUTH_FAILURES_PER_GATEWAY_PER_MINUTE",
            "3".into(),
        ),
    ])
    .await;
    let gw = app.gateway(GatewayMode::E2e, 7).await;
    for i in 0..10 {
        let (client, guess) = (format!("198.51.100.{i}"), format!("Guess{i:07}"));
        let status = credits_from(&app, &client, gw.id.as_str(), &guess).await;
        assert_eq!(status, 401);
    }
    let alarms = app.metric("tocsin_auth_failure_alarms_total").await;
    assert_eq!(alarms, Some(1.0));
    let real = credits_from(&app, "203.0.113.9", gw.id.as_str(), &gw.secret).await;
    assert_eq!(real, 200);
}
