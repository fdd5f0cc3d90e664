//! How `device listen` shows what happens: one line per message or alarm frame on
//! standard output (see [`super::super::show`]), everything else on standard error.
//! Files are saved before their line is printed.

use std::io::Write;
use std::path::PathBuf;

use crate::cli::say;
use crate::cli::show::{self, escape, save_file};
use crate::device::{FileUnavailable, Handled, Notice, Received};
use crate::files::DownloadedFile;

/// Prints what the listener reports and saves the files it fetched.
pub(crate) struct Printer {
    /// Where files go; `None` when they are not fetched.
    pub files: Option<PathBuf>,
}

impl Printer {
    /// Prints (and for files, saves) one notice; the answer tells the listener whether
    /// a message or file is taken care of.
    pub(crate) fn notice(&mut self, notice: Notice) -> Handled {
        match notice {
            Notice::Message(received) => say(line(&received, "")),
            Notice::File { received, file } => return self.file(&received, file),
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
            Notice::AlarmRing(ring) => say(show::alarm_ring_line(now(), &ring)),
            Notice::AlarmStop(stop) => say(show::alarm_stop_line(now(), &stop)),
            Notice::Disconnected { reason, retry_in } => note(format!(
                "disconnected: {reason}; reconnecting in {:.1} s",
                retry_in.as_secs_f64()
            )),
            _ => {}
        }
        Handled::Done
    }

    fn file(
        &mut self,
        received: &Received,
        file: Result<Box<DownloadedFile>, FileUnavailable>,
    ) -> Handled {
        let id = received.message_id;
        let file = match file {
            Ok(file) => file,
            Err(FileUnavailable {
                reason,
                retryable: true,
            }) => {
                note(format!(
                    "warning: the file of message {id} cannot be fetched now ({reason}); \
                     trying again later"
                ));
                return Handled::Later;
            }
            Err(FileUnavailable { reason, .. }) => {
                say(line(received, " not saved"));
                note(format!(
                    "warning: the file of message {id} is not available ({reason})"
                ));
                return Handled::Done;
            }
        };
        let Some(dir) = &self.files else {
            say(line(received, ""));
            return Handled::Done;
        };
        match save_file(dir, &file) {
            Ok(saved) => {
                say(line(received, &format!(" saved as {}", escape(&saved))));
                Handled::Done
            }
            Err(e) => {
                note(format!(
                    "warning: cannot save the file of message {id} in {}: {e}; \
                     trying again later",
                    dir.display()
                ));
                Handled::Later
            }
        }
    }
}

/// One line on standard error; a closed pipe is not worth reporting.
fn note(line: impl std::fmt::Display) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// The output line for one message.
fn line(received: &Received, extra: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    line_at(received, extra, now)
}

/// The output line for one message at unix second `now` (which a TTL is counted from).
fn line_at(received: &Received, extra: &str, now: u64) -> String {
    let expiry = received
        .expires_at
        .map(|at| expires_in(u64::from(at).saturating_sub(now)))
        .unwrap_or_default();
    let line = show::line(
        u64::from(received.created_at),
        &received.sender,
        &received.message_id,
        &received.message,
        extra,
    );
    format!("{line}{expiry}")
}

/// ` (expires in 4m 59s)`, for a message with that much time left.
fn expires_in(left: u64) -> String {
    let (h, m, s) = (left / 3600, left / 60 % 60, left % 60);
    match (h, m) {
        (0, 0) => format!(" (expires in {s}s)"),
        (0, _) => format!(" (expires in {m}m {s}s)"),
        _ => format!(" (expires in {h}h {m}m)"),
    }
}

/// Unix seconds now; 0 for a clock before 1970.
pub(super) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{E2eMessage, IdentityId, MessageFlags, MessageId, Nonce, ReceiptStatus};

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
            expires_at: None,
        };
        assert_eq!(
            line(&received, ""),
            "2024-05-01T12:00:00Z *ALERTS1 0102030405060708 text disk\\nfull"
        );
        let receipt = Received {
            message: E2eMessage::DeliveryReceipt {
                status: ReceiptStatus::Read,
                message_ids: vec![received.message_id, received.message_id],
            },
            ..received
        };
        assert!(line(&receipt, "").ends_with("receipt read 0102030405060708,0102030405060708"));
    }

    #[test]
    fn a_message_with_a_ttl_says_how_long_it_has_left() {
        let otp = Received {
            sender: IdentityId::parse("*BANK123").unwrap(),
            message_id: MessageId::parse("0102030405060708").unwrap(),
            created_at: 1_714_564_800,
            flags: MessageFlags::default(),
            nickname: None,
            nonce: Nonce::random(),
            message: E2eMessage::Text("Your code is 482913".into()),
            expires_at: Some(1_714_565_100),
        };
        assert_eq!(
            line_at(&otp, "", 1_714_564_801),
            "2024-05-01T12:00:00Z *BANK123 0102030405060708 text Your code is 482913 \
             (expires in 4m 59s)"
        );
        assert!(line_at(&otp, "", 1_714_565_090).ends_with("(expires in 10s)"));
        assert!(line_at(&otp, "", 1_714_565_200).ends_with("(expires in 0s)"));
        let later = Received {
            expires_at: Some(1_714_564_800 + 2 * 3600 + 300),
            ..otp
        };
        assert!(line_at(&later, "", 1_714_564_800).ends_with("(expires in 2h 5m)"));
    }
}
