//! `/api/v1/alarms` against the real server: tiers that start on the alarm's clock (the
//! test steps it with its own time, as the server's clock does with the real one),
//! charges per delivery, dedup and idempotency, resolve and expiry, and the refusals.

use base64::Engine;
use serde_json::{json, Value};
use tocsin::alarms::AlarmClock;
use tocsin::domain::UnixMs;
use tocsin::store::{AlarmState, GatewayMode};
use tocsin_sdk::protocol::csp::Payload;
use tocsin_sdk::protocol::{Answer, IdentityId, MessageId, Nonce, Priority, StopReason};

use super::chat::Device;
use crate::helpers::{spawn_app_with, TestApp, TestGateway};

async fn trigger(
    app: &TestApp,
    gw: &TestGateway,
    body: &Value,
    idempotency_key: Option<&str>,
) -> (u16, Value) {
    let mut req = app
        .client
        .post(app.url(&format!("/api/v1/alarms?{}", gw.credentials())))
        .json(body);
    if let Some(key) = idempotency_key {
        req = req.header("Idempotency-Key", key);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn get(app: &TestApp, gw: &TestGateway, path: &str) -> (u16, Value) {
    let sep = if path.contains('?') { '&' } else { '?' };
    let res = app
        .client
        .get(app.url(&format!("{path}{sep}{}", gw.credentials())))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn resolve(app: &TestApp, gw: &TestGateway, id: &str) -> Value {
    let res = app
        .client
        .post(app.url(&format!("/api/v1/alarms/{id}/resolve?{}", gw.credentials())))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// The message IDs queued for `who`.
async fn queued(app: &TestApp, who: &str) -> Vec<String> {
    let id = IdentityId::parse(who).unwrap();
    app.state
        .store
        .queued_for(&id, 100)
        .await
        .unwrap()
        .iter()
        .map(|q| q.message.message_id.to_string())
        .collect()
}

async fn balance(app: &TestApp, gw: &TestGateway) -> i64 {
    app.state
        .store
        .account(gw.account)
        .await
        .unwrap()
        .unwrap()
        .balance
}

/// The time the alarm was created, from its view.
fn created(view: &Value) -> UnixMs {
    UnixMs::new(view["createdAt"].as_i64().unwrap())
}

#[tokio::test]
async fn an_unanswered_alarm_escalates_to_its_next_tier_and_stops_when_resolved() {
    let app = spawn_app_with(&[]).await;
    let gw = app.gateway(GatewayMode::Basic, 10).await;
    app.identity("ALICE123", None, None).await;
    app.identity("BOB45678", None, None).await;
    let body = json!({
        "text": "Fire alarm, building 3",
        "priority": "critical",
        "tiers": [
            {"to": ["ALICE123"]},
            {"afterSecs": 300, "to": ["BOB45678"]},
            {"afterSecs": 600, "to": ["CAROL999"]},
        ],
    });
    let (status, answer) = trigger(&app, &gw, &body, None).await;
    assert_eq!(status, 400, "an unknown recipient: {answer}");
    let body = json!({
        "text": "Fire alarm, building 3",
        "priority": "critical",
        "tiers": [{"to": ["ALICE123"]}, {"afterSecs": 300, "to": ["BOB45678"]}],
    });
    let (status, answer) = trigger(&app, &gw, &body, None).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["state"], "triggered");
    assert_eq!(answer["deduplicated"], false);
    let id = answer["alarmId"].as_str().unwrap().to_owned();
    // Tier 1 at once, its delivery carrying the alarm's ID; tier 2 not yet.
    assert_eq!(queued(&app, "ALICE123").await, [id.as_str()]);
    assert!(queued(&app, "BOB45678").await.is_empty());
    assert_eq!(balance(&app, &gw).await, 9);

    let (status, view) = get(&app, &gw, &format!("/api/v1/alarms/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(view["priority"], "critical");
    assert!(view["tiers"][0]["startedAt"].is_i64());
    assert!(view["tiers"][1].get("startedAt").is_none());
    assert_eq!(view["tiers"][1]["recipients"][0]["id"], "BOB45678");
    let t0 = created(&view);

    let clock = AlarmClock::new(app.state.clone());
    clock.run_once(t0.plus_ms(299_000)).await.unwrap();
    assert!(queued(&app, "BOB45678").await.is_empty(), "not due yet");
    assert_eq!(clock.run_once(t0.plus_ms(300_000)).await.unwrap(), 1);
    assert_eq!(queued(&app, "BOB45678").await, [id.as_str()]);
    assert_eq!(balance(&app, &gw).await, 8);
    assert_eq!(clock.run_once(t0.plus_ms(301_000)).await.unwrap(), 0);

    let (_, open) = get(&app, &gw, "/api/v1/alarms?state=open").await;
    assert_eq!(open[0]["alarmId"], id.as_str());
    let resolved = resolve(&app, &gw, &id).await;
    assert_eq!(resolved["state"], "resolved");
    assert!(resolved["endedAt"].is_i64());
    let (_, open) = get(&app, &gw, "/api/v1/alarms?state=open").await;
    assert_eq!(open, json!([]));
    let (_, all) = get(&app, &gw, "/api/v1/alarms").await;
    assert_eq!(all[0]["state"], "resolved");
    // Resolving again answers it as it is.
    assert_eq!(resolve(&app, &gw, &id).await["state"], "resolved");
    assert_eq!(
        clock.run_once(t0.plus_ms(4_000_000)).await.unwrap(),
        0,
        "an ended alarm is never due"
    );
    // Another gateway ID's alarm is unknown here.
    let other = app.gateway(GatewayMode::Basic, 1).await;
    assert_eq!(
        get(&app, &other, &format!("/api/v1/alarms/{id}")).await.0,
        404
    );
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// End-to-end mode: the boxes of a tier that never starts are held, and deleted when the
/// alarm expires; an alarm past its expiry ends `expired`.
#[tokio::test]
async fn an_e2e_alarm_holds_later_boxes_until_their_tier_and_drops_them_when_it_expires() {
    let app = spawn_app_with(&[]).await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    app.identity("ALICE123", None, None).await;
    app.identity("BOB45678", None, None).await;
    let sealed = |to: &str| json!({"to": to, "nonce": b64(Nonce::random().as_bytes()), "box": b64(&[9; 64])});
    let body = json!({
        "expiresAfterSecs": 120,
        "tiers": [
            {"boxes": [sealed("ALICE123")]},
            {"afterSecs": 90, "boxes": [sealed("BOB45678")]},
        ],
    });
    let (status, answer) = trigger(
        &app,
        &gw,
        &json!({"text": "x", "tiers": [{"boxes": [sealed("ALICE123")]}]}),
        None,
    )
    .await;
    assert_eq!(status, 400, "text in end-to-end mode: {answer}");
    let (status, answer) = trigger(&app, &gw, &body, None).await;
    assert_eq!(status, 200, "{answer}");
    let id = MessageId::parse(answer["alarmId"].as_str().unwrap()).unwrap();
    let alarm = app.state.store.alarm(&gw.id, &id).await.unwrap().unwrap();
    let held: Vec<bool> = alarm.recipients.iter().map(|r| r.held.is_some()).collect();
    assert_eq!(held, [false, true], "tier 1 sent, tier 2 held");
    let clock = AlarmClock::new(app.state.clone());
    clock.run_once(alarm.expires_at).await.unwrap();
    let alarm = app.state.store.alarm(&gw.id, &id).await.unwrap().unwrap();
    assert_eq!(alarm.state, AlarmState::Expired);
    assert!(
        alarm.recipients.iter().all(|r| r.held.is_none()),
        "boxes deleted"
    );
    assert!(queued(&app, "BOB45678").await.is_empty());
}

/// A trigger with the dedup key of an open alarm, or a retry with the same
/// Idempotency-Key, answers the alarm that stands, charging nothing; once resolved, the
/// dedup key starts a new alarm, while the Idempotency-Key still answers the old one.
#[tokio::test]
async fn dedup_keys_merge_triggers_of_an_open_alarm_and_idempotency_keys_any_retry() {
    let app = spawn_app_with(&[]).await;
    let gw = app.gateway(GatewayMode::Basic, 10).await;
    app.identity("ALICE123", None, None).await;
    let body = json!({
        "text": "Disk full on db-1",
        "dedupKey": "disk-full/db-1",
        "tiers": [{"to": ["ALICE123"]}],
    });
    let (_, first) = trigger(&app, &gw, &body, Some("req-1")).await;
    let (_, second) = trigger(&app, &gw, &body, None).await;
    assert_eq!(second["alarmId"], first["alarmId"]);
    assert_eq!(second["deduplicated"], true);
    assert_eq!(balance(&app, &gw).await, 9, "charged once");
    resolve(&app, &gw, first["alarmId"].as_str().unwrap()).await;
    let (_, retry) = trigger(&app, &gw, &body, Some("req-1")).await;
    assert_eq!(retry["alarmId"], first["alarmId"]);
    assert_eq!(retry["state"], "resolved");
    let (_, fresh) = trigger(&app, &gw, &body, None).await;
    assert_ne!(fresh["alarmId"], first["alarmId"]);
    assert_eq!(fresh["deduplicated"], false);
    assert_eq!(balance(&app, &gw).await, 8);
}

/// 402 when the first tier cannot be paid, with nothing stored; the other refusals name
/// what to fix.
#[tokio::test]
async fn a_trigger_the_balance_cannot_pay_or_that_is_malformed_is_refused_whole() {
    let app = spawn_app_with(&[]).await;
    let poor = app.gateway(GatewayMode::Basic, 1).await;
    app.identity("ALICE123", None, None).await;
    app.identity("BOB45678", None, None).await;
    let two = json!({"text": "t", "tiers": [{"to": ["ALICE123", "BOB45678"]}]});
    assert_eq!(trigger(&app, &poor, &two, None).await.0, 402);
    let (_, listed) = get(&app, &poor, "/api/v1/alarms").await;
    assert_eq!(listed, json!([]), "nothing stored");
    assert_eq!(balance(&app, &poor).await, 1);
    for (body, why) in [
        (json!({"tiers": [{"to": ["ALICE123"]}]}), "text is missing"),
        (json!({"text": "t", "tiers": []}), "1 to 10 tiers"),
        (
            json!({"text": "t", "tiers": [{"afterSecs": 5, "to": ["ALICE123"]}]}),
            "afterSecs is 0",
        ),
        (
            json!({"text": "t", "tiers": [{"to": ["ALICE123"]}], "priority": "urgent"}),
            "priority",
        ),
        (
            json!({"text": "t", "tiers": [{"to": ["ALICE123"]}], "ringEverySecs": 1}),
            "ringEverySecs",
        ),
        (
            json!({"text": "t", "tiers": [{"to": ["ALICE123"]}], "requiredAcks": 2}),
            "requiredAcks",
        ),
        (
            json!({"text": "t", "tiers": [{"to": ["ALICE123"]}], "colour": "red"}),
            "unknown field",
        ),
        (
            json!({"text": "t", "tiers": [{"to": ["ALICE123"]}, {"afterSecs": 4000, "to": ["BOB45678"]}]}),
            "less than expiresAfterSecs",
        ),
    ] {
        let (status, answer) = trigger(&app, &poor, &body, None).await;
        assert_eq!(status, 400, "{body}");
        assert!(
            answer.as_str().unwrap_or_default().contains(why),
            "{body}: {answer}"
        );
    }
    assert_eq!(get(&app, &poor, "/api/v1/alarms?state=shut").await.0, 400);
    assert_eq!(
        get(&app, &poor, "/api/v1/alarms/0011223344556677").await.0,
        404
    );
}

/// A recipient's device answers `coming` over the chat connection (`ALARM_ANSWER`): the
/// answer is recorded with its ETA and note and confirmed with `ALARM_STOP`, the quorum of
/// one acknowledges the alarm, and its next tier never starts. An identity the alarm did
/// not reach cannot answer it.
#[tokio::test]
async fn a_coming_answer_from_a_device_acknowledges_the_alarm_and_stops_its_escalation() {
    let app = spawn_app_with(&[]).await;
    let gw = app.gateway(GatewayMode::Basic, 10).await;
    let alice = app.identity("ALICE123", None, None).await;
    app.identity("BOB45678", None, None).await;
    let body = json!({
        "text": "Fire alarm, building 3",
        "tiers": [{"to": ["ALICE123"]}, {"afterSecs": 300, "to": ["BOB45678"]}],
    });
    let (_, answer) = trigger(&app, &gw, &body, None).await;
    let id = MessageId::parse(answer["alarmId"].as_str().unwrap()).unwrap();
    let mut device = Device::connect(&app, "ALICE123", &alice, Some(1)).await;
    loop {
        match device.recv().await.expect("the alarm's message") {
            Payload::IncomingMessage(m) => {
                assert_eq!(m.message_id, id);
                device
                    .send(&Payload::ClientAck {
                        sender: m.sender,
                        message_id: m.message_id,
                    })
                    .await;
            }
            Payload::QueueSendComplete => break,
            _ => {}
        }
    }
    let gateway = *gw.id.as_identity();
    let coming = Payload::alarm_answer(gateway, id, Answer::Coming, Some(5), "on my way").unwrap();
    device.send(&coming).await;
    let stop = device.recv().await.expect("the answer confirmed");
    let stop = stop.as_alarm_stop().expect("an ALARM_STOP");
    assert_eq!(
        (stop.message_id, stop.reason, stop.answer),
        (id, StopReason::Answered, Some(Answer::Coming))
    );
    let (_, view) = get(&app, &gw, &format!("/api/v1/alarms/{id}")).await;
    assert_eq!(view["state"], "acknowledged");
    let alice_view = &view["tiers"][0]["recipients"][0];
    assert_eq!(
        (
            &alice_view["answer"],
            &alice_view["etaMinutes"],
            &alice_view["note"]
        ),
        (&json!("coming"), &json!(5), &json!("on my way"))
    );
    let clock = AlarmClock::new(app.state.clone());
    clock
        .run_once(created(&view).plus_ms(300_000))
        .await
        .unwrap();
    assert!(queued(&app, "BOB45678").await.is_empty(), "no escalation");
    assert_eq!(balance(&app, &gw).await, 9);
    let bob = IdentityId::parse("BOB45678").unwrap();
    let frame = coming.as_alarm_answer().unwrap();
    let by_bob = tocsin::alarms::answer(&app.state, &bob, &frame, UnixMs::now()).await;
    assert_eq!(by_bob.unwrap(), None, "the alarm never reached BOB45678");
}

/// A tier may name an on-call group of the account: its members when the tier starts
/// are reached (someone added after the trigger too).
#[tokio::test]
async fn a_tier_naming_a_group_reaches_its_members_when_it_starts() {
    let app = spawn_app_with(&[]).await;
    let gw = app.gateway(GatewayMode::Basic, 10).await;
    app.identity("ALICE123", None, None).await;
    app.identity("BOB45678", None, None).await;
    app.identity("CAROL999", None, None).await;
    let store = &app.state.store;
    store
        .create_group(gw.account, "night-shift", UnixMs::now())
        .await
        .unwrap();
    let bob = IdentityId::parse("BOB45678").unwrap();
    let carol = IdentityId::parse("CAROL999").unwrap();
    store
        .change_group(gw.account, "night-shift", &[bob], true)
        .await
        .unwrap();
    let body = json!({
        "text": "Pump 3 failed",
        "tiers": [{"to": ["ALICE123"]}, {"afterSecs": 60, "groups": ["night-shift"]}],
    });
    let (status, answer) = trigger(&app, &gw, &body, None).await;
    assert_eq!(status, 200, "{answer}");
    let id = answer["alarmId"].as_str().unwrap().to_owned();
    store
        .change_group(gw.account, "night-shift", &[carol], true)
        .await
        .unwrap();
    let (_, view) = get(&app, &gw, &format!("/api/v1/alarms/{id}")).await;
    assert_eq!(view["tiers"][1]["groups"], json!(["night-shift"]));
    let clock = AlarmClock::new(app.state.clone());
    clock
        .run_once(created(&view).plus_ms(60_000))
        .await
        .unwrap();
    assert_eq!(queued(&app, "BOB45678").await, [id.as_str()]);
    assert_eq!(queued(&app, "CAROL999").await, [id.as_str()]);
    let (_, view) = get(&app, &gw, &format!("/api/v1/alarms/{id}")).await;
    let reached: Vec<&str> = view["tiers"][1]["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(reached, ["BOB45678", "CAROL999"]);
    assert_eq!(balance(&app, &gw).await, 7);
}

/// The frames of a ringing alarm, read by `device` until `done` says it has what it
/// waits for; incoming messages are acked.
async fn frames_until(
    device: &mut Device,
    mut done: impl FnMut(&[Payload]) -> bool,
) -> Vec<Payload> {
    let mut seen = Vec::new();
    while !done(&seen) {
        let frame = tokio::time::timeout(crate::helpers::wait::PATIENCE, device.recv())
            .await
            .expect("a frame in time")
            .expect("the session goes on");
        if let Payload::IncomingMessage(m) = &frame {
            device
                .send(&Payload::ClientAck {
                    sender: m.sender,
                    message_id: m.message_id,
                })
                .await;
        }
        seen.push(frame);
    }
    seen
}

fn rings(frames: &[Payload]) -> Vec<u16> {
    frames
        .iter()
        .filter_map(|f| f.as_alarm_ring().map(|r| r.ring))
        .collect()
}

/// Both devices of a recipient are told the message is an alarm (ring 0) and rung every
/// `ringEverySecs` up to `maxRings`; when one device answers, both stop ringing.
#[tokio::test]
async fn every_device_of_a_recipient_rings_until_one_of_them_answers() {
    let app = spawn_app_with(&[]).await;
    let gw = app.gateway(GatewayMode::Basic, 10).await;
    let alice = app.identity("ALICE123", None, None).await;
    let mut phone = Device::connect(&app, "ALICE123", &alice, Some(1)).await;
    let mut laptop = Device::connect(&app, "ALICE123", &alice, Some(2)).await;
    for device in [&mut phone, &mut laptop] {
        assert!(device.drain_queue().await.is_empty());
    }
    let body = json!({
        "text": "Fire alarm, building 3",
        "priority": "high",
        "ringEverySecs": 30,
        "maxRings": 2,
        "tiers": [{"to": ["ALICE123"]}],
    });
    let (_, answer) = trigger(&app, &gw, &body, None).await;
    let id = MessageId::parse(answer["alarmId"].as_str().unwrap()).unwrap();
    for device in [&mut phone, &mut laptop] {
        let frames = frames_until(device, |seen| {
            rings(seen) == [0]
                && seen
                    .iter()
                    .any(|f| matches!(f, Payload::IncomingMessage(_)))
        })
        .await;
        let ring = frames.iter().find_map(Payload::as_alarm_ring).unwrap();
        assert_eq!(
            (ring.message_id, ring.priority, ring.tier),
            (id, Priority::High, 1)
        );
    }
    let (_, view) = get(&app, &gw, &format!("/api/v1/alarms/{id}")).await;
    let t0 = UnixMs::new(view["tiers"][0]["startedAt"].as_i64().unwrap());
    let clock = AlarmClock::new(app.state.clone());
    for (at, ring) in [(30_000, 1), (60_000, 2)] {
        clock.run_once(t0.plus_ms(at)).await.unwrap();
        for device in [&mut phone, &mut laptop] {
            let frames = frames_until(device, |seen| !rings(seen).is_empty()).await;
            assert_eq!(rings(&frames), [ring]);
        }
    }
    clock.run_once(t0.plus_ms(90_000)).await.unwrap();
    let (_, view) = get(&app, &gw, &format!("/api/v1/alarms/{id}")).await;
    assert_eq!(view["tiers"][0]["recipients"][0]["rings"], 2, "maxRings");

    let gateway = *gw.id.as_identity();
    let coming = Payload::alarm_answer(gateway, id, Answer::Coming, None, "").unwrap();
    phone.send(&coming).await;
    for device in [&mut phone, &mut laptop] {
        let frames = frames_until(device, |seen| {
            seen.iter().any(|f| f.as_alarm_stop().is_some())
        })
        .await;
        let stop = frames.iter().find_map(Payload::as_alarm_stop).unwrap();
        assert_eq!(
            (stop.reason, stop.answer),
            (StopReason::Answered, Some(Answer::Coming))
        );
    }
}

/// Alertmanager's webhook through an integration: a firing group triggers one alarm with
/// a text from its alerts, a repeat notification merges into it, `resolved` resolves it;
/// Grafana's sample notification triggers too; an unknown token is a 404.
#[tokio::test]
async fn alertmanager_and_grafana_notifications_trigger_and_resolve_alarms() {
    use tocsin::admin::{AdminCommand, IntegrationCommand};
    let app = spawn_app_with(&[]).await;
    let gw = app.gateway(GatewayMode::Basic, 10).await;
    app.identity("ALICE123", None, None).await;
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("tiers.json");
    std::fs::write(
        &template,
        r#"{"tiers": [{"to": ["ALICE123"]}], "priority": "high"}"#,
    )
    .unwrap();
    let mut out = Vec::new();
    let create = IntegrationCommand::Create {
        kind: tocsin::admin::IntegrationKind::Alertmanager,
        gateway: gw.id.to_string(),
        tiers: template,
    };
    tocsin::admin::run(&app.state, AdminCommand::Integration(create), &mut out)
        .await
        .unwrap();
    let out = String::from_utf8(out).unwrap();
    let path = out
        .lines()
        .find_map(|l| l.strip_prefix("webhook path: "))
        .unwrap()
        .to_owned();
    let post = |path: String, body: Value| {
        let req = app.client.post(app.url(&path)).json(&body);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    let firing = json!({
        "version": "4", "groupKey": "{}:{alertname=\"DiskFull\"}", "truncatedAlerts": 0,
        "status": "firing", "receiver": "tocsin", "groupLabels": {"alertname": "DiskFull"},
        "commonLabels": {"alertname": "DiskFull", "severity": "critical"},
        "commonAnnotations": {}, "externalURL": "http://alertmanager:9093",
        "alerts": [{"status": "firing",
                    "labels": {"alertname": "DiskFull", "instance": "db-1"},
                    "annotations": {"summary": "Disk 97% full on db-1"},
                    "startsAt": "2026-12-05T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://prometheus/graph", "fingerprint": "b1f3"}]
    });
    assert_eq!(post(path.clone(), firing.clone()).await, 200);
    assert_eq!(post(path.clone(), firing.clone()).await, 200, "a repeat");
    let (_, open) = get(&app, &gw, "/api/v1/alarms?state=open").await;
    assert_eq!(
        open.as_array().unwrap().len(),
        1,
        "one alarm per group: {open}"
    );
    assert_eq!(open[0]["priority"], "high");
    let id = MessageId::parse(open[0]["alarmId"].as_str().unwrap()).unwrap();
    let alarm = app.state.store.alarm(&gw.id, &id).await.unwrap().unwrap();
    let text = app
        .state
        .data_key
        .open(alarm.content.as_ref().unwrap())
        .unwrap();
    assert_eq!(
        String::from_utf8(text.to_vec()).unwrap(),
        "[FIRING:1] DiskFull\n- Disk 97% full on db-1"
    );
    assert_eq!(balance(&app, &gw).await, 9, "charged once");
    let mut resolved = firing.clone();
    resolved["status"] = json!("resolved");
    assert_eq!(post(path.clone(), resolved).await, 200);
    let (_, view) = get(&app, &gw, &format!("/api/v1/alarms/{id}")).await;
    assert_eq!(view["state"], "resolved");

    // Grafana's webhook contact point, its sample notification.
    let grafana = json!({
        "receiver": "tocsin", "status": "firing", "orgId": 1,
        "alerts": [{"status": "firing",
                    "labels": {"alertname": "High CPU", "grafana_folder": "Servers"},
                    "annotations": {"description": "CPU above 90% on web-2"},
                    "startsAt": "2026-12-05T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://grafana/alerting/grafana/abc/view",
                    "fingerprint": "57c6d9296de2ad39", "silenceURL": "http://grafana/silence",
                    "dashboardURL": "", "panelURL": "", "values": {"B": 95.2}}],
        "groupLabels": {"alertname": "High CPU"},
        "commonLabels": {"alertname": "High CPU", "grafana_folder": "Servers"},
        "commonAnnotations": {}, "externalURL": "http://grafana/",
        "version": "1", "groupKey": "{}/{}:{alertname=\"High CPU\"}", "truncatedAlerts": 0,
        "title": "[FIRING:1] High CPU Servers", "state": "alerting",
        "message": "**Firing**\n\nValue: B=95.2"
    });
    assert_eq!(post(path.clone(), grafana).await, 200);
    let (_, open) = get(&app, &gw, "/api/v1/alarms?state=open").await;
    assert_eq!(open.as_array().unwrap().len(), 1, "{open}");
    let unknown = format!("/hooks/alertmanager/{}", "0".repeat(64));
    assert_eq!(post(unknown, firing).await, 404);
}
