//! One device connection: the handshake, then the framed session.
//!
//! Transport: every WebSocket binary message carries exactly one protocol unit, namely a
//! handshake message (client-hello 48 bytes, login 144 bytes plus its extensions box) or a
//! frame (u16-le length ‖ box). A message over [`MAX_WS_MESSAGE`] closes the connection
//! before it is buffered.
//!
//! After login the session delivers the device's queue in order, then
//! `queue-send-complete`, then live messages as they are committed (the hub wakes it; a
//! periodic re-check covers wake-ups from other nodes). Outgoing messages are stored
//! before they are acknowledged. A device that does not drain its frames within
//! `link::SEND_TIMEOUT` is disconnected: it slows nobody else and resumes from the durable
//! queue on reconnect.

use std::time::Duration;

use actix_ws::{CloseCode, CloseReason, Message, MessageStream, Session as WsSession};
use futures_util::future::{join_all, FutureExt};
use tocsin_sdk::protocol::csp::{Opener, Payload, ServerHandshake};
use tocsin_sdk::protocol::{IdentityId, MessageId};

use super::deliver::{deliver_announced, deliver_pending, handle_outgoing, Outcome};
use super::link::{ack, End, Limit, Link};
use crate::domain::UnixMs;
use crate::state::AppState;
use crate::store::{DeliveryMode, Device};

/// Largest WebSocket message accepted: one maximal frame (2 + 8192 bytes).
pub const MAX_WS_MESSAGE: usize = 2 + 8192;
/// Time a client has for each handshake step.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A re-check timer whose first tick falls at a random point of the first period, so
/// sessions that logged in together (after a restart, say) do not poll in lockstep.
fn poll_timer(period: Duration) -> tokio::time::Interval {
    let fraction = f64::from(u32::try_from(rand_token() >> 32).unwrap_or(0)) / f64::from(u32::MAX);
    let offset = period.mul_f64(fraction);
    let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    timer
}

/// Most acks of one connection committed together.
const ACK_BATCH: usize = 256;

/// A device's ack: the message's sender and ID.
type Ack = (IdentityId, MessageId);

async fn next_binary(stream: &mut MessageStream, ws: &mut WsSession) -> Result<Vec<u8>, End> {
    loop {
        match stream.recv().await {
            Some(Ok(Message::Binary(bytes))) => return Ok(bytes.to_vec()),
            Some(Ok(Message::Ping(p))) => {
                ws.pong(&p).await.map_err(|_| End::Closed)?;
            }
            Some(Ok(Message::Pong(_))) => {}
            Some(Ok(Message::Close(_))) | None => return Err(End::Closed),
            Some(Ok(_)) => return Err(End::Refused("text or continuation message")),
            Some(Err(e)) => return Err(End::Aborted(format!("websocket: {e}"))),
        }
    }
}

async fn handshake_step(stream: &mut MessageStream, ws: &mut WsSession) -> Result<Vec<u8>, End> {
    tokio::time::timeout(HANDSHAKE_TIMEOUT, next_binary(stream, ws))
        .await
        .map_err(|_| End::Refused("handshake timed out"))?
}

/// Runs the handshake; returns the logged-in link and the receiving half.
async fn login(
    state: &AppState,
    ws: &mut WsSession,
    stream: &mut MessageStream,
) -> Result<(Link, Opener), End> {
    let mut handshake = ServerHandshake::new(&state.server_key.secret);
    let hello = handshake_step(stream, ws).await?;
    let server_hello = handshake
        .on_client_hello(&hello)
        .map_err(|_| End::Refused("bad client-hello"))?;
    ws.binary(server_hello).await.map_err(|_| End::Closed)?;
    let login = handshake_step(stream, ws).await?;
    let request = handshake
        .on_login(&login)
        .map_err(|_| End::Refused("bad login"))?;
    let record = state
        .store
        .identity(&request.identity)
        .await
        .map_err(|e| End::Failed(e.to_string()))?
        .filter(|r| !r.revoked && !r.id.is_gateway())
        .ok_or(End::Refused("unknown or revoked identity"))?;
    let (ack, session) = handshake
        .accept(&record.public_key)
        .map_err(|_| End::Refused("vouch does not match"))?;
    let device_id = request.extensions.device_id.map_or(0, |d| d.get());
    let max_devices = state.settings.chat.devices_per_identity;
    let device = state
        .store
        .register_device(&record.id, device_id, max_devices, UnixMs::now())
        .await
        .map_err(|e| End::Failed(e.to_string()))?
        .ok_or_else(|| Limit::Devices.end(state))?;
    ws.binary(ack).await.map_err(|_| End::Closed)?;
    let (sealer, opener) = session.split();
    Ok((
        Link {
            ws: ws.clone(),
            sealer,
            device,
        },
        opener,
    ))
}

/// Serves one connection until it closes.
pub async fn run(state: AppState, mut ws: WsSession, stream: MessageStream) {
    let mut stream = stream.max_frame_size(MAX_WS_MESSAGE);
    let end = match login(&state, &mut ws, &mut stream).await {
        Ok((link, opener)) => serve(&state, link, opener, &mut stream).await,
        Err(end) => end,
    };
    let (code, description) = match &end {
        End::Closed => (CloseCode::Normal, "closed"),
        End::Aborted(_) => (CloseCode::Abnormal, "connection broke off"),
        End::Refused(why) => (CloseCode::Policy, *why),
        End::Stuck => (CloseCode::Again, "device too slow"),
        End::Idle => (CloseCode::Normal, "idle timeout"),
        End::Failed(_) => (CloseCode::Error, "internal error"),
    };
    match &end {
        End::Failed(why) => tracing::warn!("chat session failed: {why}"),
        End::Aborted(why) => tracing::debug!("chat connection broke off: {why}"),
        other => tracing::debug!(?other, "chat session ended"),
    }
    let _ = ws
        .close(Some(CloseReason {
            code,
            description: Some(description.into()),
        }))
        .await;
}

async fn serve(
    state: &AppState,
    mut link: Link,
    mut opener: Opener,
    stream: &mut MessageStream,
) -> End {
    let identity = link.device.identity;
    let max_sessions = state.settings.chat.sessions_per_identity;
    let joined = state
        .hub
        .join(identity, link.device.device_id, rand_token(), max_sessions);
    let Some(presence) = joined else {
        return link.close_for(Limit::Sessions, state).await;
    };
    let mut idle = Duration::from_secs(state.settings.chat.idle_timeout_secs);
    let mut cursor = 0i64;
    let mut drained = false;
    // Where the writer announces every queued message to the hub, which puts it in this
    // session's inbox: once the session has read the store to the end (after joining the
    // hub, so nothing committed since is missed), the inbox holds everything newer and the
    // store is read again only after an overflow or at the periodic re-check. Elsewhere
    // another node may have queued a message: the session reads the store whenever it is
    // woken (the other nodes' wake-ups arrive through `crate::cluster`), and at the
    // re-check.
    let announced = matches!(state.store.delivery_mode(), DeliveryMode::Announced);
    let every = Duration::from_secs(state.settings.chat.recheck_secs);
    let mut poll = poll_timer(every);
    let mut caught_up = false;
    let mut recheck = false;
    // Acks being committed, and the payload that arrived behind them.
    let mut committing: Option<futures_util::future::LocalBoxFuture<'_, Result<(), End>>> = None;
    let mut behind_acks: Option<Payload> = None;
    let end = 'session: loop {
        if let Some(why) = presence.slot.ended() {
            link.say_goodbye(why, false).await;
            break 'session End::Refused(why);
        }
        for signal in presence.slot.take_signals() {
            if let Err(end) = link.send(&signal).await {
                break 'session end;
            }
        }
        let mut from_inbox = None;
        if caught_up && !recheck {
            let inbox = presence.slot.take();
            if inbox.overflowed {
                caught_up = false;
            } else {
                from_inbox = Some(inbox.messages);
            }
        }
        let step = match from_inbox {
            Some(messages) => deliver_announced(state, &mut link, &mut cursor, messages)
                .await
                .map(|()| false),
            None => {
                recheck = false;
                if announced {
                    // What the inbox holds is in the store too; the read below finds it.
                    drop(presence.slot.take());
                }
                let more = deliver_pending(state, &mut link, &mut cursor).await;
                caught_up = announced && matches!(more, Ok(false));
                more
            }
        };
        match step {
            Ok(more) if !more && !drained => {
                drained = true;
                if let Err(end) = link.send(&Payload::QueueSendComplete).await {
                    break 'session end;
                }
            }
            Ok(_) => {}
            Err(end) => break 'session end,
        }
        tokio::select! {
            () = presence.slot.notify.notified() => {}
            _ = poll.tick() => recheck = true,
            // Acks commit while the session goes on delivering; the frames after them
            // wait, so whatever the device sends after its acks finds them committed.
            committed = async {
                match committing.as_mut() {
                    Some(acks) => acks.await,
                    None => std::future::pending().await,
                }
            }, if committing.is_some() => {
                committing = None;
                if let Err(end) = committed {
                    break 'session end;
                }
                if let Some(payload) = behind_acks.take() {
                    if let Some(end) = Box::pin(handle_or_end(state, &mut link, payload, &mut idle)).await {
                        break 'session end;
                    }
                }
            }
            incoming = tokio::time::timeout(idle, next_binary(stream, &mut link.ws)), if committing.is_none() => {
                let frame = match incoming {
                    Err(_) => {
                        link.say_goodbye("idle timeout", true).await;
                        break 'session End::Idle;
                    }
                    Ok(Err(end)) => break 'session end,
                    Ok(Ok(frame)) => frame,
                };
                let Ok(payload) = open_paced(state, &link.device, &mut opener, &frame).await else {
                    break 'session End::Refused("frame does not open");
                };
                if let Payload::ClientAck { sender, message_id } = payload {
                    let (acks, behind) = read_acks(state, &mut link, &mut opener, stream, (sender, message_id)).await;
                    behind_acks = match behind {
                        Ok(behind) => behind,
                        // Commit what was read before the bad frame, then end.
                        Err(end) => {
                            let _ = Box::pin(commit_acks(state, link.device, acks)).await;
                            break 'session end;
                        }
                    };
                    committing = Some(Box::pin(commit_acks(state, link.device, acks)));
                    continue;
                }
                if let Some(end) = Box::pin(handle_or_end(state, &mut link, payload, &mut idle)).await {
                    break 'session end;
                }
            }
        }
    };
    // Acks the device sent are committed even if the session ends meanwhile; otherwise
    // their messages would be delivered again at the next login.
    if let Some(acks) = committing {
        let _ = acks.await;
    }
    end
}

/// Handles one payload; `Some` when the session ends. Its callers box it: it is large
/// (the outgoing-message path) and rare next to deliveries and acks, and kept inline it
/// would grow every session's task, idle or not.
async fn handle_or_end(
    state: &AppState,
    link: &mut Link,
    payload: Payload,
    idle: &mut Duration,
) -> Option<End> {
    match handle(state, link, payload, idle).await {
        Ok(Outcome::Continue) => None,
        Ok(Outcome::Close(reason)) => {
            link.say_goodbye(reason, false).await;
            Some(End::Refused(reason))
        }
        Err(end) => Some(end),
    }
}

async fn handle(
    state: &AppState,
    link: &mut Link,
    payload: Payload,
    idle: &mut Duration,
) -> Result<Outcome, End> {
    match payload {
        Payload::EchoRequest(data) => link
            .send(&Payload::EchoResponse(data))
            .await
            .map(|()| Outcome::Continue),
        Payload::OutgoingMessage(envelope) => handle_outgoing(state, link, envelope).await,
        Payload::ClientAck { sender, message_id } => {
            ack(state, &link.device, &sender, &message_id).await?;
            Ok(Outcome::Continue)
        }
        Payload::SetIdleTimeout(secs) => {
            *idle = Duration::from_secs(u64::from(secs).clamp(30, 600));
            Ok(Outcome::Continue)
        }
        Payload::Unknown {
            kind: Payload::BLOB_DONE,
            data,
        } => {
            blob_done(state, &link.device, &data).await?;
            Ok(Outcome::Continue)
        }
        ref answer @ Payload::Unknown {
            kind: Payload::ALARM_ANSWER,
            ..
        } => {
            alarm_answer(state, link, answer).await?;
            Ok(Outcome::Continue)
        }
        // Single-device sessions receive from login on; anything else is not ours to act on.
        _ => Ok(Outcome::Continue),
    }
}

/// A device answers an alarm (`ALARM_ANSWER`): recorded for its identity, whose sessions
/// (this one too) then get `ALARM_STOP` (reason `answered`) through the hub. An answer
/// that is malformed, or to an alarm that did not reach this identity or has ended, is
/// dropped.
async fn alarm_answer(state: &AppState, link: &mut Link, payload: &Payload) -> Result<(), End> {
    let Some(answer) = payload.as_alarm_answer() else {
        return Ok(());
    };
    crate::alarms::answer(state, &link.device.identity, &answer, UnixMs::now())
        .await
        .map(drop)
        .map_err(|e| End::Failed(e.to_string()))
}

/// An ack arrived: the acks already waiting behind it are read too, to be committed
/// together (the store groups concurrent acks into one commit) instead of one commit per
/// frame while a draining device's acks pile up. Also returns the first other payload
/// read meanwhile, to be handled once the acks are committed, or why the session ends.
async fn read_acks(
    state: &AppState,
    link: &mut Link,
    opener: &mut Opener,
    stream: &mut MessageStream,
    first: Ack,
) -> (Vec<Ack>, Result<Option<Payload>, End>) {
    let mut acks = vec![first];
    while acks.len() < ACK_BATCH {
        // Only what has already arrived; reading a message is cancel-safe.
        let Some(read) = next_binary(stream, &mut link.ws).now_or_never() else {
            break;
        };
        let payload = match read {
            Ok(frame) => open_paced(state, &link.device, opener, &frame)
                .await
                .map_err(|()| End::Refused("frame does not open")),
            Err(end) => Err(end),
        };
        match payload {
            Ok(Payload::ClientAck { sender, message_id }) => acks.push((sender, message_id)),
            other => return (acks, other.map(Some)),
        }
    }
    (acks, Ok(None))
}

/// Opens a frame from the device (`Err` when it does not open) and takes it from the
/// identity's budgets: every frame by its bytes, every one but an ack as a frame too. A
/// device past a budget is not refused but slowed: the session waits until the budget
/// has room, reading nothing more from it meanwhile, and `/metrics` counts the frames
/// that waited.
async fn open_paced(
    state: &AppState,
    device: &Device,
    opener: &mut Opener,
    frame: &[u8],
) -> Result<Payload, ()> {
    let payload = opener.open_frame(frame).map_err(|_| ())?;
    let identity = &device.identity;
    if !matches!(payload, Payload::ClientAck { .. }) {
        pace(state, "frames", || {
            state.limits.check_device_frame(identity)
        })
        .await;
    }
    pace(state, "bytes", || {
        state.limits.check_device_bytes(identity, frame.len())
    })
    .await;
    Ok(payload)
}

/// Waits until `check` passes; counts the wait under `budget`.
async fn pace(state: &AppState, budget: &str, check: impl Fn() -> Result<(), Duration>) {
    let mut waited = false;
    while let Err(wait) = check() {
        if !waited {
            waited = true;
            state
                .metrics
                .chat_throttled
                .with_label_values(&[budget])
                .inc();
        }
        tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
    }
}

/// Commits a device's acks (each its own job, so the writer groups them).
async fn commit_acks(state: &AppState, device: Device, acks: Vec<Ack>) -> Result<(), End> {
    join_all(
        acks.iter()
            .map(|(sender, id)| ack(state, &device, sender, id)),
    )
    .await
    .into_iter()
    .collect()
}

fn rand_token() -> u64 {
    u64::from_le_bytes(*MessageId::random().as_bytes())
}

/// The device is done with a blob: record it, and remove a non-persistent blob once every
/// device of the identity is done. Malformed IDs are ignored.
async fn blob_done(state: &AppState, device: &Device, data: &[u8]) -> Result<(), End> {
    let Ok(raw) = <[u8; 16]>::try_from(data) else {
        return Ok(());
    };
    let id = tocsin_sdk::protocol::BlobId::from_bytes(raw);
    let removed = state
        .store
        .mark_blob_done(&id, device, UnixMs::now())
        .await
        .map_err(|e| End::Failed(e.to_string()))?;
    if removed {
        use crate::blobs::BlobStore;
        if let Err(e) = state.blobs.delete(&id).await {
            tracing::warn!(blob = %id, "cannot remove a finished blob: {e}");
        }
    }
    Ok(())
}
