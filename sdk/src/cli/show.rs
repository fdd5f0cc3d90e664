//! The one-line form of a message, shared by `device listen` and `callback serve`.
//!
//! A message line is `TIME SENDER MESSAGE-ID KIND DETAIL`, with the sender's time in UTC
//! (`2024-05-01T12:00:00Z`). Control characters in texts are escaped (`\n`, `\u{7}`),
//! so a line is always one line.

use std::path::Path;

use crate::files::DownloadedFile;
use crate::protocol::{E2eMessage, IdentityId, MessageId, ReceiptStatus};

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

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn utc(seconds: u64) -> String {
    let days = i64::try_from(seconds / 86_400).unwrap_or(i64::MAX / 2);
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
    fn times_are_utc_calendar_dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_714_564_800), "2024-05-01T12:00:00Z");
        assert_eq!(utc(u64::from(u32::MAX)), "2106-02-07T06:28:15Z");
    }
}
