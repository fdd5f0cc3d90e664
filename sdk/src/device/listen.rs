//! [`Listener`]: stay connected, hand every new message to a callback exactly once, and
//! acknowledge everything.
//!
//! For each message, in order:
//!
//! 1. already in the [`SeenStore`]: reported as [`Notice::Duplicate`], acked, nothing
//!    else;
//! 2. otherwise handed to the callback as [`Notice::Message`], then recorded as seen;
//! 3. answered with an automatic "received" receipt, unless the sender forbade it
//!    ([`crate::protocol::MessageFlags::NO_RECEIPTS`]) or it is itself a receipt;
//! 4. acked, which lets the server delete it.
//!
//! A crash between 2 and 4 shows nothing twice: the message comes again and is a
//! duplicate. A message that cannot be opened is reported and acked (dropped), except
//! when it may open later ([`super::Rejected::retryable`]: the directory could not be
//! asked for the sender's key), which stays queued for the next login.
//!
//! A handler that answers [`Handled::Later`] skips 2 to 4: the listener reconnects after
//! a pause and the message comes again. With [`ListenOptions::fetch_files`], a file
//! message is downloaded before step 2 and handed over as [`Notice::File`]; after the
//! handler answers [`Handled::Done`], its blobs are reported done before the receipt and
//! the ack. A file message that comes again as a duplicate has its blobs reported done
//! again (the earlier report may not have reached the server).
//!
//! When the connection is lost the listener reconnects after an exponential backoff
//! with jitter (1 s doubling to 60 s by default, back to 1 s after each successful
//! login), and it stops for good when the server says not to reconnect. When it
//! reconnects to get a message again (handler said later, or a file download may work
//! later), the backoff is not reset, so a lasting failure is retried ever more slowly.
//! The `stop` future ends it at any point; what was not acked by then comes again next
//! time.

use std::future::Future;

use super::backoff::Backoff;
use super::{
    Connection, DeviceError, DeviceKeys, Directory, Event, FileUnavailable, Handled, ListenOptions,
    Notice, Received, SeenStore,
};
use crate::protocol::{E2eMessage, ReceiptStatus};

/// Why [`Listener::run`] returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenEnd {
    /// The `stop` future completed.
    Stopped,
    /// The server closed the connection and asked not to reconnect.
    Refused(String),
}

/// How one connection ended.
enum SessionEnd {
    /// The connection failed; reconnect, with the backoff reset after the login.
    Lost(String),
    /// A message could not be handled now; reconnect to get it again, without
    /// resetting the backoff, so that a lasting failure is retried ever more slowly.
    Retry(String),
    Refused(String),
    Fatal(DeviceError),
}

/// Keeps a device connected and its messages handled.
#[derive(Debug)]
pub struct Listener {
    keys: DeviceKeys,
    directory: Directory,
    seen: SeenStore,
    options: ListenOptions,
}

impl Listener {
    /// A listener for the device `keys`, looking keys up in `directory` and
    /// remembering handled messages in `seen`.
    pub fn new(keys: DeviceKeys, directory: Directory, seen: SeenStore) -> Self {
        Self {
            keys,
            directory,
            seen,
            options: ListenOptions::default(),
        }
    }

    /// Replaces the default options.
    #[must_use]
    pub fn with_options(mut self, options: ListenOptions) -> Self {
        self.options = options;
        self
    }

    /// The messages handled so far.
    pub fn seen(&self) -> &SeenStore {
        &self.seen
    }

    /// Listens until `stop` completes or the server says not to reconnect, calling
    /// `handler` for everything worth knowing. The handler's answer ([`Handled`], or
    /// `()` for always done) counts for messages and files.
    ///
    /// # Errors
    ///
    /// Only local failures end it with an error: the seen store cannot be written.
    /// Connection failures are reported as [`Notice::Disconnected`] and retried.
    pub async fn run<H, R, S>(&mut self, mut handler: H, stop: S) -> Result<ListenEnd, DeviceError>
    where
        H: FnMut(Notice) -> R,
        R: Into<Handled>,
        S: Future<Output = ()>,
    {
        tokio::pin!(stop);
        let mut backoff = Backoff::new(self.options.first_retry, self.options.max_retry);
        let mut reset_backoff = true;
        loop {
            let end = tokio::select! {
                biased;
                () = &mut stop => return Ok(ListenEnd::Stopped),
                end = self.session(&mut handler, &mut backoff, reset_backoff) => end,
            };
            reset_backoff = !matches!(end, SessionEnd::Retry(_));
            let reason = match end {
                SessionEnd::Lost(reason) | SessionEnd::Retry(reason) => reason,
                SessionEnd::Refused(reason) => return Ok(ListenEnd::Refused(reason)),
                SessionEnd::Fatal(e) => return Err(e),
            };
            let retry_in = backoff.next_delay();
            handler(Notice::Disconnected { reason, retry_in });
            tokio::select! {
                biased;
                () = &mut stop => return Ok(ListenEnd::Stopped),
                () = tokio::time::sleep(retry_in) => {}
            }
        }
    }

    /// One connection, from login to its end.
    async fn session<H, R>(
        &mut self,
        handler: &mut H,
        backoff: &mut Backoff,
        reset_backoff: bool,
    ) -> SessionEnd
    where
        H: FnMut(Notice) -> R,
        R: Into<Handled>,
    {
        let lost = |e: DeviceError| SessionEnd::Lost(e.to_string());
        let mut connection = match Connection::connect(&self.keys, &self.directory).await {
            Ok(connection) => connection,
            Err(e) => return lost(e),
        };
        connection.set_keepalive(self.options.keepalive);
        connection.set_max_file_bytes(self.options.max_file_bytes);
        if reset_backoff {
            backoff.reset();
        }
        handler(Notice::Connected);
        loop {
            let event = match connection.next_event().await {
                Ok(event) => event,
                Err(e) => return lost(e),
            };
            let handled = match event {
                Event::Message(received) => self.handle(&mut connection, received, handler).await,
                Event::Rejected(rejected) => {
                    handler(Notice::Rejected(rejected.clone()));
                    if rejected.retryable {
                        Ok(())
                    } else {
                        connection.ack_rejected(&rejected).await.map_err(lost)
                    }
                }
                Event::QueueComplete => {
                    handler(Notice::QueueComplete);
                    Ok(())
                }
                Event::Alert(text) => {
                    handler(Notice::Alert(text));
                    Ok(())
                }
                Event::AlarmRing(ring) => {
                    handler(Notice::AlarmRing(ring));
                    Ok(())
                }
                Event::AlarmStop(stop) => {
                    handler(Notice::AlarmStop(stop));
                    Ok(())
                }
                Event::Closed {
                    can_reconnect: false,
                    reason,
                } => return SessionEnd::Refused(reason),
                Event::Closed { reason, .. } => return SessionEnd::Lost(reason),
            };
            if let Err(end) = handled {
                return end;
            }
        }
    }

    /// Steps 1 to 4 of the module docs for one message.
    async fn handle<H, R>(
        &mut self,
        connection: &mut Connection,
        received: Box<Received>,
        handler: &mut H,
    ) -> Result<(), SessionEnd>
    where
        H: FnMut(Notice) -> R,
        R: Into<Handled>,
    {
        let lost = |e: DeviceError| SessionEnd::Lost(e.to_string());
        let file = match &received.message {
            E2eMessage::File(file) if self.options.fetch_files => Some(file.clone()),
            _ => None,
        };
        if self.seen.contains(&received) {
            handler(Notice::Duplicate {
                sender: received.sender,
                message_id: received.message_id,
            });
            if let Some(file) = &file {
                connection.file_done(file).await.map_err(lost)?;
            }
        } else {
            let (handled, fetched) = match &file {
                None => (handler(Notice::Message(received.clone())).into(), false),
                Some(file) => Self::fetch(connection, received.clone(), file, handler).await?,
            };
            if handled == Handled::Later {
                return Err(SessionEnd::Retry(format!(
                    "message {} from {} is to be handled later",
                    received.message_id, received.sender
                )));
            }
            self.seen.insert(&received).map_err(SessionEnd::Fatal)?;
            if let (Some(file), true) = (&file, fetched) {
                connection.file_done(file).await.map_err(lost)?;
            }
            if self.options.automatic_receipts && received.wants_receipt() {
                let ids = [received.message_id];
                let receipt =
                    connection.send_receipt(&received.sender, ReceiptStatus::Received, &ids);
                match receipt.await {
                    // A sender that takes no receipts (no callback URL) is not an error
                    // of this message: it is handled all the same.
                    Ok(_) | Err(DeviceError::Refused(_)) => {}
                    Err(e) => return Err(lost(e)),
                }
            }
        }
        connection.ack(&received).await.map_err(lost)
    }

    /// Downloads the file and hands it over; returns the handler's answer and whether
    /// the file was there. A failure that may pass ends the session, to try again.
    async fn fetch<H, R>(
        connection: &mut Connection,
        received: Box<Received>,
        file: &crate::protocol::FileMessage,
        handler: &mut H,
    ) -> Result<(Handled, bool), SessionEnd>
    where
        H: FnMut(Notice) -> R,
        R: Into<Handled>,
    {
        match connection.fetch_file(file).await {
            Ok(downloaded) => {
                let notice = Notice::File {
                    received,
                    file: Ok(Box::new(downloaded)),
                };
                Ok((handler(notice).into(), true))
            }
            Err(e) => {
                let unavailable = FileUnavailable {
                    reason: e.to_string(),
                    retryable: e.is_retryable(),
                };
                let retry = unavailable.retryable.then(|| unavailable.reason.clone());
                let handled = handler(Notice::File {
                    received,
                    file: Err(unavailable),
                })
                .into();
                match retry {
                    Some(reason) => Err(SessionEnd::Retry(reason)),
                    None => Ok((handled, false)),
                }
            }
        }
    }
}
