//! `tocsin-load` against the real server (port 0, started in this process through the
//! `tocsin` library): a short send run ends with its summary, its ceiling measured in the
//! same run and the ratio, and the messages it sent are queued. Speed is not asserted
//! here; this only keeps the harness working.

use std::process::Command;

use tocsin::store::GatewayMode;

#[tokio::test]
async fn a_send_run_reports_its_figures_its_ceiling_and_the_ratio() {
    let app = tocsin_testkit::spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 1_000_000).await;
    app.identity("ALICE123", None, None).await;
    let url = app.url("");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_tocsin-load"))
            .args(["--scenario", "send-e2e", "--to", "ALICE123"])
            .args(["--concurrency", "4", "--duration", "1", "--url", &url])
            .env("TOCSIN_GATEWAY_ID", gw.id.as_str())
            .env("TOCSIN_SECRET", &gw.secret)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for line in [
        "accepted/s",
        "latency ms",
        "status 200",
        "ceiling/s",
        "ratio",
        "seal with cached key",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in\n{stdout}");
    }
    let queued = app.queued("ALICE123").await.len();
    let sent: usize = stdout
        .lines()
        .find_map(|l| l.strip_prefix("status 200"))
        .and_then(|n| n.trim().parse().ok())
        .expect("a count of 200 answers");
    assert!(sent > 0);
    assert_eq!(queued, sent, "every 200 is a queued message");
}

#[test]
fn credentials_never_come_from_the_command_line() {
    let output = Command::new(env!("CARGO_BIN_EXE_tocsin-load"))
        .args([
            "--scenario",
            "send-e2e",
            "--to",
            "ALICE123",
            "--duration",
            "1",
        ])
        .env_remove("TOCSIN_GATEWAY_ID")
        .env_remove("TOCSIN_SECRET")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("TOCSIN_GATEWAY_ID"), "{stderr}");
}
