//! Deadlines for reading request bodies.
//!
//! A client that sends its headers and then trickles or stalls its body would otherwise
//! hold a connection and a handler for as long as it likes. Every body is read against a
//! deadline counted from the start of the read: `server.body_timeout_secs` for forms and
//! JSON, the longer `blobs.upload_timeout_secs` for blob uploads. Past it the request is
//! answered 408, nothing of it is acted on, and the connection is closed.

use std::time::Duration;

use actix_web::{web, HttpRequest};
use futures_util::{Stream, StreamExt};
use tokio::time::Instant;

use super::error::ApiError;
use crate::state::AppState;

/// Used when a request reaches a handler without the server's state (unit tests).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// What a body read is allowed: its deadline, and the limit it was set from (for the
/// answer's reason).
#[derive(Debug, Clone, Copy)]
pub(super) struct Deadline {
    at: Instant,
    allowed: Duration,
}

impl Deadline {
    /// `allowed` from now.
    pub(super) fn after(allowed: Duration) -> Self {
        Self {
            at: Instant::now() + allowed,
            allowed,
        }
    }

    /// The deadline of a form or JSON body of `req`.
    pub(super) fn for_body(req: &HttpRequest) -> Self {
        Self::after(
            req.app_data::<web::Data<AppState>>()
                .map_or(DEFAULT_TIMEOUT, |state| {
                    Duration::from_secs(state.settings.server.body_timeout_secs)
                }),
        )
    }

    /// The refusal for a body that did not arrive in time.
    pub(super) fn missed(&self) -> ApiError {
        ApiError::Timeout(format!(
            "the request body did not arrive within {} s",
            self.allowed.as_secs()
        ))
    }

    /// Runs `read` (a whole body read) until the deadline.
    pub(super) async fn run<T>(
        &self,
        read: impl std::future::Future<Output = T>,
    ) -> Result<T, ApiError> {
        tokio::time::timeout_at(self.at, read)
            .await
            .map_err(|_| self.missed())
    }

    /// The next item of a body stream, if it comes before the deadline.
    pub(super) async fn next<S: Stream + Unpin>(
        &self,
        stream: &mut S,
    ) -> Result<Option<S::Item>, ApiError> {
        self.run(stream.next()).await
    }
}
