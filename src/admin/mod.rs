//! `tocsin admin`: operator commands against the configured store, no server needed.
//!
//! Each command prints what it did to the given writer; refusals come back as
//! [`AdminError`] with a one-line message that says what was wrong.

mod gateway;
mod group;
mod identity;
mod integration;

use std::io::Write;

use clap::{Args, Subcommand};

use crate::domain::{AccountName, UnixMs};
use crate::state::AppState;
use crate::store::{Account, StoreError};

pub use gateway::GatewayCommand;
pub use group::GroupCommand;
pub use identity::{make_invites, IdentityCommand};
pub use integration::{IntegrationCommand, Kind as IntegrationKind};

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create, list and show accounts.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Top up an account's credits.
    #[command(subcommand)]
    Credits(CreditsCommand),
    /// Create, list and show gateway IDs; set their callback URL.
    #[command(subcommand)]
    Gateway(GatewayCommand),
    /// On-call groups of an account, which alarm tiers can name.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Monitoring systems (Alertmanager, Grafana) that trigger alarms.
    #[command(subcommand)]
    Integration(IntegrationCommand),
    /// Import, list, show and revoke recipient identities.
    #[command(subcommand)]
    Identity(IdentityCommand),
    /// Print the chat server's public key, for devices to pin.
    ServerKey,
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create an account (balance 0 unless --credits is given).
    Create {
        /// Handle for the account: a-z, 0-9, '.', '_', '-'.
        name: String,
        /// Initial credits, recorded as a ledger row.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        credits: Option<u32>,
    },
    /// List every account with its balance.
    List,
    /// Show an account's balance, gateway IDs and recent ledger rows.
    Show {
        name: String,
        /// How many ledger rows to show, newest first.
        #[arg(long, default_value_t = 20)]
        ledger: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum CreditsCommand {
    /// Add credits to an account.
    Add(CreditsAdd),
}

#[derive(Debug, Args)]
pub struct CreditsAdd {
    /// Account name.
    pub account: String,
    /// Credits to add (a positive whole number).
    #[arg(value_parser = clap::value_parser!(u32).range(1..))]
    pub amount: u32,
    /// Reason recorded in the ledger.
    #[arg(long, default_value = "top-up")]
    pub reason: String,
}

/// A refused or failed admin command.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

pub(crate) fn refuse(message: impl Into<String>) -> AdminError {
    AdminError::Refused(message.into())
}

/// Runs one admin command.
pub async fn run(
    state: &AppState,
    command: AdminCommand,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    match command {
        AdminCommand::Account(cmd) => account(state, cmd, out).await,
        AdminCommand::Credits(CreditsCommand::Add(add)) => credits_add(state, add, out).await,
        AdminCommand::Gateway(cmd) => gateway::run(state, cmd, out).await,
        AdminCommand::Group(cmd) => group::run(state, cmd, out).await,
        AdminCommand::Integration(cmd) => integration::run(state, cmd, out).await,
        AdminCommand::Identity(cmd) => identity::run(state, cmd, out).await,
        AdminCommand::ServerKey => {
            writeln!(out, "{}", state.server_key.public)?;
            Ok(())
        }
    }
}

/// Looks an account up by name, refusing bad or unknown names.
pub(crate) async fn find_account(state: &AppState, name: &str) -> Result<Account, AdminError> {
    let name = AccountName::parse(name).map_err(refuse)?;
    state.store.account_by_name(&name).await?.ok_or_else(|| {
        refuse(format!(
            "no account named {name}; create it with `tocsin admin account create {name}`"
        ))
    })
}

async fn account(
    state: &AppState,
    cmd: AccountCommand,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    match cmd {
        AccountCommand::Create { name, credits } => {
            let name = AccountName::parse(&name).map_err(refuse)?;
            let account = state
                .store
                .create_account(&name, UnixMs::now())
                .await
                .map_err(|e| match e {
                    StoreError::AlreadyExists { .. } => {
                        refuse(format!("an account named {name} already exists"))
                    }
                    other => other.into(),
                })?;
            writeln!(out, "created account {}", account.name)?;
            if let Some(credits) = credits {
                let balance = state
                    .store
                    .add_credits(
                        account.id,
                        i64::from(credits),
                        "initial credits",
                        UnixMs::now(),
                    )
                    .await?;
                writeln!(out, "balance: {balance}")?;
            }
        }
        AccountCommand::List => {
            let accounts = state.store.list_accounts().await?;
            if accounts.is_empty() {
                writeln!(
                    out,
                    "no accounts yet; create one with `tocsin admin account create NAME`"
                )?;
            }
            for a in accounts {
                writeln!(out, "{:<32} balance {}", a.name, a.balance)?;
            }
        }
        AccountCommand::Show { name, ledger } => {
            let account = find_account(state, &name).await?;
            writeln!(out, "account: {}", account.name)?;
            writeln!(out, "balance: {}", account.balance)?;
            for g in state.store.list_gateways(Some(account.id)).await? {
                writeln!(out, "gateway ID: {} ({})", g.id, g.mode)?;
            }
            let rows = state.store.ledger(account.id, i64::from(ledger)).await?;
            writeln!(out, "ledger (newest first):")?;
            for row in rows {
                let message = row
                    .message_id
                    .as_deref()
                    .map(hex::encode)
                    .unwrap_or_default();
                writeln!(
                    out,
                    "  #{:<6} {:>+8} -> {:<8} {:<16} {}",
                    row.id, row.delta, row.balance_after, row.reason, message
                )?;
            }
        }
    }
    Ok(())
}

async fn credits_add(
    state: &AppState,
    add: CreditsAdd,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    let account = find_account(state, &add.account).await?;
    let reason = add.reason.trim();
    if reason.is_empty() || reason.len() > 200 {
        return Err(refuse("--reason must be 1 to 200 characters"));
    }
    let balance = state
        .store
        .add_credits(account.id, i64::from(add.amount), reason, UnixMs::now())
        .await?;
    writeln!(
        out,
        "added {} credits to {}; balance: {balance}",
        add.amount, account.name
    )?;
    Ok(())
}
