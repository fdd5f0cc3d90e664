//! Credits and why they move.

use std::fmt;

/// A number of credits: what an operation costs or an account holds. Never negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Credits(u32);

impl Credits {
    pub const ZERO: Self = Self(0);

    pub const fn new(n: u32) -> Self {
        Self(n)
    }

    pub const fn get(self) -> u32 {
        self.0
    }

    /// As the store keeps amounts (BIGINT).
    pub fn as_i64(self) -> i64 {
        i64::from(self.0)
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `self` taken `count` times, saturating at the largest amount.
    pub fn times(self, count: usize) -> Self {
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        Self(self.0.saturating_mul(count))
    }
}

impl fmt::Display for Credits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Why credits left an account: each paid operation has its own. The text is what the
/// ledger keeps and `/metrics` labels; it never changes for an existing reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LedgerReason {
    SendSimple,
    SendE2e,
    UploadBlob,
    IdLookup,
    PubkeyLookup,
    CapabilitiesLookup,
    BulkIdLookup,
    BulkPubkeyLookup,
    /// A delivery of an alarm to one recipient (its rings are free).
    Alarm,
}

impl LedgerReason {
    pub const ALL: [Self; 9] = [
        Self::SendSimple,
        Self::SendE2e,
        Self::UploadBlob,
        Self::IdLookup,
        Self::PubkeyLookup,
        Self::CapabilitiesLookup,
        Self::BulkIdLookup,
        Self::BulkPubkeyLookup,
        Self::Alarm,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SendSimple => "send_simple",
            Self::SendE2e => "send_e2e",
            Self::UploadBlob => "upload_blob",
            Self::IdLookup => "id lookup",
            Self::PubkeyLookup => "pubkey lookup",
            Self::CapabilitiesLookup => "capabilities lookup",
            Self::BulkIdLookup => "bulk id lookup",
            Self::BulkPubkeyLookup => "bulk pubkey lookup",
            Self::Alarm => "alarm",
        }
    }
}

impl fmt::Display for LedgerReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_own_text() {
        let texts: std::collections::HashSet<&str> =
            LedgerReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(texts.len(), LedgerReason::ALL.len());
    }

    #[test]
    fn credits_multiply_without_overflow() {
        assert_eq!(Credits::new(3).times(4), Credits::new(12));
        assert_eq!(Credits::new(2).times(usize::MAX), Credits::new(u32::MAX));
        assert!(Credits::new(5).times(0).is_zero());
    }
}
