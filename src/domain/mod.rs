//! Server-only vocabulary. Wire types (IDs, keys, nonces) come from `tocsin_sdk::protocol`
//! and are never redefined here.

use std::fmt;

mod credits;
mod message_ids;
mod status;
mod time;

pub use credits::{Credits, LedgerReason};
pub use message_ids::MessageIds;
pub use status::MessageStatus;
pub use time::UnixMs;

/// The handle an operator gives an account: 1–64 characters of `a-z`, `0-9`, `.`, `_`, `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccountName(String);

impl AccountName {
    pub const MAX_LEN: usize = 64;

    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.len() > Self::MAX_LEN {
            return Err(format!(
                "account name must be 1 to {} characters, got {}",
                Self::MAX_LEN,
                s.len()
            ));
        }
        if let Some(bad) = s.chars().find(|c| {
            !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
        }) {
            return Err(format!(
                "account name may hold only a-z, 0-9, '.', '_' and '-'; {bad:?} is not allowed"
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::AccountName;

    #[test]
    fn account_names_are_checked() {
        assert!(AccountName::parse("acme-bank.ch_1").is_ok());
        assert!(AccountName::parse("").is_err());
        assert!(AccountName::parse("Acme").unwrap_err().contains("'A'"));
        assert!(AccountName::parse(&"a".repeat(65)).is_err());
        assert!(AccountName::parse(&"a".repeat(64)).is_ok());
    }
}
