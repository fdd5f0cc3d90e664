//! One request, from the body to the answer.
//!
//! 1. Anything but `POST` gets 405; a body over [`MAX_BODY_BYTES`] gets 413 without
//!    being read to its end.
//! 2. A request with an `X-Tocsin-Signature` header is a status event: see `status`.
//!    Any other is a callback, which the rest of this list is about. Without the
//!    credentials for its kind (no signing secret, or no private key), a request is
//!    answered 503 with a note on standard error: the gateway delivers it again, so
//!    nothing is lost while the operator restarts with them.
//! 3. [`CallbackReceiver::receive`] checks it; a refusal is answered with its status
//!    and noted on standard error.
//! 4. The sender's key comes from the gateway (cached for the process); when the
//!    gateway cannot be asked right now, the message is forgotten again and answered
//!    503, so the gateway delivers it once more. An unknown sender, or a box that does
//!    not open, is warned about and answered 200: a retry would not help.
//! 5. With `--files`, a file message's file is downloaded and saved first, under the
//!    same rules for passing failures.
//! 6. The message is printed as one line and answered 200.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};

use super::status;
use crate::cli::say;
use crate::cli::show::{self, escape, save_file};
use crate::client::{E2eClient, Error};
use crate::protocol::{E2eMessage, GatewayId, IdentityId, PublicKey, STATUS_SIGNATURE_HEADER};
use crate::receive::{
    CallbackReceiver, IncomingCallback, ReceiveError, StatusReceiver, MAX_BODY_BYTES,
};

/// Time a client has to send the whole body once the headers are in.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// What every request needs; at least one of the two kinds is taken.
pub(super) struct Handler {
    own: GatewayId,
    /// `None` without a private key: callbacks are answered 503.
    callbacks: Option<Callbacks>,
    /// `None` without a signing secret: status events are answered 503.
    status: Option<StatusReceiver>,
}

/// What callbacks need.
pub(super) struct Callbacks {
    receiver: CallbackReceiver,
    e2e: E2eClient,
    files: Option<PathBuf>,
    keys: Mutex<HashMap<IdentityId, PublicKey>>,
}

/// How a request ends: the status, and what to note on standard error.
pub(super) type Answer = (u16, Option<String>);

impl Handler {
    pub(super) fn new(
        own: GatewayId,
        callbacks: Option<Callbacks>,
        status: Option<StatusReceiver>,
    ) -> Self {
        Self {
            own,
            callbacks,
            status,
        }
    }

    /// What is taken, for the line that says where the server listens.
    pub(super) fn takes(&self) -> String {
        let own = self.own;
        match (&self.callbacks, &self.status) {
            (Some(_), None) => format!("callbacks to {own}"),
            (Some(_), Some(_)) => format!("callbacks and status events of {own}"),
            (None, _) => format!("status events of {own} (no private key: no callbacks)"),
        }
    }

    /// Answers one request.
    pub(super) async fn handle(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let (status, warning) = self.answer(request).await;
        if let Some(warning) = warning {
            note(warning);
        }
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = status;
        if status == StatusCode::METHOD_NOT_ALLOWED {
            response.headers_mut().insert(
                hyper::header::ALLOW,
                hyper::header::HeaderValue::from_static("POST"),
            );
        }
        response
    }

    async fn answer(&self, request: Request<Incoming>) -> Answer {
        if request.method() != Method::POST {
            return (405, None);
        }
        // A value that is not text cannot match; it is judged (and refused) as such.
        let signature = request
            .headers()
            .get(STATUS_SIGNATURE_HEADER)
            .map(|value| value.to_str().unwrap_or_default().to_owned());
        let body = Limited::new(request.into_body(), MAX_BODY_BYTES).collect();
        let body = match tokio::time::timeout(BODY_TIMEOUT, body).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                return (
                    413,
                    Some(format!("refused: the body is over {MAX_BODY_BYTES} bytes")),
                );
            }
            Ok(Err(e)) => return (400, Some(format!("refused: cannot read the body: {e}"))),
            Err(_) => return (408, Some("refused: the body did not arrive in time".into())),
        };
        match (signature, &self.status, &self.callbacks) {
            (Some(header), Some(receiver), _) => status::take(receiver, &body, &header, unix_now()),
            (Some(_), None, _) => warn(
                503,
                format!(
                    "a status event cannot be checked without the signing secret \
                     (TOCSIN_STATUS_SECRET or --status-secret-file); {AGAIN}"
                ),
            ),
            (None, _, Some(callbacks)) => callbacks.answer(&body).await,
            (None, _, None) => warn(
                503,
                format!(
                    "a callback cannot be read without the gateway ID's private key \
                     (TOCSIN_PRIVATE_KEY or --private-key-file); {AGAIN}"
                ),
            ),
        }
    }
}

impl Callbacks {
    pub(super) fn new(receiver: CallbackReceiver, e2e: E2eClient, files: Option<PathBuf>) -> Self {
        Self {
            receiver,
            e2e,
            files,
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// Checks, opens and prints one callback body.
    async fn answer(&self, body: &[u8]) -> Answer {
        let incoming = match self.receiver.receive(body, unix_now()) {
            Ok(incoming) => incoming,
            Err(e @ ReceiveError::Duplicate { .. }) => return (200, Some(format!("ignored: {e}"))),
            Err(e) => return (e.status(), Some(format!("refused ({}): {e}", e.status()))),
        };
        let answer = self.take(&incoming).await;
        if answer.0 != 200 {
            self.receiver.forget(&incoming);
        }
        answer
    }

    /// Opens, (saves,) and prints an authentic callback.
    async fn take(&self, incoming: &IncomingCallback) -> Answer {
        let (from, id) = (incoming.from, incoming.message_id);
        let message = match self.open(incoming).await {
            Ok(Some(Ok(message))) => message,
            Ok(Some(Err(reason))) => {
                return warn(
                    200,
                    format!("message {id} from {from} cannot be read: {reason}"),
                )
            }
            Ok(None) => return warn(200, format!("message {id}: {from} has no public key")),
            Err(Retry(reason)) => {
                return warn(503, format!("message {id} from {from}: {reason}; {AGAIN}"))
            }
        };
        let mut extra = String::new();
        let mut warning = None;
        if let (E2eMessage::File(file), Some(dir)) = (&message, &self.files) {
            match self.e2e.fetch_file(file).await {
                Ok(downloaded) => match save_file(dir, &downloaded) {
                    Ok(saved) => extra = format!(" saved as {}", escape(&saved)),
                    Err(e) => {
                        let dir = dir.display();
                        let text = format!("cannot save the file of message {id} in {dir}: {e}");
                        return warn(503, format!("{text}; {AGAIN}"));
                    }
                },
                Err(e) if e.is_retryable() => {
                    let text = format!("the file of message {id} cannot be fetched now ({e})");
                    return warn(503, format!("{text}; {AGAIN}"));
                }
                Err(e) => {
                    extra = " not saved".to_owned();
                    warning = warn(
                        200,
                        format!("the file of message {id} is not available ({e})"),
                    )
                    .1;
                }
            }
        }
        say(show::line(incoming.date, &from, &id, &message, &extra));
        (200, warning)
    }

    /// The message inside, with the sender's key from the cache or the gateway; a
    /// cached key that does not open the box is fetched again once. `Ok(None)`: the
    /// sender has no key; inner `Err`: the box does not open or holds no message.
    async fn open(
        &self,
        incoming: &IncomingCallback,
    ) -> Result<Option<Result<E2eMessage, String>>, Retry> {
        let open = |key: &PublicKey| {
            self.e2e
                .open_message(key, &incoming.nonce, &incoming.sealed)
                .map_err(|e| e.to_string())
        };
        if let Some(key) = self.cached(&incoming.from) {
            if let Ok(message) = open(&key) {
                return Ok(Some(Ok(message)));
            }
        }
        // Any failure to ask is worth a retry, a refused credential included: the
        // operator can fix it before the gateway gives up.
        let key = match self.e2e.client().pubkey(&incoming.from).await {
            Ok(Some(key)) => key,
            Ok(None) => return Ok(None),
            Err(e) => {
                return Err(Retry(format!(
                    "cannot fetch the sender's key ({})",
                    describe(&e)
                )))
            }
        };
        self.keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(incoming.from, key);
        Ok(Some(open(&key)))
    }

    fn cached(&self, id: &IdentityId) -> Option<PublicKey> {
        self.keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .copied()
    }
}

/// A failure that may pass: answer 503 so the gateway delivers again.
struct Retry(String);

/// What a warning about a 503 adds.
pub(super) const AGAIN: &str = "the gateway will deliver it again";

/// An answer with a warning line.
pub(super) fn warn(status: u16, text: String) -> Answer {
    (status, Some(format!("warning: {text}")))
}

/// A client error in words that say what to check.
fn describe(e: &Error) -> String {
    match e {
        Error::Unauthorized => "the gateway refused the credentials (401)".to_owned(),
        other => other.to_string(),
    }
}

/// One line on standard error; a closed pipe is not worth reporting.
pub(super) fn note(line: impl std::fmt::Display) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Seconds since the Unix epoch; 0 for a clock before it.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
