//! Opening the WebSocket and the two handshake round trips that log the device in.
//!
//! `<server>/chat` is reached as `ws://` for an `http` server URL and `wss://` for
//! `https` (rustls with the ring provider and the platform's root certificates, plus a
//! private CA's when the directory trusts one). The
//! login offers the device ID, a client description and the legacy message layout. The
//! server refuses a login by closing the WebSocket; the reason in its close frame
//! becomes [`DeviceError::LoginRefused`].

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};
use url::Url;

use super::{DeviceError, DeviceKeys};
use crate::protocol::csp::{
    ClientHandshake, HandshakeError, LoginExtensions, PayloadVersion, Session, FRAME_PREFIX_LEN,
    MAX_FRAME_BOX_LEN,
};

/// The WebSocket of a chat connection.
pub(super) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How the device describes itself at login: version, platform `B` (bot), no locale.
const CLIENT_INFO: &str = concat!(env!("CARGO_PKG_VERSION"), ";B;;tocsin-sdk");
/// Largest WebSocket message the server may send: one maximal frame.
const MAX_WS_MESSAGE: usize = FRAME_PREFIX_LEN + MAX_FRAME_BOX_LEN;
/// Time allowed to open the WebSocket (TCP, TLS, upgrade).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Time allowed for the whole handshake after the WebSocket is open.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// Opens the WebSocket to the chat server of `keys` and logs in; `wss://` uses `tls`
/// when given (a private CA), else the WebSocket library's platform roots.
pub(super) async fn login(
    keys: &DeviceKeys,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<(Ws, Session), DeviceError> {
    let url = chat_url(&keys.server_url)?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_WS_MESSAGE))
        .max_frame_size(Some(MAX_WS_MESSAGE));
    // Acks, receipts and echoes are small frames: send each at once (no Nagle delay).
    let disable_nagle = true;
    let connecting = tokio_tungstenite::connect_async_tls_with_config(
        url.as_str(),
        Some(config),
        disable_nagle,
        tls.map(Connector::Rustls),
    );
    let (mut ws, _) = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
        .await
        .map_err(|_| DeviceError::Timeout("the WebSocket connection"))?
        .map_err(|e| DeviceError::WebSocket(e.to_string()))?;
    let session = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&mut ws, keys))
        .await
        .map_err(|_| DeviceError::Timeout("the chat handshake"))??;
    Ok((ws, session))
}

/// `<server>/chat` with the WebSocket scheme that matches the server URL's.
fn chat_url(server_url: &str) -> Result<Url, DeviceError> {
    let mut url = crate::client::parse_base_url(server_url)?;
    let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
    url.set_scheme(scheme)
        .map_err(|()| DeviceError::Invalid(format!("cannot use {server_url} for WebSocket")))?;
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().push("chat");
    }
    Ok(url)
}

/// The two handshake round trips; the server's refusal is a close instead of an answer.
async fn handshake(ws: &mut Ws, keys: &DeviceKeys) -> Result<Session, DeviceError> {
    let extensions = LoginExtensions {
        client_info: Some(CLIENT_INFO.to_owned()),
        device_id: Some(keys.device_id),
        payload_version: Some(PayloadVersion::Legacy),
        device_cookie: None,
    };
    let (mut handshake, hello) =
        ClientHandshake::new(keys.identity, &keys.secret_key, keys.server_key, extensions);
    send_binary(ws, hello).await?;
    let server_hello = handshake_message(ws).await?;
    let login = handshake
        .on_server_hello(&server_hello)
        .map_err(|e| match e {
            HandshakeError::Decrypt(_) => DeviceError::ServerNotPinned,
            other => other.into(),
        })?;
    send_binary(ws, login).await?;
    let ack = handshake_message(ws).await?;
    Ok(handshake.on_login_ack(&ack)?)
}

async fn send_binary(ws: &mut Ws, bytes: Vec<u8>) -> Result<(), DeviceError> {
    ws.send(Message::Binary(bytes.into()))
        .await
        .map_err(|e| DeviceError::WebSocket(e.to_string()))
}

/// The next binary message during the handshake.
async fn handshake_message(ws: &mut Ws) -> Result<Vec<u8>, DeviceError> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Binary(bytes))) => return Ok(bytes.to_vec()),
            Some(Ok(Message::Close(frame))) => {
                return Err(DeviceError::LoginRefused(close_reason(frame)))
            }
            None => return Err(DeviceError::LoginRefused("connection closed".into())),
            Some(Ok(Message::Text(_))) => {
                return Err(DeviceError::Protocol(
                    "a text message during the handshake".into(),
                ))
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(DeviceError::WebSocket(e.to_string())),
        }
    }
}

/// The reason in a close frame, or a generic one.
pub(super) fn close_reason(frame: Option<CloseFrame>) -> String {
    match frame {
        Some(frame) if !frame.reason.is_empty() => frame.reason.to_string(),
        Some(frame) => format!("connection closed with code {}", u16::from(frame.code)),
        None => "connection closed".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chat_url_follows_the_server_url() {
        for (server, chat) in [
            ("http://127.0.0.1:8080/", "ws://127.0.0.1:8080/chat"),
            (
                "https://alerts.example.org",
                "wss://alerts.example.org/chat",
            ),
            (
                "https://example.org/tocsin/",
                "wss://example.org/tocsin/chat",
            ),
        ] {
            assert_eq!(chat_url(server).unwrap().as_str(), chat, "{server}");
        }
    }
}
