//! Device acks under SIGKILL: a device enrolled with the SDK receives and acks messages
//! while senders go on; the server is killed mid-stream, started again on the same data,
//! and the device logs in again, several times over.
//!
//! What the device got is tagged with the server that sent it, so every delivery is
//! placed before or after each kill. The database is read while no server runs, which
//! splits the messages charged by then into those still queued (their ack, if the device
//! sent one, was not committed) and those gone from the queue (acked, committed). Then:
//!
//! * a message acked and committed before a kill never comes again after it;
//! * a message still queued at a kill comes again after the restart; at every kill the
//!   device holds back the ack of the last message it got, so there is always one;
//! * every message answered 200 (or charged for a retried key) reaches the device, with
//!   the text sent for its key, and no connection delivers a message twice;
//! * the reconnect and what comes again cost nothing: the balance after the device has
//!   drained its queue is the one at the kill, and each message is charged once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tocsin_sdk::device::{Admission, Connection, DeviceKeys, Directory, Event};
use tocsin_sdk::protocol::{E2eMessage, MessageId};
use tokio::sync::{mpsc, watch};

use super::harness::{
    lock, retry, some, Api, Book, Env, Relay, Rng, Senders, Sent, Task, PATIENCE,
};
use crate::helpers::wait::until_within;

/// Credits the account starts with: more than any run spends.
const INITIAL: u32 = 1_000_000;

/// Kills per run.
const KILLS: u64 = 5;

/// Concurrent senders while the device receives.
const SENDERS: u64 = 8;

/// Which server runs: its number (counting starts) and whether it is still up. The
/// device tags what a connection delivers with the server it connected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Phase {
    server: u64,
    up: bool,
}

/// One message as the device got it.
#[derive(Debug, Clone)]
struct Delivery {
    server: u64,
    connection: u64,
    id: MessageId,
    text: String,
}

#[derive(Debug, Default)]
struct DeviceLog {
    deliveries: Vec<Delivery>,
    rejected: Vec<String>,
    /// Deliveries still to come before the device holds back an ack and calls for the
    /// kill.
    tripwire: Option<u64>,
}

impl DeviceLog {
    /// The messages delivered by server `server` or a later one.
    fn delivered_since(&self, server: u64) -> BTreeSet<MessageId> {
        self.deliveries
            .iter()
            .filter(|d| d.server >= server)
            .map(|d| d.id)
            .collect()
    }
}

/// What the database said about the device's messages at one kill.
struct Kill {
    /// The server that was killed.
    server: u64,
    /// Still queued, with no `delivered` event: not acked, or the ack was not committed.
    queued: BTreeSet<MessageId>,
    /// Charged and gone from the queue, or recorded as delivered: the device's ack was
    /// committed.
    acked: BTreeSet<MessageId>,
}

/// The device: connects (again) whenever a server is up, records every message with
/// the server that delivered it, and acks it at once, except the one on which the
/// tripwire fires, whose ack waits until that server is dead.
async fn run_device(
    keys: DeviceKeys,
    directory: Directory,
    mut phase: watch::Receiver<Phase>,
    log: Arc<Mutex<DeviceLog>>,
    tripped: mpsc::UnboundedSender<MessageId>,
) {
    let mut connections = 0u64;
    loop {
        let Ok(now) = phase.wait_for(|p| p.up).await.map(|p| *p) else {
            return;
        };
        let connected = Connection::connect(&keys, &directory).await;
        if *phase.borrow() != now {
            // A server died or started meanwhile: which one answered is not known.
            continue;
        }
        let Ok(mut connection) = connected else {
            // Backoff before the next attempt; a change of server ends it early.
            let _ = tokio::time::timeout(Duration::from_millis(20), phase.changed()).await;
            continue;
        };
        connections += 1;
        loop {
            match connection.next_event().await {
                Ok(Event::Message(m)) => {
                    let text = match &m.message {
                        E2eMessage::Text(text) => text.clone(),
                        other => format!("{other:?}"),
                    };
                    let hold = {
                        let mut log = lock(&log);
                        log.deliveries.push(Delivery {
                            server: now.server,
                            connection: connections,
                            id: m.message_id,
                            text,
                        });
                        match log.tripwire.as_mut() {
                            Some(left) if *left <= 1 => {
                                log.tripwire = None;
                                true
                            }
                            Some(left) => {
                                *left -= 1;
                                false
                            }
                            None => false,
                        }
                    };
                    if hold {
                        let _ = tripped.send(m.message_id);
                        if phase.wait_for(|p| *p != now).await.is_err() {
                            return;
                        }
                    }
                    if connection.ack(&m).await.is_err() {
                        break;
                    }
                }
                Ok(Event::Rejected(rejected)) => lock(&log).rejected.push(format!("{rejected:?}")),
                Ok(Event::Closed { .. }) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_acks_survive_a_sigkill() {
    let env = Env::new().await;
    let mut rng = Rng::seeded(&format!("device acks on {:?}", env.engine()));
    let gateway = env.gateway(INITIAL).await;
    let relay = Relay::start().await;
    let mut server = env.serve().await;
    relay.point_to(server.http);
    let keys = DeviceKeys::init(&relay.url(), Admission::Open, None)
        .await
        .unwrap();
    let me = keys.identity;
    let mut directory = keys.directory().unwrap();
    directory.pin(*gateway.id.as_identity(), gateway.public_key);
    let (phase, watching) = watch::channel(Phase {
        server: 0,
        up: true,
    });
    let log = Arc::new(Mutex::new(DeviceLog::default()));
    let (tripped, mut trips) = mpsc::unbounded_channel();
    let _device = Task(tokio::spawn(run_device(
        keys,
        directory,
        watching,
        log.clone(),
        tripped,
    )));

    let mut book = Book::default();
    let mut kills = Vec::new();
    for round in 0..KILLS {
        let api = Api::new(server.http, &gateway);
        let hold_at = rng.between(20, 120);
        lock(&log).tripwire = Some(hold_at);
        let senders = Senders::start(&api, me, &format!("k{round}"), SENDERS, u64::MAX);
        let held = tokio::time::timeout(PATIENCE, trips.recv()).await;
        let server_log = server.log_tail();
        server.kill();
        phase.send_replace(Phase {
            server: round,
            up: false,
        });
        let burst = senders.stop().await;
        let held = held
            .unwrap_or_else(|_| {
                panic!(
                    "the device did not get {hold_at} messages; refused: {}\n{server_log}",
                    some(&burst.refused)
                )
            })
            .expect("the device runs");
        assert!(
            burst.refused.is_empty(),
            "requests refused: {}",
            some(&burst.refused)
        );
        for (key, id) in &burst.answered {
            book.resolve(key, *id);
        }

        // The database as the kill left it.
        let db = env.database_after_kill().await;
        let ledger = db.ledger(i64::from(INITIAL)).await;
        let in_queue = db.queued_for(&me).await;
        let delivered = db.delivered_to(&me).await;
        db.close().await;
        let lost: Vec<_> = book.ids().difference(&ledger.charged).copied().collect();
        assert!(
            lost.is_empty(),
            "messages answered 200 before kill {round} are not charged after it: {}",
            some(&lost)
        );
        let kill = Kill {
            server: round,
            queued: in_queue.difference(&delivered).copied().collect(),
            acked: ledger
                .charged
                .difference(&in_queue)
                .chain(&delivered)
                .copied()
                .collect(),
        };
        assert!(
            kill.queued.contains(&held),
            "the message {held}, whose ack the device held back, is still queued"
        );
        println!(
            "kill {}: held back the ack at delivery {hold_at}; {} answered, {} without an \
             answer; {} messages still queued",
            kill.server,
            burst.answered.len(),
            burst.unanswered.len(),
            kill.queued.len()
        );

        server = env.serve().await;
        relay.point_to(server.http);
        phase.send_replace(Phase {
            server: kill.server + 1,
            up: true,
        });
        let api = Api::new(server.http, &gateway);

        // The device logs in again and gets what was queued at the kill, and nothing it
        // had acked; its acks of what came again are committed. Nothing is sent meanwhile.
        until_within(
            PATIENCE,
            "the messages queued at the kill come again",
            || {
                let log = lock(&log);
                let done = kill.queued.is_subset(&log.delivered_since(kill.server + 1))
                    || !replayed(&log, &kill).is_empty();
                async move { done }
            },
        )
        .await;
        let again = replayed(&lock(&log), &kill);
        assert!(
            again.is_empty(),
            "acked and committed before kill {}, delivered again after it: {}",
            kill.server,
            some(&again)
        );
        let db = env.database().await;
        until_within(PATIENCE, "the device's queue is empty", || async {
            db.queued_for(&me).await.is_empty()
        })
        .await;
        db.close().await;
        assert_eq!(
            api.credits().await,
            ledger.balance,
            "the reconnect and the messages that came again cost nothing"
        );

        kills.push(kill);

        // Answered keys give their message again; the others are answered now.
        let answered = burst.answered.iter().map(|(key, _)| key.clone());
        let keys = answered.chain(burst.unanswered.iter().cloned());
        for (key, sent) in retry(&api, me, keys).await {
            let Sent::Accepted(id) = sent else {
                panic!("the retry of {key} after the restart: {sent:?}");
            };
            book.resolve(&key, id);
        }
    }

    // Everything sent reaches the device, and is acked.
    let ids = book.ids();
    until_within(PATIENCE, "every message sent reaches the device", || {
        let delivered = lock(&log).delivered_since(0);
        let done = ids.is_subset(&delivered);
        async move { done }
    })
    .await;
    let db = env.database().await;
    until_within(PATIENCE, "the device's queue is empty", || async {
        db.queued_for(&me).await.is_empty()
    })
    .await;
    let ledger = db.ledger(i64::from(INITIAL)).await;
    db.close().await;
    assert_eq!(ledger.charged, ids, "one charged message per key");
    let api = Api::new(server.http, &gateway);
    assert_eq!(api.credits().await, ledger.balance);
    assert_eq!(ledger.balance, i64::from(INITIAL) - ids.len() as i64);
    for id in &ids {
        assert_eq!(
            api.state(id).await.as_deref(),
            Some("delivered"),
            "message {id} in the end"
        );
    }

    let log = std::mem::take(&mut *lock(&log));
    check_deliveries(&log, &kills, &book);
    drop(server);
}

/// The deliveries after `kill` of messages acked and committed before it.
fn replayed(log: &DeviceLog, kill: &Kill) -> Vec<Delivery> {
    log.deliveries
        .iter()
        .filter(|d| d.server > kill.server && kill.acked.contains(&d.id))
        .cloned()
        .collect()
}

/// The deliveries against what the database said at each kill.
fn check_deliveries(log: &DeviceLog, kills: &[Kill], book: &Book) {
    assert!(log.rejected.is_empty(), "rejected: {}", some(&log.rejected));
    let mut per_connection: BTreeMap<(u64, MessageId), usize> = BTreeMap::new();
    for d in &log.deliveries {
        let key = book
            .key_of(&d.id)
            .unwrap_or_else(|| panic!("the device got {}, which nobody sent", d.id));
        assert_eq!(d.text, format!("alert {key}"), "the text of {}", d.id);
        *per_connection.entry((d.connection, d.id)).or_default() += 1;
    }
    let twice: Vec<_> = per_connection.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "messages delivered twice on one connection: {}",
        some(&twice)
    );

    let (mut acked_then, mut again) = (0, 0);
    for kill in kills {
        let replayed = replayed(log, kill);
        assert!(
            replayed.is_empty(),
            "acked and committed before kill {}, delivered again after it: {}",
            kill.server,
            some(&replayed)
        );
        for id in &kill.queued {
            assert!(
                log.deliveries
                    .iter()
                    .any(|d| d.server > kill.server && d.id == *id),
                "{id} was still queued at kill {} and never came again",
                kill.server
            );
        }
        let before: BTreeSet<MessageId> = log
            .deliveries
            .iter()
            .filter(|d| d.server == kill.server)
            .map(|d| d.id)
            .collect();
        acked_then += before.intersection(&kill.acked).count();
        again += before.intersection(&kill.queued).count();
    }
    println!(
        "{acked_then} messages delivered and acked before the kill that ended their server; \
         {again} delivered but not acked in time, which came again"
    );
    // Both checks above had something to check.
    assert!(acked_then > 0 && again >= kills.len());
}
