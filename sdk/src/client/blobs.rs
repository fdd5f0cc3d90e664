//! Blobs: upload already-encrypted bytes, download them again by ID.
//!
//! The server stores blobs as opaque bytes; encrypting them (see
//! [`crate::crypto::encrypt_file_blob`]) is the caller's job, or [`super::E2eClient`]'s.
//! The upload is one multipart part named `blob` of type `application/octet-stream`, with
//! credentials in the query string.

use reqwest::multipart::{Form, Part};

use super::error::transport;
use super::transport::{decode, read_capped};
use super::{Client, Error};
use crate::protocol::BlobId;

impl Client {
    /// Uploads a blob and returns its ID. With `persist`, the server keeps the blob after
    /// a recipient has fetched it (for sending one blob to many recipients).
    ///
    /// Cost: 1 credit. The server's default size limit is 20 MiB.
    ///
    /// # Errors
    ///
    /// [`Error::BadRequest`] for an empty blob; [`Error::TooLarge`] over the size limit;
    /// [`Error::Unauthorized`], [`Error::NoCredits`], [`Error::RateLimited`],
    /// [`Error::Server`], [`Error::Transport`]; [`Error::Decode`] for an answer that is
    /// not a blob ID.
    pub async fn upload_blob(&self, data: Vec<u8>, persist: bool) -> Result<BlobId, Error> {
        let part = Part::bytes(data)
            .mime_str("application/octet-stream")
            .map_err(transport)?;
        let extra: &[(&str, &str)] = if persist { &[("persist", "1")] } else { &[] };
        let request = self
            .post_with_query(&["upload_blob"], extra)
            .multipart(Form::new().part("blob", part));
        decode(BlobId::parse(&self.text(request).await?), "a blob ID")
    }

    /// Downloads a blob's bytes, still encrypted as uploaded.
    ///
    /// Cost: free (an account without credits may download).
    ///
    /// # Errors
    ///
    /// `Ok(None)` for an unknown or expired blob. [`Error::Unauthorized`],
    /// [`Error::RateLimited`], [`Error::Server`], [`Error::Transport`];
    /// [`Error::Decode`] for a blob larger than the builder's
    /// [`max_download_bytes`](super::ClientBuilder::max_download_bytes).
    pub async fn download_blob(&self, id: &BlobId) -> Result<Option<Vec<u8>>, Error> {
        let request = self.get(&["blobs", &id.to_string()]);
        match self.execute(request).await {
            Ok(response) => read_capped(response, self.max_download_bytes)
                .await
                .map(Some),
            Err(Error::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
