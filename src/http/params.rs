//! Request parameters from the query string *and* a form body, as the Gateway API allows
//! `from`/`secret` (and every other field) in either place (spec §1).

use std::collections::HashMap;
use std::net::IpAddr;

use actix_web::dev::Payload;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;

use super::error::ApiError;

/// Largest form body: a 4000-byte box is 8000 hex characters, plus the other fields.
pub const FORM_LIMIT: usize = 16 * 1024;

/// Query and form fields merged (a form field wins over a query field of the same name),
/// plus the client's address, which the rate limits key on.
#[derive(Debug, Default)]
pub struct Params {
    fields: HashMap<String, String>,
    client_ip: Option<IpAddr>,
}

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }

    /// The TCP peer's address (no proxy headers are trusted).
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
                .starts_with("application/x-www-form-urlencoded")
        })
}

impl FromRequest for Params {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let client_ip = req.peer_addr().map(|a| a.ip());
        let query = web::Query::<Vec<(String, String)>>::from_query(req.query_string());
        let body =
            is_form(req).then(|| web::Form::<Vec<(String, String)>>::from_request(req, payload));
        Box::pin(async move {
            let mut fields: HashMap<String, String> = query
                .map_err(|_| ApiError::bad_request("malformed query string"))?
                .into_inner()
                .into_iter()
                .collect();
            if let Some(body) = body {
                let form =
                    body.await
                        .map_err(|e| match e.as_response_error().status_code().as_u16() {
                            413 => ApiError::TooLarge(format!("form body over {FORM_LIMIT} bytes")),
                            _ => ApiError::bad_request("malformed form body"),
                        })?;
                fields.extend(form.into_inner());
            }
            Ok(Self { fields, client_ip })
        })
    }
}
