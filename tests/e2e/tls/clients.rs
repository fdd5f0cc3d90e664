//! The SDK against the HTTPS server: the gateway client and a device trusting the
//! private CA work over https:// and wss://; without the CA they fail at the TLS
//! handshake; plain HTTP to the TLS port gets nothing from the API; the cap on
//! connections per address counts HTTPS connections.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use tocsin::store::GatewayMode;
use tocsin_sdk::client::{Error, PrivateCa, Recipient};
use tocsin_sdk::device::{Admission, Connection, DeviceError, DeviceKeys, Directory, Event};

use super::{https_client, https_url, spawn_tls_app, spawn_tls_app_with, Pki};
use crate::helpers::wait::PATIENCE;

#[tokio::test]
async fn the_gateway_client_trusting_the_private_ca_works_over_https() {
    let pki = Pki::new();
    let app = spawn_tls_app(&pki).await;
    let gw = app.gateway(GatewayMode::Basic, 10).await;
    app.identity("ALICE123", None, None).await;
    let client = https_client(&app, &gw, Some(pki.ca()));
    assert_eq!(client.base_url(), https_url(&app));
    assert_eq!(client.credits().await.unwrap(), 10);
    let recipient = Recipient::Id(tocsin_sdk::protocol::IdentityId::parse("ALICE123").unwrap());
    let id = client.send_simple(&recipient, "Server down").await.unwrap();
    assert_eq!(app.queued("ALICE123").await[0].message_id, id);
    assert_eq!(client.credits().await.unwrap(), 9);

    // The metrics listener stays plain HTTP (it is bound to loopback).
    let metrics = app.metrics_text().await;
    assert!(metrics.contains("tocsin_http_requests_total"), "{metrics}");
}

#[tokio::test]
async fn a_client_without_the_ca_fails_at_the_tls_handshake() {
    let pki = Pki::new();
    let app = spawn_tls_app(&pki).await;
    let gw = app.gateway(GatewayMode::Basic, 10).await;
    match https_client(&app, &gw, None).credits().await {
        Err(Error::Transport(reason)) => {
            assert!(reason.contains("certificate"), "{reason}");
            assert!(!reason.contains(&gw.secret), "{reason}");
        }
        other => panic!("expected a TLS failure, got {other:?}"),
    }
    // Another CA does not do either.
    let stranger = Pki::new();
    let err = https_client(&app, &gw, Some(stranger.ca()))
        .credits()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
    assert_eq!(app.balance(&gw).await, 10);
}

#[tokio::test]
async fn a_device_trusting_the_ca_enrols_and_receives_over_wss() {
    let pki = Pki::new();
    let app = spawn_tls_app(&pki).await;
    let gw = app.gateway(GatewayMode::Basic, 10).await;

    // Without the CA, enrolment fails before anything is registered.
    let refused = DeviceKeys::init(&https_url(&app), Admission::Open, None).await;
    match refused {
        Err(DeviceError::Http(Error::Transport(reason))) => {
            assert!(reason.contains("certificate"), "{reason}");
        }
        other => panic!("expected a TLS failure, got {other:?}"),
    }

    let directory = Directory::with_private_ca(&https_url(&app), &pki.ca()).unwrap();
    let keys = DeviceKeys::enrol(
        &directory,
        Admission::Open,
        Some(app.state.server_key.public),
    )
    .await
    .unwrap();
    assert_eq!(keys.server_url, https_url(&app));
    let mut device = Connection::connect(&keys, &directory).await.unwrap();
    let first = tokio::time::timeout(PATIENCE, device.next_event()).await;
    assert_eq!(first.unwrap().unwrap(), Event::QueueComplete);

    let client = https_client(&app, &gw, Some(pki.ca()));
    let sent = client
        .send_simple(&Recipient::Id(keys.identity), "Pump 3 failed")
        .await
        .unwrap();
    let event = tokio::time::timeout(PATIENCE, device.next_event())
        .await
        .expect("the message in time")
        .unwrap();
    match event {
        Event::Message(received) => {
            assert_eq!(received.message_id, sent);
            assert_eq!(
                received.message,
                tocsin_sdk::protocol::E2eMessage::Text("Pump 3 failed".into())
            );
            device.ack(&received).await.unwrap();
        }
        other => panic!("expected the message, got {other:?}"),
    }
    device.close().await;

    // The chat WebSocket checks the certificate too: without the CA, no login.
    let plain_directory = keys.directory().unwrap();
    match Connection::connect(&keys, &plain_directory).await {
        Err(DeviceError::WebSocket(reason)) => {
            assert!(reason.contains("certificate"), "{reason}");
        }
        other => panic!("expected a TLS failure, got {other:?}"),
    }
    let trusting = keys.directory_with_private_ca(&pki.ca()).unwrap();
    Connection::connect(&keys, &trusting).await.unwrap();
}

#[tokio::test]
async fn plain_http_to_the_tls_port_gets_nothing_from_the_api() {
    let pki = Pki::new();
    let app = spawn_tls_app(&pki).await;
    let addr = app.http;
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = Vec::new();
        // The server ends the connection (after a TLS alert at most); a reset is fine too.
        let _ = stream.read_to_end(&mut answer);
        answer
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(
        !text.contains("HTTP/1.1") && !text.contains("ok"),
        "{text:?}"
    );
    // The same request over HTTPS is answered.
    let https = reqwest::Client::builder()
        .tls_certs_only([
            reqwest::Certificate::from_pem(&std::fs::read(&pki.ca_file).unwrap()).unwrap(),
        ])
        .build()
        .unwrap();
    let health = https
        .get(format!("{}health", https_url(&app)))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn the_connection_cap_counts_https_connections() {
    let pki = Pki::new();
    let app = spawn_tls_app_with(&pki, &[("TOCSIN__SERVER__CONNECTIONS_PER_IP", "2")]).await;
    let (addr, ca) = (app.http, pki.ca());
    let answers = tokio::task::spawn_blocking(move || {
        // Each answer proves the server counted its connection before the next one.
        let mut held: Vec<_> = (0..2).map(|_| tls_connect(addr, &ca)).collect();
        let mut answers: Vec<String> = held.iter_mut().map(health).collect();
        answers.push(health(&mut tls_connect(addr, &ca)));
        answers
    })
    .await
    .unwrap();
    assert!(answers[0].starts_with("HTTP/1.1 200"), "{answers:?}");
    assert!(answers[1].starts_with("HTTP/1.1 200"), "{answers:?}");
    assert!(
        answers[2].starts_with("HTTP/1.1 429")
            && answers[2].contains("too many connections from this address"),
        "{answers:?}"
    );
    assert_eq!(
        app.metric("tocsin_connections_refused_total").await,
        Some(1.0)
    );
}

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A blocking TLS connection to `addr` as `localhost`, trusting only `ca`.
fn tls_connect(addr: SocketAddr, ca: &PrivateCa) -> TlsStream {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(ca.certificates().iter().cloned());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    rustls::StreamOwned::new(connection, tcp)
}

/// GET /health on `stream`, which stays open; the whole answer, head and body.
fn health(stream: &mut TlsStream) -> String {
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse::<usize>().unwrap());
            if answer.len() >= end + 4 + length {
                break;
            }
        }
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "the connection closed mid-answer");
        answer.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}
