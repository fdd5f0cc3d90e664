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
//! when it may open later ([`Rejected::retryable`]: the directory could not be asked for
//! the sender's key), which stays queued for the next login.
//!
//! When the connection is lost the listener reconnects after an exponential backoff
//! with jitter (1 s doubling to 60 s by default, back to 1 s after each successful
//! login), and it stops for good when the server says not to reconnect. The `stop`
//! future ends it at any point; what was not acked by then comes again next time.

use std::future::Future;
use std::time::Duration;

use super::backoff::Backoff;
use super::{Connection, DeviceError, DeviceKeys, Directory, Event, Received, Rejected, SeenStore};
use crate::protocol::{IdentityId, MessageId, ReceiptStatus};

/// How a [`Listener`] behaves.
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
}

impl Default for ListenOptions {
    fn default() -> Self {
        Self {
            first_retry: Duration::from_secs(1),
            max_retry: Duration::from_secs(60),
            automatic_receipts: true,
            keepalive: Connection::DEFAULT_KEEPALIVE,
        }
    }
}

/// What the listener tells its callback.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Notice {
    /// Logged in (again).
    Connected,
    /// Every message queued before the login has been handled.
    QueueComplete,
    /// A new message; it is recorded as seen, receipted and acked after the callback
    /// returns.
    Message(Box<Received>),
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
    /// The connection was lost or could not be made; the next attempt follows after
    /// `retry_in`.
    Disconnected {
        /// What went wrong.
        reason: String,
        /// The pause before the next attempt.
        retry_in: Duration,
    },
}

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
    Lost(String),
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
    /// `handler` for everything worth knowing.
    ///
    /// # Errors
    ///
    /// Only local failures end it with an error: the seen store cannot be written.
    /// Connection failures are reported as [`Notice::Disconnected`] and retried.
    pub async fn run<H, S>(&mut self, mut handler: H, stop: S) -> Result<ListenEnd, DeviceError>
    where
        H: FnMut(Notice),
        S: Future<Output = ()>,
    {
        tokio::pin!(stop);
        let mut backoff = Backoff::new(self.options.first_retry, self.options.max_retry);
        loop {
            let end = tokio::select! {
                biased;
                () = &mut stop => return Ok(ListenEnd::Stopped),
                end = self.session(&mut handler, &mut backoff) => end,
            };
            let reason = match end {
                SessionEnd::Lost(reason) => reason,
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
    async fn session<H: FnMut(Notice)>(
        &mut self,
        handler: &mut H,
        backoff: &mut Backoff,
    ) -> SessionEnd {
        let lost = |e: DeviceError| SessionEnd::Lost(e.to_string());
        let mut connection = match Connection::connect(&self.keys, &self.directory).await {
            Ok(connection) => connection,
            Err(e) => return lost(e),
        };
        connection.set_keepalive(self.options.keepalive);
        backoff.reset();
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
    async fn handle<H: FnMut(Notice)>(
        &mut self,
        connection: &mut Connection,
        received: Box<Received>,
        handler: &mut H,
    ) -> Result<(), SessionEnd> {
        let lost = |e: DeviceError| SessionEnd::Lost(e.to_string());
        if self.seen.contains(&received) {
            handler(Notice::Duplicate {
                sender: received.sender,
                message_id: received.message_id,
            });
        } else {
            handler(Notice::Message(received.clone()));
            self.seen.insert(&received).map_err(SessionEnd::Fatal)?;
            if self.options.automatic_receipts && received.wants_receipt() {
                connection
                    .send_receipt(
                        &received.sender,
                        ReceiptStatus::Received,
                        &[received.message_id],
                    )
                    .await
                    .map_err(lost)?;
            }
        }
        connection.ack(&received).await.map_err(lost)
    }
}
