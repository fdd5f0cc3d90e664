//! The callback dispatcher against real receivers on this machine: MAC and fields,
//! retries with backoff, restarts, dead letters, address guards, redirects, and a slow
//! receiver that holds up nobody else. Times are explicit: entries are due far in the
//! future, so the server's own background dispatcher never touches them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpResponse, HttpServer};
use tocsin::callback::{Attempt, CallbackDispatcher};
use tocsin::domain::UnixMs;
use tocsin::store::{CallbackEntry, Enqueued, GatewayMode, PendingCaps};
use tocsin_sdk::protocol::{
    verify_callback_mac, ApiSecret, CallbackFields, IdentityId, MessageId, Nonce,
};
use tokio::sync::Notify;

use crate::helpers::wait::{until, PATIENCE};
use crate::helpers::{loopback_allowed, spawn_app_with, TestApp, TestGateway};

/// Ten days ahead: out of reach of the background dispatcher.
fn later() -> UnixMs {
    UnixMs::now().plus_ms(10 * 24 * 3600 * 1000)
}

#[derive(Clone, Default)]
struct Receiver {
    /// Statuses to answer, in order; 200 once they run out.
    plan: Arc<Mutex<Vec<u16>>>,
    seen: Arc<Mutex<Vec<HashMap<String, String>>>>,
    /// When set, requests wait for this before answering.
    hold: Option<Arc<Notify>>,
    redirect_to: Option<String>,
}

impl Receiver {
    fn answering(plan: &[u16]) -> Self {
        Self {
            plan: Arc::new(Mutex::new(plan.iter().rev().copied().collect())),
            ..Self::default()
        }
    }

    async fn serve(self, ip: &str) -> SocketAddr {
        let this = self.clone();
        let server = HttpServer::new(move || {
            let this = this.clone();
            App::new().default_service(web::to(move |form: web::Form<HashMap<String, String>>| {
                let this = this.clone();
                async move {
                    this.seen.lock().unwrap().push(form.into_inner());
                    if let Some(hold) = &this.hold {
                        hold.notified().await;
                    }
                    if let Some(to) = &this.redirect_to {
                        return HttpResponse::Found()
                            .insert_header(("Location", to.clone()))
                            .finish();
                    }
                    let status = this.plan.lock().unwrap().pop().unwrap_or(200);
                    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
                        .finish()
                }
            }))
        })
        .workers(1)
        .disable_signals()
        .bind((ip, 0))
        .unwrap();
        let addr = server.addrs()[0];
        tokio::spawn(server.run());
        addr
    }

    fn requests(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

async fn with_callback(app: &TestApp, url: &str) -> TestGateway {
    let gw = app.gateway(GatewayMode::E2e, 0).await;
    app.state
        .store
        .set_callback_url(&gw.id, Some(url))
        .await
        .unwrap();
    gw
}

async fn enqueue(app: &TestApp, gw: &TestGateway, at: UnixMs) -> CallbackEntry {
    let entry = CallbackEntry {
        gateway: gw.id,
        sender: IdentityId::parse("ALICE123").unwrap(),
        message_id: MessageId::random(),
        sent_at: 1_700_000_000,
        nonce: Nonce::random(),
        body: vec![0x5a; 48],
        nickname: Some("Alice".into()),
    };
    let caps = PendingCaps {
        per_sender: 100,
        per_gateway: 100,
    };
    let enqueued = app.state.store.enqueue_callback(&entry, caps, at).await;
    assert_eq!(enqueued.unwrap(), Enqueued::Stored);
    entry
}

fn dispatcher(app: &TestApp) -> Arc<CallbackDispatcher> {
    Arc::new(CallbackDispatcher::new(app.state.clone()).unwrap())
}

#[tokio::test]
async fn a_500_then_200_is_retried_with_backoff_and_delivered_once_with_a_valid_mac() {
    let app = spawn_app_with(&loopback_allowed()).await;
    let receiver = Receiver::answering(&[500]);
    let addr = receiver.clone().serve("127.0.0.1").await;
    let gw = with_callback(&app, &format!("http://{addr}/hook")).await;
    let t = later();
    let entry = enqueue(&app, &gw, t).await;
    let d = dispatcher(&app);

    let first = d.run_once(t).await.unwrap();
    let Attempt::Retry { at, error } = &first[0] else {
        panic!("{first:?}")
    };
    assert!(error.contains("500"), "{error}");
    assert!(
        (t.plus_ms(4_000)..=t.plus_ms(6_000)).contains(at),
        "5 s ± 20 %: {}",
        at.ms_since(t)
    );
    assert!(
        d.run_once(t.plus_ms(1_000)).await.unwrap().is_empty(),
        "not due yet"
    );
    assert_eq!(
        d.run_once(t.plus_ms(6_001)).await.unwrap(),
        [Attempt::Delivered]
    );
    assert!(
        d.run_once(t.plus_ms(100_000)).await.unwrap().is_empty(),
        "delivered once"
    );
    assert!(app
        .state
        .store
        .callbacks_for(&gw.id)
        .await
        .unwrap()
        .is_empty());

    let seen = receiver.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    let form = &seen[1];
    assert_eq!(form["from"], "ALICE123");
    assert_eq!(form["to"], gw.id.as_str());
    assert_eq!(form["messageId"], entry.message_id.to_string());
    // The time of each attempt, under the MAC: a late retry is not stale to the receiver.
    assert_eq!(seen[0]["date"], t.as_secs().to_string());
    assert_eq!(form["date"], t.plus_ms(6_001).as_secs().to_string());
    assert_eq!(form["nonce"], entry.nonce.to_string());
    assert_eq!(form["box"], "5a".repeat(48));
    assert_eq!(form["nickname"], "Alice");
    let fields = CallbackFields {
        from: &form["from"],
        to: &form["to"],
        message_id: &form["messageId"],
        date: &form["date"],
        nonce: &form["nonce"],
        box_hex: &form["box"],
    };
    assert!(verify_callback_mac(
        &ApiSecret::parse(&gw.secret).unwrap(),
        &fields,
        &form["mac"]
    ));
}

#[tokio::test]
async fn an_entry_waiting_across_a_restart_is_still_delivered() {
    let app = spawn_app_with(&loopback_allowed()).await;
    let receiver = Receiver::answering(&[]);
    let addr = receiver.clone().serve("127.0.0.1").await;
    let gw = with_callback(&app, &format!("http://{addr}/hook")).await;
    let t = later();
    enqueue(&app, &gw, t).await;
    let app = app.restart().await;
    assert_eq!(
        dispatcher(&app).run_once(t).await.unwrap(),
        [Attempt::Delivered]
    );
    assert_eq!(receiver.requests(), 1);
}

#[tokio::test]
async fn past_the_horizon_an_entry_is_dead_lettered_and_visible() {
    let mut vars = loopback_allowed();
    vars.push(("TOCSIN__CALLBACKS__HORIZON_SECS", "20".into()));
    let app = spawn_app_with(&vars).await;
    let receiver = Receiver::answering(&[500, 500, 500]);
    let addr = receiver.clone().serve("127.0.0.1").await;
    let gw = with_callback(&app, &format!("http://{addr}/hook")).await;
    let t = later();
    let entry = enqueue(&app, &gw, t).await;
    let d = dispatcher(&app);
    assert!(matches!(
        d.run_once(t).await.unwrap()[..],
        [Attempt::Retry { .. }]
    ));
    // The second delay (30 s) would end past the 20 s horizon.
    assert!(matches!(
        d.run_once(t.plus_ms(7_000)).await.unwrap()[..],
        [Attempt::Dead { .. }]
    ));
    assert!(
        d.run_once(t.plus_ms(1_000_000)).await.unwrap().is_empty(),
        "dead entries are not retried"
    );
    let dead = app.state.store.dead_callbacks(&gw.id).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0].message_id, dead[0].attempts),
        (entry.message_id, 2)
    );
    assert!(dead[0].last_error.as_deref().unwrap().contains("500"));
}

#[tokio::test]
async fn forbidden_addresses_are_refused_without_sending_anything() {
    let app = spawn_app_with(&[]).await;
    let receiver = Receiver::answering(&[]);
    let addr = receiver.clone().serve("127.0.0.1").await;
    let t = later();
    let d = dispatcher(&app);
    for url in [
        format!("http://{addr}/hook"),
        format!("http://localhost:{}/hook", addr.port()),
        "http://10.1.2.3/hook".to_owned(),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        "http://[fd00::1]/hook".to_owned(),
    ] {
        let gw = with_callback(&app, &url).await;
        enqueue(&app, &gw, t).await;
        let outcome = d.run_once(t).await.unwrap();
        let [Attempt::Retry { error, .. }] = &outcome[..] else {
            panic!("{url}: {outcome:?}")
        };
        assert!(error.contains("refused"), "{url}: {error}");
    }
    assert_eq!(
        receiver.requests(),
        0,
        "nothing reached the loopback receiver"
    );
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let app = spawn_app_with(&[("TOCSIN__CALLBACKS__ALLOWED_RANGES", "127.0.0.1/32".into())]).await;
    let inner = Receiver::answering(&[]);
    let inner_addr = inner.clone().serve("127.0.0.2").await;
    let outer = Receiver {
        redirect_to: Some(format!("http://{inner_addr}/")),
        ..Receiver::default()
    };
    let outer_addr = outer.clone().serve("127.0.0.1").await;
    let gw = with_callback(&app, &format!("http://{outer_addr}/hook")).await;
    let t = later();
    enqueue(&app, &gw, t).await;
    let outcome = dispatcher(&app).run_once(t).await.unwrap();
    assert!(
        matches!(&outcome[..], [Attempt::Retry { error, .. }] if error.contains("302")),
        "{outcome:?}"
    );
    assert_eq!((outer.requests(), inner.requests()), (1, 0));
}

/// The slow receiver holds its request until the test lets it go, and the request
/// timeout is far beyond the test's patience: a dispatcher that served one receiver after
/// the other would never reach the fast one.
#[tokio::test]
async fn a_slow_receiver_does_not_delay_another() {
    let mut settings = loopback_allowed();
    settings.push(("TOCSIN__CALLBACKS__TIMEOUT_SECS", "3600".into()));
    let app = spawn_app_with(&settings).await;
    let release = Arc::new(Notify::new());
    let slow = Receiver {
        hold: Some(release.clone()),
        ..Receiver::default()
    };
    let slow_addr = slow.clone().serve("127.0.0.1").await;
    let fast = Receiver::answering(&[]);
    let fast_addr = fast.clone().serve("127.0.0.1").await;
    let slow_gw = with_callback(&app, &format!("http://{slow_addr}/hook")).await;
    let fast_gw = with_callback(&app, &format!("http://{fast_addr}/hook")).await;
    let t = later();
    enqueue(&app, &slow_gw, t).await;
    enqueue(&app, &fast_gw, t).await;
    let d = dispatcher(&app);
    let round = tokio::spawn(async move { d.run_once(t).await.unwrap() });
    // The fast receiver is served while the slow one still holds its request.
    until(
        "the fast receiver's entry is delivered and removed while the slow one is held",
        || async {
            slow.requests() == 1
                && fast.requests() == 1
                && app
                    .state
                    .store
                    .callbacks_for(&fast_gw.id)
                    .await
                    .unwrap()
                    .is_empty()
        },
    )
    .await;
    assert!(
        !round.is_finished(),
        "the round still waits for the slow one"
    );
    assert_eq!(
        app.state
            .store
            .callbacks_for(&slow_gw.id)
            .await
            .unwrap()
            .len(),
        1,
        "still in flight"
    );
    release.notify_one();
    let attempts = tokio::time::timeout(PATIENCE, round)
        .await
        .expect("the round ends once the slow receiver answers")
        .unwrap();
    assert_eq!(attempts.len(), 2);
}
