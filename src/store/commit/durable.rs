//! The deferred sync of SQLite's write-ahead log, beside the writer.
//!
//! The writer commits with `synchronous = NORMAL` and goes on; the syncer `fdatasync`s
//! the log and only then finishes the groups committed before that sync (announces their
//! messages, answers their callers). The log is written in commit order, so one sync makes
//! every earlier commit durable.
//!
//! The log is synced through one handle kept for the store's life: a write error the
//! kernel reports to an open file is reported once, to the handles open at the time, so a
//! handle opened afresh for each sync could miss it and "succeed" over a lost page. The
//! handle is opened again only when the log file itself is replaced, and then the
//! directory is synced too, so the new file's entry is durable.
//!
//! A sync that fails fails the store for good (see `store::health`): every group waiting
//! is answered with the failure, and every later one too.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::announce::ListenerSlot;
use super::group::Group;
use crate::store::health::HealthCell;
use crate::store::StoreError;

/// The write-ahead log, as synced.
#[derive(Debug)]
pub(super) struct WalLog {
    path: PathBuf,
    /// The open log and its (device, inode).
    open: Option<(File, (u64, u64))>,
}

impl WalLog {
    pub(super) fn new(path: PathBuf) -> Self {
        Self { path, open: None }
    }

    /// Makes every commit written to the log so far durable. A log that is gone was
    /// checkpointed into the database and synced there before SQLite removed it (it does
    /// so when its last connection closes), so there is nothing left to sync.
    pub(super) fn sync(&mut self) -> std::io::Result<()> {
        let id = match std::fs::metadata(&self.path) {
            Ok(meta) => (meta.dev(), meta.ino()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.open = None;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let file = match &self.open {
            Some((file, open_id)) if *open_id == id => file,
            _ => {
                let file = File::open(&self.path)?;
                sync_parent(&self.path)?;
                &self.open.insert((file, id)).0
            }
        };
        file.sync_data()
    }
}

/// Syncs the directory holding `path`, so a file created there survives a crash.
fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// Syncs the log for the groups the writer committed, as many at a time as are waiting,
/// then finishes them in commit order.
pub(super) async fn syncer(
    mut log: WalLog,
    pool: sqlx::AnyPool,
    listener: ListenerSlot,
    health: Arc<HealthCell>,
    mut committed: tokio::sync::mpsc::UnboundedReceiver<Group>,
) {
    while let Some(first) = committed.recv().await {
        let mut groups = vec![first];
        while let Ok(more) = committed.try_recv() {
            groups.push(more);
        }
        if let Some(reason) = health.failure() {
            for group in groups {
                group.fail(|| StoreError::Failed(reason.clone()));
            }
            continue;
        }
        let synced = tokio::task::spawn_blocking(move || {
            let synced = log.sync();
            (log, synced)
        })
        .await;
        let (back, synced) = match synced {
            Ok((back, synced)) => (Some(back), synced),
            Err(e) => (None, Err(std::io::Error::other(e))),
        };
        match synced {
            Ok(()) => {
                for group in groups {
                    group.finish(&pool, listener.get()).await;
                }
            }
            Err(e) => {
                let reason = format!("the write-ahead log could not be synced to disk: {e}");
                tracing::error!("{reason}; the store takes no more writes until a restart");
                health.fail(&reason);
                for group in groups {
                    group.fail(|| StoreError::Failed(reason.clone()));
                }
            }
        }
        match back {
            Some(back) => log = back,
            // The sync task itself died: nothing more can be synced.
            None => return fail_all(committed, &health),
        }
    }
}

/// Answers every group still to come with the store's failure.
fn fail_all(mut committed: tokio::sync::mpsc::UnboundedReceiver<Group>, health: &HealthCell) {
    let reason = health
        .failure()
        .unwrap_or_else(|| "the log syncer has stopped".to_owned());
    committed.close();
    while let Ok(group) = committed.try_recv() {
        group.fail(|| StoreError::Failed(reason.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_is_synced_through_one_handle_and_a_log_that_is_gone_needs_no_sync() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db-wal");
        let mut log = WalLog::new(path.clone());
        log.sync().expect("checkpointed and removed");
        assert!(log.open.is_none());
        std::fs::write(&path, b"frames").unwrap();
        log.sync().unwrap();
        let first = log.open.as_ref().map(|(_, id)| *id).unwrap();
        log.sync().unwrap();
        assert_eq!(log.open.as_ref().map(|(_, id)| *id), Some(first));
        // A replaced log (a new file, so another inode) is opened again.
        let new = dir.path().join("new");
        std::fs::write(&new, b"new frames").unwrap();
        std::fs::rename(&new, &path).unwrap();
        log.sync().unwrap();
        assert_ne!(log.open.as_ref().map(|(_, id)| *id), Some(first));
        let mut through_a_file = WalLog::new(path.join("x"));
        let err = through_a_file
            .sync()
            .expect_err("a path through a file is no log");
        assert_eq!(err.kind(), std::io::ErrorKind::NotADirectory);
    }
}
