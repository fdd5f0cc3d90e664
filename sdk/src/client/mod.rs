//! An async HTTP client for the gateway API (the Threema Gateway wire contract).
//!
//! [`ClientBuilder`] makes a [`Client`] for one gateway ID; its methods map one to one onto
//! the endpoints and take and return the typed values of [`crate::protocol`], never raw
//! strings. [`E2eClient`] adds the end-to-end steps on top: key lookup, padding, sealing,
//! blob encryption, and opening what arrives.
//!
//! | file | endpoints |
//! | --- | --- |
//! | `send` | `send_simple`, `send_e2e`, `send_e2e_bulk` |
//! | `alarms` | `api/v1/alarms…`: trigger, status, list, resolve |
//! | `lookup` | `lookup/{phone,email}[_hash]/…`, `lookup/bulk` |
//! | `directory` | `pubkeys/…`, `pubkeys/bulk`, `capabilities/…`, `credits` |
//! | `blobs` | `upload_blob`, `blobs/…` |
//! | `e2e` | the [`E2eClient`] helpers |
//! | `files` | [`E2eClient::fetch_file`]: the file of a received file message |
//! | `private_ca` | [`PrivateCa`]: a private CA's certificates, for servers it issued for |
//!
//! # Invariants
//!
//! * Credentials travel as the SDKs send them: `from`/`secret` in the form body of form
//!   POSTs, in the query string of every other request.
//! * Every non-success status becomes an [`Error`] through [`error_for_status`], the
//!   mirror of the server's status table; nothing in an `Error` contains the secret.
//! * Server answers are parsed with the wire parsers, and answers of unexpected shape or
//!   size become [`Error::Decode`]; nothing here panics on server data.
//! * Redirects are never followed.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), tocsin_sdk::client::Error> {
//! use tocsin_sdk::client::{ClientBuilder, E2eClient};
//! use tocsin_sdk::protocol::{ApiSecret, GatewayId, IdentityId, SecretKey};
//!
//! let client = ClientBuilder::new(GatewayId::parse("*TESTTST")?, ApiSecret::parse("abcdefgh1234")?)
//!     .base_url("http://127.0.0.1:8080")
//!     .build()?;
//! let e2e = E2eClient::new(client, SecretKey::parse(&std::env::var("KEY").unwrap_or_default())?);
//! let id = e2e.send_text(&IdentityId::parse("ECHOECHO")?, "Disk full on db-1").await?;
//! println!("sent as {id}");
//! # Ok(()) }
//! ```

mod alarms;
mod blobs;
mod builder;
mod directory;
mod e2e;
mod error;
mod files;
mod lookup;
mod private_ca;
mod send;
mod transport;

pub use alarms::{
    AlarmBox, AlarmRequest, AlarmState, AlarmStatus, AlarmSummary, AlarmTier, RecipientStatus,
    TierStatus, TriggeredAlarm,
};
pub use builder::ClientBuilder;
pub use e2e::E2eClient;
pub use error::{error_for_status, Error};
pub use lookup::LookupMatch;
pub use private_ca::PrivateCa;
pub use send::{E2eSend, Recipient};

// The device client shares these with the gateway client.
#[cfg(feature = "device")]
pub(crate) use builder::parse_base_url;
#[cfg(feature = "device")]
pub(crate) use error::transport as transport_error;
#[cfg(feature = "device")]
pub(crate) use transport::read_capped;

use url::Url;

use crate::protocol::{ApiSecret, GatewayId};

/// A connection to one gateway server, acting as one gateway ID.
///
/// Cheap to clone: clones share the connection pool.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    /// Normalised by the builder: http(s), a host, no query, no trailing slash.
    base: Url,
    gateway_id: GatewayId,
    secret: ApiSecret,
    max_download_bytes: usize,
}

impl Client {
    /// Shorthand for [`ClientBuilder::new`].
    pub fn builder(gateway_id: GatewayId, secret: ApiSecret) -> ClientBuilder {
        ClientBuilder::new(gateway_id, secret)
    }

    /// The gateway ID this client sends as.
    pub fn gateway_id(&self) -> &GatewayId {
        &self.gateway_id
    }

    /// The server's base URL, normalised.
    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }
}
