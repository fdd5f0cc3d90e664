//! Property tests for the E2E plaintext: the padded container and every message type
//! survive a round trip, malformed input is refused, and no input makes a decoder panic.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use tocsin_sdk::crypto::SymmetricKey;
use tocsin_sdk::protocol::e2e::{
    decode_container, encode_container, encode_container_with_padding, E2eError, E2eMessage,
    FileMessage, Location, ReceiptStatus, MIN_PADDED_LEN, MSG_DELIVERY_RECEIPT,
};
use tocsin_sdk::protocol::{BlobId, MessageId, Nonce};

fn receipt_status() -> impl Strategy<Value = ReceiptStatus> {
    prop_oneof![
        Just(ReceiptStatus::Received),
        Just(ReceiptStatus::Read),
        Just(ReceiptStatus::Acknowledged),
        Just(ReceiptStatus::Declined),
    ]
}

/// A non-empty single line (no line breaks), as name and address must be.
fn line() -> impl Strategy<Value = String> {
    "[^\n]{1,40}"
}

fn location() -> impl Strategy<Value = Location> {
    (
        -90.0f64..=90.0,
        -180.0f64..=180.0,
        option::of(0.0f64..100_000.0),
        option::of(line()),
        option::of(line()),
    )
        .prop_map(|(latitude, longitude, accuracy, name, address)| Location {
            latitude,
            longitude,
            accuracy,
            name,
            address,
        })
}

fn file_message() -> impl Strategy<Value = FileMessage> {
    (
        (
            any::<[u8; 16]>(),
            any::<[u8; 32]>(),
            "[a-z]{1,10}/[a-z0-9.+-]{1,20}",
            any::<u64>(),
        ),
        (
            option::of(".{0,30}"),
            option::of(any::<[u8; 16]>()),
            option::of("image/[a-z]{1,8}"),
        ),
        (
            option::of(".{0,60}"),
            option::of(0u8..=2),
            option::of(0u8..=1),
        ),
        option::of((any::<bool>(), 1u32..5000, 1u32..5000)),
    )
        .prop_map(
            |((blob, key, media_type, size), (name, thumb, thumb_type), (caption, j, i), x)| {
                FileMessage {
                    name,
                    thumbnail_blob_id: thumb.map(BlobId::from_bytes),
                    thumbnail_media_type: thumb_type,
                    caption,
                    rendering: j,
                    legacy_rendering: i,
                    metadata: x.map(|(a, h, w)| serde_json::json!({ "a": a, "h": h, "w": w })),
                    ..FileMessage::new(
                        BlobId::from_bytes(blob),
                        SymmetricKey::from_bytes(key),
                        media_type,
                        size,
                    )
                }
            },
        )
}

fn message() -> impl Strategy<Value = E2eMessage> {
    prop_oneof![
        ".{1,200}".prop_map(E2eMessage::Text),
        (any::<[u8; 16]>(), any::<u32>(), any::<[u8; 24]>()).prop_map(|(blob, size, nonce)| {
            E2eMessage::Image {
                blob_id: BlobId::from_bytes(blob),
                size,
                nonce: Nonce::from_bytes(nonce),
            }
        }),
        location().prop_map(E2eMessage::Location),
        file_message().prop_map(E2eMessage::File),
        (receipt_status(), vec(any::<[u8; 8]>(), 1..20)).prop_map(|(status, ids)| {
            E2eMessage::DeliveryReceipt {
                status,
                message_ids: ids.into_iter().map(MessageId::from_bytes).collect(),
            }
        }),
    ]
}

proptest! {
    #[test]
    fn container_round_trips_and_meets_the_minimum(t in any::<u8>(), body in vec(any::<u8>(), 0..5000)) {
        let container = encode_container(t, &body);
        let after_type_byte = container.len() - 1;
        prop_assert!(after_type_byte >= MIN_PADDED_LEN);
        prop_assert!(container.len() - 1 - body.len() <= 255);
        let (decoded_type, decoded_body) = decode_container(&container).unwrap();
        prop_assert_eq!(decoded_type, t);
        prop_assert_eq!(decoded_body, &body[..]);
    }

    #[test]
    fn every_padding_length_decodes(t in any::<u8>(), body in vec(any::<u8>(), 0..300), padding in 1u8..=255) {
        let container = encode_container_with_padding(t, &body, padding).unwrap();
        prop_assert_eq!(container.len(), 1 + body.len() + usize::from(padding));
        prop_assert_eq!(decode_container(&container).unwrap(), (t, &body[..]));
    }

    #[test]
    fn padding_that_eats_the_type_byte_is_refused(data in vec(any::<u8>(), 1..256)) {
        let mut data = data;
        let len = data.len();
        // Claim at least as many padding bytes as the container holds.
        if let Some(last) = data.last_mut() {
            *last = u8::try_from(len).unwrap_or(u8::MAX).max(1);
        }
        let refused = matches!(
            decode_container(&data),
            Err(E2eError::PaddingTooLong { .. })
        );
        prop_assert!(refused);
    }

    #[test]
    fn every_message_round_trips_through_the_padded_form(msg in message()) {
        let padded = msg.to_padded();
        let after_type_byte = padded.len() - 1;
        prop_assert!(after_type_byte >= MIN_PADDED_LEN);
        prop_assert_eq!(padded[0], msg.type_byte());
        prop_assert_eq!(E2eMessage::from_padded(&padded).unwrap(), msg);
    }

    #[test]
    fn receipts_with_a_ragged_length_are_refused(status in 1u8..=4, len in 0usize..200) {
        prop_assume!(len == 0 || len % 8 != 0);
        let mut body = vec![status];
        body.extend(std::iter::repeat_n(0xab, len));
        let refused = matches!(
            E2eMessage::decode(MSG_DELIVERY_RECEIPT, &body),
            Err(E2eError::ReceiptLength(_))
        );
        prop_assert!(refused);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(data in vec(any::<u8>(), 0..600)) {
        let _ = E2eMessage::from_padded(&data);
        if let Some((&t, body)) = data.split_first() {
            let _ = E2eMessage::decode(t, body);
        }
    }

    #[test]
    fn decoding_arbitrary_bodies_of_every_known_type_never_panics(
        t in prop_oneof![Just(0x01u8), Just(0x02), Just(0x10), Just(0x17), Just(0x80)],
        body in prop_oneof![vec(any::<u8>(), 0..200), ".{0,80}".prop_map(String::into_bytes)],
    ) {
        let _ = E2eMessage::decode(t, &body);
    }
}

#[test]
fn padding_zero_is_refused_when_encoding_and_decoding() {
    assert!(matches!(
        encode_container_with_padding(1, b"hi", 0),
        Err(E2eError::ZeroPadding)
    ));
    assert!(matches!(
        decode_container(&[1, b'h', b'i', 0]),
        Err(E2eError::ZeroPadding)
    ));
}
