//! The receiving end of file messages: opening the downloaded blobs with the checks a
//! receiver owes itself, and saving the result under a name that stays inside the
//! chosen directory.
//!
//! A file message names its blobs and carries their key; the file blob is sealed under
//! [`crate::crypto::FILE_NONCE`], the thumbnail blob under
//! [`crate::crypto::THUMBNAIL_NONCE`]. Before anything is downloaded, the declared size
//! `s` is held against a limit (20 MiB unless told otherwise), and the download is capped
//! at exactly that size plus the 16-byte tag, so a sender cannot make a receiver fetch
//! more than it announced. After decryption the plaintext must have exactly the declared
//! size.
//!
//! The two clients fetch with these rules: `Connection::fetch_file` on a device and
//! `E2eClient::fetch_file` for a gateway ID (cargo features `device` and `client`).
//!
//! Saving ([`DownloadedFile::save_in`]) never trusts the sender's file name: directory
//! parts, leading dots, control and reserved characters are removed
//! ([`safe_file_name`]), an existing file is never overwritten (a ` (1)`, ` (2)`, …
//! suffix is added instead), and files are created with mode 0600 on Unix.

mod save;

use std::fmt;

pub use save::{safe_file_name, SavedFile};

use crate::crypto::{decrypt_file_blob, decrypt_thumbnail_blob, TAG_LEN};
use crate::protocol::{BlobId, FileMessage};

/// Largest file (plaintext) fetched unless told otherwise: 20 MiB, the server's default
/// blob limit. The limit applies to the encrypted blob, which is 16 bytes longer, so the
/// largest file a default server carries is 20 MiB − 16 bytes.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 20 * 1024 * 1024;

/// Why the blobs of a file message could not be turned into a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The server no longer has the blob (expired, or removed after every device of
    /// the recipient was done with it).
    #[error("blob {0} does not exist (any more)")]
    Missing(BlobId),
    /// The declared size is over the limit; nothing was downloaded.
    #[error("the file is declared as {declared} bytes, over the limit of {limit}")]
    TooLarge {
        /// Size the message states.
        declared: u64,
        /// The receiver's limit.
        limit: u64,
    },
    /// The blob does not open with the message's key and the fixed nonce.
    #[error("blob {0} does not decrypt with the key of the file message")]
    Decrypt(BlobId),
    /// The blob is not as long as the declared size requires.
    #[error("blob {blob} holds {got} bytes of file, but the message declares {expected}")]
    SizeMismatch {
        /// The file blob.
        blob: BlobId,
        /// Size the message states.
        expected: u64,
        /// Size the blob holds.
        got: u64,
    },
}

/// The largest file blob to accept for `file` under `max_file_bytes`: its declared
/// size plus the tag.
///
/// # Errors
///
/// [`FileError::TooLarge`] when the declared size is over `max_file_bytes`.
pub fn file_blob_limit(file: &FileMessage, max_file_bytes: u64) -> Result<usize, FileError> {
    let too_large = FileError::TooLarge {
        declared: file.size,
        limit: max_file_bytes,
    };
    if file.size > max_file_bytes {
        return Err(too_large);
    }
    usize::try_from(file.size)
        .ok()
        .and_then(|size| size.checked_add(TAG_LEN))
        .ok_or(too_large)
}

/// Decrypts a downloaded file blob and checks it against the declared size.
///
/// # Errors
///
/// [`FileError::SizeMismatch`] for a blob of another length than the declared size
/// plus the tag; [`FileError::Decrypt`] when it does not open.
pub fn open_file_blob(file: &FileMessage, sealed: &[u8]) -> Result<Vec<u8>, FileError> {
    let got = u64::try_from(sealed.len().saturating_sub(TAG_LEN)).unwrap_or(u64::MAX);
    if sealed.len() < TAG_LEN || got != file.size {
        return Err(FileError::SizeMismatch {
            blob: file.blob_id,
            expected: file.size,
            got,
        });
    }
    decrypt_file_blob(&file.key, sealed).map_err(|_| FileError::Decrypt(file.blob_id))
}

/// Decrypts a downloaded thumbnail blob of `file`.
///
/// # Errors
///
/// [`FileError::Decrypt`] when it does not open.
pub fn open_thumbnail_blob(file: &FileMessage, sealed: &[u8]) -> Result<Vec<u8>, FileError> {
    let blob = file.thumbnail_blob_id.unwrap_or(file.blob_id);
    decrypt_thumbnail_blob(&file.key, sealed).map_err(|_| FileError::Decrypt(blob))
}

/// A decrypted thumbnail.
#[derive(Clone, PartialEq, Eq)]
pub struct Thumbnail {
    /// Its media type, when the sender stated one.
    pub media_type: Option<String>,
    /// The image bytes.
    pub data: Vec<u8>,
}

impl fmt::Debug for Thumbnail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Thumbnail")
            .field("media_type", &self.media_type)
            .field("bytes", &self.data.len())
            .finish()
    }
}

/// The file of a file message, downloaded, decrypted and checked.
#[derive(Clone, PartialEq, Eq)]
pub struct DownloadedFile {
    /// The file name the sender chose; see [`safe_file_name`] before using it as a path.
    pub name: Option<String>,
    /// Its media (MIME) type, as the sender stated it.
    pub media_type: String,
    /// The caption, if any.
    pub caption: Option<String>,
    /// The file's bytes, exactly as many as the message declared.
    pub data: Vec<u8>,
    /// The thumbnail; `None` when the message has none, or when it could not be used
    /// (gone or corrupt), because the file itself matters more.
    pub thumbnail: Option<Thumbnail>,
}

impl fmt::Debug for DownloadedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DownloadedFile")
            .field("name", &self.name)
            .field("media_type", &self.media_type)
            .field("caption", &self.caption)
            .field("bytes", &self.data.len())
            .field("thumbnail", &self.thumbnail)
            .finish()
    }
}

impl DownloadedFile {
    /// Puts the decrypted parts together with the message's description.
    pub fn new(file: &FileMessage, data: Vec<u8>, thumbnail: Option<Vec<u8>>) -> Self {
        Self {
            name: file.name.clone(),
            media_type: file.media_type.clone(),
            caption: file.caption.clone(),
            data,
            thumbnail: thumbnail.map(|data| Thumbnail {
                media_type: file.thumbnail_media_type.clone(),
                data,
            }),
        }
    }
}
