//! Moving messages between the store and a device session, in both directions.

use tocsin_sdk::protocol::csp::{MessageEnvelope, Payload};
use tocsin_sdk::protocol::{E2eMessage, GatewayId, MessageFlags, ReceiptStatus};

use super::link::{ack, End, Limit, Link};
use crate::domain::{MessageStatus, UnixMs};
use crate::state::AppState;
use crate::store::{
    CallbackEntry, Enqueued, GatewayMode, GatewayRecord, NewMessage, PendingCaps, QueuedMessage,
};

/// Messages fetched from the store per round.
const BATCH: i64 = 64;
/// How long a short-lived message (flag 0x20) may wait.
const SHORT_LIVED: std::time::Duration = std::time::Duration::from_secs(60);

/// What the session does after handling a payload.
pub(super) enum Outcome {
    Continue,
    /// Close for a protocol violation, telling the device not to reconnect blindly.
    Close(&'static str),
}

/// Sends the device what it has not seen yet, after `cursor`, in queue order, as read from
/// the store. Returns whether a full batch went out (there may be more).
pub(super) async fn deliver_pending(
    state: &AppState,
    link: &mut Link,
    cursor: &mut i64,
) -> Result<bool, End> {
    let batch = state
        .store
        .pending_for_device(&link.device, *cursor, BATCH, UnixMs::now())
        .await
        .map_err(|e| End::Failed(e.to_string()))?;
    let full = batch.len() as i64 == BATCH;
    deliver(state, link, cursor, batch, "store").await?;
    Ok(full)
}

/// Sends the messages the hub put in this session's inbox: those after `cursor` and newer
/// than the device's registration (the store's query applies the same bounds).
pub(super) async fn deliver_announced(
    state: &AppState,
    link: &mut Link,
    cursor: &mut i64,
    messages: impl IntoIterator<Item = QueuedMessage>,
) -> Result<(), End> {
    let floor = link.device.registered_after_seq;
    let fresh: Vec<QueuedMessage> = messages
        .into_iter()
        .filter(|m| m.seq > *cursor && m.seq > floor)
        .collect();
    deliver(state, link, cursor, fresh, "inbox").await
}

/// Sends `messages` in order, but none past its expiry; `source` labels the delivery
/// metric. A message whose sender set a TTL shorter than the server's goes with its
/// expiry (`MESSAGE_EXPIRES` right before it).
async fn deliver(
    state: &AppState,
    link: &mut Link,
    cursor: &mut i64,
    messages: Vec<QueuedMessage>,
    source: &'static str,
) -> Result<(), End> {
    let delivered = state.metrics.chat_deliveries.with_label_values(&[source]);
    let now = UnixMs::now();
    let server_ttl = state.settings.messages.ttl();
    for QueuedMessage {
        seq,
        message,
        created_at,
    } in messages
    {
        if message.expires_at <= now {
            continue;
        }
        if message.expires_at < created_at.plus(server_ttl) {
            let at = u32::try_from(message.expires_at.as_secs()).unwrap_or(u32::MAX);
            let expires = Payload::message_expires(message.sender, message.message_id, at);
            link.send(&expires).await?;
        }
        let flags = MessageFlags(message.flags);
        let envelope = MessageEnvelope {
            sender: message.sender,
            receiver: message.recipient,
            message_id: message.message_id,
            created_at: u32::try_from(created_at.as_secs()).unwrap_or(u32::MAX),
            flags,
            nonce: message.nonce,
            sealed: message.body,
            nickname: None,
        };
        link.send(&Payload::IncomingMessage(envelope)).await?;
        delivered.inc();
        *cursor = seq;
        if flags.has(MessageFlags::NO_ACK) {
            // The device will not acknowledge it: handing it over is delivery.
            ack(state, &link.device, &message.sender, &message.message_id).await?;
        }
    }
    Ok(())
}

/// A message the device sends: to a gateway ID (the callback outbox) or to another
/// identity (its queue). Stored before the server ack.
pub(super) async fn handle_outgoing(
    state: &AppState,
    link: &mut Link,
    envelope: MessageEnvelope,
) -> Result<Outcome, End> {
    if envelope.sender != link.device.identity {
        return Ok(Outcome::Close(
            "sender does not match the logged-in identity",
        ));
    }
    let now = UnixMs::now();
    let failed = |e: crate::store::StoreError| End::Failed(e.to_string());
    let receiver = envelope.receiver;
    if receiver.is_gateway() {
        let gateway = GatewayId::try_from(receiver).map_err(|e| End::Failed(e.to_string()))?;
        match state.store.gateway(&gateway).await.map_err(failed)? {
            Some(record) if record.mode == GatewayMode::Basic => {
                if let Some(limit) = read_receipt(state, &record, &envelope, now).await? {
                    return refuse(state, link, &envelope, limit).await;
                }
            }
            Some(record) if record.callback_url.is_none() => {
                return refuse(state, link, &envelope, Limit::NoCallback).await;
            }
            Some(_) => {
                let entry = CallbackEntry {
                    gateway,
                    sender: envelope.sender,
                    message_id: envelope.message_id,
                    sent_at: i64::from(envelope.created_at),
                    nonce: envelope.nonce,
                    body: envelope.sealed.clone(),
                    nickname: envelope.nickname.clone(),
                };
                let caps = PendingCaps {
                    per_sender: state.settings.callbacks.pending_per_sender,
                    per_gateway: state.settings.callbacks.pending_per_gateway,
                };
                let enqueued = state.store.enqueue_callback(&entry, caps, now);
                match enqueued.await.map_err(failed)? {
                    // The writer wakes the dispatchers once the entry is durable.
                    Enqueued::Stored | Enqueued::Resent => {}
                    Enqueued::SenderFull => {
                        return refuse(state, link, &envelope, Limit::PendingPerSender).await;
                    }
                    Enqueued::GatewayFull => {
                        return refuse(state, link, &envelope, Limit::PendingPerGateway).await;
                    }
                }
            }
            None => {}
        }
    } else {
        let live = state
            .store
            .identity(&receiver)
            .await
            .map_err(failed)?
            .is_some_and(|r| !r.revoked);
        let flags = envelope.flags;
        // An unknown receiver or an offline one for a no-queue message: dropped, but
        // still acknowledged, so the device does not resend it forever.
        let deliverable = !flags.has(MessageFlags::NO_QUEUE) || state.hub.is_online(&receiver);
        if live && deliverable {
            let ttl = if flags.has(MessageFlags::SHORT_LIVED) {
                SHORT_LIVED
            } else {
                state.settings.messages.ttl()
            };
            let message = NewMessage {
                message_id: envelope.message_id,
                sender: envelope.sender,
                recipient: receiver,
                flags: flags.0,
                nonce: envelope.nonce,
                body: envelope.sealed,
                expires_at: now.plus(ttl),
            };
            // Queued (or queued before): the writer wakes the receiver's sessions.
            state
                .store
                .enqueue_direct(&message, now)
                .await
                .map_err(failed)?;
        }
    }
    if !envelope.flags.has(MessageFlags::NO_ACK) {
        let ack = Payload::ServerAck {
            receiver,
            message_id: envelope.message_id,
        };
        link.send(&ack).await?;
    }
    Ok(Outcome::Continue)
}

/// Refuses an outgoing message for a limit: nothing of it is stored, and instead of the
/// server ack the device is told why (unless it asked for no ack). The session goes on.
async fn refuse(
    state: &AppState,
    link: &mut Link,
    envelope: &MessageEnvelope,
    limit: Limit,
) -> Result<Outcome, End> {
    limit.count(state);
    if !envelope.flags.has(MessageFlags::NO_ACK) {
        let refusal =
            Payload::message_refused(envelope.receiver, envelope.message_id, limit.reason());
        link.send(&refusal).await?;
    }
    Ok(Outcome::Continue)
}

/// A basic-mode gateway ID has no callback: its key is on the server, so the server opens
/// what devices send it and keeps only what a sender may know, the receipts' statuses.
/// Anything else sent to such an ID is dropped. A receipt naming more messages than
/// `chat.receipt_message_ids` is refused whole (`Some` of the limit).
async fn read_receipt(
    state: &AppState,
    gateway: &GatewayRecord,
    envelope: &MessageEnvelope,
    now: UnixMs,
) -> Result<Option<Limit>, End> {
    let failed = |e: crate::store::StoreError| End::Failed(e.to_string());
    let Some(device) = state
        .store
        .identity(&envelope.sender)
        .await
        .map_err(failed)?
    else {
        return Ok(None);
    };
    let opened = state
        .shared_keys
        .get(gateway, &state.data_key, &device.public_key)
        .ok()
        .and_then(|key| key.open(&envelope.nonce, &envelope.sealed).ok())
        .and_then(|plain| E2eMessage::from_padded(&plain).ok());
    let Some(E2eMessage::DeliveryReceipt {
        status,
        message_ids,
    }) = opened
    else {
        tracing::debug!(gateway_id = %gateway.id, "dropped a non-receipt message to a basic-mode ID");
        return Ok(None);
    };
    if message_ids.len() > state.settings.chat.receipt_message_ids {
        return Ok(Some(Limit::ReceiptTooLong));
    }
    let event = match status {
        ReceiptStatus::Received => MessageStatus::Delivered,
        ReceiptStatus::Read => MessageStatus::Read,
        ReceiptStatus::Acknowledged => MessageStatus::Acknowledged,
        ReceiptStatus::Declined => MessageStatus::Declined,
    };
    state
        .store
        .record_receipt(
            gateway.id.as_identity(),
            &envelope.sender,
            &message_ids,
            event,
            now,
        )
        .await
        .map(|()| None)
        .map_err(failed)
}
