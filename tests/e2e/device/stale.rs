//! Stale devices: a device that does not log in for `devices.stale_after_secs` stops
//! holding its identity's messages once housekeeping has run; the identity's device that
//! stays connected is kept, and the dropped one may log in again.

use tocsin::domain::{MessageStatus, UnixMs};
use tocsin::store::GatewayMode;
use tocsin_sdk::device::{Connection, DeviceKeys, Event, Notice, SeenStore};
use tocsin_sdk::protocol::csp::CspDeviceId;
use tocsin_sdk::protocol::{IdentityId, MessageId};

use super::{depth, directory_with, enrol, send_simple, until, Listening, PATIENCE};
use crate::helpers::{spawn_app_with, TestApp};

/// `devices.stale_after_secs` of this test: the shortest allowed.
const STALE_AFTER_MS: i64 = 3600 * 1000;

/// Whether a device has acked `id` (the phone never does, so it is the laptop's ack).
async fn delivered(app: &TestApp, sender: &IdentityId, id: &MessageId) -> bool {
    let events = app.state.store.message_events(sender, id).await.unwrap();
    events.iter().any(|(e, _)| *e == MessageStatus::Delivered)
}

/// The next event of `connection`.
async fn next_event(connection: &mut Connection) -> Event {
    tokio::time::timeout(PATIENCE, connection.next_event())
        .await
        .expect("an event in time")
        .unwrap()
}

#[tokio::test]
async fn a_device_not_seen_for_stale_after_is_dropped_and_logs_in_again_as_a_new_one() {
    let app = spawn_app_with(&[
        ("TOCSIN__DEVICES__STALE_AFTER_SECS", "3600".into()),
        ("TOCSIN__CHAT__DEVICES_PER_IDENTITY", "2".into()),
    ])
    .await;
    let gw = app.gateway(GatewayMode::Basic, 10).await;
    let sender = *gw.id.as_identity();
    let phone_keys = enrol(&app).await;
    let laptop_keys = DeviceKeys {
        device_id: CspDeviceId::random(),
        ..phone_keys.clone()
    };
    // The phone logs in once, then never again.
    let phone = Connection::connect(&phone_keys, &directory_with(&phone_keys, &gw))
        .await
        .unwrap();
    phone.close().await;
    let mut laptop = Listening::start(
        laptop_keys.clone(),
        directory_with(&laptop_keys, &gw),
        SeenStore::in_memory(100),
    );
    assert_eq!(laptop.next().await, Notice::Connected);
    assert_eq!(laptop.next().await, Notice::QueueComplete);
    let mut sent = Vec::new();
    for text in ["one", "two"] {
        let id = send_simple(&app, &gw, phone_keys.identity, text).await;
        assert_eq!(laptop.message().await.message_id, id);
        sent.push(id);
    }
    for id in &sent {
        until("the laptop acked it", || delivered(&app, &sender, id)).await;
    }
    assert_eq!(depth(&app).await, 2, "the phone still holds them");
    assert_eq!(app.metric("tocsin_devices_dropped_total").await, Some(0.0));

    // Housekeeping an hour and a bit later: the laptop is connected all along.
    let later = UnixMs::now().plus_ms(STALE_AFTER_MS + 60_000);
    tocsin::housekeeping::housekeeping(&app.state, later).await;
    assert_eq!(depth(&app).await, 0, "every device left has them");
    assert_eq!(app.metric("tocsin_devices_dropped_total").await, Some(1.0));
    let only_laptop = send_simple(&app, &gw, phone_keys.identity, "three").await;
    assert_eq!(laptop.message().await.message_id, only_laptop);
    until("the laptop's ack deleted it", || async {
        depth(&app).await == 0
    })
    .await;

    // The phone comes back: a new device, with nothing from before waiting for it.
    let mut phone = Connection::connect(&phone_keys, &directory_with(&phone_keys, &gw))
        .await
        .expect("a dropped device logs in again");
    assert_eq!(next_event(&mut phone).await, Event::QueueComplete);
    let both = send_simple(&app, &gw, phone_keys.identity, "four").await;
    let Event::Message(received) = next_event(&mut phone).await else {
        panic!("expected a message");
    };
    assert_eq!(received.message_id, both);
    assert_eq!(laptop.message().await.message_id, both);
    phone.ack(&received).await.unwrap();
    until("both devices acked it", || async { depth(&app).await == 0 }).await;
    phone.close().await;
    laptop.stop().await;
}
