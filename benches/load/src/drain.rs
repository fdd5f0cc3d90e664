//! `drain`: M messages queued for one offline device (`send_simple`, closed loop), then
//! the device logs in and takes them all; how long that takes, and whether they come in
//! the order they were sent.
//!
//! With several requests in flight, "the order sent" is the order the sender can know:
//! a message whose `200` arrived before another one's request was sent must be delivered
//! first. Each message records two ticks of one counter (request sent, answer received);
//! a violation is a message delivered after one whose request went out only once it had
//! already been accepted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tocsin_sdk::device::{Connection, Event};
use tocsin_sdk::protocol::{E2eMessage, IdentityId};

use super::fleet::{fail, usage, Fleet};

/// Time allowed for the whole drain.
const DRAIN_LIMIT: Duration = Duration::from_secs(600);

/// Ticks of one message: when its request was sent and when its answer came.
#[derive(Debug, Clone, Copy)]
struct Ticks {
    sent: u64,
    answered: u64,
}

pub async fn run(url: &str, from: &str, secret: &str, messages: u64, concurrency: usize) {
    if messages == 0 || concurrency == 0 {
        usage("--messages and --concurrency must be at least 1");
    }
    let gateway =
        IdentityId::parse(from).unwrap_or_else(|e| usage(format!("TOCSIN_GATEWAY_ID: {e}")));
    let mut fleet = Fleet::new(url).await;
    fleet.pin_sender(gateway, None).await;
    let keys = fleet.enrol(1).await;
    let Some(keys) = keys.into_iter().next() else {
        fail("no identity was created");
    };
    let to = keys.identity;
    eprintln!("queueing {messages} messages for {to} (offline), {concurrency} in flight…");
    let clock = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let ticks: Arc<Mutex<HashMap<u64, Ticks>>> = Arc::default();
    let failures: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap_or_default();
    let endpoint = format!("{url}/send_simple");
    let creds = format!("from={}&secret={secret}&to={to}", from.replace('*', "%2A"));
    let progress = tokio::spawn(count_progress(next.clone(), messages));
    let filling = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (client, endpoint, creds, clock, next, ticks, failures) = (
            client.clone(),
            endpoint.clone(),
            creds.clone(),
            clock.clone(),
            next.clone(),
            ticks.clone(),
            failures.clone(),
        );
        workers.spawn(async move {
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed) + 1;
                if seq > messages {
                    return;
                }
                let sent = clock.fetch_add(1, Ordering::SeqCst);
                let answer = client
                    .post(&endpoint)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(format!("{creds}&text=d{seq}"))
                    .send()
                    .await;
                let status = match answer {
                    Ok(res) => {
                        let code = res.status().as_u16();
                        let _ = res.bytes().await;
                        code.to_string()
                    }
                    Err(e) => format!("transport error: {e}"),
                };
                let answered = clock.fetch_add(1, Ordering::SeqCst);
                if status == "200" {
                    ticks
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(seq, Ticks { sent, answered });
                } else {
                    *failures
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .entry(status)
                        .or_default() += 1;
                }
            }
        });
    }
    while workers.join_next().await.is_some() {}
    progress.abort();
    let fill = filling.elapsed();
    let ticks = std::mem::take(&mut *ticks.lock().unwrap_or_else(PoisonError::into_inner));
    let queued = ticks.len();
    eprintln!(
        "queued {queued} in {:.1} s; logging the device in…",
        fill.as_secs_f64()
    );

    let started = Instant::now();
    let mut connection = Connection::connect(&keys, &fleet.directory)
        .await
        .unwrap_or_else(|e| fail(format!("cannot log the device in: {e}")));
    let logged_in = started.elapsed();
    let mut order: Vec<u64> = Vec::with_capacity(queued);
    let mut first_received = None;
    let mut queue_complete = None;
    let mut others = 0u64;
    let deadline = tokio::time::Instant::now() + DRAIN_LIMIT;
    while order.len() < queued || queue_complete.is_none() {
        let event = match tokio::time::timeout_at(deadline, connection.next_event()).await {
            Err(_) => fail(format!(
                "drain incomplete after {} s: {} of {queued} received",
                DRAIN_LIMIT.as_secs(),
                order.len()
            )),
            Ok(Err(e)) => fail(format!("the connection failed: {e}")),
            Ok(Ok(event)) => event,
        };
        match event {
            Event::Message(m) => {
                first_received.get_or_insert_with(|| started.elapsed());
                let seq = match &m.message {
                    E2eMessage::Text(t) => t.strip_prefix('d').and_then(|n| n.parse().ok()),
                    _ => None,
                };
                match seq {
                    Some(seq) => order.push(seq),
                    None => others += 1,
                }
                if let Err(e) = connection.ack(&m).await {
                    fail(format!("cannot ack: {e}"));
                }
            }
            Event::Rejected(r) => fail(format!("a message did not open: {}", r.reason)),
            Event::QueueComplete => {
                queue_complete = Some(started.elapsed());
            }
            Event::Closed { reason, .. } => fail(format!("the server closed: {reason}")),
            _ => {}
        }
    }
    let received = started.elapsed();
    // The server handles a connection's frames in order: once the echo is answered,
    // every ack before it is committed.
    if let Err(e) = connection.round_trip().await {
        fail(format!("the final echo failed: {e}"));
    }
    let acked = started.elapsed();
    connection.close().await;

    let failures = failures.lock().unwrap_or_else(PoisonError::into_inner);
    println!("scenario        drain of {messages} messages queued for one offline device (send_simple, {concurrency} in flight)");
    println!(
        "queue fill      {queued} accepted in {:.2} s  ({:.0}/s)",
        fill.as_secs_f64(),
        queued as f64 / fill.as_secs_f64().max(1e-9)
    );
    for (status, n) in failures.iter() {
        println!("  refused       {n} × {status}");
    }
    println!(
        "login           {:.3} s; first message at {:.3} s",
        logged_in.as_secs_f64(),
        first_received.map_or(0.0, |d| d.as_secs_f64())
    );
    println!(
        "all received    {:.2} s  ({:.0} messages/s; queue-send-complete at {:.2} s)",
        received.as_secs_f64(),
        order.len() as f64 / received.as_secs_f64().max(1e-9),
        queue_complete.map_or(0.0, |d| d.as_secs_f64())
    );
    println!(
        "all acked       {:.2} s  ({:.0} messages/s)",
        acked.as_secs_f64(),
        order.len() as f64 / acked.as_secs_f64().max(1e-9)
    );
    println!(
        "received        {} of {queued}{}",
        order.len(),
        if others > 0 {
            format!(" (+{others} other messages)")
        } else {
            String::new()
        }
    );
    println!("order           {}", check_order(&order, &ticks));
}

/// "kept", or the first message delivered after one its sender sent later.
fn check_order(order: &[u64], ticks: &HashMap<u64, Ticks>) -> String {
    let mut seen = std::collections::HashSet::new();
    // The delivered message with the latest request so far.
    let mut latest: Option<(u64, Ticks)> = None;
    for (position, seq) in order.iter().enumerate() {
        if !seen.insert(*seq) {
            return format!("message d{seq} came twice (position {position})");
        }
        let Some(t) = ticks.get(seq) else {
            return format!("message d{seq} was not accepted but arrived");
        };
        if let Some((before, bt)) = latest {
            if t.answered < bt.sent {
                return format!(
                    "violated at position {position}: d{seq} was accepted before d{before} \
                     was sent, but arrived after it"
                );
            }
        }
        if latest.is_none_or(|(_, bt)| t.sent > bt.sent) {
            latest = Some((*seq, *t));
        }
    }
    if seen.len() < ticks.len() {
        return format!("{} accepted messages missing", ticks.len() - seen.len());
    }
    "kept".to_owned()
}

async fn count_progress(next: Arc<AtomicU64>, total: u64) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tick.tick().await;
        eprintln!(
            "  {:>7} of {total} queued",
            next.load(Ordering::Relaxed).min(total)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticks(list: &[(u64, u64, u64)]) -> HashMap<u64, Ticks> {
        list.iter()
            .map(|&(seq, sent, answered)| (seq, Ticks { sent, answered }))
            .collect()
    }

    #[test]
    fn overlapping_requests_may_arrive_either_way_but_sequential_ones_may_not() {
        // 1 and 2 overlap; 3 was sent after both were answered.
        let t = ticks(&[(1, 0, 3), (2, 1, 2), (3, 4, 5)]);
        assert_eq!(check_order(&[2, 1, 3], &t), "kept");
        assert_eq!(check_order(&[1, 2, 3], &t), "kept");
        assert!(check_order(&[3, 1, 2], &t).starts_with("violated"));
        assert!(check_order(&[1, 3], &t).contains("missing"));
        assert!(check_order(&[1, 1], &t).contains("twice"));
    }
}
