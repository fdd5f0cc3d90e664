//! The status outbox, on every engine: which events of which gateway IDs it takes, in the
//! transactions that record them, once each; and its leases.

use tocsin_sdk::protocol::{StatusEvent, StatusKind};

use super::*;

/// A gateway ID with a status URL (and a sealed secret, which the store does not read).
async fn hooked(store: &Store) -> GatewayRecord {
    let acme = account(store, "acme", 100).await;
    let gw = gateway(store, acme.id, GatewayMode::Basic).await;
    store
        .set_status_url(&gw.id, "https://hooks.example/status", Some(&[5; 40]))
        .await
        .unwrap();
    gw
}

/// A message from `gw` to ALICE123, queued directly (as the writer would after a send).
fn from_gateway(gw: &GatewayRecord, expires_at: UnixMs) -> NewMessage {
    direct(gw.id.as_str(), "ALICE123", expires_at)
}

/// The events waiting for `gw`'s status URL, parsed.
async fn waiting(store: &Store, gw: &GatewayRecord) -> Vec<StatusEvent> {
    store
        .pending_statuses(&gw.id)
        .await
        .unwrap()
        .iter()
        .map(|json| serde_json::from_str(json).unwrap())
        .collect()
}

fn kinds(events: &[StatusEvent]) -> Vec<&'static str> {
    events.iter().map(|e| e.kind.name()).collect()
}

/// The first device's ack makes `message.delivered`, once however many devices ack; an
/// expiry makes `message.expired`; a gateway ID without a status URL gets nothing.
async fn acks_and_expiry_fill_the_outbox_of_hooked_gateways_only(store: Store) {
    let gw = hooked(&store).await;
    let quiet = gateway(&store, gw.account, GatewayMode::E2e).await;
    let to = import(&store, "ALICE123").await;
    let phone = device(&store, &to, 1, NOW).await;
    let laptop = device(&store, &to, 2, NOW).await;
    let delivered = from_gateway(&gw, NOW.plus_ms(60_000));
    let unheard = direct(quiet.id.as_str(), "ALICE123", NOW.plus_ms(60_000));
    let lapsing = from_gateway(&gw, NOW.plus_ms(10));
    for m in [&delivered, &unheard, &lapsing] {
        assert!(store.enqueue_direct(m, NOW).await.unwrap());
    }
    ack(&store, &phone, &delivered, NOW.plus_ms(3)).await;
    ack(&store, &laptop, &delivered, NOW.plus_ms(4)).await;
    ack(&store, &phone, &unheard, NOW.plus_ms(5)).await;
    assert_eq!(store.expire_messages(NOW.plus_ms(10)).await.unwrap(), 1);
    let events = waiting(&store, &gw).await;
    assert_eq!(kinds(&events), ["message.delivered", "message.expired"]);
    let StatusKind::Delivered(report) = &events[0].kind else {
        panic!("{events:?}");
    };
    assert_eq!(
        (report.message_id, report.recipient, report.at),
        (delivered.message_id, to, NOW.plus_ms(3).get())
    );
    assert_eq!(events[0].gateway_id, gw.id);
    let StatusKind::Expired(report) = &events[1].kind else {
        panic!("{events:?}");
    };
    assert_eq!(report.message_id, lapsing.message_id);
    assert_ne!(events[0].id, events[1].id, "each event has its own ID");
    assert!(store.pending_statuses(&quiet.id).await.unwrap().is_empty());
}

/// Receipts the server reads (basic mode) make `read`, `acknowledged`, `declined`, each
/// once per message; a `received` receipt after the transport's ack adds nothing.
async fn each_receipt_state_is_reported_once(store: Store) {
    let gw = hooked(&store).await;
    let to = import(&store, "ALICE123").await;
    let phone = device(&store, &to, 1, NOW).await;
    let m = from_gateway(&gw, NOW.plus_ms(60_000));
    store.enqueue_direct(&m, NOW).await.unwrap();
    ack(&store, &phone, &m, NOW.plus_ms(1)).await;
    let sender = *gw.id.as_identity();
    let ids = [m.message_id];
    let receipt = |status, at| store.record_receipt(&sender, &to, &ids, status, at);
    receipt(MessageStatus::Delivered, NOW.plus_ms(2))
        .await
        .unwrap();
    receipt(MessageStatus::Read, NOW.plus_ms(3)).await.unwrap();
    receipt(MessageStatus::Read, NOW.plus_ms(4)).await.unwrap();
    receipt(MessageStatus::Acknowledged, NOW.plus_ms(5))
        .await
        .unwrap();
    assert_eq!(
        kinds(&waiting(&store, &gw).await),
        ["message.delivered", "message.read", "message.acknowledged"]
    );
    let history: Vec<MessageStatus> = store
        .message_events(&sender, &m.message_id)
        .await
        .unwrap()
        .into_iter()
        .map(|(status, _)| status)
        .collect();
    assert_eq!(
        history,
        [
            MessageStatus::Queued,
            MessageStatus::Delivered,
            MessageStatus::Read,
            MessageStatus::Acknowledged
        ],
        "a repeated receipt is not recorded twice either"
    );
}

/// Clearing the URL stops new events; setting one without a secret needs one; a status
/// entry is claimed, renewed and retired under the callback outbox's lease rules.
async fn status_entries_follow_the_lease_rules(store: Store) {
    let gw = hooked(&store).await;
    let to = import(&store, "ALICE123").await;
    let phone = device(&store, &to, 1, NOW).await;
    let first = from_gateway(&gw, NOW.plus_ms(60_000));
    store.enqueue_direct(&first, NOW).await.unwrap();
    ack(&store, &phone, &first, NOW).await;
    let claimed = store.claim::<StatusEntry>(NOW, 10, 5).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].entry.gateway, gw.id);
    let again = store.claim::<StatusEntry>(NOW.plus_ms(5), 10, 5).await;
    assert!(again.unwrap().is_empty(), "held by the first claim");
    assert!(store
        .renew_lease(
            Outbox::Statuses,
            claimed[0].id,
            NOW.plus_ms(10),
            NOW.plus_ms(50)
        )
        .await
        .unwrap());
    store
        .outbox_failed(
            Outbox::Statuses,
            claimed[0].id,
            "receiver answered 500",
            None,
        )
        .await
        .unwrap();
    let dead = store.dead_statuses(&gw.id).await.unwrap();
    assert_eq!((dead.len(), dead[0].attempts), (1, 1));
    assert_eq!(dead[0].payload, claimed[0].entry.payload);
    assert!(store.claim_callbacks(NOW, 10, 5).await.unwrap().is_empty());

    store.clear_status_url(&gw.id).await.unwrap();
    assert!(store.status_hook(&gw.id).await.unwrap().is_none());
    let second = from_gateway(&gw, NOW.plus_ms(60_000));
    store.enqueue_direct(&second, NOW).await.unwrap();
    ack(&store, &phone, &second, NOW).await;
    assert!(store.pending_statuses(&gw.id).await.unwrap().is_empty());
    let refused = store
        .set_status_url(&gw.id, "https://hooks.example/again", None)
        .await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    let unknown = GatewayId::parse("*NOSUCH1").unwrap();
    let refused = store
        .set_status_url(&unknown, "https://x.example/", Some(&[1]))
        .await;
    assert!(
        matches!(refused, Err(StoreError::NotFound { .. })),
        "{refused:?}"
    );
}

on_every_backend!(
    acks_and_expiry_fill_the_outbox_of_hooked_gateways_only,
    each_receipt_state_is_reported_once,
    status_entries_follow_the_lease_rules,
);
