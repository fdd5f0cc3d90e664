//! `ack-callback`: devices answer each alert with a delivery receipt, which the server
//! passes on to the gateway ID's callback URL; the time from the device sending the
//! receipt to the callback POST arriving at a receiver this process runs.
//!
//! The gateway ID (E2E mode) must have its callback URL pointing at the receiver, e.g.
//! `tocsin admin gateway set-callback '*ID' http://127.0.0.1:18181/`, and the server must
//! allow loopback callbacks (`TOCSIN__CALLBACKS__ALLOWED_RANGES=127.0.0.0/8`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tocsin_sdk::crypto::SharedKey;
use tocsin_sdk::device::{Connection, Event};
use tocsin_sdk::protocol::{E2eMessage, IdentityId, Nonce, ReceiptStatus, SecretKey};

use super::fleet::{check_fd_limits, fail, settle_other, usage, wait_for, Fleet};

/// Time allowed for the last callbacks after the last alert.
const CALLBACK_LIMIT: Duration = Duration::from_secs(60);

/// When each receipt left its device, and when its callback arrived, by message ID.
#[derive(Default)]
struct Times {
    receipts: Mutex<HashMap<String, Instant>>,
    callbacks: Mutex<HashMap<String, Instant>>,
    receipts_sent: AtomicUsize,
    callbacks_seen: AtomicUsize,
    /// Alerts received, with send → device times.
    delivered: Mutex<Vec<u32>>,
    sent_at: Mutex<HashMap<u64, Instant>>,
}

pub struct Options {
    pub devices: usize,
    pub rate: u64,
    pub duration: u64,
    pub callback_port: u16,
}

pub async fn run(url: &str, from: &str, secret: &str, gateway_key: &SecretKey, o: Options) {
    if o.devices == 0 {
        usage("--devices must be at least 1");
    }
    let gateway =
        IdentityId::parse(from).unwrap_or_else(|e| usage(format!("TOCSIN_GATEWAY_ID: {e}")));
    check_fd_limits(o.devices, None);
    let times = Arc::new(Times::default());
    let receiver = receiver(o.callback_port, times.clone());
    eprintln!(
        "callback receiver at http://{receiver}/ (the gateway's callback URL must point here)"
    );
    let mut fleet = Fleet::new(url).await;
    fleet
        .pin_sender(gateway, Some(gateway_key.public_key()))
        .await;
    let keys = fleet.enrol(o.devices).await;
    let serve = {
        let times = times.clone();
        move |_: usize, connection: Connection| {
            tokio::spawn(device(connection, times.clone()));
        }
    };
    fleet
        .connect_all(&keys, Connection::DEFAULT_KEEPALIVE, serve)
        .await;
    let shared: Vec<(IdentityId, SharedKey)> = keys
        .iter()
        .map(|k| {
            let key = SharedKey::new(gateway_key, &k.public_key())
                .unwrap_or_else(|e| fail(format!("key of {}: {e}", k.identity)));
            (k.identity, key)
        })
        .collect();
    let client = reqwest::Client::new();
    let endpoint = format!("{url}/send_e2e");
    let creds = format!("from={}&secret={secret}", from.replace('*', "%2A"));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / o.rate.max(1) as f64));
    let deadline = Instant::now() + Duration::from_secs(o.duration);
    let mut seq = 0u64;
    let mut tasks = tokio::task::JoinSet::new();
    let refused = Arc::new(AtomicUsize::new(0));
    eprintln!("sending {}/s for {} s…", o.rate, o.duration);
    while Instant::now() < deadline {
        tick.tick().await;
        seq += 1;
        let (to, key) = &shared[(seq as usize) % shared.len()];
        let nonce = Nonce::random();
        let sealed = key.seal(&nonce, &E2eMessage::Text(format!("c{seq}")).to_padded());
        let body = format!("{creds}&to={to}&nonce={nonce}&box={}", hex::encode(sealed));
        times
            .sent_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(seq, Instant::now());
        let (client, endpoint, refused) = (client.clone(), endpoint.clone(), refused.clone());
        tasks.spawn(async move {
            let ok = client
                .post(endpoint)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if !ok {
                refused.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let refused = refused.load(Ordering::Relaxed);
    let expected = seq as usize - refused;
    eprintln!("sent {seq}; waiting for the receipts' callbacks…");
    wait_for(&times.receipts_sent, expected, CALLBACK_LIMIT).await;
    let complete = wait_for(&times.callbacks_seen, expected, CALLBACK_LIMIT).await;

    let receipts = times
        .receipts
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let callbacks = times
        .callbacks
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let mut latencies: Vec<u32> = receipts
        .iter()
        .filter_map(|(id, sent)| {
            let arrived = callbacks.get(id)?;
            Some(
                u32::try_from(arrived.saturating_duration_since(*sent).as_micros())
                    .unwrap_or(u32::MAX),
            )
        })
        .collect();
    latencies.sort_unstable();
    let mut delivered = times
        .delivered
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    delivered.sort_unstable();
    let line = |v: &[u32]| {
        format!(
            "p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
            super::percentile(v, 0.5),
            super::percentile(v, 0.9),
            super::percentile(v, 0.99),
            super::percentile(v, 1.0)
        )
    };
    println!(
        "scenario          send_e2e → device → receipt → callback ({} devices, {}/s offered, {} s)",
        o.devices, o.rate, o.duration
    );
    println!("alerts sent       {seq}  (refused: {refused})");
    println!("alerts received   {}", delivered.len());
    println!("receipts sent     {}", receipts.len());
    println!(
        "callbacks         {} matched of {}{}",
        latencies.len(),
        callbacks.len(),
        if complete { "" } else { "  (gave up waiting)" }
    );
    println!("send → device ms  {}", line(&delivered));
    println!("receipt → callback ms  {}", line(&latencies));
}

/// A device: acks each alert, then sends a delivery receipt to its sender.
async fn device(mut connection: Connection, times: Arc<Times>) {
    while let Ok(event) = connection.next_event().await {
        match event {
            Event::Message(m) => {
                if let E2eMessage::Text(text) = &m.message {
                    let seq = text.strip_prefix('c').and_then(|n| n.parse::<u64>().ok());
                    let sent = seq.and_then(|s| {
                        times
                            .sent_at
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .remove(&s)
                    });
                    if let Some(sent) = sent {
                        let us = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
                        times
                            .delivered
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(us);
                    }
                }
                if connection.ack(&m).await.is_err() {
                    return;
                }
                if !m.wants_receipt() {
                    continue;
                }
                let at = Instant::now();
                match connection
                    .send_receipt(&m.sender, ReceiptStatus::Received, &[m.message_id])
                    .await
                {
                    Ok(id) => {
                        times
                            .receipts
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .insert(id.to_string(), at);
                        times.receipts_sent.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        eprintln!("a device could not send a receipt: {e}");
                        return;
                    }
                }
            }
            other => {
                if !settle_other(&mut connection, other).await {
                    return;
                }
            }
        }
    }
}

/// An HTTP server on 127.0.0.1 taking callback POSTs: records the arrival of each
/// `messageId` and answers 200.
fn receiver(port: u16, times: Arc<Times>) -> std::net::SocketAddr {
    use actix_web::{web, App, HttpResponse, HttpServer};
    let server = HttpServer::new(move || {
        let times = times.clone();
        App::new().default_service(web::to(move |body: web::Bytes| {
            let times = times.clone();
            async move {
                let arrived = Instant::now();
                let id = form_field(&body, "messageId");
                if let Some(id) = id {
                    times
                        .callbacks
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(id, arrived);
                    times.callbacks_seen.fetch_add(1, Ordering::Relaxed);
                }
                HttpResponse::Ok().finish()
            }
        }))
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", port))
    .unwrap_or_else(|e| usage(format!("cannot listen on 127.0.0.1:{port}: {e}")));
    let addr = server.addrs()[0];
    tokio::spawn(server.run());
    addr
}

/// The value of `name` in a form body (the message ID is hex: nothing to unescape).
fn form_field(body: &[u8], name: &str) -> Option<String> {
    std::str::from_utf8(body)
        .ok()?
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
        .map(str::to_owned)
}
