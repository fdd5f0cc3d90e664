//! The SDK's device client against the real server (port 0, on the run's engine):
//! enrolment, login, live and queued delivery, receipts, acks, duplicates, replies to
//! gateway IDs, reconnection, stale devices dropped, and `tocsin-cli device …` as a user
//! runs it.

mod cli;
mod cluster;
mod enrol;
mod listen;
mod messaging;
mod outage;
mod proxy;
mod reconnect;
mod stale;

use std::time::Duration;

use tocsin_sdk::client::Recipient;
use tocsin_sdk::device::{
    Admission, DeviceError, DeviceKeys, Directory, ListenEnd, ListenOptions, Listener, Notice,
    Received, SeenStore,
};
use tocsin_sdk::protocol::{IdentityId, MessageId};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub use crate::helpers::gateway_client;
pub use crate::helpers::wait::{until, PATIENCE};
use crate::helpers::{TestApp, TestGateway};

/// Enrols a new device with `app`, pinning the key the server states.
pub async fn enrol(app: &TestApp) -> DeviceKeys {
    DeviceKeys::init(&app.url(""), Admission::Open, None)
        .await
        .unwrap()
}

/// The device's directory with `gw`'s key pinned (the open directory has no gateway
/// keys).
pub fn directory_with(keys: &DeviceKeys, gw: &TestGateway) -> Directory {
    let mut directory = keys.directory().unwrap();
    directory.pin(*gw.id.as_identity(), gw.keys.public);
    directory
}

/// Sends `text` in basic mode from `gw` to `to`.
pub async fn send_simple(app: &TestApp, gw: &TestGateway, to: IdentityId, text: &str) -> MessageId {
    gateway_client(app, gw)
        .send_simple(&Recipient::Id(to), text)
        .await
        .unwrap()
}

/// Messages still queued, for every device.
pub async fn depth(app: &TestApp) -> i64 {
    app.state.store.queue_depth().await.unwrap()
}

/// Listener options for tests: reconnect after a few milliseconds.
pub fn quick() -> ListenOptions {
    ListenOptions {
        first_retry: Duration::from_millis(20),
        max_retry: Duration::from_millis(200),
        ..ListenOptions::default()
    }
}

/// A [`Listener`] running in its own task, reporting into a channel.
pub struct Listening {
    notices: mpsc::UnboundedReceiver<Notice>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<ListenEnd, DeviceError>>,
}

impl Listening {
    /// A listener with the open directory and a seen store of 100, once it has connected
    /// and read its queue to the end.
    pub async fn caught_up(keys: &DeviceKeys) -> Self {
        let directory = keys.directory().unwrap();
        let mut device = Self::start(keys.clone(), directory, SeenStore::in_memory(100));
        assert_eq!(device.next().await, Notice::Connected);
        assert_eq!(device.next().await, Notice::QueueComplete);
        device
    }

    pub fn start(keys: DeviceKeys, directory: Directory, seen: SeenStore) -> Self {
        Self::start_with(keys, directory, seen, quick())
    }

    pub fn start_with(
        keys: DeviceKeys,
        directory: Directory,
        seen: SeenStore,
        options: ListenOptions,
    ) -> Self {
        let (sender, notices) = mpsc::unbounded_channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut listener = Listener::new(keys, directory, seen).with_options(options);
            let report = move |notice| {
                let _ = sender.send(notice);
            };
            listener
                .run(report, async {
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

    /// The next notice.
    pub async fn next(&mut self) -> Notice {
        tokio::time::timeout(PATIENCE, self.notices.recv())
            .await
            .expect("a notice in time")
            .expect("the listener is running")
    }

    /// Skips notices until one `wanted` accepts, and returns it.
    pub async fn next_where(&mut self, wanted: impl Fn(&Notice) -> bool) -> Notice {
        loop {
            let notice = self.next().await;
            if wanted(&notice) {
                return notice;
            }
        }
    }

    /// The next new message; fails on a duplicate or an unreadable message.
    pub async fn message(&mut self) -> Received {
        loop {
            match self.next().await {
                Notice::Message(received) => return *received,
                notice @ (Notice::Duplicate { .. } | Notice::Rejected(_)) => {
                    panic!("expected a new message, got {notice:?}")
                }
                _ => {}
            }
        }
    }

    /// Stops the listener and returns how it ended.
    pub async fn stop(self) -> ListenEnd {
        let _ = self.stop.send(());
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("the listener stops in time")
            .unwrap()
            .unwrap()
    }
}
