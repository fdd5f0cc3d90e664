//! Threema identity IDs and gateway IDs.
//!
//! An identity ID is exactly eight ASCII characters. The first is `*` (gateway IDs) or one
//! of `0-9A-Z`; the other seven are `0-9A-Z`. Parsing neither trims nor changes case:
//! `echoecho` is refused, because the Gateway compares IDs byte for byte. Once built, an
//! [`IdentityId`] always holds eight bytes of that alphabet, which is why
//! [`IdentityId::as_str`] needs no fallible conversion at the call site.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::codec::deserialize_parsed;
use super::ParseError;
use crate::crypto::fill_random;

/// Characters an identity ID may use after its first position.
const ID_ALPHABET: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// Fills `out` with characters of [`ID_ALPHABET`], each uniform: random bytes of 252 or
/// more are thrown away, so that `byte % 36` has no bias (252 = 7 × 36).
fn fill_random_id_chars(out: &mut [u8]) {
    let mut filled = 0;
    let mut pool = [0u8; 32];
    while filled < out.len() {
        fill_random(&mut pool);
        for &b in pool.iter().filter(|&&b| b < 252) {
            if filled == out.len() {
                break;
            }
            out[filled] = ID_ALPHABET[usize::from(b % 36)];
            filled += 1;
        }
    }
}

/// A Threema identity ID such as `ECHOECHO` or a gateway ID such as `*TESTTST`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdentityId([u8; 8]);

impl IdentityId {
    /// Number of characters (and bytes) in every identity ID.
    pub const LEN: usize = 8;

    /// Parses the textual form. Exactly eight characters, no trimming, no case folding.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let chars = s.chars().count();
        if chars != Self::LEN {
            return Err(ParseError::IdentityLength(chars));
        }
        if let Some(position) = s.chars().position(|c| !c.is_ascii()) {
            return Err(ParseError::IdentityChar(position));
        }
        Self::from_bytes(s.as_bytes())
    }

    /// Builds an ID from eight raw bytes, applying the same rule as [`IdentityId::parse`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ParseError> {
        let array: [u8; 8] = bytes
            .try_into()
            .map_err(|_| ParseError::IdentityLength(bytes.len()))?;
        for (position, &b) in array.iter().enumerate() {
            let allowed =
                b.is_ascii_digit() || b.is_ascii_uppercase() || (position == 0 && b == b'*');
            if !allowed {
                return Err(ParseError::IdentityChar(position));
            }
        }
        Ok(Self(array))
    }

    /// The eight ASCII bytes of the ID.
    pub fn as_bytes(&self) -> &[u8; 8] {
        &self.0
    }

    /// The ID as text.
    pub fn as_str(&self) -> &str {
        // The constructor only admits ASCII, so this conversion cannot fail; the empty
        // fallback exists only to keep the function free of panics.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// A fresh random user ID: eight characters of `0-9A-Z`, as the directory assigns
    /// them.
    pub fn random_user() -> Self {
        let mut bytes = [0u8; 8];
        fill_random_id_chars(&mut bytes);
        Self(bytes)
    }

    /// Whether this is a gateway ID (starts with `*`).
    pub fn is_gateway(&self) -> bool {
        self.0[0] == b'*'
    }
}

impl fmt::Display for IdentityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for IdentityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdentityId({})", self.as_str())
    }
}

impl FromStr for IdentityId {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for IdentityId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for IdentityId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_parsed(deserializer)
    }
}

/// A gateway ID: an [`IdentityId`] whose first character is `*`.
///
/// Gateway accounts (the customers of the API) are addressed by these; a separate type
/// keeps an ordinary user ID from being used where an account is meant.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GatewayId(IdentityId);

impl GatewayId {
    /// A fresh random gateway ID: `*` followed by seven characters of `0-9A-Z`.
    pub fn random() -> Self {
        let mut bytes = [b'*'; 8];
        fill_random_id_chars(&mut bytes[1..]);
        Self(IdentityId(bytes))
    }

    /// Parses the textual form; the ID must be valid and start with `*`.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        Self::try_from(IdentityId::parse(s)?)
    }

    /// The underlying identity ID.
    pub fn as_identity(&self) -> &IdentityId {
        &self.0
    }

    /// The ID as text, including the leading `*`.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl TryFrom<IdentityId> for GatewayId {
    type Error = ParseError;

    fn try_from(id: IdentityId) -> Result<Self, Self::Error> {
        if id.is_gateway() {
            Ok(Self(id))
        } else {
            Err(ParseError::NotGateway)
        }
    }
}

impl From<GatewayId> for IdentityId {
    fn from(id: GatewayId) -> Self {
        id.0
    }
}

impl fmt::Display for GatewayId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for GatewayId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GatewayId({})", self.as_str())
    }
}

impl FromStr for GatewayId {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for GatewayId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for GatewayId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_parsed(deserializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multibyte_characters_are_counted_as_characters() {
        assert_eq!(
            IdentityId::parse("ÄBCDEFGH"),
            Err(ParseError::IdentityChar(0))
        );
        assert_eq!(
            IdentityId::parse("ÄÄÄÄ"),
            Err(ParseError::IdentityLength(4))
        );
    }

    #[test]
    fn random_ids_are_valid() {
        for _ in 0..50 {
            let user = IdentityId::random_user();
            assert!(!user.is_gateway());
            assert_eq!(IdentityId::parse(user.as_str()), Ok(user));
            let gateway = GatewayId::random();
            assert_eq!(GatewayId::parse(gateway.as_str()), Ok(gateway));
        }
    }

    #[test]
    fn raw_bytes_follow_the_same_rule() {
        assert!(IdentityId::from_bytes(b"*TESTTST").is_ok());
        assert_eq!(
            IdentityId::from_bytes(b"ECHO"),
            Err(ParseError::IdentityLength(4))
        );
        assert_eq!(
            IdentityId::from_bytes(b"ECHO\0CHO"),
            Err(ParseError::IdentityChar(4))
        );
    }
}
