//! Send a file end to end: encrypt it with a fresh key, upload the ciphertext as a blob,
//! then send a file message that carries the blob ID and the key.
//!
//! ```sh
//! export TOCSIN_BASE_URL=http://127.0.0.1:8080   # optional, this is the default
//! export TOCSIN_GATEWAY_ID='*ALERTS1' TOCSIN_SECRET=... TOCSIN_PRIVATE_KEY=...
//! cargo run --example send_file -- ALICE123 report.pdf "Q3 report"
//! ```
//!
//! Costs 2 credits (the message and the blob). Before sending, the example checks that
//! the recipient's app can receive files.

use std::path::Path;
use std::process::ExitCode;

use tocsin_sdk::client::{ClientBuilder, E2eClient};
use tocsin_sdk::protocol::{ApiSecret, GatewayId, IdentityId, SecretKey};

const USAGE: &str = "usage: TOCSIN_GATEWAY_ID='*YOURID' TOCSIN_SECRET=... TOCSIN_PRIVATE_KEY=... \
    cargo run --example send_file -- <ID> <path> [caption]";

/// A required environment variable, or a message naming it.
fn var(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set\n{USAGE}"))
}

async fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let (Some(to), Some(path)) = (args.next(), args.next()) else {
        return Err(USAGE.to_owned());
    };
    let caption = args.next();
    let to = IdentityId::parse(&to).map_err(|e| e.to_string())?;
    let data = std::fs::read(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let name = Path::new(&path).file_name().and_then(|n| n.to_str());
    let base_url = std::env::var("TOCSIN_BASE_URL")
        .unwrap_or_else(|_| ClientBuilder::DEFAULT_BASE_URL.to_owned());
    let from = GatewayId::parse(&var("TOCSIN_GATEWAY_ID")?).map_err(|e| e.to_string())?;
    let secret = ApiSecret::parse(&var("TOCSIN_SECRET")?).map_err(|e| e.to_string())?;
    let key = SecretKey::parse(var("TOCSIN_PRIVATE_KEY")?.trim()).map_err(|e| e.to_string())?;
    let client = ClientBuilder::new(from, secret)
        .base_url(base_url)
        .build()
        .map_err(|e| e.to_string())?;

    let caps = client.capabilities(&to).await.map_err(|e| e.to_string())?;
    if !caps.is_some_and(|c| c.contains("file")) {
        return Err(format!("{to} is unknown or cannot receive files"));
    }
    let e2e = E2eClient::new(client, key);
    let id = e2e
        .send_file(
            &to,
            &data,
            "application/octet-stream",
            name,
            caption.as_deref(),
            None,
        )
        .await
        .map_err(|e| e.to_string())?;
    println!("sent {} bytes as message {id}", data.len());
    Ok(())
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
