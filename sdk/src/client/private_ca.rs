//! [`PrivateCa`]: the certificates of a private certificate authority, trusted besides
//! the platform's root certificates.
//!
//! A server whose certificate comes from a private CA (an internal PKI, a test setup) is
//! reached over HTTPS and WSS once its CA is given here. The CA is the caller's local
//! choice: it is passed at run time to each client ([`super::ClientBuilder::private_ca`],
//! and on the device side `Directory::with_private_ca`, whose connections use it too),
//! never stored with keys or credentials.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::CertificateDer;

use super::Error;

/// Root certificates to trust besides the platform's, read from PEM.
///
/// Cheap to clone. Every certificate was checked to be usable as a trust anchor when the
/// value was made.
///
/// ```no_run
/// # fn demo() -> Result<(), tocsin_sdk::client::Error> {
/// use tocsin_sdk::client::{ClientBuilder, PrivateCa};
/// use tocsin_sdk::protocol::{ApiSecret, GatewayId};
///
/// let ca = PrivateCa::from_pem_file("/etc/tocsin/ca.pem")?;
/// let client = ClientBuilder::new(GatewayId::parse("*TESTTST")?, ApiSecret::parse("abcdefgh1234")?)
///     .base_url("https://alerts.internal:8443")
///     .private_ca(ca)
///     .build()?;
/// # let _ = client; Ok(()) }
/// ```
#[derive(Clone)]
pub struct PrivateCa {
    certs: Arc<[CertificateDer<'static>]>,
}

impl fmt::Debug for PrivateCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateCa")
            .field("certificates", &self.certs.len())
            .finish()
    }
}

impl PrivateCa {
    /// Every certificate (`-----BEGIN CERTIFICATE-----`) in `pem`; other sections are
    /// skipped.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for text that is not PEM, holds no certificate, or holds one
    /// that cannot serve as a root certificate.
    pub fn from_pem(pem: &[u8]) -> Result<Self, Error> {
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::Invalid(pem_problem(&e)))?;
        if certs.is_empty() {
            return Err(Error::Invalid(
                "no PEM certificate (-----BEGIN CERTIFICATE-----) found".to_owned(),
            ));
        }
        let mut store = rustls::RootCertStore::empty();
        for (n, cert) in certs.iter().enumerate() {
            store.add(cert.clone()).map_err(|e| {
                Error::Invalid(format!(
                    "certificate {} cannot serve as a root certificate: {e}",
                    n + 1
                ))
            })?;
        }
        Ok(Self {
            certs: certs.into(),
        })
    }

    /// Like [`PrivateCa::from_pem`], reading the file at `path`.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] naming the path, for a file that cannot be read and as
    /// [`PrivateCa::from_pem`].
    pub fn from_pem_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .map_err(|e| Error::Invalid(format!("cannot read {}: {e}", path.display())))?;
        Self::from_pem(&bytes).map_err(|e| match e {
            Error::Invalid(reason) => Error::Invalid(format!("{}: {reason}", path.display())),
            other => other,
        })
    }

    /// The certificates, in file order.
    pub fn certificates(&self) -> &[CertificateDer<'static>] {
        &self.certs
    }

    /// The certificates for reqwest's builder.
    pub(crate) fn reqwest_certificates(&self) -> Result<Vec<reqwest::Certificate>, Error> {
        self.certs
            .iter()
            .map(|cert| {
                reqwest::Certificate::from_der(cert)
                    .map_err(|e| Error::Invalid(format!("a CA certificate: {e}")))
            })
            .collect()
    }

    /// A rustls client configuration that trusts the platform's root certificates and
    /// these (for the WebSocket, which reqwest does not carry): the same roots reqwest's
    /// platform verifier uses on Linux, plus the private CA.
    #[cfg(feature = "device")]
    pub(crate) fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, Error> {
        let mut roots = rustls::RootCertStore::empty();
        // Unreadable platform certificates are skipped, as the platform verifier does;
        // the private CA alone is enough to reach a server it issued for.
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        roots.add_parsable_certificates(self.certs.iter().cloned());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Transport(format!("TLS setup failed: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }
}

/// A PEM parse failure, said plainly.
fn pem_problem(e: &pem::Error) -> String {
    format!("not valid PEM ({e}); give the CA certificate as PEM")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_without_a_usable_certificate_is_refused() {
        for (pem, says) in [
            (&b""[..], "no PEM certificate"),
            (b"hello\n", "no PEM certificate"),
            (
                b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
                "not valid PEM",
            ),
            (
                b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                "certificate 1 cannot serve",
            ),
        ] {
            match PrivateCa::from_pem(pem) {
                Err(Error::Invalid(reason)) => assert!(reason.contains(says), "{reason}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_missing_file_is_named() {
        let err = PrivateCa::from_pem_file("/nonexistent/ca.pem").unwrap_err();
        assert!(
            err.to_string().contains("cannot read /nonexistent/ca.pem"),
            "{err}"
        );
    }
}
