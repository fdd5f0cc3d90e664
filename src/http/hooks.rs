//! `POST /hooks/alertmanager/{token}`: Prometheus Alertmanager's webhook (version 4), and
//! Grafana's webhook contact point, which sends the same shape, trigger alarms.
//!
//! The URL's token names an integration made with `tocsin admin integration create`: a
//! basic-mode gateway ID and the alarm it triggers (tiers and policy). Each alert group
//! (`groupKey`) is one alarm: a firing notification triggers it with a text made from
//! the alerts' labels and annotations, or answers the open alarm of the group (dedup
//! key); `status: resolved` resolves it. No gateway credentials: the token is the
//! credential, so the caller's address is held to the per-IP budget first and an unknown
//! token is a 404 like any other.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::alarms::{start, TriggerBody};
use super::error::ApiError;
use super::json;
use super::params::Params;
use super::send::MAX_TEXT_BYTES;
use crate::domain::UnixMs;
use crate::state::AppState;
use crate::store::AlarmState;

/// An Alertmanager notification of many alerts stays well under this.
const HOOK_BODY: usize = 1024 * 1024;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    status: String,
    group_key: String,
    #[serde(default)]
    alerts: Vec<Alert>,
    #[serde(default)]
    common_labels: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
pub struct Alert {
    #[serde(default)]
    status: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// The alarm's dedup key for an alert group (a `groupKey` may be longer than a key).
fn dedup_key(group_key: &str) -> String {
    format!("alertmanager:{}", hex::encode(Sha256::digest(group_key)))
}

/// The alarm's text: the alert name and count, then a line per firing alert with its
/// summary (or description), else its labels; cut with a marker at the text limit.
fn text(n: &Notification) -> String {
    let firing: Vec<&Alert> = n.alerts.iter().filter(|a| a.status != "resolved").collect();
    let name = n
        .common_labels
        .get("alertname")
        .or_else(|| firing.first().and_then(|a| a.labels.get("alertname")))
        .map_or("alert", String::as_str);
    let mut out = format!("[FIRING:{}] {name}", firing.len());
    for alert in &firing {
        let line = match alert
            .annotations
            .get("summary")
            .or_else(|| alert.annotations.get("description"))
        {
            Some(text) => text.clone(),
            None => alert
                .labels
                .iter()
                .filter(|(k, _)| *k != "alertname")
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
        };
        let _ = write!(out, "\n- {line}");
    }
    const MORE: &str = "\n[…]";
    if out.len() > MAX_TEXT_BYTES {
        let mut cut = MAX_TEXT_BYTES - MORE.len();
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str(MORE);
    }
    out
}

pub async fn alertmanager(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
    params: Params,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    const UNKNOWN: ApiError = ApiError::NotFound("no such integration");
    if let Some(ip) = params.client_ip() {
        state.limits.check_ip(ip)?;
    }
    let hash = state.data_key.hash_token(&token);
    let Some((gateway, _kind, template)) = state.store.integration(&hash).await? else {
        return Err(UNKNOWN);
    };
    let gateway = state.store.gateway(&gateway).await?.ok_or(UNKNOWN)?;
    let notification: Notification = json::read_object(&req, payload, HOOK_BODY).await?;
    let key = dedup_key(&notification.group_key);
    if notification.status == "resolved" {
        if let Some(id) = state.store.open_alarm_by_key(&gateway.id, &key).await? {
            if let Some(alarm) = state.store.alarm(&gateway.id, &id).await? {
                crate::alarms::end(&state, &alarm, AlarmState::Resolved, UnixMs::now()).await?;
            }
        }
        return Ok(HttpResponse::Ok().finish());
    }
    let mut body: TriggerBody = serde_json::from_str(&template)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("integration template: {e}")))?;
    body.text = Some(text(&notification));
    body.dedup_key = Some(key);
    start(&state, &gateway, &body, None).await?;
    Ok(HttpResponse::Ok().finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_names_the_alert_and_each_firing_alerts_summary_or_labels() {
        let n: Notification = serde_json::from_str(
            r#"{"status":"firing","groupKey":"{}:{alertname=\"DiskFull\"}",
                "commonLabels":{"alertname":"DiskFull"},
                "alerts":[
                  {"status":"firing","labels":{"alertname":"DiskFull","instance":"db-1"},
                   "annotations":{"summary":"Disk 97% full on db-1"}},
                  {"status":"firing","labels":{"alertname":"DiskFull","instance":"db-2"},
                   "annotations":{}},
                  {"status":"resolved","labels":{"alertname":"DiskFull","instance":"db-3"},
                   "annotations":{"summary":"gone"}}]}"#,
        )
        .unwrap();
        assert_eq!(
            text(&n),
            "[FIRING:2] DiskFull\n- Disk 97% full on db-1\n- instance=db-2"
        );
        let long = Notification {
            status: "firing".into(),
            group_key: "g".into(),
            common_labels: BTreeMap::new(),
            alerts: vec![Alert {
                status: "firing".into(),
                labels: BTreeMap::new(),
                annotations: [("summary".to_owned(), "é".repeat(3000))].into(),
            }],
        };
        let cut = text(&long);
        assert!(
            cut.len() <= MAX_TEXT_BYTES && cut.ends_with("[…]"),
            "{}",
            cut.len()
        );
        assert_ne!(dedup_key("a"), dedup_key("b"));
        assert!(dedup_key(&"x".repeat(10_000)).len() < 100);
    }
}
