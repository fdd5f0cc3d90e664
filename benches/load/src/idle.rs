//! `idle-devices`: N devices logged in and doing nothing but keep-alives; what each
//! connection costs the server in resident memory and file descriptors.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tocsin_sdk::device::{Connection, Event};

use super::fleet::{check_fd_limits, fail, usage, wait_for, Fleet, Footprint};

/// Time allowed for every device to report its (empty) queue delivered.
const SETTLE_LIMIT: Duration = Duration::from_secs(300);
/// Pause after the last device settled, before the server is measured.
const SETTLE_PAUSE: Duration = Duration::from_secs(5);

/// What the device tasks saw.
#[derive(Default)]
struct Seen {
    settled: AtomicUsize,
    closed: AtomicUsize,
    first_close: Mutex<Option<String>>,
}

pub async fn run(
    url: &str,
    devices: usize,
    server_pid: Option<u32>,
    keepalive: Duration,
    hold: Option<u64>,
) {
    let Some(pid) = server_pid else {
        usage("idle-devices needs --server-pid PID (the server's process ID)");
    };
    if devices == 0 {
        usage("--devices must be at least 1");
    }
    check_fd_limits(devices, Some(pid));
    let measure = || Footprint::of(pid).unwrap_or_else(|e| fail(e));
    measure();
    let fleet = Fleet::new(url).await;
    let keys = fleet.enrol(devices).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = measure();
    eprintln!(
        "server before: {} KiB resident, {} descriptors",
        before.rss_kib, before.fds
    );
    let seen = Arc::new(Seen::default());
    let serve = {
        let seen = seen.clone();
        move |_: usize, connection: Connection| {
            tokio::spawn(idle_device(connection, seen.clone()));
        }
    };
    fleet.connect_all(&keys, keepalive, serve).await;
    if !wait_for(&seen.settled, devices, SETTLE_LIMIT).await {
        fail(format!(
            "only {} of {devices} devices got their queue within {} s",
            seen.settled.load(Ordering::Relaxed),
            SETTLE_LIMIT.as_secs()
        ));
    }
    tokio::time::sleep(SETTLE_PAUSE).await;
    let after = measure();
    eprintln!(
        "server with {devices} devices: {} KiB resident, {} descriptors",
        after.rss_kib, after.fds
    );
    let held = match hold {
        Some(secs) => Some(hold_for(pid, secs).await),
        None => None,
    };
    let closed = seen.closed.load(Ordering::Relaxed);
    println!(
        "scenario        idle devices ({devices} logged in, keep-alive every {} s)",
        keepalive.as_secs()
    );
    println!(
        "                {:>14} {:>12}",
        "resident KiB", "descriptors"
    );
    println!("before          {:>14} {:>12}", before.rss_kib, before.fds);
    println!("connected       {:>14} {:>12}", after.rss_kib, after.fds);
    if let (Some(secs), Some(held)) = (hold, held) {
        println!("after {secs:>4} s    {:>14} {:>12}", held.rss_kib, held.fds);
    }
    let per = |f: Footprint| (f.rss_kib as f64 - before.rss_kib as f64) / devices as f64;
    println!(
        "per connection  {:>14.1} {:>12.2}",
        per(after),
        (after.fds as f64 - before.fds as f64) / devices as f64
    );
    if let Some(held) = held {
        println!("per connection, after the hold  {:.1} KiB", per(held));
        println!(
            "server CPU while holding  {:.1} % of one core",
            held.cpu_since(&after) * 100.0
        );
    }
    println!("devices closed  {closed}");
    let first_close = seen
        .first_close
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    if let Some(reason) = first_close {
        println!("first close     {reason}");
    }
}

/// Holds the connections for `secs` seconds, printing the server's footprint every 10 s.
async fn hold_for(pid: u32, secs: u64) -> Footprint {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    tick.tick().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Ok(f) = Footprint::of(pid) {
                    eprintln!("  holding: {} KiB resident, {} descriptors", f.rss_kib, f.fds);
                }
            }
            () = tokio::time::sleep_until(deadline) => break,
        }
    }
    Footprint::of(pid).unwrap_or_else(|e| fail(e))
}

/// Reads events (which also answers echoes and sends the keep-alives) until the
/// connection ends; acks anything that arrives.
async fn idle_device(mut connection: Connection, seen: Arc<Seen>) {
    loop {
        let reason = match connection.next_event().await {
            Ok(Event::QueueComplete) => {
                seen.settled.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            Ok(Event::Message(m)) => match connection.ack(&m).await {
                Ok(()) => continue,
                Err(e) => e.to_string(),
            },
            Ok(Event::Rejected(r)) => match connection.ack_rejected(&r).await {
                Ok(()) => continue,
                Err(e) => e.to_string(),
            },
            Ok(Event::Closed { reason, .. }) => reason,
            Ok(_) => continue,
            Err(e) => e.to_string(),
        };
        seen.closed.fetch_add(1, Ordering::Relaxed);
        seen.first_close
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(reason);
        return;
    }
}
