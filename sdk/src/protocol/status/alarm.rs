//! The bodies of the `alarm.*` status events. Like every event they are flattened into
//! [`StatusEvent`](super::StatusEvent): camelCase fields next to `id`, `type` and
//! `gatewayId`, times in unix milliseconds, and an optional field left out when empty.

use serde::{Deserialize, Serialize};

use crate::protocol::{Answer, IdentityId, MessageId, Priority};

/// An alarm was triggered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmTriggered {
    /// The alarm's ID: the ID of the message each recipient gets.
    pub alarm_id: MessageId,
    /// How urgent it is.
    pub priority: Priority,
    /// How many tiers of recipients the alarm may reach.
    pub tiers: u8,
    /// The key the gateway ID gave to tell repeats of one alarm apart, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup_key: Option<String>,
    /// When it was triggered, unix milliseconds.
    pub at: i64,
}

/// An alarm reached a further tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmEscalated {
    pub alarm_id: MessageId,
    /// Which tier, 1 for the first.
    pub tier: u8,
    /// The tier's recipients that are being alarmed.
    pub recipients: Vec<IdentityId>,
    /// The tier's recipients left out because the gateway ID's credits did not cover
    /// them.
    pub unpaid: Vec<IdentityId>,
    /// When, unix milliseconds.
    pub at: i64,
}

/// A recipient answered an alarm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmAnswered {
    pub alarm_id: MessageId,
    /// The recipient who answered.
    pub responder: IdentityId,
    /// Coming or not.
    pub answer: Answer,
    /// Minutes until the responder arrives, if they said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_minutes: Option<u16>,
    /// The responder's note, if they wrote one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// When the answer was taken, unix milliseconds.
    pub at: i64,
}

/// Enough recipients of an alarm are coming.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmAcknowledged {
    pub alarm_id: MessageId,
    /// Everyone who answered that they are coming, so far.
    pub coming: Vec<IdentityId>,
    /// When, unix milliseconds.
    pub at: i64,
}

/// An alarm ended (resolved by the gateway ID, or expired).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmEnded {
    pub alarm_id: MessageId,
    /// When, unix milliseconds.
    pub at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{StatusEvent, StatusKind};

    /// Reads `json` as an event, checks it writes back as the same JSON, and returns its
    /// kind.
    fn round_trip(json: &str) -> StatusKind {
        let event: StatusEvent = serde_json::from_str(json).unwrap();
        let back = serde_json::to_value(&event).unwrap();
        assert_eq!(
            back,
            serde_json::from_str::<serde_json::Value>(json).unwrap()
        );
        assert_eq!(event.gateway_id.as_str(), "*TESTTST");
        event.kind
    }

    fn ids(list: &[&str]) -> Vec<IdentityId> {
        list.iter()
            .map(|id| IdentityId::parse(id).unwrap())
            .collect()
    }

    const HEAD: &str = r#""id":"00112233445566778899aabbccddeeff","gatewayId":"*TESTTST""#;

    #[test]
    fn alarm_triggered_reads_and_writes_the_documented_json() {
        let alarm_id = MessageId::parse("0102030405060708").unwrap();
        let json = format!(
            r#"{{{HEAD},"type":"alarm.triggered","alarmId":"0102030405060708","priority":"critical","tiers":2,"dedupKey":"pump-3","at":1700000000123}}"#
        );
        assert_eq!(
            round_trip(&json),
            StatusKind::AlarmTriggered(AlarmTriggered {
                alarm_id,
                priority: Priority::Critical,
                tiers: 2,
                dedup_key: Some("pump-3".into()),
                at: 1_700_000_000_123,
            })
        );
        let without_key = format!(
            r#"{{{HEAD},"type":"alarm.triggered","alarmId":"0102030405060708","priority":"normal","tiers":1,"at":1}}"#
        );
        let StatusKind::AlarmTriggered(triggered) = round_trip(&without_key) else {
            panic!("not alarm.triggered");
        };
        assert_eq!(triggered.dedup_key, None);
        assert_eq!(triggered.priority, Priority::Normal);
    }

    #[test]
    fn alarm_escalated_reads_and_writes_the_documented_json() {
        let json = format!(
            r#"{{{HEAD},"type":"alarm.escalated","alarmId":"0102030405060708","tier":2,"recipients":["ALICE123","BOB45678"],"unpaid":["CAROL999"],"at":1700000000123}}"#
        );
        assert_eq!(
            round_trip(&json),
            StatusKind::AlarmEscalated(AlarmEscalated {
                alarm_id: MessageId::from_bytes([1, 2, 3, 4, 5, 6, 7, 8]),
                tier: 2,
                recipients: ids(&["ALICE123", "BOB45678"]),
                unpaid: ids(&["CAROL999"]),
                at: 1_700_000_000_123,
            })
        );
    }

    #[test]
    fn alarm_answered_reads_and_writes_the_documented_json() {
        let json = format!(
            r#"{{{HEAD},"type":"alarm.answered","alarmId":"0102030405060708","responder":"ALICE123","answer":"coming","etaMinutes":5,"note":"on my way","at":1700000000123}}"#
        );
        assert_eq!(
            round_trip(&json),
            StatusKind::AlarmAnswered(AlarmAnswered {
                alarm_id: MessageId::from_bytes([1, 2, 3, 4, 5, 6, 7, 8]),
                responder: IdentityId::parse("ALICE123").unwrap(),
                answer: Answer::Coming,
                eta_minutes: Some(5),
                note: Some("on my way".into()),
                at: 1_700_000_000_123,
            })
        );
        let bare = format!(
            r#"{{{HEAD},"type":"alarm.answered","alarmId":"0102030405060708","responder":"BOB45678","answer":"not_coming","at":1}}"#
        );
        let StatusKind::AlarmAnswered(answered) = round_trip(&bare) else {
            panic!("not alarm.answered");
        };
        assert_eq!(answered.answer, Answer::NotComing);
        assert_eq!((answered.eta_minutes, answered.note), (None, None));
    }

    #[test]
    fn alarm_acknowledged_and_ended_read_and_write_the_documented_json() {
        let json = format!(
            r#"{{{HEAD},"type":"alarm.acknowledged","alarmId":"0102030405060708","coming":["ALICE123","BOB45678"],"at":1700000000123}}"#
        );
        let alarm_id = MessageId::from_bytes([1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(
            round_trip(&json),
            StatusKind::AlarmAcknowledged(AlarmAcknowledged {
                alarm_id,
                coming: ids(&["ALICE123", "BOB45678"]),
                at: 1_700_000_000_123,
            })
        );
        let ended = AlarmEnded { alarm_id, at: 7 };
        let resolved =
            format!(r#"{{{HEAD},"type":"alarm.resolved","alarmId":"0102030405060708","at":7}}"#);
        assert_eq!(round_trip(&resolved), StatusKind::AlarmResolved(ended));
        let expired = resolved.replace("alarm.resolved", "alarm.expired");
        assert_eq!(round_trip(&expired), StatusKind::AlarmExpired(ended));
    }

    #[test]
    fn alarm_events_with_bad_words_or_missing_fields_are_refused() {
        for bad in [
            r#""type":"alarm.triggered","alarmId":"0102030405060708","priority":"urgent","tiers":1,"at":1"#,
            r#""type":"alarm.triggered","alarmId":"0102030405060708","priority":"high","at":1"#,
            r#""type":"alarm.answered","alarmId":"0102030405060708","responder":"ALICE123","answer":"maybe","at":1"#,
            r#""type":"alarm.escalated","alarmId":"0102030405060708","tier":2,"recipients":["alice"],"unpaid":[],"at":1"#,
            r#""type":"alarm.resolved","alarmId":"01","at":1"#,
            r#""type":"alarm.expired","at":1"#,
        ] {
            let json = format!("{{{HEAD},{bad}}}");
            assert!(
                serde_json::from_str::<StatusEvent>(&json).is_err(),
                "{json}"
            );
        }
    }
}
