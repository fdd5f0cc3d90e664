//! The status webhook against the real server: a receiver on 127.0.0.1 checks each
//! request with the SDK's `StatusReceiver` (signature with the gateway ID's signing
//! secret, freshness, duplicates) and takes the event; the server's own dispatcher delivers them, woken when they are stored.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use tocsin::callback::{Attempt, StatusDispatcher};
use tocsin::domain::UnixMs;
use tocsin::store::GatewayMode;
use tocsin_sdk::client::{E2eClient, Recipient};
use tocsin_sdk::device::{Admission, Connection, DeviceKeys, Event, Received};
use tocsin_sdk::protocol::csp::Payload;
use tocsin_sdk::protocol::{
    Answer, ApiSecret, GatewayId, IdentityId, MessageId, ReceiptStatus, StatusEvent, StatusKind,
    StatusSecret, STATUS_SIGNATURE_HEADER,
};
use tocsin_sdk::receive::{CallbackReceiver, StatusReceiver};
use tokio::sync::mpsc;

use crate::helpers::wait::PATIENCE;
use crate::helpers::{gateway_client, loopback_allowed, spawn_app_with, TestApp, TestGateway};

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// What the receiver answered, in order.
type Answered = Arc<Mutex<Vec<u16>>>;

/// A status receiver on 127.0.0.1 built on the SDK's `StatusReceiver` for `gw` with
/// `secret`, its clock `ahead_secs` ahead of the real one (as the server's is for a test
/// that moves it): what it takes is sent on; what it answered is kept.
async fn serve(
    gw: GatewayId,
    secret: StatusSecret,
    ahead_secs: u64,
) -> (SocketAddr, mpsc::UnboundedReceiver<StatusEvent>, Answered) {
    let (taken, got) = mpsc::unbounded_channel();
    let answered: Answered = Arc::default();
    let shared = Arc::new((StatusReceiver::new(gw, secret), taken, answered.clone()));
    let server = HttpServer::new(move || {
        let shared = shared.clone();
        App::new().default_service(web::to(move |request: HttpRequest, body: web::Bytes| {
            let shared = shared.clone();
            async move {
                let (receiver, taken, answered) = &*shared;
                let header = request
                    .headers()
                    .get(STATUS_SIGNATURE_HEADER)
                    .and_then(|v| v.to_str().ok());
                let json = request
                    .headers()
                    .get("content-type")
                    .is_some_and(|v| v == "application/json");
                let status = match receiver.receive(&body, header, unix_now() + ahead_secs) {
                    Ok(event) if json => {
                        taken.send(event).unwrap();
                        200
                    }
                    Ok(_) => 415,
                    Err(refused) => refused.status(),
                };
                answered.lock().unwrap().push(status);
                HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).finish()
            }
        }))
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .unwrap();
    let addr = server.addrs()[0];
    tokio::spawn(server.run());
    (addr, got, answered)
}

/// A gateway ID of `mode` whose status events go to a receiver that knows its secret.
async fn hooked(
    app: &TestApp,
    mode: GatewayMode,
    ahead_secs: u64,
) -> (TestGateway, mpsc::UnboundedReceiver<StatusEvent>, Answered) {
    let gw = app.gateway(mode, 10).await;
    let secret = StatusSecret::generate();
    let (addr, got, answered) = serve(gw.id, secret.clone(), ahead_secs).await;
    app.status_webhook(&gw, &format!("http://{addr}/status"), &secret)
        .await;
    (gw, got, answered)
}

/// The next `n` events, in whatever order they came (each is delivered on its own).
async fn next_events(got: &mut mpsc::UnboundedReceiver<StatusEvent>, n: usize) -> Vec<StatusEvent> {
    let mut events = Vec::new();
    while events.len() < n {
        let event = tokio::time::timeout(PATIENCE, got.recv())
            .await
            .expect("the dispatcher delivers the status events in time")
            .unwrap();
        events.push(event);
    }
    events.sort_by_key(|e| e.kind.name());
    events
}

/// The report of `event`, which must be about `message` to `to`.
fn about(event: &StatusEvent, message: &MessageId, to: &IdentityId) -> i64 {
    let report = event
        .kind
        .report()
        .unwrap_or_else(|| panic!("not a message event: {event:?}"));
    assert_eq!((&report.message_id, &report.recipient), (message, to));
    report.at
}

async fn next_message(connection: &mut Connection) -> Received {
    loop {
        let event = tokio::time::timeout(PATIENCE, connection.next_event())
            .await
            .expect("an event in time")
            .unwrap();
        if let Event::Message(received) = event {
            return *received;
        }
    }
}

/// Basic mode: the device's ack is `message.delivered`, its receipts (which the server
/// opens) `message.read` and `message.acknowledged`; each state once, however often it is
/// receipted; every request signed with the ID's own secret.
#[tokio::test]
async fn a_basic_ids_message_states_reach_its_status_url_signed_and_once_each() {
    let app = spawn_app_with(&loopback_allowed()).await;
    let (gw, mut got, answered) = hooked(&app, GatewayMode::Basic, 0).await;
    let keys = DeviceKeys::init(&app.url(""), Admission::Open, None)
        .await
        .unwrap();
    let alert = gateway_client(&app, &gw)
        .send_simple(&Recipient::Id(keys.identity), "Your code: 482913")
        .await
        .unwrap();
    let mut device = Connection::connect(&keys, &keys.directory().unwrap())
        .await
        .unwrap();
    let received = next_message(&mut device).await;
    assert_eq!(received.message_id, alert);
    device.ack(&received).await.unwrap();
    let gateway = *gw.id.as_identity();
    for status in [
        ReceiptStatus::Received,
        ReceiptStatus::Read,
        ReceiptStatus::Read,
        ReceiptStatus::Acknowledged,
    ] {
        device
            .send_receipt(&gateway, status, &[alert])
            .await
            .unwrap();
    }
    let events = next_events(&mut got, 3).await;
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.name()).collect();
    assert_eq!(
        kinds,
        ["message.acknowledged", "message.delivered", "message.read"]
    );
    for event in &events {
        assert_eq!(event.gateway_id, gw.id);
        let at = about(event, &alert, &keys.identity);
        assert!(at.abs_diff(UnixMs::now().get()) < 60_000, "{at}");
    }
    app.until_statuses_sent(&gw).await;
    assert_eq!(
        *answered.lock().unwrap(),
        [200, 200, 200],
        "nothing more came"
    );
    device.close().await;
}

/// An OTP with a 60-second TTL that nobody fetched: at 61 seconds (on the test's clock,
/// handed to the store's expiry and to a dispatcher) it is deleted and `message.expired` reaches the status URL; a
/// device that connects then finds nothing waiting.
#[tokio::test]
async fn an_otp_past_its_ttl_is_reported_expired() {
    let app = spawn_app_with(&loopback_allowed()).await;
    let (gw, mut got, _) = hooked(&app, GatewayMode::Basic, 61).await;
    let keys = DeviceKeys::init(&app.url(""), Admission::Open, None)
        .await
        .unwrap();
    let sent_at = UnixMs::now();
    let form = format!(
        "{}&to={}&text=482913&ttl=60",
        gw.credentials(),
        keys.identity
    );
    let (status, otp) = app.post_form("/send_simple", form).await;
    assert_eq!(status, 200, "{otp}");
    let store = &app.state.store;
    assert_eq!(
        store
            .expire_messages(sent_at.plus_ms(59_000))
            .await
            .unwrap(),
        0
    );
    let later = sent_at.plus_ms(61_000);
    assert_eq!(store.expire_messages(later).await.unwrap(), 1);
    // The event is due from the moment it happened, on the test's clock; a dispatcher
    // running on that clock delivers it (the server's own runs on the real one).
    let dispatcher = Arc::new(StatusDispatcher::new(app.state.clone()).unwrap());
    let outcomes = dispatcher.run_once(later).await.unwrap();
    assert_eq!(outcomes, [Attempt::Delivered]);
    let events = next_events(&mut got, 1).await;
    assert_eq!(events[0].kind.name(), "message.expired");
    let otp = MessageId::parse(&otp).unwrap();
    assert_eq!(about(&events[0], &otp, &keys.identity), later.get());
    assert!(store
        .queued_for(&keys.identity, 10)
        .await
        .unwrap()
        .is_empty());
}

/// End-to-end mode: the callback URL gets what it always got (the device's reply and its
/// sealed receipt, as form posts MAC'd with the API secret); the status URL gets
/// `message.delivered` only, since the server cannot read an E2E receipt.
#[tokio::test]
async fn an_e2e_ids_callback_url_keeps_its_traffic_and_the_status_url_gets_the_delivery() {
    let app = spawn_app_with(&loopback_allowed()).await;
    let (gw, mut got, answered) = hooked(&app, GatewayMode::E2e, 0).await;
    let callbacks: Answered = Arc::default();
    let receiver = Arc::new(CallbackReceiver::new(
        gw.id,
        ApiSecret::parse(&gw.secret).unwrap(),
    ));
    let counted = callbacks.clone();
    let server = HttpServer::new(move || {
        let receiver = receiver.clone();
        let counted = counted.clone();
        App::new().default_service(web::to(move |body: web::Bytes| {
            let status = match receiver.receive(&body, unix_now()) {
                Ok(_) => 200,
                Err(refused) => refused.status(),
            };
            counted.lock().unwrap().push(status);
            async move {
                HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).finish()
            }
        }))
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .unwrap();
    let url = format!("http://{}/callback", server.addrs()[0]);
    tokio::spawn(server.run());
    app.state
        .store
        .set_callback_url(&gw.id, Some(&url))
        .await
        .unwrap();

    let keys = DeviceKeys::init(&app.url(""), Admission::Open, None)
        .await
        .unwrap();
    let alerts = E2eClient::new(gateway_client(&app, &gw), gw.keys.secret.clone());
    let alert = alerts
        .send_text(&keys.identity, "Disk full on db-1")
        .await
        .unwrap();
    let mut device = Connection::connect(&keys, &keys.directory().unwrap())
        .await
        .unwrap();
    let received = next_message(&mut device).await;
    device.ack(&received).await.unwrap();
    let gateway = *gw.id.as_identity();
    device.send_text(&gateway, "on it").await.unwrap();
    device
        .send_receipt(&gateway, ReceiptStatus::Read, &[alert])
        .await
        .unwrap();
    let events = next_events(&mut got, 1).await;
    assert_eq!(events[0].kind.name(), "message.delivered");
    about(&events[0], &alert, &keys.identity);
    app.until_outbox_empty(&gw).await;
    app.until_statuses_sent(&gw).await;
    assert_eq!(*callbacks.lock().unwrap(), [200, 200], "reply and receipt");
    assert_eq!(*answered.lock().unwrap(), [200], "the delivery alone");
    device.close().await;
}

/// An alarm's life on the status URL: `alarm.triggered` at once, `alarm.escalated` when
/// its second tier starts (on the alarm clock, stepped with the test's time), and
/// `alarm.resolved` when its sender resolves it.
#[tokio::test]
async fn an_alarms_life_reaches_the_status_url() {
    let app = spawn_app_with(&loopback_allowed()).await;
    // Events come signed at the real time and at the test's (300 s on): a receiver clock
    // 270 s ahead finds both within its window (300 s old, 60 s ahead).
    let (gw, mut got, _) = hooked(&app, GatewayMode::Basic, 270).await;
    app.identity("ALICE123", None, None).await;
    app.identity("BOB45678", None, None).await;
    let body = serde_json::json!({
        "text": "Pump 3 failed",
        "dedupKey": "pump-3",
        "tiers": [{"to": ["ALICE123"]}, {"afterSecs": 300, "to": ["BOB45678"]}],
    });
    let res = app
        .client
        .post(app.url(&format!("/api/v1/alarms?{}", gw.credentials())))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let answer: serde_json::Value = res.json().await.unwrap();
    let id = MessageId::parse(answer["alarmId"].as_str().unwrap()).unwrap();
    let triggered = next_events(&mut got, 1).await;
    let StatusKind::AlarmTriggered(t) = &triggered[0].kind else {
        panic!("{triggered:?}");
    };
    assert_eq!(
        (t.alarm_id, t.tiers, t.dedup_key.as_deref()),
        (id, 2, Some("pump-3"))
    );
    let alarm = app.state.store.alarm(&gw.id, &id).await.unwrap().unwrap();
    let clock = tocsin::alarms::AlarmClock::new(app.state.clone());
    clock
        .run_once(alarm.created_at.plus_ms(300_000))
        .await
        .unwrap();
    // The event is due at the test's time; a dispatcher on that clock delivers it.
    let dispatcher = Arc::new(StatusDispatcher::new(app.state.clone()).unwrap());
    let later = alarm.created_at.plus_ms(300_000);
    assert_eq!(
        dispatcher.run_once(later).await.unwrap(),
        [Attempt::Delivered]
    );
    let escalated = next_events(&mut got, 1).await;
    let StatusKind::AlarmEscalated(e) = &escalated[0].kind else {
        panic!("{escalated:?}");
    };
    assert_eq!(e.tier, 2);
    assert_eq!(e.recipients, [IdentityId::parse("BOB45678").unwrap()]);
    assert!(e.unpaid.is_empty());
    let res = app
        .client
        .post(app.url(&format!("/api/v1/alarms/{id}/resolve?{}", gw.credentials())))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let resolved = next_events(&mut got, 1).await;
    assert_eq!(resolved[0].kind.name(), "alarm.resolved");
    assert_eq!(resolved[0].kind.alarm_id(), Some(id));

    // Another alarm, answered `coming` by its recipient: answered, then acknowledged.
    let res = app
        .client
        .post(app.url(&format!("/api/v1/alarms?{}", gw.credentials())))
        .json(&serde_json::json!({"text": "Pump 4 failed", "tiers": [{"to": ["ALICE123"]}]}))
        .send()
        .await
        .unwrap();
    let answer: serde_json::Value = res.json().await.unwrap();
    let second = MessageId::parse(answer["alarmId"].as_str().unwrap()).unwrap();
    let alice = IdentityId::parse("ALICE123").unwrap();
    let frame = Payload::alarm_answer(*gw.id.as_identity(), second, Answer::Coming, None, "")
        .unwrap()
        .as_alarm_answer()
        .unwrap();
    tocsin::alarms::answer(&app.state, &alice, &frame, UnixMs::now())
        .await
        .unwrap()
        .expect("recorded");
    let events = next_events(&mut got, 3).await;
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.name()).collect();
    assert_eq!(
        kinds,
        ["alarm.acknowledged", "alarm.answered", "alarm.triggered"]
    );
    let StatusKind::AlarmAcknowledged(ack) = &events[0].kind else {
        panic!("{events:?}");
    };
    assert_eq!(
        (ack.alarm_id, ack.coming.as_slice()),
        (second, &[alice][..])
    );
    let StatusKind::AlarmAnswered(answered) = &events[1].kind else {
        panic!("{events:?}");
    };
    assert_eq!(
        (
            answered.responder,
            answered.answer,
            answered.note.as_deref()
        ),
        (alice, Answer::Coming, None)
    );
}
