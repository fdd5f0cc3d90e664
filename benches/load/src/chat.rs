//! The scenarios with simulated devices on the chat protocol: runs the one `--scenario`
//! names with the credentials and sizes the arguments give.

use std::time::Duration;

use crate::{callback, credentials, devices, drain, fanout, fleet, idle, Args, Scenario};

/// The gateway's private key for sealing E2E messages, from `TOCSIN_PRIVATE_KEY`.
fn private_key() -> tocsin_sdk::protocol::SecretKey {
    let hex = std::env::var("TOCSIN_PRIVATE_KEY").unwrap_or_else(|_| {
        fleet::usage(
            "set TOCSIN_PRIVATE_KEY to the E2E gateway's private key (64 hex, as printed by \
             `tocsin admin gateway create --mode e2e`)",
        )
    });
    tocsin_sdk::protocol::SecretKey::parse(hex.trim())
        .unwrap_or_else(|e| fleet::usage(format!("TOCSIN_PRIVATE_KEY: {e}")))
}

pub async fn run(args: &Args) {
    if args.scenario == Scenario::IdleDevices {
        let keepalive = Duration::from_secs(args.keepalive.max(1));
        idle::run(
            &args.url,
            args.devices(50),
            args.server_pid,
            keepalive,
            args.duration,
        )
        .await;
        return;
    }
    let (from, secret) = credentials().unwrap_or_else(|e| fleet::usage(e));
    match args.scenario {
        Scenario::FanOut => {
            let key = private_key();
            fanout::run(&args.url, &from, &secret, &key, args.devices(10_000)).await;
        }
        Scenario::Drain => {
            drain::run(&args.url, &from, &secret, args.messages, args.concurrency).await;
        }
        Scenario::AckCallback => {
            let key = private_key();
            let options = callback::Options {
                devices: args.devices(50),
                rate: args.rate.unwrap_or(100),
                duration: args.duration(),
                callback_port: args.callback_port,
            };
            callback::run(&args.url, &from, &secret, &key, options).await;
        }
        _ => {
            let rate = args.rate.unwrap_or(1000);
            let send_url = args.send_url.as_deref().unwrap_or(&args.url);
            devices::run(
                &args.url,
                send_url,
                &from,
                &secret,
                args.devices(50),
                rate,
                args.duration(),
            )
            .await;
        }
    }
}
