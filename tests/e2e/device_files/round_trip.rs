//! The largest file a default server carries (20 MiB − 16 bytes, so that the encrypted
//! blob is exactly the 20 MiB limit), from `E2eClient::send_file` to a device and back
//! out of the server.

use tocsin::store::GatewayMode;
use tocsin_sdk::client::Error;
use tocsin_sdk::device::{Admission, Connection, DeviceKeys, Event};
use tocsin_sdk::protocol::E2eMessage;

use super::{blob_status, e2e_client, until, PATIENCE};
use crate::helpers::spawn_app;

const LIMIT: usize = 20 * 1024 * 1024;

#[tokio::test]
async fn a_20_mib_file_arrives_intact_and_is_gone_once_the_only_device_is_done() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    let keys = DeviceKeys::init(&app.url(""), Admission::Open, None)
        .await
        .unwrap();
    let data: Vec<u8> = (0..LIMIT - 16).map(|i| (i % 251) as u8).collect();
    let gateway = e2e_client(&app, &gw);

    let id = gateway
        .send_file(
            &keys.identity,
            &data,
            "application/octet-stream",
            Some("dump.bin"),
            Some("nightly"),
            None,
        )
        .await
        .unwrap();

    let mut device = Connection::connect(&keys, &keys.directory().unwrap())
        .await
        .unwrap();
    let event = tokio::time::timeout(PATIENCE, device.next_event())
        .await
        .expect("the file message in time")
        .unwrap();
    let Event::Message(received) = event else {
        panic!("expected the file message, got {event:?}");
    };
    assert_eq!(received.message_id, id);
    let E2eMessage::File(file) = &received.message else {
        panic!("not a file message: {:?}", received.message);
    };
    assert_eq!(file.size, (LIMIT - 16) as u64);
    assert_eq!(blob_status(&app, &file.blob_id).await, 200);
    let downloaded = device.fetch_file(file).await.unwrap();
    assert!(downloaded.data == data, "the bytes differ");
    assert_eq!(downloaded.name.as_deref(), Some("dump.bin"));
    assert_eq!(downloaded.caption.as_deref(), Some("nightly"));
    assert_eq!(downloaded.media_type, "application/octet-stream");
    assert_eq!(downloaded.thumbnail, None);

    device.file_done(file).await.unwrap();
    device.ack(&received).await.unwrap();
    device.round_trip().await.unwrap();
    until("the blob is gone", || async {
        blob_status(&app, &file.blob_id).await == 404
    })
    .await;
    device.close().await;

    // One byte more and the encrypted blob is over the limit.
    let over = vec![0u8; LIMIT - 15];
    let refused = gateway
        .send_file(
            &keys.identity,
            &over,
            "application/octet-stream",
            None,
            None,
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::TooLarge), "{refused}");
}
