//! `tocsin-cli callback serve` taking status events: the real binary, fed raw requests
//! signed as the server signs them (no server runs here; the server's own delivery is
//! tested with it). A request with `X-Tocsin-Signature` is a status event; any other
//! is a callback, as before.

use std::time::{SystemTime, UNIX_EPOCH};

use tocsin_sdk::protocol::{
    callback_mac_hex, status_signature, ApiSecret, CallbackFields, SecretKey, StatusSecret,
    STATUS_SIGNATURE_HEADER,
};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, ChildStdout};

use super::{cli, failed};
use crate::helpers::tocsin_cli::{command, interrupt};
use crate::helpers::wait::PATIENCE;

const GATEWAY: &str = "*STATUS1";

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A running `callback serve`, its address and its two output streams.
struct Serving {
    child: Child,
    url: String,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: Lines<BufReader<ChildStderr>>,
    http: reqwest::Client,
}

impl Serving {
    /// Starts `callback serve` on a free port with `env` and `args` after `serve`.
    async fn start(env: &[(&str, String)], args: &[&str]) -> Self {
        let mut all = vec!["callback", "serve", "--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let mut child = command(env, &all).spawn().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let banner = next_line(&mut stderr).await;
        let url = banner
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {banner:?}"))
            .to_owned();
        assert!(banner.contains(GATEWAY), "{banner}");
        Self {
            child,
            url,
            stdout,
            stderr,
            http: reqwest::Client::new(),
        }
    }

    /// POSTs `body` as JSON with `signature` (if any); returns the status.
    async fn post_event(&self, body: &str, signature: Option<&str>) -> u16 {
        let mut request = self
            .http
            .post(format!("{}status", self.url))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(signature) = signature {
            request = request.header(STATUS_SIGNATURE_HEADER, signature);
        }
        request.send().await.unwrap().status().as_u16()
    }

    /// POSTs a form as the gateway's callbacks come; returns the status.
    async fn post_form(&self, body: String) -> u16 {
        self.http
            .post(&self.url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    async fn stdout_line(&mut self) -> String {
        next_line(&mut self.stdout).await
    }

    async fn stderr_line(&mut self) -> String {
        next_line(&mut self.stderr).await
    }

    /// Ctrl-C; the process must end well.
    async fn stop(mut self) {
        interrupt(&self.child);
        let status = tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .expect("serve stops in time")
            .unwrap();
        assert!(status.success(), "{status:?}");
    }
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

/// An event as the server writes it.
fn event(id: &str, gateway_id: &str, kind: &str, message_id: &str) -> String {
    format!(
        r#"{{"id":"{id}","gatewayId":"{gateway_id}","type":"{kind}","messageId":"{message_id}","recipient":"ECHOECHO","at":1714564800123}}"#
    )
}

/// A callback form with a MAC made with `secret` (the wrong one, in these tests).
fn callback_form(secret: &ApiSecret) -> String {
    let (nonce, box_hex) = ("ab".repeat(24), "00".repeat(32));
    let fields = CallbackFields {
        from: "ALICE123",
        to: GATEWAY,
        message_id: "0102030405060708",
        date: &unix_now().to_string(),
        nonce: &nonce,
        box_hex: &box_hex,
    };
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("from", fields.from)
        .append_pair("to", fields.to)
        .append_pair("messageId", fields.message_id)
        .append_pair("date", fields.date)
        .append_pair("nonce", &nonce)
        .append_pair("box", &box_hex)
        .append_pair("mac", &callback_mac_hex(secret, &fields))
        .finish()
}

#[tokio::test]
async fn callback_serve_with_only_a_status_secret_prints_signed_events_once_and_refuses_the_rest() {
    let secret = StatusSecret::generate();
    let env = [
        ("TOCSIN_GATEWAY_ID", GATEWAY.to_owned()),
        ("TOCSIN_STATUS_SECRET", secret.expose().to_owned()),
    ];
    let mut serve = Serving::start(&env, &["--max-age", "120"]).await;
    let now = unix_now();

    let delivered = event(
        "00000000000000000000000000000001",
        GATEWAY,
        "message.delivered",
        "0102030405060708",
    );
    let signed = status_signature(&secret, now, delivered.as_bytes());
    assert_eq!(serve.post_event(&delivered, Some(&signed)).await, 200);
    assert_eq!(
        serve.stdout_line().await,
        "2024-05-01T12:00:00Z status message.delivered 0102030405060708 ECHOECHO"
    );

    // The server's retry of it, signed anew: taken before, so 200 and no line.
    let retry = status_signature(&secret, now + 1, delivered.as_bytes());
    assert_eq!(serve.post_event(&delivered, Some(&retry)).await, 200);
    let note = serve.stderr_line().await;
    assert!(
        note.starts_with("ignored:") && note.contains("already"),
        "{note}"
    );

    // Signed with another secret; then without a signature at all (a JSON body without
    // the header is taken for a callback, which this receiver cannot read).
    let read = event(
        "00000000000000000000000000000002",
        GATEWAY,
        "message.read",
        "0102030405060708",
    );
    let forged = status_signature(&StatusSecret::generate(), now, read.as_bytes());
    assert_eq!(serve.post_event(&read, Some(&forged)).await, 401);
    assert!(serve.stderr_line().await.contains("refused (401)"));
    assert_eq!(serve.post_event(&read, None).await, 503);
    assert!(serve.stderr_line().await.contains("private key"));

    // Signed 200 s ago, over --max-age 120; and 10 minutes ahead.
    let stale = status_signature(&secret, now - 200, read.as_bytes());
    assert_eq!(serve.post_event(&read, Some(&stale)).await, 400);
    let note = serve.stderr_line().await;
    assert!(
        note.contains("refused (400)") && note.contains("old"),
        "{note}"
    );
    let ahead = status_signature(&secret, now + 600, read.as_bytes());
    assert_eq!(serve.post_event(&read, Some(&ahead)).await, 400);
    assert!(serve.stderr_line().await.contains("future"));

    // About another gateway ID.
    let elsewhere = event(
        "00000000000000000000000000000003",
        "*ELSEWHE",
        "message.read",
        "0102030405060708",
    );
    let signed = status_signature(&secret, now, elsewhere.as_bytes());
    assert_eq!(serve.post_event(&elsewhere, Some(&signed)).await, 400);
    assert!(serve.stderr_line().await.contains("refused (400)"));

    // A type this version does not know: 200, noted, no line.
    let newer = event(
        "00000000000000000000000000000004",
        GATEWAY,
        "message.forwarded",
        "0102030405060708",
    );
    let signed = status_signature(&secret, now, newer.as_bytes());
    assert_eq!(serve.post_event(&newer, Some(&signed)).await, 200);
    assert!(serve.stderr_line().await.contains("unknown type"));

    // A callback form: 503, the gateway keeps it for when the key is given.
    let form = callback_form(&ApiSecret::parse("WrongSecret123").unwrap());
    assert_eq!(serve.post_form(form).await, 503);
    assert!(serve.stderr_line().await.contains("TOCSIN_PRIVATE_KEY"));

    // The refused event, signed properly now, is taken: the next line on standard
    // output is it, so nothing before printed one.
    let signed = status_signature(&secret, unix_now(), read.as_bytes());
    assert_eq!(serve.post_event(&read, Some(&signed)).await, 200);
    assert_eq!(
        serve.stdout_line().await,
        "2024-05-01T12:00:00Z status message.read 0102030405060708 ECHOECHO"
    );
    serve.stop().await;
}

#[tokio::test]
async fn callback_serve_with_every_credential_tells_status_events_from_callbacks_by_the_header() {
    let secret = StatusSecret::generate();
    let key = SecretKey::generate();
    let env = [
        ("TOCSIN_GATEWAY_ID", GATEWAY.to_owned()),
        ("TOCSIN_SECRET", "RightSecret123".to_owned()),
        ("TOCSIN_PRIVATE_KEY", key.to_hex().to_string()),
    ];
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("status-secret");
    std::fs::write(&secret_file, format!("{}\n", secret.expose())).unwrap();
    let args = ["--status-secret-file", secret_file.to_str().unwrap()];
    let mut serve = Serving::start(&env, &args).await;

    let expired = event(
        "00000000000000000000000000000001",
        GATEWAY,
        "message.expired",
        "1112131415161718",
    );
    let signed = status_signature(&secret, unix_now(), expired.as_bytes());
    assert_eq!(serve.post_event(&expired, Some(&signed)).await, 200);
    assert_eq!(
        serve.stdout_line().await,
        "2024-05-01T12:00:00Z status message.expired 1112131415161718 ECHOECHO"
    );
    // Without the header, the callback path judges it as before: a wrong MAC is 401.
    let form = callback_form(&ApiSecret::parse("WrongSecret123").unwrap());
    assert_eq!(serve.post_form(form).await, 401);
    let note = serve.stderr_line().await;
    assert!(
        note.contains("refused (401)") && note.contains("MAC"),
        "{note}"
    );
    serve.stop().await;

    // The same, without a status secret: a signed request waits for one (503).
    let mut serve = Serving::start(&env, &[]).await;
    assert_eq!(serve.post_event(&expired, Some(&signed)).await, 503);
    assert!(serve.stderr_line().await.contains("TOCSIN_STATUS_SECRET"));
    serve.stop().await;
}

#[tokio::test]
async fn callback_serve_without_a_private_key_or_a_status_secret_names_both() {
    let env = [
        ("TOCSIN_GATEWAY_ID", GATEWAY.to_owned()),
        ("TOCSIN_SECRET", "RightSecret123".to_owned()),
    ];
    let out = cli(
        &env,
        &["callback", "serve", "--listen", "127.0.0.1:0"],
        None,
    )
    .await;
    let refused = failed(&out, 2);
    for named in [
        "TOCSIN_PRIVATE_KEY",
        "--private-key-file",
        "TOCSIN_STATUS_SECRET",
        "--status-secret-file",
    ] {
        assert!(refused.contains(named), "{named}: {refused}");
    }
    let args = ["callback", "serve", "--status-secret", "tss_x"];
    let refused = failed(&cli(&env, &args, None).await, 2);
    assert!(!refused.contains("tss_x") && refused.contains("TOCSIN_STATUS_SECRET"));
    let bad = [
        ("TOCSIN_GATEWAY_ID", GATEWAY.to_owned()),
        ("TOCSIN_STATUS_SECRET", "not-a-secret".to_owned()),
    ];
    let refused = failed(&cli(&bad, &["callback", "serve"], None).await, 2);
    assert!(
        refused.contains("TOCSIN_STATUS_SECRET") && !refused.contains("not-a-secret"),
        "{refused}"
    );
}
