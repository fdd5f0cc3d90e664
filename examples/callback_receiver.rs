//! Receive replies and delivery receipts for an end-to-end gateway ID: a minimal
//! callback receiver built on `tocsin_sdk::receive::CallbackReceiver`.
//!
//! ```sh
//! export TOCSIN_BASE_URL=http://127.0.0.1:8080   # optional, this is the default
//! export TOCSIN_LISTEN=127.0.0.1:8443            # optional, this is the default
//! export TOCSIN_GATEWAY_ID='*ALERTS1' TOCSIN_SECRET=... TOCSIN_PRIVATE_KEY=...
//! cargo run --example callback_receiver
//! ```
//!
//! Then set the gateway ID's callback URL to `http://127.0.0.1:8443/`. Every reply is
//! printed as `ID replied: TEXT`, every receipt as `ID STATUS MESSAGE-IDS`. The receiver
//! answers as the gateway expects: 200 when taken (also for a repeat, and for a message
//! that cannot be decrypted, since a retry would not help), 401 for a wrong MAC, 400 for
//! a malformed or stale callback, 413 over 16 KiB, and 503 when the sender's key cannot
//! be fetched right now, so that the gateway tries again.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::http::StatusCode;
use actix_web::{web, App, HttpResponse, HttpServer};
use tocsin_sdk::client::{Client, ClientBuilder};
use tocsin_sdk::protocol::{ApiSecret, E2eMessage, GatewayId, SecretKey};
use tocsin_sdk::receive::{CallbackReceiver, MAX_BODY_BYTES};

const USAGE: &str = "usage: TOCSIN_GATEWAY_ID='*YOURID' TOCSIN_SECRET=... TOCSIN_PRIVATE_KEY=... \
    [TOCSIN_BASE_URL=http://127.0.0.1:8080] [TOCSIN_LISTEN=127.0.0.1:8443] \
    cargo run --example callback_receiver";

/// What every request needs.
struct Receiver {
    callbacks: CallbackReceiver,
    gateway: Client,
    secret_key: SecretKey,
}

/// A required environment variable, or a message naming it.
fn var(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set\n{USAGE}"))
}

fn answer(status: u16) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::OK)).finish()
}

async fn callback(receiver: web::Data<Receiver>, body: web::Bytes) -> HttpResponse {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // The MAC, the recipient, the date and repeats are checked here, MAC first.
    let incoming = match receiver.callbacks.receive(&body, now) {
        Ok(incoming) => incoming,
        Err(refused) => {
            eprintln!("refused ({}): {refused}", refused.status());
            return answer(refused.status());
        }
    };
    let from = incoming.from;
    let sender_key = match receiver.gateway.pubkey(&from).await {
        Ok(Some(key)) => key,
        Ok(None) => {
            eprintln!(
                "{from} has no public key; dropping message {}",
                incoming.message_id
            );
            return answer(200);
        }
        Err(e) => {
            // Let the gateway's next delivery through, and ask for it.
            receiver.callbacks.forget(&incoming);
            eprintln!("cannot fetch the key of {from}: {e}");
            return answer(503);
        }
    };
    match incoming.open(&receiver.secret_key, &sender_key) {
        Ok(E2eMessage::Text(text)) => println!("{from} replied: {text}"),
        Ok(E2eMessage::DeliveryReceipt {
            status,
            message_ids,
        }) => {
            let ids: Vec<String> = message_ids.iter().map(ToString::to_string).collect();
            println!("{from} {status:?} {}", ids.join(","));
        }
        Ok(other) => println!("{from} sent a message of type 0x{:02x}", other.type_byte()),
        Err(e) => eprintln!(
            "message {} from {from} cannot be read: {e}",
            incoming.message_id
        ),
    }
    answer(200)
}

async fn run() -> Result<(), String> {
    let from = GatewayId::parse(&var("TOCSIN_GATEWAY_ID")?).map_err(|e| e.to_string())?;
    let secret = ApiSecret::parse(var("TOCSIN_SECRET")?.trim()).map_err(|e| e.to_string())?;
    let secret_key =
        SecretKey::parse(var("TOCSIN_PRIVATE_KEY")?.trim()).map_err(|e| e.to_string())?;
    let base_url = std::env::var("TOCSIN_BASE_URL")
        .unwrap_or_else(|_| ClientBuilder::DEFAULT_BASE_URL.to_owned());
    let listen = std::env::var("TOCSIN_LISTEN").unwrap_or_else(|_| "127.0.0.1:8443".to_owned());
    let gateway = ClientBuilder::new(from, secret.clone())
        .base_url(base_url)
        .build()
        .map_err(|e| e.to_string())?;
    let receiver = web::Data::new(Receiver {
        callbacks: CallbackReceiver::new(from, secret),
        gateway,
        secret_key,
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(receiver.clone())
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            .default_service(web::to(callback))
    })
    .workers(1)
    .bind(listen.as_str())
    .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    eprintln!("receiving callbacks for {from} on http://{listen}/ (Ctrl-C stops)");
    server.run().await.map_err(|e| e.to_string())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}
