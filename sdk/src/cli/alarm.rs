//! `tocsin-cli alarm …`: trigger an alarm, show what became of it, list and resolve
//! alarms. Each command is one client call plus printing.
//!
//! A tier is written `[AFTER_SECS:]RECIPIENT,RECIPIENT,…`, a recipient being an ID or
//! `@GROUP` (an on-call group of the account). With the gateway's private key given,
//! the text is sealed here for each recipient (end-to-end mode, IDs only); without it
//! the server seals it (basic mode).

use std::str::FromStr;

use clap::{Args, Subcommand};

use super::remote::text_argument;
use super::setup::Settings;
use super::show::escape;
use super::{say, Failure};
use crate::client::{AlarmRequest, AlarmStatus, AlarmTier, Error, RecipientStatus};
use crate::protocol::{IdentityId, MessageId, Priority};
use crate::time::utc;

const AFTER_HELP: &str = "\
Tiers:
  --tier [AFTER_SECS:]RECIPIENT,RECIPIENT,...  (repeat for each tier, in order)
  A recipient is an ID (ALICE123) or an on-call group of the account (@night-shift).
  AFTER_SECS is when the tier starts, in seconds after the trigger (default 0); the
  first tier starts at once, each later one no earlier than the one before, and only
  while the alarm is still unanswered. Example:
    --tier ALICE123,BOB45678 --tier 300:@night-shift --tier 600:CAROL999

Modes:
  Without a private key the server seals the text for each recipient (basic mode).
  With one (TOCSIN_PRIVATE_KEY or --private-key-file) the text is sealed here with each
  recipient's public key (end-to-end mode); groups cannot be used then.

Cost: 1 credit per recipient reached, charged as each tier starts.";

/// `tocsin-cli alarm …`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct AlarmArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: AlarmCommand,
}

/// The alarm subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum AlarmCommand {
    /// Trigger an alarm; print its ID (followed by 'deduplicated' when an earlier alarm
    /// answered instead).
    Trigger(TriggerArgs),
    /// Print an alarm's state and one line per tier and recipient.
    Status {
        /// The alarm's ID (16 hex characters).
        id: MessageId,
    },
    /// List the newest alarms (at most 100), one line each.
    List {
        /// Only the alarms still ringing.
        #[arg(long)]
        open: bool,
    },
    /// Declare an alarm over: every device reached stops ringing.
    Resolve {
        /// The alarm's ID.
        id: MessageId,
    },
}

/// `alarm trigger`.
#[derive(Debug, Args)]
pub(crate) struct TriggerArgs {
    /// The alarm's text; '-' reads it from standard input.
    #[arg(long)]
    pub text: String,
    /// A tier: [AFTER_SECS:]ID,ID,@GROUP (repeat for each tier).
    #[arg(long, required = true, value_name = "TIER")]
    pub tier: Vec<TierSpec>,
    /// normal, high or critical [server default: normal].
    #[arg(long)]
    pub priority: Option<Priority>,
    /// Seconds between two rings of an unanswered recipient [server default: 60].
    #[arg(long, value_name = "SECONDS")]
    pub ring_every: Option<u64>,
    /// Rings after the first at most [server default: 10].
    #[arg(long, value_name = "N")]
    pub max_rings: Option<u64>,
    /// "Coming" answers that acknowledge the alarm [server default: 1].
    #[arg(long, value_name = "N")]
    pub required_acks: Option<u64>,
    /// Seconds after which the alarm expires [server default: 3600].
    #[arg(long, value_name = "SECONDS")]
    pub expires_after: Option<u64>,
    /// While an alarm with this key is open, a trigger with it answers that alarm.
    #[arg(long, value_name = "KEY")]
    pub dedup_key: Option<String>,
    /// A retry with the same key answers the first alarm instead of triggering another.
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
}

/// One `--tier`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TierSpec {
    after_secs: u64,
    ids: Vec<IdentityId>,
    groups: Vec<String>,
}

impl FromStr for TierSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // A prefix of digits and a colon is the start; IDs never hold a colon.
        let (after_secs, list) = match s.split_once(':') {
            Some((after, rest))
                if !after.is_empty() && after.bytes().all(|b| b.is_ascii_digit()) =>
            {
                let secs = after
                    .parse()
                    .map_err(|_| format!("{after} seconds is too long a wait"))?;
                (secs, rest)
            }
            _ => (0, s),
        };
        let mut tier = Self {
            after_secs,
            ids: Vec::new(),
            groups: Vec::new(),
        };
        for item in list.split(',').map(str::trim) {
            match item.strip_prefix('@') {
                Some("") => return Err("'@' must be followed by a group name".into()),
                Some(group) => tier.groups.push(group.to_owned()),
                None if item.is_empty() => {
                    return Err("expected [AFTER_SECS:]ID,ID,@GROUP with no empty entry".into())
                }
                None => tier
                    .ids
                    .push(IdentityId::parse(item).map_err(|e| format!("{item}: {e}"))?),
            }
        }
        Ok(tier)
    }
}

/// Runs one alarm command.
pub(crate) async fn execute(settings: &Settings, command: AlarmCommand) -> Result<(), Failure> {
    let client = settings.client()?;
    match command {
        AlarmCommand::Trigger(args) => trigger(settings, args).await,
        AlarmCommand::Status { id } => {
            let status = client.alarm(&id).await?.ok_or_else(|| unknown(&id))?;
            for line in status_lines(&status) {
                say(line);
            }
            Ok(())
        }
        AlarmCommand::List { open } => {
            for alarm in client.alarms(open).await? {
                let dedup = alarm
                    .dedup_key
                    .map(|k| format!(" dedup={}", escape(&k)))
                    .unwrap_or_default();
                say(format!(
                    "{} {} {} {}{dedup}",
                    alarm.alarm_id,
                    utc_ms(alarm.created_at),
                    alarm.state,
                    alarm.priority,
                ));
            }
            Ok(())
        }
        AlarmCommand::Resolve { id } => {
            let status = client.resolve_alarm(&id).await.map_err(|e| match e {
                Error::NotFound => unknown(&id),
                other => other.into(),
            })?;
            say(format!("{id} {}", status.state));
            Ok(())
        }
    }
}

async fn trigger(settings: &Settings, args: TriggerArgs) -> Result<(), Failure> {
    let text = text_argument(args.text)?;
    if text.is_empty() {
        return Err(Failure::usage("the text is empty"));
    }
    let mut alarm = AlarmRequest {
        text: None,
        tiers: Vec::new(),
        priority: args.priority,
        ring_every_secs: args.ring_every,
        max_rings: args.max_rings,
        required_acks: args.required_acks,
        expires_after_secs: args.expires_after,
        dedup_key: args.dedup_key,
    };
    let client = match settings.given_private_key()? {
        Some(key) => {
            let e2e = crate::client::E2eClient::new(settings.client()?, key);
            for spec in args.tier {
                if !spec.groups.is_empty() {
                    return Err(Failure::usage(
                        "on-call groups (@GROUP) are for basic mode: the server cannot seal \
                         for their members in end-to-end mode; name IDs, or drop the private key",
                    ));
                }
                let boxes =
                    e2e.alarm_boxes(&spec.ids, &text).await.map_err(|e| {
                        match e {
                    Error::NotFound => Failure::new(
                        "a recipient has no public key (an unknown or revoked ID); check the IDs",
                    ),
                    other => other.into(),
                }
                    })?;
                alarm.tiers.push(AlarmTier {
                    after_secs: spec.after_secs,
                    boxes,
                    ..AlarmTier::default()
                });
            }
            e2e.client().clone()
        }
        None => {
            alarm.text = Some(text);
            alarm.tiers = args
                .tier
                .into_iter()
                .map(|spec| AlarmTier {
                    after_secs: spec.after_secs,
                    to: spec.ids,
                    groups: spec.groups,
                    boxes: Vec::new(),
                })
                .collect();
            settings.client()?
        }
    };
    let triggered = client
        .trigger_alarm(&alarm, args.idempotency_key.as_deref())
        .await
        .map_err(|e| match e {
            Error::Invalid(reason) => Failure::usage(format!("--idempotency-key: {reason}")),
            other => other.into(),
        })?;
    if triggered.deduplicated {
        say(format!("{} deduplicated", triggered.alarm_id));
    } else {
        say(triggered.alarm_id);
    }
    Ok(())
}

/// The lines of `alarm status`: the alarm, then each tier and its recipients.
fn status_lines(status: &AlarmStatus) -> Vec<String> {
    let ended = status
        .ended_at
        .map(|at| format!(" ended {}", utc_ms(at)))
        .unwrap_or_default();
    let mut lines = vec![
        format!("alarm {} {}", status.alarm_id, status.state),
        format!(
            "priority {}, triggered {}{ended}, expires {}, {} coming needed",
            status.priority,
            utc_ms(status.created_at),
            utc_ms(status.expires_at),
            status.required_acks
        ),
    ];
    for tier in &status.tiers {
        let started = match tier.started_at {
            Some(at) => format!("started {}", utc_ms(at)),
            None => format!("starts after {} s", tier.after_secs),
        };
        let groups = if tier.groups.is_empty() {
            String::new()
        } else {
            format!(", groups {}", tier.groups.join(","))
        };
        lines.push(format!("tier {} {started}{groups}", tier.tier));
        for recipient in &tier.recipients {
            lines.push(recipient_line(tier.tier, recipient));
        }
    }
    lines
}

/// `TIER ID DELIVERY rings=N ANSWER [eta=MIN] [note=TEXT]`.
fn recipient_line(tier: i64, r: &RecipientStatus) -> String {
    let delivery = match (r.sent_at, r.unpaid) {
        (Some(_), _) => "sent",
        (None, true) => "unpaid",
        (None, false) => "waiting",
    };
    let answer = r.answer.map_or("no-answer", |a| a.as_str());
    let mut line = format!("  {tier} {} {delivery} rings={} {answer}", r.id, r.rings);
    if let Some(eta) = r.eta_minutes {
        line.push_str(&format!(" eta={eta}min"));
    }
    if let Some(note) = r.note.as_deref().filter(|n| !n.is_empty()) {
        line.push_str(&format!(" note={}", escape(note)));
    }
    line
}

/// A server time in milliseconds, in UTC; a time before 1970 shows as 1970.
fn utc_ms(ms: i64) -> String {
    utc(u64::try_from(ms.div_euclid(1000)).unwrap_or(0))
}

fn unknown(id: &MessageId) -> Failure {
    Failure::new(format!("this gateway ID has no alarm {id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_read_their_start_ids_and_groups() {
        let tier: TierSpec = "ALICE123,BOB45678".parse().unwrap();
        assert_eq!(tier.after_secs, 0);
        assert_eq!(tier.ids.len(), 2);
        let tier: TierSpec = "300:CAROL999, @night-shift".parse().unwrap();
        assert_eq!(tier.after_secs, 300);
        assert_eq!(tier.ids, [IdentityId::parse("CAROL999").unwrap()]);
        assert_eq!(tier.groups, ["night-shift"]);
        let group_only: TierSpec = "60:@ops:eu".parse().unwrap();
        assert_eq!(
            (group_only.after_secs, &group_only.groups[..]),
            (60, &["ops:eu".to_owned()][..])
        );
        for bad in [
            "",
            "ALICE123,",
            "@",
            "300:",
            "alice",
            "99999999999999999999999:ALICE123",
        ] {
            assert!(bad.parse::<TierSpec>().is_err(), "{bad:?}");
        }
    }
}
