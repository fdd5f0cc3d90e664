//! The Gateway wire contract, shared by the server and its clients.
//!
//! Every value that crosses the HTTP API or sits inside an end-to-end box has a type
//! here, and each type can only be built through a parser that checks it. Code past the
//! edge therefore never handles a raw `&str` ID, key or hash. The shared rules:
//!
//! * Binary values are hex on the wire: either case accepted, lowercase emitted, and
//!   exact lengths enforced (16 for message IDs, 32 for blob IDs, 48 for nonces, 64 for
//!   keys and hashes).
//! * Serde goes through the same parsers, so JSON input is checked like any other input.
//! * Secrets ([`SecretKey`], [`ApiSecret`]) are wiped on drop, redacted in `Debug`, and
//!   never echoed in errors.
//! * Parsers return [`ParseError`] (one-line messages) and never panic.
//!
//! | module | contents |
//! | --- | --- |
//! | `ids` | [`IdentityId`], [`GatewayId`] |
//! | `message_id`, `blob_id`, `nonce` | [`MessageId`], [`BlobId`], [`Nonce`] |
//! | `public_key`, `secret_key` | [`PublicKey`], [`SecretKey`], [`KeyPair`] |
//! | `secret` | [`ApiSecret`] |
//! | `invite` | [`InviteCode`], which admits one enrolment |
//! | `hash` | [`LookupHash`], phone and e-mail hashing |
//! | `callback` | the callback MAC |
//! | `status` | the status webhook: [`StatusEvent`], [`StatusSecret`], its signature |
//! | `alarm` | an alarm's [`Priority`], a recipient's [`Answer`], a ringing's [`StopReason`] |
//! | `capabilities` | [`Capabilities`] |
//! | `flags` | [`MessageFlags`] of the chat protocol's message header |
//! | [`e2e`] | the padded plaintext inside a box and the message types |
//! | [`csp`] | the chat server protocol: handshake, encrypted frames, payloads |

mod alarm;
mod blob_id;
mod callback;
mod capabilities;
pub(crate) mod codec;
pub mod csp;
pub mod e2e;
mod error;
mod flags;
mod hash;
mod ids;
mod invite;
mod message_id;
mod nonce;
mod public_key;
mod secret;
mod secret_key;
mod status;

pub use alarm::{Answer, Priority, StopReason};
pub use blob_id::BlobId;
pub use callback::{callback_mac, callback_mac_hex, verify_callback_mac, CallbackFields};
pub use capabilities::{Capabilities, KNOWN_CAPABILITIES};
pub use e2e::{
    decode_container, encode_container, encode_container_with_padding, E2eError, E2eMessage,
    FileMessage, Location, ReceiptStatus, MIN_PADDED_LEN, MSG_DELIVERY_RECEIPT, MSG_FILE,
    MSG_IMAGE, MSG_LOCATION, MSG_TEXT,
};
pub use error::ParseError;
pub use flags::MessageFlags;
pub use hash::{hash_email, hash_phone, normalize_email, normalize_phone, LookupHash};
pub use ids::{GatewayId, IdentityId};
pub use invite::InviteCode;
pub use message_id::MessageId;
pub use nonce::Nonce;
pub use public_key::PublicKey;
pub use secret::ApiSecret;
pub use secret_key::{KeyPair, SecretKey};
pub use status::{
    new_event_id, status_signature, verify_status_signature, AlarmAcknowledged, AlarmAnswered,
    AlarmEnded, AlarmEscalated, AlarmTriggered, MessageReport, SignatureError, StatusEvent,
    StatusKind, StatusSecret, STATUS_SIGNATURE_HEADER,
};
