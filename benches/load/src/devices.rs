//! The accept → device scenario of `tocsin-load`: simulated devices speaking the real chat
//! protocol (the SDK's device client) receive `send_simple` alerts and acknowledge them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tocsin_sdk::device::{Admission, Connection, DeviceKeys, Event};
use tocsin_sdk::protocol::{E2eMessage, IdentityId};

use crate::fleet::usage;
use crate::http1;

/// When each alert was sent, answered 200 and received, by its sequence number.
type Times = Arc<Mutex<HashMap<u64, Instant>>>;

/// Connects `devices` fresh identities to `url`, sends `rate` alerts per second
/// round-robin for `duration` through `send_url`, and reports two times until the device
/// holds the decrypted message: from sending the request, and from its accept (the 200
/// answer reaching the sender; zero when the device had the message first).
pub async fn run(
    url: &str,
    send_url: &str,
    from: &str,
    secret: &str,
    devices: usize,
    rate: u64,
    duration: u64,
) {
    let (sent, answered, arrived): (Times, Times, Times) = Default::default();
    let mut ids: Vec<IdentityId> = Vec::new();
    eprintln!("connecting {devices} devices…");
    for _ in 0..devices {
        let keys = match DeviceKeys::init(url, Admission::Open, None).await {
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
        let arrived = arrived.clone();
        tokio::spawn(async move {
            while let Ok(event) = connection.next_event().await {
                if let Event::Message(received) = event {
                    if let E2eMessage::Text(text) = &received.message {
                        let at = Instant::now();
                        if let Some(seq) = text.strip_prefix('t').and_then(|n| n.parse().ok()) {
                            arrived
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .entry(seq)
                                .or_insert(at);
                        }
                    }
                    if connection.ack(&received).await.is_err() {
                        break;
                    }
                }
            }
        });
    }
    let target = http1::Target::resolve(send_url)
        .await
        .unwrap_or_else(|e| usage(e));
    let uri = target.uri("/send_simple").unwrap_or_else(|e| usage(e));
    let pool = Arc::new(http1::Pool::new(target));
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
        let (pool, uri, body, answered) = (
            pool.clone(),
            uri.clone(),
            format!("{creds}&to={to}&text=t{seq}"),
            answered.clone(),
        );
        tasks.spawn(async move {
            if pool.post_form(&uri, body).await == Ok(200) {
                answered
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(seq, Instant::now());
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    // Let the last deliveries arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let take =
        |times: &Times| std::mem::take(&mut *times.lock().unwrap_or_else(PoisonError::into_inner));
    let (sent, answered, arrived) = (take(&sent), take(&answered), take(&arrived));
    let since = |from: &HashMap<u64, Instant>| {
        let mut micros: Vec<u32> = arrived
            .iter()
            .filter_map(|(seq, at)| from.get(seq).map(|t| at.saturating_duration_since(*t)))
            .map(|d| u32::try_from(d.as_micros()).unwrap_or(u32::MAX))
            .collect();
        micros.sort_unstable();
        micros
    };
    println!(
        "scenario     send_simple → device ({devices} devices, {rate}/s offered, {duration} s)"
    );
    if send_url != url {
        println!("through      {send_url} (devices on {url})");
    }
    println!("sent         {seq}");
    println!("accepted     {} (answered 200)", answered.len());
    println!("received     {}", arrived.len());
    for (label, micros) in [
        ("send → device  ", since(&sent)),
        ("accept → device", since(&answered)),
    ] {
        let pct = |p: f64| {
            micros
                .get(((micros.len().max(1) - 1) as f64 * p).round() as usize)
                .map_or(0.0, |v| f64::from(*v) / 1000.0)
        };
        println!(
            "{label} ms  p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
            pct(0.5),
            pct(0.9),
            pct(0.99),
            pct(1.0)
        );
    }
}
