//! [`Contacts`]: public keys the device pins itself, kept in a JSON file next to the keys
//! (`{"*ALERTS1": "…64 hex…"}`, mode 0600).
//!
//! The server's open directory already serves every key, gateway IDs included; a pinned
//! key is for when the device should not take the server's word for it, typically a
//! gateway ID's key as its operator published it. A pinned key wins over anything the
//! server says, and a message that does not open under it is refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::files::{read_optional, replace_private};
use super::{DeviceError, Directory};
use crate::protocol::{IdentityId, PublicKey};

/// The pinned keys and the file they live in.
#[derive(Debug, Clone)]
pub struct Contacts {
    path: PathBuf,
    keys: BTreeMap<IdentityId, PublicKey>,
}

impl Contacts {
    /// Reads the contacts file at `path`; a missing file is an empty list.
    ///
    /// # Errors
    ///
    /// [`DeviceError::File`] when the file cannot be read or is not a JSON object of
    /// IDs and keys.
    pub fn load(path: &Path) -> Result<Self, DeviceError> {
        let keys = match read_optional(path)? {
            Some(text) => serde_json::from_str(&text)
                .map_err(|e| DeviceError::file(path, format!("not a contacts file: {e}")))?,
            None => BTreeMap::new(),
        };
        Ok(Self {
            path: path.to_path_buf(),
            keys,
        })
    }

    /// The key pinned for `id`.
    pub fn get(&self, id: &IdentityId) -> Option<PublicKey> {
        self.keys.get(id).copied()
    }

    /// Pins `key` for `id`; returns the key it replaces. Call [`Contacts::save`] to keep
    /// it.
    pub fn insert(&mut self, id: IdentityId, key: PublicKey) -> Option<PublicKey> {
        self.keys.insert(id, key)
    }

    /// Every pinned ID with its key, in ID order.
    pub fn iter(&self) -> impl Iterator<Item = (&IdentityId, &PublicKey)> {
        self.keys.iter()
    }

    /// Pins every key in `directory`.
    pub fn pin_into(&self, directory: &mut Directory) {
        for (id, key) in &self.keys {
            directory.pin(*id, *key);
        }
    }

    /// Writes the file, replacing the previous one atomically.
    ///
    /// # Errors
    ///
    /// [`DeviceError::File`] when it cannot be written.
    pub fn save(&self) -> Result<(), DeviceError> {
        let mut text = serde_json::to_string_pretty(&self.keys)
            .map_err(|e| DeviceError::file(&self.path, e))?;
        text.push('\n');
        replace_private(&self.path, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::SecretKey;

    #[test]
    fn pinned_keys_survive_a_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.contacts.json");
        let mut contacts = Contacts::load(&path).unwrap();
        assert_eq!(contacts.iter().count(), 0);
        let id = IdentityId::parse("*ALERTS1").unwrap();
        let key = SecretKey::generate().public_key();
        assert_eq!(contacts.insert(id, key), None);
        contacts.save().unwrap();
        assert_eq!(Contacts::load(&path).unwrap().get(&id), Some(key));
        std::fs::write(&path, "{\"lowercase\": \"00\"}").unwrap();
        assert!(Contacts::load(&path).is_err());
    }
}
