//! The accept → device scenario of `tocsin-load`: simulated devices speaking the real chat
//! protocol (the SDK's device client) receive `send_simple` alerts and acknowledge them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tocsin_sdk::device::{Connection, DeviceKeys, Event};
use tocsin_sdk::protocol::{E2eMessage, IdentityId};

/// Connects `devices` fresh identities, sends `rate` alerts per second round-robin for
/// `duration`, and reports the time from sending the request to the device holding the
/// decrypted message.
pub async fn run(url: &str, from: &str, secret: &str, devices: usize, rate: u64, duration: u64) {
    let sent: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<u32>>> = Arc::default();
    let mut ids: Vec<IdentityId> = Vec::new();
    eprintln!("connecting {devices} devices…");
    for _ in 0..devices {
        let keys = match DeviceKeys::init(url, None, None).await {
            Ok(k) => k,
            Err(e) => {
                eprintln!("error: cannot create a device identity: {e} (is directory.identities_per_ip_per_hour 0?)");
                std::process::exit(1);
            }
        };
        let directory = keys.directory().unwrap_or_else(|e| {
            eprintln!("error: {e}");
            std::process::exit(1)
        });
        let mut connection = Connection::connect(&keys, &directory)
            .await
            .unwrap_or_else(|e| {
                eprintln!("error: cannot connect a device: {e}");
                std::process::exit(1)
            });
        ids.push(keys.identity);
        let (sent, latencies) = (sent.clone(), latencies.clone());
        tokio::spawn(async move {
            while let Ok(event) = connection.next_event().await {
                if let Event::Message(received) = event {
                    if let E2eMessage::Text(text) = &received.message {
                        let seq = text.strip_prefix('t').and_then(|n| n.parse::<u64>().ok());
                        let started = seq.and_then(|s| {
                            sent.lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .remove(&s)
                        });
                        if let Some(started) = started {
                            let us =
                                u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
                            latencies
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .push(us);
                        }
                    }
                    if connection.ack(&received).await.is_err() {
                        break;
                    }
                }
            }
        });
    }
    let client = reqwest::Client::new();
    let creds = format!("from={}&secret={secret}", from.replace('*', "%2A"));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1) as f64));
    let deadline = Instant::now() + Duration::from_secs(duration);
    let mut seq = 0u64;
    let mut tasks = tokio::task::JoinSet::new();
    while Instant::now() < deadline {
        tick.tick().await;
        seq += 1;
        let to = ids[(seq as usize) % ids.len()];
        sent.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(seq, Instant::now());
        let (client, url, body) = (
            client.clone(),
            format!("{url}/send_simple"),
            format!("{creds}&to={to}&text=t{seq}"),
        );
        tasks.spawn(async move {
            let _ = client
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await;
        });
    }
    while tasks.join_next().await.is_some() {}
    // Let the last deliveries arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut lat = latencies
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len().max(1) - 1) as f64 * p).round() as usize)
            .map_or(0.0, |v| f64::from(*v) / 1000.0)
    };
    println!(
        "scenario     send_simple → device ({devices} devices, {rate}/s offered, {duration} s)"
    );
    println!("sent         {seq}");
    println!("received     {}", lat.len());
    println!(
        "latency ms   p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0)
    );
}
