//! [`E2eClient::fetch_file`]: the file of a received file message, for callback
//! receivers, downloaded with the gateway ID's credentials (`GET /blobs/{id}`).
//!
//! The checks are those of [`crate::files`]: the declared size against the client's
//! download limit before anything is fetched, the download capped at the declared size
//! plus the tag, and the decrypted size against the declared one.

use super::transport::read_capped;
use super::{Client, E2eClient, Error};
use crate::crypto::TAG_LEN;
use crate::files::{
    file_blob_limit, open_file_blob, open_thumbnail_blob, DownloadedFile, FileError,
};
use crate::protocol::{BlobId, FileMessage};

impl Client {
    /// Like [`Client::download_blob`], reading at most `limit` bytes.
    async fn download_blob_capped(
        &self,
        id: &BlobId,
        limit: usize,
    ) -> Result<Option<Vec<u8>>, Error> {
        let request = self.get(&["blobs", &id.to_string()]);
        match self.execute(request).await {
            Ok(response) => read_capped(response, limit).await.map(Some),
            Err(Error::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl E2eClient {
    /// Downloads, decrypts and checks the file (and thumbnail) a received file message
    /// points at. The declared size may be at most the builder's
    /// [`max_download_bytes`](super::ClientBuilder::max_download_bytes) minus the 16-byte
    /// tag. A thumbnail that is gone or does not decrypt is left out; the file is what
    /// matters.
    ///
    /// Cost: free.
    ///
    /// # Errors
    ///
    /// [`Error::File`] when the file blob is gone, over the limit, of the wrong size or
    /// does not decrypt; transport and status errors as [`Client::download_blob`] (for
    /// the thumbnail too, when they may pass: [`Error::is_retryable`]).
    pub async fn fetch_file(&self, file: &FileMessage) -> Result<DownloadedFile, Error> {
        let client = self.client();
        let max_file = client.max_download_bytes.saturating_sub(TAG_LEN);
        let limit = file_blob_limit(file, u64::try_from(max_file).unwrap_or(u64::MAX))?;
        let sealed = client
            .download_blob_capped(&file.blob_id, limit)
            .await?
            .ok_or(FileError::Missing(file.blob_id))?;
        let data = open_file_blob(file, &sealed)?;
        drop(sealed);
        let thumbnail = match &file.thumbnail_blob_id {
            None => None,
            Some(id) => match client
                .download_blob_capped(id, client.max_download_bytes)
                .await
            {
                Ok(Some(sealed)) => open_thumbnail_blob(file, &sealed).ok(),
                Ok(None) => None,
                Err(e) if e.is_retryable() => return Err(e),
                Err(_) => None,
            },
        };
        Ok(DownloadedFile::new(file, data, thumbnail))
    }
}
