//! Callbacks and proxies: only a proxy the operator configures (`callbacks.proxy_url`) is
//! used, the guard still checks each target before it is handed to the proxy, and the
//! proxy variables of the server's environment are never followed (the real binary,
//! started with them set).

use std::net::SocketAddr;
use std::time::Duration;

use tocsin::callback::dispatch::{Attempt, CallbackDispatcher};
use tocsin::domain::UnixMs;
use tocsin_sdk::device::{Admission, Connection, DeviceKeys};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::crash::harness::Env;
use crate::helpers::wait::{until, PATIENCE};
use crate::helpers::{loopback_allowed, spawn_app_with};

/// A listener that takes HTTP requests (as a receiver, or as a forwarding proxy would get
/// them), answers each 200 itself, and reports each request line and body.
pub(crate) async fn answering_receiver() -> (SocketAddr, mpsc::UnboundedReceiver<(String, Vec<u8>)>)
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen, lines) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream);
                loop {
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let mut length = 0usize;
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if header.trim().is_empty() {
                            break;
                        }
                        let lower = header.to_ascii_lowercase();
                        if let Some(n) = lower.strip_prefix("content-length:") {
                            length = n.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0u8; length];
                    if reader.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let _ = seen.send((request_line.trim_end().to_owned(), body));
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                    if reader.get_mut().write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, lines)
}

#[tokio::test]
async fn callbacks_go_through_the_configured_proxy_and_the_guard_still_checks_each_target() {
    let (proxy, mut requests) = answering_receiver().await;
    let mut settings = loopback_allowed();
    settings.push(("TOCSIN__CALLBACKS__PROXY_URL", format!("http://{proxy}")));
    let app = spawn_app_with(&settings).await;
    let gw = app.gateway(tocsin::store::GatewayMode::E2e, 10).await;
    // Port 9 (discard) has nothing behind it: only the proxy can answer.
    let target = "http://127.0.0.1:9/tocsin";
    app.state
        .store
        .set_callback_url(&gw.id, Some(target))
        .await
        .unwrap();
    let keys = DeviceKeys::init(&app.url(""), Admission::Open, None)
        .await
        .unwrap();
    let mut device = Connection::connect(&keys, &keys.directory().unwrap())
        .await
        .unwrap();
    device
        .send_text(gw.id.as_identity(), "through the proxy")
        .await
        .unwrap();
    let (line, _) = tokio::time::timeout(PATIENCE, requests.recv())
        .await
        .expect("the callback reaches the proxy")
        .unwrap();
    assert_eq!(line, format!("POST {target} HTTP/1.1"));
    app.until_outbox_empty(&gw).await;

    // A target the guard refuses (stored past the check of `set-callback`) is never
    // handed to the proxy.
    app.state
        .store
        .set_callback_url(&gw.id, Some("http://10.1.2.3/tocsin"))
        .await
        .unwrap();
    device
        .send_text(gw.id.as_identity(), "to a private address")
        .await
        .unwrap();
    let dispatcher = std::sync::Arc::new(CallbackDispatcher::new(app.state.clone()).unwrap());
    let later = UnixMs::now().plus(Duration::from_secs(86_400));
    until("the refused callback is attempted", || async {
        dispatcher.run_once(later).await.unwrap().iter().any(|a| {
            matches!(a, Attempt::Retry { error, .. } | Attempt::Dead { error }
                if error.contains("10.1.2.3 is a private address"))
        })
    })
    .await;
    assert!(
        requests.try_recv().is_err(),
        "nothing more reached the proxy"
    );
    device.close().await;
}

#[tokio::test]
async fn the_servers_environment_proxies_are_never_used_for_callbacks() {
    let (trap, mut trapped) = answering_receiver().await;
    let (receiver, mut received) = answering_receiver().await;
    let env = Env::with(&[("TOCSIN__CALLBACKS__ALLOWED_RANGES", "127.0.0.0/8")]).await;
    env.admin(&["account", "create", "acme", "--credits", "10"])
        .await;
    let gateway_key = tocsin_sdk::protocol::KeyPair::generate().public.to_string();
    let target = format!("http://{receiver}/tocsin");
    let created = env
        .admin(&[
            "gateway",
            "create",
            "--account",
            "acme",
            "--mode",
            "e2e",
            "--public-key",
            &gateway_key,
            "--callback-url",
            &target,
        ])
        .await;
    // "created gateway ID *K3J9QX2 (end-to-end mode) for account acme"
    let gateway = created
        .split_whitespace()
        .nth(3)
        .and_then(|id| tocsin_sdk::protocol::IdentityId::parse(id).ok())
        .unwrap_or_else(|| panic!("no gateway ID in {created}"));
    let proxy = format!("http://{trap}");
    let server = env
        .serve_with(&[
            ("HTTP_PROXY", &proxy),
            ("http_proxy", &proxy),
            ("HTTPS_PROXY", &proxy),
            ("https_proxy", &proxy),
            ("ALL_PROXY", &proxy),
            ("all_proxy", &proxy),
            ("NO_PROXY", ""),
            ("no_proxy", ""),
        ])
        .await;
    let url = format!("http://{}", server.http);
    let keys = DeviceKeys::init(&url, Admission::Open, None).await.unwrap();
    let mut device = Connection::connect(&keys, &keys.directory().unwrap())
        .await
        .unwrap();
    device.send_text(&gateway, "straight there").await.unwrap();
    let (line, _) = tokio::time::timeout(PATIENCE, received.recv())
        .await
        .expect("the callback reaches its receiver")
        .unwrap();
    assert_eq!(line, "POST /tocsin HTTP/1.1");
    assert!(
        trapped.try_recv().is_err(),
        "the environment's proxy saw nothing"
    );
    device.close().await;
    drop(server);
}
