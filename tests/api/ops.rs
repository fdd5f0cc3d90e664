//! `/health`, `/metrics` and graceful shutdown.

use crate::helpers::spawn_app;

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
    let body = app
        .client
        .get(app.metrics_url())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
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
