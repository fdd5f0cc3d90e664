//! `tocsin-cli callback serve` as an operator runs it: the real binary receives the
//! server's callbacks, prints a device's reply as one line, saves a file the device
//! sent, and answers forged, oversized and odd requests with the mapped statuses.

use tocsin_sdk::crypto::{encrypt_file_blob, SymmetricKey};
use tocsin_sdk::device::{Admission, Connection, DeviceKeys};
use tocsin_sdk::protocol::{
    callback_mac_hex, CallbackFields, E2eMessage, FileMessage, MessageFlags,
};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::ChildStdout;

use crate::helpers::tocsin_cli::{command, interrupt};
use crate::helpers::wait::PATIENCE;
use crate::helpers::{gateway_client, loopback_allowed, spawn_app_with, TestApp, TestGateway};

/// The environment of an operator running the receiver for `gw`.
fn env_for(app: &TestApp, gw: &TestGateway) -> Vec<(&'static str, String)> {
    vec![
        ("TOCSIN_BASE_URL", app.url("")),
        ("TOCSIN_GATEWAY_ID", gw.id.to_string()),
        ("TOCSIN_SECRET", gw.secret.clone()),
        ("TOCSIN_PRIVATE_KEY", gw.keys.secret.to_hex().to_string()),
    ]
}

async fn next_line<R>(lines: &mut Lines<R>) -> String
where
    R: tokio::io::AsyncBufRead + Unpin,
{
    tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .expect("a line in time")
        .unwrap()
        .expect("a line")
}

/// The next message line on standard output, split into its five fields.
async fn message_line(lines: &mut Lines<BufReader<ChildStdout>>) -> Vec<String> {
    let line = next_line(lines).await;
    let fields: Vec<String> = line.splitn(5, ' ').map(str::to_owned).collect();
    assert_eq!(fields.len(), 5, "{line}");
    assert!(fields[0].ends_with('Z'), "{line}");
    fields
}

#[tokio::test]
async fn callback_serve_prints_replies_saves_files_and_refuses_forgeries() {
    let app = spawn_app_with(&loopback_allowed()).await;
    let gw = app.gateway(tocsin::store::GatewayMode::E2e, 10).await;
    let files = tempfile::tempdir().unwrap();
    let files_arg = files.path().to_str().unwrap();
    let args = [
        "callback",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--files",
        files_arg,
    ];
    let mut serve = command(&env_for(&app, &gw), &args).spawn().unwrap();
    let mut stdout = BufReader::new(serve.stdout.take().unwrap()).lines();
    let mut stderr = BufReader::new(serve.stderr.take().unwrap()).lines();
    let banner = next_line(&mut stderr).await;
    let url = banner
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {banner:?}"))
        .to_owned();
    assert!(banner.contains(gw.id.as_str()), "{banner}");

    // Requests the gateway would never make.
    let http = reqwest::Client::new();
    let status = |res: reqwest::Response| res.status().as_u16();
    assert_eq!(status(http.get(&url).send().await.unwrap()), 405);
    let (date, nonce, box_hex) = ("1700000000", "ab".repeat(24), "00".repeat(32));
    let fields = CallbackFields {
        from: "ALICE123",
        to: gw.id.as_str(),
        message_id: "0102030405060708",
        date,
        nonce: &nonce,
        box_hex: &box_hex,
    };
    let wrong = tocsin_sdk::protocol::ApiSecret::parse("WrongSecret123").unwrap();
    let forged = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("from", fields.from)
        .append_pair("to", fields.to)
        .append_pair("messageId", fields.message_id)
        .append_pair("date", date)
        .append_pair("nonce", &nonce)
        .append_pair("box", &box_hex)
        .append_pair("mac", &callback_mac_hex(&wrong, &fields))
        .finish();
    let post = |body: String| {
        http.post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    assert_eq!(status(post(forged.clone()).await.unwrap()), 401);
    assert_eq!(status(post("x".repeat(17 * 1024)).await.unwrap()), 413);
    assert!(next_line(&mut stderr).await.contains("refused (401)"));

    // A device replies to the gateway ID; the server's dispatcher delivers it.
    app.state
        .store
        .set_callback_url(&gw.id, Some(&url))
        .await
        .unwrap();
    let keys = DeviceKeys::init(&app.url(""), Admission::Open, None)
        .await
        .unwrap();
    let mut device = Connection::connect(&keys, &keys.directory().unwrap())
        .await
        .unwrap();
    let gateway = *gw.id.as_identity();
    let reply = device.send_text(&gateway, "on it\nnow").await.unwrap();
    let line = message_line(&mut stdout).await;
    assert_eq!(
        line[1..],
        [
            keys.identity.to_string(),
            reply.to_string(),
            "text".into(),
            "on it\\nnow".into()
        ]
    );

    // A file from the device. Devices have no upload of their own, so the blob goes up
    // with the gateway's account; the receiver fetches it like any blob.
    let key = SymmetricKey::generate();
    let blob_id = gateway_client(&app, &gw)
        .upload_blob(encrypt_file_blob(&key, b"all good"), false)
        .await
        .unwrap();
    let mut file = FileMessage::new(blob_id, key, "text/plain".into(), 8);
    file.name = Some("../report.txt".into());
    file.caption = Some("Q3".into());
    let sent = device
        .send(&gateway, &E2eMessage::File(file), MessageFlags::default())
        .await
        .unwrap();
    let line = message_line(&mut stdout).await;
    assert_eq!(line[2], sent.to_string());
    let saved = files.path().join("report.txt");
    assert_eq!(
        line[4],
        format!(
            "../report.txt (text/plain, 8 bytes) saved as {} caption: Q3",
            saved.display()
        )
    );
    assert_eq!(line[3], "file");
    assert_eq!(std::fs::read(&saved).unwrap(), b"all good");
    device.close().await;

    interrupt(&serve);
    let status = tokio::time::timeout(PATIENCE, serve.wait())
        .await
        .expect("serve stops in time")
        .unwrap();
    assert!(status.success(), "{status:?}");
}
