//! API secrets: the shared password of a gateway account.
//!
//! A secret is 8 to 64 ASCII letters and digits. Alphanumerics only, because some older
//! clients splice the secret into a query string without percent-encoding it. Freshly
//! generated secrets have 16 characters, like Threema's (about 95 bits of entropy).
//!
//! The value is wiped on drop, prints as `ApiSecret(***)`, and compares in constant time
//! so that timing does not reveal how many leading characters of a guess were right.

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::ParseError;
use crate::crypto::fill_random;

/// The characters a generated secret is drawn from.
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The API secret of a gateway account.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ApiSecret(String);

impl ApiSecret {
    /// Shortest accepted secret.
    pub const MIN_LEN: usize = 8;
    /// Longest accepted secret.
    pub const MAX_LEN: usize = 64;
    /// Length of a secret made by [`ApiSecret::generate`].
    pub const GENERATED_LEN: usize = 16;

    /// A fresh 16-character secret from the operating system's random number generator.
    ///
    /// Each character is uniform over the 62 alphanumerics: random bytes of 248 or more
    /// are thrown away, so that `byte % 62` has no bias (248 = 4 × 62).
    pub fn generate() -> Self {
        let mut out = String::with_capacity(Self::GENERATED_LEN);
        let mut pool = [0u8; 32];
        while out.len() < Self::GENERATED_LEN {
            fill_random(&mut pool);
            for &b in pool.iter().filter(|&&b| b < 248) {
                if out.len() == Self::GENERATED_LEN {
                    break;
                }
                out.push(char::from(ALPHABET[usize::from(b % 62)]));
            }
        }
        pool.zeroize();
        Self(out)
    }

    /// Accepts 8 to 64 ASCII letters and digits. The error never repeats the input.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let len = s.chars().count();
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&len) {
            return Err(ParseError::ApiSecretLength(len));
        }
        if !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ParseError::ApiSecretChar);
        }
        Ok(Self(s.to_owned()))
    }

    /// The secret itself, for the places that must send or hash it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl PartialEq for ApiSecret {
    /// Constant time in the content; the lengths are not hidden.
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for ApiSecret {}

impl fmt::Debug for ApiSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiSecret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_inclusive() {
        assert!(ApiSecret::parse(&"a".repeat(8)).is_ok());
        assert!(ApiSecret::parse(&"a".repeat(64)).is_ok());
        assert_eq!(
            ApiSecret::parse("abc").unwrap_err(),
            ParseError::ApiSecretLength(3)
        );
        assert_eq!(
            ApiSecret::parse(&"a".repeat(65)).unwrap_err(),
            ParseError::ApiSecretLength(65)
        );
        assert_eq!(
            ApiSecret::parse("abcdefg!").unwrap_err(),
            ParseError::ApiSecretChar
        );
        assert_eq!(
            ApiSecret::parse("abcdéfgh").unwrap_err(),
            ParseError::ApiSecretChar
        );
    }

    #[test]
    fn equality_compares_content() {
        let a = ApiSecret::parse("abcdefgh").unwrap();
        assert_eq!(a, ApiSecret::parse("abcdefgh").unwrap());
        assert_ne!(a, ApiSecret::parse("abcdefgi").unwrap());
        assert_ne!(a, ApiSecret::parse("abcdefghi").unwrap());
    }

    #[test]
    fn generated_secrets_differ() {
        assert_ne!(ApiSecret::generate(), ApiSecret::generate());
    }
}
