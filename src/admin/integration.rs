//! `tocsin admin integration …`: monitoring systems that trigger alarms through a secret
//! URL (Prometheus Alertmanager's webhook, Grafana's webhook contact point).

use std::io::Write;
use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use tocsin_sdk::protocol::{new_event_id, GatewayId};

use super::{refuse, AdminError};
use crate::domain::UnixMs;
use crate::state::AppState;
use crate::store::GatewayMode;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Kind {
    /// Alertmanager's webhook (version 4); Grafana's webhook contact point sends the same.
    Alertmanager,
}

#[derive(Debug, Subcommand)]
pub enum IntegrationCommand {
    /// Make a URL that triggers an alarm per alert group and resolves it when the group
    /// resolves. Prints the URL's path with its token once.
    Create {
        #[arg(long, value_enum)]
        kind: Kind,
        /// A basic-mode gateway ID (the server writes the alarm's text).
        #[arg(long)]
        gateway: String,
        /// JSON file with the alarm to trigger, as POST /api/v1/alarms takes it, without
        /// text and dedupKey: {"tiers": [{"to": ["ALICE123"]}, …], "priority": …}.
        #[arg(long, value_name = "FILE")]
        tiers: PathBuf,
    },
}

pub async fn run(
    state: &AppState,
    cmd: IntegrationCommand,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    let IntegrationCommand::Create {
        kind: Kind::Alertmanager,
        gateway,
        tiers,
    } = cmd;
    let id = GatewayId::parse(&gateway).map_err(|e| refuse(format!("--gateway: {e}")))?;
    let record = state
        .store
        .gateway(&id)
        .await?
        .ok_or_else(|| refuse(format!("no gateway ID {id}")))?;
    if record.mode != GatewayMode::Basic {
        return Err(refuse(format!(
            "{id} is in end-to-end mode; an integration needs a basic-mode gateway ID (the server writes the text)"
        )));
    }
    let template = std::fs::read_to_string(&tiers)
        .map_err(|e| refuse(format!("cannot read {}: {e}", tiers.display())))?;
    crate::http::check_alarm_template(&template)
        .map_err(|why| refuse(format!("{}: {why}", tiers.display())))?;
    // 32 bytes of the operating system's random generator, in hex.
    let token = format!("{}{}", new_event_id(), new_event_id());
    let hash = state.data_key.hash_token(&token);
    state
        .store
        .create_integration(&hash, &id, "alertmanager", &template, UnixMs::now())
        .await?;
    writeln!(out, "alertmanager integration for {id}")?;
    writeln!(out, "webhook path: /hooks/alertmanager/{token}")?;
    writeln!(
        out,
        "(shown once: give the whole URL, e.g. https://tocsin.example.org/hooks/alertmanager/…, to Alertmanager or Grafana)"
    )?;
    Ok(())
}
