//! Connection cookies and sequence counters: the two halves of every nonce on a chat
//! connection.
//!
//! Each side of a connection picks a random 16-byte [`Cookie`] and numbers the boxes it
//! sends with its own counter, starting at 1. A nonce is `cookie ‖ counter (u64-le)`.
//! Because the two cookies differ (the client refuses a server that copies its cookie),
//! the two directions can never produce the same nonce, and because a [`Counter`] never
//! hands out a number twice, one direction never repeats itself either.

use std::fmt;

use crate::crypto::fill_random;
use crate::protocol::Nonce;

/// A 16-byte random connection cookie (`CCK` for the client, `SCK` for the server).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cookie([u8; 16]);

impl Cookie {
    /// Number of raw bytes.
    pub const LEN: usize = 16;

    /// A fresh cookie from the operating system's random number generator.
    pub fn random() -> Self {
        let mut bytes = [0u8; 16];
        fill_random(&mut bytes);
        Self(bytes)
    }

    /// Wraps sixteen raw bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The sixteen raw bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The nonce for box number `counter` sent under this cookie: `cookie ‖ counter`
    /// with the counter little-endian.
    pub fn nonce(&self, counter: u64) -> Nonce {
        let mut bytes = [0u8; Nonce::LEN];
        bytes[..Self::LEN].copy_from_slice(&self.0);
        bytes[Self::LEN..].copy_from_slice(&counter.to_le_bytes());
        Nonce::from_bytes(bytes)
    }

    /// Reads the 16 bytes at offset `at`, or `None` when the slice ends before them.
    pub(crate) fn read(bytes: &[u8], at: usize) -> Option<Self> {
        let slice = bytes.get(at..at + Self::LEN)?;
        slice.try_into().ok().map(Self)
    }
}

impl fmt::Debug for Cookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cookie({})", hex::encode(self.0))
    }
}

/// One direction's sequence number: starts at 1, and once `u64::MAX` has been used it
/// refuses to hand out anything more instead of wrapping to a used value.
#[derive(Debug, Clone)]
pub(crate) struct Counter {
    next: Option<u64>,
}

impl Counter {
    /// A counter whose next number is `next`. Every direction starts at 1; a session
    /// starts where its handshake left off.
    pub(crate) const fn starting_at(next: u64) -> Self {
        Self { next: Some(next) }
    }

    /// The number the next box will use, or `None` once exhausted.
    pub(crate) fn peek(&self) -> Option<u64> {
        self.next
    }

    /// Marks the current number as used.
    pub(crate) fn advance(&mut self) {
        self.next = self.next.and_then(|n| n.checked_add(1));
    }

    /// Hands out the current number and marks it used.
    pub(crate) fn take(&mut self) -> Option<u64> {
        let current = self.next?;
        self.advance();
        Some(current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nonce_is_the_cookie_then_the_little_endian_counter() {
        let cookie = Cookie::from_bytes([0xaa; 16]);
        let nonce = cookie.nonce(0x0102_0304_0506_0708);
        assert_eq!(&nonce.as_bytes()[..16], &[0xaa; 16]);
        assert_eq!(&nonce.as_bytes()[16..], &[8, 7, 6, 5, 4, 3, 2, 1]);
    }

    #[test]
    fn a_counter_starts_at_one_and_stops_after_the_last_value() {
        let mut counter = Counter::starting_at(1);
        assert_eq!(counter.take(), Some(1));
        assert_eq!(counter.take(), Some(2));
        let mut last = Counter::starting_at(u64::MAX);
        assert_eq!(last.take(), Some(u64::MAX));
        assert_eq!(last.take(), None);
        assert_eq!(last.peek(), None);
    }

    #[test]
    fn debug_shows_the_cookie_in_hex() {
        let cookie = Cookie::from_bytes([0x0f; 16]);
        assert_eq!(
            format!("{cookie:?}"),
            "Cookie(0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f)"
        );
    }
}
