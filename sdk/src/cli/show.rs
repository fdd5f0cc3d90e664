//! The one-line form of a message, shared by `device listen` and `callback serve`.
//!
//! A message line is `TIME SENDER MESSAGE-ID KIND DETAIL`, with the sender's time in UTC
//! (`2024-05-01T12:00:00Z`). Control characters in texts are escaped (`\n`, `\u{7}`),
//! so a line is always one line.

use std::path::Path;

use crate::files::DownloadedFile;
use crate::protocol::{E2eMessage, IdentityId, MessageId, ReceiptStatus};
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
