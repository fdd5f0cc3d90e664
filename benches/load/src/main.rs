//! `tocsin-load`: a load harness for a running Tocsin server.
//!
//! Closed loop (`--concurrency N`: N requests in flight, each sent as soon as the previous
//! one answered) or open loop (`--rate R`: R requests per second whatever the answers),
//! for a fixed `--duration`. Scenarios:
//! * `send-e2e`: `POST /send_e2e` with a fresh random nonce and a 100-byte box each time;
//! * `send-simple`: `POST /send_simple` with a short text (the server encrypts);
//! * `constant`: the same HTTP stack (actix-web, started in this process) reading the
//!   request's body and answering a constant: the ceiling the other figures are compared
//!   with (alone, it is sent empty POSTs);
//! * `crypto`: no network, the cost of one box seal with a cached key and with a key
//!   exchange, per message.
//!
//! After their own run, `send-e2e` and `send-simple` measure their ceiling in the same
//! run: the very same requests (path and body, built the same way) against `constant`,
//! then `crypto`, and print the ratio (`--no-ceiling` skips it).
//!
//! Scenarios with simulated devices on the real chat protocol:
//! * `device-latency`: `send_simple` alerts to N devices; send → device and accept →
//!   device time (from the 200 answer); with `--send-url`, sent through another node
//!   than the one the devices are connected to;
//! * `idle-devices`: N devices logged in and idle; the server's resident memory and file
//!   descriptors per connection (`--server-pid`);
//! * `fan-out`: one alert to N devices through `send_e2e_bulk`; time until all hold it;
//! * `drain`: M messages queued for an offline device, then its login; drain time and
//!   order;
//! * `ack-callback`: devices answer alerts with delivery receipts; receipt → callback
//!   time, at a callback receiver run by this process.
//!
//! Requests go over the harness's own lean HTTP/1.1 client ([`http1`]), so that it takes as
//! little as it can of the cores it shares with the server. Prints a progress line per
//! second and a summary: requests, rate, latency percentiles, errors by status. Credentials come from the environment (`TOCSIN_GATEWAY_ID`,
//! `TOCSIN_SECRET`, and for sealing E2E messages `TOCSIN_PRIVATE_KEY`), never from the
//! command line.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use tocsin_sdk::protocol::Nonce;

/// The same allocator as the server, so the harness spends as little of the shared cores
/// as it can.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod callback;
mod chat;
mod crypto;
mod devices;
mod drain;
mod fanout;
mod fleet;
mod http1;
mod idle;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    SendE2e,
    SendSimple,
    Constant,
    Crypto,
    /// send_simple alerts to simulated devices; time from the request and from its 200
    /// answer until the device holds the message.
    DeviceLatency,
    /// N devices logged in and idle; server memory and descriptors per connection.
    IdleDevices,
    /// One alert to N devices through send_e2e_bulk; time until every device holds it.
    FanOut,
    /// M messages queued for one offline device, then its login; drain time and order.
    Drain,
    /// Devices send delivery receipts; time until the callback POST arrives.
    AckCallback,
}

#[derive(Debug, Parser)]
#[command(about = "Load harness for a running Tocsin server")]
struct Args {
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// Base URL of the server under test.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Where device-latency sends its alerts, when not to `--url` where the devices
    /// connect: another node on the same database (cross-node delivery).
    #[arg(long)]
    send_url: Option<String>,
    /// Recipient identity ID (send scenarios).
    #[arg(long, default_value = "")]
    to: String,
    /// Requests in flight (closed loop).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Requests per second (open loop); overrides --concurrency.
    #[arg(long)]
    rate: Option<u64>,
    /// Seconds to run (10 unless given); for idle-devices, how long to hold the
    /// connections after measuring (no hold unless given).
    #[arg(long)]
    duration: Option<u64>,
    /// Simulated devices (50 unless given; 10000 for fan-out).
    #[arg(long)]
    devices: Option<usize>,
    /// Process ID of the server under test (idle-devices reads its /proc entries).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Messages to queue (drain).
    #[arg(long, default_value_t = 10_000)]
    messages: u64,
    /// Seconds between the devices' keep-alive echoes (idle-devices).
    #[arg(long, default_value_t = 60)]
    keepalive: u64,
    /// Port of the callback receiver on 127.0.0.1 (ack-callback; 0 picks a free one,
    /// which the gateway's callback URL must then be set to during the run).
    #[arg(long, default_value_t = 18181)]
    callback_port: u16,
    /// Skip the ceiling that send-e2e and send-simple measure after their own run (the
    /// same load against a constant answer in this process, and the crypto cost).
    #[arg(long)]
    no_ceiling: bool,
    /// Split a send run and its ceiling into this many alternating slices of the
    /// duration each, so that a host whose speed drifts during the run weighs on both
    /// alike (send-e2e and send-simple).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    rounds: u32,
}

impl Args {
    fn duration(&self) -> u64 {
        self.duration.unwrap_or(10)
    }

    fn devices(&self, default: usize) -> usize {
        self.devices.unwrap_or(default)
    }
}

/// What the run recorded.
#[derive(Default)]
struct Record {
    latencies_us: Vec<u32>,
    statuses: BTreeMap<String, u64>,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    if let Scenario::Crypto = args.scenario {
        crypto::cost();
        return;
    }
    if matches!(
        args.scenario,
        Scenario::DeviceLatency
            | Scenario::IdleDevices
            | Scenario::FanOut
            | Scenario::Drain
            | Scenario::AckCallback
    ) {
        chat::run(&args).await;
        return;
    }
    if matches!(args.scenario, Scenario::Constant) {
        let base = format!("http://{}", constant_server().await);
        let (record, elapsed) =
            run_load(&args, &base, "/", Box::new(String::new), args.duration()).await;
        summary(&args, &record, elapsed);
        return;
    }
    let (from, secret) = credentials().unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(2);
    });
    let with_ceiling =
        matches!(args.scenario, Scenario::SendE2e | Scenario::SendSimple) && !args.no_ceiling;
    if !with_ceiling {
        let (path, body_for) = request_body(&args, args.scenario, &from, &secret);
        let (record, elapsed) = run_load(&args, &args.url, path, body_for, args.duration()).await;
        summary(&args, &record, elapsed);
        return;
    }
    // The ceiling of this very run: the same requests, built the same way, answered with
    // a constant by the same HTTP stack, without the store and the crypto; then the
    // crypto alone. With several rounds the two alternate, a slice of the duration each.
    let ceiling_base = format!("http://{}", constant_server().await);
    let slice = (args.duration() / u64::from(args.rounds)).max(1);
    let (mut record, mut elapsed) = (Record::default(), Duration::ZERO);
    let (mut ceiling_ok, mut ceiling_elapsed) = (0u64, Duration::ZERO);
    let mut by_round = Vec::new();
    for round in 1..=args.rounds {
        let (path, body_for) = request_body(&args, args.scenario, &from, &secret);
        let (sent, took) = run_load(&args, &args.url, path, body_for, slice).await;
        eprintln!("ceiling: the same load against a constant answer…");
        let (path, body_for) = request_body(&args, args.scenario, &from, &secret);
        let (ceiling, ceiling_took) = run_load(&args, &ceiling_base, path, body_for, slice).await;
        let rate_of = |r: &Record, t: Duration| ok_count(r) as f64 / t.as_secs_f64();
        if args.rounds > 1 {
            let (rate, ceiling_rate) = (rate_of(&sent, took), rate_of(&ceiling, ceiling_took));
            eprintln!("round {round}: {rate:.0}/s against a ceiling of {ceiling_rate:.0}/s");
            by_round.push(ratio(rate, ceiling_rate));
        }
        ceiling_ok += ok_count(&ceiling);
        ceiling_elapsed += ceiling_took;
        record.merge(sent);
        elapsed += took;
    }
    let rate = summary(&args, &record, elapsed);
    let ceiling_rate = ceiling_ok as f64 / ceiling_elapsed.as_secs_f64();
    println!("ceiling/s    {ceiling_rate:.0}  (constant answer, same load)");
    println!("ratio        {:.3}", ratio(rate, ceiling_rate));
    if !by_round.is_empty() {
        let shown: Vec<String> = by_round.iter().map(|r| format!("{r:.3}")).collect();
        println!("by round     {}", shown.join("  "));
    }
    crypto::cost();
}

fn ratio(rate: f64, ceiling_rate: f64) -> f64 {
    if ceiling_rate > 0.0 {
        rate / ceiling_rate
    } else {
        0.0
    }
}

fn ok_count(record: &Record) -> u64 {
    record.statuses.get("200").copied().unwrap_or(0)
}

impl Record {
    /// Adds another slice of the same run.
    fn merge(&mut self, other: Record) {
        self.latencies_us.extend(other.latencies_us);
        for (status, count) in other.statuses {
            *self.statuses.entry(status).or_default() += count;
        }
    }
}

/// Runs the closed or open loop of `args` against `path` on `base` for `seconds`.
async fn run_load(
    args: &Args,
    base: &str,
    path: &str,
    body_for: BodyFn,
    seconds: u64,
) -> (Record, Duration) {
    let target = http1::Target::resolve(base).await;
    let (target, uri) = match target.and_then(|t| t.uri(path).map(|uri| (t, uri))) {
        Ok(both) => both,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let record = Arc::new(Mutex::new(Record::default()));
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let progress = tokio::spawn(progress(done.clone(), deadline));
    let started = Instant::now();
    let tally = {
        let (record, done) = (record.clone(), done.clone());
        move |t: Instant, outcome: Result<u16, http1::Failure>| {
            let us = u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX);
            let status = match outcome {
                Ok(code) => code.to_string(),
                Err(http1::Failure::Connect) => "connect error".to_owned(),
                Err(http1::Failure::Transport) => "transport error".to_owned(),
            };
            let mut r = record
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            r.latencies_us.push(us);
            *r.statuses.entry(status).or_default() += 1;
            done.fetch_add(1, Ordering::Relaxed);
        }
    };
    let body_for = Arc::new(body_for);
    match args.rate {
        Some(rate) => {
            let pool = Arc::new(http1::Pool::new(target));
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1) as f64));
            let mut tasks = tokio::task::JoinSet::new();
            while Instant::now() < deadline {
                tick.tick().await;
                let (pool, uri, body, tally) =
                    (pool.clone(), uri.clone(), body_for(), tally.clone());
                tasks.spawn(async move {
                    let t = Instant::now();
                    tally(t, pool.post_form(&uri, body).await);
                });
            }
            while tasks.join_next().await.is_some() {}
        }
        None => {
            let mut workers = tokio::task::JoinSet::new();
            for _ in 0..args.concurrency {
                let (target, uri, body_for, tally) =
                    (target.clone(), uri.clone(), body_for.clone(), tally.clone());
                workers.spawn(async move {
                    // Each worker keeps one connection, and opens another if it breaks.
                    let mut conn: Option<http1::Conn> = None;
                    while Instant::now() < deadline {
                        let t = Instant::now();
                        let outcome = match conn.take() {
                            Some(c) => Ok(c),
                            None => http1::Conn::open(&target).await,
                        };
                        let outcome = match outcome {
                            Ok(mut c) => {
                                let outcome = c.post_form(&target, &uri, body_for()).await;
                                if outcome.is_ok() && c.is_open() {
                                    conn = Some(c);
                                }
                                outcome
                            }
                            Err(e) => {
                                // Don't spin while the server is unreachable.
                                tokio::time::sleep(Duration::from_millis(100)).await;
                                Err(e)
                            }
                        };
                        tally(t, outcome);
                    }
                });
            }
            while workers.join_next().await.is_some() {}
        }
    }
    let elapsed = started.elapsed();
    progress.abort();
    let record = std::mem::take(
        &mut *record
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    (record, elapsed)
}

fn credentials() -> Result<(String, String), String> {
    let from = std::env::var("TOCSIN_GATEWAY_ID")
        .map_err(|_| "set TOCSIN_GATEWAY_ID to the sending gateway ID")?;
    let secret =
        std::env::var("TOCSIN_SECRET").map_err(|_| "set TOCSIN_SECRET to its API secret")?;
    Ok((from, secret))
}

type BodyFn = Box<dyn Fn() -> String + Send + Sync>;

/// The path of `scenario`'s requests, and a fresh body for each.
fn request_body(
    args: &Args,
    scenario: Scenario,
    from: &str,
    secret: &str,
) -> (&'static str, BodyFn) {
    if args.to.is_empty() {
        eprintln!("error: --to RECIPIENT is needed for the send scenarios");
        std::process::exit(2);
    }
    let creds = format!(
        "from={}&secret={secret}&to={}",
        from.replace('*', "%2A"),
        args.to
    );
    match scenario {
        Scenario::SendSimple => (
            "/send_simple",
            Box::new(move || format!("{creds}&text=Your+code+is+482913")),
        ),
        _ => {
            let sealed = hex::encode([0x42u8; 100]);
            (
                "/send_e2e",
                Box::new(move || format!("{creds}&nonce={}&box={sealed}", Nonce::random())),
            )
        }
    }
}

/// An actix-web server in this process answering a 16-character constant.
async fn constant_server() -> std::net::SocketAddr {
    use actix_web::{web, App, HttpResponse, HttpServer};
    let server = HttpServer::new(|| {
        // It takes in the whole body, as any server must, and answers the same.
        App::new().default_service(web::to(|_body: web::Bytes| async {
            HttpResponse::Ok()
                .content_type("text/plain")
                .body("0123456789abcdef")
        }))
    })
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .unwrap_or_else(|e| {
        eprintln!("error: cannot bind the constant server: {e}");
        std::process::exit(1);
    });
    let addr = server.addrs()[0];
    tokio::spawn(server.run());
    addr
}

async fn progress(done: Arc<AtomicU64>, deadline: Instant) {
    let mut last = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    while Instant::now() < deadline {
        tick.tick().await;
        let now = done.load(Ordering::Relaxed);
        eprintln!("  {now:>9} requests  {:>8} /s", now - last);
        last = now;
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

/// Prints the summary table; returns the accepted (200) rate.
fn summary(args: &Args, record: &Record, elapsed: Duration) -> f64 {
    let mut lat = record.latencies_us.clone();
    lat.sort_unstable();
    let n = lat.len();
    let ok = ok_count(record);
    println!("scenario     {:?}", args.scenario);
    match args.rate {
        Some(r) => println!("mode         open loop, {r} requests/s offered"),
        None => println!("mode         closed loop, {} in flight", args.concurrency),
    }
    println!("duration     {:.1} s", elapsed.as_secs_f64());
    println!("requests     {n}");
    println!(
        "accepted/s   {:.0}  (status 200)",
        ok as f64 / elapsed.as_secs_f64()
    );
    println!(
        "latency ms   p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
        percentile(&lat, 0.50),
        percentile(&lat, 0.90),
        percentile(&lat, 0.99),
        percentile(&lat, 1.0)
    );
    for (status, count) in &record.statuses {
        println!("status {status:<6} {count}");
    }
    ok as f64 / elapsed.as_secs_f64()
}
