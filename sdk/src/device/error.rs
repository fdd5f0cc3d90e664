//! The one error type of the device side.
//!
//! Every message is a single line that says what went wrong and, where the caller can do
//! something about it, what to do. No variant carries key material: the keys file's path
//! may appear, its content never does.

use std::path::PathBuf;

use crate::client;
use crate::crypto::CryptoError;
use crate::files::FileError;
use crate::protocol::csp::{FrameError, HandshakeError};
use crate::protocol::{IdentityId, ParseError, PublicKey};

/// Why a device operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// A directory call (`/api/v1/…`) failed; the inner error says how.
    #[error("directory request failed: {0}")]
    Http(#[from] client::Error),

    /// The server publishes another chat key than the one the caller expected.
    #[error("the server's chat key is {served}, not the expected {expected}; refusing to enrol")]
    ServerKeyMismatch {
        /// The key the caller pinned.
        expected: PublicKey,
        /// The key the server answered.
        served: PublicKey,
    },

    /// The chat server could not prove it holds the pinned key: another server, a
    /// server whose key was replaced, or someone in between.
    #[error(
        "the chat server did not prove it holds the pinned key; if the operator replaced \
         the server key, enrol again"
    )]
    ServerNotPinned,

    /// No public key is known for this ID: the directory does not have it, and it was
    /// not pinned locally.
    #[error("no public key is known for {0}")]
    UnknownKey(IdentityId),

    /// A handshake step failed.
    #[error("chat handshake failed: {0}")]
    Handshake(#[from] HandshakeError),

    /// The server closed the connection instead of accepting the login.
    #[error("the chat server refused the login: {0}")]
    LoginRefused(String),

    /// A frame could not be sealed or opened; the connection is unusable.
    #[error("chat frame error: {0}")]
    Frame(#[from] FrameError),

    /// The WebSocket transport failed (connect, read or write).
    #[error("chat connection failed: {0}")]
    WebSocket(String),

    /// The server sent something the protocol does not allow at this point.
    #[error("the chat server broke the protocol: {0}")]
    Protocol(String),

    /// Nothing arrived in time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),

    /// The server refused an outgoing message and stored nothing of it (a gateway ID
    /// that takes no messages, or too many waiting for it); the connection stays usable.
    #[error("the server refused the message: {0}")]
    Refused(String),

    /// The connection is closed; connect again.
    #[error("the chat connection is closed: {0}")]
    Closed(String),

    /// A local key exchange failed (a peer key no exchange can be made with).
    #[error(transparent)]
    Crypto(#[from] CryptoError),

    /// A file would be overwritten; the device never replaces its keys silently.
    #[error("{} already exists; refusing to overwrite it", .0.display())]
    Exists(PathBuf),

    /// A local file could not be read, written or understood.
    #[error("{}: {reason}", path.display())]
    File {
        /// The file concerned.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },

    /// The blobs of a file message cannot be turned into the file (gone, over the
    /// limit, of the wrong size, or corrupt); trying again will not help.
    #[error(transparent)]
    Blob(#[from] FileError),

    /// A value did not pass its wire parser.
    #[error(transparent)]
    Parse(#[from] ParseError),

    /// The caller passed something unusable.
    #[error("invalid input: {0}")]
    Invalid(String),
}

impl DeviceError {
    /// A [`DeviceError::File`] for `path`.
    pub(crate) fn file(path: impl Into<PathBuf>, reason: impl ToString) -> Self {
        Self::File {
            path: path.into(),
            reason: reason.to_string(),
        }
    }

    /// Whether the same operation may succeed later without any change on this side:
    /// transport trouble, timeouts, closed connections, refused logins and retryable
    /// directory answers.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Http(e) => e.is_retryable(),
            Self::WebSocket(_)
            | Self::Timeout(_)
            | Self::Closed(_)
            | Self::LoginRefused(_)
            | Self::Frame(_)
            | Self::Protocol(_) => true,
            _ => false,
        }
    }
}
