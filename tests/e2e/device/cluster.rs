//! Several nodes on one PostgreSQL database: what one node commits wakes the sessions of
//! another at once (LISTEN/NOTIFY), also after the listening connection was killed. The
//! sessions' periodic re-check is set to an hour, so only a wake-up can bring a message
//! within the test's patience.

use tocsin::store::GatewayMode;
use tocsin_sdk::device::{Connection, Event};

use super::{enrol, send_simple, until, PATIENCE};
use crate::helpers::{spawn_app_with, Engine, TestApp};

/// Settings of both nodes: no periodic look at the store within any test's time.
fn no_recheck() -> Vec<(&'static str, String)> {
    vec![("TOCSIN__CHAT__RECHECK_SECS", "3600".into())]
}

async fn next_text(connection: &mut Connection) -> String {
    loop {
        let event = tokio::time::timeout(PATIENCE, connection.next_event())
            .await
            .expect("a message within the patience, long before the hourly re-check")
            .unwrap();
        if let Event::Message(received) = event {
            connection.ack(&received).await.unwrap();
            if let tocsin_sdk::protocol::E2eMessage::Text(text) = received.message {
                return text;
            }
        }
    }
}

/// Kills this node's listening connection on the database server.
async fn kill_listeners(app: &TestApp) -> u64 {
    let url = app.state.settings.database_url();
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let killed: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN %' AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    killed.len() as u64
}

#[tokio::test]
async fn a_device_on_one_node_gets_at_once_what_another_node_accepted_on_postgres_only() {
    Engine::require_postgres("several nodes on one database");
    let a = spawn_app_with(&no_recheck()).await;
    let b = a.spawn_beside(&no_recheck()).await;
    for node in [&a, &b] {
        until("the node listens to the others", || async {
            node.metric("tocsin_cluster_listening").await == Some(1.0)
        })
        .await;
    }
    let gw = b.gateway(GatewayMode::Basic, 10).await;
    let keys = enrol(&a).await;
    let mut device = Connection::connect(&keys, &keys.directory().unwrap())
        .await
        .unwrap();
    let first = tokio::time::timeout(PATIENCE, device.next_event()).await;
    assert_eq!(first.unwrap().unwrap(), Event::QueueComplete);

    send_simple(&b, &gw, keys.identity, "through the other node").await;
    assert_eq!(next_text(&mut device).await, "through the other node");

    // The listening connections of both nodes die; each listens again, and what is sent
    // meanwhile or after still arrives.
    assert!(kill_listeners(&a).await >= 2);
    until("both nodes listen again", || async {
        a.metric("tocsin_cluster_listener_lost_total").await >= Some(1.0)
            && b.metric("tocsin_cluster_listener_lost_total").await >= Some(1.0)
            && a.metric("tocsin_cluster_listening").await == Some(1.0)
            && b.metric("tocsin_cluster_listening").await == Some(1.0)
    })
    .await;
    send_simple(&b, &gw, keys.identity, "after the connection came back").await;
    assert_eq!(
        next_text(&mut device).await,
        "after the connection came back"
    );
    device.close().await;
}
