//! The device's view of the directory: the server's chat key, identity creation, and the
//! public keys of the IDs it talks to.
//!
//! Keys come from three places, in this order:
//!
//! 1. keys pinned locally ([`Directory::pin`], e.g. from the contacts file): never
//!    replaced by anything the server says;
//! 2. keys fetched earlier in this process (a cache shared by every clone);
//! 3. `GET /api/v1/identities/{id}`, which needs no credentials and serves user IDs and
//!    gateway IDs (`*…`) alike.
//!
//! A fetched key is trusted as the server states it, over the same TLS channel as
//! everything else; pin the keys that matter (e.g. a gateway ID's key as its operator
//! published it) so that not even the server can swap them.
//!
//! The directory also carries the device's TLS trust: the platform's root certificates,
//! plus those of a private CA given to [`Directory::with_private_ca`]. Everything that
//! takes the directory uses the same trust: its own requests, file downloads, and the
//! chat WebSocket that [`super::Connection::connect`] opens (`wss://` for an `https`
//! server). The CA is a local choice made at run time, not part of the keys file.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use reqwest::RequestBuilder;
use serde::{Deserialize, Serialize};
use url::Url;

use super::DeviceError;
use crate::client::{
    error_for_status, parse_base_url, read_capped, transport_error, Error, PrivateCa,
};
use crate::protocol::{IdentityId, InviteCode, PublicKey};

/// Largest directory answer read.
const ANSWER_LIMIT: usize = 64 * 1024;

/// Time allowed for one directory request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody<'a> {
    public_key: &'a PublicKey,
    #[serde(skip_serializing_if = "Option::is_none")]
    invite: Option<&'a str>,
}

/// What admits a device to a server's directory.
#[derive(Debug, Clone, Copy, Default)]
pub enum Admission<'a> {
    /// Nothing: for a server with open enrolment (`directory.open_enrollment`).
    #[default]
    Open,
    /// A one-time invite code from the server's operator.
    Invite(&'a InviteCode),
    /// The server's enrollment token, for provisioning systems; sent as a bearer token.
    Token(&'a str),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdentityView {
    identity: IdentityId,
    public_key: PublicKey,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServerView {
    public_key: PublicKey,
}

/// The directory of one server, with locally pinned keys and a cache.
///
/// Cheap to clone: clones share the HTTP connection pool and the cache.
#[derive(Debug, Clone)]
pub struct Directory {
    pub(super) http: reqwest::Client,
    /// The WebSocket's TLS configuration when a private CA is trusted; `None`: the
    /// WebSocket library's own (the platform's root certificates).
    pub(super) websocket_tls: Option<Arc<rustls::ClientConfig>>,
    base: Url,
    pinned: HashMap<IdentityId, PublicKey>,
    cache: Arc<Mutex<HashMap<IdentityId, PublicKey>>>,
}

impl Directory {
    /// A directory client for the server at `base_url` (`http` or `https`; a path
    /// prefix is kept).
    ///
    /// # Errors
    ///
    /// [`DeviceError::Http`] with [`Error::Invalid`] for an unusable URL, or
    /// [`Error::Transport`] if the TLS stack cannot be set up.
    pub fn new(base_url: &str) -> Result<Self, DeviceError> {
        Self::build(base_url, None)
    }

    /// Like [`Directory::new`], trusting the certificates of `ca` besides the platform's
    /// root certificates, for the directory's requests and for every connection made
    /// with this directory (the chat WebSocket, file downloads).
    ///
    /// # Errors
    ///
    /// As [`Directory::new`].
    pub fn with_private_ca(base_url: &str, ca: &PrivateCa) -> Result<Self, DeviceError> {
        Self::build(base_url, Some(ca))
    }

    fn build(base_url: &str, ca: Option<&PrivateCa>) -> Result<Self, DeviceError> {
        let base = parse_base_url(base_url)?;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tocsin-sdk/", env!("CARGO_PKG_VERSION")));
        let mut websocket_tls = None;
        if let Some(ca) = ca {
            http = http.tls_certs_merge(ca.reqwest_certificates()?);
            websocket_tls = Some(ca.client_config()?);
        }
        let http = http.build().map_err(transport_error)?;
        Ok(Self {
            http,
            websocket_tls,
            base,
            pinned: HashMap::new(),
            cache: Arc::default(),
        })
    }

    /// The server's base URL, normalised.
    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    /// Pins `key` for `id`: used instead of anything the server says.
    pub fn pin(&mut self, id: IdentityId, key: PublicKey) {
        self.pinned.insert(id, key);
    }

    /// Whether a key is pinned for `id`.
    pub fn is_pinned(&self, id: &IdentityId) -> bool {
        self.pinned.contains_key(id)
    }

    /// `GET /api/v1/server`: the chat server's public key, as the server states it.
    ///
    /// # Errors
    ///
    /// [`DeviceError::Http`] for transport trouble, error statuses and malformed answers.
    pub async fn server_key(&self) -> Result<PublicKey, DeviceError> {
        let request = self.http.get(self.endpoint(&["api", "v1", "server"]));
        let view: ServerView = self.json(request).await?;
        Ok(view.public_key)
    }

    /// `POST /api/v1/identities`: registers `public_key` and returns the new ID,
    /// spending the invite code or presenting the token of `admission`.
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] when the server's enrolment is closed and the invite code is
    /// missing, unknown, spent or expired; [`Error::Unauthorized`] for a wrong enrollment
    /// token; [`Error::RateLimited`] after too many creations from this address; and the
    /// other [`DeviceError::Http`] cases.
    pub async fn create_identity(
        &self,
        public_key: &PublicKey,
        admission: Admission<'_>,
    ) -> Result<IdentityId, DeviceError> {
        let invite = match admission {
            Admission::Invite(code) => Some(code.canonical()),
            _ => None,
        };
        let mut request = self
            .http
            .post(self.endpoint(&["api", "v1", "identities"]))
            .json(&CreateBody { public_key, invite });
        if let Admission::Token(token) = admission {
            request = request.bearer_auth(token.trim());
        }
        let view: IdentityView = self.json(request).await?;
        if view.public_key != *public_key {
            return Err(Error::Decode("the new identity holds another public key".into()).into());
        }
        Ok(view.identity)
    }

    /// `GET /api/v1/identities/{id}`: the current key of a live identity or of a gateway
    /// ID, `None` when the server does not know it (unknown or revoked).
    ///
    /// # Errors
    ///
    /// [`DeviceError::Http`] for transport trouble, other error statuses, and an answer
    /// about another ID.
    pub async fn lookup(&self, id: &IdentityId) -> Result<Option<PublicKey>, DeviceError> {
        let request = self
            .http
            .get(self.endpoint(&["api", "v1", "identities", id.as_str()]));
        match self.json::<IdentityView>(request).await {
            Ok(view) if view.identity == *id => Ok(Some(view.public_key)),
            Ok(_) => Err(Error::Decode(format!("asked for {id}, got another identity")).into()),
            Err(DeviceError::Http(Error::NotFound)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The key to use for `id`: pinned, cached, or fetched (and then cached).
    ///
    /// # Errors
    ///
    /// [`DeviceError::UnknownKey`] when nobody knows a key for `id`; otherwise as
    /// [`Directory::lookup`].
    pub async fn public_key(&self, id: &IdentityId) -> Result<PublicKey, DeviceError> {
        if let Some(key) = self.pinned.get(id) {
            return Ok(*key);
        }
        if let Some(key) = self.cached(id) {
            return Ok(key);
        }
        let key = self.lookup(id).await?.ok_or(DeviceError::UnknownKey(*id))?;
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(*id, key);
        Ok(key)
    }

    /// Drops the cached key of `id` (after it failed to open a box), so the next
    /// [`Directory::public_key`] asks the server again. Returns whether one was cached.
    pub fn forget(&self, id: &IdentityId) -> bool {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id)
            .is_some()
    }

    fn cached(&self, id: &IdentityId) -> Option<PublicKey> {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .copied()
    }

    pub(super) fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// Sends the request and parses a success answer as JSON.
    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        request: RequestBuilder,
    ) -> Result<T, DeviceError> {
        let response = request.send().await.map_err(transport_error)?;
        let status = response.status();
        let body = read_capped(response, ANSWER_LIMIT).await;
        if !status.is_success() {
            let text = body.map(|b| String::from_utf8_lossy(&b).into_owned());
            return Err(error_for_status(status.as_u16(), &text.unwrap_or_default(), None).into());
        }
        serde_json::from_slice(&body?)
            .map_err(|e| Error::Decode(format!("JSON answer: {e}")).into())
    }
}
