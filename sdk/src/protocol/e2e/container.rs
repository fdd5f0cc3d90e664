//! The padded container: `type || body || padding`.
//!
//! The padding is PKCS#7-like: `p` bytes, the last of which holds `p` (1..=255). Senders
//! pick `p` uniformly at random and raise it so that body plus padding is at least
//! [`MIN_PADDED_LEN`] bytes (the type byte not counted). Receivers read only the last
//! byte: they refuse `p == 0` and any `p` that would eat the type byte, but do not insist
//! that every padding byte equals `p`, because not every client writes them that way.

use super::E2eError;
use crate::crypto::fill_random;

/// Minimum length of body plus padding produced by [`encode_container`].
pub const MIN_PADDED_LEN: usize = 32;

/// A padding length uniform in 1..=255 (zero bytes are drawn again).
fn random_padding() -> u8 {
    let mut byte = [0u8; 1];
    loop {
        fill_random(&mut byte);
        if byte[0] != 0 {
            return byte[0];
        }
    }
}

/// Builds the container with random padding, at least [`MIN_PADDED_LEN`] bytes after the
/// type byte.
pub fn encode_container(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let random = random_padding();
    // The shortfall is at most 32, so it always fits in a byte.
    let shortfall = u8::try_from(MIN_PADDED_LEN.saturating_sub(body.len())).unwrap_or(u8::MAX);
    write_container(msg_type, body, random.max(shortfall))
}

/// Builds the container with exactly `padding` padding bytes. Padding 0 is refused,
/// since a receiver could not remove it.
pub fn encode_container_with_padding(
    msg_type: u8,
    body: &[u8],
    padding: u8,
) -> Result<Vec<u8>, E2eError> {
    if padding == 0 {
        return Err(E2eError::ZeroPadding);
    }
    Ok(write_container(msg_type, body, padding))
}

fn write_container(msg_type: u8, body: &[u8], padding: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + body.len() + usize::from(padding));
    out.push(msg_type);
    out.extend_from_slice(body);
    out.resize(out.len() + usize::from(padding), padding);
    out
}

/// Splits a container into its type byte and body, dropping the padding.
pub fn decode_container(data: &[u8]) -> Result<(u8, &[u8]), E2eError> {
    let (&padding, _) = data.split_last().ok_or(E2eError::Empty)?;
    if padding == 0 {
        return Err(E2eError::ZeroPadding);
    }
    let padding_len = usize::from(padding);
    if padding_len >= data.len() {
        return Err(E2eError::PaddingTooLong {
            padding,
            len: data.len(),
        });
    }
    let unpadded = &data[..data.len() - padding_len];
    match unpadded.split_first() {
        Some((&msg_type, body)) => Ok((msg_type, body)),
        None => Err(E2eError::Empty),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_bodies_are_padded_to_the_minimum() {
        for len in 0..40 {
            let body = vec![7u8; len];
            let container = encode_container(1, &body);
            let after_type_byte = container.len() - 1;
            assert!(after_type_byte >= MIN_PADDED_LEN);
            assert_eq!(decode_container(&container).unwrap(), (1, &body[..]));
        }
    }

    #[test]
    fn padding_bytes_other_than_the_last_are_not_checked() {
        assert_eq!(
            decode_container(&[9, b'h', b'i', 0, 0, 3]).unwrap(),
            (9, &b"hi"[..])
        );
    }

    #[test]
    fn malformed_containers_are_refused() {
        assert!(matches!(decode_container(&[]), Err(E2eError::Empty)));
        assert!(matches!(
            decode_container(&[1, 0]),
            Err(E2eError::ZeroPadding)
        ));
        assert!(matches!(
            decode_container(&[1, 2]),
            Err(E2eError::PaddingTooLong { padding: 2, len: 2 })
        ));
        assert!(matches!(
            decode_container(&[1]),
            Err(E2eError::PaddingTooLong { .. })
        ));
    }
}
