//! The one error type shared by every wire-string parser in [`crate::protocol`].
//!
//! Messages are a single human-readable line that names the field and says what was
//! expected. They never repeat secret input (API secrets, private keys), so they are safe
//! to log or return in an HTTP body.

/// Why a wire value (ID, hex string, key, secret, capability list) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// An identity ID did not have exactly eight characters.
    #[error(
        "identity ID must be 8 characters of 0-9 and A-Z (gateway IDs start with '*'), got {0}"
    )]
    IdentityLength(usize),

    /// An identity ID had eight characters, but one was outside the allowed alphabet.
    #[error(
        "identity ID must be 8 characters of 0-9 and A-Z (gateway IDs start with '*'), \
         bad character at position {0}"
    )]
    IdentityChar(usize),

    /// A valid identity ID was given where a gateway ID (leading `*`) is required.
    #[error("gateway ID must start with '*'")]
    NotGateway,

    /// A hex field had the wrong number of characters.
    #[error("{what} must be {expected} hex characters, got {got}")]
    HexLength {
        /// Which field was being parsed.
        what: &'static str,
        /// Required number of hex characters.
        expected: usize,
        /// Number of characters received.
        got: usize,
    },

    /// A hex field had the right length but contained a non-hex character.
    #[error("{what} must contain only the hex characters 0-9, a-f and A-F")]
    InvalidHex {
        /// Which field was being parsed.
        what: &'static str,
    },

    /// A binary field had the wrong number of bytes.
    #[error("{what} must be {expected} bytes, got {got}")]
    ByteLength {
        /// Which field was being parsed.
        what: &'static str,
        /// Required number of bytes.
        expected: usize,
        /// Number of bytes received.
        got: usize,
    },

    /// A public key was all zero or a point of small order, so a key exchange with it
    /// would not depend on our secret key.
    #[error("public key is all zero or of small order and cannot be used")]
    WeakPublicKey,

    /// An API secret had a length outside 8..=64 characters.
    #[error("API secret must be 8 to 64 ASCII letters or digits, got {0} characters")]
    ApiSecretLength(usize),

    /// An API secret contained something other than ASCII letters and digits.
    #[error("API secret must contain only ASCII letters and digits")]
    ApiSecretChar,

    /// An invite code did not have 20 characters of its alphabet (dashes and spaces
    /// aside).
    #[error("invite code must be 20 letters and digits, as in ABCD-EFGH-JKMN-PQRS-TVWX")]
    InviteCode,

    /// A status webhook signing secret was not `tss_` and 64 hex characters.
    #[error("status signing secret must be tss_ followed by 64 hex characters")]
    StatusSecret,

    /// A word of a closed set (an alarm's priority, answer or stop reason) was none of
    /// its names.
    #[error("{what} must be one of {allowed}")]
    NotOneOf {
        /// Which word was being parsed.
        what: &'static str,
        /// The names it may take, as a list for the message.
        allowed: &'static str,
    },

    /// A capability list contained an empty token (for example `text,,image`).
    #[error("capability list contains an empty token at position {0}")]
    EmptyCapability(usize),

    /// A capability token contained characters outside `a-z`, `0-9` and `_`.
    #[error("capability token at position {0} must use only a-z, 0-9 and '_'")]
    InvalidCapability(usize),
}
