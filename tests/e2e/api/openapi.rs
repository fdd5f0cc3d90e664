//! `/openapi.json` is served, and it describes exactly the routes the server has, with the
//! statuses they really answer.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_document_lists_exactly_the_served_routes() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let doc: Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let served: BTreeSet<(String, String)> = tocsin::http::api_route_list()
        .into_iter()
        .map(|(method, path)| (method.to_string(), path.to_owned()))
        .collect();
    assert_eq!(documented, served);
}

#[tokio::test]
async fn an_anonymous_call_to_each_operation_answers_a_documented_status() {
    let app = spawn_app().await;
    let doc: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let concrete = path
                .replace("{id}", "ECHOECHO")
                .replace("{value}", "41791234567");
            let req = match method.as_str() {
                "get" => app.client.get(app.url(&concrete)),
                "post" => app.client.post(app.url(&concrete)),
                other => panic!("unexpected method {other}"),
            };
            let status = req.send().await.unwrap().status().as_u16().to_string();
            let documented = op["responses"].as_object().unwrap();
            assert!(
                documented.contains_key(&status),
                "{method} {path} answered {status}, not documented"
            );
        }
    }
}

#[tokio::test]
async fn what_the_document_leaves_out_is_refused_as_it_says() {
    let app = spawn_app().await;
    // A path asked with a method it does not serve: 405 with the methods it does.
    for (path, allowed) in [
        ("/send_simple", "POST"),
        ("/health", "GET"),
        ("/chat", "GET"),
    ] {
        let res = app
            .client
            .request(reqwest::Method::TRACE, app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 405, "{path}");
        assert_eq!(res.headers()["allow"], allowed, "{path}");
    }
    // `/chat` without an upgrade: the API's plain-text 400 with its reason.
    let res = app.client.get(app.url("/chat")).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert!(res
        .text()
        .await
        .unwrap()
        .starts_with("/chat takes WebSocket upgrades only"));
    // An object body given as an array is refused, not read by position.
    let gw = app.gateway(tocsin::store::GatewayMode::E2e, 0).await;
    app.allow_bulk_lookup(&gw).await;
    for path in ["/lookup/bulk", "/pubkeys/bulk"] {
        let res = app
            .client
            .post(app.url(&format!("{path}?{}", gw.credentials())))
            .json(&serde_json::json!([]))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{path}");
        assert_eq!(
            res.text().await.unwrap(),
            "malformed JSON body: expected an object"
        );
    }
}
