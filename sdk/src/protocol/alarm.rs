//! Alarms: the closed sets of words an alarm is described with, on every channel.
//!
//! A gateway ID triggers an alarm to tiers of recipients. Each recipient's device gets
//! one ordinary chat message whose message ID is the alarm's ID (so an alarm has no ID
//! type of its own: it is a [`MessageId`](super::MessageId)); the chat server then rings
//! the device, takes its [`Answer`] and stops the ringing with a [`StopReason`]. The
//! frames that carry these are in [`csp`](super::csp) (`ALARM_RING`, `ALARM_ANSWER`,
//! `ALARM_STOP`), the events that report them in the status webhook.
//!
//! Each word has one name (JSON, text) and one byte (chat frames). Bytes not listed read
//! as `None` and names not listed are refused, so a value past the edge is always one of
//! the variants.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::ParseError;

/// How urgent an alarm is; the device rings louder and more insistently the higher it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// `normal`, byte 0.
    Normal,
    /// `high`, byte 1.
    High,
    /// `critical`, byte 2: meant to break through a device's do-not-disturb.
    Critical,
}

impl Priority {
    /// Every priority, lowest first.
    pub const ALL: [Self; 3] = [Self::Normal, Self::High, Self::Critical];

    /// The name on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    /// Reads a name exactly as [`Priority::as_str`] writes it (no case folding).
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or(ParseError::NotOneOf {
                what: "alarm priority",
                allowed: "normal, high, critical",
            })
    }

    /// The byte in chat frames.
    pub const fn to_byte(self) -> u8 {
        match self {
            Self::Normal => 0,
            Self::High => 1,
            Self::Critical => 2,
        }
    }

    /// Reads a byte written by [`Priority::to_byte`]; `None` for any other.
    pub const fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(Self::Normal),
            1 => Some(Self::High),
            2 => Some(Self::Critical),
            _ => None,
        }
    }
}

/// What a recipient answers to an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// `coming`, byte 1.
    Coming,
    /// `not_coming`, byte 2.
    NotComing,
}

impl Answer {
    /// Every answer.
    pub const ALL: [Self; 2] = [Self::Coming, Self::NotComing];

    /// The name on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Coming => "coming",
            Self::NotComing => "not_coming",
        }
    }

    /// Reads a name exactly as [`Answer::as_str`] writes it.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or(ParseError::NotOneOf {
                what: "alarm answer",
                allowed: "coming, not_coming",
            })
    }

    /// The byte in chat frames. Never 0: a frame that may carry no answer writes 0 for
    /// none.
    pub const fn to_byte(self) -> u8 {
        match self {
            Self::Coming => 1,
            Self::NotComing => 2,
        }
    }

    /// Reads a byte written by [`Answer::to_byte`]; `None` for any other, 0 included.
    pub const fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Self::Coming),
            2 => Some(Self::NotComing),
            _ => None,
        }
    }
}

/// Why the server stopped a device's ringing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StopReason {
    /// `answered`, byte 1: this recipient answered (on this device or another of theirs).
    Answered,
    /// `acknowledged`, byte 2: enough recipients are coming; the others need not answer.
    Acknowledged,
    /// `resolved`, byte 3: the gateway ID declared the alarm over.
    Resolved,
    /// `expired`, byte 4: the alarm ran out of time.
    Expired,
}

impl StopReason {
    /// Every reason, in byte order.
    pub const ALL: [Self; 4] = [
        Self::Answered,
        Self::Acknowledged,
        Self::Resolved,
        Self::Expired,
    ];

    /// The name on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
            Self::Expired => "expired",
        }
    }

    /// Reads a name exactly as [`StopReason::as_str`] writes it.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or(ParseError::NotOneOf {
                what: "alarm stop reason",
                allowed: "answered, acknowledged, resolved, expired",
            })
    }

    /// The byte in chat frames, 1 to 4.
    pub const fn to_byte(self) -> u8 {
        match self {
            Self::Answered => 1,
            Self::Acknowledged => 2,
            Self::Resolved => 3,
            Self::Expired => 4,
        }
    }

    /// Reads a byte written by [`StopReason::to_byte`]; `None` for any other.
    pub const fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Self::Answered),
            2 => Some(Self::Acknowledged),
            3 => Some(Self::Resolved),
            4 => Some(Self::Expired),
            _ => None,
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Priority {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Answer {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StopReason {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_have_the_documented_names_and_bytes() {
        let table = [
            (Priority::Normal, "normal", 0),
            (Priority::High, "high", 1),
            (Priority::Critical, "critical", 2),
        ];
        for (priority, name, byte) in table {
            assert_eq!(priority.as_str(), name);
            assert_eq!(priority.to_string(), name);
            assert_eq!(Priority::parse(name), Ok(priority));
            assert_eq!(priority.to_byte(), byte);
            assert_eq!(Priority::from_byte(byte), Some(priority));
            assert_eq!(
                serde_json::to_string(&priority).unwrap(),
                format!("\"{name}\"")
            );
            let read: Priority = serde_json::from_str(&format!("\"{name}\"")).unwrap();
            assert_eq!(read, priority);
        }
        assert!(Priority::Normal < Priority::High && Priority::High < Priority::Critical);
    }

    #[test]
    fn answers_have_the_documented_names_and_bytes() {
        let table = [
            (Answer::Coming, "coming", 1),
            (Answer::NotComing, "not_coming", 2),
        ];
        for (answer, name, byte) in table {
            assert_eq!(answer.as_str(), name);
            assert_eq!(name.parse::<Answer>(), Ok(answer));
            assert_eq!(answer.to_byte(), byte);
            assert_eq!(Answer::from_byte(byte), Some(answer));
            assert_eq!(
                serde_json::to_string(&answer).unwrap(),
                format!("\"{name}\"")
            );
            let read: Answer = serde_json::from_str(&format!("\"{name}\"")).unwrap();
            assert_eq!(read, answer);
        }
    }

    #[test]
    fn stop_reasons_have_the_documented_names_and_bytes() {
        let table = [
            (StopReason::Answered, "answered", 1),
            (StopReason::Acknowledged, "acknowledged", 2),
            (StopReason::Resolved, "resolved", 3),
            (StopReason::Expired, "expired", 4),
        ];
        for (reason, name, byte) in table {
            assert_eq!(reason.as_str(), name);
            assert_eq!(StopReason::parse(name), Ok(reason));
            assert_eq!(reason.to_byte(), byte);
            assert_eq!(StopReason::from_byte(byte), Some(reason));
            assert_eq!(
                serde_json::to_string(&reason).unwrap(),
                format!("\"{name}\"")
            );
            let read: StopReason = serde_json::from_str(&format!("\"{name}\"")).unwrap();
            assert_eq!(read, reason);
        }
    }

    #[test]
    fn other_bytes_and_names_are_refused() {
        for byte in 3..=u8::MAX {
            assert_eq!(Priority::from_byte(byte), None, "{byte}");
        }
        for byte in (0..=u8::MAX).filter(|b| !(1..=2).contains(b)) {
            assert_eq!(Answer::from_byte(byte), None, "{byte}");
        }
        for byte in (0..=u8::MAX).filter(|b| !(1..=4).contains(b)) {
            assert_eq!(StopReason::from_byte(byte), None, "{byte}");
        }
        for bad in ["", "Normal", "HIGH", " critical", "urgent"] {
            assert!(Priority::parse(bad).is_err(), "{bad:?}");
            assert!(serde_json::from_str::<Priority>(&format!("{bad:?}")).is_err());
        }
        for bad in ["", "Coming", "not-coming", "notcoming", "none"] {
            assert!(Answer::parse(bad).is_err(), "{bad:?}");
            assert!(serde_json::from_str::<Answer>(&format!("{bad:?}")).is_err());
        }
        for bad in ["", "Answered", "stopped", "expired "] {
            assert!(StopReason::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            Priority::parse("urgent").unwrap_err().to_string(),
            "alarm priority must be one of normal, high, critical"
        );
    }
}
