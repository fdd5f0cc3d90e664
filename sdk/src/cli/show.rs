//! The one-line form of a message, shared by `device listen` and `callback serve`, and
//! of a status event (`callback serve`).
//!
//! A message line is `TIME SENDER MESSAGE-ID KIND DETAIL`, with the sender's time in UTC
//! (`2024-05-01T12:00:00Z`). Control characters in texts are escaped (`\n`, `\u{7}`),
//! so a line is always one line. A status line is `TIME status TYPE MESSAGE-ID
//! RECIPIENT` for a message, `TIME status TYPE ALARM-ID DETAIL` for an alarm (no DETAIL
//! when it ended), with the time of what it reports, in the same form. An alarm frame
//! on a device is `TIME GATEWAY ALARM-ID alarm-ring RING PRIORITY tier TIER` or `TIME
//! GATEWAY ALARM-ID alarm-stop REASON [ANSWER]`, at the time it arrived.

use std::path::Path;

use crate::files::DownloadedFile;
use crate::protocol::csp::{AlarmRing, AlarmStop};
use crate::protocol::{E2eMessage, IdentityId, MessageId, ReceiptStatus, StatusEvent, StatusKind};
use crate::time::utc;

/// The output line for one message; `extra` (already escaped) goes after the file
/// description, before the caption.
pub(crate) fn line(
    seconds: u64,
    sender: &IdentityId,
    message_id: &MessageId,
    message: &E2eMessage,
    extra: &str,
) -> String {
    let detail = match message {
        E2eMessage::Text(text) => format!("text {}", escape(text)),
        E2eMessage::DeliveryReceipt {
            status,
            message_ids,
        } => {
            let ids: Vec<String> = message_ids.iter().map(ToString::to_string).collect();
            format!("receipt {} {}", status_name(*status), ids.join(","))
        }
        E2eMessage::File(file) => {
            let caption = file
                .caption
                .as_deref()
                .map(|c| format!(" caption: {}", escape(c)))
                .unwrap_or_default();
            format!(
                "file {} ({}, {} bytes){extra}{caption}",
                escape(file.name.as_deref().unwrap_or("(no name)")),
                escape(&file.media_type),
                file.size
            )
        }
        E2eMessage::Image { size, .. } => format!("image ({size} bytes)"),
        E2eMessage::Location(location) => {
            format!("location {},{}", location.latitude, location.longitude)
        }
    };
    format!("{} {sender} {message_id} {detail}", utc(seconds))
}

/// The line for a ring of an alarm that arrived at `seconds`.
pub(crate) fn alarm_ring_line(seconds: u64, ring: &AlarmRing) -> String {
    format!(
        "{} {} {} alarm-ring {} {} tier {}",
        utc(seconds),
        ring.gateway,
        ring.message_id,
        ring.ring,
        ring.priority,
        ring.tier
    )
}

/// The line for the stop of an alarm that arrived at `seconds`.
pub(crate) fn alarm_stop_line(seconds: u64, stop: &AlarmStop) -> String {
    let answer = stop
        .answer
        .map(|a| format!(" {}", a.as_str()))
        .unwrap_or_default();
    format!(
        "{} {} {} alarm-stop {}{answer}",
        utc(seconds),
        stop.gateway,
        stop.message_id,
        stop.reason
    )
}

/// The output line for one status event.
pub(crate) fn status_line(event: &StatusEvent) -> String {
    // `at` is in milliseconds; a time before 1970 is shown as 1970.
    let seconds = u64::try_from(event.kind.at().div_euclid(1000)).unwrap_or(0);
    format!(
        "{} status {} {}",
        utc(seconds),
        event.kind.name(),
        status_detail(&event.kind)
    )
}

/// What a status line says after its type: the message and its recipient, or the alarm
/// and what became of it.
fn status_detail(kind: &StatusKind) -> String {
    match kind {
        StatusKind::Delivered(report)
        | StatusKind::Read(report)
        | StatusKind::Acknowledged(report)
        | StatusKind::Declined(report)
        | StatusKind::Expired(report) => format!("{} {}", report.message_id, report.recipient),
        StatusKind::AlarmTriggered(alarm) => {
            let tiers = if alarm.tiers == 1 { "tier" } else { "tiers" };
            let key = alarm
                .dedup_key
                .as_deref()
                .map(|key| format!(", key {}", escape(key)))
                .unwrap_or_default();
            format!(
                "{} priority {}, {} {tiers}{key}",
                alarm.alarm_id, alarm.priority, alarm.tiers
            )
        }
        StatusKind::AlarmEscalated(alarm) => {
            let unpaid = if alarm.unpaid.is_empty() {
                String::new()
            } else {
                format!("; unpaid: {}", id_list(&alarm.unpaid))
            };
            format!(
                "{} tier {}: {}{unpaid}",
                alarm.alarm_id,
                alarm.tier,
                id_list(&alarm.recipients)
            )
        }
        StatusKind::AlarmAnswered(alarm) => {
            let eta = alarm
                .eta_minutes
                .map(|minutes| format!(" eta {minutes}m"))
                .unwrap_or_default();
            let note = alarm
                .note
                .as_deref()
                .map(|note| format!(" note: {}", escape(note)))
                .unwrap_or_default();
            format!(
                "{} {} {}{eta}{note}",
                alarm.alarm_id, alarm.responder, alarm.answer
            )
        }
        StatusKind::AlarmAcknowledged(alarm) => {
            format!("{} coming: {}", alarm.alarm_id, id_list(&alarm.coming))
        }
        StatusKind::AlarmResolved(ended) | StatusKind::AlarmExpired(ended) => {
            ended.alarm_id.to_string()
        }
    }
}

/// IDs separated by spaces; `(none)` for an empty list, so the line still reads.
fn id_list(ids: &[IdentityId]) -> String {
    if ids.is_empty() {
        return "(none)".to_owned();
    }
    let ids: Vec<&str> = ids.iter().map(IdentityId::as_str).collect();
    ids.join(" ")
}

fn status_name(status: ReceiptStatus) -> &'static str {
    match status {
        ReceiptStatus::Received => "received",
        ReceiptStatus::Read => "read",
        ReceiptStatus::Acknowledged => "acknowledged",
        ReceiptStatus::Declined => "declined",
    }
}

/// `text` with every control character escaped.
pub(crate) fn escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Saves `file` in `dir` (created, mode 0700, if missing); returns where, for the
/// message line.
pub(crate) fn save_file(dir: &Path, file: &DownloadedFile) -> std::io::Result<String> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    let saved = file.save_in(dir)?;
    let thumbnail = if saved.thumbnail.is_some() {
        " (with thumbnail)"
    } else {
        ""
    };
    Ok(format!("{}{thumbnail}", saved.path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_line_shows_when_what_which_and_to_whom() {
        let json = r#"{"id":"00112233445566778899aabbccddeeff","gatewayId":"*TESTTST","type":"message.read","messageId":"0102030405060708","recipient":"ECHOECHO","at":1714564800999}"#;
        let event: StatusEvent = serde_json::from_str(json).unwrap();
        assert_eq!(
            status_line(&event),
            "2024-05-01T12:00:00Z status message.read 0102030405060708 ECHOECHO"
        );
        let before = json.replace("1714564800999", "-1");
        let event: StatusEvent = serde_json::from_str(&before).unwrap();
        assert!(status_line(&event).starts_with("1970-01-01T00:00:00Z status "));
    }

    #[test]
    fn alarm_frame_lines_show_when_which_alarm_and_what_happened() {
        use crate::protocol::{Answer, Priority, StopReason};
        let gateway = IdentityId::parse("*ALERTS1").unwrap();
        let message_id = MessageId::from_bytes([1, 2, 3, 4, 5, 6, 7, 8]);
        let ring = AlarmRing {
            gateway,
            message_id,
            ring: 2,
            priority: Priority::Critical,
            tier: 1,
        };
        assert_eq!(
            alarm_ring_line(0, &ring),
            "1970-01-01T00:00:00Z *ALERTS1 0102030405060708 alarm-ring 2 critical tier 1"
        );
        let stop = AlarmStop {
            gateway,
            message_id,
            reason: StopReason::Answered,
            answer: Some(Answer::NotComing),
        };
        assert_eq!(
            alarm_stop_line(0, &stop),
            "1970-01-01T00:00:00Z *ALERTS1 0102030405060708 alarm-stop answered not_coming"
        );
    }

    #[test]
    fn an_alarm_status_line_shows_when_what_which_alarm_and_what_became_of_it() {
        let head = r#""id":"00112233445566778899aabbccddeeff","gatewayId":"*TESTTST""#;
        let alarm = r#""alarmId":"0102030405060708","at":1714564800999"#;
        let cases = [
            (
                r#""type":"alarm.triggered","priority":"critical","tiers":2"#,
                "alarm.triggered 0102030405060708 priority critical, 2 tiers",
            ),
            (
                r#""type":"alarm.triggered","priority":"normal","tiers":1,"dedupKey":"pump\n3""#,
                "alarm.triggered 0102030405060708 priority normal, 1 tier, key pump\\n3",
            ),
            (
                r#""type":"alarm.escalated","tier":2,"recipients":["ALICE123","BOB45678"],"unpaid":[]"#,
                "alarm.escalated 0102030405060708 tier 2: ALICE123 BOB45678",
            ),
            (
                r#""type":"alarm.escalated","tier":3,"recipients":[],"unpaid":["CAROL999"]"#,
                "alarm.escalated 0102030405060708 tier 3: (none); unpaid: CAROL999",
            ),
            (
                r#""type":"alarm.answered","responder":"ALICE123","answer":"coming","etaMinutes":5,"note":"on my way""#,
                "alarm.answered 0102030405060708 ALICE123 coming eta 5m note: on my way",
            ),
            (
                r#""type":"alarm.answered","responder":"BOB45678","answer":"not_coming""#,
                "alarm.answered 0102030405060708 BOB45678 not_coming",
            ),
            (
                r#""type":"alarm.acknowledged","coming":["ALICE123","BOB45678"]"#,
                "alarm.acknowledged 0102030405060708 coming: ALICE123 BOB45678",
            ),
            (
                r#""type":"alarm.resolved""#,
                "alarm.resolved 0102030405060708",
            ),
            (
                r#""type":"alarm.expired""#,
                "alarm.expired 0102030405060708",
            ),
        ];
        for (fields, expected) in cases {
            let json = format!("{{{head},{fields},{alarm}}}");
            let event: StatusEvent = serde_json::from_str(&json).unwrap();
            assert_eq!(
                status_line(&event),
                format!("2024-05-01T12:00:00Z status {expected}")
            );
        }
    }
}
