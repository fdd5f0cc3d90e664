//! How `device listen` shows what happens: one line per message on standard output,
//! everything else on standard error.
//!
//! A message line is `TIME SENDER MESSAGE-ID KIND DETAIL`, with the creation time in UTC
//! (`2024-05-01T12:00:00Z`). Control characters in texts are escaped (`\n`, `\u{7}`),
//! so a line is always one line.

use std::io::Write;

use crate::device::{Notice, Received};
use crate::protocol::{E2eMessage, ReceiptStatus};

/// Prints one notice of the listener.
pub(crate) fn notice(notice: Notice) {
    match notice {
        Notice::Message(received) => super::super::say(line(&received)),
        Notice::Connected => note("connected"),
        Notice::Rejected(r) => {
            let fate = if r.retryable {
                "it stays on the server"
            } else {
                "dropped"
            };
            note(format!(
                "warning: message {} from {} cannot be read ({}); {fate}",
                r.message_id, r.sender, r.reason
            ));
        }
        Notice::Alert(text) => note(format!("alert from the server: {}", escape(&text))),
        Notice::Disconnected { reason, retry_in } => note(format!(
            "disconnected: {reason}; reconnecting in {:.1} s",
            retry_in.as_secs_f64()
        )),
        _ => {}
    }
}

/// One line on standard error; a closed pipe is not worth reporting.
fn note(line: impl std::fmt::Display) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// The output line for one message.
pub(crate) fn line(received: &Received) -> String {
    let detail = match &received.message {
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
                "file {} ({}, {} bytes){caption}",
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
    format!(
        "{} {} {} {detail}",
        utc(received.created_at),
        received.sender,
        received.message_id
    )
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
fn escape(text: &str) -> String {
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

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
fn utc(seconds: u32) -> String {
    let days = i64::from(seconds / 86_400);
    let rest = seconds % 86_400;
    // Days to civil date, after H. Hinnant's algorithm (proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{IdentityId, MessageFlags, MessageId, Nonce};

    #[test]
    fn times_are_utc_calendar_dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_714_564_800), "2024-05-01T12:00:00Z");
        assert_eq!(utc(u32::MAX), "2106-02-07T06:28:15Z");
    }

    #[test]
    fn a_message_is_one_line_with_its_kind() {
        let received = Received {
            sender: IdentityId::parse("*ALERTS1").unwrap(),
            message_id: MessageId::parse("0102030405060708").unwrap(),
            created_at: 1_714_564_800,
            flags: MessageFlags::default(),
            nickname: None,
            nonce: Nonce::random(),
            message: E2eMessage::Text("disk\nfull".into()),
        };
        assert_eq!(
            line(&received),
            "2024-05-01T12:00:00Z *ALERTS1 0102030405060708 text disk\\nfull"
        );
        let receipt = Received {
            message: E2eMessage::DeliveryReceipt {
                status: ReceiptStatus::Read,
                message_ids: vec![received.message_id, received.message_id],
            },
            ..received
        };
        assert!(line(&receipt).ends_with("receipt read 0102030405060708,0102030405060708"));
    }
}
