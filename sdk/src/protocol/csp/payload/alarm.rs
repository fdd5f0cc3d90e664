//! The alarm frames: builders and readers of [`Payload::ALARM_RING`],
//! [`Payload::ALARM_ANSWER`] and [`Payload::ALARM_STOP`], whose constants document their
//! layouts. Like the other Tocsin extensions they travel as [`Payload::Unknown`], and a
//! reader returns `None` for any other payload or a malformed one: a short or long data
//! part, a byte that is none of its word's, a note that is not UTF-8 or too long.

use super::{utf8, Payload};
use crate::protocol::{Answer, IdentityId, MessageId, Priority, StopReason};

/// Longest note of an alarm answer, in bytes of UTF-8: a few words for a dispatcher
/// ("on my way, 10 min"), not a message; a longer reply is an ordinary message.
pub const ALARM_NOTE_MAX: usize = 200;

/// The ETA that stands for none on the wire.
const NO_ETA: u16 = u16::MAX;

/// One ring of an alarm, as read from a [`Payload::ALARM_RING`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlarmRing {
    /// The gateway ID that triggered the alarm.
    pub gateway: IdentityId,
    /// The alarm's ID: the ID of the chat message that carries it.
    pub message_id: MessageId,
    /// 0 right before the alarm's message, then 1, 2, … for each repeat.
    pub ring: u16,
    /// How urgent the alarm is.
    pub priority: Priority,
    /// The tier this recipient is alarmed in, 1 for the first.
    pub tier: u8,
}

/// A device's answer to an alarm, as read from a [`Payload::ALARM_ANSWER`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmAnswer {
    /// The gateway ID that triggered the alarm.
    pub gateway: IdentityId,
    /// The alarm's ID.
    pub message_id: MessageId,
    /// Coming or not.
    pub answer: Answer,
    /// Minutes until the recipient arrives, if they said.
    pub eta_minutes: Option<u16>,
    /// A short note, at most [`ALARM_NOTE_MAX`] bytes; empty for none.
    pub note: String,
}

/// The end of an alarm's ringing, as read from a [`Payload::ALARM_STOP`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlarmStop {
    /// The gateway ID that triggered the alarm.
    pub gateway: IdentityId,
    /// The alarm's ID.
    pub message_id: MessageId,
    /// Why the ringing stopped.
    pub reason: StopReason,
    /// What this recipient answered, on any of their devices; `None` if nothing.
    pub answer: Option<Answer>,
}

/// Why an alarm answer cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AlarmAnswerError {
    /// The note is longer than [`ALARM_NOTE_MAX`] bytes of UTF-8.
    #[error("an alarm answer's note must be at most 200 bytes of UTF-8, got {0}")]
    NoteTooLong(usize),
    /// An ETA of `0xffff` minutes, the value that means none on the wire.
    #[error("an alarm answer's ETA must be below 65535 minutes (that value means none)")]
    EtaReserved,
}

impl Payload {
    /// A [`Payload::ALARM_RING`]: ring number `ring` of the alarm `message_id` from
    /// `gateway`, for a recipient of tier `tier`.
    pub fn alarm_ring(
        gateway: IdentityId,
        message_id: MessageId,
        ring: u16,
        priority: Priority,
        tier: u8,
    ) -> Self {
        let [lo, hi] = ring.to_le_bytes();
        let tail = [lo, hi, priority.to_byte(), tier];
        Self::about_message(Self::ALARM_RING, gateway, message_id, &tail)
    }

    /// The ring of a [`Payload::ALARM_RING`]; `None` for any other payload or a malformed
    /// one (an unknown priority byte included).
    pub fn as_alarm_ring(&self) -> Option<AlarmRing> {
        let (gateway, message_id, tail) = self.about_which_message(Self::ALARM_RING)?;
        let &[lo, hi, priority, tier] = tail else {
            return None;
        };
        Some(AlarmRing {
            gateway,
            message_id,
            ring: u16::from_le_bytes([lo, hi]),
            priority: Priority::from_byte(priority)?,
            tier,
        })
    }

    /// A [`Payload::ALARM_ANSWER`] to the alarm `message_id` from `gateway`; `note` may be
    /// empty.
    ///
    /// # Errors
    ///
    /// [`AlarmAnswerError::NoteTooLong`] for a note over [`ALARM_NOTE_MAX`] bytes, and
    /// [`AlarmAnswerError::EtaReserved`] for `Some(0xffff)`, which would read as no ETA.
    pub fn alarm_answer(
        gateway: IdentityId,
        message_id: MessageId,
        answer: Answer,
        eta_minutes: Option<u16>,
        note: &str,
    ) -> Result<Self, AlarmAnswerError> {
        if note.len() > ALARM_NOTE_MAX {
            return Err(AlarmAnswerError::NoteTooLong(note.len()));
        }
        let eta = match eta_minutes {
            Some(NO_ETA) => return Err(AlarmAnswerError::EtaReserved),
            Some(minutes) => minutes,
            None => NO_ETA,
        };
        let mut tail = Vec::with_capacity(3 + note.len());
        tail.push(answer.to_byte());
        tail.extend_from_slice(&eta.to_le_bytes());
        tail.extend_from_slice(note.as_bytes());
        Ok(Self::about_message(
            Self::ALARM_ANSWER,
            gateway,
            message_id,
            &tail,
        ))
    }

    /// The answer of a [`Payload::ALARM_ANSWER`]; `None` for any other payload or a
    /// malformed one (an unknown answer byte, a note that is not UTF-8 or is over
    /// [`ALARM_NOTE_MAX`] bytes).
    pub fn as_alarm_answer(&self) -> Option<AlarmAnswer> {
        let (gateway, message_id, tail) = self.about_which_message(Self::ALARM_ANSWER)?;
        let &[answer, lo, hi, ref note @ ..] = tail else {
            return None;
        };
        if note.len() > ALARM_NOTE_MAX {
            return None;
        }
        let eta = u16::from_le_bytes([lo, hi]);
        Some(AlarmAnswer {
            gateway,
            message_id,
            answer: Answer::from_byte(answer)?,
            eta_minutes: (eta != NO_ETA).then_some(eta),
            note: utf8("alarm answer note", note).ok()?,
        })
    }

    /// A [`Payload::ALARM_STOP`] for the alarm `message_id` from `gateway`, with what
    /// this recipient answered, if anything.
    pub fn alarm_stop(
        gateway: IdentityId,
        message_id: MessageId,
        reason: StopReason,
        answer: Option<Answer>,
    ) -> Self {
        let answer = answer.map_or(0, Answer::to_byte);
        Self::about_message(
            Self::ALARM_STOP,
            gateway,
            message_id,
            &[reason.to_byte(), answer],
        )
    }

    /// The stop of a [`Payload::ALARM_STOP`]; `None` for any other payload or a malformed
    /// one (an unknown reason or answer byte included).
    pub fn as_alarm_stop(&self) -> Option<AlarmStop> {
        let (gateway, message_id, tail) = self.about_which_message(Self::ALARM_STOP)?;
        let &[reason, answer] = tail else {
            return None;
        };
        let answer = match answer {
            0 => None,
            byte => Some(Answer::from_byte(byte)?),
        };
        Some(AlarmStop {
            gateway,
            message_id,
            reason: StopReason::from_byte(reason)?,
            answer,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway() -> IdentityId {
        IdentityId::parse("*ALERTS1").unwrap()
    }

    fn alarm_id() -> MessageId {
        MessageId::from_bytes([1, 2, 3, 4, 5, 6, 7, 8])
    }

    /// Type, reserved bytes, gateway and message ID: what every alarm frame starts with.
    fn head(kind: u8) -> Vec<u8> {
        let mut bytes = vec![kind, 0, 0, 0];
        bytes.extend_from_slice(b"*ALERTS1");
        bytes.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        bytes
    }

    fn with(kind: u8, tail: &[u8]) -> Vec<u8> {
        let mut bytes = head(kind);
        bytes.extend_from_slice(tail);
        bytes
    }

    /// The payload `bytes` decode to, which must be an `Unknown` one.
    fn decoded(bytes: &[u8]) -> Payload {
        let payload = Payload::decode(bytes).unwrap();
        assert!(matches!(payload, Payload::Unknown { .. }), "{payload:?}");
        payload
    }

    #[test]
    fn a_ring_is_laid_out_as_documented_and_reads_back() {
        let ring = Payload::alarm_ring(gateway(), alarm_id(), 0x1234, Priority::Critical, 3);
        let bytes = ring.encode().unwrap();
        assert_eq!(bytes, with(0x43, &[0x34, 0x12, 2, 3]));
        assert_eq!(
            decoded(&bytes).as_alarm_ring(),
            Some(AlarmRing {
                gateway: gateway(),
                message_id: alarm_id(),
                ring: 0x1234,
                priority: Priority::Critical,
                tier: 3,
            })
        );
        let first = Payload::alarm_ring(gateway(), alarm_id(), 0, Priority::Normal, 1);
        assert_eq!(first.encode().unwrap(), with(0x43, &[0, 0, 0, 1]));
    }

    #[test]
    fn an_answer_is_laid_out_as_documented_and_reads_back() {
        let answer =
            Payload::alarm_answer(gateway(), alarm_id(), Answer::Coming, Some(5), "on my way")
                .unwrap();
        let bytes = answer.encode().unwrap();
        let mut tail = vec![1, 5, 0];
        tail.extend_from_slice(b"on my way");
        assert_eq!(bytes, with(0x44, &tail));
        assert_eq!(
            decoded(&bytes).as_alarm_answer(),
            Some(AlarmAnswer {
                gateway: gateway(),
                message_id: alarm_id(),
                answer: Answer::Coming,
                eta_minutes: Some(5),
                note: "on my way".into(),
            })
        );

        let bare =
            Payload::alarm_answer(gateway(), alarm_id(), Answer::NotComing, None, "").unwrap();
        let bytes = bare.encode().unwrap();
        assert_eq!(bytes, with(0x44, &[2, 0xff, 0xff]));
        let read = decoded(&bytes).as_alarm_answer().unwrap();
        assert_eq!((read.answer, read.eta_minutes), (Answer::NotComing, None));
        assert_eq!(read.note, "");

        let late =
            Payload::alarm_answer(gateway(), alarm_id(), Answer::Coming, Some(0xfffe), "").unwrap();
        let read = late.as_alarm_answer().unwrap();
        assert_eq!(read.eta_minutes, Some(0xfffe));
    }

    #[test]
    fn an_answer_refuses_a_long_note_or_the_eta_that_means_none() {
        // 200 bytes of UTF-8 (100 two-byte characters) fit; one byte more does not.
        let full = "é".repeat(100);
        let fits = Payload::alarm_answer(gateway(), alarm_id(), Answer::Coming, None, &full);
        assert_eq!(fits.unwrap().as_alarm_answer().unwrap().note, full);
        let over = format!("{full}!");
        assert_eq!(
            Payload::alarm_answer(gateway(), alarm_id(), Answer::Coming, None, &over),
            Err(AlarmAnswerError::NoteTooLong(201))
        );
        assert_eq!(
            Payload::alarm_answer(gateway(), alarm_id(), Answer::Coming, Some(0xffff), ""),
            Err(AlarmAnswerError::EtaReserved)
        );
    }

    #[test]
    fn a_stop_is_laid_out_as_documented_and_reads_back() {
        let stop = Payload::alarm_stop(
            gateway(),
            alarm_id(),
            StopReason::Acknowledged,
            Some(Answer::NotComing),
        );
        let bytes = stop.encode().unwrap();
        assert_eq!(bytes, with(0x45, &[2, 2]));
        assert_eq!(
            decoded(&bytes).as_alarm_stop(),
            Some(AlarmStop {
                gateway: gateway(),
                message_id: alarm_id(),
                reason: StopReason::Acknowledged,
                answer: Some(Answer::NotComing),
            })
        );
        let unanswered = Payload::alarm_stop(gateway(), alarm_id(), StopReason::Expired, None);
        let bytes = unanswered.encode().unwrap();
        assert_eq!(bytes, with(0x45, &[4, 0]));
        let read = decoded(&bytes).as_alarm_stop().unwrap();
        assert_eq!((read.reason, read.answer), (StopReason::Expired, None));
    }

    #[test]
    fn malformed_alarm_frames_read_as_none() {
        let mut bad_utf8 = vec![1, 0xff, 0xff];
        bad_utf8.extend_from_slice(&[0xc3, 0x28]);
        let mut long_note = vec![1, 0xff, 0xff];
        long_note.extend_from_slice(&[b'x'; ALARM_NOTE_MAX + 1]);
        let cases: [(u8, &[u8]); 14] = [
            (0x43, &[0, 0, 0]),       // short
            (0x43, &[0, 0, 0, 1, 9]), // long
            (0x43, &[0, 0, 3, 1]),    // no such priority
            (0x44, &[1, 0xff]),       // short
            (0x44, &[0, 0xff, 0xff]), // answer byte 0
            (0x44, &[3, 0xff, 0xff]), // no such answer
            (0x44, &bad_utf8),        // note not UTF-8
            (0x44, &long_note),       // note too long
            (0x45, &[1]),             // short
            (0x45, &[1, 0, 0]),       // long
            (0x45, &[0, 0]),          // reason byte 0
            (0x45, &[5, 0]),          // no such reason
            (0x45, &[1, 3]),          // no such answer
            (0x45, &[]),              // no tail at all
        ];
        for (kind, tail) in cases {
            let payload = decoded(&with(kind, tail));
            assert_eq!(payload.as_alarm_ring(), None, "{kind:#x} {tail:?}");
            assert_eq!(payload.as_alarm_answer(), None, "{kind:#x} {tail:?}");
            assert_eq!(payload.as_alarm_stop(), None, "{kind:#x} {tail:?}");
        }
        // Too short to hold the gateway and the message ID.
        let cut = decoded(&head(0x43)[..12]);
        assert_eq!(cut.as_alarm_ring(), None);
        // A gateway field that is no identity.
        let mut bytes = with(0x45, &[1, 0]);
        bytes[4] = b'a';
        assert_eq!(decoded(&bytes).as_alarm_stop(), None);
    }

    #[test]
    fn each_alarm_frame_reads_only_as_itself() {
        let ring = Payload::alarm_ring(gateway(), alarm_id(), 1, Priority::High, 1);
        let answer =
            Payload::alarm_answer(gateway(), alarm_id(), Answer::Coming, None, "").unwrap();
        let stop = Payload::alarm_stop(gateway(), alarm_id(), StopReason::Answered, None);
        assert!(ring.as_alarm_answer().is_none() && ring.as_alarm_stop().is_none());
        assert!(answer.as_alarm_ring().is_none() && answer.as_alarm_stop().is_none());
        assert!(stop.as_alarm_ring().is_none() && stop.as_alarm_answer().is_none());
        let expires = Payload::message_expires(gateway(), alarm_id(), 1_800_000_000);
        assert_eq!(expires.as_alarm_ring(), None);
        assert_eq!(ring.as_message_expires(), None);
        let ack = Payload::ServerAck {
            receiver: gateway(),
            message_id: alarm_id(),
        };
        assert_eq!(ack.as_alarm_stop(), None);
    }

    #[test]
    fn alarm_kinds_are_extensions_not_known_kinds() {
        for kind in [
            Payload::ALARM_RING,
            Payload::ALARM_ANSWER,
            Payload::ALARM_STOP,
        ] {
            assert!(!Payload::KNOWN_KINDS.contains(&kind), "{kind:#x}");
        }
        assert_eq!(
            [
                Payload::ALARM_RING,
                Payload::ALARM_ANSWER,
                Payload::ALARM_STOP
            ],
            [0x43, 0x44, 0x45]
        );
        // Read back by a peer that knows nothing of alarms, it is kept as it came.
        let stop = Payload::alarm_stop(gateway(), alarm_id(), StopReason::Resolved, None);
        let bytes = stop.encode().unwrap();
        assert_eq!(Payload::decode(&bytes), Ok(stop.clone()));
        assert_eq!(stop.kind(), 0x45);
    }
}
