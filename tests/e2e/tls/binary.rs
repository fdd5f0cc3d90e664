//! `tocsin serve` as an operator starts it: plain HTTP off loopback is refused unless
//! `server.allow_plain_http` says a TLS-terminating proxy is in front; with a
//! certificate it serves HTTPS on every interface; an unusable certificate file stops
//! start-up with one line naming it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use super::Pki;
use crate::helpers::Engine;

/// The `tocsin` binary with a data directory, metrics on loopback and the run's engine.
async fn tocsin(data: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tocsin"));
    tocsin_testkit::without_tocsin_vars(&mut cmd)
        .env_remove("RUST_LOG")
        .env("TOCSIN__STORAGE__DATA_DIR", data)
        .env("TOCSIN__SERVER__METRICS_ADDR", "127.0.0.1:0")
        .env("TOCSIN__LOG__LEVEL", "info");
    if let Some(url) = Engine::selected().fresh_storage_url().await {
        cmd.env("TOCSIN__STORAGE__URL", url);
    }
    cmd
}

/// The single `error: …` line of a start-up that must fail with exit status 2.
fn refused(cmd: &mut Command) -> String {
    let out = cmd.arg("serve").output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr
}

/// Starts `serve`, waits for its "serving" log line and returns it, then stops it with
/// SIGTERM and checks that it exits cleanly.
async fn serves(cmd: Command) -> String {
    tokio::task::spawn_blocking(move || serve_and_stop(cmd))
        .await
        .unwrap()
}

fn serve_and_stop(mut cmd: Command) -> String {
    let mut child = cmd.arg("serve").stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let serving = loop {
        let line = lines.next().expect("server exited before serving").unwrap();
        if line.contains("tocsin is serving") {
            break line;
        }
    };
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "serve must exit 0 after SIGTERM: {status}"
    );
    serving
}

#[tokio::test]
async fn serve_refuses_plain_http_off_loopback_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = tocsin(dir.path()).await;
    cmd.env("TOCSIN__SERVER__HTTP_ADDR", "0.0.0.0:0");
    let err = refused(&mut cmd);
    assert!(
        err.contains("server.http_addr")
            && err.contains("tls_cert_file")
            && err.contains("server.allow_plain_http = true"),
        "{err}"
    );
    // Refused before anything was opened or made.
    assert!(!dir.path().join("data.key").exists());

    let mut cmd = tocsin(dir.path()).await;
    cmd.env("TOCSIN__SERVER__HTTP_ADDR", "0.0.0.0:0")
        .env("TOCSIN__SERVER__ALLOW_PLAIN_HTTP", "true");
    let serving = serves(cmd).await;
    assert!(
        serving.contains("http=0.0.0.0:") && serving.contains("tls=false"),
        "{serving}"
    );
}

#[tokio::test]
async fn serve_takes_a_certificate_on_every_interface_and_names_an_unusable_one() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let with_tls = |cmd: &mut Command, cert: &std::path::Path| {
        cmd.env("TOCSIN__SERVER__HTTP_ADDR", "0.0.0.0:0")
            .env("TOCSIN__SERVER__TLS_CERT_FILE", cert)
            .env("TOCSIN__SERVER__TLS_KEY_FILE", &pki.key_file);
    };
    let mut cmd = tocsin(dir.path()).await;
    with_tls(&mut cmd, &pki.cert_file);
    let serving = serves(cmd).await;
    assert!(serving.contains("tls=true"), "{serving}");

    let junk = pki.path("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    for cert in [pki.path("missing.pem"), junk] {
        let mut cmd = tocsin(dir.path()).await;
        with_tls(&mut cmd, &cert);
        let err = refused(&mut cmd);
        assert!(
            err.contains("server.tls_cert_file") && err.contains(&cert.display().to_string()),
            "{err}"
        );
    }
    let mut cmd = tocsin(dir.path()).await;
    cmd.env("TOCSIN__SERVER__TLS_CERT_FILE", &pki.cert_file);
    let err = refused(&mut cmd);
    assert!(err.contains("server.tls_key_file"), "{err}");
}
