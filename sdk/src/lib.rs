//! Wire vocabulary and NaCl cryptography for Tocsin, a self-hosted gateway whose HTTP API
//! is compatible with the Threema Gateway API.
//!
//! The server and every client share this crate, so both sides parse and print each
//! wire value in exactly one way.
//!
//! # How data flows
//!
//! ```text
//!  sender                                   gateway                        recipient
//!  E2eMessage ─to_padded─▶ container ─seal─▶ (nonce, box) ──HTTP──▶ store ──▶ open ─▶ from_padded
//!                           (type‖body‖pad)   SharedKey                         SharedKey
//!  file bytes ─encrypt_file_blob─▶ blob ──upload──▶ BlobId ──in FileMessage──▶ download ─▶ decrypt
//!  callback fields ─callback_mac─▶ mac ───────POST──────▶ customer: CallbackReceiver (MAC first)
//! ```
//!
//! # Layout
//!
//! * [`protocol`]: the typed wire values (IDs, keys, nonces, hashes, secrets,
//!   capabilities), the callback MAC, lookup hashing, and the E2E plaintext format.
//! * [`crypto`]: `crypto_box` and `crypto_secretbox` compatible with libsodium, plus the
//!   fixed-nonce blob encryption of file messages.
//! * `client` (cargo feature `client`, on by default): an async HTTP client of the
//!   gateway API, and `E2eClient` for sealing, sending and opening end-to-end messages;
//!   `PrivateCa` for a server whose certificate a private CA issued.
//! * `device` (cargo feature `device`): a device of the chat network: enrolment, the
//!   WebSocket session with the chat server, a listener that reconnects, and file
//!   downloads.
//! * [`files`]: opening the blobs of a received file message with its size checks, and
//!   saving the file under a safe name.
//! * `receive` (cargo feature `receive`, on by default): the customer's side of the
//!   callback and of the status webhook: MAC or signature first, then addressee,
//!   duplicates and freshness.
//! * `cli` (cargo feature `cli`): the `tocsin-cli` command line, kept in the library so
//!   that its binary is a one-line `main`.
//!
//! # Invariants
//!
//! * A value of a wire type has passed its parser; nothing past the edge re-validates.
//! * Parsing untrusted input returns an error and never panics.
//! * Secret material is wiped on drop and never appears in `Debug` output or errors.
//!
//! # Example
//!
//! ```
//! use tocsin_sdk::crypto::SharedKey;
//! use tocsin_sdk::protocol::{E2eMessage, KeyPair, Nonce};
//!
//! let (alice, bob) = (KeyPair::generate(), KeyPair::generate());
//! let nonce = Nonce::random();
//!
//! let sealed = SharedKey::new(&alice.secret, &bob.public)?
//!     .seal(&nonce, &E2eMessage::Text("Server down".into()).to_padded());
//!
//! let plain = SharedKey::new(&bob.secret, &alice.public)?.open(&nonce, &sealed)?;
//! assert_eq!(E2eMessage::from_padded(&plain)?, E2eMessage::Text("Server down".into()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "client")]
pub mod client;
pub mod crypto;
#[cfg(feature = "device")]
pub mod device;
pub mod files;
pub mod protocol;
#[cfg(feature = "receive")]
pub mod receive;
pub mod time;
