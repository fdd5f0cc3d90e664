//! What a [`super::Connection`] reports: decrypted messages, messages it could not
//! open, and the milestones of the session.

use crate::protocol::csp::{AlarmRing, AlarmStop};
use crate::protocol::{E2eMessage, IdentityId, MessageFlags, MessageId, Nonce};

/// One thing that happened on the connection.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A message for this device, decrypted and decoded. Acknowledge it with
    /// [`super::Connection::ack`] once it is handled, or it comes again at the next
    /// login.
    Message(Box<Received>),
    /// A message that could not be opened or decoded. Acknowledge it with
    /// [`super::Connection::ack_rejected`] to drop it; leave it unacknowledged to get it
    /// again at the next login (worth it when [`Rejected::retryable`] is set).
    Rejected(Rejected),
    /// Every message queued before the login has been delivered; live messages follow.
    QueueComplete,
    /// Text from the server operator, to show to the user.
    Alert(String),
    /// An alarm rings: ring 0 comes right before the alarm's message, the others while
    /// it stays unanswered. Answer with [`super::Connection::answer_alarm`].
    AlarmRing(AlarmRing),
    /// An alarm stopped ringing for this identity: it answered (on this device or
    /// another), enough others are coming, or the alarm was resolved or expired.
    AlarmStop(AlarmStop),
    /// The connection is over; connect again (after a pause) if `can_reconnect`.
    Closed {
        /// `false` when the server asked not to reconnect: retrying would fail the same
        /// way.
        can_reconnect: bool,
        /// Why, as text for logs.
        reason: String,
    },
}

/// A message received and decrypted with its sender's public key.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// Who sent it (a user ID, or a gateway ID starting with `*`).
    pub sender: IdentityId,
    /// The sender's ID for the message; with `sender`, it identifies the message in
    /// acks, receipts and duplicate checks.
    pub message_id: MessageId,
    /// Unix seconds when it was created, as the sender (or the server) stated.
    pub created_at: u32,
    /// The delivery flags; [`MessageFlags::NO_RECEIPTS`] forbids automatic receipts.
    pub flags: MessageFlags,
    /// The sender's public nickname, if it sent one.
    pub nickname: Option<String>,
    /// The nonce the box was sealed with, for the nonce store.
    pub nonce: Nonce,
    /// The decrypted content.
    pub message: E2eMessage,
    /// Unix seconds after which the server no longer delivers it, when its sender set a
    /// TTL (a one-time password, say): past it, the content is stale.
    pub expires_at: Option<u32>,
}

impl Received {
    /// Whether the device should answer with an automatic "received" receipt: not when
    /// the sender forbade it ([`MessageFlags::NO_RECEIPTS`]) and not for a receipt.
    pub fn wants_receipt(&self) -> bool {
        !self.flags.has(MessageFlags::NO_RECEIPTS)
            && !matches!(self.message, E2eMessage::DeliveryReceipt { .. })
    }
}

/// A message for this device that could not be turned into a [`Received`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Who the header says sent it.
    pub sender: IdentityId,
    /// The sender's ID for the message.
    pub message_id: MessageId,
    /// The delivery flags from the header.
    pub flags: MessageFlags,
    /// Why it was refused, as one line.
    pub reason: String,
    /// Whether it may open later without the sender doing anything: the directory could
    /// not be reached for the sender's key. Otherwise it is corrupt, sealed with another
    /// key, from an ID nobody knows a key for, not for us, or of a type this SDK cannot
    /// read.
    pub retryable: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ReceiptStatus;

    fn received(flags: u8, message: E2eMessage) -> Received {
        Received {
            sender: IdentityId::parse("*ALERTS1").unwrap(),
            message_id: MessageId::random(),
            created_at: 0,
            flags: MessageFlags(flags),
            nickname: None,
            nonce: Nonce::random(),
            message,
            expires_at: None,
        }
    }

    #[test]
    fn receipts_are_never_sent_for_receipts_or_when_forbidden() {
        let text = || E2eMessage::Text("hi".into());
        assert!(received(MessageFlags::PUSH, text()).wants_receipt());
        assert!(!received(MessageFlags::NO_RECEIPTS, text()).wants_receipt());
        let receipt = E2eMessage::DeliveryReceipt {
            status: ReceiptStatus::Read,
            message_ids: vec![MessageId::random()],
        };
        assert!(!received(0, receipt).wants_receipt());
    }
}
