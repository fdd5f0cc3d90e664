//! The data key: protection at rest for what the server must be able to use again.
//!
//! A 32-byte master key lives in a file in the data directory (created on first start with
//! mode 0600, never in the database). Two subkeys are derived from it with HMAC-SHA256 and
//! distinct labels:
//! * the *seal* key encrypts basic-mode private keys and API secrets (NaCl secretbox, a
//!   fresh random nonce per value, stored as `nonce ‖ box`);
//! * the *hash* key turns API secrets and invite codes into the keyed hashes that requests
//!   are checked against, so a copy of the database alone allows no offline guessing.
//!
//! Several nodes sharing one PostgreSQL database must share this file.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tocsin_sdk::crypto::SymmetricKey;
use tocsin_sdk::protocol::{ApiSecret, InviteCode, Nonce};
use zeroize::Zeroizing;

const SEAL_LABEL: &[u8] = b"tocsin data key: seal v1";
const HASH_LABEL: &[u8] = b"tocsin data key: api secret hash v1";
/// Prefixed to an invite code before it is hashed; API secrets have no `:`, so no secret
/// hashes like a code.
const INVITE_LABEL: &[u8] = b"invite code v1:";
const INTEGRATION_LABEL: &[u8] = b"integration token v1:";

#[derive(Debug, thiserror::Error)]
pub enum DataKeyError {
    #[error("cannot read or create the key file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key file {path} is malformed: expected 64 hex characters")]
    Malformed { path: PathBuf },
    #[error(
        "key file {path} can be read by others (mode {mode:o}); make it the owner's alone: \
         chmod 600 {path}"
    )]
    Exposed { path: PathBuf, mode: u32 },
    #[error("sealed value cannot be opened with this data key (wrong key file or corrupt row)")]
    Open,
}

/// Subkeys derived from the master data key.
pub struct DataKey {
    seal: SymmetricKey,
    hash: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(***)")
    }
}

fn derive(master: &[u8; 32], label: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(master).expect("HMAC takes any key length");
    mac.update(label);
    Zeroizing::new(mac.finalize().into_bytes().into())
}

impl DataKey {
    pub fn from_master(master: &[u8; 32]) -> Self {
        Self {
            seal: SymmetricKey::from_bytes(*derive(master, SEAL_LABEL)),
            hash: derive(master, HASH_LABEL),
        }
    }

    /// Reads the key file, or creates it (mode 0600) with a fresh random key.
    pub fn load_or_create(path: &Path) -> Result<Self, DataKeyError> {
        let master = load_or_create_key_file(path)?;
        Ok(Self::from_master(&master))
    }

    /// Encrypts `plaintext`; the result is `nonce ‖ box`.
    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let nonce = Nonce::random();
        let mut out = nonce.as_bytes().to_vec();
        out.extend_from_slice(&self.seal.seal(&nonce, plaintext));
        out
    }

    /// Reverses [`DataKey::seal`].
    pub fn open(&self, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, DataKeyError> {
        if sealed.len() < 24 {
            return Err(DataKeyError::Open);
        }
        let (nonce, boxed) = sealed.split_at(24);
        let nonce = Nonce::from_slice(nonce).map_err(|_| DataKeyError::Open)?;
        self.seal
            .open(&nonce, boxed)
            .map(Zeroizing::new)
            .map_err(|_| DataKeyError::Open)
    }

    /// Keyed hash of an API secret, as stored in `gateway_ids.secret_hash`.
    pub fn hash_secret(&self, secret: &ApiSecret) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.hash.as_ref())
            .expect("HMAC takes any key length");
        mac.update(secret.expose().as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Keyed hash of an invite code, as stored in `invites.code_hash`. A label keeps it
    /// apart from the hashes of API secrets made with the same key.
    pub fn hash_invite(&self, code: &InviteCode) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.hash.as_ref())
            .expect("HMAC takes any key length");
        mac.update(INVITE_LABEL);
        mac.update(code.canonical().as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Keyed hash of an integration's URL token, as stored in `integrations.token_hash`
    /// (labelled apart from the other hashes made with this key).
    pub fn hash_token(&self, token: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.hash.as_ref())
            .expect("HMAC takes any key length");
        mac.update(INTEGRATION_LABEL);
        mac.update(token.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Checks a presented secret against a stored hash in constant time.
    pub fn verify_secret(&self, secret: &ApiSecret, stored_hash: &[u8]) -> bool {
        self.hash_secret(secret).ct_eq(stored_hash).into()
    }
}

/// Creates a new file readable by its owner only; fails if it exists.
/// Reads 32 bytes kept as hex in `path`, or creates the file (mode 0600, fsynced) with
/// fresh random bytes. Shared by the data key and the chat server key.
pub(crate) fn load_or_create_key_file(path: &Path) -> Result<Zeroizing<[u8; 32]>, DataKeyError> {
    let io = |source| DataKeyError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(io)?;
    }
    match fs::read_to_string(path) {
        Ok(text) => {
            refuse_exposed(path)?;
            let text = Zeroizing::new(text);
            let mut bytes = Zeroizing::new([0u8; 32]);
            hex::decode_to_slice(text.trim(), bytes.as_mut()).map_err(|_| {
                DataKeyError::Malformed {
                    path: path.to_owned(),
                }
            })?;
            Ok(bytes)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let fresh = SymmetricKey::generate();
            let mut file = create_private(path).map_err(io)?;
            file.write_all(fresh.to_hex().as_bytes()).map_err(io)?;
            file.write_all(b"\n").map_err(io)?;
            file.sync_all().map_err(io)?;
            Ok(Zeroizing::new(*fresh.as_bytes()))
        }
        Err(e) => Err(io(e)),
    }
}

/// A key file anyone but its owner may read is refused, with the command that fixes it.
#[cfg(unix)]
fn refuse_exposed(path: &Path) -> Result<(), DataKeyError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path)
        .map_err(|source| DataKeyError::Io {
            path: path.to_owned(),
            source,
        })?
        .permissions()
        .mode();
    if mode & 0o077 == 0 {
        Ok(())
    } else {
        Err(DataKeyError::Exposed {
            path: path.to_owned(),
            mode: mode & 0o777,
        })
    }
}

#[cfg(not(unix))]
fn refuse_exposed(_: &Path) -> Result<(), DataKeyError> {
    Ok(())
}

#[cfg(unix)]
pub(crate) fn create_private(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
pub(crate) fn create_private(path: &Path) -> std::io::Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_may_read_is_refused_with_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.key");
        DataKey::load_or_create(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let err = DataKey::load_or_create(&path).unwrap_err().to_string();
        assert!(
            err.contains("mode 640") && err.contains("chmod 600"),
            "{err}"
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        DataKey::load_or_create(&path).unwrap();
    }

    #[test]
    fn key_file_is_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/data.key");
        let first = DataKey::load_or_create(&path).unwrap();
        let sealed = first.seal(b"basic-mode private key");
        let again = DataKey::load_or_create(&path).unwrap();
        assert_eq!(
            again.open(&sealed).unwrap().as_slice(),
            b"basic-mode private key"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn another_key_cannot_open_or_verify() {
        let a = DataKey::from_master(&[1; 32]);
        let b = DataKey::from_master(&[2; 32]);
        let secret = ApiSecret::parse("abcdEFGH12345678").unwrap();
        assert!(b.open(&a.seal(b"x")).is_err());
        assert!(a.verify_secret(&secret, &a.hash_secret(&secret)));
        assert!(!b.verify_secret(&secret, &a.hash_secret(&secret)));
        assert!(!a.verify_secret(
            &ApiSecret::parse("abcdEFGH12345679").unwrap(),
            &a.hash_secret(&secret)
        ));
        assert!(a.open(&[0; 10]).is_err());
    }

    #[test]
    fn malformed_key_file_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.key");
        create_private(&path)
            .unwrap()
            .write_all(b"not hex")
            .unwrap();
        let err = DataKey::load_or_create(&path).unwrap_err().to_string();
        assert!(err.contains("data.key") && err.contains("64 hex"), "{err}");
    }
}
