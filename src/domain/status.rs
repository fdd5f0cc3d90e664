//! What became of a message, as its sender sees it.

use std::fmt;

/// A status event of a message. The text is what the store keeps and the status API
/// names; it never changes for an existing status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageStatus {
    /// Accepted and waiting for the recipient's devices.
    Queued,
    /// A device of the recipient has it.
    Delivered,
    /// The recipient read it (a receipt the server could see).
    Read,
    Acknowledged,
    Declined,
    /// Its time to live ran out before every device had it.
    Expired,
}

impl MessageStatus {
    /// Every status, in the order a message goes through them.
    pub const ALL: [Self; 6] = [
        Self::Queued,
        Self::Delivered,
        Self::Read,
        Self::Acknowledged,
        Self::Declined,
        Self::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Acknowledged => "acknowledged",
            Self::Declined => "declined",
            Self::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }
}

impl fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::MessageStatus;

    #[test]
    fn every_status_reads_back_from_its_text() {
        for status in MessageStatus::ALL {
            assert_eq!(MessageStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(MessageStatus::parse("lost"), None);
    }
}
