//! `tocsin-cli` against the HTTPS server: `--ca-file` (or `TOCSIN_CA_FILE`) for the API
//! commands and for `device …`; without it, one line that says what to pass; a missing
//! or unusable CA file is a usage error.

use std::process::Output;

use tocsin::store::GatewayMode;
use tocsin_sdk::protocol::MessageId;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::{https_url, spawn_tls_app, Pki};
use crate::helpers::tocsin_cli::{self, failed, ok};
use crate::helpers::wait::PATIENCE;

async fn run(env: &[(&str, String)], args: &[&str]) -> Output {
    let output = tocsin_cli::command(env, args).output();
    tokio::time::timeout(PATIENCE, output)
        .await
        .expect("the CLI finishes in time")
        .unwrap()
}

#[tokio::test]
async fn api_commands_trust_the_ca_given_by_ca_file() {
    let pki = Pki::new();
    let app = spawn_tls_app(&pki).await;
    let gw = app.gateway(GatewayMode::Basic, 10).await;
    app.identity("ALICE123", None, None).await;
    let env = vec![
        ("TOCSIN_BASE_URL", https_url(&app)),
        ("TOCSIN_GATEWAY_ID", gw.id.to_string()),
        ("TOCSIN_SECRET", gw.secret.clone()),
    ];
    let ca = pki.ca_file.to_str().unwrap();

    assert_eq!(ok(&run(&env, &["--ca-file", ca, "credits"]).await), "10\n");
    let sent = ok(&run(
        &env,
        &["send-simple", "--to", "ALICE123", "hi", "--ca-file", ca],
    )
    .await);
    MessageId::parse(sent.trim()).unwrap();
    let mut with_var = env.clone();
    with_var.push(("TOCSIN_CA_FILE", ca.to_owned()));
    assert_eq!(ok(&run(&with_var, &["credits"]).await), "9\n");

    let untrusted = failed(&run(&env, &["credits"]).await, 1);
    assert!(
        untrusted.contains("certificate") && untrusted.contains("--ca-file"),
        "{untrusted}"
    );
    assert!(!untrusted.contains(&gw.secret), "{untrusted}");

    let missing = pki.path("missing.pem");
    let missing = missing.to_str().unwrap();
    let refused = failed(&run(&env, &["--ca-file", missing, "credits"]).await, 2);
    assert!(
        refused.contains("--ca-file") && refused.contains(missing),
        "{refused}"
    );
    let junk = pki.path("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let junk = junk.to_str().unwrap();
    let refused = failed(&run(&env, &["--ca-file", junk, "credits"]).await, 2);
    assert!(
        refused.contains(junk) && refused.contains("no PEM certificate"),
        "{refused}"
    );
    assert_eq!(app.balance(&gw).await, 9);
}

#[tokio::test]
async fn device_commands_trust_the_ca_given_by_ca_file() {
    let pki = Pki::new();
    let app = spawn_tls_app(&pki).await;
    let gw = app.gateway(GatewayMode::Basic, 10).await;
    app.identity("BOB45678", None, None).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device.json");
    let keys = path.to_str().unwrap();
    let server = https_url(&app);
    let ca = pki.ca_file.to_str().unwrap();

    let untrusted = failed(
        &run(
            &[],
            &["device", "init", "--server", &server, "--keys", keys],
        )
        .await,
        1,
    );
    assert!(
        untrusted.contains("certificate") && untrusted.contains("--ca-file"),
        "{untrusted}"
    );
    assert!(!path.exists());
    let missing = pki.path("missing.pem");
    let args = ["device", "init", "--server", &server, "--keys", keys];
    let env = [("TOCSIN_CA_FILE", missing.display().to_string())];
    let refused = failed(&run(&env, &args).await, 2);
    assert!(refused.contains("TOCSIN_CA_FILE"), "{refused}");

    // Enrolment over https, then the first login over wss.
    let init = ok(&run(
        &[],
        &[
            "--ca-file",
            ca,
            "device",
            "init",
            "--server",
            &server,
            "--keys",
            keys,
        ],
    )
    .await);
    assert!(init.contains("login: ok"), "{init}");

    // Sending logs in over wss again; the message is queued for its recipient.
    let sent = ok(&run(
        &[("TOCSIN_CA_FILE", ca.to_owned())],
        &["device", "send", "--keys", keys, "--to", "BOB45678", "hi"],
    )
    .await);
    let id = MessageId::parse(sent.trim()).unwrap();
    assert_eq!(app.queued("BOB45678").await[0].message_id, id);
    let untrusted = failed(
        &run(
            &[],
            &["device", "send", "--keys", keys, "--to", "BOB45678", "hi"],
        )
        .await,
        1,
    );
    assert!(untrusted.contains("certificate"), "{untrusted}");

    // Listening over wss prints what the API delivers.
    let mut listen =
        tocsin_cli::command(&[], &["--ca-file", ca, "device", "listen", "--keys", keys])
            .spawn()
            .unwrap();
    let identity = tocsin_sdk::device::DeviceKeys::load(&path)
        .unwrap()
        .identity;
    let alert = super::https_client(&app, &gw, Some(pki.ca()))
        .send_simple(&tocsin_sdk::client::Recipient::Id(identity), "Server down")
        .await
        .unwrap();
    let mut lines = BufReader::new(listen.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .expect("a line in time")
        .unwrap()
        .expect("a line");
    assert!(
        line.ends_with(&format!("{} {alert} text Server down", gw.id)),
        "{line}"
    );
    tocsin_cli::interrupt(&listen);
    let status = tokio::time::timeout(PATIENCE, listen.wait())
        .await
        .expect("listen stops in time")
        .unwrap();
    assert!(status.success(), "{status:?}");
}
