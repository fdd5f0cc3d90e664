//! Stale devices: a device not seen for long stops holding its identity's messages, on
//! every engine. Time is passed in, never read from the clock.

use super::*;

const DAY: i64 = 24 * 3600 * 1000;
/// `devices.stale_after_secs` of these tests: 30 days.
const STALE_AFTER: i64 = 30 * DAY;

/// A message from BOB45678 to `to` that outlives every test here.
fn lasting(to: &str) -> NewMessage {
    direct("BOB45678", to, NOW.plus_ms(60 * DAY))
}

/// A housekeeping pass at `at` with the tests' `stale_after`.
async fn drop_at(store: &Store, at: UnixMs) -> Dropped {
    store
        .drop_stale_devices(at.minus_ms(STALE_AFTER), at)
        .await
        .unwrap()
}

async fn events(store: &Store, m: &NewMessage) -> Vec<(MessageStatus, UnixMs)> {
    store
        .message_events(&m.sender, &m.message_id)
        .await
        .unwrap()
}

/// A device that has not logged in for `stale_after` is dropped: what the identity's
/// other device has acked leaves the queue, a message only the dropped device was
/// responsible for leaves `expired`, and a device seen since is kept. The dropped device
/// logs in again as a new device (its place under the cap is free again).
async fn a_stale_device_is_dropped_and_frees_what_the_others_acked(store: Store) {
    let to = import(&store, "ALICE123").await;
    let phone = device(&store, &to, 1, NOW).await;
    let before_laptop = lasting("ALICE123");
    store.enqueue_direct(&before_laptop, NOW).await.unwrap();
    let laptop = store
        .register_device(&to, 2, 2, NOW)
        .await
        .unwrap()
        .unwrap();
    let (acked, waiting) = (lasting("ALICE123"), lasting("ALICE123"));
    for m in [&acked, &waiting] {
        store.enqueue_direct(m, NOW).await.unwrap();
    }
    assert_eq!(
        ack(&store, &laptop, &acked, NOW.plus_ms(1)).await,
        (true, false),
        "the phone still owes its ack"
    );
    assert_eq!(
        store.register_device(&to, 3, 2, NOW).await.unwrap(),
        None,
        "two devices: the cap"
    );
    // The laptop logs in on day 2; the phone is never seen again.
    let laptop = store
        .register_device(&to, 2, 2, NOW.plus_ms(2 * DAY))
        .await
        .unwrap()
        .unwrap();
    let bob = import(&store, "BOB45678").await;
    device(&store, &bob, 1, NOW).await;
    let for_bob = lasting("BOB45678");
    store.enqueue_direct(&for_bob, NOW).await.unwrap();

    let at = NOW.plus_ms(STALE_AFTER + DAY);
    assert_eq!(
        drop_at(&store, at.minus_ms(2 * DAY)).await,
        Dropped::default(),
        "nobody is stale yet"
    );
    let dropped = drop_at(&store, at).await;
    let expected = [
        DroppedDevice {
            identity: bob,
            device_id: 1,
            last_seen_at: NOW,
        },
        DroppedDevice {
            identity: to,
            device_id: 1,
            last_seen_at: NOW,
        },
    ];
    let mut devices = dropped.devices.clone();
    devices.sort_by_key(|d| d.identity);
    let mut expected = expected.to_vec();
    expected.sort_by_key(|d| d.identity);
    assert_eq!(devices, expected);
    assert_eq!(
        dropped.messages, 2,
        "acked by the laptop, and the phone's own"
    );
    assert_eq!(
        ids(&store.pending_for_device(&laptop, 0, 10, at).await.unwrap()),
        [waiting.message_id]
    );
    assert_eq!(
        store.queue_depth().await.unwrap(),
        2,
        "the laptop's and the one for bob's dropped only device"
    );
    assert_eq!(
        events(&store, &acked).await,
        [
            (MessageStatus::Queued, NOW),
            (MessageStatus::Delivered, NOW.plus_ms(1))
        ],
        "delivered to every device left"
    );
    assert_eq!(
        events(&store, &before_laptop).await,
        [(MessageStatus::Queued, NOW), (MessageStatus::Expired, at)],
        "no device left will ever get it"
    );
    assert_eq!(drop_at(&store, at).await, Dropped::default(), "done once");

    // The laptop was seen since: it is kept, and logs in as it was.
    assert_eq!(
        store.register_device(&to, 2, 2, at).await.unwrap(),
        Some(Device {
            registered_after_seq: laptop.registered_after_seq,
            ..laptop
        })
    );
    // The phone comes back as a new device, responsible from now on.
    let phone_again = store
        .register_device(&to, 1, 2, at)
        .await
        .unwrap()
        .expect("its place under the cap is free");
    assert!(phone_again.registered_after_seq > phone.registered_after_seq);
    assert!(store
        .pending_for_device(&phone_again, 0, 10, at)
        .await
        .unwrap()
        .is_empty());
    let later = lasting("ALICE123");
    store.enqueue_direct(&later, at).await.unwrap();
    assert_eq!(
        ids(&store.pending_for_device(&laptop, 0, 10, at).await.unwrap()),
        [waiting.message_id, later.message_id]
    );
    assert_eq!(
        ids(&store
            .pending_for_device(&phone_again, 0, 10, at)
            .await
            .unwrap()),
        [later.message_id]
    );
}

/// The only device of an identity is dropped, but its messages stay: an ack from it
/// changes nothing any more, and the identity's next device takes over everything
/// waiting, as a first device does.
async fn the_only_device_dropped_leaves_its_messages_for_the_next(store: Store) {
    let to = import(&store, "ALICE123").await;
    let only = device(&store, &to, 7, NOW).await;
    let (first, second) = (lasting("ALICE123"), lasting("ALICE123"));
    for m in [&first, &second] {
        store.enqueue_direct(m, NOW).await.unwrap();
    }
    let at = NOW.plus_ms(STALE_AFTER + 1);
    let dropped = drop_at(&store, at).await;
    assert_eq!(
        dropped.devices,
        [DroppedDevice {
            identity: to,
            device_id: 7,
            last_seen_at: NOW,
        }]
    );
    assert_eq!(dropped.messages, 0);
    assert_eq!(store.queue_depth().await.unwrap(), 2);
    assert_eq!(
        ack(&store, &only, &first, at).await,
        (true, false),
        "no device is left to have it: it waits"
    );
    let next = store
        .register_device(&to, 8, 1, at)
        .await
        .unwrap()
        .expect("the dropped device no longer counts under the cap");
    assert_eq!(next.registered_after_seq, 0, "a first device");
    assert_eq!(
        ids(&store.pending_for_device(&next, 0, 10, at).await.unwrap()),
        [first.message_id, second.message_id]
    );
    assert_eq!(ack(&store, &next, &first, at).await, (true, true));
    assert_eq!(
        events(&store, &first).await,
        [(MessageStatus::Queued, NOW), (MessageStatus::Delivered, at)]
    );
}

/// A device that stays connected is marked seen by housekeeping (once its mark is old
/// enough, not at every pass), so it is never stale; one that is not connected is.
async fn a_connected_device_is_marked_seen_and_kept(store: Store) {
    let to = import(&store, "ALICE123").await;
    let connected = device(&store, &to, 1, NOW).await;
    let away = device(&store, &to, 2, NOW).await;
    let m = lasting("ALICE123");
    store.enqueue_direct(&m, NOW).await.unwrap();
    ack(&store, &connected, &m, NOW).await;
    let sessions = [(to, connected.device_id), (to, 99)];
    let refresh = STALE_AFTER / 4;
    let day = |n: i64| NOW.plus_ms(n * DAY);
    assert_eq!(
        store
            .touch_devices(&sessions, day(1).minus_ms(refresh), day(1))
            .await
            .unwrap(),
        0,
        "seen a day ago: no write yet"
    );
    assert_eq!(
        store
            .touch_devices(&sessions, day(8).minus_ms(refresh), day(8))
            .await
            .unwrap(),
        1,
        "an unknown device is not created"
    );
    assert_eq!(
        store
            .touch_devices(&sessions, day(9).minus_ms(refresh), day(9))
            .await
            .unwrap(),
        0
    );
    let at = day(31);
    let dropped = drop_at(&store, at).await;
    assert_eq!(
        dropped
            .devices
            .iter()
            .map(|d| d.device_id)
            .collect::<Vec<_>>(),
        [away.device_id]
    );
    assert_eq!(dropped.messages, 1, "the connected device had it");
    assert_eq!(store.queue_depth().await.unwrap(), 0);
    assert_eq!(
        store
            .register_device(&to, 1, 1, at)
            .await
            .unwrap()
            .map(|d| d.registered_after_seq),
        Some(connected.registered_after_seq),
        "kept as it was"
    );
}

on_every_backend!(
    a_stale_device_is_dropped_and_frees_what_the_others_acked,
    the_only_device_dropped_leaves_its_messages_for_the_next,
    a_connected_device_is_marked_seen_and_kept,
);
