//! `tocsin admin identity …`: the recipient directory.
//!
//! Phone numbers and e-mail addresses are never stored: only their lookup hashes
//! (HMAC-SHA256 of the normalised value, as the gateway API's lookups expect).

use std::io::Write;

use clap::Subcommand;
use tocsin_sdk::protocol::{
    hash_email, hash_phone, normalize_phone, Capabilities, IdentityId, PublicKey,
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
    }
    Ok(())
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
