//! The message types the SDK can build and read, and their body layouts.
//!
//! | type | variant | body |
//! | --- | --- | --- |
//! | 0x01 | [`E2eMessage::Text`] | non-empty UTF-8 |
//! | 0x02 | [`E2eMessage::Image`] | blob ID (16) + size (u32 LE) + nonce (24) = 44 bytes |
//! | 0x10 | [`E2eMessage::Location`] | see [`Location`] |
//! | 0x17 | [`E2eMessage::File`] | JSON, see [`FileMessage`] |
//! | 0x80 | [`E2eMessage::DeliveryReceipt`] | status (1) + n ≥ 1 message IDs (8 each) |
//!
//! Encoding writes whatever the value holds; decoding checks everything. A value that
//! breaks a rule (empty text, a receipt without IDs, an out-of-range location) therefore
//! encodes, but is refused by the receiver.

use super::{
    decode_container, encode_container, E2eError, FileMessage, Location, MSG_DELIVERY_RECEIPT,
    MSG_FILE, MSG_IMAGE, MSG_LOCATION, MSG_TEXT,
};
use crate::protocol::{BlobId, MessageId, Nonce};

/// Length of an image message body.
const IMAGE_BODY_LEN: usize = BlobId::LEN + 4 + Nonce::LEN;

/// What a delivery receipt reports about the messages it lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ReceiptStatus {
    /// The recipient's device received the messages.
    Received = 1,
    /// The recipient read them.
    Read = 2,
    /// The recipient acknowledged them (thumbs up).
    Acknowledged = 3,
    /// The recipient declined them (thumbs down).
    Declined = 4,
}

impl TryFrom<u8> for ReceiptStatus {
    type Error = E2eError;

    fn try_from(byte: u8) -> Result<Self, Self::Error> {
        match byte {
            1 => Ok(Self::Received),
            2 => Ok(Self::Read),
            3 => Ok(Self::Acknowledged),
            4 => Ok(Self::Declined),
            other => Err(E2eError::ReceiptStatus(other)),
        }
    }
}

impl From<ReceiptStatus> for u8 {
    fn from(status: ReceiptStatus) -> Self {
        status as u8
    }
}

/// One decoded end-to-end message.
#[derive(Debug, Clone, PartialEq)]
pub enum E2eMessage {
    /// A text message.
    Text(String),
    /// An image stored in a blob encrypted with the same key pair as the message.
    Image {
        /// Blob holding the encrypted image.
        blob_id: BlobId,
        /// Informational size (clients disagree whether of plaintext or ciphertext).
        size: u32,
        /// Nonce the blob was sealed with.
        nonce: Nonce,
    },
    /// A shared position.
    Location(Location),
    /// A file (or media) stored in blobs.
    File(FileMessage),
    /// Status report about earlier messages.
    DeliveryReceipt {
        /// What happened to the messages.
        status: ReceiptStatus,
        /// The messages concerned, as the IDs the sender got back (at least one).
        message_ids: Vec<MessageId>,
    },
}

impl E2eMessage {
    /// The type byte that precedes the body.
    pub fn type_byte(&self) -> u8 {
        match self {
            Self::Text(_) => MSG_TEXT,
            Self::Image { .. } => MSG_IMAGE,
            Self::Location(_) => MSG_LOCATION,
            Self::File(_) => MSG_FILE,
            Self::DeliveryReceipt { .. } => MSG_DELIVERY_RECEIPT,
        }
    }

    /// The body, without type byte or padding.
    pub fn encode_body(&self) -> Vec<u8> {
        match self {
            Self::Text(text) => text.as_bytes().to_vec(),
            Self::Image {
                blob_id,
                size,
                nonce,
            } => {
                let mut body = Vec::with_capacity(IMAGE_BODY_LEN);
                body.extend_from_slice(blob_id.as_bytes());
                body.extend_from_slice(&size.to_le_bytes());
                body.extend_from_slice(nonce.as_bytes());
                body
            }
            Self::Location(location) => location.encode_body(),
            Self::File(file) => file.encode_body(),
            Self::DeliveryReceipt {
                status,
                message_ids,
            } => {
                let mut body = Vec::with_capacity(1 + MessageId::LEN * message_ids.len());
                body.push(u8::from(*status));
                message_ids
                    .iter()
                    .for_each(|id| body.extend_from_slice(id.as_bytes()));
                body
            }
        }
    }

    /// Decodes a body given its type byte.
    pub fn decode(msg_type: u8, body: &[u8]) -> Result<Self, E2eError> {
        match msg_type {
            MSG_TEXT => decode_text(body),
            MSG_IMAGE => decode_image(body),
            MSG_LOCATION => Location::decode_body(body).map(Self::Location),
            MSG_FILE => FileMessage::decode_body(body).map(Self::File),
            MSG_DELIVERY_RECEIPT => decode_receipt(body),
            other => Err(E2eError::UnknownType(other)),
        }
    }

    /// The complete padded plaintext, ready to be sealed.
    pub fn to_padded(&self) -> Vec<u8> {
        encode_container(self.type_byte(), &self.encode_body())
    }

    /// Decodes the complete padded plaintext taken out of a box.
    pub fn from_padded(data: &[u8]) -> Result<Self, E2eError> {
        let (msg_type, body) = decode_container(data)?;
        Self::decode(msg_type, body)
    }
}

fn decode_text(body: &[u8]) -> Result<E2eMessage, E2eError> {
    if body.is_empty() {
        return Err(E2eError::EmptyText);
    }
    let text = std::str::from_utf8(body).map_err(|_| E2eError::InvalidUtf8("text"))?;
    Ok(E2eMessage::Text(text.to_owned()))
}

fn decode_image(body: &[u8]) -> Result<E2eMessage, E2eError> {
    let wrong_length = || E2eError::BodyLength {
        what: "image",
        expected: IMAGE_BODY_LEN,
        got: body.len(),
    };
    let bytes: &[u8; IMAGE_BODY_LEN] = body.try_into().map_err(|_| wrong_length())?;
    let (blob, rest) = bytes.split_at(BlobId::LEN);
    let (size, nonce) = rest.split_at(4);
    Ok(E2eMessage::Image {
        blob_id: BlobId::from_bytes(blob.try_into().map_err(|_| wrong_length())?),
        size: u32::from_le_bytes(size.try_into().map_err(|_| wrong_length())?),
        nonce: Nonce::from_bytes(nonce.try_into().map_err(|_| wrong_length())?),
    })
}

fn decode_receipt(body: &[u8]) -> Result<E2eMessage, E2eError> {
    let Some((&status, ids)) = body.split_first() else {
        return Err(E2eError::ReceiptLength(0));
    };
    if ids.is_empty() || ids.len() % MessageId::LEN != 0 {
        return Err(E2eError::ReceiptLength(body.len()));
    }
    let status = ReceiptStatus::try_from(status)?;
    let message_ids = ids
        .chunks_exact(MessageId::LEN)
        .filter_map(|chunk| chunk.try_into().ok().map(MessageId::from_bytes))
        .collect();
    Ok(E2eMessage::DeliveryReceipt {
        status,
        message_ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_body_layout_is_blob_size_le_nonce() {
        let msg = E2eMessage::Image {
            blob_id: BlobId::from_bytes([0xaa; 16]),
            size: 0x0102_0304,
            nonce: Nonce::from_bytes([0xbb; 24]),
        };
        let body = msg.encode_body();
        assert_eq!(body.len(), 44);
        assert_eq!(&body[16..20], &[4, 3, 2, 1]);
        assert_eq!(E2eMessage::decode(MSG_IMAGE, &body).unwrap(), msg);
        assert!(E2eMessage::decode(MSG_IMAGE, &body[..43]).is_err());
    }

    #[test]
    fn text_must_be_non_empty_utf8() {
        assert!(matches!(
            E2eMessage::decode(MSG_TEXT, b""),
            Err(E2eError::EmptyText)
        ));
        assert!(matches!(
            E2eMessage::decode(MSG_TEXT, &[0xff]),
            Err(E2eError::InvalidUtf8(_))
        ));
        assert!(matches!(
            E2eMessage::decode(0x42, b"x"),
            Err(E2eError::UnknownType(0x42))
        ));
    }

    #[test]
    fn receipt_status_and_length_are_checked() {
        assert!(matches!(
            E2eMessage::decode(MSG_DELIVERY_RECEIPT, &[9; 9]),
            Err(E2eError::ReceiptStatus(9))
        ));
        assert!(matches!(
            E2eMessage::decode(MSG_DELIVERY_RECEIPT, &[1]),
            Err(E2eError::ReceiptLength(1))
        ));
    }
}
