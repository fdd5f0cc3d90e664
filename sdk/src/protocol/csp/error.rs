//! The three error types of the chat server protocol, one per layer.
//!
//! [`HandshakeError`] covers the four messages before login, [`FrameError`] the
//! encrypted frames after it, and [`PayloadError`] the plaintext inside a frame. Every
//! message is one line, names what was wrong, and never repeats key material, so each
//! can be logged as it is. Any of them means the connection must be closed: none leaves
//! a peer in a state worth continuing.

use crate::crypto::CryptoError;
use crate::protocol::ParseError;

/// Why a handshake step was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// A handshake message did not have the length its step requires.
    #[error("{step} must be {expected} bytes, got {got}")]
    Length {
        /// Which handshake message was being read.
        step: &'static str,
        /// Required number of bytes.
        expected: usize,
        /// Number of bytes received.
        got: usize,
    },

    /// An ephemeral public key was all zero or of small order.
    #[error("{0} is not a usable public key")]
    WeakKey(&'static str),

    /// A box did not open: tampered, truncated, or sealed with another key or nonce.
    #[error("{0} does not open: it is corrupt or was sealed for someone else")]
    Decrypt(&'static str),

    /// The peer echoed a connection cookie other than the one we sent.
    #[error("{0} echoes the wrong connection cookie")]
    CookieMismatch(&'static str),

    /// The server chose the same cookie as the client, which would let nonces collide.
    #[error("server cookie equals client cookie")]
    SameCookies,

    /// The identity field of the login data is not a valid identity ID.
    #[error("login names an invalid identity: {0}")]
    Identity(ParseError),

    /// The login extensions are malformed (bad length, duplicate or invalid value).
    #[error("login extensions are malformed: {0}")]
    BadExtension(&'static str),

    /// Our own extensions do not fit the 16-bit length of the extensions box.
    #[error("login extensions of {0} bytes exceed the 65535-byte box limit")]
    ExtensionsTooLong(usize),

    /// The vouch does not match the client key registered for the identity.
    #[error("vouch does not match the registered client key")]
    BadVouch,

    /// A key exchange with a long-term key failed (the key is of small order).
    #[error("key exchange failed: {0}")]
    Crypto(CryptoError),

    /// A step was called before the one it follows, or after the handshake failed.
    #[error("handshake step {0} called out of order")]
    OutOfOrder(&'static str),
}

/// Why an encrypted frame could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The box would be, or claims to be, larger than the protocol's frame limit.
    #[error("frame box of {0} bytes exceeds the 8192-byte limit")]
    TooLarge(usize),

    /// The frame is shorter than its length prefix, or longer.
    #[error("frame declares a {declared}-byte box but carries {got} bytes")]
    LengthMismatch {
        /// The box length in the frame's prefix.
        declared: usize,
        /// The number of bytes that followed the prefix.
        got: usize,
    },

    /// The frame is too short to hold its 2-byte length prefix.
    #[error("frame of {0} bytes has no complete length prefix")]
    Truncated(usize),

    /// The box did not open: tampered, replayed, reordered, or from the other direction.
    #[error("frame does not open: corrupt, replayed, or sealed for the other direction")]
    Decrypt,

    /// This direction has used every sequence number; a nonce would repeat.
    #[error("sequence counter exhausted; the connection must be renewed")]
    CounterExhausted,

    /// The frame opened, but its plaintext is not a valid payload (or ours cannot be
    /// encoded).
    #[error("frame payload is invalid: {0}")]
    Payload(#[from] PayloadError),
}

/// Why a payload container or a message envelope was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// Fewer bytes than the fixed part of a structure needs.
    #[error("{what} needs at least {need} bytes, got {got}")]
    TooShort {
        /// Which structure was being read.
        what: &'static str,
        /// Minimum number of bytes.
        need: usize,
        /// Number of bytes received.
        got: usize,
    },

    /// A fixed-size payload had the wrong length.
    #[error("{what} must be {expected} bytes, got {got}")]
    Length {
        /// Which payload was being read.
        what: &'static str,
        /// Required number of bytes.
        expected: usize,
        /// Number of bytes received.
        got: usize,
    },

    /// An identity field is not a valid identity ID.
    #[error("{what} is not a valid identity: {reason}")]
    Identity {
        /// Which field held it.
        what: &'static str,
        /// What was wrong with it.
        reason: ParseError,
    },

    /// A text field is not valid UTF-8.
    #[error("{0} is not valid UTF-8")]
    Utf8(&'static str),

    /// The message carries a metadata box, which this version does not support.
    #[error("message metadata ({0} bytes) is not supported; only the legacy layout is")]
    MetadataUnsupported(u16),

    /// A nickname longer than its 32-byte field, or containing a NUL byte.
    #[error("nickname must be at most 32 bytes of UTF-8 without NUL, got {0} bytes")]
    Nickname(usize),

    /// An `Unknown` payload was given a type byte this crate knows, so it would decode
    /// as something else.
    #[error("payload type 0x{0:02x} is known and must use its own variant")]
    KnownKind(u8),
}
