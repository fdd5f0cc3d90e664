//! `tocsin admin group …`: an account's on-call groups, which alarm tiers can name instead
//! of identities (resolved to their members when the tier starts).

use std::io::Write;

use clap::Subcommand;
use tocsin_sdk::protocol::IdentityId;

use super::{find_account, refuse, AdminError};
use crate::domain::UnixMs;
use crate::state::AppState;
use crate::store::StoreError;

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Create an on-call group of an account.
    Create {
        /// 1 to 255 visible ASCII characters, e.g. night-shift.
        name: String,
        #[arg(long)]
        account: String,
    },
    /// Add identities to a group.
    Add {
        name: String,
        /// Identity IDs (8 characters of 0-9 and A-Z).
        #[arg(required = true)]
        ids: Vec<String>,
        #[arg(long)]
        account: String,
    },
    /// Remove identities from a group.
    Remove {
        name: String,
        #[arg(required = true)]
        ids: Vec<String>,
        #[arg(long)]
        account: String,
    },
    /// List an account's groups with their members.
    List {
        #[arg(long)]
        account: String,
    },
}

fn group_name(name: &str) -> Result<&str, AdminError> {
    if (1..=255).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(name)
    } else {
        Err(refuse(
            "a group name is 1 to 255 visible ASCII characters (no spaces)",
        ))
    }
}

fn identities(raw: &[String]) -> Result<Vec<IdentityId>, AdminError> {
    raw.iter()
        .map(|id| IdentityId::parse(id).map_err(|e| refuse(format!("{id}: {e}"))))
        .collect()
}

pub async fn run(
    state: &AppState,
    cmd: GroupCommand,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    match cmd {
        GroupCommand::Create { name, account } => {
            let name = group_name(&name)?;
            let account = find_account(state, &account).await?;
            state
                .store
                .create_group(account.id, name, UnixMs::now())
                .await
                .map_err(|e| match e {
                    StoreError::AlreadyExists { .. } => refuse(format!(
                        "account {} has a group {name} already",
                        account.name
                    )),
                    other => other.into(),
                })?;
            writeln!(out, "created group {name} of account {}", account.name)?;
        }
        GroupCommand::Add { name, ids, account } => {
            change(state, &name, &ids, &account, true, out).await?;
        }
        GroupCommand::Remove { name, ids, account } => {
            change(state, &name, &ids, &account, false, out).await?;
        }
        GroupCommand::List { account } => {
            let account = find_account(state, &account).await?;
            let groups = state.store.groups(account.id).await?;
            if groups.is_empty() {
                writeln!(out, "account {} has no groups", account.name)?;
            }
            for (name, members) in groups {
                let members: Vec<&str> = members.iter().map(IdentityId::as_str).collect();
                writeln!(out, "{name}: {}", members.join(" "))?;
            }
        }
    }
    Ok(())
}

/// `group add` (`add`) or `group remove`.
async fn change(
    state: &AppState,
    name: &str,
    ids: &[String],
    account: &str,
    add: bool,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    let name = group_name(name)?;
    let who = identities(ids)?;
    let account = find_account(state, account).await?;
    let changed = state
        .store
        .change_group(account.id, name, &who, add)
        .await
        .map_err(|e| match e {
            StoreError::NotFound { .. } => refuse(format!(
                "account {} has no group {name}; create it with `tocsin admin group create {name} --account {}`",
                account.name, account.name
            )),
            other => other.into(),
        })?;
    let verb = if add { "added to" } else { "removed from" };
    writeln!(out, "{changed} {verb} group {name}")?;
    Ok(())
}
