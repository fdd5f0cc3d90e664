//! Alarms through the SDK client: trigger (basic and end-to-end), status, list, resolve.

use tocsin::store::GatewayMode;
use tocsin_sdk::client::{AlarmRequest, AlarmState, AlarmTier, Error};
use tocsin_sdk::crypto::SharedKey;
use tocsin_sdk::protocol::{E2eMessage, IdentityId, MessageId, Priority};

use super::{alice, client, e2e_client};
use crate::helpers::spawn_app;

fn bob() -> IdentityId {
    IdentityId::parse("BOB45678").unwrap()
}

#[tokio::test]
async fn an_alarm_is_triggered_listed_shown_and_resolved_through_the_sdk() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::Basic, 10).await;
    app.identity("ALICE123", None, None).await;
    app.identity("BOB45678", None, None).await;
    let sdk = client(&app, &gw);
    let alarm = AlarmRequest {
        text: Some("Disk full on db-1".into()),
        tiers: vec![
            AlarmTier {
                to: vec![alice()],
                ..AlarmTier::default()
            },
            AlarmTier {
                after_secs: 300,
                to: vec![bob()],
                ..AlarmTier::default()
            },
        ],
        priority: Some(Priority::High),
        dedup_key: Some("db-1-disk".into()),
        ..AlarmRequest::default()
    };
    let first = sdk.trigger_alarm(&alarm, Some("try-1")).await.unwrap();
    assert_eq!(first.state, AlarmState::Triggered);
    assert!(!first.deduplicated);
    let again = sdk.trigger_alarm(&alarm, None).await.unwrap();
    assert_eq!((again.alarm_id, again.deduplicated), (first.alarm_id, true));
    let bad_key = sdk.trigger_alarm(&alarm, Some("two words")).await;
    assert!(matches!(bad_key, Err(Error::Invalid(_))), "{bad_key:?}");
    assert_eq!(app.queued("ALICE123").await[0].message_id, first.alarm_id);

    let status = sdk.alarm(&first.alarm_id).await.unwrap().unwrap();
    assert_eq!(
        (status.state, status.priority),
        (AlarmState::Triggered, Priority::High)
    );
    assert_eq!(status.dedup_key.as_deref(), Some("db-1-disk"));
    assert_eq!(status.tiers.len(), 2);
    let reached = &status.tiers[0].recipients[0];
    assert_eq!(reached.id, alice());
    assert!(reached.sent_at.is_some() && reached.answer.is_none());
    assert!(status.tiers[1].started_at.is_none());
    assert_eq!(sdk.alarm(&MessageId::random()).await.unwrap(), None);

    let open = sdk.alarms(true).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].alarm_id, first.alarm_id);
    let resolved = sdk.resolve_alarm(&first.alarm_id).await.unwrap();
    assert_eq!(resolved.state, AlarmState::Resolved);
    assert!(resolved.ended_at.is_some());
    assert!(sdk.alarms(true).await.unwrap().is_empty());
    let all = sdk.alarms(false).await.unwrap();
    assert_eq!(
        (all.len(), all[0].state),
        (1, AlarmState::Resolved),
        "{all:?}"
    );
    let unknown = sdk.resolve_alarm(&MessageId::random()).await;
    assert!(matches!(unknown, Err(Error::NotFound)), "{unknown:?}");
}

#[tokio::test]
async fn an_end_to_end_alarm_carries_boxes_the_sdk_sealed_per_recipient() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    let keys = app.identity("ALICE123", None, None).await;
    let e2e = e2e_client(&app, &gw);
    let boxes = e2e
        .alarm_boxes(&[alice()], "Fire, building 3")
        .await
        .unwrap();
    let alarm = AlarmRequest {
        tiers: vec![AlarmTier {
            boxes,
            ..AlarmTier::default()
        }],
        ..AlarmRequest::default()
    };
    let triggered = e2e.client().trigger_alarm(&alarm, None).await.unwrap();
    let queued = app.queued("ALICE123").await;
    assert_eq!(queued[0].message_id, triggered.alarm_id);
    let shared = SharedKey::new(&keys.secret, &gw.keys.public).unwrap();
    let plain = shared.open(&queued[0].nonce, &queued[0].body).unwrap();
    assert_eq!(
        E2eMessage::from_padded(&plain).unwrap(),
        E2eMessage::Text("Fire, building 3".into())
    );
    let nobody = IdentityId::parse("ZZZZZZZZ").unwrap();
    let missing = e2e.alarm_boxes(&[nobody], "x").await;
    assert!(matches!(missing, Err(Error::NotFound)), "{missing:?}");
    let basic = AlarmRequest {
        text: Some("x".into()),
        tiers: vec![AlarmTier {
            to: vec![alice()],
            ..AlarmTier::default()
        }],
        ..AlarmRequest::default()
    };
    let refused = e2e.client().trigger_alarm(&basic, None).await;
    assert!(matches!(refused, Err(Error::BadRequest(_))), "{refused:?}");

    let broke = app.gateway(GatewayMode::Basic, 0).await;
    let no_credits = client(&app, &broke).trigger_alarm(&basic, None).await;
    assert!(
        matches!(no_credits, Err(Error::NoCredits)),
        "{no_credits:?}"
    );
}
