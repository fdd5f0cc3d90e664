//! The message envelope: the clear header and the end-to-end box of one chat message,
//! as carried by outgoing (`0x01`) and incoming (`0x02`) payloads.
//!
//! Only the legacy layout is supported:
//!
//! | offset | length | field |
//! | --- | --- | --- |
//! | 0 | 8 | sender identity |
//! | 8 | 8 | receiver identity |
//! | 16 | 8 | message ID (the raw bytes of [`MessageId`], in order) |
//! | 24 | 4 | created-at, u32-le Unix seconds |
//! | 28 | 1 | flags |
//! | 29 | 1 | reserved, written 0 and ignored when read |
//! | 30 | 2 | metadata length, u16-le: must be 0 here |
//! | 32 | 32 | nickname, UTF-8 zero-padded (all zero for none) |
//! | 64 | 24 | nonce of the end-to-end box |
//! | 88 | ≥16 | end-to-end box (tag, then ciphertext) |
//!
//! The header is visible to the server (it routes on it) but not to anyone on the path,
//! since the whole envelope travels inside an encrypted frame. Decoding refuses a
//! metadata box, a box shorter than its tag, an invalid identity and a nickname that is
//! not UTF-8; it never panics.

use super::PayloadError;
use crate::crypto::TAG_LEN;
use crate::protocol::{IdentityId, MessageFlags, MessageId, Nonce};

const SENDER_AT: usize = 0;
const RECEIVER_AT: usize = 8;
const MESSAGE_ID_AT: usize = 16;
const CREATED_AT_AT: usize = 24;
const FLAGS_AT: usize = 28;
const METADATA_LEN_AT: usize = 30;
const NICKNAME_AT: usize = 32;

/// One chat message between two identities: routing header and sealed content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageEnvelope {
    /// Who sealed the message; the server checks it equals the logged-in identity.
    pub sender: IdentityId,
    /// Whose queue the message goes to.
    pub receiver: IdentityId,
    /// Chosen by the sender; with `sender` it identifies the message for acks and
    /// duplicate removal.
    pub message_id: MessageId,
    /// Unix seconds when the message was created (the server may overwrite a future
    /// value or a short-lived message's time).
    pub created_at: u32,
    /// Delivery flags (push, no queuing, no ack, …).
    pub flags: MessageFlags,
    /// The sender's public nickname, at most 32 bytes; `Some("")` is sent as none.
    pub nickname: Option<String>,
    /// Nonce of the end-to-end box.
    pub nonce: Nonce,
    /// The end-to-end box: tag, then ciphertext.
    pub sealed: Vec<u8>,
}

impl MessageEnvelope {
    /// Size of the clear header before the nonce.
    pub const HEADER_LEN: usize = 64;
    /// Size of the nickname field.
    pub const NICKNAME_LEN: usize = 32;
    /// Smallest valid envelope: header, nonce, and an empty box (its tag alone).
    pub const MIN_LEN: usize = Self::HEADER_LEN + Nonce::LEN + TAG_LEN;

    /// Appends the wire form to `out`.
    ///
    /// Fails for a nickname over 32 bytes or containing NUL (it would not read back the
    /// same) and for a box shorter than its tag.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), PayloadError> {
        let nickname = self.nickname.as_deref().unwrap_or_default().as_bytes();
        if nickname.len() > Self::NICKNAME_LEN || nickname.contains(&0) {
            return Err(PayloadError::Nickname(nickname.len()));
        }
        if self.sealed.len() < TAG_LEN {
            return Err(PayloadError::TooShort {
                what: "end-to-end box",
                need: TAG_LEN,
                got: self.sealed.len(),
            });
        }
        let mut header = [0u8; Self::HEADER_LEN];
        header[SENDER_AT..RECEIVER_AT].copy_from_slice(self.sender.as_bytes());
        header[RECEIVER_AT..MESSAGE_ID_AT].copy_from_slice(self.receiver.as_bytes());
        header[MESSAGE_ID_AT..CREATED_AT_AT].copy_from_slice(self.message_id.as_bytes());
        header[CREATED_AT_AT..FLAGS_AT].copy_from_slice(&self.created_at.to_le_bytes());
        header[FLAGS_AT] = self.flags.0;
        header[NICKNAME_AT..NICKNAME_AT + nickname.len()].copy_from_slice(nickname);
        out.reserve(Self::HEADER_LEN + Nonce::LEN + self.sealed.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(self.nonce.as_bytes());
        out.extend_from_slice(&self.sealed);
        Ok(())
    }

    /// The wire form; see [`MessageEnvelope::encode_into`] for the errors.
    pub fn encode(&self) -> Result<Vec<u8>, PayloadError> {
        let mut out = Vec::new();
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Reads an envelope that fills `bytes` exactly (the box runs to the end).
    pub fn decode(bytes: &[u8]) -> Result<Self, PayloadError> {
        if bytes.len() < Self::MIN_LEN {
            return Err(PayloadError::TooShort {
                what: "message envelope",
                need: Self::MIN_LEN,
                got: bytes.len(),
            });
        }
        let (header, rest) = bytes.split_at(Self::HEADER_LEN);
        let (nonce, sealed) = rest.split_at(Nonce::LEN);
        let metadata_len =
            u16::from_le_bytes([header[METADATA_LEN_AT], header[METADATA_LEN_AT + 1]]);
        if metadata_len != 0 {
            return Err(PayloadError::MetadataUnsupported(metadata_len));
        }
        let identity = |what: &'static str, at: usize| {
            IdentityId::from_bytes(&header[at..at + IdentityId::LEN])
                .map_err(|reason| PayloadError::Identity { what, reason })
        };
        let mut message_id = [0u8; MessageId::LEN];
        message_id.copy_from_slice(&header[MESSAGE_ID_AT..CREATED_AT_AT]);
        let mut created_at = [0u8; 4];
        created_at.copy_from_slice(&header[CREATED_AT_AT..FLAGS_AT]);
        let field = &header[NICKNAME_AT..NICKNAME_AT + Self::NICKNAME_LEN];
        let text = field.split(|&b| b == 0).next().unwrap_or_default();
        let nickname = std::str::from_utf8(text).map_err(|_| PayloadError::Utf8("nickname"))?;
        Ok(Self {
            sender: identity("sender", SENDER_AT)?,
            receiver: identity("receiver", RECEIVER_AT)?,
            message_id: MessageId::from_bytes(message_id),
            created_at: u32::from_le_bytes(created_at),
            flags: MessageFlags(header[FLAGS_AT]),
            nickname: (!nickname.is_empty()).then(|| nickname.to_owned()),
            nonce: Nonce::from_slice(nonce).map_err(|_| PayloadError::TooShort {
                what: "message envelope",
                need: Self::MIN_LEN,
                got: bytes.len(),
            })?,
            sealed: sealed.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> MessageEnvelope {
        MessageEnvelope {
            sender: IdentityId::parse("*TOCSIN1").unwrap(),
            receiver: IdentityId::parse("ABCD1234").unwrap(),
            message_id: MessageId::parse("0102030405060708").unwrap(),
            created_at: 0x6500_0001,
            flags: MessageFlags(MessageFlags::PUSH | MessageFlags::NO_RECEIPTS),
            nickname: Some("Alerts".into()),
            nonce: Nonce::from_bytes([0x24; 24]),
            sealed: vec![0xee; 20],
        }
    }

    #[test]
    fn the_fields_sit_at_their_documented_offsets() {
        let bytes = sample().encode().unwrap();
        assert_eq!(bytes.len(), 64 + 24 + 20);
        assert_eq!(&bytes[..8], b"*TOCSIN1");
        assert_eq!(&bytes[8..16], b"ABCD1234");
        assert_eq!(&bytes[16..24], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&bytes[24..28], &[0x01, 0x00, 0x00, 0x65]);
        assert_eq!(&bytes[28..32], &[0x81, 0, 0, 0]);
        assert_eq!(&bytes[32..38], b"Alerts");
        assert_eq!(&bytes[38..64], &[0; 26]);
        assert_eq!(&bytes[64..88], &[0x24; 24]);
        assert_eq!(MessageEnvelope::decode(&bytes), Ok(sample()));
    }

    #[test]
    fn metadata_short_boxes_and_bad_ids_are_refused() {
        let good = sample().encode().unwrap();
        let mut with_metadata = good.clone();
        with_metadata[30] = 5;
        assert_eq!(
            MessageEnvelope::decode(&with_metadata),
            Err(PayloadError::MetadataUnsupported(5))
        );
        assert!(matches!(
            MessageEnvelope::decode(&good[..MessageEnvelope::MIN_LEN - 1]),
            Err(PayloadError::TooShort { .. })
        ));
        let mut bad_id = good;
        bad_id[9] = b'a';
        assert!(matches!(
            MessageEnvelope::decode(&bad_id),
            Err(PayloadError::Identity {
                what: "receiver",
                ..
            })
        ));
    }

    #[test]
    fn an_overlong_or_nul_nickname_is_not_encoded() {
        let mut long = sample();
        long.nickname = Some("n".repeat(33));
        assert_eq!(long.encode(), Err(PayloadError::Nickname(33)));
        let mut nul = sample();
        nul.nickname = Some("a\0b".into());
        assert_eq!(nul.encode(), Err(PayloadError::Nickname(3)));
        let mut empty = sample();
        empty.nickname = Some(String::new());
        let decoded = MessageEnvelope::decode(&empty.encode().unwrap()).unwrap();
        assert_eq!(decoded.nickname, None);
    }
}
