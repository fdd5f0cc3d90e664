//! HTTPS for the API listener: the rustls server configuration built from
//! `server.tls_cert_file` and `server.tls_key_file`, and the refusal to serve plain HTTP
//! off loopback ([`crate::config::ServerSettings::check_plain_http`]).
//!
//! Both are checked before anything else at start, so a server that would listen
//! unprotected, or with a certificate it cannot use, stops with one line naming the key
//! and what to fix, before it opens its store. The files are read once, at start.
//!
//! The configuration uses rustls' ring provider (as every TLS client of the process does)
//! with TLS 1.3 and 1.2. ALPN is left to actix-web, which offers `http/1.1` only: the
//! server speaks HTTP/1.1, and `/chat` upgrades such a connection to WSS.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

use crate::config::{ConfigError, ServerSettings};

/// The TLS configuration of the API listener: `None` for plain HTTP (on loopback, or
/// with `server.allow_plain_http`).
///
/// # Errors
///
/// [`ConfigError::Invalid`] naming the key: plain HTTP off loopback without
/// `allow_plain_http`, an unreadable file, a file without the expected PEM section, or a
/// key that does not belong to the certificate.
pub fn server_config(settings: &ServerSettings) -> Result<Option<ServerConfig>, ConfigError> {
    settings.check_plain_http()?;
    if !settings.tls_enabled() {
        return Ok(None);
    }
    let chain = read_chain(Path::new(&settings.tls_cert_file))?;
    let key = read_key(Path::new(&settings.tls_key_file))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("server.tls_cert_file", format!("TLS setup failed: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            invalid(
                "server.tls_key_file",
                format!(
                    "{} cannot serve the certificate in {}: {e}; give the private key that \
                     belongs to the first certificate of the chain",
                    settings.tls_key_file, settings.tls_cert_file
                ),
            )
        })?;
    Ok(Some(config))
}

/// Every certificate of the PEM chain at `path`, in file order.
fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    const KEY: &str = "server.tls_cert_file";
    let bytes = read(KEY, path)?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(KEY, format!("{}: {}", path.display(), pem_problem(&e))))?;
    if chain.is_empty() {
        return Err(invalid(
            KEY,
            format!(
                "{} holds no PEM certificate; give the certificate chain \
                 (-----BEGIN CERTIFICATE-----, the server's own first)",
                path.display()
            ),
        ));
    }
    Ok(chain)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) of the PEM file at `path`.
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, ConfigError> {
    const KEY: &str = "server.tls_key_file";
    let bytes = read(KEY, path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        let problem = match e {
            pem::Error::NoItemsFound => "holds no PEM private key; give the certificate's \
                 key (-----BEGIN PRIVATE KEY-----, or RSA / EC PRIVATE KEY), unencrypted"
                .to_owned(),
            other => pem_problem(&other),
        };
        invalid(KEY, format!("{} {problem}", path.display()))
    })
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|e| invalid(key, format!("cannot read {}: {e}", path.display())))
}

/// A PEM parse failure, said plainly.
fn pem_problem(e: &pem::Error) -> String {
    format!("is not valid PEM ({e}); give a PEM file as written by openssl or certbot")
}

fn invalid(key: &'static str, reason: String) -> ConfigError {
    ConfigError::Invalid { key, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default settings with these files (on loopback).
    fn settings(cert: &Path, key: &Path) -> ServerSettings {
        let vars = [
            ("TOCSIN__SERVER__TLS_CERT_FILE", cert),
            ("TOCSIN__SERVER__TLS_KEY_FILE", key),
        ]
        .map(|(name, path)| (name.to_owned(), path.display().to_string()));
        crate::config::Settings::load_from(&vars.into_iter().collect())
            .unwrap()
            .server
    }

    #[test]
    fn unusable_files_are_named_with_what_to_fix() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let broken = dir.path().join("broken.pem");
        std::fs::write(
            &broken,
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        for (cert, key, named, says) in [
            (&missing, &junk, "server.tls_cert_file", "cannot read"),
            (&junk, &junk, "server.tls_cert_file", "no PEM certificate"),
            (&broken, &junk, "server.tls_cert_file", "not valid PEM"),
        ] {
            let err = server_config(&settings(cert, key)).unwrap_err().to_string();
            assert!(err.contains(named) && err.contains(says), "{err}");
            assert!(err.contains(&cert.display().to_string()), "{err}");
            assert_eq!(err.lines().count(), 1, "{err}");
        }
    }

    #[test]
    fn a_certificate_needs_its_own_key() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let other = rcgen::KeyPair::generate().unwrap();
        let cert = write("chain.pem", &made.cert.pem());
        let key = write("key.pem", &made.signing_key.serialize_pem());
        let wrong = write("wrong.pem", &other.serialize_pem());
        let no_key = write("no-key.pem", &made.cert.pem());

        assert!(server_config(&settings(&cert, &key)).unwrap().is_some());
        let err = server_config(&settings(&cert, &wrong))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("server.tls_key_file") && err.contains("belongs to"),
            "{err}"
        );
        let err = server_config(&settings(&cert, &no_key))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("server.tls_key_file") && err.contains("no PEM private key"),
            "{err}"
        );
    }
}
