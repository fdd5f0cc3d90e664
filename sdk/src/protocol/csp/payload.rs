//! The payloads exchanged after login, one per frame.
//!
//! Every payload is a container `type (u8) ‖ 3 reserved bytes ‖ data`. The reserved
//! bytes are written as zero and ignored when read. Types this crate does not know
//! decode as [`Payload::Unknown`], so a peer can skip what a newer peer sends instead of
//! dropping the connection. Which direction a payload may travel in is the receiver's
//! business: the codec accepts every type both ways.
//!
//! Message IDs are written as the raw bytes of [`MessageId`], in order, so the hex form
//! in logs matches the one the Gateway API returns.
//!
//! # Tocsin extensions
//!
//! Types of Tocsin's own travel as [`Payload::Unknown`], so a client that does not know
//! them skips them and loses nothing it needs. Each type's constant documents its data.
//!
//! | type | constant | direction | about |
//! | --- | --- | --- | --- |
//! | `0x40` | [`Payload::BLOB_DONE`] | C→S | a blob the device is done with |
//! | `0x41` | [`Payload::MESSAGE_REFUSED`] | S→C | an outgoing message not taken |
//! | `0x42` | [`Payload::MESSAGE_EXPIRES`] | S→C | the expiry of the message that follows |
//! | `0x43` | [`Payload::ALARM_RING`] | S→C | ring for an alarm (the message that follows is one) |
//! | `0x44` | [`Payload::ALARM_ANSWER`] | C→S | a recipient's answer to an alarm |
//! | `0x45` | [`Payload::ALARM_STOP`] | S→C | stop ringing, and why |

mod alarm;

pub use alarm::{AlarmAnswer, AlarmAnswerError, AlarmRing, AlarmStop, ALARM_NOTE_MAX};

use super::{MessageEnvelope, PayloadError};
use crate::protocol::{IdentityId, MessageId};

/// Size of the container header: type and three reserved bytes.
const HEADER_LEN: usize = 4;

/// Size of an ack: identity and message ID.
const ACK_LEN: usize = IdentityId::LEN + MessageId::LEN;

/// One decoded payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// `0x00`, both ways: keep-alive; the peer answers with the same data.
    EchoRequest(Vec<u8>),
    /// `0x80`, both ways: the answer to an echo request, carrying its data.
    EchoResponse(Vec<u8>),
    /// `0x01`, client to server: a message to queue for its receiver.
    OutgoingMessage(MessageEnvelope),
    /// `0x81`, server to client: the outgoing message is stored for `receiver`.
    ServerAck {
        /// Receiver of the acknowledged message.
        receiver: IdentityId,
        /// ID of the acknowledged message.
        message_id: MessageId,
    },
    /// `0x02`, server to client: a queued message for the logged-in identity.
    IncomingMessage(MessageEnvelope),
    /// `0x82`, client to server: the incoming message is handled and may be deleted.
    ClientAck {
        /// Sender of the acknowledged message.
        sender: IdentityId,
        /// ID of the acknowledged message.
        message_id: MessageId,
    },
    /// `0x03`, client to server: start delivering queued messages (multi-device leader).
    UnblockIncoming,
    /// `0x30`, client to server: idle timeout in seconds (the server enforces a range).
    SetIdleTimeout(u16),
    /// `0xd0`, server to client: every queued message has been sent.
    QueueSendComplete,
    /// `0xe0`, server to client: the server is closing the connection.
    CloseError {
        /// Whether the client may reconnect; `false` overrides any reconnect policy.
        can_reconnect: bool,
        /// Why, as text for logs.
        reason: String,
    },
    /// `0xe1`, server to client: text to show the user.
    Alert(String),
    /// Any other type, kept as it came.
    Unknown {
        /// The type byte; never one of the types above.
        kind: u8,
        /// The data after the container header.
        data: Vec<u8>,
    },
}

impl Payload {
    /// Type byte of [`Payload::EchoRequest`].
    pub const ECHO_REQUEST: u8 = 0x00;
    /// Type byte of [`Payload::OutgoingMessage`].
    pub const OUTGOING_MESSAGE: u8 = 0x01;
    /// Type byte of [`Payload::IncomingMessage`].
    pub const INCOMING_MESSAGE: u8 = 0x02;
    /// Type byte of [`Payload::UnblockIncoming`].
    pub const UNBLOCK_INCOMING: u8 = 0x03;
    /// Type byte of [`Payload::SetIdleTimeout`].
    pub const SET_IDLE_TIMEOUT: u8 = 0x30;
    /// Type byte of [`Payload::EchoResponse`].
    pub const ECHO_RESPONSE: u8 = 0x80;
    /// Type byte of [`Payload::ServerAck`].
    pub const SERVER_ACK: u8 = 0x81;
    /// Type byte of [`Payload::ClientAck`].
    pub const CLIENT_ACK: u8 = 0x82;
    /// Type byte of [`Payload::QueueSendComplete`].
    pub const QUEUE_SEND_COMPLETE: u8 = 0xd0;
    /// Type byte of [`Payload::CloseError`].
    pub const CLOSE_ERROR: u8 = 0xe0;
    /// Type byte of [`Payload::Alert`].
    pub const ALERT: u8 = 0xe1;
    /// `0x40`, client to server, a Tocsin extension carried as [`Payload::Unknown`]: the
    /// device is done with the blob whose 16-byte ID is the data, so the server may remove
    /// a blob that was not uploaded with `persist` once every device of the identity is.
    pub const BLOB_DONE: u8 = 0x40;
    /// `0x41`, server to client, a Tocsin extension carried as [`Payload::Unknown`]: the
    /// server did not take an outgoing message and will not ack it. Data: receiver (8) ‖
    /// message ID (8) ‖ UTF-8 reason. Nothing of the message was stored; sending it again
    /// as it is gets the same answer. Build and read it with [`Payload::message_refused`]
    /// and [`Payload::as_message_refused`].
    pub const MESSAGE_REFUSED: u8 = 0x41;

    /// `0x42`, server to client, a Tocsin extension carried as [`Payload::Unknown`]: the
    /// message that follows (the next incoming message with this sender and ID) expires at
    /// a time of its sender's choosing, and the server will not deliver it after that.
    /// Data: sender (8) ‖ message ID (8) ‖ expiry as unix seconds (u32, little-endian).
    /// Sent only for messages whose sender set a TTL; a client that ignores it loses
    /// nothing. Build and read it with [`Payload::message_expires`] and
    /// [`Payload::as_message_expires`].
    pub const MESSAGE_EXPIRES: u8 = 0x42;

    /// `0x43`, server to client, a Tocsin extension carried as [`Payload::Unknown`]: ring
    /// for an alarm, whose ID is the ID of the chat message that carries it. Data:
    /// gateway (8) ‖ message ID (8) ‖ ring number (u16, little-endian) ‖ priority (u8, as
    /// [`Priority::to_byte`](crate::protocol::Priority::to_byte)) ‖ tier (u8, 1 for the
    /// first). Ring 0 comes right before the alarm's message itself (the next incoming
    /// message with this sender and ID): the message that follows is an alarm. Rings 1,
    /// 2, … repeat it until a [`Payload::ALARM_STOP`]. A client that ignores it gets the
    /// message as an ordinary one. Build and read it with [`Payload::alarm_ring`] and
    /// [`Payload::as_alarm_ring`].
    pub const ALARM_RING: u8 = 0x43;

    /// `0x44`, client to server, a Tocsin extension carried as [`Payload::Unknown`]: the
    /// device's answer to an alarm. Data: gateway (8) ‖ message ID (8) ‖ answer (u8, as
    /// [`Answer::to_byte`](crate::protocol::Answer::to_byte)) ‖ ETA in minutes (u16,
    /// little-endian; `0xffff` for none) ‖ note (UTF-8, at most [`ALARM_NOTE_MAX`] bytes,
    /// empty for none). Build and read it with [`Payload::alarm_answer`] and
    /// [`Payload::as_alarm_answer`].
    pub const ALARM_ANSWER: u8 = 0x44;

    /// `0x45`, server to client, a Tocsin extension carried as [`Payload::Unknown`]: stop
    /// ringing for an alarm. Data: gateway (8) ‖ message ID (8) ‖ reason (u8, as
    /// [`StopReason::to_byte`](crate::protocol::StopReason::to_byte)) ‖ this recipient's
    /// answer (u8: 0 for none, else as
    /// [`Answer::to_byte`](crate::protocol::Answer::to_byte)), so that each of their
    /// devices shows what they answered, on whichever device. Build and read it with
    /// [`Payload::alarm_stop`] and [`Payload::as_alarm_stop`].
    pub const ALARM_STOP: u8 = 0x45;

    /// A [`Payload::MESSAGE_EXPIRES`] for the message `message_id` from `sender`.
    pub fn message_expires(sender: IdentityId, message_id: MessageId, expires_at: u32) -> Self {
        Self::about_message(
            Self::MESSAGE_EXPIRES,
            sender,
            message_id,
            &expires_at.to_le_bytes(),
        )
    }

    /// The sender, message ID and expiry (unix seconds) of a [`Payload::MESSAGE_EXPIRES`];
    /// `None` for any other payload or a malformed one.
    pub fn as_message_expires(&self) -> Option<(IdentityId, MessageId, u32)> {
        let (sender, message_id, at) = self.about_which_message(Self::MESSAGE_EXPIRES)?;
        Some((sender, message_id, u32::from_le_bytes(at.try_into().ok()?)))
    }

    /// A [`Payload::MESSAGE_REFUSED`] for the message `message_id` to `receiver`.
    pub fn message_refused(receiver: IdentityId, message_id: MessageId, reason: &str) -> Self {
        Self::about_message(
            Self::MESSAGE_REFUSED,
            receiver,
            message_id,
            reason.as_bytes(),
        )
    }

    /// The receiver, message ID and reason of a [`Payload::MESSAGE_REFUSED`]; `None` for
    /// any other payload or a malformed one.
    pub fn as_message_refused(&self) -> Option<(IdentityId, MessageId, String)> {
        let (receiver, message_id, reason) = self.about_which_message(Self::MESSAGE_REFUSED)?;
        Some((receiver, message_id, utf8("refusal reason", reason).ok()?))
    }

    /// A Tocsin extension about one message: identity (8) ‖ message ID (8) ‖ `tail`.
    fn about_message(kind: u8, id: IdentityId, message_id: MessageId, tail: &[u8]) -> Self {
        let mut data = Vec::with_capacity(ACK_LEN + tail.len());
        data.extend_from_slice(id.as_bytes());
        data.extend_from_slice(message_id.as_bytes());
        data.extend_from_slice(tail);
        Self::Unknown { kind, data }
    }

    /// The identity, message ID and tail of an extension of type `kind` made by
    /// [`Payload::about_message`]; `None` for anything else.
    fn about_which_message(&self, kind: u8) -> Option<(IdentityId, MessageId, &[u8])> {
        let Self::Unknown { kind: k, data } = self else {
            return None;
        };
        if *k != kind {
            return None;
        }
        let (ack, tail) = data.split_at_checked(ACK_LEN)?;
        let (id, message_id) = decode_ack("message extension", "identity", ack).ok()?;
        Some((id, message_id, tail))
    }

    /// Every type byte with its own variant.
    pub const KNOWN_KINDS: [u8; 11] = [
        Self::ECHO_REQUEST,
        Self::OUTGOING_MESSAGE,
        Self::INCOMING_MESSAGE,
        Self::UNBLOCK_INCOMING,
        Self::SET_IDLE_TIMEOUT,
        Self::ECHO_RESPONSE,
        Self::SERVER_ACK,
        Self::CLIENT_ACK,
        Self::QUEUE_SEND_COMPLETE,
        Self::CLOSE_ERROR,
        Self::ALERT,
    ];

    /// The type byte this payload is sent with.
    pub fn kind(&self) -> u8 {
        match self {
            Self::EchoRequest(_) => Self::ECHO_REQUEST,
            Self::EchoResponse(_) => Self::ECHO_RESPONSE,
            Self::OutgoingMessage(_) => Self::OUTGOING_MESSAGE,
            Self::ServerAck { .. } => Self::SERVER_ACK,
            Self::IncomingMessage(_) => Self::INCOMING_MESSAGE,
            Self::ClientAck { .. } => Self::CLIENT_ACK,
            Self::UnblockIncoming => Self::UNBLOCK_INCOMING,
            Self::SetIdleTimeout(_) => Self::SET_IDLE_TIMEOUT,
            Self::QueueSendComplete => Self::QUEUE_SEND_COMPLETE,
            Self::CloseError { .. } => Self::CLOSE_ERROR,
            Self::Alert(_) => Self::ALERT,
            Self::Unknown { kind, .. } => *kind,
        }
    }

    /// The container bytes (header and data).
    ///
    /// Fails for an envelope that cannot be encoded and for an `Unknown` payload whose
    /// type byte is a known one (it would decode as a different variant).
    pub fn encode(&self) -> Result<Vec<u8>, PayloadError> {
        let mut out = vec![self.kind(), 0, 0, 0];
        match self {
            Self::EchoRequest(data) | Self::EchoResponse(data) => out.extend_from_slice(data),
            Self::OutgoingMessage(envelope) | Self::IncomingMessage(envelope) => {
                envelope.encode_into(&mut out)?;
            }
            Self::ServerAck {
                receiver: id,
                message_id,
            }
            | Self::ClientAck {
                sender: id,
                message_id,
            } => {
                out.extend_from_slice(id.as_bytes());
                out.extend_from_slice(message_id.as_bytes());
            }
            Self::UnblockIncoming | Self::QueueSendComplete => {}
            Self::SetIdleTimeout(seconds) => out.extend_from_slice(&seconds.to_le_bytes()),
            Self::CloseError {
                can_reconnect,
                reason,
            } => {
                out.push(u8::from(*can_reconnect));
                out.extend_from_slice(reason.as_bytes());
            }
            Self::Alert(text) => out.extend_from_slice(text.as_bytes()),
            Self::Unknown { kind, data } => {
                if Self::KNOWN_KINDS.contains(kind) {
                    return Err(PayloadError::KnownKind(*kind));
                }
                out.extend_from_slice(data);
            }
        }
        Ok(out)
    }

    /// Reads a container; never panics, whatever the bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, PayloadError> {
        let (kind, data) = match bytes {
            [kind, _, _, _, data @ ..] => (*kind, data),
            _ => {
                return Err(PayloadError::TooShort {
                    what: "payload container",
                    need: HEADER_LEN,
                    got: bytes.len(),
                })
            }
        };
        Ok(match kind {
            Self::ECHO_REQUEST => Self::EchoRequest(data.to_vec()),
            Self::ECHO_RESPONSE => Self::EchoResponse(data.to_vec()),
            Self::OUTGOING_MESSAGE => Self::OutgoingMessage(MessageEnvelope::decode(data)?),
            Self::INCOMING_MESSAGE => Self::IncomingMessage(MessageEnvelope::decode(data)?),
            Self::SERVER_ACK => {
                let (receiver, message_id) = decode_ack("server ack", "receiver", data)?;
                Self::ServerAck {
                    receiver,
                    message_id,
                }
            }
            Self::CLIENT_ACK => {
                let (sender, message_id) = decode_ack("client ack", "sender", data)?;
                Self::ClientAck { sender, message_id }
            }
            Self::UNBLOCK_INCOMING => {
                expect_len("unblock-incoming", data, 0)?;
                Self::UnblockIncoming
            }
            Self::QUEUE_SEND_COMPLETE => {
                expect_len("queue-send-complete", data, 0)?;
                Self::QueueSendComplete
            }
            Self::SET_IDLE_TIMEOUT => match data {
                [lo, hi] => Self::SetIdleTimeout(u16::from_le_bytes([*lo, *hi])),
                _ => return Err(length_error("set-idle-timeout", data, 2)),
            },
            Self::CLOSE_ERROR => match data {
                [flag, reason @ ..] => Self::CloseError {
                    can_reconnect: *flag != 0,
                    reason: utf8("close-error reason", reason)?,
                },
                [] => {
                    return Err(PayloadError::TooShort {
                        what: "close-error",
                        need: 1,
                        got: 0,
                    })
                }
            },
            Self::ALERT => Self::Alert(utf8("alert text", data)?),
            _ => Self::Unknown {
                kind,
                data: data.to_vec(),
            },
        })
    }
}

/// Reads `identity (8) ‖ message ID (8)`.
fn decode_ack(
    what: &'static str,
    field: &'static str,
    data: &[u8],
) -> Result<(IdentityId, MessageId), PayloadError> {
    expect_len(what, data, ACK_LEN)?;
    let (id, message_id) = data.split_at(IdentityId::LEN);
    let id = IdentityId::from_bytes(id).map_err(|reason| PayloadError::Identity {
        what: field,
        reason,
    })?;
    let message_id = message_id
        .try_into()
        .map_err(|_| length_error(what, data, ACK_LEN))?;
    Ok((id, MessageId::from_bytes(message_id)))
}

fn length_error(what: &'static str, data: &[u8], expected: usize) -> PayloadError {
    PayloadError::Length {
        what,
        expected,
        got: data.len(),
    }
}

fn expect_len(what: &'static str, data: &[u8], expected: usize) -> Result<(), PayloadError> {
    if data.len() == expected {
        Ok(())
    } else {
        Err(length_error(what, data, expected))
    }
}

fn utf8(what: &'static str, data: &[u8]) -> Result<String, PayloadError> {
    String::from_utf8(data.to_vec()).map_err(|_| PayloadError::Utf8(what))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_refusal_carries_receiver_id_and_reason_and_nothing_else_reads_as_one() {
        let (receiver, id) = (IdentityId::parse("*ALERTS1").unwrap(), MessageId::random());
        let refusal = Payload::message_refused(receiver, id, "no callback URL");
        let bytes = refusal.encode().unwrap();
        assert_eq!(bytes[0], Payload::MESSAGE_REFUSED);
        let decoded = Payload::decode(&bytes).unwrap();
        assert_eq!(
            decoded.as_message_refused(),
            Some((receiver, id, "no callback URL".to_owned()))
        );
        let ack = Payload::ServerAck {
            receiver,
            message_id: id,
        };
        assert_eq!(ack.as_message_refused(), None);
        let short = Payload::Unknown {
            kind: Payload::MESSAGE_REFUSED,
            data: vec![0; 5],
        };
        assert_eq!(short.as_message_refused(), None);
    }

    #[test]
    fn a_message_expiry_carries_sender_id_and_time() {
        let (sender, id) = (IdentityId::parse("*ALERTS1").unwrap(), MessageId::random());
        let expires = Payload::message_expires(sender, id, 1_800_000_000);
        let decoded = Payload::decode(&expires.encode().unwrap()).unwrap();
        assert_eq!(
            decoded.as_message_expires(),
            Some((sender, id, 1_800_000_000))
        );
        assert_eq!(decoded.as_message_refused(), None);
        let short = Payload::Unknown {
            kind: Payload::MESSAGE_EXPIRES,
            data: vec![0; 19],
        };
        assert_eq!(short.as_message_expires(), None);
    }
}
