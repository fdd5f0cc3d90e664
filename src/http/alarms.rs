//! `/api/v1/alarms`: trigger an alarm, see what became of it, list and resolve them (a
//! Tocsin extension; the gateway ID's credentials in the query, JSON bodies).
//!
//! A trigger names tiers of recipients. Basic mode: a `text` the server seals for each
//! recipient when their tier starts, recipients by ID (`to`) or on-call group
//! (`groups`). End-to-end mode: a box per recipient (`boxes`), held until the tier
//! starts and deleted if it never does. The first tier starts at once (`afterSecs` 0);
//! 402 when the balance cannot pay its deliveries. A trigger with the `dedupKey` of an
//! open alarm, or the `Idempotency-Key` of an earlier trigger, answers that alarm.

use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use serde::{Deserialize, Serialize};
use tocsin_sdk::protocol::{MessageId, Nonce, Priority};

use super::authed;
use super::error::ApiError;
use super::json;
use super::params::Params;
use super::send::{idempotency_key, recipient, MAX_BOX_BYTES, MAX_TEXT_BYTES};
use crate::domain::UnixMs;
use crate::meter::Operation;
use crate::state::AppState;
use crate::store::{Alarm, AlarmState, GatewayMode, GatewayRecord, NewAlarm, NewTier, Triggered};

/// A trigger's body: a few thousand boxes of 4000 bytes in base64 fit.
const TRIGGER_BODY: usize = 8 * 1024 * 1024;
/// Tiers of one alarm at most.
const MAX_TIERS: usize = 10;
/// Recipients of one alarm at most (groups aside, which are resolved when a tier starts).
const MAX_RECIPIENTS: usize = 1000;
/// Alarms listed at most.
const LIST_LIMIT: i64 = 100;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TriggerBody {
    #[serde(default)]
    pub(super) text: Option<String>,
    tiers: Vec<TierBody>,
    #[serde(default)]
    priority: Option<String>,
    #[serde(default)]
    ring_every_secs: Option<u64>,
    #[serde(default)]
    max_rings: Option<u64>,
    #[serde(default)]
    required_acks: Option<u64>,
    #[serde(default)]
    expires_after_secs: Option<u64>,
    #[serde(default)]
    pub(super) dedup_key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TierBody {
    #[serde(default)]
    after_secs: u64,
    #[serde(default)]
    to: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    boxes: Vec<BoxBody>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoxBody {
    to: String,
    nonce: String,
    #[serde(rename = "box")]
    sealed: String,
}

/// Checks an integration's alarm template (a trigger without `text` and `dedupKey`, which
/// each notification supplies) as far as it can be checked before a trigger: its shape
/// and its numbers. Recipients are checked when it triggers.
pub fn check_template(json: &str) -> Result<(), String> {
    let body: TriggerBody =
        serde_json::from_str(json).map_err(|e| format!("not an alarm template: {e}"))?;
    if body.text.is_some() || body.dedup_key.is_some() {
        return Err("text and dedupKey come from each notification; leave them out".into());
    }
    if body.tiers.is_empty() || body.tiers.len() > MAX_TIERS {
        return Err(format!("an alarm has 1 to {MAX_TIERS} tiers"));
    }
    if body.tiers.iter().any(|t| !t.boxes.is_empty()) {
        return Err("boxes are for end-to-end mode; an integration's gateway ID is basic".into());
    }
    if body.tiers[0].after_secs != 0 {
        return Err("the first tier starts at once: its afterSecs is 0".into());
    }
    priority(body.priority.as_deref()).map_err(|e| e.to_string())?;
    Ok(())
}

fn bad(reason: impl Into<String>) -> ApiError {
    ApiError::bad_request(reason)
}

/// `value`, or `default` when absent; 400 outside `min..=max`.
fn within(
    value: Option<u64>,
    default: u64,
    min: u64,
    max: u64,
    name: &str,
) -> Result<i64, ApiError> {
    let v = value.unwrap_or(default);
    if (min..=max).contains(&v) {
        Ok(v as i64)
    } else {
        Err(bad(format!("{name} must be from {min} to {max}")))
    }
}

fn priority(raw: Option<&str>) -> Result<&'static str, ApiError> {
    Priority::parse(raw.unwrap_or("normal"))
        .map(Priority::as_str)
        .map_err(|_| bad("priority must be normal, high or critical"))
}

/// A dedup key or group name: 1–255 visible ASCII characters.
fn token(raw: &str, name: &str) -> Result<String, ApiError> {
    if (1..=255).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(raw.to_owned())
    } else {
        Err(bad(format!(
            "{name} must be 1 to 255 visible ASCII characters"
        )))
    }
}

fn decode_base64(s: &str, what: &str) -> Result<Vec<u8>, ApiError> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|_| bad(format!("{what} is not base64")))
}

/// The tiers of a trigger, checked for the gateway ID's mode; every named recipient must
/// be a live identity.
async fn tiers(
    state: &AppState,
    mode: GatewayMode,
    body: &[TierBody],
    expires_after: i64,
) -> Result<Vec<NewTier>, ApiError> {
    if body.is_empty() || body.len() > MAX_TIERS {
        return Err(bad(format!("an alarm has 1 to {MAX_TIERS} tiers")));
    }
    let mut out = Vec::new();
    let mut named = 0;
    let mut previous = 0;
    for (i, tier) in body.iter().enumerate() {
        let after = i64::try_from(tier.after_secs).unwrap_or(i64::MAX);
        if i == 0 && after != 0 {
            return Err(bad("the first tier starts at once: its afterSecs is 0"));
        }
        if after < previous || after >= expires_after {
            return Err(bad(
                "each tier's afterSecs is at least the one before and less than expiresAfterSecs",
            ));
        }
        previous = after;
        let mut recipients = Vec::new();
        match mode {
            GatewayMode::Basic => {
                if !tier.boxes.is_empty() {
                    return Err(bad(
                        "boxes are for end-to-end mode; basic mode takes to and groups",
                    ));
                }
                if tier.to.is_empty() && tier.groups.is_empty() {
                    return Err(bad("each tier names recipients in to or groups"));
                }
                for raw in &tier.to {
                    let (id, _) = recipient(state, Some(raw)).await?;
                    recipients.push((id, None));
                }
            }
            GatewayMode::E2e => {
                if !tier.to.is_empty() || !tier.groups.is_empty() {
                    return Err(bad("end-to-end mode takes a box per recipient in boxes"));
                }
                if tier.boxes.is_empty() {
                    return Err(bad("each tier has a box for each of its recipients"));
                }
                for b in &tier.boxes {
                    let (id, _) = recipient(state, Some(&b.to)).await?;
                    let nonce = Nonce::from_slice(&decode_base64(&b.nonce, "nonce")?)
                        .map_err(|_| bad("nonce must be 24 bytes"))?;
                    let sealed = decode_base64(&b.sealed, "box")?;
                    if sealed.is_empty() {
                        return Err(bad("box is empty"));
                    }
                    if sealed.len() > MAX_BOX_BYTES {
                        return Err(ApiError::TooLarge(format!(
                            "box over {MAX_BOX_BYTES} bytes"
                        )));
                    }
                    recipients.push((id, Some((nonce, sealed))));
                }
            }
        }
        named += recipients.len();
        let groups = tier
            .groups
            .iter()
            .map(|g| token(g, "a group name"))
            .collect::<Result<Vec<_>, _>>()?;
        out.push(NewTier {
            after_secs: after,
            groups,
            recipients,
        });
    }
    if named > MAX_RECIPIENTS {
        return Err(ApiError::TooLarge(format!(
            "more than {MAX_RECIPIENTS} recipients in one alarm"
        )));
    }
    Ok(out)
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TriggerAnswer {
    alarm_id: String,
    state: &'static str,
    /// An earlier trigger's alarm was answered instead of a new one.
    deduplicated: bool,
}

pub async fn trigger(
    state: web::Data<AppState>,
    req: HttpRequest,
    params: Params,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let who = authed(&state, &params).await?;
    let idem = idempotency_key(&req)?.map(str::to_owned);
    let body: TriggerBody = json::read_object(&req, payload, TRIGGER_BODY).await?;
    let (id, deduplicated) = start(&state, who.gateway(), &body, idem).await?;
    let alarm = found(&state, &who, &id).await?;
    Ok(HttpResponse::Ok().json(TriggerAnswer {
        alarm_id: id.to_string(),
        state: alarm.state.as_str(),
        deduplicated,
    }))
}

/// Triggers the alarm `body` describes for `gateway`: checks it, refuses it whole (402)
/// when the first tier cannot be paid, stores it and starts its first tier. Returns its
/// ID, and whether an earlier trigger's alarm was answered instead (dedup key or
/// idempotency key).
pub(super) async fn start(
    state: &AppState,
    gateway: &GatewayRecord,
    body: &TriggerBody,
    idem: Option<String>,
) -> Result<(MessageId, bool), ApiError> {
    let max_ttl = state.settings.messages.ttl_secs;
    let expires_after = within(
        body.expires_after_secs,
        3600.min(max_ttl),
        60,
        max_ttl,
        "expiresAfterSecs",
    )?;
    let tiers = tiers(state, gateway.mode, &body.tiers, expires_after).await?;
    let content = match (gateway.mode, &body.text) {
        (GatewayMode::Basic, Some(text)) if !text.is_empty() => {
            if text.len() > MAX_TEXT_BYTES {
                return Err(ApiError::TooLarge(format!(
                    "text over {MAX_TEXT_BYTES} bytes"
                )));
            }
            Some(state.data_key.seal(text.as_bytes()))
        }
        (GatewayMode::Basic, _) => return Err(bad("text is missing")),
        (GatewayMode::E2e, None) => None,
        (GatewayMode::E2e, Some(_)) => {
            return Err(bad("text is for basic mode; end-to-end mode sends boxes"))
        }
    };
    let named: usize = tiers.iter().map(|t| t.recipients.len()).sum();
    let required = within(
        body.required_acks,
        1,
        1,
        named.max(1) as u64,
        "requiredAcks",
    )?;
    let now = UnixMs::now();
    let new = NewAlarm {
        id: state.message_ids.next(now),
        gateway: gateway.id,
        account: gateway.account,
        priority: priority(body.priority.as_deref())?,
        dedup_key: body
            .dedup_key
            .as_deref()
            .map(|k| token(k, "dedupKey"))
            .transpose()?,
        idem_key: idem,
        content,
        ring_every_secs: within(body.ring_every_secs, 60, 10, 3600, "ringEverySecs")?,
        max_rings: within(body.max_rings, 10, 0, 100, "maxRings")?,
        required_acks: required,
        created_at: now,
        expires_at: now.plus_ms(expires_after * 1000),
        tiers,
    };
    // The first tier is paid for now: refused whole when the balance cannot cover it.
    let first = new.tiers[0].recipients.len() as i64;
    let price = state.meter.reserve(gateway.account, Operation::Alarm);
    let balance = state
        .store
        .account(gateway.account)
        .await?
        .map_or(0, |a| a.balance);
    if i64::from(price.charge().amount.get()) * first > balance {
        return Err(ApiError::NoCredits);
    }
    match state.store.trigger_alarm(&new).await? {
        Triggered::New => {
            crate::alarms::step(state, &gateway.id, &new.id, now)
                .await
                .map_err(|e| ApiError::Internal(anyhow::anyhow!(e)))?;
            Ok((new.id, false))
        }
        Triggered::Existing(id) => Ok((id, true)),
    }
}

/// What an alarm came to, as `GET /api/v1/alarms/{id}` shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct AlarmView {
    alarm_id: String,
    state: &'static str,
    priority: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    dedup_key: Option<String>,
    ring_every_secs: i64,
    max_rings: i64,
    required_acks: i64,
    created_at: i64,
    expires_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    ended_at: Option<i64>,
    tiers: Vec<TierView>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TierView {
    tier: i64,
    after_secs: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    groups: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<i64>,
    recipients: Vec<RecipientView>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RecipientView {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sent_at: Option<i64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    unpaid: bool,
    rings: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    answer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    eta_minutes: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    answered_at: Option<i64>,
}

fn view(alarm: &Alarm) -> AlarmView {
    AlarmView {
        alarm_id: alarm.id.to_string(),
        state: alarm.state.as_str(),
        priority: alarm.priority.clone(),
        dedup_key: alarm.dedup_key.clone(),
        ring_every_secs: alarm.ring_every_secs,
        max_rings: alarm.max_rings,
        required_acks: alarm.required_acks,
        created_at: alarm.created_at.get(),
        expires_at: alarm.expires_at.get(),
        ended_at: alarm.ended_at.map(UnixMs::get),
        tiers: alarm
            .tiers
            .iter()
            .map(|t| TierView {
                tier: t.tier,
                after_secs: t.after_secs,
                groups: t.groups.clone(),
                started_at: t.started_at.map(UnixMs::get),
                recipients: alarm
                    .recipients
                    .iter()
                    .filter(|r| r.tier == t.tier)
                    .map(|r| RecipientView {
                        id: r.identity.to_string(),
                        sent_at: r.sent_at.map(UnixMs::get),
                        unpaid: r.unpaid,
                        rings: r.rings,
                        answer: r.answer.clone(),
                        eta_minutes: r.eta_minutes,
                        note: r.note.clone(),
                        answered_at: r.answered_at.map(UnixMs::get),
                    })
                    .collect(),
            })
            .collect(),
    }
}

const UNKNOWN: ApiError = ApiError::NotFound("no such alarm");

/// The alarm `id` of the caller's gateway ID, or 404 (also for another ID's alarm).
async fn found(
    state: &AppState,
    who: &crate::auth::Authenticated,
    id: &MessageId,
) -> Result<Alarm, ApiError> {
    state
        .store
        .alarm(&who.gateway().id, id)
        .await?
        .ok_or(UNKNOWN)
}

pub async fn show(
    state: web::Data<AppState>,
    id: web::Path<String>,
    params: Params,
) -> Result<HttpResponse, ApiError> {
    let who = authed(&state, &params).await?;
    let id = MessageId::parse(&id).map_err(|_| UNKNOWN)?;
    Ok(HttpResponse::Ok().json(view(&found(&state, &who, &id).await?)))
}

/// `POST /api/v1/alarms/{id}/resolve`: ends an open alarm; answering an ended one as it
/// is.
pub async fn resolve(
    state: web::Data<AppState>,
    id: web::Path<String>,
    params: Params,
) -> Result<HttpResponse, ApiError> {
    let who = authed(&state, &params).await?;
    let id = MessageId::parse(&id).map_err(|_| UNKNOWN)?;
    let alarm = found(&state, &who, &id).await?;
    crate::alarms::end(&state, &alarm, AlarmState::Resolved, UnixMs::now()).await?;
    Ok(HttpResponse::Ok().json(view(&found(&state, &who, &id).await?)))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ListLine {
    alarm_id: String,
    state: &'static str,
    priority: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    dedup_key: Option<String>,
    created_at: i64,
}

/// `GET /api/v1/alarms[?state=open]`: the newest alarms of the caller's gateway ID.
pub async fn list(state: web::Data<AppState>, params: Params) -> Result<HttpResponse, ApiError> {
    let who = authed(&state, &params).await?;
    let open_only = match params.get("state") {
        None | Some("all") => false,
        Some("open") => true,
        Some(_) => return Err(bad("state must be open or all")),
    };
    let lines: Vec<ListLine> = state
        .store
        .alarms_of(&who.gateway().id, open_only, LIST_LIMIT)
        .await?
        .into_iter()
        .map(|a| ListLine {
            alarm_id: a.id.to_string(),
            state: a.state.as_str(),
            priority: a.priority,
            dedup_key: a.dedup_key,
            created_at: a.created_at.get(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(lines))
}
