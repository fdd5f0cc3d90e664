//! Blob bytes (already encrypted by the sender) on the filesystem.
//!
//! [`BlobStore`] is the seam for other backends (an object store). The filesystem backend
//! writes an upload to a temporary file first and renames it into place only once it is
//! complete, so a reader never sees half a blob and a failed upload leaves nothing behind.
//! Files live under `<data_dir>/blobs/<first two hex digits>/<blob ID>`.

use std::future::Future;
use std::io;
use std::path::PathBuf;

use tocsin_sdk::protocol::{BlobId, MessageId};
use tokio::fs;
use tokio::io::AsyncWriteExt;

/// Storage for blob bytes; metadata (owner, size, expiry) lives in the store.
pub trait BlobStore: Send + Sync {
    type Upload: BlobUpload;

    /// Starts a new upload.
    fn begin(&self) -> impl Future<Output = io::Result<Self::Upload>> + Send;

    /// Opens a stored blob for reading; `None` when it does not exist.
    fn open(&self, id: &BlobId) -> impl Future<Output = io::Result<Option<fs::File>>> + Send;

    /// Removes a blob; removing a missing blob is not an error.
    fn delete(&self, id: &BlobId) -> impl Future<Output = io::Result<()>> + Send;
}

/// An upload in progress: append bytes, then commit under an ID or abort.
pub trait BlobUpload: Send {
    fn write(&mut self, chunk: &[u8]) -> impl Future<Output = io::Result<()>> + Send;
    fn commit(self, id: &BlobId) -> impl Future<Output = io::Result<()>> + Send;
    fn abort(self) -> impl Future<Output = ()> + Send;
}

/// Blobs as files under a directory.
#[derive(Debug, Clone)]
pub struct FsBlobStore {
    root: PathBuf,
}

impl FsBlobStore {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    fn path(&self, id: &BlobId) -> PathBuf {
        let hex = id.to_string();
        self.root.join(&hex[..2]).join(hex)
    }
}

pub struct FsUpload {
    temp: PathBuf,
    file: fs::File,
    final_dir: PathBuf,
}

impl FsBlobStore {
    /// Removes upload files left behind (by a crash, say) that were last written over
    /// `idle` ago; `Duration::ZERO` removes them all (at start, when no upload runs).
    /// Returns how many went.
    pub async fn sweep_uploads(&self, idle: std::time::Duration) -> io::Result<usize> {
        let mut entries = match fs::read_dir(self.root.join("tmp")).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut removed = 0;
        while let Some(entry) = entries.next_entry().await? {
            let modified = entry.metadata().await?.modified()?;
            let age = modified.elapsed().unwrap_or_default();
            if age >= idle && fs::remove_file(entry.path()).await.is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

impl BlobStore for FsBlobStore {
    type Upload = FsUpload;

    async fn begin(&self) -> io::Result<FsUpload> {
        let tmp_dir = self.root.join("tmp");
        fs::create_dir_all(&tmp_dir).await?;
        let temp = tmp_dir.join(format!("upload-{}", MessageId::random()));
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .await?;
        Ok(FsUpload {
            temp,
            file,
            final_dir: self.root.clone(),
        })
    }

    async fn open(&self, id: &BlobId) -> io::Result<Option<fs::File>> {
        match fs::File::open(self.path(id)).await {
            Ok(file) => Ok(Some(file)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn delete(&self, id: &BlobId) -> io::Result<()> {
        match fs::remove_file(self.path(id)).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

impl BlobUpload for FsUpload {
    async fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.file.write_all(chunk).await
    }

    async fn commit(mut self, id: &BlobId) -> io::Result<()> {
        self.file.flush().await?;
        self.file.sync_all().await?;
        let store = FsBlobStore::new(self.final_dir.clone());
        let target = store.path(id);
        if let Some(dir) = target.parent() {
            fs::create_dir_all(dir).await?;
        }
        fs::rename(&self.temp, &target).await
    }

    async fn abort(self) {
        drop(self.file);
        let _ = fs::remove_file(&self.temp).await;
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn uploads_left_behind_are_swept_once_idle_and_all_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let store = super::FsBlobStore::new(dir.path().to_owned());
        assert_eq!(
            store
                .sweep_uploads(std::time::Duration::ZERO)
                .await
                .unwrap(),
            0
        );
        let mut old = store.begin().await.unwrap();
        old.write(b"half an upload").await.unwrap();
        // Tokio writes in the background: done before the time is set, or it moves it.
        tokio::io::AsyncWriteExt::flush(&mut old.file)
            .await
            .unwrap();
        let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3700);
        std::fs::File::options()
            .write(true)
            .open(&old.temp)
            .unwrap()
            .set_modified(an_hour_ago)
            .unwrap();
        let fresh = store.begin().await.unwrap();
        let hour = std::time::Duration::from_secs(3600);
        assert_eq!(store.sweep_uploads(hour).await.unwrap(), 1);
        assert!(!old.temp.exists() && fresh.temp.exists());
        assert_eq!(
            store
                .sweep_uploads(std::time::Duration::ZERO)
                .await
                .unwrap(),
            1
        );
        assert!(!fresh.temp.exists());
    }

    use super::*;

    #[tokio::test]
    async fn committed_uploads_can_be_read_and_deleted_and_aborted_ones_vanish() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::new(dir.path().join("blobs"));
        let id = BlobId::random();
        let mut up = store.begin().await.unwrap();
        up.write(b"sealed ").await.unwrap();
        up.write(b"bytes").await.unwrap();
        assert!(
            store.open(&id).await.unwrap().is_none(),
            "invisible until committed"
        );
        up.commit(&id).await.unwrap();
        let mut read = String::new();
        store
            .open(&id)
            .await
            .unwrap()
            .unwrap()
            .read_to_string(&mut read)
            .await
            .unwrap();
        assert_eq!(read, "sealed bytes");
        store.delete(&id).await.unwrap();
        store.delete(&id).await.unwrap();
        assert!(store.open(&id).await.unwrap().is_none());

        let mut up = store.begin().await.unwrap();
        up.write(b"partial").await.unwrap();
        up.abort().await;
        let leftovers = std::fs::read_dir(dir.path().join("blobs/tmp"))
            .unwrap()
            .count();
        assert_eq!(leftovers, 0);
    }
}
