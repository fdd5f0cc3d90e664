//! Send a one-time code in basic mode: the server encrypts it with the gateway ID's key.
//!
//! ```sh
//! export TOCSIN_BASE_URL=http://127.0.0.1:8080   # optional, this is the default
//! export TOCSIN_GATEWAY_ID='*ALERTS1' TOCSIN_SECRET=...
//! cargo run --example send_otp -- ALICE123          # or +41791234567, or alice@example.com
//! ```
//!
//! Costs 1 credit. The gateway ID must be set up for basic mode.

use std::process::ExitCode;

use tocsin_sdk::client::{ClientBuilder, Recipient};
use tocsin_sdk::protocol::{ApiSecret, GatewayId, IdentityId, MessageId};

const USAGE: &str = "usage: TOCSIN_GATEWAY_ID='*YOURID' TOCSIN_SECRET=... \
    cargo run --example send_otp -- <ID | phone | e-mail>";

/// A required environment variable, or a message naming it.
fn var(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set\n{USAGE}"))
}

/// An ID if it looks like one, an e-mail address if it has an '@', else a phone number.
fn recipient(arg: &str) -> Recipient {
    if let Ok(id) = IdentityId::parse(arg) {
        Recipient::Id(id)
    } else if arg.contains('@') {
        Recipient::Email(arg.to_owned())
    } else {
        Recipient::Phone(arg.to_owned())
    }
}

async fn run() -> Result<(), String> {
    let to = std::env::args().nth(1).ok_or_else(|| USAGE.to_owned())?;
    let base_url = std::env::var("TOCSIN_BASE_URL")
        .unwrap_or_else(|_| ClientBuilder::DEFAULT_BASE_URL.to_owned());
    let from = GatewayId::parse(&var("TOCSIN_GATEWAY_ID")?).map_err(|e| e.to_string())?;
    let secret = ApiSecret::parse(&var("TOCSIN_SECRET")?).map_err(|e| e.to_string())?;
    let client = ClientBuilder::new(from, secret)
        .base_url(base_url)
        .build()
        .map_err(|e| e.to_string())?;

    // Six digits from the operating system's random number generator.
    let code = u64::from_le_bytes(*MessageId::random().as_bytes()) % 1_000_000;
    let text = format!("Your login code is {code:06}. It expires in 10 minutes.");
    let id = client
        .send_simple(&recipient(&to), &text)
        .await
        .map_err(|e| e.to_string())?;
    println!("sent code {code:06} as message {id}");
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
