//! [`Connection`]: one logged-in session with the chat server over WebSocket.
//!
//! Reading happens only inside [`Connection::next_event`] and the sending methods, one
//! frame at a time, so the connection needs no task of its own. While a send waits for
//! its server ack, whatever else arrives is kept for the next `next_event` in arrival
//! order. Keep-alive rides on the same loop: every interval an echo goes out, and an
//! echo left unanswered for a whole interval ends the connection with
//! [`DeviceError::Timeout`].
//!
//! After any transport or frame error, or after [`Event::Closed`], the connection is
//! over and every further call answers [`DeviceError::Closed`]. Dropping a call
//! half-way (a timeout around it, a `select!`) is safe: at worst the message being
//! opened is not reported and, having no ack, comes again at the next login.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::future::Future;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_tungstenite::tungstenite::{self, Message};

use super::login::{close_reason, login, Ws};
use super::{DeviceError, DeviceKeys, Directory, Event};
use crate::files::DEFAULT_MAX_FILE_BYTES;
use crate::protocol::csp::{Opener, Payload, Sealer};
use crate::protocol::{IdentityId, MessageId};

/// Time the server has to take one frame from us.
const WRITE_TIMEOUT: Duration = Duration::from_secs(15);

/// Most announced expiries held for messages that have not arrived yet.
const MAX_PENDING_EXPIRIES: usize = 1024;

/// One step of the read loop.
enum Step {
    Message(Option<Result<Message, tungstenite::Error>>),
    Tick,
}

/// A logged-in session of one device.
pub struct Connection {
    ws: Ws,
    sealer: Sealer,
    opener: Opener,
    pub(super) keys: DeviceKeys,
    pub(super) directory: Directory,
    /// Events read while a send waited for its server ack.
    pub(super) pending: VecDeque<Event>,
    /// Server acks not yet claimed by a waiting send.
    pub(super) server_acks: HashSet<(IdentityId, MessageId)>,
    /// Outgoing messages the server refused, with its reason.
    pub(super) server_refusals: HashMap<(IdentityId, MessageId), String>,
    /// Expiries the server announced for the incoming messages that follow them.
    expiries: HashMap<(IdentityId, MessageId), u32>,
    keepalive: Interval,
    /// Counter of the last echo sent, and of the last one answered.
    pub(super) echo_sent: u64,
    pub(super) echo_answered: u64,
    /// The echo the keep-alive is waiting for, if any.
    keepalive_echo: Option<u64>,
    /// Why the connection is over, once it is.
    closed: Option<String>,
    /// Largest file [`Connection::fetch_file`] downloads.
    pub(super) max_file_bytes: u64,
    /// Shared keys with recent peers, so a busy sender costs one key exchange, not one
    /// per message.
    pub(super) shared_keys: super::messaging::SharedKeys,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("identity", &self.keys.identity)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Interval of the keep-alive echo unless [`Connection::set_keepalive`] changes it;
    /// well inside the server's idle timeout (5 minutes by default, 30 s at least).
    pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(60);

    /// Connects to the chat server of `keys`, runs the handshake and logs in. Sender
    /// and recipient keys are looked up in `directory` (cloned; clones share a cache),
    /// and `wss://` trusts what it trusts (see [`Directory::with_private_ca`]).
    ///
    /// # Errors
    ///
    /// [`DeviceError::WebSocket`] or [`DeviceError::Timeout`] when the server cannot be
    /// reached; [`DeviceError::ServerNotPinned`] when it cannot prove it holds the
    /// pinned key; [`DeviceError::LoginRefused`] when it closes instead of accepting
    /// (unknown or revoked identity, wrong key).
    pub async fn connect(keys: &DeviceKeys, directory: &Directory) -> Result<Self, DeviceError> {
        let (ws, session) = login(keys, directory.websocket_tls.clone()).await?;
        let (sealer, opener) = session.split();
        Ok(Self {
            ws,
            sealer,
            opener,
            keys: keys.clone(),
            directory: directory.clone(),
            pending: VecDeque::new(),
            server_acks: HashSet::new(),
            server_refusals: HashMap::new(),
            expiries: HashMap::new(),
            keepalive: keepalive_timer(Self::DEFAULT_KEEPALIVE),
            echo_sent: 0,
            echo_answered: 0,
            keepalive_echo: None,
            closed: None,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            shared_keys: super::messaging::SharedKeys::default(),
        })
    }

    /// Changes the keep-alive interval (at least one second); the next echo goes out
    /// one interval from now.
    pub fn set_keepalive(&mut self, every: Duration) {
        self.keepalive = keepalive_timer(every.max(Duration::from_secs(1)));
        self.keepalive_echo = None;
    }

    /// Changes the largest file (plaintext bytes) [`Connection::fetch_file`] accepts;
    /// 20 MiB unless changed.
    pub fn set_max_file_bytes(&mut self, max: u64) {
        self.max_file_bytes = max;
    }

    /// The identity this connection is logged in as.
    pub fn identity(&self) -> IdentityId {
        self.keys.identity
    }

    /// The directory used for sender and recipient keys.
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// Waits for the next event: a message, the end of the queue, an alert, or the end
    /// of the connection. Answers echo requests and sends keep-alives meanwhile.
    ///
    /// # Errors
    ///
    /// [`DeviceError::Closed`] once the connection is over; transport, frame and
    /// keep-alive failures, after which it is over.
    pub async fn next_event(&mut self) -> Result<Event, DeviceError> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(event);
            }
            if let Some(event) = self.step().await? {
                return Ok(event);
            }
        }
    }

    /// Closes the WebSocket politely; errors are of no interest at this point.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(WRITE_TIMEOUT, self.ws.close(None)).await;
    }

    /// Reads one WebSocket message or serves one keep-alive tick; returns the event it
    /// produced, if any. Marks the connection over on any error.
    pub(super) async fn step(&mut self) -> Result<Option<Event>, DeviceError> {
        if let Some(reason) = &self.closed {
            return Err(DeviceError::Closed(reason.clone()));
        }
        let step = tokio::select! {
            message = self.ws.next() => Step::Message(message),
            _ = self.keepalive.tick() => Step::Tick,
        };
        let result = match step {
            Step::Tick => self.keep_alive().await.map(|()| None),
            Step::Message(message) => self.on_message(message).await,
        };
        if let Err(e) = &result {
            self.closed.get_or_insert_with(|| e.to_string());
        }
        result
    }

    async fn on_message(
        &mut self,
        message: Option<Result<Message, tungstenite::Error>>,
    ) -> Result<Option<Event>, DeviceError> {
        match message {
            Some(Ok(Message::Binary(frame))) => {
                let payload = self.opener.open_frame(&frame)?;
                self.on_payload(payload).await
            }
            Some(Ok(Message::Close(frame))) => Ok(Some(self.finish(true, close_reason(frame)))),
            None => Ok(Some(
                self.finish(true, "the server closed the connection".into()),
            )),
            Some(Ok(Message::Text(_))) => Err(DeviceError::Protocol("a text message".into())),
            Some(Ok(_)) => Ok(None),
            Some(Err(e)) => Err(DeviceError::WebSocket(e.to_string())),
        }
    }

    async fn on_payload(&mut self, payload: Payload) -> Result<Option<Event>, DeviceError> {
        match payload {
            Payload::IncomingMessage(envelope) => {
                let expires_at = self
                    .expiries
                    .remove(&(envelope.sender, envelope.message_id));
                let mut event = self.open(envelope).await;
                if let Event::Message(received) = &mut event {
                    received.expires_at = expires_at;
                }
                Ok(Some(event))
            }
            Payload::ServerAck {
                receiver,
                message_id,
            } => {
                self.server_acks.insert((receiver, message_id));
                Ok(None)
            }
            Payload::EchoRequest(data) => {
                self.write(&Payload::EchoResponse(data)).await?;
                Ok(None)
            }
            Payload::EchoResponse(data) => {
                if let Ok(counter) = <[u8; 8]>::try_from(data.as_slice()) {
                    self.echo_answered = self.echo_answered.max(u64::from_le_bytes(counter));
                }
                Ok(None)
            }
            Payload::QueueSendComplete => Ok(Some(Event::QueueComplete)),
            Payload::CloseError {
                can_reconnect,
                reason,
            } => Ok(Some(self.finish(can_reconnect, reason))),
            Payload::Alert(text) => Ok(Some(Event::Alert(text))),
            other => {
                if let Some(ring) = other.as_alarm_ring() {
                    return Ok(Some(Event::AlarmRing(ring)));
                }
                if let Some(stop) = other.as_alarm_stop() {
                    return Ok(Some(Event::AlarmStop(stop)));
                }
                if let Some((receiver, message_id, reason)) = other.as_message_refused() {
                    self.server_refusals.insert((receiver, message_id), reason);
                }
                if let Some((sender, message_id, at)) = other.as_message_expires() {
                    // Each is followed by its message at once; a server that sent them
                    // without their messages cannot make the map grow for long.
                    if self.expiries.len() >= MAX_PENDING_EXPIRIES {
                        self.expiries.clear();
                    }
                    self.expiries.insert((sender, message_id), at);
                }
                Ok(None)
            }
        }
    }

    /// Runs `work` (a download) to its end while keeping the session alive: at every
    /// keep-alive tick an echo goes out, so the server's idle timeout does not strike.
    /// Nothing is read meanwhile; what arrives waits in the socket for the next read,
    /// and the echo answers are not judged until then.
    pub(super) async fn keep_alive_during<F: Future>(
        &mut self,
        work: F,
    ) -> Result<F::Output, DeviceError> {
        tokio::pin!(work);
        self.keepalive_echo = None;
        let output = loop {
            tokio::select! {
                output = &mut work => break output,
                _ = self.keepalive.tick() => {
                    self.send_echo().await?;
                }
            }
        };
        self.keepalive_echo = None;
        Ok(output)
    }

    /// Sends the keep-alive echo, or gives up if the previous one is still unanswered.
    async fn keep_alive(&mut self) -> Result<(), DeviceError> {
        if self.keepalive_echo.is_some_and(|n| self.echo_answered < n) {
            return Err(DeviceError::Timeout("an answer to the keep-alive echo"));
        }
        self.keepalive_echo = Some(self.send_echo().await?);
        Ok(())
    }

    /// Sends an echo request carrying the next counter; returns the counter.
    pub(super) async fn send_echo(&mut self) -> Result<u64, DeviceError> {
        let counter = self.echo_sent + 1;
        self.write(&Payload::EchoRequest(counter.to_le_bytes().to_vec()))
            .await?;
        self.echo_sent = counter;
        Ok(counter)
    }

    /// Seals and sends one payload. A payload too large to seal is refused without
    /// harm; a failed write ends the connection.
    pub(super) async fn write(&mut self, payload: &Payload) -> Result<(), DeviceError> {
        if let Some(reason) = &self.closed {
            return Err(DeviceError::Closed(reason.clone()));
        }
        let frame = self.sealer.seal_frame(payload)?;
        let sent = tokio::time::timeout(WRITE_TIMEOUT, self.ws.send(Message::Binary(frame.into())))
            .await
            .map_err(|_| DeviceError::Timeout("the server to take a frame"))
            .and_then(|r| r.map_err(|e| DeviceError::WebSocket(e.to_string())));
        if let Err(e) = &sent {
            self.closed.get_or_insert_with(|| e.to_string());
        }
        sent
    }

    /// Marks the connection over and returns the event that says so.
    fn finish(&mut self, can_reconnect: bool, reason: String) -> Event {
        self.closed.get_or_insert_with(|| reason.clone());
        Event::Closed {
            can_reconnect,
            reason,
        }
    }
}

/// A timer whose first tick comes one interval from now.
fn keepalive_timer(every: Duration) -> Interval {
    let mut timer = tokio::time::interval_at(Instant::now() + every, every);
    timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
    timer
}
