//! File messages (type 0x17): a compact JSON object that points at encrypted blobs.
//!
//! The file (and an optional thumbnail) are encrypted with a fresh [`SymmetricKey`] and
//! uploaded as blobs; the message carries the blob IDs and the key. The JSON keys are
//! single letters on the wire; the Rust fields have readable names. Absent optional
//! fields are left out when encoding, and unknown keys are ignored when decoding.

use serde::{Deserialize, Serialize};

use super::E2eError;
use crate::crypto::SymmetricKey;
use crate::protocol::BlobId;

/// The body of a file message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileMessage {
    /// Blob holding the encrypted file.
    #[serde(rename = "b")]
    pub blob_id: BlobId,
    /// Key for the file blob and the thumbnail blob (64 hex characters on the wire).
    #[serde(rename = "k", with = "key_hex")]
    pub key: SymmetricKey,
    /// Media (MIME) type of the file.
    #[serde(rename = "m")]
    pub media_type: String,
    /// Size of the plaintext file in bytes.
    #[serde(rename = "s")]
    pub size: u64,
    /// File name shown to the recipient.
    #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Blob holding the encrypted thumbnail.
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    pub thumbnail_blob_id: Option<BlobId>,
    /// Media type of the thumbnail.
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pub thumbnail_media_type: Option<String>,
    /// Caption shown below the file.
    #[serde(rename = "d", default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// Rendering type: 0 file, 1 media, 2 sticker. Other values are kept as they are.
    #[serde(rename = "j", default, skip_serializing_if = "Option::is_none")]
    pub rendering: Option<u8>,
    /// Older rendering flag (1 media, else 0), read by clients that do not know `j`.
    #[serde(rename = "i", default, skip_serializing_if = "Option::is_none")]
    pub legacy_rendering: Option<u8>,
    /// Free-form metadata (`a` animated, `h` height, `w` width, `d` duration).
    #[serde(rename = "x", default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
}

impl FileMessage {
    /// A message with the four required fields and nothing else.
    pub fn new(blob_id: BlobId, key: SymmetricKey, media_type: String, size: u64) -> Self {
        Self {
            blob_id,
            key,
            media_type,
            size,
            name: None,
            thumbnail_blob_id: None,
            thumbnail_media_type: None,
            caption: None,
            rendering: None,
            legacy_rendering: None,
            metadata: None,
        }
    }

    /// The compact JSON body.
    pub(super) fn encode_body(&self) -> Vec<u8> {
        // Every field serialises infallibly (strings, numbers, hex and a JSON value that
        // was itself built as JSON), so the empty fallback is never taken.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses the JSON body.
    pub(super) fn decode_body(body: &[u8]) -> Result<Self, E2eError> {
        Ok(serde_json::from_slice(body)?)
    }
}

/// The blob key as 64 hex characters, through buffers that are wiped afterwards.
mod key_hex {
    use serde::{Deserialize, Deserializer, Serializer};
    use zeroize::Zeroizing;

    use crate::crypto::SymmetricKey;

    pub(super) fn serialize<S: Serializer>(key: &SymmetricKey, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&key.to_hex())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SymmetricKey, D::Error> {
        let text = Zeroizing::new(String::deserialize(d)?);
        SymmetricKey::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_compactly_with_one_letter_keys() {
        let msg = FileMessage::new(
            BlobId::from_bytes([1; 16]),
            SymmetricKey::from_bytes([2; 32]),
            "text/plain".into(),
            5,
        );
        let json = String::from_utf8(msg.encode_body()).unwrap();
        assert_eq!(
            json,
            format!(
                r#"{{"b":"{}","k":"{}","m":"text/plain","s":5}}"#,
                "01".repeat(16),
                "02".repeat(32)
            )
        );
    }

    #[test]
    fn unknown_keys_are_ignored_and_required_keys_enforced() {
        let json = format!(
            r#"{{"b":"{}","k":"{}","m":"a/b","s":1,"zz":[1],"i":0,"n":null}}"#,
            "AB".repeat(16),
            "cd".repeat(32)
        );
        let msg = FileMessage::decode_body(json.as_bytes()).unwrap();
        assert_eq!(msg.legacy_rendering, Some(0));
        assert_eq!(msg.name, None);
        assert!(FileMessage::decode_body(br#"{"m":"a/b","s":1}"#).is_err());
        assert!(FileMessage::decode_body(b"[]").is_err());
    }
}
