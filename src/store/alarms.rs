//! Alarms in the store: what was triggered, its tiers and recipients, and its timer.
//!
//! An alarm's ID is also the message ID of every delivery it makes. Its timer is one
//! column, `next_due_at`: when something is next due (a tier, a ring, the expiry). A node
//! takes a due alarm with a lease (`lease_until`), so on several nodes each step happens
//! once; a node that dies holding one lets the lease run out and another takes over.
//! Who answered what, and when, is server metadata (the content stays sealed).

use sqlx::any::AnyRow;
use sqlx::Row;
use tocsin_sdk::protocol::csp::AlarmAnswer;
use tocsin_sdk::protocol::{
    AlarmAcknowledged, AlarmAnswered, AlarmEnded, AlarmEscalated, AlarmTriggered, GatewayId,
    IdentityId, MessageId, Nonce, Priority, StatusKind,
};

use super::engine::begin_write;
use super::rows::{gateway_id, identity_id, message_id};
use super::status::queue_statuses;
use super::{AccountId, Outbox, Store, StoreError};
use crate::domain::UnixMs;

/// The states of an alarm: open (`triggered`, `acknowledged`) or ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmState {
    /// Ringing, escalating when due.
    Triggered,
    /// Enough recipients are coming: no more rings or tiers, until resolved or expired.
    Acknowledged,
    Resolved,
    Expired,
}

impl AlarmState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Triggered => "triggered",
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
            Self::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Triggered,
            Self::Acknowledged,
            Self::Resolved,
            Self::Expired,
        ]
        .into_iter()
        .find(|state| state.as_str() == s)
    }

    pub fn is_open(self) -> bool {
        matches!(self, Self::Triggered | Self::Acknowledged)
    }
}

/// A box held for one recipient of an end-to-end alarm: its nonce and the box.
pub type HeldBox = (Nonce, Vec<u8>);

/// A tier as triggered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTier {
    pub after_secs: i64,
    /// On-call groups whose members the tier reaches (resolved when it starts).
    pub groups: Vec<String>,
    /// The recipients named, each with its box in end-to-end mode.
    pub recipients: Vec<(IdentityId, Option<HeldBox>)>,
}

/// An alarm as triggered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlarm {
    pub id: MessageId,
    pub gateway: GatewayId,
    pub account: AccountId,
    pub priority: &'static str,
    pub dedup_key: Option<String>,
    /// The trigger's `Idempotency-Key`, if it had one.
    pub idem_key: Option<String>,
    /// Basic mode: the text, sealed with the data key until each recipient's message is
    /// sealed for them.
    pub content: Option<Vec<u8>>,
    pub ring_every_secs: i64,
    pub max_rings: i64,
    pub required_acks: i64,
    pub created_at: UnixMs,
    pub expires_at: UnixMs,
    pub tiers: Vec<NewTier>,
}

/// What became of a trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Triggered {
    New,
    /// An open alarm of the gateway ID has the trigger's dedup key: that one stands.
    Existing(MessageId),
}

/// One recipient of an alarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmRecipient {
    pub identity: IdentityId,
    pub tier: i64,
    /// End-to-end mode, before the tier starts: the box held for this recipient.
    pub held: Option<HeldBox>,
    pub sent_at: Option<UnixMs>,
    /// The tier started but this delivery could not be paid.
    pub unpaid: bool,
    pub rings: i64,
    pub last_ring_at: Option<UnixMs>,
    pub answer: Option<String>,
    pub eta_minutes: Option<i64>,
    pub note: Option<String>,
    pub answered_at: Option<UnixMs>,
}

/// One tier of an alarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmTier {
    pub tier: i64,
    pub after_secs: i64,
    pub groups: Vec<String>,
    pub started_at: Option<UnixMs>,
}

/// An alarm with its tiers and recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alarm {
    pub id: MessageId,
    pub gateway: GatewayId,
    pub account: AccountId,
    pub state: AlarmState,
    pub priority: String,
    pub dedup_key: Option<String>,
    pub content: Option<Vec<u8>>,
    pub ring_every_secs: i64,
    pub max_rings: i64,
    pub required_acks: i64,
    pub created_at: UnixMs,
    pub expires_at: UnixMs,
    pub ended_at: Option<UnixMs>,
    pub next_due_at: UnixMs,
    pub tiers: Vec<AlarmTier>,
    pub recipients: Vec<AlarmRecipient>,
}

impl Alarm {
    /// When tier `tier` is due.
    pub fn tier_due(&self, tier: &AlarmTier) -> UnixMs {
        self.created_at
            .plus_ms(tier.after_secs.saturating_mul(1000))
    }
}

/// What an answer did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answered {
    /// This answer brought the alarm to its quorum.
    pub acknowledged: bool,
    /// Who is coming, in the order they said so.
    pub coming: Vec<IdentityId>,
}

/// A line of an alarm list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmSummary {
    pub id: MessageId,
    pub state: AlarmState,
    pub priority: String,
    pub dedup_key: Option<String>,
    pub created_at: UnixMs,
}

/// How long a new alarm is held by its trigger: past it, a clock takes the alarm over.
pub const TRIGGER_LEASE_MS: i64 = 60_000;

const ALARM_COLUMNS: &str = "id, gateway_id, account_id, state, priority, dedup_key, content, \
     ring_every_secs, max_rings, required_acks, created_at, expires_at, ended_at, next_due_at";

fn state_of(row: &AnyRow) -> Result<AlarmState, StoreError> {
    let state: String = row.try_get("state")?;
    AlarmState::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("alarm state {state:?}")))
}

fn groups_of(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Store {
    /// Stores a triggered alarm, due at once (its first tier) and held by the trigger for
    /// [`TRIGGER_LEASE_MS`] so that it steps the alarm itself, unless an earlier trigger
    /// with the same idempotency key, or an open alarm of the gateway ID with the same
    /// dedup key, stands: then that one's ID.
    pub async fn trigger_alarm(&self, new: &NewAlarm) -> Result<Triggered, StoreError> {
        if let Some(existing) = self.open_alarm_with_key(new).await? {
            return Ok(Triggered::Existing(existing));
        }
        match self.insert_alarm(new).await {
            Ok(()) => Ok(Triggered::New),
            // Another trigger with the key won the race: its alarm stands.
            Err(StoreError::AlreadyExists { .. }) => match self.open_alarm_with_key(new).await? {
                Some(existing) => Ok(Triggered::Existing(existing)),
                None => Err(StoreError::Conflict(
                    "a trigger with this dedup key raced with another; try again".into(),
                )),
            },
            Err(other) => Err(other),
        }
    }

    /// The alarm a trigger repeats: the one its `Idempotency-Key` made, else an open one
    /// with its dedup key.
    async fn open_alarm_with_key(&self, new: &NewAlarm) -> Result<Option<MessageId>, StoreError> {
        if new.idem_key.is_none() && new.dedup_key.is_none() {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT id FROM alarms WHERE gateway_id = $1 AND (idem_key = $2 OR (dedup_key = $3 \
             AND state IN ('triggered', 'acknowledged'))) ORDER BY created_at LIMIT 1",
        )
        .bind(new.gateway.as_str())
        .bind(new.idem_key.clone())
        .bind(new.dedup_key.clone())
        .fetch_optional(&self.write)
        .await?;
        row.map(|r| message_id(&r, "id")).transpose()
    }

    async fn insert_alarm(&self, new: &NewAlarm) -> Result<(), StoreError> {
        let mut tx = begin_write(&self.write, self.backend).await?;
        let inserted = sqlx::query(
            "INSERT INTO alarms (id, gateway_id, account_id, state, priority, dedup_key, idem_key, \
             content, ring_every_secs, max_rings, required_acks, created_at, expires_at, \
             next_due_at, lease_until) VALUES ($1, $2, $3, 'triggered', $4, $5, $12, $6, $7, $8, \
             $9, $10, $11, $10, $13)",
        )
        .bind(new.id.as_bytes().to_vec())
        .bind(new.gateway.as_str())
        .bind(new.account.0)
        .bind(new.priority)
        .bind(new.dedup_key.clone())
        .bind(new.content.clone())
        .bind(new.ring_every_secs)
        .bind(new.max_rings)
        .bind(new.required_acks)
        .bind(new.created_at)
        .bind(new.expires_at)
        .bind(new.idem_key.clone())
        .bind(new.created_at.plus_ms(TRIGGER_LEASE_MS))
        .execute(&mut *tx)
        .await;
        inserted.map_err(|e| super::insert_error(e, || format!("alarm {}", new.id)))?;
        for (i, tier) in new.tiers.iter().enumerate() {
            let number = i as i64 + 1;
            sqlx::query(
                "INSERT INTO alarm_tiers (alarm_id, tier, after_secs, groups) VALUES ($1, $2, $3, $4)",
            )
            .bind(new.id.as_bytes().to_vec())
            .bind(number)
            .bind(tier.after_secs)
            .bind(tier.groups.join("\n"))
            .execute(&mut *tx)
            .await?;
            for (identity, held) in &tier.recipients {
                let (nonce, sealed) = match held {
                    Some((nonce, sealed)) => {
                        (Some(nonce.as_bytes().to_vec()), Some(sealed.clone()))
                    }
                    None => (None, None),
                };
                // A recipient named twice is reached once, by the first tier naming it.
                sqlx::query(
                    "INSERT INTO alarm_recipients (alarm_id, identity, tier, nonce, box) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (alarm_id, identity) DO NOTHING",
                )
                .bind(new.id.as_bytes().to_vec())
                .bind(identity.as_str())
                .bind(number)
                .bind(nonce)
                .bind(sealed)
                .execute(&mut *tx)
                .await?;
            }
        }
        let triggered = StatusKind::AlarmTriggered(AlarmTriggered {
            alarm_id: new.id,
            priority: Priority::parse(new.priority).unwrap_or(Priority::Normal),
            tiers: u8::try_from(new.tiers.len()).unwrap_or(u8::MAX),
            dedup_key: new.dedup_key.clone(),
            at: new.created_at.get(),
        });
        let reports = [(new.gateway, triggered, new.created_at)];
        let statuses = queue_statuses(&mut tx, self.backend, &reports).await?;
        tx.commit().await?;
        self.filled(Outbox::Statuses, statuses);
        Ok(())
    }

    /// The alarm `id` of `gateway`, with its tiers and recipients.
    pub async fn alarm(
        &self,
        gateway: &GatewayId,
        id: &MessageId,
    ) -> Result<Option<Alarm>, StoreError> {
        let sql = format!("SELECT {ALARM_COLUMNS} FROM alarms WHERE id = $1 AND gateway_id = $2");
        let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.as_bytes().to_vec())
            .bind(gateway.as_str())
            .fetch_optional(&self.write)
            .await?
        else {
            return Ok(None);
        };
        let tiers = sqlx::query(
            "SELECT tier, after_secs, groups, started_at FROM alarm_tiers \
             WHERE alarm_id = $1 ORDER BY tier",
        )
        .bind(id.as_bytes().to_vec())
        .fetch_all(&self.write)
        .await?
        .iter()
        .map(|r| {
            let groups: String = r.try_get("groups")?;
            Ok(AlarmTier {
                tier: r.try_get("tier")?,
                after_secs: r.try_get("after_secs")?,
                groups: groups_of(&groups),
                started_at: r.try_get("started_at")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        let recipients = sqlx::query(
            "SELECT identity, tier, nonce, box, sent_at, unpaid, rings, last_ring_at, answer, \
             eta_minutes, note, answered_at FROM alarm_recipients \
             WHERE alarm_id = $1 ORDER BY tier, identity",
        )
        .bind(id.as_bytes().to_vec())
        .fetch_all(&self.write)
        .await?
        .iter()
        .map(|r| {
            let nonce: Option<Vec<u8>> = r.try_get("nonce")?;
            let sealed: Option<Vec<u8>> = r.try_get("box")?;
            let held = match (nonce, sealed) {
                (Some(n), Some(b)) => Some((
                    Nonce::from_slice(&n).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    b,
                )),
                _ => None,
            };
            Ok(AlarmRecipient {
                identity: identity_id(r, "identity")?,
                tier: r.try_get("tier")?,
                held,
                sent_at: r.try_get("sent_at")?,
                unpaid: r.try_get::<i64, _>("unpaid")? != 0,
                rings: r.try_get("rings")?,
                last_ring_at: r.try_get("last_ring_at")?,
                answer: r.try_get("answer")?,
                eta_minutes: r.try_get("eta_minutes")?,
                note: r.try_get("note")?,
                answered_at: r.try_get("answered_at")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Some(Alarm {
            id: message_id(&row, "id")?,
            gateway: gateway_id(&row, "gateway_id")?,
            account: AccountId(row.try_get("account_id")?),
            state: state_of(&row)?,
            priority: row.try_get("priority")?,
            dedup_key: row.try_get("dedup_key")?,
            content: row.try_get("content")?,
            ring_every_secs: row.try_get("ring_every_secs")?,
            max_rings: row.try_get("max_rings")?,
            required_acks: row.try_get("required_acks")?,
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
            ended_at: row.try_get("ended_at")?,
            next_due_at: row.try_get("next_due_at")?,
            tiers,
            recipients,
        }))
    }

    /// The alarms of `gateway`, newest first; only the open ones when `open_only`.
    pub async fn alarms_of(
        &self,
        gateway: &GatewayId,
        open_only: bool,
        limit: i64,
    ) -> Result<Vec<AlarmSummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, state, priority, dedup_key, created_at FROM alarms WHERE gateway_id = $1 \
             AND ($2 = 0 OR state IN ('triggered', 'acknowledged')) \
             ORDER BY created_at DESC, id LIMIT $3",
        )
        .bind(gateway.as_str())
        .bind(i64::from(open_only))
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AlarmSummary {
                    id: message_id(r, "id")?,
                    state: state_of(r)?,
                    priority: r.try_get("priority")?,
                    dedup_key: r.try_get("dedup_key")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Takes up to `limit` alarms due at `now` for `lease_ms`: each is stepped by one
    /// worker at a time, on any node.
    pub async fn claim_due_alarms(
        &self,
        now: UnixMs,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<(GatewayId, MessageId)>, StoreError> {
        let rows = sqlx::query(
            "UPDATE alarms SET lease_until = $2 WHERE id IN \
             (SELECT id FROM alarms WHERE next_due_at <= $1 AND lease_until <= $1 \
              ORDER BY next_due_at LIMIT $3) AND next_due_at <= $1 AND lease_until <= $1 \
             RETURNING gateway_id, id",
        )
        .bind(now)
        .bind(now.plus_ms(lease_ms))
        .bind(limit)
        .fetch_all(&self.write)
        .await?;
        rows.iter()
            .map(|r| Ok((gateway_id(r, "gateway_id")?, message_id(r, "id")?)))
            .collect()
    }

    /// The earliest time any alarm is due (`None` when none is).
    pub async fn next_alarm_due(&self) -> Result<Option<UnixMs>, StoreError> {
        let row = sqlx::query("SELECT MIN(next_due_at) AS due FROM alarms")
            .fetch_one(&self.read)
            .await?;
        Ok(row.try_get::<Option<UnixMs>, _>("due")?)
    }

    /// Records that tier `tier` of `alarm` started at `now`: which recipients got their
    /// delivery, which could not be paid. Held boxes of the tier are dropped. A tier after
    /// the first is reported as `alarm.escalated`.
    pub async fn alarm_tier_started(
        &self,
        gateway: &GatewayId,
        alarm: &MessageId,
        tier: i64,
        sent: &[IdentityId],
        unpaid: &[IdentityId],
        now: UnixMs,
    ) -> Result<(), StoreError> {
        let mut tx = begin_write(&self.write, self.backend).await?;
        let started = sqlx::query(
            "UPDATE alarm_tiers SET started_at = $3, unpaid = $4 \
             WHERE alarm_id = $1 AND tier = $2 AND started_at IS NULL",
        )
        .bind(alarm.as_bytes().to_vec())
        .bind(tier)
        .bind(now)
        .bind(unpaid.len() as i64)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        for (who, paid) in sent
            .iter()
            .map(|w| (w, true))
            .chain(unpaid.iter().map(|w| (w, false)))
        {
            sqlx::query(
                "UPDATE alarm_recipients SET sent_at = $3, unpaid = $4, nonce = NULL, box = NULL \
                 WHERE alarm_id = $1 AND identity = $2",
            )
            .bind(alarm.as_bytes().to_vec())
            .bind(who.as_str())
            .bind(paid.then_some(now))
            .bind(i64::from(!paid))
            .execute(&mut *tx)
            .await?;
        }
        let mut statuses = 0;
        if started == 1 && tier > 1 {
            let escalated = StatusKind::AlarmEscalated(AlarmEscalated {
                alarm_id: *alarm,
                tier: u8::try_from(tier).unwrap_or(u8::MAX),
                recipients: sent.to_vec(),
                unpaid: unpaid.to_vec(),
                at: now.get(),
            });
            statuses = queue_statuses(&mut tx, self.backend, &[(*gateway, escalated, now)]).await?;
        }
        tx.commit().await?;
        self.filled(Outbox::Statuses, statuses);
        Ok(())
    }

    /// Adds the members of on-call groups to tier `tier` of `alarm` (those not in it yet).
    pub async fn add_alarm_recipients(
        &self,
        alarm: &MessageId,
        tier: i64,
        who: &[IdentityId],
    ) -> Result<(), StoreError> {
        let mut tx = begin_write(&self.write, self.backend).await?;
        for identity in who {
            sqlx::query(
                "INSERT INTO alarm_recipients (alarm_id, identity, tier) VALUES ($1, $2, $3) \
                 ON CONFLICT (alarm_id, identity) DO NOTHING",
            )
            .bind(alarm.as_bytes().to_vec())
            .bind(identity.as_str())
            .bind(tier)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records a ring of `alarm` to each of `who` at `now`.
    pub async fn alarm_rang(
        &self,
        alarm: &MessageId,
        who: &[IdentityId],
        now: UnixMs,
    ) -> Result<(), StoreError> {
        let mut tx = begin_write(&self.write, self.backend).await?;
        for identity in who {
            sqlx::query(
                "UPDATE alarm_recipients SET rings = rings + 1, last_ring_at = $3 \
                 WHERE alarm_id = $1 AND identity = $2",
            )
            .bind(alarm.as_bytes().to_vec())
            .bind(identity.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Sets when `alarm` is next due and lets go of its lease.
    pub async fn alarm_due_at(&self, alarm: &MessageId, at: UnixMs) -> Result<(), StoreError> {
        sqlx::query("UPDATE alarms SET next_due_at = $2, lease_until = 0 WHERE id = $1")
            .bind(alarm.as_bytes().to_vec())
            .bind(at)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Ends an open alarm as `state` (resolved or expired) at `now`: its held boxes are
    /// deleted, its timer stops, and `alarm.resolved` or `alarm.expired` is reported.
    /// `false` when it had ended already.
    pub async fn end_alarm(
        &self,
        gateway: &GatewayId,
        alarm: &MessageId,
        state: AlarmState,
        now: UnixMs,
    ) -> Result<bool, StoreError> {
        let mut tx = begin_write(&self.write, self.backend).await?;
        let ended = sqlx::query(
            "UPDATE alarms SET state = $2, ended_at = $3, next_due_at = $4, lease_until = 0 \
             WHERE id = $1 AND state IN ('triggered', 'acknowledged')",
        )
        .bind(alarm.as_bytes().to_vec())
        .bind(state.as_str())
        .bind(now)
        .bind(UnixMs::MAX)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let mut statuses = 0;
        if ended == 1 {
            sqlx::query(
                "UPDATE alarm_recipients SET nonce = NULL, box = NULL \
                 WHERE alarm_id = $1 AND box IS NOT NULL",
            )
            .bind(alarm.as_bytes().to_vec())
            .execute(&mut *tx)
            .await?;
            let body = AlarmEnded {
                alarm_id: *alarm,
                at: now.get(),
            };
            let kind = match state {
                AlarmState::Expired => StatusKind::AlarmExpired(body),
                _ => StatusKind::AlarmResolved(body),
            };
            statuses = queue_statuses(&mut tx, self.backend, &[(*gateway, kind, now)]).await?;
        }
        tx.commit().await?;
        self.filled(Outbox::Statuses, statuses);
        Ok(ended == 1)
    }

    /// Records `responder`'s answer to `alarm` at `now` (a later answer replaces an earlier
    /// one) and reports it as `alarm.answered`; when the `coming` answers reach the
    /// alarm's quorum, the alarm becomes `acknowledged` (no more tiers) and that is
    /// reported too. `None` when `responder` was not reached by the alarm or it has ended.
    pub async fn answer_alarm(
        &self,
        gateway: &GatewayId,
        alarm: &MessageId,
        responder: &IdentityId,
        answer: &AlarmAnswer,
        now: UnixMs,
    ) -> Result<Option<Answered>, StoreError> {
        let mut tx = begin_write(&self.write, self.backend).await?;
        let open = sqlx::query(
            "SELECT state, required_acks, expires_at FROM alarms WHERE id = $1 AND gateway_id = $2 \
             AND state IN ('triggered', 'acknowledged')",
        )
        .bind(alarm.as_bytes().to_vec())
        .bind(gateway.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(open) = open else {
            return Ok(None);
        };
        let state = state_of(&open)?;
        let required: i64 = open.try_get("required_acks")?;
        let expires_at: UnixMs = open.try_get("expires_at")?;
        let recorded = sqlx::query(
            "UPDATE alarm_recipients SET answer = $3, eta_minutes = $4, note = $5, \
             answered_at = $6 WHERE alarm_id = $1 AND identity = $2 AND sent_at IS NOT NULL",
        )
        .bind(alarm.as_bytes().to_vec())
        .bind(responder.as_str())
        .bind(answer.answer.as_str())
        .bind(answer.eta_minutes.map(i64::from))
        .bind((!answer.note.is_empty()).then(|| answer.note.clone()))
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if recorded == 0 {
            return Ok(None);
        }
        let coming: Vec<IdentityId> = sqlx::query(
            "SELECT identity FROM alarm_recipients WHERE alarm_id = $1 AND answer = 'coming' \
             ORDER BY answered_at, identity",
        )
        .bind(alarm.as_bytes().to_vec())
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| identity_id(r, "identity"))
        .collect::<Result<_, _>>()?;
        let mut reports = vec![(
            *gateway,
            StatusKind::AlarmAnswered(AlarmAnswered {
                alarm_id: *alarm,
                responder: *responder,
                answer: answer.answer,
                eta_minutes: answer.eta_minutes,
                note: (!answer.note.is_empty()).then(|| answer.note.clone()),
                at: now.get(),
            }),
            now,
        )];
        let acknowledged = state == AlarmState::Triggered && coming.len() as i64 >= required;
        if acknowledged {
            // No more tiers: the alarm waits for its resolve or its expiry.
            sqlx::query("UPDATE alarms SET state = 'acknowledged', next_due_at = $2 WHERE id = $1")
                .bind(alarm.as_bytes().to_vec())
                .bind(expires_at)
                .execute(&mut *tx)
                .await?;
            reports.push((
                *gateway,
                StatusKind::AlarmAcknowledged(AlarmAcknowledged {
                    alarm_id: *alarm,
                    coming: coming.clone(),
                    at: now.get(),
                }),
                now,
            ));
        }
        let statuses = queue_statuses(&mut tx, self.backend, &reports).await?;
        tx.commit().await?;
        self.filled(Outbox::Statuses, statuses);
        Ok(Some(Answered {
            acknowledged,
            coming,
        }))
    }

    /// The members of `account`'s on-call group `name` (empty for an unknown group).
    pub async fn group_members(
        &self,
        account: AccountId,
        name: &str,
    ) -> Result<Vec<IdentityId>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.identity FROM oncall_members m JOIN oncall_groups g ON g.id = m.group_id \
             WHERE g.account_id = $1 AND g.name = $2 ORDER BY m.identity",
        )
        .bind(account.0)
        .bind(name)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(|r| identity_id(r, "identity")).collect()
    }

    /// Creates `account`'s on-call group `name` ([`StoreError::AlreadyExists`] when it has
    /// one by that name).
    pub async fn create_group(
        &self,
        account: AccountId,
        name: &str,
        now: UnixMs,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO oncall_groups (account_id, name, created_at) VALUES ($1, $2, $3)")
            .bind(account.0)
            .bind(name)
            .bind(now)
            .execute(&self.write)
            .await
            .map_err(|e| super::insert_error(e, || format!("group {name}")))?;
        Ok(())
    }

    /// Adds `who` to (`add`) or removes them from `account`'s group `name`; returns how many
    /// changed. [`StoreError::NotFound`] for an unknown group.
    pub async fn change_group(
        &self,
        account: AccountId,
        name: &str,
        who: &[IdentityId],
        add: bool,
    ) -> Result<u64, StoreError> {
        let mut tx = begin_write(&self.write, self.backend).await?;
        let group = sqlx::query("SELECT id FROM oncall_groups WHERE account_id = $1 AND name = $2")
            .bind(account.0)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("group {name}")))?;
        let group: i64 = group.try_get("id")?;
        let sql = match add {
            true => {
                "INSERT INTO oncall_members (group_id, identity) VALUES ($1, $2) \
                 ON CONFLICT (group_id, identity) DO NOTHING"
            }
            false => "DELETE FROM oncall_members WHERE group_id = $1 AND identity = $2",
        };
        let mut changed = 0;
        for identity in who {
            changed += sqlx::query(sql)
                .bind(group)
                .bind(identity.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// `account`'s on-call groups by name, each with its members.
    pub async fn groups(
        &self,
        account: AccountId,
    ) -> Result<Vec<(String, Vec<IdentityId>)>, StoreError> {
        let names: Vec<String> =
            sqlx::query("SELECT name FROM oncall_groups WHERE account_id = $1 ORDER BY name")
                .bind(account.0)
                .fetch_all(&self.read)
                .await?
                .iter()
                .map(|r| r.try_get("name"))
                .collect::<Result<_, _>>()?;
        let mut out = Vec::new();
        for name in names {
            let members = self.group_members(account, &name).await?;
            out.push((name, members));
        }
        Ok(out)
    }

    /// The open alarm of `gateway` with `dedup_key`, if any.
    pub async fn open_alarm_by_key(
        &self,
        gateway: &GatewayId,
        dedup_key: &str,
    ) -> Result<Option<MessageId>, StoreError> {
        let row = sqlx::query(
            "SELECT id FROM alarms WHERE gateway_id = $1 AND dedup_key = $2 \
             AND state IN ('triggered', 'acknowledged')",
        )
        .bind(gateway.as_str())
        .bind(dedup_key)
        .fetch_optional(&self.write)
        .await?;
        row.map(|r| message_id(&r, "id")).transpose()
    }

    /// Stores an integration of `gateway` reached with the token hashed to `token_hash`.
    pub async fn create_integration(
        &self,
        token_hash: &[u8],
        gateway: &GatewayId,
        kind: &str,
        template: &str,
        now: UnixMs,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO integrations (token_hash, gateway_id, kind, template, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash.to_vec())
        .bind(gateway.as_str())
        .bind(kind)
        .bind(template)
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// The gateway ID, kind and template of the integration whose token hashes to
    /// `token_hash`.
    pub async fn integration(
        &self,
        token_hash: &[u8],
    ) -> Result<Option<(GatewayId, String, String)>, StoreError> {
        let row = sqlx::query(
            "SELECT gateway_id, kind, template FROM integrations WHERE token_hash = $1",
        )
        .bind(token_hash.to_vec())
        .fetch_optional(&self.read)
        .await?;
        row.map(|r| {
            Ok((
                gateway_id(&r, "gateway_id")?,
                r.try_get("kind")?,
                r.try_get("template")?,
            ))
        })
        .transpose()
    }
}
