//! `tocsin-cli device …` as a user runs it: the real binary against the real server.

use std::process::Output;

use tocsin::store::GatewayMode;
use tocsin_sdk::client::E2eClient;
use tocsin_sdk::crypto::SharedKey;
use tocsin_sdk::device::DeviceKeys;
use tocsin_sdk::protocol::{E2eMessage, KeyPair, MessageId};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::{depth, gateway_client, until, PATIENCE};
use crate::helpers::spawn_app;
use crate::helpers::tocsin_cli::{self, failed, ok};

/// A command for the CLI with no `TOCSIN_*` variables from the test's environment.
fn command(args: &[&str]) -> tokio::process::Command {
    tocsin_cli::command(&[], args)
}

async fn run(args: &[&str]) -> Output {
    let output = command(args).output();
    tokio::time::timeout(PATIENCE, output)
        .await
        .expect("the CLI finishes in time")
        .unwrap()
}

#[tokio::test]
async fn device_init_send_reply_and_listen_work_from_the_command_line() {
    let app = spawn_app().await;
    // End-to-end mode, so that replies and receipts wait in its callback outbox.
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    app.takes_replies(&gw).await;
    let bob = app.identity("BOB45678", None, None).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alice").join("device.json");
    let keys_arg = path.to_str().unwrap();
    let server = app.url("");

    let impostor = KeyPair::generate().public.to_string();
    let refused = failed(
        &run(&[
            "device",
            "init",
            "--server",
            &server,
            "--server-key",
            &impostor,
            "--keys",
            keys_arg,
        ])
        .await,
        1,
    );
    assert!(refused.contains("not the expected"), "{refused}");
    assert!(!path.exists());

    let init = ok(&run(&["device", "init", "--server", &server, "--keys", keys_arg]).await);
    assert!(init.contains("login: ok"), "{init}");
    let keys = DeviceKeys::load(&path).unwrap();
    assert!(
        init.contains(&format!("identity: {}", keys.identity)),
        "{init}"
    );
    assert!(
        init.contains(&app.state.server_key.public.to_string()),
        "{init}"
    );
    failed(
        &run(&["device", "init", "--server", &server, "--keys", keys_arg]).await,
        2,
    );

    // A text to another identity, sealed with the key from the open directory.
    let out = ok(&run(&[
        "device", "send", "--keys", keys_arg, "--to", "BOB45678", "hi",
    ])
    .await);
    let id = MessageId::parse(out.trim()).unwrap();
    let queued = app.queued("BOB45678").await;
    assert_eq!(queued[0].message_id, id);
    let plain = SharedKey::new(&bob.secret, &keys.public_key())
        .unwrap()
        .open(&queued[0].nonce, &queued[0].body)
        .unwrap();
    assert_eq!(
        E2eMessage::from_padded(&plain).unwrap(),
        E2eMessage::Text("hi".into())
    );

    // A reply to a gateway ID, with its key from the directory or from the command line.
    let gateway = gw.id.to_string();
    let gateway_key = gw.keys.public.to_string();
    let first = ok(&run(&[
        "device", "reply", "--keys", keys_arg, "--to", &gateway, "ok",
    ])
    .await);
    let args = [
        "device",
        "reply",
        "--keys",
        keys_arg,
        "--to",
        &gateway,
        "--to-public-key",
        &gateway_key,
        "on it",
    ];
    let second = ok(&run(&args).await);
    let outbox = app.state.store.callbacks_for(&gw.id).await.unwrap();
    let ids: Vec<MessageId> = [first, second]
        .iter()
        .map(|out| MessageId::parse(out.trim()).unwrap())
        .collect();
    assert_eq!(outbox, [(keys.identity, ids[0]), (keys.identity, ids[1])]);
    let unknown = failed(
        &run(&[
            "device", "reply", "--keys", keys_arg, "--to", "*NOSUCH1", "hi",
        ])
        .await,
        1,
    );
    assert!(unknown.contains("*NOSUCH1"), "{unknown}");

    // Listening, with the gateway's key pinned: every alert is one line on standard output.
    let args = [
        "device",
        "trust",
        "--keys",
        keys_arg,
        "--id",
        &gateway,
        "--public-key",
        &gateway_key,
    ];
    assert!(ok(&run(&args).await).contains("pinned"));
    let e2e = E2eClient::new(gateway_client(&app, &gw), gw.keys.secret.clone());
    let alert = e2e.send_text(&keys.identity, "Server down").await.unwrap();
    let mut listen = command(&["device", "listen", "--keys", keys_arg])
        .spawn()
        .unwrap();
    let stdout = listen.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .expect("a line in time")
        .unwrap()
        .expect("a line");
    let fields: Vec<&str> = line.splitn(5, ' ').collect();
    assert_eq!(
        fields[1..],
        [gateway.as_str(), &alert.to_string(), "text", "Server down"],
        "{line}"
    );
    assert!(fields[0].ends_with('Z'), "{line}");
    // A one-time password with a TTL: its line says how long it has left.
    let nonce = tocsin_sdk::protocol::Nonce::random();
    let sealed = SharedKey::new(&gw.keys.secret, &keys.public_key())
        .unwrap()
        .seal(&nonce, &E2eMessage::Text("482913".into()).to_padded());
    let form = format!(
        "{}&to={}&nonce={nonce}&box={}&ttl=300",
        gw.credentials(),
        keys.identity,
        hex::encode(sealed)
    );
    assert_eq!(app.post_form("/send_e2e", form).await.0, 200);
    let line = tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .expect("a line in time")
        .unwrap()
        .expect("a line");
    let left = line
        .split_once("text 482913 (expires in ")
        .map(|(_, left)| left)
        .unwrap_or_else(|| panic!("no expiry in {line}"));
    assert!(["4m 59s)", "5m 0s)"].contains(&left), "{line}");
    until("both alerts were receipted and acked", || async {
        depth(&app).await == 1 && app.state.store.callbacks_for(&gw.id).await.unwrap().len() == 4
    })
    .await;

    // Ctrl-C ends it cleanly.
    tocsin_cli::interrupt(&listen);
    let status = tokio::time::timeout(PATIENCE, listen.wait())
        .await
        .expect("listen stops in time")
        .unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn device_init_on_a_closed_server_takes_an_invite_code_once() {
    let app =
        crate::helpers::spawn_app_with(&[("TOCSIN__DIRECTORY__OPEN_ENROLLMENT", "false".into())])
            .await;
    let dir = tempfile::tempdir().unwrap();
    let server = app.url("");
    let keys = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let init = |keys: String, extra: &[&str]| {
        let mut args = vec!["device", "init", "--server", &server, "--keys", &keys];
        args.extend_from_slice(extra);
        let args: Vec<String> = args.into_iter().map(str::to_owned).collect();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run(&args).await
        }
    };

    let refused = failed(&init(keys("a.json"), &[]).await, 1);
    assert!(refused.contains("--invite CODE"), "{refused}");
    let malformed = failed(&init(keys("a.json"), &["--invite", "hello"]).await, 2);
    assert!(
        malformed.contains("--invite: invite code must be"),
        "{malformed}"
    );
    assert!(!std::path::Path::new(&keys("a.json")).exists());

    let code = app
        .invites(1, std::time::Duration::from_secs(600))
        .await
        .remove(0)
        .display();
    let out = ok(&init(keys("a.json"), &["--invite", &code]).await);
    assert!(out.contains("login: ok"), "{out}");
    let spent = failed(&init(keys("b.json"), &["--invite", &code]).await, 1);
    assert!(spent.contains("already used"), "{spent}");
    assert!(!std::path::Path::new(&keys("b.json")).exists());
}
