//! Message header flags of the chat server protocol (one byte in every message header).

/// The flag byte carried with every queued and delivered message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct MessageFlags(pub u8);

impl MessageFlags {
    /// Send a push notification (user-visible content; not for receipts).
    pub const PUSH: u8 = 0x01;
    /// Do not queue: drop when the receiver is offline.
    pub const NO_QUEUE: u8 = 0x02;
    /// No server ack and no client ack.
    pub const NO_ACK: u8 = 0x04;
    /// Reserved; formerly the group marker, still set by some Gateway clients.
    pub const GROUP: u8 = 0x10;
    /// Keep queued for 60 seconds only.
    pub const SHORT_LIVED: u8 = 0x20;
    /// The receiver must not send automatic delivery receipts.
    pub const NO_RECEIPTS: u8 = 0x80;

    /// Whether every bit of `flag` is set.
    pub fn has(self, flag: u8) -> bool {
        self.0 & flag == flag
    }

    /// These flags with `flag` set.
    #[must_use]
    pub fn with(self, flag: u8) -> Self {
        Self(self.0 | flag)
    }
}

#[cfg(test)]
mod tests {
    use super::MessageFlags;

    #[test]
    fn flags_combine_and_test() {
        let f = MessageFlags::default()
            .with(MessageFlags::PUSH)
            .with(MessageFlags::NO_RECEIPTS);
        assert_eq!(f.0, 0x81);
        assert!(f.has(MessageFlags::PUSH) && f.has(MessageFlags::NO_RECEIPTS));
        assert!(!f.has(MessageFlags::NO_QUEUE));
    }
}
