//! JSON request bodies, read only once the caller has been admitted: its credentials and
//! rate limits are checked before a byte of the body is taken, and each route reads at most
//! what its largest valid body needs.

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, HttpRequest};
use serde::de::DeserializeOwned;

use super::body::Deadline;
use super::error::ApiError;

/// `send_e2e_bulk`: 1000 messages with 4000-byte boxes in base64 fit in 8 MiB.
pub(super) const BULK_SEND: usize = 8 * 1024 * 1024;
/// The bulk lookups: 1000 IDs or hashes, even as the byte arrays one SDK sends.
pub(super) const BULK_LOOKUP: usize = 128 * 1024;
/// Creating an identity: a public key and little else.
pub(super) const IDENTITY: usize = 4 * 1024;

/// Reads and parses the JSON body of `req`, refusing one over `limit` bytes (413, as soon
/// as its declared length or its bytes so far pass the limit), one that does not arrive
/// within the body deadline (408) and one that is not JSON of the expected shape (400, with
/// the parser's reason).
pub(super) async fn read<T: DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<T, ApiError> {
    let bytes = read_bytes(req, payload, limit).await?;
    parse(&bytes)
}

/// Like [`read`], for a body that must be a JSON object: an array is refused even where
/// the fields could be read from it by position.
pub(super) async fn read_object<T: DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<T, ApiError> {
    let bytes = read_bytes(req, payload, limit).await?;
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::bad_request(
            "malformed JSON body: expected an object",
        ));
    }
    parse(&bytes)
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON body: {e}")))
}

async fn read_bytes(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<actix_web::web::Bytes, ApiError> {
    let is_json = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|essence| essence.trim().to_ascii_lowercase())
        .is_some_and(|essence| essence == "application/json" || essence.ends_with("+json"));
    if !is_json {
        return Err(ApiError::bad_request(
            "malformed JSON body: Content-Type must be application/json",
        ));
    }
    let too_large = || ApiError::TooLarge(format!("JSON body over {limit} bytes"));
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let deadline = Deadline::for_body(req);
    let bytes = deadline
        .run(payload.to_bytes_limited(limit))
        .await?
        .map_err(|_| too_large())?
        .map_err(|e| ApiError::bad_request(format!("the body could not be read: {e}")))?;
    Ok(bytes)
}
