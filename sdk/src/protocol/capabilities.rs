//! Capability lists: what a recipient's app can receive.
//!
//! On the wire a list is comma-separated tokens without spaces, e.g.
//! `text,image,group,audio,video,file`. Parsing tolerates spaces around tokens, refuses
//! empty tokens, collapses duplicates and keeps the first-seen order. Tokens the SDK does
//! not know are kept as long as they look like tokens (`[a-z0-9_]+`), since clients are
//! expected to ignore what they do not understand. An empty (or all-blank) string is the
//! empty list, so every list survives a trip through `Display` and `parse`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::codec::deserialize_parsed;
use super::ParseError;

/// The capability tokens defined by the Gateway contract.
pub const KNOWN_CAPABILITIES: [&str; 11] = [
    "text",
    "image",
    "group",
    "audio",
    "video",
    "file",
    "ballot",
    "call",
    "videocall",
    "pfs",
    "groupcall",
];

/// An ordered set of capability tokens.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Capabilities(Vec<String>);

impl Capabilities {
    /// What a Tocsin recipient device supports by default.
    pub fn default_for_device() -> Self {
        Self(
            ["text", "image", "group", "audio", "video", "file"]
                .map(str::to_owned)
                .to_vec(),
        )
    }

    /// Parses a comma-separated list (see the module documentation for the rules).
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let mut caps = Self::default();
        if s.trim().is_empty() {
            return Ok(caps);
        }
        for (position, token) in s.split(',').enumerate() {
            let token = token.trim();
            if token.is_empty() {
                return Err(ParseError::EmptyCapability(position));
            }
            if !is_token(token) {
                return Err(ParseError::InvalidCapability(position));
            }
            caps.push_unique(token);
        }
        Ok(caps)
    }

    /// Adds a token at the end unless it is already present.
    pub fn insert(&mut self, token: &str) -> Result<(), ParseError> {
        if !is_token(token) {
            return Err(ParseError::InvalidCapability(self.0.len()));
        }
        self.push_unique(token);
        Ok(())
    }

    /// Whether the list holds `token`.
    pub fn contains(&self, token: &str) -> bool {
        self.0.iter().any(|t| t == token)
    }

    /// The tokens, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn push_unique(&mut self, token: &str) {
        if !self.contains(token) {
            self.0.push(token.to_owned());
        }
    }
}

/// Whether `token` is non-empty and uses only `a-z`, `0-9` and `_`.
fn is_token(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl fmt::Display for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(","))
    }
}

impl FromStr for Capabilities {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Capabilities {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Capabilities {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_parsed(deserializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing_tolerates_spaces_and_collapses_duplicates() {
        let caps = Capabilities::parse(" text , image,text,future_thing2 ").unwrap();
        assert_eq!(caps.to_string(), "text,image,future_thing2");
        assert!(caps.contains("future_thing2"));
        assert!(!caps.contains("file"));
    }

    #[test]
    fn empty_and_malformed_tokens_are_refused() {
        assert_eq!(
            Capabilities::parse("text,,image"),
            Err(ParseError::EmptyCapability(1))
        );
        assert_eq!(
            Capabilities::parse("text,"),
            Err(ParseError::EmptyCapability(1))
        );
        assert_eq!(
            Capabilities::parse("Text"),
            Err(ParseError::InvalidCapability(0))
        );
        assert_eq!(
            Capabilities::parse("a b"),
            Err(ParseError::InvalidCapability(0))
        );
    }

    #[test]
    fn empty_string_is_the_empty_list_and_round_trips() {
        assert_eq!(Capabilities::parse(""), Ok(Capabilities::default()));
        let device = Capabilities::default_for_device();
        assert_eq!(device.to_string(), "text,image,group,audio,video,file");
        assert_eq!(Capabilities::parse(&device.to_string()), Ok(device));
        assert!(KNOWN_CAPABILITIES.iter().all(|t| is_token(t)));
    }
}
