//! The chat server's long-term key pair (`SK` of the protocol).
//!
//! Created on first start in the data directory (mode 0600) and never rotated silently:
//! devices pin its public key, which `tocsin admin server-key` prints.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use tocsin_sdk::protocol::{KeyPair, SecretKey};
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum ServerKeyError {
    #[error("cannot read or create the server key {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("server key {path} is malformed: expected 64 hex characters")]
    Malformed { path: PathBuf },
}

/// Loads the key pair from `path`, creating it on first use.
pub fn load_or_create(path: &Path) -> Result<KeyPair, ServerKeyError> {
    let io = |source| ServerKeyError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(io)?;
    }
    match fs::read_to_string(path) {
        Ok(text) => {
            let text = Zeroizing::new(text);
            let secret = SecretKey::parse(text.trim()).map_err(|_| ServerKeyError::Malformed {
                path: path.to_owned(),
            })?;
            Ok(KeyPair::from_secret(secret))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let pair = KeyPair::generate();
            let mut file = super::at_rest::create_private(path).map_err(io)?;
            file.write_all(pair.secret.to_hex().as_bytes())
                .map_err(io)?;
            file.write_all(b"\n").map_err(io)?;
            file.sync_all().map_err(io)?;
            Ok(pair)
        }
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_created_once_and_then_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.key");
        let first = load_or_create(&path).unwrap();
        let again = load_or_create(&path).unwrap();
        assert_eq!(first.public, again.public);
        fs::write(&path, "junk").unwrap();
        assert!(load_or_create(&path)
            .unwrap_err()
            .to_string()
            .contains("server.key"));
    }
}
