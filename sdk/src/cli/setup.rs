//! Where the CLI's credentials come from, and the clients built from them.
//!
//! A file given by flag wins over the environment variable. Secret text read from either
//! place is held in buffers that are wiped on drop, and error messages name the source
//! (variable or path) but never repeat what was read.

use std::path::{Path, PathBuf};
use std::time::Duration;

use zeroize::Zeroizing;

use super::Failure;
use crate::client::{Client, ClientBuilder, E2eClient, Error, PrivateCa};
use crate::protocol::{ApiSecret, GatewayId, SecretKey, StatusSecret};

/// The global options, after clap.
#[derive(Debug)]
pub(crate) struct Settings {
    pub base_url: String,
    pub from: Option<GatewayId>,
    pub secret_file: Option<PathBuf>,
    pub private_key_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub timeout: u64,
}

/// Reads a credential from `file` if given, else from the environment variable `var`;
/// returns the text and a description of where it came from, or `None` when neither is
/// given (an empty variable counts as not given).
fn read_optional_credential(
    file: Option<&Path>,
    var: &str,
) -> Result<Option<(Zeroizing<String>, String)>, Failure> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map(Zeroizing::new)
            .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
        return Ok(Some((text, path.display().to_string())));
    }
    match std::env::var(var).map(Zeroizing::new) {
        Ok(text) if !text.trim().is_empty() => Ok(Some((text, var.to_owned()))),
        _ => Ok(None),
    }
}

/// Like [`read_optional_credential`], failing with `missing` when neither is given.
fn read_credential(
    file: Option<&Path>,
    var: &str,
    missing: &str,
) -> Result<(Zeroizing<String>, String), Failure> {
    read_optional_credential(file, var)?.ok_or_else(|| Failure::usage(missing))
}

/// The first non-empty line of `text`, trimmed (a key file may hold more lines).
fn first_line(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default()
}

impl Settings {
    /// The API secret from `--secret-file` or `TOCSIN_SECRET`.
    pub(crate) fn secret(&self) -> Result<ApiSecret, Failure> {
        let (text, source) = read_credential(
            self.secret_file.as_deref(),
            "TOCSIN_SECRET",
            "no API secret: set TOCSIN_SECRET or pass --secret-file PATH",
        )?;
        ApiSecret::parse(text.trim()).map_err(|e| Failure::usage(format!("{source}: {e}")))
    }

    /// The gateway's private key from `--private-key-file` or `TOCSIN_PRIVATE_KEY`. In a
    /// file written by `keygen --out`, the first non-empty line is the key.
    pub(crate) fn private_key(&self) -> Result<SecretKey, Failure> {
        self.given_private_key()?.ok_or_else(|| {
            Failure::usage("no private key: set TOCSIN_PRIVATE_KEY or pass --private-key-file PATH")
        })
    }

    /// Like [`Settings::private_key`], with `None` when neither is given.
    pub(crate) fn given_private_key(&self) -> Result<Option<SecretKey>, Failure> {
        let file = self.private_key_file.as_deref();
        let Some((text, source)) = read_optional_credential(file, "TOCSIN_PRIVATE_KEY")? else {
            return Ok(None);
        };
        SecretKey::parse(first_line(&text))
            .map(Some)
            .map_err(|e| Failure::usage(format!("{source}: {e}")))
    }

    /// The gateway ID from `--from` or `TOCSIN_GATEWAY_ID`.
    pub(crate) fn gateway_id(&self) -> Result<GatewayId, Failure> {
        self.from.ok_or_else(|| {
            Failure::usage("no gateway ID: pass --from '*YOURID' or set TOCSIN_GATEWAY_ID")
        })
    }

    /// The private CA from `--ca-file` or `TOCSIN_CA_FILE`, if one is given.
    pub(crate) fn private_ca(&self) -> Result<Option<PrivateCa>, Failure> {
        self.ca_file
            .as_deref()
            .map(|path| {
                PrivateCa::from_pem_file(path).map_err(|e| match e {
                    Error::Invalid(reason) => {
                        Failure::usage(format!("--ca-file or TOCSIN_CA_FILE: {reason}"))
                    }
                    other => Failure::from(other),
                })
            })
            .transpose()
    }

    /// A client for the configured gateway ID and server.
    pub(crate) fn client(&self) -> Result<Client, Failure> {
        let from = self.gateway_id()?;
        let mut builder = ClientBuilder::new(from, self.secret()?)
            .base_url(self.base_url.as_str())
            .timeout(Duration::from_secs(self.timeout.max(1)));
        if let Some(ca) = self.private_ca()? {
            builder = builder.private_ca(ca);
        }
        builder.build().map_err(|e| match e {
            Error::Invalid(reason) => {
                Failure::usage(format!("--base-url or TOCSIN_BASE_URL: {reason}"))
            }
            other => Failure::from(other),
        })
    }

    /// A client that can also seal and open end-to-end messages.
    pub(crate) fn e2e_client(&self) -> Result<E2eClient, Failure> {
        let client = self.client()?;
        Ok(E2eClient::new(client, self.private_key()?))
    }
}

/// The status webhook's signing secret from `file` (`callback serve
/// --status-secret-file`) or `TOCSIN_STATUS_SECRET`, if either is given. In a file, the
/// first non-empty line is the secret.
pub(crate) fn status_secret(file: Option<&Path>) -> Result<Option<StatusSecret>, Failure> {
    let Some((text, source)) = read_optional_credential(file, "TOCSIN_STATUS_SECRET")? else {
        return Ok(None);
    };
    StatusSecret::parse(first_line(&text))
        .map(Some)
        .map_err(|e| Failure::usage(format!("{source}: {e}")))
}
