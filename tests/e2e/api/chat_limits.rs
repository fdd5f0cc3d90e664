//! What one identity's devices may send and hold: frames and bytes per identity, sessions
//! and devices per identity (a new login of a device replaces its older session), replies
//! only to gateway IDs that take them, and caps on what waits for a gateway's callback.
//! Past a limit of the session the device gets a close-error naming it; past a limit of a
//! message it sent, a refusal naming it instead of the ack, and the session goes on. What
//! is refused is neither stored nor acked, and `/metrics` counts it.

use tocsin::domain::MessageStatus;
use tocsin::store::GatewayMode;
use tocsin_sdk::protocol::csp::{MessageEnvelope, Payload};
use tocsin_sdk::protocol::{IdentityId, MessageFlags, MessageId, Nonce, ReceiptStatus};

use super::chat::{login, receipt, Device};
use crate::helpers::{spawn_app_with, TestApp};

/// A server with `settings`, and ALICE123's device 1 logged in with its (empty) queue read.
async fn alice_on(settings: &[(&str, String)]) -> (TestApp, Device) {
    let app = spawn_app_with(settings).await;
    let keys = app.identity("ALICE123", None, None).await;
    let mut device = Device::connect(&app, "ALICE123", &keys, Some(1)).await;
    device.drain_queue().await;
    (app, device)
}

/// Reads until the server's close-error; what came before it is returned too.
async fn until_closed(device: &mut Device) -> (Vec<Payload>, bool, String) {
    let mut before = Vec::new();
    loop {
        match device
            .recv()
            .await
            .expect("a close-error before the connection ends")
        {
            Payload::CloseError {
                can_reconnect,
                reason,
            } => return (before, can_reconnect, reason),
            other => before.push(other),
        }
    }
}

async fn refused(app: &TestApp, limit: &str) -> f64 {
    let series = format!("tocsin_chat_refused_total{{limit=\"{limit}\"}}");
    app.metric(&series).await.unwrap_or(0.0)
}

fn reply_to(gateway: IdentityId, from: IdentityId) -> MessageEnvelope {
    MessageEnvelope {
        sender: from,
        receiver: gateway,
        message_id: MessageId::random(),
        created_at: 1_700_000_000,
        flags: MessageFlags(0),
        nickname: None,
        nonce: Nonce::random(),
        sealed: vec![7; 48],
    }
}

async fn throttled(app: &TestApp, budget: &str) -> f64 {
    let series = format!("tocsin_chat_throttled_total{{budget=\"{budget}\"}}");
    app.metric(&series).await.unwrap_or(0.0)
}

/// Sends `data` as echoes and waits for every answer, in order.
async fn echo_all(device: &mut Device, data: &[Vec<u8>]) {
    for d in data {
        device.send(&Payload::EchoRequest(d.clone())).await;
    }
    for d in data {
        assert_eq!(device.recv().await, Some(Payload::EchoResponse(d.clone())));
    }
}

#[tokio::test]
async fn a_device_past_its_frame_budget_is_slowed_not_refused() {
    let (app, mut device) = alice_on(&[
        ("TOCSIN__CHAT__DEVICE_FRAMES_PER_SECOND", "1".into()),
        ("TOCSIN__CHAT__DEVICE_FRAMES_BURST", "3".into()),
    ])
    .await;
    // Two more than the burst: the last ones wait for the budget, and all are answered.
    let echoes: Vec<Vec<u8>> = (0u8..5).map(|i| vec![i]).collect();
    echo_all(&mut device, &echoes).await;
    assert!(throttled(&app, "frames").await >= 1.0);
    assert_eq!(throttled(&app, "bytes").await, 0.0);
}

#[tokio::test]
async fn acks_do_not_count_as_frames_and_every_frame_counts_its_bytes() {
    // The queue is empty: the session's first frame is the first ack.
    let (app, mut device) = alice_on(&[
        ("TOCSIN__CHAT__DEVICE_FRAMES_PER_SECOND", "1".into()),
        ("TOCSIN__CHAT__DEVICE_FRAMES_BURST", "1".into()),
        ("TOCSIN__CHAT__DEVICE_BYTES_PER_SECOND", "8194".into()),
        ("TOCSIN__CHAT__DEVICE_BYTES_BURST", "8194".into()),
    ])
    .await;
    let sender = IdentityId::parse("*GATEWAY").unwrap();
    for _ in 0..50 {
        let ack = Payload::ClientAck {
            sender,
            message_id: MessageId::random(),
        };
        device.send(&ack).await;
    }
    // The first frame that counts as one: within the burst of one, it does not wait.
    echo_all(&mut device, &[vec![1]]).await;
    assert_eq!(throttled(&app, "frames").await, 0.0);
    // Three large echoes (a frame of 4 KiB each): two fill the bytes' burst, and the
    // third waits for it to refill, the frames' budget aside.
    let (app_frames_off, mut device) = alice_on(&[
        ("TOCSIN__CHAT__DEVICE_FRAMES_PER_SECOND", "0".into()),
        ("TOCSIN__CHAT__DEVICE_BYTES_PER_SECOND", "8194".into()),
        ("TOCSIN__CHAT__DEVICE_BYTES_BURST", "8194".into()),
    ])
    .await;
    echo_all(&mut device, &[vec![1; 4096], vec![2; 4096], vec![3; 4096]]).await;
    assert!(throttled(&app_frames_off, "bytes").await >= 1.0);
    assert_eq!(throttled(&app_frames_off, "frames").await, 0.0);
}

#[tokio::test]
async fn an_identity_holds_a_capped_number_of_sessions_and_a_new_login_replaces_its_own() {
    let app = spawn_app_with(&[("TOCSIN__CHAT__SESSIONS_PER_IDENTITY", "2".into())]).await;
    let keys = app.identity("ALICE123", None, None).await;
    let mut phone = Device::connect(&app, "ALICE123", &keys, Some(1)).await;
    let mut laptop = Device::connect(&app, "ALICE123", &keys, Some(2)).await;
    phone.drain_queue().await;
    laptop.drain_queue().await;

    let mut third = Device::connect(&app, "ALICE123", &keys, Some(3)).await;
    let (_, can_reconnect, reason) = until_closed(&mut third).await;
    assert!(can_reconnect);
    assert!(reason.contains("too many sessions"), "{reason}");
    assert_eq!(refused(&app, "sessions").await, 1.0);

    // The phone logs in again (a new network, say): its old session ends, not the laptop's.
    let mut phone_again = Device::connect(&app, "ALICE123", &keys, Some(1)).await;
    let (_, can_reconnect, reason) = until_closed(&mut phone).await;
    assert!(
        !can_reconnect,
        "the replaced session must not fight its successor"
    );
    assert!(reason.contains("replaced"), "{reason}");
    phone_again.drain_queue().await;
    laptop.send(&Payload::EchoRequest(vec![1])).await;
    assert_eq!(laptop.recv().await, Some(Payload::EchoResponse(vec![1])));
    assert_eq!(refused(&app, "sessions").await, 1.0);
}

#[tokio::test]
async fn an_identity_registers_a_capped_number_of_devices() {
    let app = spawn_app_with(&[("TOCSIN__CHAT__DEVICES_PER_IDENTITY", "2".into())]).await;
    let keys = app.identity("ALICE123", None, None).await;
    for device in [1, 2] {
        let session = Device::connect(&app, "ALICE123", &keys, Some(device)).await;
        drop(session);
    }
    let server = app.state.server_key.public;
    let third = login(&app, "ALICE123", &keys, Some(3), server).await;
    assert!(third.is_err(), "a third device is refused at login");
    assert_eq!(refused(&app, "devices").await, 1.0);
    // A registered device still logs in, and other identities have their own cap.
    Device::connect(&app, "ALICE123", &keys, Some(2)).await;
    let bob = app.identity("BOB45678", None, None).await;
    Device::connect(&app, "BOB45678", &bob, Some(3)).await;
}

/// The server's answer to an outgoing message: its refusal's reason, or `None` for an ack.
async fn refusal(device: &mut Device, sent: &MessageEnvelope) -> Option<String> {
    let answer = device.recv().await.expect("an answer to the message");
    if let Payload::ServerAck {
        receiver,
        message_id,
    } = answer
    {
        assert_eq!((receiver, message_id), (sent.receiver, sent.message_id));
        return None;
    }
    let (receiver, message_id, reason) = answer
        .as_message_refused()
        .unwrap_or_else(|| panic!("an ack or a refusal, not {answer:?}"));
    assert_eq!((receiver, message_id), (sent.receiver, sent.message_id));
    Some(reason)
}

/// The session still answers after a refused message.
async fn still_served(device: &mut Device) {
    device.send(&Payload::EchoRequest(vec![9])).await;
    assert_eq!(device.recv().await, Some(Payload::EchoResponse(vec![9])));
}

#[tokio::test]
async fn a_reply_to_a_gateway_id_without_a_callback_url_is_refused_and_not_stored() {
    let (app, mut device) = alice_on(&[]).await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    let reply = reply_to(*gw.id.as_identity(), device.id);
    device.send(&Payload::OutgoingMessage(reply.clone())).await;
    let reason = refusal(&mut device, &reply)
        .await
        .expect("refused, not acked");
    assert!(reason.contains("no callback URL"), "{reason}");
    still_served(&mut device).await;
    let outbox = app.state.store.callbacks_for(&gw.id).await.unwrap();
    assert!(outbox.is_empty(), "{outbox:?}");
    assert_eq!(refused(&app, "no_callback").await, 1.0);
}

#[tokio::test]
async fn replies_waiting_for_a_gateway_are_capped_per_sender() {
    let (app, mut device) =
        alice_on(&[("TOCSIN__CALLBACKS__PENDING_PER_SENDER", "2".into())]).await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    app.takes_replies(&gw).await;
    for _ in 0..2 {
        let reply = reply_to(*gw.id.as_identity(), device.id);
        device.send(&Payload::OutgoingMessage(reply.clone())).await;
        assert_eq!(refusal(&mut device, &reply).await, None);
    }
    let third = reply_to(*gw.id.as_identity(), device.id);
    device.send(&Payload::OutgoingMessage(third.clone())).await;
    let reason = refusal(&mut device, &third)
        .await
        .expect("the third is refused");
    assert!(reason.contains("too many messages from you"), "{reason}");
    still_served(&mut device).await;
    assert_eq!(
        app.state.store.callbacks_for(&gw.id).await.unwrap().len(),
        2
    );
    assert_eq!(refused(&app, "pending_per_sender").await, 1.0);
    // Another sender still has room.
    let bob = app.identity("BOB45678", None, None).await;
    let mut other = Device::connect(&app, "BOB45678", &bob, Some(1)).await;
    other.drain_queue().await;
    let reply = reply_to(*gw.id.as_identity(), other.id);
    other.send(&Payload::OutgoingMessage(reply.clone())).await;
    assert_eq!(refusal(&mut other, &reply).await, None);
}

/// A receipt to a basic-mode gateway ID names at most `chat.receipt_message_ids`
/// messages: a longer one is refused whole, a full one is recorded for the messages the
/// gateway ID sent there and for no other.
#[tokio::test]
async fn a_receipt_naming_too_many_messages_is_refused_whole() {
    let app = spawn_app_with(&[("TOCSIN__CHAT__RECEIPT_MESSAGE_IDS", "8".into())]).await;
    let gw = app.gateway(GatewayMode::Basic, 10).await;
    let keys = app.identity("ALICE123", None, None).await;
    let mut sent = Vec::new();
    for text in ["one", "two"] {
        let form = format!("{}&to=ALICE123&text={text}", gw.credentials());
        let (status, id) = app.post_form("/send_simple", form).await;
        assert_eq!(status, 200);
        sent.push(MessageId::parse(&id).unwrap());
    }
    let mut device = Device::connect(&app, "ALICE123", &keys, Some(1)).await;
    device.drain_queue().await;
    let naming = |n: usize| {
        let mut ids = sent.clone();
        ids.extend((ids.len()..n).map(|_| MessageId::random()));
        ids
    };
    let read_events = |id: MessageId| {
        let store = app.state.store.clone();
        let gateway = *gw.id.as_identity();
        async move {
            let events = store.message_events(&gateway, &id).await.unwrap();
            events
                .iter()
                .filter(|(e, _)| *e == MessageStatus::Read)
                .count()
        }
    };

    let too_long = receipt(&device, &keys, &gw, ReceiptStatus::Read, naming(9));
    let Payload::OutgoingMessage(envelope) = &too_long else {
        unreachable!()
    };
    let envelope = envelope.clone();
    device.send(&too_long).await;
    let reason = refusal(&mut device, &envelope).await.expect("refused");
    assert!(reason.contains("too many messages"), "{reason}");
    assert_eq!(read_events(sent[0]).await, 0);
    assert_eq!(refused(&app, "receipt_ids").await, 1.0);

    let full = receipt(&device, &keys, &gw, ReceiptStatus::Read, naming(8));
    let Payload::OutgoingMessage(envelope) = &full else {
        unreachable!()
    };
    let envelope = envelope.clone();
    device.send(&full).await;
    assert_eq!(refusal(&mut device, &envelope).await, None, "acked");
    assert_eq!(
        (read_events(sent[0]).await, read_events(sent[1]).await),
        (1, 1)
    );
}

/// Revoking an identity (with `tocsin admin`, in another process) ends its open sessions
/// at the server's next check of connected identities, which runs every few seconds and
/// is called directly here; other identities' sessions go on.
#[tokio::test]
async fn a_revoked_identitys_sessions_end_and_others_go_on() {
    let (app, mut alice) = alice_on(&[]).await;
    let bob_keys = app.identity("BOB45678", None, None).await;
    let mut bob = Device::connect(&app, "BOB45678", &bob_keys, Some(1)).await;
    bob.drain_queue().await;
    assert_eq!(
        tocsin::housekeeping::close_revoked(&app.state)
            .await
            .unwrap(),
        0
    );
    app.state.store.revoke_identity(&alice.id).await.unwrap();
    assert_eq!(
        tocsin::housekeeping::close_revoked(&app.state)
            .await
            .unwrap(),
        1
    );
    let (_, can_reconnect, reason) = until_closed(&mut alice).await;
    assert!(!can_reconnect, "a revoked identity must not come back");
    assert!(reason.contains("revoked"), "{reason}");
    still_served(&mut bob).await;
}
