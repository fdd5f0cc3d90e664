//! Errors: the status table against the server's own, rate limits, malformed answers
//! from a misbehaving server, and transport failures that never show the secret.

use actix_web::ResponseError;
use tocsin::http::error::ApiError;
use tocsin::store::GatewayMode;
use tocsin_sdk::client::{error_for_status, ClientBuilder, E2eSend, Error, Recipient};
use tocsin_sdk::protocol::{ApiSecret, GatewayId, Nonce};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{alice, client};
use crate::helpers::spawn_app_with;

#[test]
fn the_status_table_mirrors_the_servers() {
    let server_errors = [
        ApiError::bad_request("recipient ID is unknown"),
        ApiError::Unauthorized,
        ApiError::NoCredits,
        ApiError::NotFound("no such identity"),
        ApiError::TooLarge("box over 4000 bytes".into()),
        ApiError::RateLimited {
            retry_after_secs: 3,
        },
        ApiError::Internal(anyhow::anyhow!("disk on fire")),
    ];
    for server in server_errors {
        let status = server.status_code().as_u16();
        let client = error_for_status(status, &server.to_string(), Some(3));
        assert_eq!(client.status(), Some(status), "{server:?} -> {client:?}");
        let same = match (&server, &client) {
            (ApiError::BadRequest(a), Error::BadRequest(b)) => a == b,
            (ApiError::Unauthorized, Error::Unauthorized)
            | (ApiError::NoCredits, Error::NoCredits)
            | (ApiError::NotFound(_), Error::NotFound)
            | (ApiError::TooLarge(_), Error::TooLarge)
            | (ApiError::Internal(_), Error::Server(500)) => true,
            (ApiError::RateLimited { .. }, Error::RateLimited { retry_after }) => {
                *retry_after == Some(3)
            }
            _ => false,
        };
        assert!(same, "{server:?} became {client:?}");
    }
    assert!(matches!(
        error_for_status(503, "", None),
        Error::Server(503)
    ));
    assert!(error_for_status(503, "", None).is_retryable());
    assert!(!error_for_status(400, "", None).is_retryable());
}

#[tokio::test]
async fn a_rate_limited_call_carries_retry_after() {
    let app = spawn_app_with(&[
        ("TOCSIN__RATELIMIT__PER_GATEWAY_PER_SECOND", "1".into()),
        ("TOCSIN__RATELIMIT__PER_GATEWAY_BURST", "1".into()),
    ])
    .await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    let sdk = client(&app, &gw);
    assert_eq!(sdk.credits().await.unwrap(), 10);
    let err = sdk.credits().await.unwrap_err();
    let Error::RateLimited {
        retry_after: Some(secs),
    } = err
    else {
        panic!("expected 429 with Retry-After, got {err:?}");
    };
    assert!((1..=60).contains(&secs));
    assert!(err.is_retryable());
}

fn offline_client(base_url: &str) -> tocsin_sdk::client::Client {
    ClientBuilder::new(
        GatewayId::parse("*TESTTST").unwrap(),
        ApiSecret::parse("TopSecretValue42").unwrap(),
    )
    .base_url(base_url)
    .build()
    .unwrap()
}

#[tokio::test]
async fn transport_errors_never_show_the_secret() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let sdk = offline_client(&format!("http://127.0.0.1:{port}"));
    let errors = [
        sdk.credits().await.unwrap_err(),
        sdk.pubkey(&alice()).await.unwrap_err(),
        sdk.send_simple(&Recipient::Id(alice()), "hi")
            .await
            .unwrap_err(),
        sdk.upload_blob(vec![1], true).await.unwrap_err(),
    ];
    for err in errors {
        assert!(matches!(err, Error::Transport(_)), "{err:?}");
        assert!(err.is_retryable());
        for text in [err.to_string(), format!("{err:?}")] {
            let lower = text.to_lowercase();
            assert!(!lower.contains("secret"), "{text}");
            assert!(!text.contains("TopSecretValue42"), "{text}");
        }
    }
    let bad = ClientBuilder::new(
        GatewayId::parse("*TESTTST").unwrap(),
        ApiSecret::parse("TopSecretValue42").unwrap(),
    );
    assert!(matches!(
        bad.base_url("localhost:8080").build(),
        Err(Error::Invalid(_))
    ));
}

/// A fake server that answers every request with the same raw `head` and `body`.
async fn canned(head: &'static str, body: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = vec![0u8; 64 * 1024];
            let mut seen = Vec::new();
            // Read the request head (bodies here are small and arrive with it).
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            let answer = format!(
                "{head}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
    });
    url
}

#[tokio::test]
async fn a_misbehaving_server_gives_errors_not_panics() {
    let sealed = E2eSend::new(alice(), Nonce::random(), vec![1; 20]);
    let sdk = offline_client(&canned("HTTP/1.1 503 Service Unavailable", "busy").await);
    assert!(matches!(sdk.credits().await, Err(Error::Server(503))));
    let sdk = offline_client(
        &canned(
            "HTTP/1.1 302 Found\r\nlocation: http://example.invalid/",
            "",
        )
        .await,
    );
    assert!(
        matches!(sdk.credits().await, Err(Error::Server(302))),
        "not followed"
    );
    let sdk = offline_client(
        &canned(
            "HTTP/1.1 429 Too Many\r\nretry-after: Wed, 21 Oct 2015 07:28:00 GMT",
            "",
        )
        .await,
    );
    assert!(matches!(
        sdk.credits().await,
        Err(Error::RateLimited { retry_after: None })
    ));
    let sdk = offline_client(
        &canned(
            "HTTP/1.1 400 Bad Request",
            "echo: from=*X&secret=Leaked\nmore",
        )
        .await,
    );
    let Err(Error::BadRequest(reason)) = sdk.credits().await else {
        panic!("expected 400");
    };
    assert_eq!(reason, "echo: from=*X&[redacted]");

    let sdk = offline_client(&canned("HTTP/1.1 200 OK", "not-a-number").await);
    assert!(matches!(sdk.credits().await, Err(Error::Decode(_))));
    assert!(matches!(sdk.send_e2e(&sealed).await, Err(Error::Decode(_))));
    assert!(matches!(
        sdk.upload_blob(vec![1], false).await,
        Err(Error::Decode(_))
    ));
    assert!(matches!(
        sdk.lookup_phone("1234").await,
        Err(Error::Decode(_))
    ));
    assert!(matches!(
        sdk.lookup_bulk(&[], &[]).await,
        Err(Error::Decode(_))
    ));
    let zero_key = "0000000000000000000000000000000000000000000000000000000000000000";
    let sdk = offline_client(&canned("HTTP/1.1 200 OK", zero_key).await);
    assert!(
        matches!(sdk.pubkey(&alice()).await, Err(Error::Decode(_))),
        "weak key refused"
    );
    let sdk =
        offline_client(&canned("HTTP/1.1 200 OK", r#"[{"messageId":"0102030405060708"}]"#).await);
    let two = [sealed.clone(), sealed];
    assert!(matches!(
        sdk.send_e2e_bulk(&two, false).await,
        Err(Error::Decode(_))
    ));
    let sdk = offline_client(&canned("HTTP/1.1 200 OK", r#"[{},{}]"#).await);
    assert!(matches!(
        sdk.send_e2e_bulk(&two, false).await,
        Err(Error::Decode(_))
    ));
    let sdk = offline_client(&canned("HTTP/1.1 200 OK", "\u{fffd}\u{0}").await);
    assert!(matches!(
        sdk.capabilities(&alice()).await,
        Err(Error::Decode(_))
    ));
}
