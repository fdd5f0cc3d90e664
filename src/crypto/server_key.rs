//! The chat server's long-term key pair (`SK` of the protocol).
//!
//! Created on first start in the data directory (mode 0600) and never rotated silently:
//! devices pin its public key, which `tocsin admin server-key` prints.

use std::path::Path;

use tocsin_sdk::protocol::{KeyPair, SecretKey};

use super::at_rest::{load_or_create_key_file, DataKeyError};

/// Loads the key pair from `path`, creating it on first use.
pub fn load_or_create(path: &Path) -> Result<KeyPair, DataKeyError> {
    let secret = load_or_create_key_file(path)?;
    Ok(KeyPair::from_secret(SecretKey::from_bytes(*secret)))
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
        std::fs::write(&path, "junk").unwrap();
        assert!(load_or_create(&path)
            .unwrap_err()
            .to_string()
            .contains("server.key"));
    }
}
