//! What an acked message leaves behind in SQLite's database file: nothing of its box while
//! `storage.secure_delete` is on (the default), its bytes in the file's free space when it
//! is off.

use sqlx::{Connection, Row};
use tocsin::store::GatewayMode;
use tocsin_sdk::protocol::csp::Payload;
use tocsin_sdk::protocol::Nonce;

use super::chat::Device;
use crate::helpers::wait::until;
use crate::helpers::{spawn_app_with, Engine};

/// Sends a box to ALICE123, lets her device ack it, checkpoints the log into the database
/// file, and says whether the box's bytes are still in the file.
async fn box_found_after_ack(secure_delete: bool) -> bool {
    Engine::require_sqlite("the database file");
    let app =
        spawn_app_with(&[("TOCSIN__STORAGE__SECURE_DELETE", secure_delete.to_string())]).await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    let keys = app.identity("ALICE123", None, None).await;
    // 96 random bytes: found in the file only if they are this box.
    let sealed: Vec<u8> = (0..4).flat_map(|_| *Nonce::random().as_bytes()).collect();
    let form = format!(
        "{}&to=ALICE123&nonce={}&box={}",
        gw.credentials(),
        Nonce::random(),
        hex::encode(&sealed)
    );
    assert_eq!(app.post_form("/send_e2e", form).await.0, 200);
    let mut device = Device::connect(&app, "ALICE123", &keys, Some(1)).await;
    let got = device.drain_queue().await;
    assert_eq!(got[0].sealed, sealed);
    device
        .send(&Payload::ClientAck {
            sender: got[0].sender,
            message_id: got[0].message_id,
        })
        .await;
    until("the acked message is deleted", || async {
        app.state.store.queue_depth().await.unwrap() == 0
    })
    .await;
    let file = app.state.settings.storage.data_dir.join("tocsin.db");
    let url = format!("sqlite://{}", file.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let row = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(row.get::<i64, _>(0), 0, "the checkpoint was not blocked");
    conn.close().await.unwrap();
    let bytes = std::fs::read(&file).unwrap();
    bytes.windows(sealed.len()).any(|w| w == sealed.as_slice())
}

#[tokio::test]
async fn an_acked_box_leaves_no_residue_in_the_database_file_on_sqlite_only() {
    assert!(!box_found_after_ack(true).await);
}

/// The check above can see residue: without secure delete, it is there.
#[tokio::test]
async fn without_secure_delete_the_box_stays_in_the_files_free_space_on_sqlite_only() {
    assert!(box_found_after_ack(false).await);
}
