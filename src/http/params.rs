//! Request parameters from the query string *and* a form body, as the Gateway API allows
//! `from`/`secret` (and every other field) in either place (spec §1).
//!
//! Every send passes through here, so the fields are decoded into one string with their
//! offsets beside it: two allocations per request instead of two per field plus a map.

use std::net::IpAddr;
use std::ops::Range;

use actix_web::dev::Payload;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use url::form_urlencoded;

use super::body::Deadline;
use super::error::ApiError;

/// Largest form body: a 4000-byte box is 8000 hex characters, plus the other fields.
pub const FORM_LIMIT: usize = 16 * 1024;

/// Query and form fields merged (a form field wins over a query field of the same name,
/// and a later field over an earlier one), plus the client's address, which the rate
/// limits key on.
#[derive(Debug, Default)]
pub struct Params {
    /// Every name and value, percent-decoded, one after the other.
    text: String,
    /// Each field's name and value in `text`, in arrival order: query first, then form.
    fields: Vec<(Range<usize>, Range<usize>)>,
    client_ip: Option<IpAddr>,
}

impl Params {
    /// Decodes `application/x-www-form-urlencoded` fields (a query string or a form body)
    /// after the ones already held. Invalid UTF-8 becomes U+FFFD, as in every form decoder.
    fn add(&mut self, encoded: &[u8]) {
        // Decoding never makes a field longer.
        self.text.reserve(encoded.len());
        for pair in encoded.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            let start = self.text.len();
            // Most fields (hex, IDs, secrets) need no decoding and are copied as they are.
            let plain = (!pair.iter().any(|&b| b == b'%' || b == b'+'))
                .then(|| std::str::from_utf8(pair).ok())
                .flatten();
            let middle = match plain {
                Some(plain) => {
                    let (name, value) = plain.split_once('=').unwrap_or((plain, ""));
                    self.text.push_str(name);
                    let middle = self.text.len();
                    self.text.push_str(value);
                    middle
                }
                None => {
                    let mut middle = start;
                    for (name, value) in form_urlencoded::parse(pair) {
                        self.text.push_str(&name);
                        middle = self.text.len();
                        self.text.push_str(&value);
                    }
                    middle
                }
            };
            self.fields.push((start..middle, middle..self.text.len()));
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .rev()
            .find(|(n, _)| &self.text[n.clone()] == name)
            .map(|(_, value)| &self.text[value.clone()])
    }

    /// The client's address: the TCP peer, or behind a trusted proxy the address it
    /// forwarded (`crate::client_ip`).
    pub fn client_ip(&self) -> Option<IpAddr> {
        self.client_ip
    }

    /// Flags such as `noDeliveryReceipts`: `1` and `true` mean set (spec §2.2).
    pub fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some("1" | "true" | "TRUE" | "True"))
    }
}

fn is_form(req: &HttpRequest) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .get(..33)
                .is_some_and(|t| t.eq_ignore_ascii_case("application/x-www-form-urlencoded"))
        })
}

fn too_large() -> ApiError {
    ApiError::TooLarge(format!("form body over {FORM_LIMIT} bytes"))
}

impl FromRequest for Params {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let client_ip = match req.app_data::<actix_web::web::Data<crate::state::AppState>>() {
            Some(state) => state.proxies.client_ip(req),
            None => req.peer_addr().map(|a| a.ip()),
        };
        let mut params = Params {
            client_ip,
            ..Params::default()
        };
        params.add(req.query_string().as_bytes());
        if !is_form(req) {
            return Box::pin(std::future::ready(Ok(params)));
        }
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > FORM_LIMIT) {
            return Box::pin(std::future::ready(Err(too_large())));
        }
        let mut payload = payload.take();
        let deadline = Deadline::for_body(req);
        Box::pin(async move {
            let mut body = Vec::with_capacity(declared.unwrap_or(0));
            while let Some(chunk) = deadline.next(&mut payload).await? {
                let chunk = chunk.map_err(|_| ApiError::bad_request("malformed form body"))?;
                if body.len() + chunk.len() > FORM_LIMIT {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            params.add(&body);
            Ok(params)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    async fn extract(req: TestRequest) -> Result<Params, ApiError> {
        let (req, mut payload) = req.to_http_parts();
        Params::from_request(&req, &mut payload).await
    }

    fn form(body: &str) -> TestRequest {
        TestRequest::post()
            .uri("/send_e2e?from=QUERY&to=ECHOECHO")
            .insert_header((CONTENT_TYPE, "application/x-www-form-urlencoded"))
            .set_payload(body.to_owned())
    }

    #[actix_web::test]
    async fn form_fields_win_over_query_fields_and_are_decoded() {
        let p = extract(form(
            "from=%2AGATEWAY&text=Gr%C3%BC%C3%9Fe+aus+Bern&noPush=1",
        ))
        .await
        .unwrap();
        assert_eq!(p.get("from"), Some("*GATEWAY"));
        assert_eq!(p.get("to"), Some("ECHOECHO"));
        assert_eq!(p.get("text"), Some("Grüße aus Bern"));
        assert!(p.flag("noPush"));
        assert!(!p.flag("group"));
        assert_eq!(p.get("missing"), None);
    }

    /// Fields copied as they are and fields decoded come out as the form decoder of the
    /// `url` crate gives them, edge cases included.
    #[test]
    fn fields_read_as_the_form_decoder_reads_them() {
        let inputs: [&[u8]; 7] = [
            b"a=1&&b=2&",
            b"flag&x=&=y",
            b"k=v=w&k2==",
            b"raw=\xff\xfe&ok=%E2%9C%93",
            b"mixed=a+b%20c&plain=abc",
            b"%3D=%26&%zz=bad%",
            b"",
        ];
        for input in inputs {
            let mut p = Params::default();
            p.add(input);
            let ours: Vec<(&str, &str)> = p
                .fields
                .iter()
                .map(|(n, v)| (&p.text[n.clone()], &p.text[v.clone()]))
                .collect();
            let theirs: Vec<(String, String)> = form_urlencoded::parse(input)
                .map(|(n, v)| (n.into_owned(), v.into_owned()))
                .collect();
            let theirs: Vec<(&str, &str)> = theirs
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            assert_eq!(ours, theirs, "{}", String::from_utf8_lossy(input));
        }
    }

    #[actix_web::test]
    async fn the_last_of_repeated_fields_counts_and_empty_values_stay_empty() {
        let p = extract(form("to=AAAAAAAA&to=BBBBBBBB&text="))
            .await
            .unwrap();
        assert_eq!(p.get("to"), Some("BBBBBBBB"));
        assert_eq!(p.get("text"), Some(""));
    }

    #[actix_web::test]
    async fn a_body_that_is_not_a_form_is_not_read_as_fields() {
        let req = TestRequest::post()
            .uri("/send_e2e?from=QUERY")
            .insert_header((CONTENT_TYPE, "text/plain"))
            .set_payload("from=BODY");
        let p = extract(req).await.unwrap();
        assert_eq!(p.get("from"), Some("QUERY"));
    }

    #[actix_web::test]
    async fn content_type_is_matched_without_regard_to_case_or_parameters() {
        let req = TestRequest::post()
            .insert_header((
                CONTENT_TYPE,
                "Application/X-WWW-Form-Urlencoded; charset=UTF-8",
            ))
            .set_payload("from=BODY");
        assert_eq!(extract(req).await.unwrap().get("from"), Some("BODY"));
    }

    #[actix_web::test]
    async fn a_body_over_the_limit_is_refused_whether_declared_or_not() {
        let big = format!("text={}", "a".repeat(FORM_LIMIT));
        let declared = extract(form(&big)).await.unwrap_err();
        assert!(matches!(declared, ApiError::TooLarge(_)), "{declared:?}");
        // Without a Content-Length (chunked), the limit is checked while reading.
        let req = TestRequest::post()
            .insert_header((CONTENT_TYPE, "application/x-www-form-urlencoded"))
            .to_http_request();
        let mut payload = Payload::from(actix_web::web::Bytes::from(big));
        let streamed = Params::from_request(&req, &mut payload).await.unwrap_err();
        assert!(matches!(streamed, ApiError::TooLarge(_)), "{streamed:?}");
    }
}
