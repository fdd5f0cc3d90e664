//! What a [`super::Listener`] tells its handler, what the handler answers, and how the
//! listener is configured.

use std::time::Duration;

use super::{Connection, Received, Rejected};
use crate::files::{DownloadedFile, DEFAULT_MAX_FILE_BYTES};
use crate::protocol::csp::{AlarmRing, AlarmStop};
use crate::protocol::{IdentityId, MessageId};

/// How a [`super::Listener`] behaves.
#[derive(Debug, Clone)]
pub struct ListenOptions {
    /// Delay before the first reconnection attempt, doubled after each failure.
    pub first_retry: Duration,
    /// Longest delay between reconnection attempts.
    pub max_retry: Duration,
    /// Whether to send automatic "received" receipts.
    pub automatic_receipts: bool,
    /// Interval of the keep-alive echo.
    pub keepalive: Duration,
    /// Whether to download the files of file messages before handing them over (as
    /// [`Notice::File`] instead of [`Notice::Message`]), and to tell the server when
    /// they are done.
    pub fetch_files: bool,
    /// Largest file downloaded, in plaintext bytes (20 MiB by default).
    pub max_file_bytes: u64,
}

impl Default for ListenOptions {
    fn default() -> Self {
        Self {
            first_retry: Duration::from_secs(1),
            max_retry: Duration::from_secs(60),
            automatic_receipts: true,
            keepalive: Connection::DEFAULT_KEEPALIVE,
            fetch_files: false,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
        }
    }
}

/// What the listener tells its handler.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Notice {
    /// Logged in (again).
    Connected,
    /// Every message queued before the login has been handled.
    QueueComplete,
    /// A new message; unless the handler answers [`Handled::Later`], it is recorded as
    /// seen, receipted and acked after the handler returns.
    Message(Box<Received>),
    /// A new file message, with [`ListenOptions::fetch_files`]: the file, downloaded
    /// and checked, or why it is not available. After [`Handled::Done`], a downloaded
    /// file's blobs are reported done (the server may delete them), and the message is
    /// recorded, receipted and acked, so store the file before returning.
    ///
    /// When the failure may pass ([`FileUnavailable::retryable`]), the listener
    /// reconnects after a pause that grows with each such failure, and the message
    /// comes again. Otherwise the message counts as handled without its file.
    File {
        /// The message; its content is an [`crate::protocol::E2eMessage::File`].
        received: Box<Received>,
        /// The file, or why there is none.
        file: Result<Box<DownloadedFile>, FileUnavailable>,
    },
    /// A message handled before came again; it was acked and is not shown.
    Duplicate {
        /// Its sender.
        sender: IdentityId,
        /// Its ID.
        message_id: MessageId,
    },
    /// A message that could not be opened; acked (dropped) unless retryable.
    Rejected(Rejected),
    /// Text from the server operator.
    Alert(String),
    /// An alarm rings (see [`super::Event::AlarmRing`]).
    AlarmRing(AlarmRing),
    /// An alarm stopped ringing for this identity (see [`super::Event::AlarmStop`]).
    AlarmStop(AlarmStop),
    /// The connection was lost or could not be made; the next attempt follows after
    /// `retry_in`.
    Disconnected {
        /// What went wrong.
        reason: String,
        /// The pause before the next attempt.
        retry_in: Duration,
    },
}

/// Why the file of a [`Notice::File`] is not there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileUnavailable {
    /// What went wrong, as one line.
    pub reason: String,
    /// Whether it may work later (transport trouble, server errors): the listener then
    /// reconnects after a pause and the message comes again.
    pub retryable: bool,
}

/// The handler's answer about a [`Notice::Message`] or [`Notice::File`]; ignored for
/// the other notices. A handler that returns `()` always answers [`Handled::Done`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Handled {
    /// Handled: record it, send the receipt and the ack (and report a file's blobs
    /// done).
    #[default]
    Done,
    /// Not handled now (say, the disk is full): nothing is recorded or acked; the
    /// listener reconnects after a pause that grows while this repeats, and the message
    /// comes again.
    Later,
}

impl From<()> for Handled {
    fn from((): ()) -> Self {
        Self::Done
    }
}
