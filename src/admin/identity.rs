//! `tocsin admin identity …`: the recipient directory.
//!
//! Phone numbers and e-mail addresses are never stored: only their lookup hashes
//! (HMAC-SHA256 of the normalised value, as the gateway API's lookups expect).

use std::io::Write;
use std::time::Duration;

use clap::Subcommand;
use tocsin_sdk::protocol::{
    hash_email, hash_phone, normalize_phone, Capabilities, IdentityId, InviteCode, PublicKey,
};

use super::{refuse, AdminError};
use crate::domain::UnixMs;
use crate::state::AppState;
use crate::store::{IdentityRecord, NewIdentity, StoreError};

#[derive(Debug, Subcommand)]
pub enum IdentityCommand {
    /// Import an identity created elsewhere: its ID and public key, optionally linked to a
    /// phone number and an e-mail address (stored as hashes only).
    Import {
        /// 8 characters of 0-9 and A-Z.
        id: String,
        /// 64 hex characters (`public:` prefix allowed).
        #[arg(long)]
        public_key: String,
        /// Phone number in international form, e.g. +41 79 123 45 67.
        #[arg(long)]
        phone: Option<String>,
        /// E-mail address.
        #[arg(long)]
        email: Option<String>,
        /// Comma-separated capabilities; default text,image,group,audio,video,file.
        #[arg(long)]
        capabilities: Option<String>,
    },
    /// List every identity.
    List,
    /// Show one identity.
    Show { id: String },
    /// Revoke an identity: it stops resolving and can no longer log in.
    Revoke { id: String },
    /// Make one-time invite codes: each lets one device enrol
    /// (`tocsin-cli device init --invite CODE`). The codes are printed once; only their
    /// keyed hashes are kept.
    Invite {
        /// How many codes to make (1 to 1000).
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// How long the codes stay valid: a number with s, m, h, d or w (e.g. 7d, 12h);
        /// default directory.invite_ttl_secs.
        #[arg(long)]
        expires: Option<String>,
    },
    /// List the invites kept: a tag of each code's hash, when it expires, and who spent it.
    Invites,
}

/// Most invite codes one command makes.
const MAX_INVITES: u32 = 1000;

/// Reads `7d`, `12h`, `30m`, `90s` or `2w`.
fn parse_lifetime(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => {
            return Err(format!(
                "--expires {text:?}: give a number with s, m, h, d or w, e.g. 7d"
            ))
        }
    };
    let number: u64 = number
        .parse()
        .map_err(|_| format!("--expires {text:?}: give a number with s, m, h, d or w, e.g. 7d"))?;
    let secs = number.saturating_mul(unit_secs);
    if !(60..=366 * 86_400).contains(&secs) {
        return Err(format!(
            "--expires {text:?}: must be from 1 minute to 366 days"
        ));
    }
    Ok(Duration::from_secs(secs))
}

fn parse_id(raw: &str) -> Result<IdentityId, AdminError> {
    IdentityId::parse(raw).map_err(|e| refuse(format!("identity ID: {e}")))
}

pub async fn run(
    state: &AppState,
    cmd: IdentityCommand,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    match cmd {
        IdentityCommand::Import {
            id,
            public_key,
            phone,
            email,
            capabilities,
        } => {
            let id = parse_id(&id)?;
            if id.is_gateway() {
                return Err(refuse("IDs starting with '*' are gateway IDs; create them with `tocsin admin gateway create`"));
            }
            let public_key =
                PublicKey::parse(&public_key).map_err(|e| refuse(format!("--public-key: {e}")))?;
            let phone_hash = match phone {
                Some(p) if normalize_phone(&p).len() < 6 => {
                    return Err(refuse(format!(
                        "--phone {p:?} has too few digits for an international number"
                    )))
                }
                Some(p) => Some(hash_phone(&p)),
                None => None,
            };
            let email_hash = match email {
                Some(e) if !e.contains('@') => {
                    return Err(refuse(format!("--email {e:?} is not an e-mail address")))
                }
                Some(e) => Some(hash_email(&e)),
                None => None,
            };
            let capabilities = match capabilities {
                Some(list) => Capabilities::parse(&list)
                    .map_err(|e| refuse(format!("--capabilities: {e}")))?,
                None => Capabilities::default_for_device(),
            };
            let new = NewIdentity {
                id,
                public_key,
                phone_hash,
                email_hash,
                capabilities,
            };
            let record = state
                .store
                .import_identity(&new, UnixMs::now())
                .await
                .map_err(|e| match e {
                    StoreError::AlreadyExists { .. } => {
                        refuse(format!("identity {id} already exists"))
                    }
                    other => other.into(),
                })?;
            writeln!(out, "imported identity {}", record.id)?;
            print_identity(&record, out)?;
        }
        IdentityCommand::List => {
            for record in state.store.list_identities().await? {
                let revoked = if record.revoked { " (revoked)" } else { "" };
                writeln!(
                    out,
                    "{} {} {}{revoked}",
                    record.id, record.public_key, record.capabilities
                )?;
            }
        }
        IdentityCommand::Show { id } => {
            let id = parse_id(&id)?;
            let record = state
                .store
                .identity(&id)
                .await?
                .ok_or_else(|| refuse(format!("no identity {id}")))?;
            writeln!(out, "identity: {}", record.id)?;
            print_identity(&record, out)?;
        }
        IdentityCommand::Revoke { id } => {
            let id = parse_id(&id)?;
            state
                .store
                .revoke_identity(&id)
                .await
                .map_err(|e| match e {
                    StoreError::NotFound { .. } => refuse(format!("no identity {id}")),
                    other => other.into(),
                })?;
            writeln!(out, "revoked identity {id}")?;
        }
        IdentityCommand::Invite { count, expires } => {
            if !(1..=MAX_INVITES).contains(&count) {
                return Err(refuse(format!("--count must be from 1 to {MAX_INVITES}")));
            }
            let lifetime = match expires {
                Some(text) => parse_lifetime(&text).map_err(refuse)?,
                None => Duration::from_secs(state.settings.directory.invite_ttl_secs),
            };
            let (codes, expires_at) = make_invites(state, count, lifetime).await?;
            for code in &codes {
                writeln!(out, "{}", code.display())?;
            }
            writeln!(
                out,
                "{count} invite code(s), each good for one enrolment until {} (shown once)",
                when(expires_at)
            )?;
            if state.settings.directory.open_enrollment {
                writeln!(
                    out,
                    "note: directory.open_enrollment is on, so devices may enrol without one"
                )?;
            }
        }
        IdentityCommand::Invites => {
            let now = UnixMs::now();
            for invite in state.store.list_invites().await? {
                let state = match (&invite.identity, invite.redeemed_at) {
                    (Some(id), Some(at)) => format!("spent by {id} at {}", when(at)),
                    _ if invite.expires_at <= now => "expired".to_owned(),
                    _ => "open".to_owned(),
                };
                writeln!(
                    out,
                    "{} made {} expires {} {state}",
                    invite.tag,
                    when(invite.created_at),
                    when(invite.expires_at)
                )?;
            }
        }
    }
    Ok(())
}

/// Makes `count` invite codes valid for `lifetime` and stores their hashes; returns the
/// codes (never kept) and when they expire.
pub async fn make_invites(
    state: &AppState,
    count: u32,
    lifetime: Duration,
) -> Result<(Vec<InviteCode>, UnixMs), StoreError> {
    let codes: Vec<InviteCode> = (0..count).map(|_| InviteCode::generate()).collect();
    let hashes: Vec<[u8; 32]> = codes
        .iter()
        .map(|code| state.data_key.hash_invite(code))
        .collect();
    let now = UnixMs::now();
    let expires_at = now.plus(lifetime);
    state.store.create_invites(&hashes, now, expires_at).await?;
    Ok((codes, expires_at))
}

/// A stored moment in UTC, to the second.
fn when(at: UnixMs) -> String {
    tocsin_sdk::time::utc(u64::try_from(at.as_secs()).unwrap_or(0))
}

fn print_identity(record: &IdentityRecord, out: &mut dyn Write) -> Result<(), AdminError> {
    let hash = |h: Option<tocsin_sdk::protocol::LookupHash>| {
        h.map_or_else(|| "-".to_owned(), |h| h.to_string())
    };
    writeln!(
        out,
        "public key: {} (version {})",
        record.public_key, record.key_version
    )?;
    writeln!(out, "phone hash: {}", hash(record.phone_hash))?;
    writeln!(out, "email hash: {}", hash(record.email_hash))?;
    writeln!(out, "capabilities: {}", record.capabilities)?;
    writeln!(
        out,
        "revoked: {}",
        if record.revoked { "yes" } else { "no" }
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invite_lifetimes_take_a_unit_and_stay_within_a_year() {
        assert_eq!(parse_lifetime("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_lifetime("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse_lifetime("2w"), Ok(Duration::from_secs(1_209_600)));
        assert_eq!(parse_lifetime("90s"), Ok(Duration::from_secs(90)));
        for bad in [
            "7",
            "d",
            "7 days",
            "-1d",
            "30s",
            "400d",
            "99999999999999999999w",
        ] {
            let err = parse_lifetime(bad).unwrap_err();
            assert!(err.starts_with("--expires"), "{bad}: {err}");
        }
    }
}
