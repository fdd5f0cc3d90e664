//! The plaintext inside an end-to-end box.
//!
//! Before sealing, every message becomes `type (1 byte) || body || padding`
//! ([`encode_container`], [`decode_container`]); the padding hides the exact length of short messages. The body's
//! layout depends on the type byte ([`E2eMessage`]). Everything here runs on data that
//! came out of a box sent by a stranger, so every decoder returns an [`E2eError`] on bad
//! input and never panics.

mod container;
mod file;
mod location;
mod message;

pub use container::{
    decode_container, encode_container, encode_container_with_padding, MIN_PADDED_LEN,
};
pub use file::FileMessage;
pub use location::Location;
pub use message::{E2eMessage, ReceiptStatus};

/// Type byte of a text message.
pub const MSG_TEXT: u8 = 0x01;
/// Type byte of an image message (deprecated in favour of file messages).
pub const MSG_IMAGE: u8 = 0x02;
/// Type byte of a location message.
pub const MSG_LOCATION: u8 = 0x10;
/// Type byte of a file message.
pub const MSG_FILE: u8 = 0x17;
/// Type byte of a delivery receipt.
pub const MSG_DELIVERY_RECEIPT: u8 = 0x80;

/// Why an E2E container or message body was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum E2eError {
    /// The container has no bytes at all.
    #[error("E2E container is empty")]
    Empty,

    /// The padding length is zero (when decoding: the last byte is 0).
    #[error("E2E padding length must be 1 to 255, got 0")]
    ZeroPadding,

    /// The padding length leaves no room for the type byte.
    #[error("E2E padding of {padding} bytes does not fit in a {len}-byte container")]
    PaddingTooLong {
        /// Padding length claimed by the last byte.
        padding: u8,
        /// Total container length.
        len: usize,
    },

    /// The type byte is not one this SDK can decode.
    #[error("unknown E2E message type 0x{0:02x}")]
    UnknownType(u8),

    /// A text message with an empty body.
    #[error("text message body is empty")]
    EmptyText,

    /// A body that should be UTF-8 is not.
    #[error("{0} body is not valid UTF-8")]
    InvalidUtf8(&'static str),

    /// A fixed-size body has the wrong length.
    #[error("{what} body must be {expected} bytes, got {got}")]
    BodyLength {
        /// Which message type.
        what: &'static str,
        /// Required length.
        expected: usize,
        /// Received length.
        got: usize,
    },

    /// A delivery receipt whose length is not 1 + 8·n with n ≥ 1.
    #[error("delivery receipt body must be 1 + 8n bytes with n >= 1, got {0}")]
    ReceiptLength(usize),

    /// A delivery receipt with an unknown status byte.
    #[error("unknown delivery receipt status 0x{0:02x}")]
    ReceiptStatus(u8),

    /// A location body that does not follow `lat,lon[,accuracy]` or is out of range.
    #[error("invalid location: {0}")]
    Location(&'static str),

    /// A file message body that is not the expected JSON object.
    #[error("invalid file message JSON: {0}")]
    FileJson(#[from] serde_json::Error),
}
