//! One status event: checked with [`StatusReceiver::receive`], printed as one line
//! (`TIME status TYPE MESSAGE-ID RECIPIENT`, or `TIME status TYPE ALARM-ID DETAIL` for an
//! alarm) and answered 200. A duplicate, or an event
//! of a type this version does not know, is answered 200 with a note on standard error,
//! so the server stops delivering it; any other refusal with its status and a note.
//! Printing cannot fail for a passing reason, so nothing is forgotten again.

use super::handle::Answer;
use crate::cli::{say, show};
use crate::receive::StatusReceiver;

/// Takes the event in `body`, signed in `header`, at `now` (unix seconds).
pub(super) fn take(receiver: &StatusReceiver, body: &[u8], header: &str, now: u64) -> Answer {
    match receiver.receive(body, Some(header), now) {
        Ok(event) => {
            say(show::status_line(&event));
            (200, None)
        }
        Err(e) if e.status() == 200 => (200, Some(format!("ignored: {e}"))),
        Err(e) => (e.status(), Some(format!("refused ({}): {e}", e.status()))),
    }
}
