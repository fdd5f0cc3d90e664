//! `fan-out`: one alert to N connected devices through `POST /send_e2e_bulk` (at most
//! 1000 elements per request, all requests at once); the time until every device holds
//! it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine;
use tocsin_sdk::crypto::SharedKey;
use tocsin_sdk::device::{Connection, Event};
use tocsin_sdk::protocol::{E2eMessage, IdentityId, Nonce, SecretKey};

use super::fleet::{check_fd_limits, fail, settle_other, usage, wait_for, Fleet};

/// Elements per bulk request: the API's maximum.
const PER_REQUEST: usize = 1000;
/// The alert every device gets.
const TEXT: &str = "fan-out: db-1 disk full";
/// Time allowed for the alert to reach every device.
const ARRIVAL_LIMIT: Duration = Duration::from_secs(120);

#[derive(Default)]
struct Seen {
    settled: AtomicUsize,
    arrived: AtomicUsize,
    arrivals: Mutex<Vec<Instant>>,
}

pub async fn run(url: &str, from: &str, secret: &str, gateway_key: &SecretKey, devices: usize) {
    if devices == 0 {
        usage("--devices must be at least 1");
    }
    let gateway =
        IdentityId::parse(from).unwrap_or_else(|e| usage(format!("TOCSIN_GATEWAY_ID: {e}")));
    check_fd_limits(devices, None);
    let mut fleet = Fleet::new(url).await;
    fleet
        .pin_sender(gateway, Some(gateway_key.public_key()))
        .await;
    let keys = fleet.enrol(devices).await;
    let seen = Arc::new(Seen::default());
    let serve = {
        let seen = seen.clone();
        move |_: usize, connection: Connection| {
            tokio::spawn(device(connection, seen.clone()));
        }
    };
    fleet
        .connect_all(&keys, Connection::DEFAULT_KEEPALIVE, serve)
        .await;
    if !wait_for(&seen.settled, devices, Duration::from_secs(300)).await {
        fail("not every device got its queue in 300 s");
    }
    eprintln!("sealing {devices} boxes…");
    let plain = E2eMessage::Text(TEXT.into()).to_padded();
    let b64 = base64::engine::general_purpose::STANDARD;
    let elements: Vec<serde_json::Value> = keys
        .iter()
        .map(|k| {
            let shared = SharedKey::new(gateway_key, &k.public_key())
                .unwrap_or_else(|e| fail(format!("key of {}: {e}", k.identity)));
            let nonce = Nonce::random();
            serde_json::json!({
                "to": k.identity.to_string(),
                "nonce": b64.encode(nonce.as_bytes()),
                "box": b64.encode(shared.seal(&nonce, &plain)),
            })
        })
        .collect();
    let bodies: Vec<String> = elements
        .chunks(PER_REQUEST)
        .map(|chunk| serde_json::Value::Array(chunk.to_vec()).to_string())
        .collect();
    let requests = bodies.len();
    let endpoint = format!(
        "{url}/send_e2e_bulk?from={}&secret={secret}",
        from.replace('*', "%2A")
    );
    let client = reqwest::Client::new();
    eprintln!("sending {requests} bulk requests at once…");
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for body in bodies {
        let (client, endpoint) = (client.clone(), endpoint.clone());
        tasks.spawn(async move {
            let res = client
                .post(endpoint)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = res.status();
            let text = res.text().await.map_err(|e| e.to_string())?;
            if !status.is_success() {
                return Err(format!("status {status}: {text}"));
            }
            let results: Vec<serde_json::Value> =
                serde_json::from_str(&text).map_err(|e| format!("answer: {e}"))?;
            let accepted = results
                .iter()
                .filter(|r| r.get("messageId").is_some())
                .count();
            Ok((accepted, results.len() - accepted, started.elapsed()))
        });
    }
    let (mut accepted, mut refused) = (0, 0);
    let mut request_times = Vec::new();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Ok((a, r, t))) => {
                accepted += a;
                refused += r;
                request_times.push(t);
            }
            Ok(Err(e)) => fail(format!("bulk request failed: {e}")),
            Err(e) => fail(format!("bulk task: {e}")),
        }
    }
    let answered = started.elapsed();
    eprintln!(
        "all bulk answers after {:.3} s; waiting for the devices…",
        answered.as_secs_f64()
    );
    let complete = wait_for(&seen.arrived, accepted, ARRIVAL_LIMIT).await;
    let mut arrivals: Vec<u32> = seen
        .arrivals
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(|t| {
            u32::try_from(t.saturating_duration_since(started).as_micros()).unwrap_or(u32::MAX)
        })
        .collect();
    arrivals.sort_unstable();
    request_times.sort_unstable();
    let pct = |p| super::percentile(&arrivals, p);
    println!("scenario        fan-out of one alert to {devices} devices ({requests} bulk requests of ≤ {PER_REQUEST}, all at once)");
    println!("accepted        {accepted}  (refused elements: {refused})");
    println!(
        "bulk answers    first {:.3} s  last {:.3} s",
        request_times.first().map_or(0.0, Duration::as_secs_f64),
        answered.as_secs_f64()
    );
    println!(
        "received        {} of {accepted}{}",
        arrivals.len(),
        if complete { "" } else { "  (gave up waiting)" }
    );
    println!(
        "arrival s       p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}  (from the first request)",
        pct(0.5) / 1000.0,
        pct(0.9) / 1000.0,
        pct(0.99) / 1000.0,
        pct(1.0) / 1000.0
    );
}

/// Records when the alert arrives, acks everything.
async fn device(mut connection: Connection, seen: Arc<Seen>) {
    while let Ok(event) = connection.next_event().await {
        match event {
            Event::QueueComplete => {
                seen.settled.fetch_add(1, Ordering::Relaxed);
            }
            Event::Message(m) => {
                if matches!(&m.message, E2eMessage::Text(t) if t == TEXT) {
                    seen.arrivals
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(Instant::now());
                    seen.arrived.fetch_add(1, Ordering::Relaxed);
                }
                if connection.ack(&m).await.is_err() {
                    return;
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
