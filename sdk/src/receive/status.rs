//! The customer's side of the status webhook: check the signature before reading the
//! body, then the addressee, duplicates and freshness, as the callback receiver does.
//!
//! An event of a `type` this SDK does not know is not a failure of the server: a newer
//! server may report more. [`StatusKind`](crate::protocol::StatusKind) is
//! `#[non_exhaustive]` and serde refuses a tag it does not know, so such an event comes
//! out as [`StatusReceiveError::UnknownType`], after every check a known event passes
//! (so it is authentic, addressed here, new and fresh), and its status is 200: no retry
//! would make it readable. A known type with fields that do not parse is
//! [`StatusReceiveError::Malformed`] (400), since that is a fault worth seeing.

use std::fmt;
use std::sync::{Mutex, PoisonError};

use serde::Deserialize;

use super::seen::Seen;
use super::{ReceiverOptions, StatusReceiveError, MAX_BODY_BYTES};
use crate::protocol::{verify_status_signature, GatewayId, StatusEvent, StatusKind, StatusSecret};

/// Checks the status events of one gateway ID. Shareable between threads (`&self`
/// everywhere); the duplicate memory sits behind a mutex.
///
/// ```
/// use tocsin_sdk::protocol::{status_signature, GatewayId, StatusKind, StatusSecret};
/// use tocsin_sdk::receive::StatusReceiver;
///
/// let secret = StatusSecret::generate();
/// let receiver = StatusReceiver::new(GatewayId::parse("*TESTTST")?, secret.clone());
/// let body = br#"{"id":"00112233445566778899aabbccddeeff","gatewayId":"*TESTTST",
///     "type":"message.read","messageId":"0102030405060708","recipient":"ECHOECHO",
///     "at":1700000000123}"#;
/// let header = status_signature(&secret, 1_700_000_001, body);
/// let event = receiver.receive(body, Some(&header), 1_700_000_002)?;
/// assert!(matches!(event.kind, StatusKind::Read(_)));
///
/// let again = receiver.receive(body, Some(&header), 1_700_000_003).unwrap_err();
/// assert_eq!(again.status(), 200); // a duplicate: answer 200 so the server stops
/// let forged = receiver.receive(body, Some("t=1,v1=00"), 1_700_000_003).unwrap_err();
/// assert_eq!(forged.status(), 401);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct StatusReceiver {
    own: GatewayId,
    secret: StatusSecret,
    options: ReceiverOptions,
    seen: Mutex<Seen<String>>,
}

impl fmt::Debug for StatusReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatusReceiver")
            .field("own", &self.own)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// What every event has, whatever its type: enough to judge it before knowing the type.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    id: String,
    gateway_id: String,
    #[serde(rename = "type")]
    kind: String,
}

impl StatusReceiver {
    /// A receiver for `own_gateway_id`, checking signatures with its status signing
    /// `secret`, with the default [`ReceiverOptions`].
    pub fn new(own_gateway_id: GatewayId, secret: StatusSecret) -> Self {
        Self::with_options(own_gateway_id, secret, ReceiverOptions::default())
    }

    /// Like [`StatusReceiver::new`], with other options. The age limits apply to the
    /// signature's `t`, the time of the delivery attempt.
    pub fn with_options(
        own_gateway_id: GatewayId,
        secret: StatusSecret,
        options: ReceiverOptions,
    ) -> Self {
        let seen = Mutex::new(Seen::new(options.dedupe_capacity));
        Self {
            own: own_gateway_id,
            secret,
            options,
            seen,
        }
    }

    /// The gateway ID events must be about.
    pub fn gateway_id(&self) -> &GatewayId {
        &self.own
    }

    /// The options in force.
    pub fn options(&self) -> &ReceiverOptions {
        &self.options
    }

    /// Checks one request at time `now_unix_secs`: its JSON `body` exactly as received
    /// and its `X-Tocsin-Signature` header (`None` when absent). In this order, it
    ///
    /// 1. refuses a body over [`MAX_BODY_BYTES`];
    /// 2. refuses a request without the header;
    /// 3. checks the signature (HMAC-SHA256 over `t.body`, in constant time) before
    ///    anything of the body is read;
    /// 4. reads the event's `id`, `gatewayId` and `type`, and the rest for a known
    ///    type;
    /// 5. refuses an event about another gateway ID;
    /// 6. refuses an `id` taken before ([`StatusReceiveError::Duplicate`], which
    ///    answers 200, so the server stops);
    /// 7. refuses a `t` older than the maximum age (300 s by default) or further in
    ///    the future than the allowed skew (60 s);
    /// 8. remembers the `id` (the newest 10,000 by default) and returns the event, or
    ///    [`StatusReceiveError::UnknownType`] (200) for a type this SDK does not know.
    ///
    /// The duplicate check comes before the age check for the callback receiver's
    /// reason: an event taken before is answered 200 whatever its `t`, which ends the
    /// server's retries instead of refusing them again and again.
    ///
    /// # Errors
    ///
    /// A [`StatusReceiveError`]; answer its [`StatusReceiveError::status`].
    pub fn receive(
        &self,
        body: &[u8],
        signature_header: Option<&str>,
        now_unix_secs: u64,
    ) -> Result<StatusEvent, StatusReceiveError> {
        if body.len() > MAX_BODY_BYTES {
            return Err(StatusReceiveError::TooLarge {
                len: body.len(),
                limit: MAX_BODY_BYTES,
            });
        }
        let header = signature_header.ok_or(StatusReceiveError::MissingSignature)?;
        let t = verify_status_signature(&self.secret, header, body)
            .map_err(StatusReceiveError::BadSignature)?;
        // From here on, the body is as the server sent it.
        let malformed = |e: serde_json::Error| StatusReceiveError::Malformed(e.to_string());
        let envelope: Envelope = serde_json::from_slice(body).map_err(malformed)?;
        let event = match serde_json::from_slice::<StatusEvent>(body) {
            Ok(event) => Some(event),
            Err(e) if StatusKind::NAMES.contains(&envelope.kind.as_str()) => {
                return Err(malformed(e))
            }
            Err(_) => None,
        };
        if envelope.gateway_id != self.own.as_str() {
            return Err(StatusReceiveError::WrongGateway {
                gateway_id: envelope.gateway_id,
            });
        }
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.contains(&envelope.id) {
            return Err(StatusReceiveError::Duplicate { id: envelope.id });
        }
        self.options.check_time(t, now_unix_secs)?;
        seen.insert(envelope.id.clone());
        event.ok_or(StatusReceiveError::UnknownType {
            id: envelope.id,
            kind: envelope.kind,
        })
    }

    /// Forgets that `event` was taken, so that the server's next delivery of it is
    /// accepted. For a caller that could not handle it for a passing reason and
    /// answers an error status to get it again. Returns whether it was remembered.
    pub fn forget(&self, event: &StatusEvent) -> bool {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&event.id)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::protocol::{status_signature, SignatureError};

    const NOW: u64 = 1_700_000_000;
    const ID: &str = "00112233445566778899aabbccddeeff";

    fn secret() -> StatusSecret {
        StatusSecret::parse(&format!("tss_{}", "ab".repeat(32))).unwrap()
    }

    fn receiver() -> StatusReceiver {
        StatusReceiver::new(GatewayId::parse("*TESTTST").unwrap(), secret())
    }

    /// An event body with `id`, `gateway_id` and `kind`, and a report.
    fn body(id: &str, gateway_id: &str, kind: &str) -> Vec<u8> {
        format!(
            r#"{{"id":"{id}","gatewayId":"{gateway_id}","type":"{kind}","messageId":"0102030405060708","recipient":"ECHOECHO","at":1700000000123}}"#
        )
        .into_bytes()
    }

    fn delivered() -> Vec<u8> {
        body(ID, "*TESTTST", "message.delivered")
    }

    fn signed(body: &[u8], t: u64) -> String {
        status_signature(&secret(), t, body)
    }

    #[test]
    fn a_signed_fresh_event_is_taken_with_its_report() {
        let event = receiver()
            .receive(&delivered(), Some(&signed(&delivered(), NOW)), NOW)
            .unwrap();
        assert_eq!(event.id, ID);
        assert_eq!(event.gateway_id.as_str(), "*TESTTST");
        let StatusKind::Delivered(report) = event.kind else {
            panic!("{event:?}");
        };
        assert_eq!(report.recipient.as_str(), "ECHOECHO");
        assert_eq!(report.message_id.to_string(), "0102030405060708");
        assert_eq!(report.at, 1_700_000_000_123);
    }

    #[test]
    fn a_forged_or_altered_request_is_refused_before_its_body_is_read() {
        let rx = receiver();
        let other = StatusSecret::generate();
        let forged = status_signature(&other, NOW, &delivered());
        let err = rx.receive(&delivered(), Some(&forged), NOW).unwrap_err();
        assert_eq!(
            err,
            StatusReceiveError::BadSignature(SignatureError::Mismatch)
        );
        assert_eq!(err.status(), 401);
        // Signed for one body, sent with another.
        let header = signed(&delivered(), NOW);
        let altered = body(ID, "*TESTTST", "message.read");
        let err = rx.receive(&altered, Some(&header), NOW).unwrap_err();
        assert_eq!(
            err,
            StatusReceiveError::BadSignature(SignatureError::Mismatch)
        );
        // Not even JSON: the signature is judged first.
        let err = rx.receive(b"{", Some("t=1,v1=00"), NOW).unwrap_err();
        assert_eq!(
            err,
            StatusReceiveError::BadSignature(SignatureError::Malformed)
        );
        assert_eq!(err.status(), 401);
        // None of them counted as taken.
        assert!(rx.receive(&delivered(), Some(&header), NOW).is_ok());
    }

    #[test]
    fn a_request_without_the_header_is_refused_401() {
        let err = receiver().receive(&delivered(), None, NOW).unwrap_err();
        assert_eq!(err, StatusReceiveError::MissingSignature);
        assert_eq!(err.status(), 401);
    }

    #[test]
    fn an_oversized_body_is_refused_413_even_when_signed() {
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        let err = receiver()
            .receive(&big, Some(&signed(&big, NOW)), NOW)
            .unwrap_err();
        assert!(matches!(err, StatusReceiveError::TooLarge { len, limit }
            if len == MAX_BODY_BYTES + 1 && limit == MAX_BODY_BYTES));
        assert_eq!(err.status(), 413);
    }

    #[test]
    fn stale_and_future_signatures_are_refused_400_at_the_limits() {
        let rx = receiver();
        let ok_old = body("01", "*TESTTST", "message.read");
        assert!(rx
            .receive(&ok_old, Some(&signed(&ok_old, NOW - 300)), NOW)
            .is_ok());
        let ok_ahead = body("02", "*TESTTST", "message.read");
        let header = signed(&ok_ahead, NOW + 60);
        assert!(rx.receive(&ok_ahead, Some(&header), NOW).is_ok());
        let stale = body("03", "*TESTTST", "message.read");
        let err = rx
            .receive(&stale, Some(&signed(&stale, NOW - 301)), NOW)
            .unwrap_err();
        assert_eq!(
            err,
            StatusReceiveError::Stale {
                age_secs: 301,
                max_secs: 300
            }
        );
        assert_eq!(err.status(), 400);
        let future = body("04", "*TESTTST", "message.read");
        let err = rx
            .receive(&future, Some(&signed(&future, NOW + 61)), NOW)
            .unwrap_err();
        assert_eq!(
            err,
            StatusReceiveError::FromTheFuture {
                ahead_secs: 61,
                max_secs: 60
            }
        );
        assert_eq!(err.status(), 400);
        // A refused event is not remembered: signed afresh, it is taken.
        assert!(rx.receive(&stale, Some(&signed(&stale, NOW)), NOW).is_ok());
    }

    #[test]
    fn without_limits_any_time_is_taken() {
        let options = ReceiverOptions {
            max_age: None,
            max_future: None,
            ..ReceiverOptions::default()
        };
        let rx = StatusReceiver::with_options(*receiver().gateway_id(), secret(), options);
        let old = body("01", "*TESTTST", "message.read");
        assert!(rx.receive(&old, Some(&signed(&old, 0)), NOW).is_ok());
        let ahead = body("02", "*TESTTST", "message.read");
        let header = signed(&ahead, NOW + 86_400);
        assert!(rx.receive(&ahead, Some(&header), NOW).is_ok());
    }

    #[test]
    fn a_duplicate_is_answered_200_even_when_stale_until_forgotten() {
        let rx = receiver();
        let event = rx
            .receive(&delivered(), Some(&signed(&delivered(), NOW)), NOW)
            .unwrap();
        // The retry is signed anew, with the same event ID.
        let retry = signed(&delivered(), NOW + 5);
        let err = rx.receive(&delivered(), Some(&retry), NOW + 5).unwrap_err();
        assert_eq!(err, StatusReceiveError::Duplicate { id: ID.into() });
        assert_eq!(err.status(), 200);
        // Long after: still a duplicate rather than stale, so the retries end.
        let err = rx
            .receive(&delivered(), Some(&retry), NOW + 3_600)
            .unwrap_err();
        assert_eq!(err, StatusReceiveError::Duplicate { id: ID.into() });
        assert!(rx.forget(&event));
        assert!(!rx.forget(&event));
        assert_eq!(rx.receive(&delivered(), Some(&retry), NOW + 5), Ok(event));
    }

    #[test]
    fn an_event_about_another_gateway_id_is_refused_400() {
        let other = body(ID, "*OTHERID", "message.delivered");
        let err = receiver()
            .receive(&other, Some(&signed(&other, NOW)), NOW)
            .unwrap_err();
        assert_eq!(
            err,
            StatusReceiveError::WrongGateway {
                gateway_id: "*OTHERID".into()
            }
        );
        assert_eq!(err.status(), 400);
    }

    #[test]
    fn an_unknown_type_is_answered_200_once_checked_and_counts_as_taken() {
        let rx = receiver();
        let newer = body(ID, "*TESTTST", "message.forwarded");
        let header = signed(&newer, NOW);
        let err = rx.receive(&newer, Some(&header), NOW).unwrap_err();
        assert_eq!(
            err,
            StatusReceiveError::UnknownType {
                id: ID.into(),
                kind: "message.forwarded".into()
            }
        );
        assert_eq!(err.status(), 200);
        let err = rx.receive(&newer, Some(&header), NOW).unwrap_err();
        assert_eq!(err, StatusReceiveError::Duplicate { id: ID.into() });
        // Still judged like any event first.
        let stale = body("01", "*TESTTST", "message.forwarded");
        let err = rx
            .receive(&stale, Some(&signed(&stale, NOW - 301)), NOW)
            .unwrap_err();
        assert_eq!(err.status(), 400);
        let elsewhere = body("02", "*OTHERID", "message.forwarded");
        let err = rx
            .receive(&elsewhere, Some(&signed(&elsewhere, NOW)), NOW)
            .unwrap_err();
        assert_eq!(err.status(), 400);
    }

    #[test]
    fn a_known_type_without_its_fields_or_no_event_at_all_is_malformed() {
        let rx = receiver();
        for bad in [
            format!(r#"{{"id":"{ID}","gatewayId":"*TESTTST","type":"message.read"}}"#),
            format!(r#"{{"id":"{ID}","gatewayId":"*TESTTST"}}"#),
            format!(r#"{{"id":"{ID}","type":"message.read"}}"#),
            "[]".to_owned(),
            "not json".to_owned(),
        ] {
            let err = rx
                .receive(bad.as_bytes(), Some(&signed(bad.as_bytes(), NOW)), NOW)
                .unwrap_err();
            assert!(
                matches!(err, StatusReceiveError::Malformed(_)),
                "{bad}: {err:?}"
            );
            assert_eq!(err.status(), 400);
        }
        // None of them was taken.
        assert!(rx
            .receive(&delivered(), Some(&signed(&delivered(), NOW)), NOW)
            .is_ok());
    }

    #[test]
    fn alarm_events_are_taken_as_known_kinds_and_malformed_ones_refused() {
        let rx = receiver();
        let answered = br#"{"id":"0a","gatewayId":"*TESTTST","type":"alarm.answered","alarmId":"0102030405060708","responder":"ALICE123","answer":"coming","etaMinutes":5,"at":1700000000123}"#;
        let event = rx
            .receive(answered, Some(&signed(answered, NOW)), NOW)
            .unwrap();
        let StatusKind::AlarmAnswered(answer) = &event.kind else {
            panic!("{event:?}");
        };
        assert_eq!(answer.responder.as_str(), "ALICE123");
        assert_eq!(event.kind.alarm_id(), Some(answer.alarm_id));
        let resolved = br#"{"id":"0b","gatewayId":"*TESTTST","type":"alarm.resolved","alarmId":"0102030405060708","at":1}"#;
        let event = rx
            .receive(resolved, Some(&signed(resolved, NOW)), NOW)
            .unwrap();
        assert_eq!(event.kind.name(), "alarm.resolved");
        // A known alarm type without its fields is a fault, not a newer kind.
        let bare = br#"{"id":"0c","gatewayId":"*TESTTST","type":"alarm.escalated","alarmId":"0102030405060708","at":1}"#;
        let err = rx.receive(bare, Some(&signed(bare, NOW)), NOW).unwrap_err();
        assert!(matches!(err, StatusReceiveError::Malformed(_)), "{err:?}");
        assert_eq!(err.status(), 400);
    }

    #[test]
    fn the_memory_is_bounded_by_the_capacity() {
        let options = ReceiverOptions {
            dedupe_capacity: 1,
            max_age: Some(Duration::from_secs(300)),
            ..ReceiverOptions::default()
        };
        let rx = StatusReceiver::with_options(*receiver().gateway_id(), secret(), options);
        let first = body("01", "*TESTTST", "message.read");
        let second = body("02", "*TESTTST", "message.read");
        for b in [&first, &second, &first] {
            assert!(rx.receive(b, Some(&signed(b, NOW)), NOW).is_ok());
        }
    }

    #[test]
    fn the_receiver_never_prints_its_secret() {
        let printed = format!("{:?}", receiver());
        assert!(!printed.contains(secret().expose()), "{printed}");
        assert!(printed.contains("*TESTTST"), "{printed}");
    }
}
