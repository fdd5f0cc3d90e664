//! The encrypted session after login: framing, sealing and opening of payloads.
//!
//! A frame is `box length (u16-le) ‖ box`, where the box seals one [`Payload`] container
//! under the session key `X25519HSalsa20(TCK, TSK)`. Each direction numbers its boxes
//! with its own cookie and counter; the counters go on from where the handshake left
//! them (see the parent module), never wrap, and never hand out a number twice. A box
//! may be at most [`MAX_FRAME_BOX_LEN`] bytes, on either side.
//!
//! A [`Session`] splits into a [`Sealer`] for what we send and an [`Opener`] for what we
//! receive, so a writer task and a reader task can each own one half without locking.
//! Any error from either half means the connection must be closed: an opener that
//! failed has not moved its counter, but nothing after a bad frame can be trusted.

use super::cookie::Counter;
use super::{Cookie, FrameError, Payload};
use crate::crypto::{SharedKey, TAG_LEN};

/// Size of the length prefix of every frame.
pub const FRAME_PREFIX_LEN: usize = 2;

/// Largest box a frame may carry (the value of the length prefix).
pub const MAX_FRAME_BOX_LEN: usize = 8192;

/// Largest payload container that fits one frame.
pub const MAX_PAYLOAD_LEN: usize = MAX_FRAME_BOX_LEN - TAG_LEN;

/// How many bytes the frame at the start of `buf` occupies, prefix included.
///
/// For byte-stream transports that must cut the stream into frames: `Ok(None)` while
/// fewer than two bytes have arrived, [`FrameError::TooLarge`] as soon as the prefix
/// announces more than the limit (so a reader never buffers an oversized frame).
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, FrameError> {
    match buf {
        [lo, hi, ..] => {
            let declared = usize::from(u16::from_le_bytes([*lo, *hi]));
            if declared > MAX_FRAME_BOX_LEN {
                return Err(FrameError::TooLarge(declared));
            }
            Ok(Some(FRAME_PREFIX_LEN + declared))
        }
        _ => Ok(None),
    }
}

/// Both halves of an established session.
#[derive(Debug)]
pub struct Session {
    sealer: Sealer,
    opener: Opener,
}

impl Session {
    /// Builds a session from the handshake's key, cookies and next counters.
    pub(crate) fn new(
        key: SharedKey,
        own_cookie: Cookie,
        own_next: u64,
        peer_cookie: Cookie,
        peer_next: u64,
    ) -> Self {
        Self {
            sealer: Sealer {
                key: key.clone(),
                cookie: own_cookie,
                counter: Counter::starting_at(own_next),
            },
            opener: Opener {
                key,
                cookie: peer_cookie,
                counter: Counter::starting_at(peer_next),
            },
        }
    }

    /// Separates the sending half from the receiving half.
    pub fn split(self) -> (Sealer, Opener) {
        (self.sealer, self.opener)
    }

    /// Seals one payload; see [`Sealer::seal_frame`].
    pub fn seal_frame(&mut self, payload: &Payload) -> Result<Vec<u8>, FrameError> {
        self.sealer.seal_frame(payload)
    }

    /// Opens one frame; see [`Opener::open_frame`].
    pub fn open_frame(&mut self, frame: &[u8]) -> Result<Payload, FrameError> {
        self.opener.open_frame(frame)
    }
}

/// The sending half of a session: seals payloads into frames with our cookie.
#[derive(Debug)]
pub struct Sealer {
    key: SharedKey,
    cookie: Cookie,
    counter: Counter,
}

impl Sealer {
    /// Encodes and seals `payload` into one frame, using the next sequence number.
    ///
    /// Refuses, without using a sequence number, a payload that cannot be encoded
    /// ([`FrameError::Payload`]) or whose box would exceed the limit
    /// ([`FrameError::TooLarge`]); fails with [`FrameError::CounterExhausted`] after
    /// 2^64 − 1 frames. Cost: one XSalsa20-Poly1305 pass over the payload.
    pub fn seal_frame(&mut self, payload: &Payload) -> Result<Vec<u8>, FrameError> {
        let plain = payload.encode()?;
        let box_len = plain.len() + TAG_LEN;
        let prefix = u16::try_from(box_len)
            .ok()
            .filter(|_| box_len <= MAX_FRAME_BOX_LEN)
            .ok_or(FrameError::TooLarge(box_len))?;
        let counter = self.counter.take().ok_or(FrameError::CounterExhausted)?;
        let boxed = self.key.seal(&self.cookie.nonce(counter), &plain);
        let mut frame = Vec::with_capacity(FRAME_PREFIX_LEN + box_len);
        frame.extend_from_slice(&prefix.to_le_bytes());
        frame.extend_from_slice(&boxed);
        Ok(frame)
    }

    /// The sequence number the next frame will use, or `None` once exhausted.
    pub fn next_sequence(&self) -> Option<u64> {
        self.counter.peek()
    }
}

/// The receiving half of a session: opens frames sealed with the peer's cookie.
#[derive(Debug)]
pub struct Opener {
    key: SharedKey,
    cookie: Cookie,
    counter: Counter,
}

impl Opener {
    /// Opens one whole frame (prefix and box) and decodes its payload.
    ///
    /// The box must open under the next expected sequence number, so a replayed,
    /// reordered, dropped-before or mirrored frame fails with [`FrameError::Decrypt`].
    /// A prefix over the limit fails with [`FrameError::TooLarge`] before any
    /// decryption. The counter moves only when the box opens; a payload that then does
    /// not decode still used its number. Cost: one XSalsa20-Poly1305 pass.
    pub fn open_frame(&mut self, frame: &[u8]) -> Result<Payload, FrameError> {
        let total = frame_len(frame)?.ok_or(FrameError::Truncated(frame.len()))?;
        let boxed = &frame[FRAME_PREFIX_LEN..];
        if frame.len() != total {
            return Err(FrameError::LengthMismatch {
                declared: total - FRAME_PREFIX_LEN,
                got: boxed.len(),
            });
        }
        let counter = self.counter.peek().ok_or(FrameError::CounterExhausted)?;
        let plain = self
            .key
            .open(&self.cookie.nonce(counter), boxed)
            .map_err(|_| FrameError::Decrypt)?;
        self.counter.advance();
        Ok(Payload::decode(&plain)?)
    }

    /// The sequence number the next frame must carry, or `None` once exhausted.
    pub fn next_sequence(&self) -> Option<u64> {
        self.counter.peek()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::SecretKey;

    fn pair(next: u64) -> (Sealer, Opener) {
        let key =
            SharedKey::new(&SecretKey::generate(), &SecretKey::generate().public_key()).unwrap();
        let (a, b) = (Cookie::random(), Cookie::random());
        let (sealer, _) = Session::new(key.clone(), a, next, b, 1).split();
        let (_, opener) = Session::new(key, b, 1, a, next).split();
        (sealer, opener)
    }

    #[test]
    fn the_last_sequence_number_is_used_once_and_then_refused() {
        let (mut sealer, mut opener) = pair(u64::MAX);
        let frame = sealer.seal_frame(&Payload::QueueSendComplete).unwrap();
        assert_eq!(opener.open_frame(&frame), Ok(Payload::QueueSendComplete));
        assert_eq!(
            sealer.seal_frame(&Payload::QueueSendComplete),
            Err(FrameError::CounterExhausted)
        );
        assert_eq!(opener.open_frame(&frame), Err(FrameError::CounterExhausted));
    }

    #[test]
    fn a_frame_is_the_little_endian_box_length_then_the_box() {
        let (mut sealer, _) = pair(1);
        let frame = sealer
            .seal_frame(&Payload::EchoRequest(vec![1; 300]))
            .unwrap();
        let box_len = 4 + 300 + 16;
        assert_eq!(frame.len(), 2 + box_len);
        assert_eq!(&frame[..2], &u16::try_from(box_len).unwrap().to_le_bytes());
        assert_eq!(frame_len(&frame), Ok(Some(frame.len())));
        assert_eq!(frame_len(&frame[..1]), Ok(None));
    }

    #[test]
    fn short_and_mismatched_frames_fail_without_moving_the_counter() {
        let (mut sealer, mut opener) = pair(1);
        let frame = sealer.seal_frame(&Payload::UnblockIncoming).unwrap();
        assert_eq!(
            opener.open_frame(&frame[..1]),
            Err(FrameError::Truncated(1))
        );
        assert!(matches!(
            opener.open_frame(&frame[..frame.len() - 1]),
            Err(FrameError::LengthMismatch { .. })
        ));
        assert_eq!(opener.next_sequence(), Some(1));
        assert_eq!(opener.open_frame(&frame), Ok(Payload::UnblockIncoming));
        assert_eq!(opener.next_sequence(), Some(2));
    }
}
