//! Hex and serde helpers shared by the fixed-size wire types.
//!
//! Every binary value on the Gateway wire travels as hex: we accept either case on input
//! and always emit lowercase. Values carrying key material are decoded into and encoded
//! from buffers that are wiped afterwards, so no stray copy of a secret is left behind.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use zeroize::Zeroizing;

use super::ParseError;

/// Decodes exactly `out.len() * 2` hex characters (either case) into `out`.
pub(crate) fn decode_hex_into(
    s: &str,
    what: &'static str,
    out: &mut [u8],
) -> Result<(), ParseError> {
    let expected = out.len() * 2;
    if s.len() != expected {
        return Err(ParseError::HexLength {
            what,
            expected,
            got: s.chars().count(),
        });
    }
    hex::decode_to_slice(s, out).map_err(|_| ParseError::InvalidHex { what })
}

/// Decodes exactly `2 * N` hex characters (either case) into an array.
pub(crate) fn decode_hex<const N: usize>(
    s: &str,
    what: &'static str,
) -> Result<[u8; N], ParseError> {
    let mut out = [0u8; N];
    decode_hex_into(s, what, &mut out)?;
    Ok(out)
}

/// Writes `bytes` as lowercase hex without allocating.
pub(crate) fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    // Through a buffer on the stack: one write per 32 bytes instead of a formatted
    // write per byte (nonces and message IDs are formatted on every send).
    let mut buf = [0u8; 64];
    for chunk in bytes.chunks(32) {
        let out = &mut buf[..2 * chunk.len()];
        hex::encode_to_slice(chunk, out).map_err(|_| fmt::Error)?;
        f.write_str(std::str::from_utf8(out).map_err(|_| fmt::Error)?)?;
    }
    Ok(())
}

/// Encodes secret bytes as lowercase hex into a string that is wiped on drop.
///
/// The capacity is reserved up front so the string never reallocates and leaves an
/// unwiped copy behind.
pub(crate) fn hex_zeroizing(bytes: &[u8]) -> Zeroizing<String> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Zeroizing::new(String::with_capacity(bytes.len() * 2));
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Deserialises a value from a string through its [`FromStr`] parser, so serde input
/// passes exactly the same checks as every other input.
pub(crate) fn deserialize_parsed<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    struct ParsedVisitor<T>(PhantomData<T>);

    impl<T> Visitor<'_> for ParsedVisitor<T>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            v.parse().map_err(E::custom)
        }
    }

    deserializer.deserialize_str(ParsedVisitor(PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_accepts_both_cases_and_counts_characters_in_errors() {
        assert_eq!(decode_hex::<2>("aBcD", "x"), Ok([0xab, 0xcd]));
        assert_eq!(
            decode_hex::<2>("äbcde", "x"),
            Err(ParseError::HexLength {
                what: "x",
                expected: 4,
                got: 5
            })
        );
        assert_eq!(
            decode_hex::<2>("abcg", "x"),
            Err(ParseError::InvalidHex { what: "x" })
        );
    }

    #[test]
    fn written_hex_is_lowercase_at_any_length() {
        struct Hex<'a>(&'a [u8]);
        impl fmt::Display for Hex<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_hex(f, self.0)
            }
        }
        let bytes: Vec<u8> = (0..=70u8).map(|b| b.wrapping_mul(37)).collect();
        for len in [0, 1, 31, 32, 33, 64, 71] {
            let expected: String = bytes[..len].iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(Hex(&bytes[..len]).to_string(), expected, "{len} bytes");
        }
    }

    #[test]
    fn zeroizing_hex_is_lowercase() {
        assert_eq!(hex_zeroizing(&[0x00, 0xAB, 0xff]).as_str(), "00abff");
    }
}
