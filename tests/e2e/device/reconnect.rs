//! Reconnection: the listener comes back after the server restarts and after the network
//! cuts the connection, and receives what was queued meanwhile; a silent connection is
//! detected by the keep-alive.

use std::time::Duration;

use tocsin::store::GatewayMode;
use tocsin_sdk::device::{ListenEnd, ListenOptions, Notice, SeenStore};

use super::proxy::{Fault, Proxy};
use super::{depth, directory_with, enrol, quick, send_simple, until, Listening};
use crate::helpers::spawn_app;

#[tokio::test]
async fn after_the_server_restarts_the_listener_logs_in_again_and_gets_its_messages() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::Basic, 10).await;
    let mut keys = enrol(&app).await;
    // The restarted server listens on another port; the relay keeps the device's URL.
    let proxy = Proxy::start(app.http, false).await;
    keys.server_url = proxy.url();
    let directory = directory_with(&keys, &gw);
    let mut device = Listening::start(keys.clone(), directory, SeenStore::in_memory(100));
    assert_eq!(device.next().await, Notice::Connected);
    assert_eq!(device.next().await, Notice::QueueComplete);
    let before = send_simple(&app, &gw, keys.identity, "before").await;
    assert_eq!(device.message().await.message_id, before);
    until("the first message was acked", || async {
        depth(&app).await == 0
    })
    .await;

    let app = app.restart().await;
    proxy.point_to(app.http);
    device
        .next_where(|n| matches!(n, Notice::Disconnected { .. }))
        .await;
    device.next_where(|n| *n == Notice::Connected).await;
    let after = send_simple(&app, &gw, keys.identity, "after").await;
    assert_eq!(device.message().await.message_id, after);
    until("the second message was acked", || async {
        depth(&app).await == 0
    })
    .await;
    assert_eq!(device.stop().await, ListenEnd::Stopped);
}

#[tokio::test]
async fn after_a_cut_the_listener_reconnects_and_gets_what_was_queued_meanwhile() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::Basic, 10).await;
    let mut keys = enrol(&app).await;
    let mut proxy = Proxy::start(app.http, true).await;
    keys.server_url = proxy.url();
    // Every key it needs is pinned, so only chat connections pass the relay.
    let directory = directory_with(&keys, &gw);
    let mut device = Listening::start(keys.clone(), directory, SeenStore::in_memory(100));
    let mut first = proxy.next().await;
    first.release();
    assert_eq!(device.next().await, Notice::Connected);
    assert_eq!(device.next().await, Notice::QueueComplete);
    let live = send_simple(&app, &gw, keys.identity, "first").await;
    assert_eq!(device.message().await.message_id, live);
    until("the first message was acked", || async {
        depth(&app).await == 0
    })
    .await;

    first.fail(Fault::Cut);
    let notice = device.next().await;
    let Notice::Disconnected { retry_in, .. } = notice else {
        panic!("expected a disconnection, got {notice:?}");
    };
    assert!(retry_in <= quick().first_retry, "{retry_in:?}");
    // Queued while the device is away; delivered from the queue at the next login.
    let queued = send_simple(&app, &gw, keys.identity, "while away").await;
    let mut second = proxy.next().await;
    second.release();
    assert_eq!(device.next().await, Notice::Connected);
    let received = device.message().await;
    assert_eq!(received.message_id, queued);
    assert_eq!(device.next().await, Notice::QueueComplete);
    until("the queued message was acked", || async {
        depth(&app).await == 0
    })
    .await;
    assert_eq!(device.stop().await, ListenEnd::Stopped);
}

#[tokio::test]
async fn a_connection_that_goes_silent_is_given_up_and_replaced() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::Basic, 10).await;
    let mut keys = enrol(&app).await;
    let mut proxy = Proxy::start(app.http, true).await;
    keys.server_url = proxy.url();
    let options = ListenOptions {
        keepalive: Duration::from_secs(1),
        ..quick()
    };
    let mut device = Listening::start_with(
        keys.clone(),
        directory_with(&keys, &gw),
        SeenStore::in_memory(100),
        options,
    );
    let mut first = proxy.next().await;
    first.release();
    assert_eq!(device.next().await, Notice::Connected);
    assert_eq!(device.next().await, Notice::QueueComplete);

    // Nothing closes: the relay just stops forwarding, as a dead NAT mapping would.
    first.fail(Fault::Stall);
    let notice = device.next().await;
    let Notice::Disconnected { reason, .. } = notice else {
        panic!("expected a disconnection, got {notice:?}");
    };
    assert!(reason.contains("keep-alive"), "{reason}");
    let mut second = proxy.next().await;
    second.release();
    assert_eq!(device.next().await, Notice::Connected);
    let id = send_simple(&app, &gw, keys.identity, "still there?").await;
    let received = device.next_where(|n| matches!(n, Notice::Message(_))).await;
    let Notice::Message(received) = received else {
        unreachable!()
    };
    assert_eq!(received.message_id, id);
    device.stop().await;
}
