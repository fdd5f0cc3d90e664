//! [`DeviceKeys`]: who the device is and which server it trusts, and the file that keeps
//! them.
//!
//! The file is JSON, created with mode 0600 and never overwritten:
//!
//! ```json
//! {
//!   "version": 1,
//!   "identity": "ABCD1234",
//!   "publicKey": "…64 hex…",
//!   "secretKey": "…64 hex…",
//!   "serverPublicKey": "…64 hex…",
//!   "serverUrl": "https://alerts.example.org/",
//!   "cspDeviceId": "…16 hex…"
//! }
//! ```
//!
//! Loading refuses a file other users can access, a secret key that does not match the
//! public key next to it, and any unknown field, so a damaged file is noticed before
//! the device logs in with it.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use super::files::{check_private, create_private};
use super::{Admission, DeviceError, Directory};
use crate::client::{parse_base_url, PrivateCa};
use crate::protocol::csp::CspDeviceId;
use crate::protocol::{IdentityId, PublicKey, SecretKey};

/// The only file layout so far.
const FILE_VERSION: u32 = 1;

/// The keys file as it is stored.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct KeysFile {
    version: u32,
    identity: IdentityId,
    public_key: PublicKey,
    secret_key: String,
    server_public_key: PublicKey,
    server_url: String,
    csp_device_id: String,
}

impl Drop for KeysFile {
    fn drop(&mut self) {
        self.secret_key.zeroize();
    }
}

/// The identity of one device and the server it is enrolled with.
#[derive(Clone)]
pub struct DeviceKeys {
    /// The device's identity ID, assigned by the server.
    pub identity: IdentityId,
    /// The device's permanent secret key; made on the device and never sent anywhere.
    pub secret_key: SecretKey,
    /// The chat server's key, pinned at enrolment; every login checks it.
    pub server_key: PublicKey,
    /// The server's base URL (`http` or `https`), normalised.
    pub server_url: String,
    /// This device's ID within its identity, drawn at enrolment.
    pub device_id: CspDeviceId,
}

impl fmt::Debug for DeviceKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceKeys")
            .field("identity", &self.identity)
            .field("server_key", &self.server_key)
            .field("server_url", &self.server_url)
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

impl DeviceKeys {
    /// Enrols a new device with the server at `base_url`: draws a key pair and a device
    /// ID, pins the server's chat key, and registers the public key, which gives the
    /// device its identity ID.
    ///
    /// With `server_key` given, the server must publish exactly that key (compare it
    /// with what the operator published). Without it, the key the server states now is
    /// pinned and trusted from then on (trust on first use): a later server, or anyone
    /// in between, must prove it holds the matching secret at every login.
    ///
    /// Nothing is written; call [`DeviceKeys::save`].
    ///
    /// # Errors
    ///
    /// [`DeviceError::ServerKeyMismatch`] before anything is registered;
    /// [`DeviceError::Http`] for directory failures, e.g. a missing or spent invite code
    /// (403), a wrong enrollment token (401) or too many enrolments from this address
    /// (429).
    pub async fn init(
        base_url: &str,
        admission: Admission<'_>,
        server_key: Option<PublicKey>,
    ) -> Result<Self, DeviceError> {
        Self::enrol(&Directory::new(base_url)?, admission, server_key).await
    }

    /// Like [`DeviceKeys::init`], with the server's directory given: e.g. one made with
    /// [`Directory::with_private_ca`] for a server whose certificate a private CA issued.
    ///
    /// # Errors
    ///
    /// As [`DeviceKeys::init`].
    pub async fn enrol(
        directory: &Directory,
        admission: Admission<'_>,
        server_key: Option<PublicKey>,
    ) -> Result<Self, DeviceError> {
        let served = directory.server_key().await?;
        if let Some(expected) = server_key {
            if expected != served {
                return Err(DeviceError::ServerKeyMismatch { expected, served });
            }
        }
        let secret_key = SecretKey::generate();
        let identity = directory
            .create_identity(&secret_key.public_key(), admission)
            .await?;
        Ok(Self {
            identity,
            secret_key,
            server_key: served,
            server_url: directory.base_url().to_owned(),
            device_id: CspDeviceId::random(),
        })
    }

    /// The device's public key, as registered in the directory.
    pub fn public_key(&self) -> PublicKey {
        self.secret_key.public_key()
    }

    /// A directory client for the enrolled server, trusting the platform's root
    /// certificates.
    ///
    /// # Errors
    ///
    /// As [`Directory::new`].
    pub fn directory(&self) -> Result<Directory, DeviceError> {
        Directory::new(&self.server_url)
    }

    /// A directory client for the enrolled server that also trusts the certificates of
    /// `ca`; connections made with it (the chat WebSocket too) trust them as well.
    ///
    /// # Errors
    ///
    /// As [`Directory::new`].
    pub fn directory_with_private_ca(&self, ca: &PrivateCa) -> Result<Directory, DeviceError> {
        Directory::with_private_ca(&self.server_url, ca)
    }

    /// Writes the keys to a new file at `path`, mode 0600.
    ///
    /// # Errors
    ///
    /// [`DeviceError::Exists`] when `path` exists (it is never overwritten), and
    /// [`DeviceError::File`] when it cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), DeviceError> {
        let file = KeysFile {
            version: FILE_VERSION,
            identity: self.identity,
            public_key: self.public_key(),
            secret_key: self.secret_key.to_hex().to_string(),
            server_public_key: self.server_key,
            server_url: self.server_url.clone(),
            csp_device_id: self.device_id.to_string(),
        };
        let mut text = Zeroizing::new(
            serde_json::to_string_pretty(&file).map_err(|e| DeviceError::file(path, e))?,
        );
        text.push('\n');
        create_private(path, text.as_bytes())
    }

    /// Reads the keys written by [`DeviceKeys::save`].
    ///
    /// # Errors
    ///
    /// [`DeviceError::File`] for a missing or unreadable file, one other users can
    /// access, malformed content, or a secret key that does not match its public key.
    pub fn load(path: &Path) -> Result<Self, DeviceError> {
        check_private(path)?;
        let text = std::fs::read_to_string(path)
            .map(Zeroizing::new)
            .map_err(|e| DeviceError::file(path, format!("cannot read: {e}")))?;
        let file: KeysFile = serde_json::from_str(&text)
            .map_err(|e| DeviceError::file(path, format!("not a device keys file: {e}")))?;
        if file.version != FILE_VERSION {
            return Err(DeviceError::file(
                path,
                format!("unsupported keys file version {}", file.version),
            ));
        }
        let secret_key = SecretKey::parse(&file.secret_key)
            .map_err(|e| DeviceError::file(path, format!("secretKey: {e}")))?;
        if secret_key.public_key() != file.public_key {
            return Err(DeviceError::file(
                path,
                "secretKey does not belong to publicKey",
            ));
        }
        let device_id = parse_device_id(&file.csp_device_id)
            .ok_or_else(|| DeviceError::file(path, "cspDeviceId must be 16 hex characters"))?;
        let server_url = parse_base_url(&file.server_url)
            .map_err(|e| DeviceError::file(path, format!("serverUrl: {e}")))?;
        Ok(Self {
            identity: file.identity,
            secret_key,
            server_key: file.server_public_key,
            server_url: server_url.to_string(),
            device_id,
        })
    }
}

/// Reads the 16 hex characters [`CspDeviceId`] displays as.
fn parse_device_id(text: &str) -> Option<CspDeviceId> {
    if text.len() != 16 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(text, 16).ok().map(CspDeviceId::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DeviceKeys {
        DeviceKeys {
            identity: IdentityId::parse("ABCD1234").unwrap(),
            secret_key: SecretKey::generate(),
            server_key: SecretKey::generate().public_key(),
            server_url: "http://127.0.0.1:8080/".into(),
            device_id: CspDeviceId::new(0x0011_2233_4455_6677),
        }
    }

    #[test]
    fn a_saved_file_loads_back_and_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.json");
        let keys = sample();
        keys.save(&path).unwrap();
        let loaded = DeviceKeys::load(&path).unwrap();
        assert_eq!(loaded.identity, keys.identity);
        assert_eq!(loaded.public_key(), keys.public_key());
        assert_eq!(loaded.server_key, keys.server_key);
        assert_eq!(loaded.device_id, keys.device_id);
        assert!(matches!(sample().save(&path), Err(DeviceError::Exists(_))));
        assert!(!format!("{keys:?}").contains(keys.secret_key.to_hex().as_str()));
    }

    #[test]
    fn damaged_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.json");
        sample().save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let other = SecretKey::generate().to_hex().to_string();
        let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
        value["secretKey"] = other.into();
        let swapped = dir.path().join("swapped.json");
        create_private(&swapped, value.to_string().as_bytes()).unwrap();
        assert!(matches!(
            DeviceKeys::load(&swapped),
            Err(DeviceError::File { .. })
        ));
        assert_eq!(parse_device_id("00112233445566zz"), None);
        assert_eq!(parse_device_id("+0112233445566ff"), None);
    }

    #[cfg(unix)]
    #[test]
    fn a_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.json");
        sample().save(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = DeviceKeys::load(&path).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }
}
