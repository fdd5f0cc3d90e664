//! The client's error type and the one table that turns HTTP statuses into it.
//!
//! The table in [`error_for_status`] mirrors the server's status matrix (contract §2.11):
//! every status the gateway answers has exactly one variant here. Nothing the client
//! reports can carry the API secret: transport errors are stripped of their URL (which
//! holds the secret for query-authenticated calls) and every message that quotes foreign
//! text passes through [`scrub`], which removes any `secret=` pair.

use crate::crypto::CryptoError;
use crate::files::FileError;
use crate::protocol::{E2eError, ParseError};

/// Longest server reason kept in [`Error::BadRequest`], in characters.
const MAX_REASON_CHARS: usize = 200;

/// Why a call to the gateway failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// 400: the gateway refused the request as malformed (bad recipient, wrong mode for
    /// this gateway ID, bad nonce or box). Holds the server's one-line reason.
    #[error("the gateway refused the request (400): {0}")]
    BadRequest(String),

    /// 401: unknown gateway ID or wrong API secret (the gateway does not say which).
    #[error("the gateway refused the gateway ID or the API secret (401)")]
    Unauthorized,

    /// 403: the server understood the request but does not admit it, e.g. an enrolment
    /// without a valid invite code. Holds the server's one-line reason.
    #[error("the server refused the request (403): {0}")]
    Forbidden(String),

    /// 402: the account's balance cannot cover the request.
    #[error("the account has not enough credits for this request (402)")]
    NoCredits,

    /// 404: no such identity, hash match or blob. The lookups that can legitimately
    /// find nothing return `Ok(None)` instead.
    #[error("the gateway found nothing under that name (404)")]
    NotFound,

    /// 413: the text (3500 bytes), box (4000 bytes), blob or bulk request is over its
    /// limit.
    #[error("the text, box, blob or list is over the gateway's size limit (413)")]
    TooLarge,

    /// 429: a rate limit was reached; `retry_after` is the server's `Retry-After` in
    /// seconds, when it sent one as a number.
    #[error("the gateway's rate limit was reached (429){}", retry_hint(*.retry_after))]
    RateLimited {
        /// Seconds to wait before trying again.
        retry_after: Option<u64>,
    },

    /// Any other status: 5xx for trouble on the server's side, or a status the contract
    /// does not define (3xx redirects are not followed, so they land here too).
    #[error("the gateway answered with unexpected status {0}")]
    Server(u16),

    /// The request did not complete: connection refused, TLS failure, timeout. The text
    /// never contains the request URL.
    #[error("cannot talk to the gateway: {0}")]
    Transport(String),

    /// The gateway answered 2xx, but not with what the contract promises.
    #[error("the gateway's answer is malformed: {0}")]
    Decode(String),

    /// A local encryption or decryption failure (weak key, corrupt box).
    #[error(transparent)]
    Crypto(#[from] CryptoError),

    /// A value given to the client did not pass its wire parser.
    #[error(transparent)]
    Protocol(#[from] ParseError),

    /// A decrypted message is not a valid E2E container or body.
    #[error(transparent)]
    Message(#[from] E2eError),

    /// The blobs of a file message cannot be turned into the file.
    #[error(transparent)]
    File(#[from] FileError),

    /// The caller passed something unusable (a malformed base URL or idempotency key).
    #[error("invalid input: {0}")]
    Invalid(String),
}

impl Error {
    /// The HTTP status this error stands for, if it came from a status.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::BadRequest(_) => Some(400),
            Self::Unauthorized => Some(401),
            Self::NoCredits => Some(402),
            Self::NotFound => Some(404),
            Self::TooLarge => Some(413),
            Self::RateLimited { .. } => Some(429),
            Self::Server(code) => Some(*code),
            _ => None,
        }
    }

    /// Whether the same request may succeed later without change: rate limits, server
    /// trouble (5xx) and transport failures.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::RateLimited { .. } | Self::Transport(_) => true,
            Self::Server(code) => *code >= 500,
            _ => false,
        }
    }
}

fn retry_hint(retry_after: Option<u64>) -> String {
    retry_after
        .map(|secs| format!("; retry in {secs} s"))
        .unwrap_or_default()
}

/// The status table: what a non-success answer of the gateway means.
///
/// `body` is the plain-text reason the gateway sent (only 400 keeps it, cleaned up);
/// `retry_after` is the parsed `Retry-After` header, used for 429.
pub fn error_for_status(status: u16, body: &str, retry_after: Option<u64>) -> Error {
    match status {
        400 => Error::BadRequest(reason(body)),
        401 => Error::Unauthorized,
        402 => Error::NoCredits,
        403 => Error::Forbidden(reason(body)),
        404 => Error::NotFound,
        413 => Error::TooLarge,
        429 => Error::RateLimited { retry_after },
        other => Error::Server(other),
    }
}

/// The first line of a server reason, without control characters, at most
/// [`MAX_REASON_CHARS`] long, scrubbed of secrets.
fn reason(body: &str) -> String {
    let line = body.lines().next().unwrap_or_default().trim();
    let clean: String = line
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_REASON_CHARS)
        .collect();
    if clean.is_empty() {
        "no reason given".to_owned()
    } else {
        scrub(&clean)
    }
}

/// Builds [`Error::Transport`] from a reqwest error, with the URL removed from it and
/// from every cause in its chain.
pub(crate) fn transport(err: reqwest::Error) -> Error {
    let err = err.without_url();
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    Error::Transport(scrub(&text))
}

/// Replaces every `secret=<value>` (any case) in `text` with `[redacted]`.
pub(crate) fn scrub(text: &str) -> String {
    const KEY: &str = "secret=";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    // ASCII lowercasing keeps byte offsets, so positions found in the copy apply to `rest`.
    while let Some(start) = rest.to_ascii_lowercase().find(KEY) {
        out.push_str(&rest[..start]);
        out.push_str("[redacted]");
        let value = &rest[start + KEY.len()..];
        let end = value
            .find(|c: char| c == '&' || c == '"' || c == '\'' || c == ')' || c.is_whitespace())
            .unwrap_or(value.len());
        rest = &value[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_covers_every_contract_status() {
        assert!(matches!(error_for_status(400, "x", None), Error::BadRequest(r) if r == "x"));
        assert!(matches!(
            error_for_status(401, "", None),
            Error::Unauthorized
        ));
        assert!(matches!(error_for_status(402, "", None), Error::NoCredits));
        assert!(matches!(error_for_status(404, "", None), Error::NotFound));
        assert!(matches!(error_for_status(413, "", None), Error::TooLarge));
        assert!(matches!(
            error_for_status(429, "", Some(3)),
            Error::RateLimited {
                retry_after: Some(3)
            }
        ));
        assert!(matches!(
            error_for_status(500, "", None),
            Error::Server(500)
        ));
        assert!(matches!(
            error_for_status(302, "", None),
            Error::Server(302)
        ));
        for code in [400, 401, 402, 404, 413, 429, 500, 503] {
            assert_eq!(error_for_status(code, "", None).status(), Some(code));
        }
    }

    #[test]
    fn reasons_are_one_clean_line_without_secrets() {
        let long = "a".repeat(500);
        assert_eq!(reason(&long).chars().count(), MAX_REASON_CHARS);
        assert_eq!(reason("first\nsecond"), "first");
        assert_eq!(reason("bad\u{7}bell"), "badbell");
        assert_eq!(reason("  "), "no reason given");
        assert_eq!(
            reason("x?from=*A&SECRET=abc123&to=B"),
            "x?from=*A&[redacted]&to=B"
        );
    }

    #[test]
    fn scrub_removes_every_secret_pair() {
        let text = "GET /credits?secret=abc secret=def) Secret=g";
        let clean = scrub(text);
        assert!(!clean.to_ascii_lowercase().contains("secret="), "{clean}");
        assert_eq!(clean, "GET /credits?[redacted] [redacted]) [redacted]");
        assert_eq!(scrub("nothing here"), "nothing here");
    }
}
