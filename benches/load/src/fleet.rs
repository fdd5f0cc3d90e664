//! Many simulated devices at once, for the device scenarios of `tocsin-load`: identities
//! created concurrently through `POST /api/v1/identities`, logins concurrently over the
//! real chat protocol, and the server's memory and descriptors read from `/proc`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tocsin_sdk::device::{Admission, Connection, DeviceKeys, Directory, Event};
use tocsin_sdk::protocol::csp::CspDeviceId;
use tocsin_sdk::protocol::{IdentityId, PublicKey, SecretKey};
use tokio::task::JoinSet;

/// Requests in flight while creating identities and logging devices in.
pub const IN_FLIGHT: usize = 64;

/// Prints `message` as one line and exits with status 1 (a failed run, not a usage
/// mistake).
pub fn fail(message: impl std::fmt::Display) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1)
}

/// Prints `message` as one line and exits with status 2 (a usage mistake).
pub fn usage(message: impl std::fmt::Display) -> ! {
    eprintln!("error: {message}");
    std::process::exit(2)
}

/// What a scenario's device loop does with the events it has no use for: a message it
/// cannot open is acked away (so it is not sent again) and reported; `false` when the
/// connection is closed or lost and the loop should end.
pub async fn settle_other(connection: &mut Connection, event: Event) -> bool {
    match event {
        Event::Rejected(r) => {
            eprintln!("a device could not open a message: {}", r.reason);
            connection.ack_rejected(&r).await.is_ok()
        }
        Event::Closed { .. } => false,
        _ => true,
    }
}

/// The server under test, as the devices see it.
pub struct Fleet {
    url: String,
    server_key: PublicKey,
    /// Shared by every connection: one cache, and the pinned sender keys.
    pub directory: Directory,
}

impl Fleet {
    /// Fetches the server's chat key once (every device pins the same one).
    pub async fn new(url: &str) -> Self {
        let directory = Directory::new(url).unwrap_or_else(|e| usage(format!("--url: {e}")));
        let server_key = directory
            .server_key()
            .await
            .unwrap_or_else(|e| fail(format!("cannot reach the server at {url}: {e}")));
        Self {
            url: url.to_owned(),
            server_key,
            directory,
        }
    }

    /// Pins the key of a sender (a gateway ID), so no device asks the directory for it.
    pub async fn pin_sender(&mut self, sender: IdentityId, key: Option<PublicKey>) {
        let key = match key {
            Some(key) => key,
            None => match self.directory.lookup(&sender).await {
                Ok(Some(key)) => key,
                Ok(None) => fail(format!("the server does not know {sender}")),
                Err(e) => fail(format!("cannot look up {sender}: {e}")),
            },
        };
        self.directory.pin(sender, key);
    }

    /// Creates `n` device identities, [`IN_FLIGHT`] at a time. Uses its own HTTP client,
    /// dropped at the end, so no idle connection of the enrolment stays open on the
    /// server.
    pub async fn enrol(&self, n: usize) -> Vec<DeviceKeys> {
        let directory = Directory::new(&self.url).unwrap_or_else(|e| fail(e));
        let started = Instant::now();
        let done = Arc::new(AtomicUsize::new(0));
        let progress = tokio::spawn(report_progress("identities created", done.clone(), n));
        let mut tasks = JoinSet::new();
        let mut keys = Vec::with_capacity(n);
        let mut next = 0;
        while next < n || !tasks.is_empty() {
            while next < n && tasks.len() < IN_FLIGHT {
                let (directory, done) = (directory.clone(), done.clone());
                tasks.spawn(async move {
                    let secret = SecretKey::generate();
                    let created = directory
                        .create_identity(&secret.public_key(), Admission::Open)
                        .await;
                    done.fetch_add(1, Ordering::Relaxed);
                    created.map(|identity| (identity, secret))
                });
                next += 1;
            }
            match tasks.join_next().await {
                Some(Ok(Ok((identity, secret_key)))) => keys.push(DeviceKeys {
                    identity,
                    secret_key,
                    server_key: self.server_key,
                    server_url: directory.base_url().to_owned(),
                    device_id: CspDeviceId::random(),
                }),
                Some(Ok(Err(e))) => fail(format!(
                    "cannot create a device identity: {e} \
                     (start the server with TOCSIN__DIRECTORY__IDENTITIES_PER_IP_PER_HOUR=0)"
                )),
                Some(Err(e)) => fail(format!("identity creation task: {e}")),
                None => {}
            }
        }
        progress.abort();
        let elapsed = started.elapsed().as_secs_f64();
        eprintln!(
            "created {n} identities in {elapsed:.1} s ({:.0}/s)",
            n as f64 / elapsed.max(1e-9)
        );
        keys
    }

    /// Logs every device in, [`IN_FLIGHT`] at a time, and hands each connection to
    /// `serve` (called with the device's index in `keys`) as soon as it is up. Returns
    /// when all are logged in.
    pub async fn connect_all<F>(&self, keys: &[DeviceKeys], keepalive: Duration, serve: F)
    where
        F: Fn(usize, Connection) + Clone + Send + 'static,
    {
        let started = Instant::now();
        let done = Arc::new(AtomicUsize::new(0));
        let progress = tokio::spawn(report_progress(
            "devices logged in",
            done.clone(),
            keys.len(),
        ));
        let mut tasks = JoinSet::new();
        let mut next = 0;
        while next < keys.len() || !tasks.is_empty() {
            while next < keys.len() && tasks.len() < IN_FLIGHT {
                let (keys, directory, done, serve) = (
                    keys[next].clone(),
                    self.directory.clone(),
                    done.clone(),
                    serve.clone(),
                );
                let index = next;
                tasks.spawn(async move {
                    let mut connection = Connection::connect(&keys, &directory).await?;
                    connection.set_keepalive(keepalive);
                    serve(index, connection);
                    done.fetch_add(1, Ordering::Relaxed);
                    Ok::<(), tocsin_sdk::device::DeviceError>(())
                });
                next += 1;
            }
            match tasks.join_next().await {
                Some(Ok(Err(e))) => fail(format!(
                    "cannot log device {} in: {e}",
                    done.load(Ordering::Relaxed) + 1
                )),
                Some(Err(e)) => fail(format!("login task: {e}")),
                Some(Ok(Ok(()))) | None => {}
            }
        }
        progress.abort();
        let elapsed = started.elapsed().as_secs_f64();
        eprintln!(
            "logged {} devices in in {elapsed:.1} s ({:.0}/s)",
            keys.len(),
            keys.len() as f64 / elapsed.max(1e-9)
        );
    }
}

/// One line per second: how far a long setup step has come.
async fn report_progress(what: &'static str, done: Arc<AtomicUsize>, total: usize) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tick.tick().await;
        eprintln!("  {:>7} of {total} {what}", done.load(Ordering::Relaxed));
    }
}

/// Waits until `count` reaches `target` or `limit` passes; returns whether it did.
pub async fn wait_for(count: &AtomicUsize, target: usize, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while count.load(Ordering::Relaxed) < target {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// A process's resident memory, open file descriptors and CPU time so far.
#[derive(Debug, Clone, Copy)]
pub struct Footprint {
    pub rss_kib: u64,
    pub fds: usize,
    /// User and system time, in clock ticks (1/100 s on Linux).
    pub cpu_ticks: u64,
    pub at: Instant,
}

impl Footprint {
    /// Reads `/proc/<pid>/status` (`VmRSS`) and counts `/proc/<pid>/fd`.
    pub fn of(pid: u32) -> Result<Self, String> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .map_err(|e| format!("cannot read /proc/{pid}/status: {e}"))?;
        let rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| format!("no VmRSS in /proc/{pid}/status"))?;
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map_err(|e| format!("cannot list /proc/{pid}/fd: {e}"))?
            .count();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_err(|e| format!("cannot read /proc/{pid}/stat: {e}"))?;
        // The fields after the command name (which is in parentheses and may hold spaces);
        // utime and stime are fields 14 and 15 of the whole line.
        let cpu_ticks = stat
            .rsplit_once(')')
            .map(|(_, rest)| {
                rest.split_whitespace()
                    .skip(11)
                    .take(2)
                    .filter_map(|v| v.parse::<u64>().ok())
                    .sum()
            })
            .unwrap_or(0);
        Ok(Self {
            rss_kib,
            fds,
            cpu_ticks,
            at: Instant::now(),
        })
    }

    /// Share of one core the process used between `earlier` and this reading.
    pub fn cpu_since(&self, earlier: &Self) -> f64 {
        let ticks = self.cpu_ticks.saturating_sub(earlier.cpu_ticks) as f64;
        let secs = self.at.saturating_duration_since(earlier.at).as_secs_f64();
        ticks / 100.0 / secs.max(1e-9)
    }
}

/// The soft limit on open files of a process (`/proc/<pid>/limits`), if readable.
pub fn open_files_limit(pid: &str) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Refuses to start when this process or the server cannot hold `devices` sockets.
pub fn check_fd_limits(devices: usize, server_pid: Option<u32>) {
    let needed = devices as u64 + 256;
    let mut who = vec![("this process".to_owned(), "self".to_owned())];
    if let Some(pid) = server_pid {
        who.push((format!("the server (pid {pid})"), pid.to_string()));
    }
    for (name, pid) in who {
        if let Some(limit) = open_files_limit(&pid) {
            if limit < needed {
                usage(format!(
                    "{name} may open {limit} files, {devices} devices need about {needed}: \
                     run `ulimit -n {needed}` (or more, up to `ulimit -Hn`) in the shell that \
                     starts it"
                ));
            }
        }
    }
}
