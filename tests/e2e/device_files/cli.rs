//! `tocsin-cli device listen` saves what `tocsin-cli send-file` sent: into `files` next
//! to the keys file by default, under the sender's name without its directories, never
//! over an existing file; the blobs are gone afterwards.

use tocsin::store::GatewayMode;
use tocsin_sdk::crypto::SharedKey;
use tocsin_sdk::device::{Admission, DeviceKeys};
use tocsin_sdk::protocol::E2eMessage;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::{blob_status, until, PATIENCE};
use crate::helpers::spawn_app;
use crate::helpers::tocsin_cli::{command, interrupt};

#[tokio::test]
async fn device_listen_saves_files_sent_with_send_file_and_prints_them() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    let home = tempfile::tempdir().unwrap();
    let keys_path = home.path().join("alice").join("device.json");
    std::fs::create_dir(keys_path.parent().unwrap()).unwrap();
    let keys = DeviceKeys::init(&app.url(""), Admission::Open, None)
        .await
        .unwrap();
    keys.save(&keys_path).unwrap();

    // Two files of the same name from the gateway's command line.
    let env = vec![
        ("TOCSIN_BASE_URL", app.url("")),
        ("TOCSIN_GATEWAY_ID", gw.id.to_string()),
        ("TOCSIN_SECRET", gw.secret.clone()),
        ("TOCSIN_PRIVATE_KEY", gw.keys.secret.to_hex().to_string()),
    ];
    let outbox = tempfile::tempdir().unwrap();
    let report = outbox.path().join("report.txt");
    let to = keys.identity.to_string();
    let mut sent = Vec::new();
    for (content, caption) in [("all good", "Q3"), ("all better", "Q4")] {
        std::fs::write(&report, content).unwrap();
        let args = [
            "send-file",
            "--to",
            &to,
            report.to_str().unwrap(),
            "--caption",
            caption,
        ];
        let out = command(&env, &args).output().await.unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        sent.push(String::from_utf8(out.stdout).unwrap().trim().to_owned());
    }
    // The blob IDs, from the queued messages, to see them go later.
    let shared = SharedKey::new(&keys.secret_key, &gw.keys.public).unwrap();
    let mut blobs = Vec::new();
    for queued in app.queued(keys.identity.as_str()).await {
        let plain = shared.open(&queued.nonce, &queued.body).unwrap();
        let E2eMessage::File(file) = E2eMessage::from_padded(&plain).unwrap() else {
            panic!("not a file message");
        };
        blobs.push(file.blob_id);
    }
    assert_eq!(blobs.len(), 2);

    let keys_arg = keys_path.to_str().unwrap();
    let mut listen = command(&[], &["device", "listen", "--keys", keys_arg])
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(listen.stdout.take().unwrap()).lines();
    let files = home.path().join("alice").join("files");
    for (n, (name, caption)) in [("report.txt", "Q3"), ("report (1).txt", "Q4")]
        .into_iter()
        .enumerate()
    {
        let line = tokio::time::timeout(PATIENCE, lines.next_line())
            .await
            .expect("a line in time")
            .unwrap()
            .expect("a line");
        let fields: Vec<&str> = line.splitn(5, ' ').collect();
        assert_eq!(fields[1..4], [gw.id.as_str(), &sent[n], "file"], "{line}");
        let size = if n == 0 { 8 } else { 10 };
        assert_eq!(
            fields[4],
            format!(
                "report.txt (text/plain, {size} bytes) saved as {} caption: {caption}",
                files.join(name).display()
            )
        );
    }
    assert_eq!(
        std::fs::read(files.join("report.txt")).unwrap(),
        b"all good"
    );
    assert_eq!(
        std::fs::read(files.join("report (1).txt")).unwrap(),
        b"all better"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&files).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
    until("both blobs are gone", || async {
        blob_status(&app, &blobs[0]).await == 404 && blob_status(&app, &blobs[1]).await == 404
    })
    .await;

    interrupt(&listen);
    let status = tokio::time::timeout(PATIENCE, listen.wait())
        .await
        .expect("listen stops in time")
        .unwrap();
    assert!(status.success(), "{status:?}");
}
