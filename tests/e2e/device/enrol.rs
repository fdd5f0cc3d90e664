//! Enrolment: the identity the server creates, the keys file, the pinned server key, the
//! invite codes and the enrollment token of a closed server, and logins that must fail.

use std::time::Duration;

use tocsin_sdk::client::Error;
use tocsin_sdk::device::{Admission, Connection, DeviceError, DeviceKeys, Event};
use tocsin_sdk::protocol::KeyPair;

use super::{enrol, PATIENCE};
use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn init_registers_the_key_pins_the_server_and_writes_a_private_file() {
    let app = spawn_app().await;
    let keys = DeviceKeys::init(
        &app.url("/"),
        Admission::Open,
        Some(app.state.server_key.public),
    )
    .await
    .unwrap();
    let record = app
        .state
        .store
        .identity(&keys.identity)
        .await
        .unwrap()
        .expect("the identity exists");
    assert_eq!(record.public_key, keys.public_key());
    assert!(!keys.identity.is_gateway());
    assert_eq!(keys.server_key, app.state.server_key.public);
    assert_eq!(keys.server_url, app.url("/"));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device.json");
    keys.save(&path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let other = enrol(&app).await;
    assert!(matches!(other.save(&path), Err(DeviceError::Exists(_))));
    let loaded = DeviceKeys::load(&path).unwrap();
    assert_eq!(
        (loaded.identity, loaded.public_key(), loaded.device_id),
        (keys.identity, keys.public_key(), keys.device_id)
    );

    // The keys log in: the server proves it holds the pinned key, the vouch matches.
    let mut connection = Connection::connect(&loaded, &loaded.directory().unwrap())
        .await
        .unwrap();
    let first = tokio::time::timeout(PATIENCE, connection.next_event()).await;
    assert_eq!(first.unwrap().unwrap(), Event::QueueComplete);
}

#[tokio::test]
async fn a_wrong_server_key_is_refused_before_anything_is_registered() {
    let app = spawn_app().await;
    let before = app.state.store.list_identities().await.unwrap().len();
    let impostor = KeyPair::generate().public;
    let err = DeviceKeys::init(&app.url(""), Admission::Open, Some(impostor))
        .await
        .unwrap_err();
    match err {
        DeviceError::ServerKeyMismatch { expected, served } => {
            assert_eq!((expected, served), (impostor, app.state.server_key.public));
        }
        other => panic!("expected a key mismatch, got {other}"),
    }
    assert_eq!(
        app.state.store.list_identities().await.unwrap().len(),
        before
    );

    // A device that pinned another key refuses to log in to this server.
    let mut keys = enrol(&app).await;
    keys.server_key = impostor;
    let err = Connection::connect(&keys, &keys.directory().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, DeviceError::ServerNotPinned), "{err}");
}

#[tokio::test]
async fn a_closed_server_admits_a_device_with_an_invite_or_the_enrollment_token() {
    let token = "enrol-me-please-1234";
    let app = spawn_app_with(&[
        ("TOCSIN__DIRECTORY__OPEN_ENROLLMENT", "false".into()),
        ("TOCSIN__DIRECTORY__ENROLLMENT_TOKEN", token.into()),
    ])
    .await;
    let url = app.url("");
    let err = DeviceKeys::init(&url, Admission::Open, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DeviceError::Http(Error::Forbidden(reason)) if reason.contains("invite")),
        "{err}"
    );
    let err = DeviceKeys::init(&url, Admission::Token("not-the-token"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, DeviceError::Http(Error::Unauthorized)),
        "{err}"
    );
    let code = app.invites(1, Duration::from_secs(600)).await.remove(0);
    let mut enrolled = vec![
        DeviceKeys::init(&url, Admission::Invite(&code), None)
            .await
            .unwrap(),
        DeviceKeys::init(&url, Admission::Token(token), None)
            .await
            .unwrap(),
    ];
    let err = DeviceKeys::init(&url, Admission::Invite(&code), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DeviceError::Http(Error::Forbidden(reason)) if reason.contains("already used")),
        "{err}"
    );
    for keys in enrolled.drain(..) {
        let record = app.state.store.identity(&keys.identity).await.unwrap();
        assert_eq!(record.unwrap().public_key, keys.public_key());
    }
}

#[tokio::test]
async fn a_revoked_or_unknown_identity_is_refused_at_login_with_the_servers_reason() {
    let app = spawn_app().await;
    let keys = enrol(&app).await;
    app.state
        .store
        .revoke_identity(&keys.identity)
        .await
        .unwrap();
    let err = Connection::connect(&keys, &keys.directory().unwrap())
        .await
        .unwrap_err();
    match err {
        DeviceError::LoginRefused(reason) => assert!(reason.contains("revoked"), "{reason}"),
        other => panic!("expected a refused login, got {other}"),
    }
    let mut stranger = enrol(&app).await;
    stranger.secret_key = KeyPair::generate().secret;
    let err = Connection::connect(&stranger, &stranger.directory().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, DeviceError::LoginRefused(_)), "{err}");
}
