//! The one-line form of a message, shared by `device listen` and `callback serve`, and
//! of a status event (`callback serve`).
//!
//! A message line is `TIME SENDER MESSAGE-ID KIND DETAIL`, with the sender's time in UTC
//! (`2024-05-01T12:00:00Z`). Control characters in texts are escaped (`\n`, `\u{7}`),
//! so a line is always one line. A status line is `TIME status TYPE MESSAGE-ID
//! RECIPIENT`, with the time of what it reports, in the same form.

use std::path::Path;

use crate::files::DownloadedFile;
use crate::protocol::{E2eMessage, IdentityId, MessageId, ReceiptStatus, StatusEvent};
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

/// The output line for one status event; `None` for a kind that reports no message
/// (none so far).
pub(crate) fn status_line(event: &StatusEvent) -> Option<String> {
    let report = event.kind.report()?;
    // `at` is in milliseconds; a time before 1970 is shown as 1970.
    let seconds = u64::try_from(report.at.div_euclid(1000)).unwrap_or(0);
    Some(format!(
        "{} status {} {} {}",
        utc(seconds),
        event.kind.name(),
        report.message_id,
        report.recipient
    ))
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
            status_line(&event).unwrap(),
            "2024-05-01T12:00:00Z status message.read 0102030405060708 ECHOECHO"
        );
        let before = json.replace("1714564800999", "-1");
        let event: StatusEvent = serde_json::from_str(&before).unwrap();
        assert!(status_line(&event)
            .unwrap()
            .starts_with("1970-01-01T00:00:00Z status "));
    }
}
