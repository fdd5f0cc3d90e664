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

use tocsin_sdk::protocol::csp::{AlarmAnswer, Payload};
use tocsin_sdk::protocol::{
    Answer, E2eMessage, GatewayId, IdentityId, MessageFlags, MessageId, Nonce, Priority, StopReason,
};

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
        end(state, &alarm, AlarmState::Expired, now).await?;
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
        ring(state, &alarm, now).await?;
        alarm = store
            .alarm(gateway, id)
            .await?
            .ok_or_else(|| StepError::Other("the alarm vanished".into()))?;
    }
    store.alarm_due_at(id, next_due(&alarm)).await?;
    Ok(())
}

/// When `recipient` of `alarm` is next rung: `ring_every_secs` after its delivery or its
/// last ring, while it has not answered and has rings left; `None` otherwise.
fn next_ring(alarm: &Alarm, recipient: &AlarmRecipient) -> Option<UnixMs> {
    let sent = recipient.sent_at?;
    if recipient.answer.is_some() || recipient.rings >= alarm.max_rings {
        return None;
    }
    let last = recipient.last_ring_at.unwrap_or(sent);
    Some(last.plus_ms(alarm.ring_every_secs.saturating_mul(1000)))
}

/// Rings every recipient of a ringing alarm whose next ring is due: an `ALARM_RING` to
/// each of their sessions (no new content), counted in the store.
async fn ring(state: &AppState, alarm: &Alarm, now: UnixMs) -> Result<(), StoreError> {
    let due: Vec<&AlarmRecipient> = alarm
        .recipients
        .iter()
        .filter(|r| next_ring(alarm, r).is_some_and(|at| at <= now))
        .collect();
    if due.is_empty() {
        return Ok(());
    }
    for recipient in &due {
        let number = u16::try_from(recipient.rings + 1).unwrap_or(u16::MAX);
        signal_ring(state, alarm, recipient, number);
    }
    let who: Vec<IdentityId> = due.iter().map(|r| r.identity).collect();
    state.store.alarm_rang(&alarm.id, &who, now).await
}

fn signal_ring(state: &AppState, alarm: &Alarm, recipient: &AlarmRecipient, number: u16) {
    let priority = Priority::parse(&alarm.priority).unwrap_or(Priority::Normal);
    let tier = u8::try_from(recipient.tier).unwrap_or(u8::MAX);
    let frame = Payload::alarm_ring(
        *alarm.gateway.as_identity(),
        alarm.id,
        number,
        priority,
        tier,
    );
    state.hub.signal(&recipient.identity, &frame);
}

/// Ends `alarm` as `how` (resolved or expired) and tells every recipient it reached to stop
/// ringing; `false` when it had ended already.
pub async fn end(
    state: &AppState,
    alarm: &Alarm,
    how: AlarmState,
    now: UnixMs,
) -> Result<bool, StoreError> {
    let ended = state
        .store
        .end_alarm(&alarm.gateway, &alarm.id, how, now)
        .await?;
    if ended {
        let reason = match how {
            AlarmState::Expired => StopReason::Expired,
            _ => StopReason::Resolved,
        };
        for recipient in alarm.recipients.iter().filter(|r| r.sent_at.is_some()) {
            let answer = recipient
                .answer
                .as_deref()
                .and_then(|a| Answer::parse(a).ok());
            let frame = Payload::alarm_stop(*alarm.gateway.as_identity(), alarm.id, reason, answer);
            state.hub.signal(&recipient.identity, &frame);
        }
    }
    Ok(ended)
}

/// When `alarm` is next due: its next tier or ring while it rings, else its expiry.
pub fn next_due(alarm: &Alarm) -> UnixMs {
    if alarm.state != AlarmState::Triggered {
        return alarm.expires_at;
    }
    let next_tier = alarm
        .tiers
        .iter()
        .filter(|t| t.started_at.is_none())
        .map(|t| alarm.tier_due(t));
    let next_ring = alarm.recipients.iter().filter_map(|r| next_ring(alarm, r));
    next_tier
        .chain(next_ring)
        .fold(alarm.expires_at, UnixMs::min)
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
    // Ring 0: the message these recipients get is an alarm (before or after it arrives).
    for recipient in recipients.iter().filter(|r| sent.contains(&r.identity)) {
        signal_ring(state, alarm, recipient, 0);
    }
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
    responder: &IdentityId,
    answer: &AlarmAnswer,
    now: UnixMs,
) -> Result<Option<Answered>, StoreError> {
    let Ok(gateway) = GatewayId::try_from(answer.gateway) else {
        return Ok(None);
    };
    let answered = state
        .store
        .answer_alarm(&gateway, &answer.message_id, responder, answer, now)
        .await?;
    let Some(answered) = answered else {
        return Ok(None);
    };
    // The responder's devices stop ringing, this one included (it learns the answer was
    // taken); once the quorum is reached, so do those of everyone who has not answered.
    let stop =
        |reason, given| Payload::alarm_stop(answer.gateway, answer.message_id, reason, given);
    state
        .hub
        .signal(responder, &stop(StopReason::Answered, Some(answer.answer)));
    if answered.acknowledged {
        if let Some(alarm) = state.store.alarm(&gateway, &answer.message_id).await? {
            for recipient in alarm
                .recipients
                .iter()
                .filter(|r| r.sent_at.is_some() && r.answer.is_none())
            {
                state
                    .hub
                    .signal(&recipient.identity, &stop(StopReason::Acknowledged, None));
            }
        }
    }
    Ok(Some(answered))
}
