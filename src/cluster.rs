//! Wake-ups across the nodes that share one PostgreSQL database.
//!
//! A node's hub wakes its own sessions and dispatcher when it commits something; the
//! others would only find it at their next look at the store. So every wake-up is also
//! relayed: the hub's [`Relay`] hands it to a publishing task, which batches whatever arrived
//! meanwhile into `NOTIFY`s (PostgreSQL delivers them at once to every listening
//! connection), and each node's listening task wakes its own sessions and dispatcher with
//! what the others published.
//!
//! Channels and payloads: `tocsin_queue` carries `<node>:<ID>,<ID>,…` (messages were
//! queued for these identities), at most [`MAX_PAYLOAD`] bytes, so a large batch is
//! several notifications; `tocsin_callbacks` and `tocsin_statuses` carry `<node>`
//! (callback entries or status events were stored); `tocsin_signals` carries
//! `<node>:<ID>:<hex frame>` (a frame for that identity's sessions: an alarm's ring or
//! stop). `<node>` is this process's random tag: a node skips its own notifications.
//!
//! A notification is a hint, never the data: the store stays the truth. When the
//! listening connection drops, notifications sent meanwhile are lost, so until it is back
//! the node wakes everything every [`FALLBACK_POLL`], and once it is back it wakes
//! everything once more; the log says so, and `tocsin_cluster_listening` (0 or 1) and
//! `tocsin_cluster_listener_lost_total` show it. A connection dropped without a word (by a
//! NAT or a proxy) is found by the node's own heartbeat ([`HEARTBEAT_CHANNEL`]), which it
//! must hear every [`HEARTBEAT_EVERY`].

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgListener, PgNotification};
use tocsin_sdk::protocol::csp::Payload;
use tocsin_sdk::protocol::IdentityId;
use tokio::sync::mpsc;

use crate::hub::{Hub, Relay, Relayed};
use crate::metrics::Metrics;
use crate::store::{Outbox, Store};

/// Messages were queued for the identities in the payload.
pub const QUEUE_CHANNEL: &str = "tocsin_queue";
/// Callback entries were stored.
pub const CALLBACK_CHANNEL: &str = "tocsin_callbacks";
/// Status events were stored.
pub const STATUS_CHANNEL: &str = "tocsin_statuses";
/// A frame for the sessions of one identity: `<node>:<ID>:<hex of type byte and data>`.
pub const SIGNAL_CHANNEL: &str = "tocsin_signals";
/// Each node's heartbeat, which it must hear itself: a listening connection that a NAT or
/// a proxy dropped without a word hears nothing, and is then made again.
pub const HEARTBEAT_CHANNEL: &str = "tocsin_heartbeat";
/// How often a node sends its heartbeat.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(20);
/// How long a listening connection may go without hearing its node's heartbeat.
const HEARTBEAT_PATIENCE: Duration = Duration::from_secs(50);
/// Bytes of one payload at most (PostgreSQL's limit is 8000).
pub const MAX_PAYLOAD: usize = 7_900;
/// While the listening connection is down, everything is looked at this often.
pub const FALLBACK_POLL: Duration = Duration::from_secs(5);
/// Longest wait between attempts to listen again.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Starts relaying `hub`'s wake-ups to the other nodes on the database at `url`, and
/// waking `hub` with theirs; returns the tasks, which run until aborted.
pub fn start(
    store: Store,
    url: String,
    hub: Arc<Hub>,
    metrics: Arc<Metrics>,
) -> [tokio::task::JoinHandle<()>; 3] {
    let node = format!("{:016x}", rand_tag());
    let (tx, rx) = mpsc::unbounded_channel();
    hub.set_relay(Relay::new(tx));
    [
        tokio::spawn(publish(store.clone(), node.clone(), rx)),
        tokio::spawn(heartbeat(store, node.clone())),
        tokio::spawn(listen(url, node, hub, metrics)),
    ]
}

/// Sends this node's heartbeat every [`HEARTBEAT_EVERY`].
async fn heartbeat(store: Store, node: String) {
    let mut every = tokio::time::interval(HEARTBEAT_EVERY);
    loop {
        every.tick().await;
        if let Err(e) = store.notify(HEARTBEAT_CHANNEL, &node).await {
            tracing::debug!("cannot send this node's heartbeat: {e}");
        }
    }
}

/// A random tag for this process.
fn rand_tag() -> u64 {
    let id = tocsin_sdk::protocol::MessageId::random();
    u64::from_le_bytes(*id.as_bytes())
}

/// The queue payloads for `ids` from `node`, each within [`MAX_PAYLOAD`].
fn queue_payloads(node: &str, ids: &BTreeSet<IdentityId>) -> Vec<String> {
    let mut payloads = Vec::new();
    let mut current = String::new();
    for id in ids {
        if !current.is_empty() && current.len() + 1 + IdentityId::LEN > MAX_PAYLOAD {
            payloads.push(std::mem::take(&mut current));
        }
        if current.is_empty() {
            current.push_str(node);
            current.push(':');
        } else {
            current.push(',');
        }
        current.push_str(id.as_str());
    }
    if !current.is_empty() {
        payloads.push(current);
    }
    payloads
}

/// Sends what the hub relays, batching what arrived while the last batch went out.
async fn publish(store: Store, node: String, mut rx: mpsc::UnboundedReceiver<Relayed>) {
    while let Some(first) = rx.recv().await {
        let mut ids = BTreeSet::new();
        let mut outboxes = BTreeSet::new();
        let mut signals = Vec::new();
        let mut take = |wake| match wake {
            Relayed::Identity(id) => {
                ids.insert(id);
            }
            Relayed::Outbox(outbox) => {
                outboxes.insert(channel_of(outbox));
            }
            Relayed::Signal(id, payload) => signals.push(signal_payload(&node, &id, &payload)),
        };
        take(first);
        while let Ok(wake) = rx.try_recv() {
            take(wake);
        }
        for payload in queue_payloads(&node, &ids) {
            if let Err(e) = store.notify(QUEUE_CHANNEL, &payload).await {
                tracing::warn!("cannot tell the other nodes about queued messages: {e}");
            }
        }
        for signal in signals.into_iter().flatten() {
            if let Err(e) = store.notify(SIGNAL_CHANNEL, &signal).await {
                tracing::warn!("cannot hand a signal to the other nodes: {e}");
            }
        }
        for channel in outboxes {
            if let Err(e) = store.notify(channel, &node).await {
                tracing::warn!("cannot tell the other nodes about new entries ({channel}): {e}");
            }
        }
    }
}

/// The notification that carries a signal for `id`'s sessions to the other nodes; `None`
/// for a payload too large for one (the signals are a few dozen bytes).
fn signal_payload(node: &str, id: &IdentityId, payload: &Payload) -> Option<String> {
    let Payload::Unknown { kind, data } = payload else {
        return None;
    };
    let text = format!("{node}:{id}:{kind:02x}{}", hex::encode(data));
    (text.len() <= MAX_PAYLOAD).then_some(text)
}

/// The identity and frame of another node's signal; `None` for this node's own or a
/// malformed one.
fn read_signal(node: &str, text: &str) -> Option<(IdentityId, Payload)> {
    let mut parts = text.splitn(3, ':');
    let (from, id, frame) = (parts.next()?, parts.next()?, parts.next()?);
    if from == node {
        return None;
    }
    let id = IdentityId::parse(id).ok()?;
    let bytes = hex::decode(frame).ok()?;
    let (kind, data) = bytes.split_first()?;
    Some((
        id,
        Payload::Unknown {
            kind: *kind,
            data: data.to_vec(),
        },
    ))
}

/// The channel that carries wake-ups for `outbox`.
fn channel_of(outbox: Outbox) -> &'static str {
    match outbox {
        Outbox::Callbacks => CALLBACK_CHANNEL,
        Outbox::Statuses => STATUS_CHANNEL,
    }
}

/// What a notification from another node asks of this one.
fn handle(node: &str, notification: &PgNotification, hub: &Hub) {
    let payload = notification.payload();
    match notification.channel() {
        QUEUE_CHANNEL => {
            let Some((from, ids)) = payload.split_once(':') else {
                return;
            };
            if from == node {
                return;
            }
            for id in ids.split(',').filter_map(|raw| IdentityId::parse(raw).ok()) {
                hub.wake_here(&id);
            }
        }
        CALLBACK_CHANNEL if payload != node => hub.outbox_filled_here(Outbox::Callbacks),
        STATUS_CHANNEL if payload != node => hub.outbox_filled_here(Outbox::Statuses),
        SIGNAL_CHANNEL => {
            if let Some((id, frame)) = read_signal(node, payload) {
                hub.signal_here(&id, &frame);
            }
        }
        _ => {}
    }
}

/// Listens for the other nodes' wake-ups for as long as the process runs.
async fn listen(url: String, node: String, hub: Arc<Hub>, metrics: Arc<Metrics>) {
    let mut backoff = Duration::from_millis(100);
    let mut was_listening = false;
    loop {
        let connected = async {
            let mut listener = PgListener::connect(&url).await?;
            // A lost connection is made again here, with a pause, not inside sqlx.
            listener.eager_reconnect(false);
            listener
                .listen_all([
                    QUEUE_CHANNEL,
                    CALLBACK_CHANNEL,
                    STATUS_CHANNEL,
                    SIGNAL_CHANNEL,
                    HEARTBEAT_CHANNEL,
                ])
                .await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = match connected.await {
            Ok(listener) => listener,
            Err(e) => {
                tracing::warn!(
                    retry_in_ms = backoff.as_millis() as u64,
                    "cannot listen for the other nodes' wake-ups ({e}); looking at the \\
                     store every {} s meanwhile",
                    FALLBACK_POLL.as_secs()
                );
                wait_polling(&hub, backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        metrics.cluster_listening.set(1);
        if was_listening {
            tracing::info!("listening for the other nodes' wake-ups again");
        }
        // Whatever was sent before this connection listened is looked for in the store.
        hub.wake_everything_here();
        was_listening = true;
        let mut heard = tokio::time::Instant::now();
        let lost = loop {
            let silence = tokio::time::sleep_until(heard + HEARTBEAT_PATIENCE);
            tokio::select! {
                received = listener.try_recv() => match received {
                    Ok(Some(n)) if n.channel() == HEARTBEAT_CHANNEL => {
                        if n.payload() == node {
                            heard = tokio::time::Instant::now();
                            // A connection that carries heartbeats is a sound one.
                            backoff = Duration::from_millis(100);
                        }
                    }
                    Ok(Some(n)) => handle(&node, &n, &hub),
                    Ok(None) => break "the connection was lost".to_owned(),
                    Err(e) => break e.to_string(),
                },
                () = silence => break format!(
                    "this node's heartbeat was not heard for {} s",
                    HEARTBEAT_PATIENCE.as_secs()
                ),
            }
        };
        metrics.cluster_listener_lost.inc();
        tracing::warn!(
            "listening for the other nodes' wake-ups stopped ({lost}); listening again, \
             and looking at the store meanwhile"
        );
        hub.wake_everything_here();
        metrics.cluster_listening.set(0);
        // A connection that is lost again and again is made again less and less often.
        wait_polling(&hub, backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Waits `pause`, waking everything on this node every [`FALLBACK_POLL`] meanwhile.
async fn wait_polling(hub: &Hub, pause: Duration) {
    let until = tokio::time::Instant::now() + pause;
    loop {
        hub.wake_everything_here();
        let next = tokio::time::Instant::now() + FALLBACK_POLL;
        if next >= until {
            tokio::time::sleep_until(until).await;
            return;
        }
        tokio::time::sleep_until(next).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_crosses_as_text_and_is_read_back_by_the_other_nodes_only() {
        let id = IdentityId::parse("ALICE123").unwrap();
        let frame = Payload::Unknown {
            kind: 0x45,
            data: vec![1, 2, 3, 0xff],
        };
        let text = signal_payload("aaaa", &id, &frame).unwrap();
        assert_eq!(text, "aaaa:ALICE123:45010203ff");
        assert_eq!(read_signal("bbbb", &text), Some((id, frame)));
        assert_eq!(read_signal("aaaa", &text), None, "a node skips its own");
        for bad in [
            "bbbb:ALICE123:zz",
            "bbbb:alice:45",
            "bbbb:ALICE123:",
            "nonsense",
        ] {
            assert_eq!(read_signal("aaaa", bad), None, "{bad}");
        }
    }

    #[test]
    fn payloads_stay_under_the_limit_and_carry_every_id() {
        let ids: BTreeSet<IdentityId> = (0..2_000)
            .map(|i| IdentityId::parse(&format!("ID{i:06}")).unwrap())
            .collect();
        let payloads = queue_payloads("00000000000000aa", &ids);
        assert!(payloads.len() > 1);
        let mut seen = BTreeSet::new();
        for payload in &payloads {
            assert!(payload.len() <= MAX_PAYLOAD, "{}", payload.len());
            let (node, list) = payload.split_once(':').unwrap();
            assert_eq!(node, "00000000000000aa");
            seen.extend(list.split(',').map(|id| IdentityId::parse(id).unwrap()));
        }
        assert_eq!(seen, ids);
        assert!(queue_payloads("n", &BTreeSet::new()).is_empty());
    }
}
