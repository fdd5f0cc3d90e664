//! `tocsin-cli alarm …` against the server: trigger in both modes, status, list, resolve.

use tocsin::store::GatewayMode;
use tocsin_sdk::crypto::SharedKey;
use tocsin_sdk::device::DeviceKeys;
use tocsin_sdk::protocol::E2eMessage;

use super::{cli, env_for};
use crate::helpers::spawn_app;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader, Lines};

use crate::helpers::tocsin_cli::{self, failed, ok};

#[tokio::test]
async fn alarm_commands_trigger_show_list_and_resolve_an_alarm() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::Basic, 10).await;
    app.identity("ALICE123", None, None).await;
    app.identity("BOB45678", None, None).await;
    let mut env = env_for(&app, &gw);
    env.retain(|(k, _)| *k != "TOCSIN_PRIVATE_KEY");
    let trigger = [
        "alarm",
        "trigger",
        "--text",
        "Fire, building 3",
        "--tier",
        "ALICE123",
        "--tier",
        "300:BOB45678",
        "--priority",
        "critical",
        "--dedup-key",
        "fire-3",
    ];
    let id = ok(&cli(&env, &trigger, None).await).trim().to_owned();
    assert_eq!(app.queued("ALICE123").await[0].message_id.to_string(), id);
    assert_eq!(
        ok(&cli(&env, &trigger, None).await),
        format!("{id} deduplicated\n")
    );

    let status = ok(&cli(&env, &["alarm", "status", &id], None).await);
    assert!(
        status.starts_with(&format!("alarm {id} triggered\n")),
        "{status}"
    );
    assert!(status.contains("priority critical"), "{status}");
    assert!(status.contains("  1 ALICE123 sent rings="), "{status}");
    assert!(status.contains("tier 2 starts after 300 s"), "{status}");
    assert!(
        status.contains("  2 BOB45678 waiting rings=0 no-answer"),
        "{status}"
    );

    let open = ok(&cli(&env, &["alarm", "list", "--open"], None).await);
    assert!(
        open.starts_with(&id) && open.contains("triggered critical dedup=fire-3"),
        "{open}"
    );
    assert_eq!(
        ok(&cli(&env, &["alarm", "resolve", &id], None).await),
        format!("{id} resolved\n")
    );
    assert_eq!(ok(&cli(&env, &["alarm", "list", "--open"], None).await), "");
    let all = ok(&cli(&env, &["alarm", "list"], None).await);
    assert!(all.contains(" resolved "), "{all}");

    let unknown = failed(
        &cli(&env, &["alarm", "status", "0102030405060708"], None).await,
        1,
    );
    assert!(unknown.contains("no alarm"), "{unknown}");
    let bad_tier = ["alarm", "trigger", "--text", "x", "--tier", "ALICE123,"];
    failed(&cli(&env, &bad_tier, None).await, 2);
    let unknown_id = ["alarm", "trigger", "--text", "x", "--tier", "ZZZZZZZZ"];
    failed(&cli(&env, &unknown_id, None).await, 1);
}

#[tokio::test]
async fn alarm_trigger_with_a_private_key_seals_the_text_for_each_recipient() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    let alice = app.identity("ALICE123", None, None).await;
    let env = env_for(&app, &gw);
    let args = ["alarm", "trigger", "--text", "-", "--tier", "ALICE123"];
    let id = ok(&cli(&env, &args, Some("Disk full\n")).await);
    let queued = app.queued("ALICE123").await;
    assert_eq!(queued[0].message_id.to_string(), id.trim());
    let shared = SharedKey::new(&alice.secret, &gw.keys.public).unwrap();
    let plain = shared.open(&queued[0].nonce, &queued[0].body).unwrap();
    assert_eq!(
        E2eMessage::from_padded(&plain).unwrap(),
        E2eMessage::Text("Disk full".into())
    );
    let groups = ["alarm", "trigger", "--text", "x", "--tier", "@night"];
    let refused = failed(&cli(&env, &groups, None).await, 2);
    assert!(refused.contains("basic mode"), "{refused}");
}

/// The whole loop from the command line: an enrolled device is alarmed, answers, and the
/// gateway sees the answer.
#[tokio::test]
async fn a_device_answers_an_alarm_and_alarm_status_shows_it_acknowledged() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::Basic, 10).await;
    let mut env = env_for(&app, &gw);
    env.retain(|(k, _)| *k != "TOCSIN_PRIVATE_KEY");
    let dir = tempfile::tempdir().unwrap();
    let keys_path = dir.path().join("device.json");
    let keys_arg = keys_path.to_str().unwrap();
    let server = app.url("");
    let init = ["device", "init", "--server", &server, "--keys", keys_arg];
    ok(&cli(&env, &init, None).await);
    let me = DeviceKeys::load(&keys_path).unwrap().identity.to_string();

    let trigger = ["alarm", "trigger", "--text", "Pager test", "--tier", &me];
    let id = ok(&cli(&env, &trigger, None).await).trim().to_owned();
    let status = ok(&cli(&env, &["alarm", "status", &id], None).await);
    assert!(
        status.starts_with(&format!("alarm {id} triggered\n")),
        "{status}"
    );
    assert!(
        status.contains(&format!("  1 {me} sent rings=")),
        "{status}"
    );

    let gateway = gw.id.to_string();
    let answer = [
        "device",
        "answer",
        &id,
        "coming",
        "--from-gateway",
        &gateway,
        "--eta",
        "5",
        "--note",
        "on my way",
        "--keys",
        keys_arg,
    ];
    assert_eq!(ok(&cli(&env, &answer, None).await), "answered coming\n");
    let status = ok(&cli(&env, &["alarm", "status", &id], None).await);
    assert!(
        status.starts_with(&format!("alarm {id} acknowledged\n")),
        "{status}"
    );
    assert!(
        status.contains(&format!(" {me} sent rings="))
            && status.contains(" coming eta=5min note=on my way\n"),
        "{status}"
    );

    let bad = [
        "device",
        "answer",
        &id,
        "maybe",
        "--from-gateway",
        &gateway,
        "--keys",
        keys_arg,
    ];
    failed(&cli(&env, &bad, None).await, 2);
}

/// Patience for a line from a running `device listen`.
const PATIENCE: Duration = Duration::from_secs(20);

/// The next line of `lines` that contains `wanted`.
async fn line_with<R: tokio::io::AsyncBufRead + Unpin>(
    lines: &mut Lines<R>,
    wanted: &str,
) -> String {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let line = lines.next_line().await.unwrap().expect("a line");
            if line.contains(wanted) {
                return line;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("a line with {wanted:?} in time"))
}

#[tokio::test]
async fn device_listen_prints_a_line_for_each_ring_and_stop_of_an_alarm() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::Basic, 10).await;
    let mut env = env_for(&app, &gw);
    env.retain(|(k, _)| *k != "TOCSIN_PRIVATE_KEY");
    let dir = tempfile::tempdir().unwrap();
    let keys_path = dir.path().join("device.json");
    let keys_arg = keys_path.to_str().unwrap();
    let server = app.url("");
    let init = ["device", "init", "--server", &server, "--keys", keys_arg];
    ok(&cli(&env, &init, None).await);
    let me = DeviceKeys::load(&keys_path).unwrap().identity.to_string();

    let mut listen = tocsin_cli::command(&env, &["device", "listen", "--keys", keys_arg])
        .spawn()
        .unwrap();
    let mut out = BufReader::new(listen.stdout.take().unwrap()).lines();
    let mut err = BufReader::new(listen.stderr.take().unwrap()).lines();
    line_with(&mut err, "connected").await;

    let trigger = [
        "alarm",
        "trigger",
        "--text",
        "Pager test",
        "--tier",
        &me,
        "--priority",
        "high",
    ];
    let id = ok(&cli(&env, &trigger, None).await).trim().to_owned();
    let gateway = gw.id.to_string();
    let ring = line_with(&mut out, " alarm-ring ").await;
    assert!(
        ring.ends_with(&format!(" {gateway} {id} alarm-ring 0 high tier 1")),
        "{ring}"
    );
    ok(&cli(&env, &["alarm", "resolve", &id], None).await);
    let stop = line_with(&mut out, " alarm-stop ").await;
    assert!(
        stop.ends_with(&format!(" {gateway} {id} alarm-stop resolved")),
        "{stop}"
    );

    tocsin_cli::interrupt(&listen);
    let status = tokio::time::timeout(PATIENCE, listen.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
}
