//! The status webhook: what became of a gateway ID's messages, POSTed as JSON to the
//! gateway ID's status URL, signed with a signing secret of its own (not the API secret).
//!
//! Each request carries one event as a JSON object (`application/json`), and the header
//!
//! ```text
//! X-Tocsin-Signature: t=<unix seconds>,v1=<64 lowercase hex>
//! ```
//!
//! where `v1` is HMAC-SHA256, keyed with the UTF-8 bytes of the whole signing secret
//! (`tss_` and 64 hex characters), over `t`, a full stop, and the body exactly as sent.
//! `t` is the time of the attempt, so a retry hours later is still fresh; a receiver
//! refuses a `t` too far from its clock and drops an event whose `id` it has taken
//! before (delivery is at least once).
//!
//! Besides what became of messages (`message.*`), events report the course of an alarm
//! (`alarm.*`): triggered, escalated to a further tier, answered by a recipient,
//! acknowledged (enough are coming), and resolved or expired.
//!
//! The Threema-compatible callback URL is another channel: it keeps receiving device
//! replies and receipts as form posts, MAC'd with the API secret.

use std::fmt;

use hmac::Mac;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::hash::{hmac_sha256, new_hmac};
use super::{GatewayId, IdentityId, MessageId, ParseError};
use crate::crypto::fill_random;

mod alarm;

pub use alarm::{AlarmAcknowledged, AlarmAnswered, AlarmEnded, AlarmEscalated, AlarmTriggered};

/// The header that carries the signature.
pub const STATUS_SIGNATURE_HEADER: &str = "X-Tocsin-Signature";

/// The signing secret of a gateway ID's status webhook.
///
/// Wiped on drop, printed as `StatusSecret(***)`, compared in constant time.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct StatusSecret(String);

impl StatusSecret {
    /// What every signing secret starts with (so it is not mistaken for an API secret).
    pub const PREFIX: &'static str = "tss_";

    /// A fresh secret: the prefix and 32 random bytes in hex.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        fill_random(&mut bytes);
        let secret = Self(format!("{}{}", Self::PREFIX, hex::encode(bytes)));
        bytes.zeroize();
        secret
    }

    /// Accepts `tss_` followed by 64 hex characters (either case, kept as given).
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let hex_part = s
            .strip_prefix(Self::PREFIX)
            .ok_or(ParseError::StatusSecret)?;
        if hex_part.len() != 64 || !hex_part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ParseError::StatusSecret);
        }
        Ok(Self(s.to_owned()))
    }

    /// The secret itself, for storing it or showing it once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for StatusSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StatusSecret(***)")
    }
}

impl PartialEq for StatusSecret {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for StatusSecret {}

/// The `X-Tocsin-Signature` value for `body` sent at `t` (unix seconds).
pub fn status_signature(secret: &StatusSecret, t: u64, body: &[u8]) -> String {
    let t = t.to_string();
    let mac = hmac_sha256(secret.expose().as_bytes(), &[t.as_bytes(), b".", body]);
    format!("t={t},v1={}", hex::encode(mac))
}

/// Why a signature header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `t=` or no `v1=` of the right form.
    #[error("the signature header is not of the form t=<unix seconds>,v1=<64 hex>")]
    Malformed,
    /// No `v1` value matches the body.
    #[error("the signature does not match the body")]
    Mismatch,
}

/// Checks `header` against `body` and returns its `t`. Several `v1=` values are allowed
/// (one may be signed with the secret being rotated out); one matching is enough. The
/// comparison takes constant time. The caller judges `t` against its clock.
pub fn verify_status_signature(
    secret: &StatusSecret,
    header: &str,
    body: &[u8],
) -> Result<u64, SignatureError> {
    let mut t: Option<&str> = None;
    let mut macs: Vec<[u8; 32]> = Vec::new();
    for part in header.split(',').map(str::trim) {
        match part.split_once('=') {
            Some(("t", value)) if t.is_none() => t = Some(value),
            Some(("v1", value)) => {
                let mut mac = [0u8; 32];
                if value.len() != 64 || hex::decode_to_slice(value, &mut mac).is_err() {
                    return Err(SignatureError::Malformed);
                }
                macs.push(mac);
            }
            // Other schemes may come later; an unknown one is not ours to judge.
            Some(_) => {}
            None => return Err(SignatureError::Malformed),
        }
    }
    let t_text = t.ok_or(SignatureError::Malformed)?;
    let seconds: u64 = match t_text.parse() {
        Ok(n) if t_text.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => return Err(SignatureError::Malformed),
    };
    if macs.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let matched = macs.iter().any(|given| {
        let mut mac = new_hmac(secret.expose().as_bytes());
        mac.update(t_text.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.verify_slice(given).is_ok()
    });
    if matched {
        Ok(seconds)
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// One event of the status webhook, as the JSON body of one request.
///
/// Every event has `id` (32 hex characters, the same on every retry: drop one taken
/// before), `type`, and `gatewayId`. Times are unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusEvent {
    pub id: String,
    pub gateway_id: GatewayId,
    #[serde(flatten)]
    pub kind: StatusKind,
}

/// What an event reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum StatusKind {
    /// The first device of the recipient has the message.
    #[serde(rename = "message.delivered")]
    Delivered(MessageReport),
    /// The recipient read it (basic mode: the server opens the receipts).
    #[serde(rename = "message.read")]
    Read(MessageReport),
    /// The recipient acknowledged it (basic mode).
    #[serde(rename = "message.acknowledged")]
    Acknowledged(MessageReport),
    /// The recipient declined it (basic mode).
    #[serde(rename = "message.declined")]
    Declined(MessageReport),
    /// Its time to live ran out before every device had it; it was deleted.
    #[serde(rename = "message.expired")]
    Expired(MessageReport),
    /// The gateway ID triggered an alarm; its first tier is being alarmed.
    #[serde(rename = "alarm.triggered")]
    AlarmTriggered(AlarmTriggered),
    /// The alarm reached a further tier of recipients.
    #[serde(rename = "alarm.escalated")]
    AlarmEscalated(AlarmEscalated),
    /// A recipient answered the alarm.
    #[serde(rename = "alarm.answered")]
    AlarmAnswered(AlarmAnswered),
    /// Enough recipients are coming; the others are no longer rung.
    #[serde(rename = "alarm.acknowledged")]
    AlarmAcknowledged(AlarmAcknowledged),
    /// The gateway ID declared the alarm over.
    #[serde(rename = "alarm.resolved")]
    AlarmResolved(AlarmEnded),
    /// The alarm ran out of time before it was acknowledged or resolved.
    #[serde(rename = "alarm.expired")]
    AlarmExpired(AlarmEnded),
}

/// Which message, to whom, when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageReport {
    pub message_id: MessageId,
    pub recipient: IdentityId,
    /// When it happened, unix milliseconds.
    pub at: i64,
}

impl StatusKind {
    /// Every `type` this version knows, as on the wire. A receiver tells an event of a
    /// newer kind (a `type` not listed) from a malformed one with it.
    pub const NAMES: [&'static str; 11] = [
        "message.delivered",
        "message.read",
        "message.acknowledged",
        "message.declined",
        "message.expired",
        "alarm.triggered",
        "alarm.escalated",
        "alarm.answered",
        "alarm.acknowledged",
        "alarm.resolved",
        "alarm.expired",
    ];

    /// The event's `type`, as on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Delivered(_) => "message.delivered",
            Self::Read(_) => "message.read",
            Self::Acknowledged(_) => "message.acknowledged",
            Self::Declined(_) => "message.declined",
            Self::Expired(_) => "message.expired",
            Self::AlarmTriggered(_) => "alarm.triggered",
            Self::AlarmEscalated(_) => "alarm.escalated",
            Self::AlarmAnswered(_) => "alarm.answered",
            Self::AlarmAcknowledged(_) => "alarm.acknowledged",
            Self::AlarmResolved(_) => "alarm.resolved",
            Self::AlarmExpired(_) => "alarm.expired",
        }
    }

    /// The message the event is about: `Some` for the `message.*` kinds, `None` for the
    /// `alarm.*` ones (see [`StatusKind::alarm_id`]).
    pub fn report(&self) -> Option<&MessageReport> {
        match self {
            Self::Delivered(report)
            | Self::Read(report)
            | Self::Acknowledged(report)
            | Self::Declined(report)
            | Self::Expired(report) => Some(report),
            Self::AlarmTriggered(_)
            | Self::AlarmEscalated(_)
            | Self::AlarmAnswered(_)
            | Self::AlarmAcknowledged(_)
            | Self::AlarmResolved(_)
            | Self::AlarmExpired(_) => None,
        }
    }

    /// The alarm the event is about: `Some` for the `alarm.*` kinds, `None` for the
    /// `message.*` ones.
    pub fn alarm_id(&self) -> Option<MessageId> {
        match self {
            Self::Delivered(_)
            | Self::Read(_)
            | Self::Acknowledged(_)
            | Self::Declined(_)
            | Self::Expired(_) => None,
            Self::AlarmTriggered(e) => Some(e.alarm_id),
            Self::AlarmEscalated(e) => Some(e.alarm_id),
            Self::AlarmAnswered(e) => Some(e.alarm_id),
            Self::AlarmAcknowledged(e) => Some(e.alarm_id),
            Self::AlarmResolved(e) | Self::AlarmExpired(e) => Some(e.alarm_id),
        }
    }

    /// When what the event reports happened, unix milliseconds.
    pub fn at(&self) -> i64 {
        match self {
            Self::Delivered(report)
            | Self::Read(report)
            | Self::Acknowledged(report)
            | Self::Declined(report)
            | Self::Expired(report) => report.at,
            Self::AlarmTriggered(e) => e.at,
            Self::AlarmEscalated(e) => e.at,
            Self::AlarmAnswered(e) => e.at,
            Self::AlarmAcknowledged(e) => e.at,
            Self::AlarmResolved(e) | Self::AlarmExpired(e) => e.at,
        }
    }
}

/// A fresh event ID: 16 random bytes in hex.
pub fn new_event_id() -> String {
    let mut bytes = [0u8; 16];
    fill_random(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Answer, Priority};

    fn secret() -> StatusSecret {
        StatusSecret::parse(&format!("tss_{}", "ab".repeat(32))).unwrap()
    }

    #[test]
    fn a_signature_verifies_and_any_change_breaks_it() {
        let body = br#"{"id":"x"}"#;
        let header = status_signature(&secret(), 1_700_000_000, body);
        assert!(header.starts_with("t=1700000000,v1="));
        assert_eq!(
            verify_status_signature(&secret(), &header, body),
            Ok(1_700_000_000)
        );
        assert_eq!(
            verify_status_signature(&secret(), &header, br#"{"id":"y"}"#),
            Err(SignatureError::Mismatch)
        );
        let moved = header.replace("t=1700000000", "t=1700000001");
        assert_eq!(
            verify_status_signature(&secret(), &moved, body),
            Err(SignatureError::Mismatch)
        );
        let other = StatusSecret::generate();
        assert_eq!(
            verify_status_signature(&other, &header, body),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn the_mac_is_hmac_sha256_over_t_dot_body() {
        // Independent of `status_signature`: the MAC over the documented input.
        let key = secret();
        let mac = hmac_sha256(key.expose().as_bytes(), &[b"42.{}"]);
        let header = format!("t=42,v1={}", hex::encode(mac));
        assert_eq!(verify_status_signature(&key, &header, b"{}"), Ok(42));
        assert_eq!(status_signature(&key, 42, b"{}"), header);
    }

    #[test]
    fn malformed_headers_are_named_so() {
        let key = secret();
        for header in [
            "",
            "t=1",
            "v1=00",
            &format!("v1={}", "0".repeat(64)),
            &format!("t=-1,v1={}", "0".repeat(64)),
            &format!("t=+1,v1={}", "0".repeat(64)),
            &format!("t=1,v1={}", "z".repeat(64)),
            "garbage",
        ] {
            assert_eq!(
                verify_status_signature(&key, header, b"{}"),
                Err(SignatureError::Malformed),
                "{header:?}"
            );
        }
    }

    #[test]
    fn one_matching_v1_of_several_is_enough() {
        let key = secret();
        let good = status_signature(&key, 7, b"{}");
        let v1 = good.split_once(",v1=").unwrap().1;
        let header = format!("t=7,v1={},v1={v1},v0=whatever", "0".repeat(64));
        assert_eq!(verify_status_signature(&key, &header, b"{}"), Ok(7));
    }

    #[test]
    fn secrets_parse_only_in_their_form_and_never_print() {
        let fresh = StatusSecret::generate();
        assert_eq!(StatusSecret::parse(fresh.expose()), Ok(fresh.clone()));
        assert_eq!(fresh.expose().len(), 68);
        assert_eq!(format!("{fresh:?}"), "StatusSecret(***)");
        for bad in [
            "",
            "tss_",
            "abc",
            &"a".repeat(68),
            &format!("tss_{}", "g".repeat(64)),
        ] {
            assert_eq!(StatusSecret::parse(bad), Err(ParseError::StatusSecret));
        }
    }

    #[test]
    fn events_read_and_write_the_documented_json() {
        let json = r#"{"id":"00112233445566778899aabbccddeeff","gatewayId":"*TESTTST","type":"message.expired","messageId":"0102030405060708","recipient":"ECHOECHO","at":1700000000123}"#;
        let event: StatusEvent = serde_json::from_str(json).unwrap();
        assert_eq!(event.kind.name(), "message.expired");
        let StatusKind::Expired(report) = event.kind.clone() else {
            panic!("{event:?}");
        };
        assert_eq!(report.recipient.as_str(), "ECHOECHO");
        assert_eq!(report.at, 1_700_000_000_123);
        let back: serde_json::Value = serde_json::to_value(&event).unwrap();
        assert_eq!(
            back,
            serde_json::from_str::<serde_json::Value>(json).unwrap()
        );
    }

    #[test]
    fn every_kind_is_named_in_names_and_reports_its_message_or_alarm() {
        let report = MessageReport {
            message_id: MessageId::from_bytes([1; 8]),
            recipient: IdentityId::parse("ECHOECHO").unwrap(),
            at: 1,
        };
        let alarm_id = MessageId::from_bytes([2; 8]);
        let ended = AlarmEnded { alarm_id, at: 1 };
        let kinds = [
            StatusKind::Delivered(report),
            StatusKind::Read(report),
            StatusKind::Acknowledged(report),
            StatusKind::Declined(report),
            StatusKind::Expired(report),
            StatusKind::AlarmTriggered(AlarmTriggered {
                alarm_id,
                priority: Priority::High,
                tiers: 1,
                dedup_key: None,
                at: 1,
            }),
            StatusKind::AlarmEscalated(AlarmEscalated {
                alarm_id,
                tier: 2,
                recipients: vec![],
                unpaid: vec![],
                at: 1,
            }),
            StatusKind::AlarmAnswered(AlarmAnswered {
                alarm_id,
                responder: report.recipient,
                answer: Answer::NotComing,
                eta_minutes: None,
                note: None,
                at: 1,
            }),
            StatusKind::AlarmAcknowledged(AlarmAcknowledged {
                alarm_id,
                coming: vec![],
                at: 1,
            }),
            StatusKind::AlarmResolved(ended),
            StatusKind::AlarmExpired(ended),
        ];
        let names: Vec<&str> = kinds.iter().map(StatusKind::name).collect();
        assert_eq!(names, StatusKind::NAMES);
        for kind in &kinds {
            let is_alarm = kind.name().starts_with("alarm.");
            assert_eq!(kind.report().is_none(), is_alarm, "{kind:?}");
            assert_eq!(kind.alarm_id(), is_alarm.then_some(alarm_id), "{kind:?}");
            assert_eq!(kind.at(), 1);
        }
        assert!(kinds[..5].iter().all(|k| k.report() == Some(&report)));
    }
}
