//! `/health`, `/metrics` and graceful shutdown.

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn health_answers_ok_as_plain_text() {
    let app = spawn_app().await;
    let res = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(res.text().await.unwrap(), "ok");
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn health_reports_503_when_the_store_is_gone() {
    let app = spawn_app().await;
    app.state.store.close().await;
    let res = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.text().await.unwrap(), "store unavailable");
}

#[tokio::test]
async fn metrics_ask_for_the_configured_bearer_token() {
    let token = "scrape-4f1c9a";
    let app = spawn_app_with(&[("TOCSIN__SERVER__METRICS_TOKEN", token.into())]).await;
    let get = |auth: Option<String>| {
        let mut request = app.client.get(app.metrics_url());
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        async move { request.send().await.unwrap() }
    };
    let none = get(None).await;
    assert_eq!(none.status(), 401);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    for wrong in [
        "Bearer scrape-4f1c9b",
        "Bearer ",
        "scrape-4f1c9a",
        "Basic c2NyYXBl",
    ] {
        assert_eq!(get(Some(wrong.into())).await.status(), 401, "{wrong}");
    }
    let right = get(Some(format!("Bearer {token}"))).await;
    assert_eq!(right.status(), 200);
    assert!(right.text().await.unwrap().contains("tocsin_store_health"));
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status_on_their_own_port() {
    let app = spawn_app().await;
    app.client.get(app.url("/health")).send().await.unwrap();
    let missing = app
        .client
        .get(app.url("/no-such-thing"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    // The metrics route is not on the public listener.
    let public = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(public.status(), 404);
    let body = app.metrics_text().await;
    assert!(
        body.contains(r#"tocsin_http_requests_total{endpoint="/health",status="200"} 1"#),
        "{body}"
    );
    assert!(
        body.contains(r#"tocsin_http_requests_total{endpoint="unmatched",status="404"} 2"#),
        "{body}"
    );
    assert!(body.contains("tocsin_build_info"), "{body}");
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_stops_accepting_connections() {
    let app = spawn_app().await;
    let url = app.url("/health");
    let client = app.client.clone();
    app.shutdown().await.unwrap();
    assert!(
        client.get(url).send().await.is_err(),
        "listener must be closed after shutdown"
    );
}

#[tokio::test]
async fn metrics_report_accepted_messages_credits_queue_depth_and_latency() {
    use tocsin::store::GatewayMode;
    let app = spawn_app().await;
    app.identity("ALICE123", None, None).await;
    let basic = app.gateway(GatewayMode::Basic, 5).await;
    let e2e = app.gateway(GatewayMode::E2e, 5).await;
    let post = |body: String, path: &'static str| {
        app.client
            .post(app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let simple = post(
        format!("{}&to=ALICE123&text=hi", basic.credentials()),
        "/send_simple",
    );
    assert_eq!(simple.await.unwrap().status(), 200);
    let nonce = tocsin_sdk::protocol::Nonce::random();
    let boxed = post(
        format!("{}&to=ALICE123&nonce={nonce}&box=00ff", e2e.credentials()),
        "/send_e2e",
    );
    assert_eq!(boxed.await.unwrap().status(), 200);
    let body = app.metrics_text().await;
    for line in [
        r#"tocsin_messages_accepted_total{mode="basic"} 1"#,
        r#"tocsin_messages_accepted_total{mode="e2e"} 1"#,
        r#"tocsin_credits_debited_total{reason="send_simple"} 1"#,
        r#"tocsin_credits_debited_total{reason="send_e2e"} 1"#,
        "tocsin_queue_depth 2",
        r#"tocsin_store_jobs_total{kind="submission"} 2"#,
        "tocsin_store_replays_total 0",
        r#"tocsin_http_request_duration_seconds_count{endpoint="/send_e2e"} 1"#,
    ] {
        assert!(body.contains(line), "missing {line:?} in\n{body}");
    }
    // SQLite holds the keys (one per send: recipient and nonce) in memory; PostgreSQL
    // keeps them in a table.
    let in_memory = match app.state.store.backend() {
        tocsin::store::Backend::Sqlite => "tocsin_idempotency_keys_in_memory 2",
        tocsin::store::Backend::Postgres => "tocsin_idempotency_keys_in_memory 0",
    };
    assert!(body.contains(in_memory), "missing {in_memory:?} in\n{body}");
    assert!(
        !body.contains(basic.id.as_str()) && !body.contains("ALICE123"),
        "no IDs in labels"
    );
}

/// On SQLite a second server over the same database refuses to start and says why (the
/// first holds the idempotency keys and feeds its sessions itself); once the first has
/// stopped, a new one starts. On PostgreSQL several servers share the database.
#[tokio::test]
async fn a_second_server_is_refused_on_sqlite_and_shares_the_database_on_postgres() {
    let app = spawn_app().await;
    let second = app.build_another().await;
    match app.state.store.backend() {
        tocsin::store::Backend::Sqlite => {
            let err = format!("{:#}", second.unwrap_err());
            assert!(
                err.contains("another Tocsin server is already serving"),
                "{err}"
            );
        }
        tocsin::store::Backend::Postgres => second.unwrap(),
    }
    let app = app.restart().await;
    assert_eq!(
        app.client
            .get(app.url("/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}
