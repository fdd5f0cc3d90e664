//! Building requests and reading answers: the only code that touches reqwest directly
//! besides the builder.
//!
//! Every answer is read with a size cap, so a misbehaving server cannot make the client
//! allocate without bound, and every non-success status goes through
//! [`error_for_status`].

use reqwest::header::{HeaderValue, RETRY_AFTER};
use reqwest::{RequestBuilder, Response};
use url::{form_urlencoded, Url};

use super::error::{error_for_status, transport};
use super::{Client, Error};

/// Largest single-value answer (an ID, a key, a capability list, a number).
pub(super) const TEXT_LIMIT: usize = 64 * 1024;

/// Largest JSON answer of a bulk endpoint (1000 entries with keys and hashes).
pub(super) const JSON_LIMIT: usize = 16 * 1024 * 1024;

/// How much of an error body is read for its reason.
const ERROR_BODY_LIMIT: usize = 4 * 1024;

impl Client {
    /// The URL of an endpoint: the base path followed by `segments`, each percent-encoded
    /// as one path segment. No credentials.
    pub(super) fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        // The builder only admits http(s) URLs with a host, which always have a path.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// Like [`Client::endpoint`], with `from` and `secret` in the query string, followed by
    /// `extra` query pairs.
    pub(super) fn query_url(&self, segments: &[&str], extra: &[(&str, &str)]) -> Url {
        let mut url = self.endpoint(segments);
        url.query_pairs_mut()
            .append_pair("from", self.gateway_id.as_str())
            .append_pair("secret", self.secret.expose())
            .extend_pairs(extra);
        url
    }

    /// A GET with query credentials.
    pub(super) fn get(&self, segments: &[&str]) -> RequestBuilder {
        self.http.get(self.query_url(segments, &[]))
    }

    /// A POST with query credentials (for JSON and multipart bodies).
    pub(super) fn post_with_query(
        &self,
        segments: &[&str],
        extra: &[(&str, &str)],
    ) -> RequestBuilder {
        self.http.post(self.query_url(segments, extra))
    }

    /// A form POST carrying `from`, `secret` and `fields` in its body.
    pub(super) fn post_form(&self, segments: &[&str], fields: &[(&str, &str)]) -> RequestBuilder {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("from", self.gateway_id.as_str())
            .append_pair("secret", self.secret.expose())
            .extend_pairs(fields)
            .finish();
        self.http
            .post(self.endpoint(segments))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    }

    /// Sends the request; a success answer is returned unread, anything else becomes an
    /// [`Error`].
    pub(super) async fn execute(&self, request: RequestBuilder) -> Result<Response, Error> {
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let retry_after = response.headers().get(RETRY_AFTER).and_then(retry_seconds);
        let body = read_error_body(response).await;
        Err(error_for_status(status.as_u16(), &body, retry_after))
    }

    /// Sends the request and returns the success answer as trimmed text.
    pub(super) async fn text(&self, request: RequestBuilder) -> Result<String, Error> {
        let response = self.execute(request).await?;
        let bytes = read_capped(response, TEXT_LIMIT).await?;
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::Decode("answer is not UTF-8 text".to_owned()))?;
        Ok(text.trim().to_owned())
    }

    /// Like [`Client::text`], with 404 meaning `None`.
    pub(super) async fn text_or_none(
        &self,
        request: RequestBuilder,
    ) -> Result<Option<String>, Error> {
        match self.text(request).await {
            Ok(text) => Ok(Some(text)),
            Err(Error::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sends the request and parses the success answer as JSON.
    pub(super) async fn json<T: serde::de::DeserializeOwned>(
        &self,
        request: RequestBuilder,
    ) -> Result<T, Error> {
        let response = self.execute(request).await?;
        let bytes = read_capped(response, JSON_LIMIT).await?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Decode(format!("JSON answer: {e}")))
    }
}

/// Parses a server answer with a wire parser, naming what was expected on failure.
pub(super) fn decode<T, E: std::fmt::Display>(
    parsed: Result<T, E>,
    what: &str,
) -> Result<T, Error> {
    parsed.map_err(|e| Error::Decode(format!("expected {what}: {e}")))
}

/// `Retry-After` in whole seconds; an HTTP-date or garbage gives `None`.
fn retry_seconds(value: &HeaderValue) -> Option<u64> {
    value.to_str().ok()?.trim().parse().ok()
}

/// Reads the whole body, failing with [`Error::Decode`] past `limit` bytes.
pub(crate) async fn read_capped(mut response: Response, limit: usize) -> Result<Vec<u8>, Error> {
    let expected = response
        .content_length()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0);
    if expected > limit {
        return Err(too_long(limit));
    }
    let mut out = Vec::with_capacity(expected);
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        if out.len().saturating_add(chunk.len()) > limit {
            return Err(too_long(limit));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

fn too_long(limit: usize) -> Error {
    Error::Decode(format!("answer is longer than {limit} bytes"))
}

/// The start of an error body, for its reason; read failures give what was read so far.
async fn read_error_body(mut response: Response) -> String {
    let mut out = Vec::new();
    while out.len() < ERROR_BODY_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => out.extend_from_slice(&chunk),
            _ => break,
        }
    }
    out.truncate(ERROR_BODY_LIMIT);
    String::from_utf8_lossy(&out).into_owned()
}
