//! HTTPS and WSS: a server started with a certificate that a private CA, made in the
//! test, issued for `localhost` and 127.0.0.1. The SDK's client and devices, and
//! `tocsin-cli`, reach it only when they trust that CA; plain HTTP gets no answer from
//! the API there; and `tocsin serve` refuses plain HTTP off loopback.

mod binary;
mod cli;
mod clients;

use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tocsin_sdk::client::{Client, ClientBuilder, PrivateCa};
use tocsin_sdk::protocol::ApiSecret;

use crate::helpers::{spawn_app_with, TestApp, TestGateway};

/// A private CA and a server certificate it issued, written to files.
pub struct Pki {
    dir: tempfile::TempDir,
    /// The CA's certificate (PEM): what clients are given to trust.
    pub ca_file: PathBuf,
    /// The server's chain (its certificate, then the CA's) and its private key (PEM).
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl Pki {
    /// A new CA, and a certificate from it for `localhost` and 127.0.0.1.
    pub fn new() -> Self {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Tocsin test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let server_key = KeyPair::generate().unwrap();
        let server_params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        let server = server_params.signed_by(&server_key, &ca).unwrap();

        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let ca_file = write("ca.pem", &ca.pem());
        let cert_file = write("chain.pem", &format!("{}{}", server.pem(), ca.pem()));
        let key_file = write("key.pem", &server_key.serialize_pem());
        Self {
            dir,
            ca_file,
            cert_file,
            key_file,
        }
    }

    /// The CA as the SDK takes it.
    pub fn ca(&self) -> PrivateCa {
        PrivateCa::from_pem_file(&self.ca_file).unwrap()
    }

    /// A file in this PKI's directory, for what a test writes besides.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// A server that serves HTTPS with `pki`'s certificate.
pub async fn spawn_tls_app(pki: &Pki) -> TestApp {
    spawn_tls_app_with(pki, &[]).await
}

/// Like [`spawn_tls_app`], with extra `TOCSIN__…` settings.
pub async fn spawn_tls_app_with(pki: &Pki, extra: &[(&str, &str)]) -> TestApp {
    let mut settings = vec![
        (
            "TOCSIN__SERVER__TLS_CERT_FILE",
            pki.cert_file.display().to_string(),
        ),
        (
            "TOCSIN__SERVER__TLS_KEY_FILE",
            pki.key_file.display().to_string(),
        ),
    ];
    settings.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    spawn_app_with(&settings).await
}

/// The server's base URL over HTTPS, by IP address.
pub fn https_url(app: &TestApp) -> String {
    format!("https://127.0.0.1:{}/", app.http.port())
}

/// A gateway API client acting as `gw` over HTTPS, trusting `ca` if given.
pub fn https_client(app: &TestApp, gw: &TestGateway, ca: Option<PrivateCa>) -> Client {
    let mut builder =
        ClientBuilder::new(gw.id, ApiSecret::parse(&gw.secret).unwrap()).base_url(https_url(app));
    if let Some(ca) = ca {
        builder = builder.private_ca(ca);
    }
    builder.build().unwrap()
}
