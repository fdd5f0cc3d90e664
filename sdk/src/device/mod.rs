//! The device side of the chat network: enrol with a server, log in over WebSocket,
//! receive and send end-to-end encrypted messages (cargo feature `device`).
//!
//! | item | job |
//! | --- | --- |
//! | [`DeviceKeys`] | enrolment and the keys file: identity, secret key, pinned server key |
//! | [`Directory`] | the server's open directory, with locally pinned keys and a cache; the TLS trust (a private CA) of every connection made with it |
//! | [`Contacts`] | the pinned keys file (keys the device does not take from the server) |
//! | [`Connection`] | one logged-in session: [`Event`]s in, messages, receipts and acks out |
//! | [`SeenStore`] | the handled messages and nonces, to drop what comes twice |
//! | [`Listener`] | connect, handle, receipt, ack, reconnect with backoff, until stopped |
//! | [`Connection::fetch_file`] | a file message's file: download, decrypt, check; then [`Connection::file_done`] |
//!
//! The files live side by side: the keys file (e.g. `device.json`), and next to it
//! `device.contacts.json` and `device.seen` ([`companion_path`]), all mode 0600.
//!
//! # Invariants
//!
//! * The device's secret key is made on the device and never leaves it; it is wiped
//!   on drop and absent from `Debug` output and errors.
//! * Every login checks that the server holds the key pinned at enrolment.
//! * A message is acked only after it was handled (or deliberately dropped), so a lost
//!   connection never loses a message; what comes twice is recognised and not shown
//!   twice, but acked.
//! * No automatic receipt is sent for a message flagged `NO_RECEIPTS` or for a receipt.
//! * Nothing here panics on what the server sends; every refusal is a [`DeviceError`]
//!   or a [`Rejected`] event.
//!
//! # Usage
//!
//! ```no_run
//! # async fn demo() -> Result<(), tocsin_sdk::device::DeviceError> {
//! use std::path::Path;
//! use tocsin_sdk::device::{companion_path, Admission, DeviceKeys, Listener, Notice, SeenStore};
//! use tocsin_sdk::protocol::InviteCode;
//!
//! let path = Path::new("device.json");
//! // Once: enrol with the operator's invite code (pinning the chat key the server states
//! // now) and keep the keys.
//! let invite = InviteCode::parse("7KQ2-MX9D-0A1B-C2D3-E4F5").expect("a well-formed code");
//! let keys = DeviceKeys::init("https://alerts.example.org", Admission::Invite(&invite), None)
//!     .await?;
//! keys.save(path)?;
//!
//! // Then: listen until Ctrl-C, printing each message once.
//! let keys = DeviceKeys::load(path)?;
//! let seen = SeenStore::open(&companion_path(path, "seen"), SeenStore::DEFAULT_CAPACITY)?;
//! let mut listener = Listener::new(keys.clone(), keys.directory()?, seen);
//! let stop = async {
//!     let _ = tokio::signal::ctrl_c().await;
//! };
//! listener
//!     .run(
//!         |notice| {
//!             if let Notice::Message(m) = notice {
//!                 println!("{} {}: {:?}", m.message_id, m.sender, m.message);
//!             }
//!         },
//!         stop,
//!     )
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! A single connection, for sending or for full control over acks:
//!
//! ```no_run
//! # async fn demo(keys: tocsin_sdk::device::DeviceKeys) -> Result<(), tocsin_sdk::device::DeviceError> {
//! use tocsin_sdk::device::{Connection, Event};
//! use tocsin_sdk::protocol::{IdentityId, ReceiptStatus};
//!
//! let mut connection = Connection::connect(&keys, &keys.directory()?).await?;
//! let id = connection.send_text(&IdentityId::parse("BOB45678")?, "Disk full on db-1").await?;
//! while let Event::Message(m) = connection.next_event().await? {
//!     connection.send_receipt(&m.sender, ReceiptStatus::Read, &[m.message_id]).await?;
//!     connection.ack(&m).await?;
//! }
//! # let _ = id; Ok(()) }
//! ```

mod backoff;
mod blobs;
mod connection;
mod contacts;
mod directory;
mod error;
mod event;
mod files;
mod keys;
mod listen;
mod login;
mod messaging;
mod notice;
mod seen;

pub use connection::Connection;
pub use contacts::Contacts;
pub use directory::{Admission, Directory};
pub use error::DeviceError;
pub use event::{Event, Received, Rejected};
pub use files::companion_path;
pub use keys::DeviceKeys;
pub use listen::{ListenEnd, Listener};
pub use notice::{FileUnavailable, Handled, ListenOptions, Notice};
pub use seen::SeenStore;
