//! Invite codes: what an operator hands a person so that one device may enrol.
//!
//! A code is 20 characters of Crockford's base32 alphabet (100 bits from the operating
//! system's random number generator), shown in groups of four: `7KQ2-MX9D-…`. When read,
//! dashes and spaces are ignored, lower case is taken as upper case, and the letters people
//! confuse with digits (`O`, `I`, `L`) are read as the digits, so a code read aloud or
//! typed by hand still works. The server keeps only a keyed hash of each code.
//!
//! Like every secret here, a code is wiped on drop and prints as `InviteCode(***)`.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::ParseError;
use crate::crypto::fill_random;

/// Crockford's base32: digits and upper-case letters without I, L, O and U.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A one-time invite code, in its canonical form (20 characters, no dashes).
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct InviteCode([u8; InviteCode::LEN]);

impl InviteCode {
    /// Characters in a code, dashes aside.
    pub const LEN: usize = 20;

    /// A fresh code. Each character is uniform: 256 is a multiple of 32.
    pub fn generate() -> Self {
        let mut bytes = [0u8; Self::LEN];
        fill_random(&mut bytes);
        let mut code = [0u8; Self::LEN];
        for (c, b) in code.iter_mut().zip(bytes.iter()) {
            *c = ALPHABET[usize::from(b % 32)];
        }
        bytes.zeroize();
        Self(code)
    }

    /// Reads a code as a person may type it. The error never repeats the input.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let mut code = [0u8; Self::LEN];
        let mut len = 0;
        for b in s.bytes().filter(|b| !matches!(b, b'-' | b' ' | b'\t')) {
            let c = match b.to_ascii_uppercase() {
                b'O' => b'0',
                b'I' | b'L' => b'1',
                c if ALPHABET.contains(&c) => c,
                _ => return Err(ParseError::InviteCode),
            };
            if len == Self::LEN {
                return Err(ParseError::InviteCode);
            }
            code[len] = c;
            len += 1;
        }
        if len == Self::LEN {
            Ok(Self(code))
        } else {
            Err(ParseError::InviteCode)
        }
    }

    /// The canonical form, as hashed: 20 characters without dashes.
    pub fn canonical(&self) -> &str {
        std::str::from_utf8(&self.0).expect("the alphabet is ASCII")
    }

    /// The form to show a person: groups of four joined by dashes.
    pub fn display(&self) -> String {
        self.0
            .chunks(4)
            .map(|group| std::str::from_utf8(group).expect("the alphabet is ASCII"))
            .collect::<Vec<_>>()
            .join("-")
    }
}

impl fmt::Debug for InviteCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InviteCode(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_code_reads_back_from_its_display_form() {
        let code = InviteCode::generate();
        let shown = code.display();
        assert_eq!(shown.len(), 24, "{shown}");
        assert_eq!(shown.matches('-').count(), 4);
        assert_eq!(InviteCode::parse(&shown).unwrap(), code);
        assert_eq!(InviteCode::parse(code.canonical()).unwrap(), code);
        assert_ne!(InviteCode::generate(), code);
    }

    #[test]
    fn codes_typed_by_hand_are_read_as_meant() {
        let code = InviteCode::parse("7kq2-mx9d 0a1b-c2d3-e4f5").unwrap();
        assert_eq!(code.canonical(), "7KQ2MX9D0A1BC2D3E4F5");
        let confused = InviteCode::parse("7KQ2-MX9D-OAIB-C2D3-E4F5").unwrap();
        assert_eq!(confused, code);
        assert_eq!(InviteCode::parse("7KQ2-MX9D-0ALB-C2D3-E4F5").unwrap(), code);
    }

    #[test]
    fn malformed_codes_are_refused_without_echo() {
        for bad in [
            "",
            "7KQ2-MX9D",
            "7KQ2-MX9D-0A1B-C2D3-E4F5-Z",
            "7KQ2-MX9D-0A1B-C2D3-E4FU",
            "7KQ2-MX9D-0A1B-C2D3-E4F!",
        ] {
            let err = InviteCode::parse(bad).unwrap_err();
            assert_eq!(err, ParseError::InviteCode);
            assert!(!err.to_string().contains("E4F"), "{err}");
        }
        assert_eq!(format!("{:?}", InviteCode::generate()), "InviteCode(***)");
    }
}
