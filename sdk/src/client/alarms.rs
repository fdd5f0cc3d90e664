//! Alarms (`/api/v1/alarms`, a Tocsin extension): trigger one to tiers of recipients,
//! see what became of it, list and resolve them.
//!
//! Credentials travel in the query and bodies are JSON, as for `send_e2e_bulk`. An alarm
//! has no ID type of its own: its ID is the [`MessageId`] of the chat message each
//! recipient's device gets. In basic mode a request carries the `text` and names
//! recipients by ID or on-call group; in end-to-end mode it carries a box per recipient
//! instead ([`E2eClient::alarm_boxes`](super::E2eClient::alarm_boxes) seals them).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde::{Deserialize, Serialize, Serializer};

use super::{Client, Error};
use crate::protocol::{Answer, IdentityId, MessageId, Nonce, Priority};

/// An alarm to trigger. Fields left `None` take the server's defaults (priority normal,
/// a ring every 60 s, 10 rings, 1 acknowledgement, expiry after an hour).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmRequest {
    /// The text, in basic mode (the server seals it for each recipient); `None` in
    /// end-to-end mode, where each tier carries boxes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Who is alarmed, tier after tier; the first starts at once (`after_secs` 0).
    pub tiers: Vec<AlarmTier>,
    /// How urgent it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// Seconds between two rings of an unanswered recipient (10 to 3600).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ring_every_secs: Option<u64>,
    /// Rings after the first at most (0 to 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_rings: Option<u64>,
    /// "Coming" answers that acknowledge the alarm and end its escalation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_acks: Option<u64>,
    /// Seconds after which the alarm expires (60 to the server's message TTL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_after_secs: Option<u64>,
    /// While an alarm with this key is open, a trigger with it answers that alarm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dedup_key: Option<String>,
}

/// One tier of an alarm: whom it reaches, and when.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmTier {
    /// Seconds after the trigger this tier starts, unless the alarm ended before.
    pub after_secs: u64,
    /// Recipients by ID (basic mode).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<IdentityId>,
    /// On-call groups, whose members are reached as they are when the tier starts
    /// (basic mode).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// A box per recipient (end-to-end mode).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub boxes: Vec<AlarmBox>,
}

/// The alarm's message sealed by the caller for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmBox {
    /// The recipient.
    pub to: IdentityId,
    /// The nonce the box was sealed with.
    pub nonce: Nonce,
    /// The NaCl box, at most 4000 bytes.
    pub sealed: Vec<u8>,
}

impl Serialize for AlarmBox {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Wire<'a> {
            to: &'a IdentityId,
            nonce: String,
            #[serde(rename = "box")]
            sealed: String,
        }
        Wire {
            to: &self.to,
            nonce: BASE64.encode(self.nonce.as_bytes()),
            sealed: BASE64.encode(&self.sealed),
        }
        .serialize(serializer)
    }
}

/// Where an alarm stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlarmState {
    /// Ringing and escalating: not enough recipients are coming yet.
    Triggered,
    /// Enough recipients are coming; escalation ended.
    Acknowledged,
    /// The gateway ID declared it over.
    Resolved,
    /// It ran out of time.
    Expired,
}

impl AlarmState {
    /// The name on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Triggered => "triggered",
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
            Self::Expired => "expired",
        }
    }
}

impl std::fmt::Display for AlarmState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The answer to a trigger.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggeredAlarm {
    /// The alarm's ID (the message ID its recipients get).
    pub alarm_id: MessageId,
    /// Its state now.
    pub state: AlarmState,
    /// An earlier alarm was answered (same dedup key while open, or same idempotency
    /// key) and nothing new was triggered.
    pub deduplicated: bool,
}

/// One alarm of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmSummary {
    /// The alarm's ID.
    pub alarm_id: MessageId,
    /// Its state.
    pub state: AlarmState,
    /// How urgent it is.
    pub priority: Priority,
    /// Its dedup key, if it has one.
    #[serde(default)]
    pub dedup_key: Option<String>,
    /// When it was triggered, in Unix milliseconds.
    pub created_at: i64,
}

/// What an alarm came to, recipient by recipient. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmStatus {
    /// The alarm's ID.
    pub alarm_id: MessageId,
    /// Its state.
    pub state: AlarmState,
    /// How urgent it is.
    pub priority: Priority,
    /// Its dedup key, if it has one.
    #[serde(default)]
    pub dedup_key: Option<String>,
    /// Seconds between two rings.
    pub ring_every_secs: i64,
    /// Rings after the first at most.
    pub max_rings: i64,
    /// "Coming" answers that acknowledge it.
    pub required_acks: i64,
    /// When it was triggered.
    pub created_at: i64,
    /// When it expires (or expired).
    pub expires_at: i64,
    /// When it was acknowledged, resolved or expired.
    #[serde(default)]
    pub ended_at: Option<i64>,
    /// Its tiers, first first.
    pub tiers: Vec<TierStatus>,
}

/// One tier of an [`AlarmStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TierStatus {
    /// 1 for the first tier.
    pub tier: i64,
    /// Seconds after the trigger it starts.
    pub after_secs: i64,
    /// The on-call groups it names.
    #[serde(default)]
    pub groups: Vec<String>,
    /// When it started; `None` while it waits (or if the alarm ended first).
    #[serde(default)]
    pub started_at: Option<i64>,
    /// Its recipients: those named, and the group members once it started.
    pub recipients: Vec<RecipientStatus>,
}

/// One recipient of a [`TierStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecipientStatus {
    /// The recipient.
    pub id: IdentityId,
    /// When the alarm's message was queued for them.
    #[serde(default)]
    pub sent_at: Option<i64>,
    /// The balance could not pay for their delivery when the tier started.
    #[serde(default)]
    pub unpaid: bool,
    /// Rings so far.
    pub rings: i64,
    /// What they answered, if anything.
    #[serde(default)]
    pub answer: Option<Answer>,
    /// Minutes until they arrive, if they said.
    #[serde(default)]
    pub eta_minutes: Option<i64>,
    /// Their note, if any.
    #[serde(default)]
    pub note: Option<String>,
    /// When they answered.
    #[serde(default)]
    pub answered_at: Option<i64>,
}

impl Client {
    /// Triggers an alarm. With `idempotency_key`, a retry with the same key answers the
    /// first alarm instead of triggering another.
    ///
    /// Cost: 1 credit per recipient reached, charged as each tier starts; the first
    /// tier must be affordable at once.
    ///
    /// # Errors
    ///
    /// [`Error::BadRequest`] for a request the gateway ID's mode does not take (text
    /// and IDs in basic mode, boxes in end-to-end mode), an unknown recipient, or a
    /// value out of range; [`Error::NoCredits`] when the first tier cannot be paid;
    /// [`Error::TooLarge`] for a text, box or recipient list over its limit;
    /// [`Error::Invalid`] for a malformed idempotency key; [`Error::Unauthorized`],
    /// [`Error::RateLimited`], [`Error::Server`], [`Error::Transport`],
    /// [`Error::Decode`].
    pub async fn trigger_alarm(
        &self,
        alarm: &AlarmRequest,
        idempotency_key: Option<&str>,
    ) -> Result<TriggeredAlarm, Error> {
        let mut request = self
            .post_with_query(&["api", "v1", "alarms"], &[])
            .json(alarm);
        if let Some(key) = idempotency_key {
            super::send::check_key(key)?;
            request = request.header("Idempotency-Key", key);
        }
        self.json(request).await
    }

    /// The alarm `id` of this gateway ID, recipient by recipient; `None` when there is
    /// none (another gateway ID's alarm included).
    ///
    /// Cost: free.
    ///
    /// # Errors
    ///
    /// [`Error::Unauthorized`], [`Error::RateLimited`], [`Error::Server`],
    /// [`Error::Transport`], [`Error::Decode`].
    pub async fn alarm(&self, id: &MessageId) -> Result<Option<AlarmStatus>, Error> {
        let id = id.to_string();
        match self.json(self.get(&["api", "v1", "alarms", &id])).await {
            Ok(status) => Ok(Some(status)),
            Err(Error::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Declares the alarm `id` over: its ringing stops on every device reached.
    /// Resolving an alarm that already ended answers it as it is.
    ///
    /// Cost: free.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when this gateway ID has no such alarm; otherwise as
    /// [`Client::alarm`].
    pub async fn resolve_alarm(&self, id: &MessageId) -> Result<AlarmStatus, Error> {
        let id = id.to_string();
        let request = self.post_with_query(&["api", "v1", "alarms", &id, "resolve"], &[]);
        self.json(request).await
    }

    /// The newest alarms of this gateway ID (at most 100), newest first; with
    /// `open_only`, only those still triggered.
    ///
    /// Cost: free.
    ///
    /// # Errors
    ///
    /// As [`Client::alarm`].
    pub async fn alarms(&self, open_only: bool) -> Result<Vec<AlarmSummary>, Error> {
        let state: &[(&str, &str)] = if open_only { &[("state", "open")] } else { &[] };
        let request = self
            .http
            .get(self.query_url(&["api", "v1", "alarms"], state));
        self.json(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_written_as_the_server_reads_it() {
        let alarm = AlarmRequest {
            text: Some("Fire".into()),
            tiers: vec![
                AlarmTier {
                    to: vec![IdentityId::parse("ALICE123").unwrap()],
                    ..AlarmTier::default()
                },
                AlarmTier {
                    after_secs: 300,
                    groups: vec!["night".into()],
                    boxes: vec![AlarmBox {
                        to: IdentityId::parse("BOB45678").unwrap(),
                        nonce: Nonce::from_slice(&[1; 24]).unwrap(),
                        sealed: vec![2, 3],
                    }],
                    ..AlarmTier::default()
                },
            ],
            priority: Some(Priority::Critical),
            ring_every_secs: Some(60),
            dedup_key: Some("db-1".into()),
            ..AlarmRequest::default()
        };
        let json = serde_json::to_value(&alarm).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "text": "Fire",
                "tiers": [
                    {"afterSecs": 0, "to": ["ALICE123"]},
                    {"afterSecs": 300, "groups": ["night"], "boxes": [
                        {"to": "BOB45678", "nonce": BASE64.encode([1; 24]), "box": "AgM="}
                    ]},
                ],
                "priority": "critical",
                "ringEverySecs": 60,
                "dedupKey": "db-1",
            })
        );
    }

    #[test]
    fn a_status_reads_with_its_optional_fields_absent_or_present() {
        let status: AlarmStatus = serde_json::from_value(serde_json::json!({
            "alarmId": "0102030405060708", "state": "acknowledged", "priority": "high",
            "ringEverySecs": 60, "maxRings": 10, "requiredAcks": 1,
            "createdAt": 1, "expiresAt": 2, "endedAt": 3,
            "tiers": [{"tier": 1, "afterSecs": 0, "startedAt": 1, "recipients": [
                {"id": "ALICE123", "sentAt": 1, "rings": 2, "answer": "coming",
                 "etaMinutes": 5, "note": "on my way", "answeredAt": 3},
                {"id": "BOB45678", "unpaid": true, "rings": 0}
            ]}]
        }))
        .unwrap();
        assert_eq!(status.state, AlarmState::Acknowledged);
        let [alice, bob] = &status.tiers[0].recipients[..] else {
            panic!("two recipients");
        };
        assert_eq!(
            (alice.answer, alice.eta_minutes),
            (Some(Answer::Coming), Some(5))
        );
        assert!(bob.unpaid && bob.sent_at.is_none() && bob.answer.is_none());
    }
}
