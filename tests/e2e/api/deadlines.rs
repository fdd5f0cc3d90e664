//! What a slow or greedy client can hold: a body has a deadline (408, nothing of the
//! request is acted on, the connection is closed), and one address holds a capped number
//! of connections (429 and closed past it). Raw TCP, since an HTTP client library will
//! not stall halfway through a body.

use tocsin::store::GatewayMode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::wait::{until, PATIENCE};
use crate::helpers::{spawn_app_with, TestApp};

/// Sends `head` (request line and headers, with a Content-Length larger than `part`) and
/// `part`, then nothing more; returns all the server answers until it closes.
async fn stall(app: &TestApp, head: &str, part: &[u8]) -> String {
    let mut stream = TcpStream::connect(app.http).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(part).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer))
        .await
        .expect("the server answers and closes the connection")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

fn head(path: &str, content_type: &str, declared: usize) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: tocsin\r\nContent-Type: {content_type}\r\n\
         Content-Length: {declared}\r\n\r\n"
    )
}

#[tokio::test]
async fn a_body_that_stalls_is_answered_408_and_nothing_of_it_is_acted_on() {
    let app = spawn_app_with(&[("TOCSIN__SERVER__BODY_TIMEOUT_SECS", "1".into())]).await;
    let gw = app.gateway(GatewayMode::Basic, 10).await;
    app.identity("STALL123", None, None).await;

    let form = format!("{}&to=STALL123&text=hello", gw.credentials());
    let form_type = "application/x-www-form-urlencoded";
    let answer = stall(
        &app,
        &head("/send_simple", form_type, form.len() + 40),
        form.as_bytes(),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.ends_with("the request body did not arrive within 1 s"),
        "{answer}"
    );
    assert!(app.queued("STALL123").await.is_empty());
    assert_eq!(app.balance(&gw).await, 10);

    let json = br#"{"publicKey":"#;
    let answer = stall(
        &app,
        &head("/api/v1/identities", "application/json", 90),
        json,
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // A body that arrives in time is served as ever.
    let (status, _) = app.post_form("/send_simple", form).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn an_upload_that_stalls_is_answered_408_and_leaves_nothing_behind() {
    let app = spawn_app_with(&[("TOCSIN__BLOBS__UPLOAD_TIMEOUT_SECS", "1".into())]).await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    let boundary = "stalled-boundary";
    let part = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"blob\"; filename=\"blob\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n{}",
        "x".repeat(4096)
    );
    let path = format!("/upload_blob?{}", gw.credentials());
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let answer = stall(
        &app,
        &head(&path, &content_type, part.len() + 100_000),
        part.as_bytes(),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let tmp = app.state.settings.storage.data_dir.join("blobs/tmp");
    let left = std::fs::read_dir(&tmp).map_or(0, |entries| entries.count());
    assert_eq!(left, 0, "the partial upload was removed");
    assert_eq!(app.state.store.blob_bytes().await.unwrap(), 0);
    assert_eq!(app.balance(&gw).await, 10);
}

/// Sends a keep-alive `GET /health` on `stream` and reads the answer's head and body.
async fn health(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: tocsin\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    let complete = |a: &[u8]| {
        let text = String::from_utf8_lossy(a);
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            return false;
        };
        let length = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length: ")
                    .map(str::to_owned)
            })
            .and_then(|n| n.trim().parse::<usize>().ok());
        length.is_some_and(|n| body.len() >= n)
    };
    while !complete(&answer) {
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut buf))
            .await
            .expect("the server answers")
            .unwrap();
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn an_address_holds_a_capped_number_of_connections() {
    let app = spawn_app_with(&[("TOCSIN__SERVER__CONNECTIONS_PER_IP", "2".into())]).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(app.http).await.unwrap();
        let answer = health(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        held.push(stream);
    }
    let mut third = TcpStream::connect(app.http).await.unwrap();
    let answer = health(&mut third).await;
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(
        answer.contains("too many connections from this address"),
        "{answer}"
    );
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(PATIENCE, third.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the refused connection is closed");
    assert_eq!(
        app.metric("tocsin_connections_refused_total").await,
        Some(1.0)
    );

    // The two admitted connections still serve; once one closes, a new one is admitted.
    let answer = health(&mut held[1]).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(held.remove(0));
    until("a closed connection gives its place back", || async {
        let mut stream = TcpStream::connect(app.http).await.unwrap();
        health(&mut stream).await.starts_with("HTTP/1.1 200")
    })
    .await;
}
