//! Alarms: server-side state machines over messages.
//!
//! An alarm is triggered with tiers of recipients. A tier starts `after_secs` after the
//! trigger unless the alarm was answered, resolved or has expired: each of its recipients
//! gets one ordinary message (basic mode: the alarm's text sealed for them now; end-to-end
//! mode: the box the caller gave for them, held until then), charged `prices.alarm`
//! through the meter, with the alarm's ID as its message ID. Past `expires_at` an open
//! alarm ends `expired`.
//!
//! The timer lives in the store ([`crate::store::Alarm::next_due_at`]): the
//! [`AlarmClock`] of every node with the `housekeeping` role takes due alarms with a lease
//! and steps each; a step does what is due at the clock it is given and sets the next due
//! time. A step that fails leaves its lease to run out, and the alarm is stepped again.
//! Deliveries carry an idempotency key per (alarm, recipient), so a step repeated after a
//! crash charges and queues nothing twice.

use std::sync::Arc;
use std::time::Duration;

use tocsin_sdk::protocol::csp::AlarmAnswer;
use tocsin_sdk::protocol::{E2eMessage, GatewayId, MessageFlags, MessageId, Nonce};

use crate::domain::UnixMs;
use crate::meter::Operation;
use crate::state::AppState;
use crate::store::{Alarm, AlarmRecipient, AlarmState, Answered, GatewayRecord, StoreError};
use crate::submit::{submit, Caller, Outgoing, SubmitError};

/// Alarms stepped per round at most.
const BATCH: i64 = 64;
/// How long a step may hold an alarm before another worker may take it.
const LEASE_MS: i64 = 60_000;
/// How often the clock looks for due alarms.
const TICK: Duration = Duration::from_secs(1);

/// Why a step did not finish; the alarm is stepped again once its lease runs out.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Other(String),
}

/// Steps due alarms.
pub struct AlarmClock {
    state: AppState,
}

impl AlarmClock {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }

    /// Steps every alarm due at `now`; returns how many were stepped.
    pub async fn run_once(&self, now: UnixMs) -> Result<usize, StoreError> {
        let mut stepped = 0;
        loop {
            let due = self
                .state
                .store
                .claim_due_alarms(now, LEASE_MS, BATCH)
                .await?;
            for (gateway, id) in &due {
                match step(&self.state, gateway, id, now).await {
                    Ok(()) => stepped += 1,
                    Err(e) => tracing::warn!(alarm = %id, "alarm step failed: {e}"),
                }
            }
            if due.len() < BATCH as usize {
                return Ok(stepped);
            }
        }
    }

    /// Steps due alarms every second until the task is aborted.
    pub async fn run(self: Arc<Self>) {
        let mut every = tokio::time::interval(TICK);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if let Err(e) = self.run_once(UnixMs::now()).await {
                tracing::warn!("alarm round failed: {e}");
            }
        }
    }
}

/// Does what is due for alarm `id` at `now`, and sets when it is next due.
pub async fn step(
    state: &AppState,
    gateway: &GatewayId,
    id: &MessageId,
    now: UnixMs,
) -> Result<(), StepError> {
    let store = &state.store;
    let Some(mut alarm) = store.alarm(gateway, id).await? else {
        return Ok(());
    };
    if !alarm.state.is_open() {
        store.alarm_due_at(id, UnixMs::MAX).await?;
        return Ok(());
    }
    if now >= alarm.expires_at {
        store
            .end_alarm(gateway, id, AlarmState::Expired, now)
            .await?;
        return Ok(());
    }
    if alarm.state == AlarmState::Triggered {
        let due: Vec<i64> = alarm
            .tiers
            .iter()
            .filter(|t| t.started_at.is_none() && alarm.tier_due(t) <= now)
            .map(|t| t.tier)
            .collect();
        if !due.is_empty() {
            let record = store
                .gateway(gateway)
                .await?
                .ok_or_else(|| StepError::Other("the gateway ID no longer exists".into()))?;
            for tier in due {
                start_tier(state, &record, &alarm, tier, now).await?;
            }
            alarm = store
                .alarm(gateway, id)
                .await?
                .ok_or_else(|| StepError::Other("the alarm vanished".into()))?;
        }
    }
    store.alarm_due_at(id, next_due(&alarm)).await?;
    Ok(())
}

/// When `alarm` is next due: its next tier while it rings, else its expiry.
pub fn next_due(alarm: &Alarm) -> UnixMs {
    let next_tier = alarm
        .tiers
        .iter()
        .filter(|t| t.started_at.is_none() && alarm.state == AlarmState::Triggered)
        .map(|t| alarm.tier_due(t))
        .min();
    next_tier.map_or(alarm.expires_at, |t| t.min(alarm.expires_at))
}

/// Starts tier `tier`: its groups are resolved to their members, then each recipient not
/// reached yet gets its delivery.
async fn start_tier(
    state: &AppState,
    gateway: &GatewayRecord,
    alarm: &Alarm,
    tier: i64,
    now: UnixMs,
) -> Result<(), StepError> {
    let store = &state.store;
    let groups = alarm
        .tiers
        .iter()
        .find(|t| t.tier == tier)
        .map(|t| t.groups.clone())
        .unwrap_or_default();
    let mut members = Vec::new();
    for group in &groups {
        members.extend(store.group_members(alarm.account, group).await?);
    }
    let recipients: Vec<AlarmRecipient> = if members.is_empty() {
        alarm.recipients.clone()
    } else {
        store
            .add_alarm_recipients(&alarm.id, tier, &members)
            .await?;
        store
            .alarm(&alarm.gateway, &alarm.id)
            .await?
            .map(|a| a.recipients)
            .unwrap_or_default()
    };
    let (mut sent, mut unpaid) = (Vec::new(), Vec::new());
    for recipient in recipients
        .iter()
        .filter(|r| r.tier == tier && r.sent_at.is_none() && !r.unpaid)
    {
        match deliver(state, gateway, alarm, recipient, now).await {
            Ok(true) => sent.push(recipient.identity),
            Ok(false) => {}
            Err(SubmitError::NoCredits) => unpaid.push(recipient.identity),
            Err(SubmitError::Store(e)) => return Err(e.into()),
        }
    }
    store
        .alarm_tier_started(&alarm.gateway, &alarm.id, tier, &sent, &unpaid, now)
        .await?;
    Ok(())
}

/// Queues `alarm`'s message for `recipient`; `Ok(false)` when it cannot be made (the
/// identity is gone or revoked, or an end-to-end alarm holds no box for it).
async fn deliver(
    state: &AppState,
    gateway: &GatewayRecord,
    alarm: &Alarm,
    recipient: &AlarmRecipient,
    now: UnixMs,
) -> Result<bool, SubmitError> {
    let to = recipient.identity;
    let (nonce, sealed) = match (&recipient.held, &alarm.content) {
        (Some((nonce, sealed)), _) => (*nonce, sealed.clone()),
        (None, Some(content)) => {
            let Some(identity) = state.store.identity(&to).await? else {
                return Ok(false);
            };
            if identity.revoked {
                return Ok(false);
            }
            let Ok(text) = state.data_key.open(content) else {
                tracing::error!(alarm = %alarm.id, "the alarm's text cannot be opened");
                return Ok(false);
            };
            let text = String::from_utf8_lossy(&text).into_owned();
            let Ok(shared) = state
                .shared_keys
                .get(gateway, &state.data_key, &identity.public_key)
            else {
                tracing::error!(gateway_id = %gateway.id, "the gateway ID's key cannot be opened");
                return Ok(false);
            };
            let nonce = Nonce::random();
            (
                nonce,
                shared.seal(&nonce, &E2eMessage::Text(text).to_padded()),
            )
        }
        (None, None) => return Ok(false),
    };
    let left = alarm.expires_at.ms_since(now).max(1);
    let msg = Outgoing {
        message_id: alarm.id,
        to,
        nonce,
        sealed,
        flags: MessageFlags::default().with(MessageFlags::PUSH).0,
        ttl: Some(Duration::from_millis(u64::try_from(left).unwrap_or(1))),
    };
    let paid = state.meter.reserve(alarm.account, Operation::Alarm);
    let key = format!("alarm:{}:{}", alarm.id, to);
    submit(state, gateway, paid, msg, Some(&key), Caller::Task).await?;
    Ok(true)
}

/// A device of `responder` answered an alarm: recorded (see
/// [`crate::store::Store::answer_alarm`]); `None` when the answer concerns no open alarm
/// that reached `responder`.
pub async fn answer(
    state: &AppState,
    responder: &tocsin_sdk::protocol::IdentityId,
    answer: &AlarmAnswer,
    now: UnixMs,
) -> Result<Option<Answered>, StoreError> {
    let Ok(gateway) = GatewayId::try_from(answer.gateway) else {
        return Ok(None);
    };
    state
        .store
        .answer_alarm(&gateway, &answer.message_id, responder, answer, now)
        .await
}
