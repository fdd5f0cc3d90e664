//! `tocsin-cli` as a user runs it: the real binary against the real server (port 0, on
//! the run's engine). The binary belongs to the SDK package, so it is built here
//! first, into the target directory this test runs from.

use std::process::{Output, Stdio};

use tocsin::store::GatewayMode;
use tocsin_sdk::crypto::SharedKey;
use tocsin_sdk::protocol::E2eMessage;
use tokio::io::AsyncWriteExt;

use crate::helpers::tocsin_cli::{self, failed, ok};
use crate::helpers::{spawn_app, TestApp, TestGateway};

mod alarms;
mod local;
mod status;

/// Runs the CLI with only the given `TOCSIN_*` variables and optional standard input.
pub async fn cli(env: &[(&str, String)], args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = tocsin_cli::command(env, args);
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .await
        .unwrap();
    drop(input);
    child.wait_with_output().await.unwrap()
}

/// The environment of a user acting as `gw`.
fn env_for(app: &TestApp, gw: &TestGateway) -> Vec<(&'static str, String)> {
    vec![
        ("TOCSIN_BASE_URL", app.url("")),
        ("TOCSIN_GATEWAY_ID", gw.id.to_string()),
        ("TOCSIN_SECRET", gw.secret.clone()),
        ("TOCSIN_PRIVATE_KEY", gw.keys.secret.to_hex().to_string()),
    ]
}

#[tokio::test]
async fn credentials_never_come_from_the_command_line() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    let mut env = env_for(&app, &gw);
    env.retain(|(k, _)| *k != "TOCSIN_SECRET");
    let missing = failed(&cli(&env, &["credits"], None).await, 2);
    assert!(missing.contains("TOCSIN_SECRET") && missing.contains("--secret-file"));
    for args in [
        vec!["--secret", &gw.secret, "credits"],
        vec!["credits", &format!("--secret={}", gw.secret)],
    ] {
        let refused = failed(&cli(&env, &args, None).await, 2);
        assert!(!refused.contains(&gw.secret), "{refused}");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret");
    std::fs::write(&file, format!("{}\n", gw.secret)).unwrap();
    let args = ["--secret-file", file.to_str().unwrap(), "credits"];
    assert_eq!(ok(&cli(&env, &args, None).await), "10\n");
    env.push(("TOCSIN_SECRET", "WrongSecret123".into()));
    let refused = failed(&cli(&env, &["credits"], None).await, 1);
    assert!(refused.contains("401"), "{refused}");
}

#[tokio::test]
async fn basic_mode_send_and_directory_commands_work_against_the_server() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::Basic, 10).await;
    let alice = app.identity("ALICE123", Some("41791234567"), None).await;
    let env = env_for(&app, &gw);
    assert_eq!(ok(&cli(&env, &["credits"], None).await), "10\n");
    let id = ok(&cli(
        &env,
        &["send-simple", "--to", "ALICE123", "Server down"],
        None,
    )
    .await);
    let by_phone = ok(&cli(
        &env,
        &["send-simple", "--phone", "41791234567", "-"],
        Some("again\n"),
    )
    .await);
    let queued = app.queued("ALICE123").await;
    assert_eq!(queued[0].message_id.to_string(), id.trim());
    assert_eq!(queued[1].message_id.to_string(), by_phone.trim());
    let shared = SharedKey::new(&alice.secret, &gw.keys.public).unwrap();
    let plain = shared.open(&queued[1].nonce, &queued[1].body).unwrap();
    assert_eq!(
        E2eMessage::from_padded(&plain).unwrap(),
        E2eMessage::Text("again".into())
    );

    assert_eq!(
        ok(&cli(&env, &["lookup", "--phone", "41791234567"], None).await),
        "ALICE123\n"
    );
    let hash = tocsin_sdk::protocol::hash_phone("41791234567").to_string();
    assert_eq!(
        ok(&cli(&env, &["lookup", "--phone-hash", &hash], None).await),
        "ALICE123\n"
    );
    failed(
        &cli(&env, &["lookup", "--email", "nobody@example.com"], None).await,
        1,
    );
    assert_eq!(
        ok(&cli(&env, &["pubkey", "ALICE123"], None).await),
        format!("{}\n", alice.public)
    );
    assert_eq!(
        ok(&cli(&env, &["capabilities", "ALICE123"], None).await),
        "text,image,file\n"
    );
    failed(&cli(&env, &["pubkey", "ZZZZZZZZ"], None).await, 1);
    assert_eq!(app.balance(&gw).await, 8);
}

#[tokio::test]
async fn e2e_and_blob_commands_work_against_the_server() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    let alice = app.identity("ALICE123", None, None).await;
    let env = env_for(&app, &gw);
    let id = ok(&cli(&env, &["send-e2e", "--to", "ALICE123", "Disk full"], None).await);
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.txt");
    std::fs::write(&report, "all good").unwrap();
    let report_arg = report.to_str().unwrap();
    let file_id = ok(&cli(
        &env,
        &[
            "send-file",
            "--to",
            "ALICE123",
            report_arg,
            "--caption",
            "Q3",
        ],
        None,
    )
    .await);
    let queued = app.queued("ALICE123").await;
    let shared = SharedKey::new(&alice.secret, &gw.keys.public).unwrap();
    let open = |i: usize| {
        let plain = shared.open(&queued[i].nonce, &queued[i].body).unwrap();
        E2eMessage::from_padded(&plain).unwrap()
    };
    assert_eq!(queued[0].message_id.to_string(), id.trim());
    assert_eq!(open(0), E2eMessage::Text("Disk full".into()));
    assert_eq!(queued[1].message_id.to_string(), file_id.trim());
    let E2eMessage::File(file) = open(1) else {
        panic!("not a file message");
    };
    assert_eq!((file.media_type.as_str(), file.size), ("text/plain", 8));
    assert_eq!(
        (file.name.as_deref(), file.caption.as_deref()),
        (Some("report.txt"), Some("Q3"))
    );

    let blob_id = ok(&cli(&env, &["upload", report_arg, "--persist"], None).await);
    let copy = dir.path().join("copy");
    let copy_arg = copy.to_str().unwrap();
    ok(&cli(&env, &["download", blob_id.trim(), "--out", copy_arg], None).await);
    assert_eq!(std::fs::read(&copy).unwrap(), b"all good");
    failed(
        &cli(&env, &["download", blob_id.trim(), "--out", copy_arg], None).await,
        2,
    );
    failed(
        &cli(&env, &["send-e2e", "--to", "ZZZZZZZZ", "hi"], None).await,
        1,
    );
    assert_eq!(
        app.balance(&gw).await,
        6,
        "text 1, file 1 + blob 1, upload 1"
    );
}
