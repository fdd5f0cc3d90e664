//! The listener with `fetch_files`: a file and its thumbnail handed over decrypted, the
//! handler's "later" honoured by getting the message again, both blobs reported done
//! afterwards; a file whose blob is gone or that is declared too large is reported and
//! dropped.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tocsin::store::GatewayMode;
use tocsin_sdk::client::E2eSend;
use tocsin_sdk::crypto::SymmetricKey;
use tocsin_sdk::device::{
    Admission, DeviceError, DeviceKeys, FileUnavailable, Handled, ListenEnd, ListenOptions,
    Listener, Notice, SeenStore,
};
use tocsin_sdk::protocol::{BlobId, E2eMessage, FileMessage};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{blob_status, e2e_client, until, PATIENCE};
use crate::helpers::{spawn_app, TestApp};

/// A listener with `fetch_files` in its own task; its handler reports every notice and
/// answers file notices from `answers` (done once they run out).
struct Listening {
    notices: mpsc::UnboundedReceiver<Notice>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<ListenEnd, DeviceError>>,
}

impl Listening {
    fn start(keys: DeviceKeys, answers: &[Handled]) -> Self {
        let answers = Arc::new(Mutex::new(answers.iter().copied().collect::<VecDeque<_>>()));
        let (sender, notices) = mpsc::unbounded_channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let options = ListenOptions {
            fetch_files: true,
            first_retry: std::time::Duration::from_millis(20),
            max_retry: std::time::Duration::from_millis(200),
            ..ListenOptions::default()
        };
        let task = tokio::spawn(async move {
            let directory = keys.directory().unwrap();
            let mut listener =
                Listener::new(keys, directory, SeenStore::in_memory(100)).with_options(options);
            let handler = move |notice: Notice| {
                let answer = match notice {
                    Notice::File { .. } => answers.lock().unwrap().pop_front(),
                    _ => None,
                };
                let _ = sender.send(notice);
                answer.unwrap_or_default()
            };
            listener
                .run(handler, async {
                    let _ = stopped.await;
                })
                .await
        });
        Self {
            notices,
            stop,
            task,
        }
    }

    /// The next file notice, skipping the others.
    async fn file(&mut self) -> Notice {
        loop {
            let notice = tokio::time::timeout(PATIENCE, self.notices.recv())
                .await
                .expect("a notice in time")
                .expect("the listener is running");
            match notice {
                notice @ Notice::File { .. } => return notice,
                notice @ (Notice::Message(_) | Notice::Duplicate { .. } | Notice::Rejected(_)) => {
                    panic!("expected a file, got {notice:?}")
                }
                _ => {}
            }
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let end = tokio::time::timeout(PATIENCE, self.task).await.unwrap();
        assert_eq!(end.unwrap().unwrap(), ListenEnd::Stopped);
    }
}

async fn depth(app: &TestApp) -> i64 {
    app.state.store.queue_depth().await.unwrap()
}

#[tokio::test]
async fn files_and_thumbnails_are_handed_over_and_done_only_once_handled() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    app.takes_replies(&gw).await;
    let keys = DeviceKeys::init(&app.url(""), Admission::Open, None)
        .await
        .unwrap();
    let id = e2e_client(&app, &gw)
        .send_file(
            &keys.identity,
            b"%PDF-1.7 report",
            "application/pdf",
            Some("report.pdf"),
            Some("Q3"),
            Some((b"tiny jpeg", "image/jpeg")),
        )
        .await
        .unwrap();
    // The first time, the handler cannot take it; the listener comes back for it.
    let mut device = Listening::start(keys, &[Handled::Later]);
    let mut blobs = Vec::new();
    for attempt in 0..2 {
        let Notice::File { received, file } = device.file().await else {
            unreachable!()
        };
        assert_eq!(received.message_id, id, "attempt {attempt}");
        let E2eMessage::File(message) = &received.message else {
            panic!("not a file message");
        };
        blobs = vec![message.blob_id, message.thumbnail_blob_id.unwrap()];
        let file = file.unwrap();
        assert_eq!(file.data, b"%PDF-1.7 report");
        assert_eq!(file.name.as_deref(), Some("report.pdf"));
        assert_eq!(file.caption.as_deref(), Some("Q3"));
        let thumbnail = file.thumbnail.unwrap();
        assert_eq!(thumbnail.data, b"tiny jpeg");
        assert_eq!(thumbnail.media_type.as_deref(), Some("image/jpeg"));
        if attempt == 0 {
            assert_eq!(blob_status(&app, &blobs[0]).await, 200, "not done yet");
        }
    }
    until("both blobs are gone and the message acked", || async {
        blob_status(&app, &blobs[0]).await == 404
            && blob_status(&app, &blobs[1]).await == 404
            && depth(&app).await == 0
    })
    .await;
    let outbox = app.state.store.callbacks_for(&gw.id).await.unwrap();
    assert_eq!(outbox.len(), 1, "one automatic receipt: {outbox:?}");
    device.stop().await;
}

#[tokio::test]
async fn a_file_that_is_gone_or_too_large_is_reported_and_dropped() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 10).await;
    app.takes_replies(&gw).await;
    let keys = DeviceKeys::init(&app.url(""), Admission::Open, None)
        .await
        .unwrap();
    let gateway = e2e_client(&app, &gw);
    let gone = BlobId::random();
    let huge = 21 * 1024 * 1024;
    for (blob_id, size) in [(gone, 5), (BlobId::random(), huge)] {
        let file = FileMessage::new(blob_id, SymmetricKey::generate(), "text/plain".into(), size);
        let (nonce, sealed) = gateway
            .seal(&keys.public_key(), &E2eMessage::File(file))
            .unwrap();
        gateway
            .client()
            .send_e2e(&E2eSend::new(keys.identity, nonce, sealed))
            .await
            .unwrap();
    }
    let mut device = Listening::start(keys, &[]);
    for expected in [gone.to_string(), format!("{huge} bytes")] {
        let Notice::File { file, .. } = device.file().await else {
            unreachable!()
        };
        let FileUnavailable { reason, retryable } = file.unwrap_err();
        assert!(!retryable, "{reason}");
        assert!(reason.contains(&expected), "{reason}");
    }
    until("both were acked", || async { depth(&app).await == 0 }).await;
    device.stop().await;
}
