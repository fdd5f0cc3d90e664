//! The `crypto` scenario: what sealing one message costs on this host, with a cached
//! shared key and with a key exchange, so that each send run reports it beside its ceiling.

use std::time::Instant;

use tocsin_sdk::crypto::SharedKey;
use tocsin_sdk::protocol::{E2eMessage, KeyPair, Nonce};

/// Per-message crypto cost, measured here so every run reports its own ceiling.
pub fn cost() {
    let (gateway, recipient) = (KeyPair::generate(), KeyPair::generate());
    let text = E2eMessage::Text("Your code is 482913".into()).to_padded();
    let rounds = 20_000u32;
    let shared = SharedKey::new(&gateway.secret, &recipient.public).unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1);
    });
    let t = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(shared.seal(&Nonce::random(), &text));
    }
    let cached = t.elapsed() / rounds;
    let t = Instant::now();
    for _ in 0..rounds / 20 {
        let key = SharedKey::new(&gateway.secret, &recipient.public)
            .unwrap_or_else(|_| std::process::exit(1));
        std::hint::black_box(key.seal(&Nonce::random(), &text));
    }
    let exchange = t.elapsed() / (rounds / 20);
    println!(
        "seal with cached key      {:>8.2} µs/message  ({:.0} /s per core)",
        cached.as_secs_f64() * 1e6,
        1.0 / cached.as_secs_f64()
    );
    println!(
        "seal with key exchange    {:>8.2} µs/message  ({:.0} /s per core)",
        exchange.as_secs_f64() * 1e6,
        1.0 / exchange.as_secs_f64()
    );
}
