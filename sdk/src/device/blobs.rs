//! Files on a device: download the blobs of a file message, decrypt and check them, and
//! tell the server when the device is done with them.
//!
//! Devices download at `GET /api/v1/blobs/{id}` without credentials: the random 128-bit
//! blob ID, which only ever travels inside end-to-end encrypted messages, is the
//! capability, and the bytes are encrypted anyway. The checks are those of
//! [`crate::files`]: the declared size against the limit (20 MiB by default) before
//! anything is fetched, the download capped at the declared size plus the tag, and the
//! decrypted size against the declared one.
//!
//! Once the file is safely stored, [`Connection::file_done`] sends a blob-done payload
//! for each blob on the session; the server removes a blob that was not uploaded with
//! `persist` when every device of the identity is done with it. Send it only after
//! storing the file: the blob may be gone right after.

use std::time::Duration;

use super::{Connection, DeviceError, Directory};
use crate::client::{error_for_status, read_capped, transport_error};
use crate::crypto::TAG_LEN;
use crate::files::{
    file_blob_limit, open_file_blob, open_thumbnail_blob, DownloadedFile, FileError,
};
use crate::protocol::csp::Payload;
use crate::protocol::{BlobId, FileMessage};

/// Time allowed for one blob download: generous, because 20 MiB over a slow link take
/// a while, and the session is kept alive meanwhile.
const BLOB_TIMEOUT: Duration = Duration::from_secs(600);

impl Directory {
    /// `GET /api/v1/blobs/{id}`: the blob's bytes (still encrypted), at most `limit` of
    /// them; `None` when the server does not have it (unknown, expired or removed).
    ///
    /// # Errors
    ///
    /// [`DeviceError::Http`] for transport trouble, error statuses, and a blob longer
    /// than `limit` ([`crate::client::Error::Decode`]).
    pub async fn download_blob(
        &self,
        id: &BlobId,
        limit: usize,
    ) -> Result<Option<Vec<u8>>, DeviceError> {
        let url = self.endpoint(&["api", "v1", "blobs", &id.to_string()]);
        let response = self
            .http
            .get(url)
            .timeout(BLOB_TIMEOUT)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        if status.as_u16() == 404 {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(error_for_status(status.as_u16(), "", None).into());
        }
        Ok(Some(read_capped(response, limit).await?))
    }
}

impl Connection {
    /// Downloads, decrypts and checks the file of a received file message, and its
    /// thumbnail. The session stays alive during the download; messages that arrive
    /// meanwhile wait for the next [`Connection::next_event`]. A thumbnail that is gone
    /// or does not decrypt is left out, because the file matters more.
    ///
    /// Call [`Connection::file_done`] once the file is stored.
    ///
    /// # Errors
    ///
    /// [`DeviceError::Blob`] when the file is over the limit
    /// ([`Connection::set_max_file_bytes`]), gone, of the wrong size or does not
    /// decrypt: it will not get better. [`DeviceError::Http`] for transport trouble and
    /// error statuses (see [`DeviceError::is_retryable`], for the thumbnail too);
    /// session failures as [`Connection::next_event`].
    pub async fn fetch_file(&mut self, file: &FileMessage) -> Result<DownloadedFile, DeviceError> {
        let limit = file_blob_limit(file, self.max_file_bytes)?;
        let directory = self.directory.clone();
        let sealed = self
            .keep_alive_during(directory.download_blob(&file.blob_id, limit))
            .await??
            .ok_or(FileError::Missing(file.blob_id))?;
        let data = open_file_blob(file, &sealed)?;
        drop(sealed);
        let Some(thumbnail_id) = file.thumbnail_blob_id else {
            return Ok(DownloadedFile::new(file, data, None));
        };
        let thumbnail_limit = usize::try_from(self.max_file_bytes)
            .unwrap_or(usize::MAX)
            .saturating_add(TAG_LEN);
        let thumbnail = match self
            .keep_alive_during(directory.download_blob(&thumbnail_id, thumbnail_limit))
            .await?
        {
            Ok(Some(sealed)) => open_thumbnail_blob(file, &sealed).ok(),
            Ok(None) => None,
            Err(e) if e.is_retryable() => return Err(e),
            Err(_) => None,
        };
        Ok(DownloadedFile::new(file, data, thumbnail))
    }

    /// Tells the server this device is done with the blob `id`. The server handles
    /// frames in order; [`Connection::round_trip`] waits until it has.
    ///
    /// # Errors
    ///
    /// As [`Connection::next_event`].
    pub async fn blob_done(&mut self, id: &BlobId) -> Result<(), DeviceError> {
        self.write(&Payload::Unknown {
            kind: Payload::BLOB_DONE,
            data: id.as_bytes().to_vec(),
        })
        .await
    }

    /// [`Connection::blob_done`] for the file blob and the thumbnail blob of `file`.
    ///
    /// # Errors
    ///
    /// As [`Connection::next_event`].
    pub async fn file_done(&mut self, file: &FileMessage) -> Result<(), DeviceError> {
        self.blob_done(&file.blob_id).await?;
        if let Some(thumbnail) = &file.thumbnail_blob_id {
            self.blob_done(thumbnail).await?;
        }
        Ok(())
    }
}
