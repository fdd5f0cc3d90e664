//! Send a text end to end: look up the recipient's key, encrypt here, relay the box.
//!
//! ```sh
//! export TOCSIN_BASE_URL=http://127.0.0.1:8080   # optional, this is the default
//! export TOCSIN_GATEWAY_ID='*ALERTS1' TOCSIN_SECRET=... TOCSIN_PRIVATE_KEY=...
//! cargo run --example send_e2e -- ALICE123 "Disk full on db-1"
//! ```
//!
//! Costs 1 credit. The gateway ID must be set up for end-to-end mode; its private key
//! (64 hex characters, `private:` prefix optional) never leaves this process.

use std::process::ExitCode;

use tocsin_sdk::client::{ClientBuilder, E2eClient};
use tocsin_sdk::protocol::{ApiSecret, GatewayId, IdentityId, SecretKey};

const USAGE: &str = "usage: TOCSIN_GATEWAY_ID='*YOURID' TOCSIN_SECRET=... TOCSIN_PRIVATE_KEY=... \
    cargo run --example send_e2e -- <ID> <text>";

/// A required environment variable, or a message naming it.
fn var(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set\n{USAGE}"))
}

async fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let (Some(to), Some(text)) = (args.next(), args.next()) else {
        return Err(USAGE.to_owned());
    };
    let to = IdentityId::parse(&to).map_err(|e| e.to_string())?;
    let base_url = std::env::var("TOCSIN_BASE_URL")
        .unwrap_or_else(|_| ClientBuilder::DEFAULT_BASE_URL.to_owned());
    let from = GatewayId::parse(&var("TOCSIN_GATEWAY_ID")?).map_err(|e| e.to_string())?;
    let secret = ApiSecret::parse(&var("TOCSIN_SECRET")?).map_err(|e| e.to_string())?;
    let key = SecretKey::parse(var("TOCSIN_PRIVATE_KEY")?.trim()).map_err(|e| e.to_string())?;
    let client = ClientBuilder::new(from, secret)
        .base_url(base_url)
        .build()
        .map_err(|e| e.to_string())?;

    let e2e = E2eClient::new(client, key);
    let id = e2e.send_text(&to, &text).await.map_err(|e| e.to_string())?;
    println!("sent as message {id}");
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
