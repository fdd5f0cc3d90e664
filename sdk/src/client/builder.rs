//! [`ClientBuilder`]: credentials, base URL and limits, checked once in
//! [`ClientBuilder::build`].
//!
//! The built client never follows redirects: a redirect would replay a request whose
//! query or body carries the API secret to a host the caller did not choose.

use std::time::Duration;

use url::Url;

use super::error::transport;
use super::{Client, Error, PrivateCa};
use crate::protocol::{ApiSecret, GatewayId};

/// Builds a [`Client`] for one gateway ID.
///
/// ```no_run
/// # async fn demo() -> Result<(), tocsin_sdk::client::Error> {
/// use std::time::Duration;
/// use tocsin_sdk::client::ClientBuilder;
/// use tocsin_sdk::protocol::{ApiSecret, GatewayId};
///
/// let client = ClientBuilder::new(GatewayId::parse("*TESTTST")?, ApiSecret::parse("abcdefgh1234")?)
///     .base_url("https://gateway.example.org/")
///     .timeout(Duration::from_secs(10))
///     .build()?;
/// println!("{} credits left", client.credits().await?);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    gateway_id: GatewayId,
    secret: ApiSecret,
    base_url: String,
    timeout: Duration,
    max_download_bytes: usize,
    private_ca: Option<PrivateCa>,
}

impl ClientBuilder {
    /// Where a Tocsin server listens when started without configuration.
    pub const DEFAULT_BASE_URL: &'static str = "http://127.0.0.1:8080";

    /// Time allowed for one whole request, unless [`ClientBuilder::timeout`] says
    /// otherwise. Generous, because a 20 MiB upload must fit in it.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

    /// Largest blob [`Client::download_blob`] accepts unless told otherwise: the server's
    /// default limit is 20 MiB, so 64 MiB leaves room for a server configured higher.
    pub const DEFAULT_MAX_DOWNLOAD_BYTES: usize = 64 * 1024 * 1024;

    /// Starts a builder for `gateway_id`, authenticating with `secret`, aimed at
    /// [`ClientBuilder::DEFAULT_BASE_URL`].
    pub fn new(gateway_id: GatewayId, secret: ApiSecret) -> Self {
        Self {
            gateway_id,
            secret,
            base_url: Self::DEFAULT_BASE_URL.to_owned(),
            timeout: Self::DEFAULT_TIMEOUT,
            max_download_bytes: Self::DEFAULT_MAX_DOWNLOAD_BYTES,
            private_ca: None,
        }
    }

    /// The server's base URL, `http` or `https`, with or without a trailing slash. A path
    /// prefix is kept; a query string or fragment is dropped.
    #[must_use]
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// Time allowed for one whole request, from connecting to reading the last byte.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Largest blob [`Client::download_blob`] reads before giving up with
    /// [`Error::Decode`], so a misbehaving server cannot exhaust memory.
    #[must_use]
    pub fn max_download_bytes(mut self, bytes: usize) -> Self {
        self.max_download_bytes = bytes;
        self
    }

    /// Trusts the certificates of `ca` as root certificates for `https` base URLs, besides
    /// the platform's: for a server whose certificate a private CA issued.
    #[must_use]
    pub fn private_ca(mut self, ca: PrivateCa) -> Self {
        self.private_ca = Some(ca);
        self
    }

    /// Checks the base URL and builds the client.
    ///
    /// Installs rustls' ring provider as the process default if no provider is installed
    /// yet (an existing one is left alone).
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for a base URL that is not an absolute `http`/`https` URL with a
    /// host; [`Error::Transport`] if the TLS stack cannot be set up.
    pub fn build(self) -> Result<Client, Error> {
        let base = parse_base_url(&self.base_url)?;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut http = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tocsin-sdk/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &self.private_ca {
            http = http.tls_certs_merge(ca.reqwest_certificates()?);
        }
        let http = http.build().map_err(transport)?;
        Ok(Client {
            http,
            base,
            gateway_id: self.gateway_id,
            secret: self.secret,
            max_download_bytes: self.max_download_bytes,
        })
    }
}

/// Parses and normalises a base URL: `http`/`https` with a host, no query, no fragment,
/// and a path that ends without a slash.
pub(crate) fn parse_base_url(raw: &str) -> Result<Url, Error> {
    let mut url = Url::parse(raw.trim())
        .map_err(|e| Error::Invalid(format!("base URL is not a valid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::Invalid(
            "base URL must start with http:// or https://".to_owned(),
        ));
    }
    if url.host().is_none() {
        return Err(Error::Invalid("base URL must name a host".to_owned()));
    }
    url.set_query(None);
    url.set_fragment(None);
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty();
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_normalised() {
        for (raw, expected) in [
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080/"),
            ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/"),
            ("https://gw.example/api/", "https://gw.example/api"),
            (" https://gw.example/api?x=1#f ", "https://gw.example/api"),
        ] {
            assert_eq!(parse_base_url(raw).unwrap().as_str(), expected, "{raw}");
        }
    }

    #[test]
    fn unusable_base_urls_are_refused() {
        for raw in [
            "",
            "127.0.0.1:8080",
            "ftp://host/",
            "file:///tmp",
            "http://",
        ] {
            assert!(
                matches!(parse_base_url(raw), Err(Error::Invalid(_))),
                "{raw}"
            );
        }
    }
}
