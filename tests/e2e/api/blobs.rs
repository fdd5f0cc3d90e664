//! `POST /upload_blob` (the four multipart shapes SDKs send) and `GET /blobs/{id}`.

use tocsin::store::GatewayMode;
use tocsin_sdk::protocol::BlobId;

use crate::helpers::{spawn_app, spawn_app_with, TestApp, TestGateway};

const BOUNDARY: &str = "tocsin-test-boundary";

/// A multipart body with one part named `blob`, headed by `part_headers`.
fn multipart(part_headers: &str, data: &[u8], extra_text_field: bool) -> Vec<u8> {
    let mut body = Vec::new();
    if extra_text_field {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(format!("--{BOUNDARY}\r\n{part_headers}\r\n\r\n").as_bytes());
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

const PYTHON: &str = "Content-Disposition: form-data; name=\"blob\"; filename=\"blob\"\r\nContent-Type: application/octet-stream";
const RUST: &str =
    "Content-Disposition: form-data; name=\"blob\"\r\nContent-Type: application/octet-stream";
const PHP: &str = "Content-Disposition: form-data; name=\"blob\"";
const JAVA: &str = "Content-Disposition: form-data; name=\"blob\"; filename=\"blob.file\"";

async fn upload(app: &TestApp, gw: &TestGateway, query: &str, body: Vec<u8>) -> (u16, String) {
    let res = app
        .client
        .post(app.url(&format!("/upload_blob?{}{query}", gw.credentials())))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn download(app: &TestApp, gw: &TestGateway, id: &str) -> (u16, Vec<u8>, Option<String>) {
    let res = app
        .client
        .get(app.url(&format!("/blobs/{id}?{}", gw.credentials())))
        .send()
        .await
        .unwrap();
    let content_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    (
        res.status().as_u16(),
        res.bytes().await.unwrap().to_vec(),
        content_type,
    )
}

#[tokio::test]
async fn every_sdk_multipart_shape_uploads_and_downloads_byte_for_byte() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    let reader = app.gateway(GatewayMode::E2e, 0).await;
    for (i, headers) in [PYTHON, RUST, PHP, JAVA].into_iter().enumerate() {
        let data: Vec<u8> = (0..5000u32).map(|n| (n * 7 + i as u32) as u8).collect();
        let (status, id) = upload(&app, &gw, "", multipart(headers, &data, i == 1)).await;
        assert_eq!(status, 200, "{headers}: {id}");
        assert_eq!(id.len(), 32);
        BlobId::parse(&id).unwrap();
        // Anyone authenticated may download, even with no credits left.
        let (status, bytes, content_type) = download(&app, &reader, &id).await;
        assert_eq!(status, 200);
        assert_eq!(bytes, data);
        assert_eq!(content_type.as_deref(), Some("application/octet-stream"));
    }
    assert_eq!(app.balance(&gw).await, 6, "one credit per blob");
}

#[tokio::test]
async fn twenty_mib_exactly_is_accepted_and_one_byte_more_is_413() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    let limit = 20 * 1024 * 1024;
    let (status, id) = upload(
        &app,
        &gw,
        "&persist=1",
        multipart(RUST, &vec![0x5a; limit], false),
    )
    .await;
    assert_eq!(status, 200);
    let record = app
        .state
        .store
        .blob(&BlobId::parse(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((record.size, record.persist), (limit as i64, true));
    let (status, _) = upload(
        &app,
        &gw,
        "",
        multipart(RUST, &vec![0x5a; limit + 1], false),
    )
    .await;
    assert_eq!(status, 413);
    assert_eq!(app.balance(&gw).await, 9);
    let tmp = app.state.settings.storage.data_dir.join("blobs/tmp");
    assert_eq!(
        std::fs::read_dir(tmp).unwrap().count(),
        0,
        "the refused upload left no file"
    );
}

#[tokio::test]
async fn empty_missing_unpaid_and_unknown_blobs() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    assert_eq!(
        upload(&app, &gw, "", multipart(RUST, b"", false)).await.0,
        400
    );
    let wrong_name = multipart(
        "Content-Disposition: form-data; name=\"file\"",
        b"abc",
        false,
    );
    assert_eq!(upload(&app, &gw, "", wrong_name).await.0, 400);
    let not_multipart = app
        .client
        .post(app.url(&format!("/upload_blob?{}", gw.credentials())))
        .body("raw")
        .send()
        .await
        .unwrap();
    assert_eq!(not_multipart.status(), 400);
    let broke = app.gateway(GatewayMode::E2e, 0).await;
    assert_eq!(
        upload(&app, &broke, "", multipart(RUST, b"abc", false))
            .await
            .0,
        402
    );
    assert_eq!(app.balance(&gw).await, 10);
    for id in [
        "0123456789abcdef0123456789abcdef",
        "0123456789abcde",
        "0123456789abcdef",
    ] {
        assert_eq!(download(&app, &gw, id).await.0, 404, "{id}");
    }
}

/// The blob store holds at most `blobs.max_total_bytes`: an upload that would pass it is
/// answered 507, charged nothing and keeps nothing.
#[tokio::test]
async fn uploads_past_the_stores_bound_are_refused_with_507() {
    let app = spawn_app_with(&[("TOCSIN__BLOBS__MAX_TOTAL_BYTES", "100".into())]).await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    let (status, body) = upload(&app, &gw, "", multipart(RUST, &[1; 60], false)).await;
    assert_eq!(status, 200, "{body}");
    let (status, reason) = upload(&app, &gw, "", multipart(RUST, &[2; 60], false)).await;
    assert_eq!(status, 507);
    assert!(reason.contains("100 bytes"), "{reason}");
    assert_eq!(
        app.balance(&gw).await,
        9,
        "the refused upload is not charged"
    );
    assert_eq!(app.state.store.blob_bytes().await.unwrap(), 60);
    let files = std::fs::read_dir(app.state.settings.storage.data_dir.join("blobs/tmp"))
        .unwrap()
        .count();
    assert_eq!(files, 0, "nothing of it is left in the upload directory");
    // Once the first has gone, there is room again.
    app.state
        .store
        .expire_blobs(tocsin::domain::UnixMs::MAX)
        .await
        .unwrap();
    let (status, _) = upload(&app, &gw, "", multipart(RUST, &[3; 60], false)).await;
    assert_eq!(status, 200);
}

/// An upload a crash left behind in the upload directory is removed when the server
/// starts again.
#[tokio::test]
async fn uploads_left_behind_are_removed_at_start() {
    let app = spawn_app().await;
    let tmp = app.state.settings.storage.data_dir.join("blobs/tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let left = tmp.join("upload-0000000000000000");
    std::fs::write(&left, b"half an upload").unwrap();
    let app = app.restart().await;
    assert!(!left.exists());
    drop(app);
}

/// Writes the head of an upload of `body` and its first `sent` bytes; the rest waits.
async fn begin_upload(
    app: &TestApp,
    gw: &TestGateway,
    body: &[u8],
    sent: usize,
) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(app.http).await.unwrap();
    let head = format!(
        "POST /upload_blob?{} HTTP/1.1\r\nHost: tocsin\r\nConnection: close\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {}\r\n\r\n",
        gw.credentials(),
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..sent]).await.unwrap();
    stream
}

#[tokio::test]
async fn an_upload_is_paid_before_its_bytes_so_a_second_one_the_balance_cannot_cover_is_refused_at_once(
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 1).await;
    let body = multipart(RUST, &[7; 4096], false);
    let mut first = begin_upload(&app, &gw, &body, 1000).await;
    crate::helpers::wait::until("the first upload is paid", || async {
        app.balance(&gw).await == 0
    })
    .await;
    // Before, the second passed the balance check too and took its bytes, and one of the
    // two was refused only at the end.
    assert_eq!(
        upload(&app, &gw, "", body.clone()).await,
        (402, "not enough credits".into())
    );
    first.write_all(&body[1000..]).await.unwrap();
    let mut answer = String::new();
    first.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(app.balance(&gw).await, 0);
}

#[tokio::test]
async fn an_upload_refused_after_its_charge_gets_the_credits_back() {
    let app = spawn_app_with(&[("TOCSIN__BLOBS__MAX_BYTES", "16".into())]).await;
    let gw = app.gateway(GatewayMode::E2e, 5).await;
    let (status, _) = upload(&app, &gw, "", multipart(RUST, &[1; 17], false)).await;
    assert_eq!(status, 413);
    let (status, _) = upload(&app, &gw, "", multipart(RUST, b"", false)).await;
    assert_eq!(status, 400);
    assert_eq!(app.balance(&gw).await, 5);
    let ledger = app.state.store.ledger(gw.account, 10).await.unwrap();
    let refunds = ledger
        .iter()
        .filter(|e| e.reason == "upload_blob refund" && e.delta == 1)
        .count();
    assert_eq!(refunds, 2, "{ledger:?}");
    let (status, _) = upload(&app, &gw, "", multipart(RUST, &[1; 16], false)).await;
    assert_eq!(status, 200);
    assert_eq!(app.balance(&gw).await, 4);
}

#[tokio::test]
async fn an_upload_dropped_halfway_gets_its_credits_back() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    let body = multipart(RUST, &[7; 4096], false);
    let stream = begin_upload(&app, &gw, &body, 1000).await;
    crate::helpers::wait::until("the upload is paid", || async {
        app.balance(&gw).await == 9
    })
    .await;
    // A reset, not a close: the server drops the request rather than reading an end.
    socket2::SockRef::from(&stream)
        .set_linger(Some(std::time::Duration::ZERO))
        .unwrap();
    drop(stream);
    crate::helpers::wait::until("the charge is given back", || async {
        app.balance(&gw).await == 10
    })
    .await;
    let ledger = app.state.store.ledger(gw.account, 10).await.unwrap();
    assert_eq!(
        ledger
            .iter()
            .filter(|e| e.reason == "upload_blob refund")
            .count(),
        1,
        "{ledger:?}"
    );
}
