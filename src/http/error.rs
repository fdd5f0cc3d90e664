//! The one place where outcomes become HTTP statuses (spec gateway-api.md §2.11).
//!
//! Bodies are a short plain-text reason without a trailing newline; SDKs go by the status
//! alone. Internal causes are logged here, once, and never sent to the client.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: malformed input, unknown recipient for a send, ID in the wrong mode.
    #[error("{0}")]
    BadRequest(String),
    /// 401: unknown gateway ID or wrong secret (the two are indistinguishable).
    #[error("invalid credentials")]
    Unauthorized,
    /// 403: the request is understood and authenticated as far as it goes, but not
    /// admitted (enrolment without a valid invite).
    #[error("{0}")]
    Forbidden(&'static str),
    /// 402: the balance cannot cover the request.
    #[error("not enough credits")]
    NoCredits,
    /// 404: no such identity, hash, or blob.
    #[error("{0}")]
    NotFound(&'static str),
    /// 408: the body did not arrive before its deadline; the connection is closed.
    #[error("{0}")]
    Timeout(String),
    /// 413: text, box or blob over its limit.
    #[error("{0}")]
    TooLarge(String),
    /// 507: the blob store holds as much as it may.
    #[error("{0}")]
    StoreFull(String),
    /// 429: a rate limit was reached; retry after this many seconds.
    #[error("rate limit reached")]
    RateLimited { retry_after_secs: u64 },
    /// 503: the store cannot take the request now; nothing of it was kept. Retry after
    /// this many seconds.
    #[error("{reason}")]
    Unavailable {
        reason: String,
        retry_after_secs: u64,
    },
    /// 500: anything that is not the client's fault.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// Why an enrolment's invite code was not taken (the store does not say which case).
pub const INVITE_REFUSED: &str = "the invite code is unknown, already used or expired";

/// When a client should try again after the store refused a write for now.
const RETRY_UNAVAILABLE_SECS: u64 = 5;
/// … and after it failed until a restart (another node may take it meanwhile).
const RETRY_FAILED_SECS: u64 = 30;

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let unavailable = |reason: &str, retry_after_secs| {
            tracing::warn!("refused, the store cannot write: {e}");
            Self::Unavailable {
                reason: reason.to_owned(),
                retry_after_secs,
            }
        };
        match &e {
            StoreError::Unavailable(_) | StoreError::Conflict(_) => unavailable(
                "the message store cannot write for now; nothing was kept, retry later",
                RETRY_UNAVAILABLE_SECS,
            ),
            StoreError::InviteRefused => Self::Forbidden(INVITE_REFUSED),
            StoreError::Database(db) if unreachable(db) => unavailable(
                "the message store cannot be reached for now; nothing was kept, retry later",
                RETRY_UNAVAILABLE_SECS,
            ),
            StoreError::Failed(_) => unavailable(
                "the message store has failed and takes no writes until a restart",
                RETRY_FAILED_SECS,
            ),
            _ => Self::Internal(e.into()),
        }
    }
}

/// Whether the database could not be reached: a lost or refused connection, or a
/// PostgreSQL server shutting down (57P01–57P03) or out of connections (53300).
fn unreachable(e: &sqlx::Error) -> bool {
    let refusing = |db: &dyn sqlx::error::DatabaseError| {
        db.code()
            .is_some_and(|code| matches!(&*code, "57P01" | "57P02" | "57P03" | "53300"))
    };
    match e {
        sqlx::Error::Database(db) => refusing(db.as_ref()),
        other => crate::store::unreachable(other),
    }
}

impl From<crate::meter::MeterError> for ApiError {
    fn from(e: crate::meter::MeterError) -> Self {
        match e {
            crate::meter::MeterError::Insufficient => Self::NoCredits,
            crate::meter::MeterError::Store(e) => e.into(),
        }
    }
}

impl From<crate::ratelimit::Limited> for ApiError {
    fn from(l: crate::ratelimit::Limited) -> Self {
        Self::RateLimited {
            retry_after_secs: l.retry_after_secs,
        }
    }
}

impl ApiError {
    pub fn bad_request(reason: impl Into<String>) -> Self {
        Self::BadRequest(reason.into())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NoCredits => StatusCode::PAYMENT_REQUIRED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::StoreFull(_) => StatusCode::INSUFFICIENT_STORAGE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Internal(cause) = self {
            tracing::error!("request failed: {cause:#}");
        }
        let mut res = HttpResponse::build(self.status_code());
        if let Self::Timeout(_) = self {
            // The rest of the body may still be on its way: this connection is done.
            res.force_close();
        }
        if let Self::RateLimited { retry_after_secs }
        | Self::Unavailable {
            retry_after_secs, ..
        } = self
        {
            res.insert_header(("Retry-After", retry_after_secs.to_string()));
        }
        res.content_type("text/plain; charset=utf-8")
            .body(self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store that cannot write answers 503 with `Retry-After` and a one-line reason that
    /// says nothing was kept, never a 500; any other store error stays a 500.
    #[test]
    fn a_store_that_cannot_write_answers_503_with_retry_after() {
        for (e, retry) in [
            (StoreError::Unavailable("database is locked".into()), "5"),
            (StoreError::Conflict("kept conflicting".into()), "5"),
            (StoreError::Failed("sync failed".into()), "30"),
        ] {
            let res = ApiError::from(e).error_response();
            assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(res.headers().get("Retry-After").unwrap(), retry);
        }
        let reason = ApiError::from(StoreError::Unavailable("disk full".into())).to_string();
        assert!(
            !reason.contains('\n') && reason.contains("nothing was kept"),
            "{reason}"
        );
        let other = ApiError::from(StoreError::Corrupt("flags 300".into()));
        assert_eq!(other.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    /// A database that cannot be reached (refused, dropped, a pool that timed out) is a
    /// 503 with `Retry-After`, not a 500; a statement the database refused stays a 500.
    #[test]
    fn an_unreachable_database_answers_503_and_a_refused_statement_500() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        for e in [
            sqlx::Error::Io(refused),
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
        ] {
            let res = ApiError::from(StoreError::Database(e)).error_response();
            assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(res.headers().get("Retry-After").unwrap(), "5");
        }
        let other = ApiError::from(StoreError::Database(sqlx::Error::RowNotFound));
        assert_eq!(other.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
