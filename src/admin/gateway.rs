//! `tocsin admin gateway …`: gateway IDs, their secrets, keys and callback URLs.

use std::io::Write;
use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use tocsin_sdk::protocol::{ApiSecret, GatewayId, KeyPair, PublicKey, SecretKey, StatusSecret};

use super::{find_account, refuse, AdminError};
use crate::callback::guard::{self, AddressPolicy};
use crate::domain::UnixMs;
use crate::state::AppState;
use crate::store::{GatewayMode, GatewayRecord, StoreError};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModeArg {
    /// The server holds the private key and encrypts (send_simple).
    Basic,
    /// The customer encrypts end to end (send_e2e); the server keeps only the public key.
    E2e,
}

#[derive(Debug, Subcommand)]
pub enum GatewayCommand {
    /// Create a gateway ID. Generates the ID, the API secret and the key pair unless given;
    /// prints the secret (and a generated E2E private key) once.
    Create {
        /// Account that pays for this ID's messages.
        #[arg(long)]
        account: String,
        #[arg(long, value_enum)]
        mode: ModeArg,
        /// The ID to use, `*` followed by 7 characters of 0-9 and A-Z.
        #[arg(long)]
        id: Option<String>,
        /// File holding the API secret to use (8 to 64 letters and digits).
        #[arg(long)]
        secret_file: Option<PathBuf>,
        /// Basic mode: file holding the private key to use (64 hex, `private:` prefix allowed).
        #[arg(long)]
        private_key_file: Option<PathBuf>,
        /// E2E mode: the customer's public key (64 hex) when they keep the private key.
        #[arg(long)]
        public_key: Option<String>,
        /// Where replies and delivery receipts are posted (http or https).
        #[arg(long)]
        callback_url: Option<String>,
    },
    /// Set or clear the callback URL of a gateway ID.
    SetCallback {
        id: String,
        /// The new URL; omit together with --clear to remove it.
        url: Option<String>,
        #[arg(long, conflicts_with = "url")]
        clear: bool,
    },
    /// Set or clear the status webhook of a gateway ID: JSON events (message.delivered,
    /// message.read, message.acknowledged, message.declined, message.expired) signed with
    /// a signing secret of the ID's own. The first URL set makes the secret and prints it
    /// once; later ones keep it unless --new-secret.
    SetStatusUrl {
        id: String,
        /// The new URL (http or https); omit together with --clear to remove it.
        url: Option<String>,
        /// Remove the status URL and its signing secret.
        #[arg(long, conflicts_with_all = ["url", "new_secret"])]
        clear: bool,
        /// Make a new signing secret (printed once); the old one stops signing at once.
        #[arg(long)]
        new_secret: bool,
    },
    /// Open or close `/lookup/bulk` (phone and e-mail hashes, many at once) to a gateway
    /// ID. It is closed until turned on: in bulk, hashes of a whole number range can be
    /// tried quickly.
    SetLookup {
        id: String,
        /// `on` or `off`.
        #[arg(long, value_parser = ["on", "off"])]
        bulk: String,
    },
    /// List gateway IDs, optionally of one account.
    List {
        #[arg(long)]
        account: Option<String>,
    },
    /// Show one gateway ID (never its secret).
    Show { id: String },
}

pub async fn run(
    state: &AppState,
    cmd: GatewayCommand,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    match cmd {
        GatewayCommand::Create {
            account,
            mode,
            id,
            secret_file,
            private_key_file,
            public_key,
            callback_url,
        } => {
            let account = find_account(state, &account).await?;
            let callback_url = match callback_url {
                Some(url) => Some(check_callback_url(state, &url).await?),
                None => None,
            };
            let secret = match &secret_file {
                Some(path) => ApiSecret::parse(read_trimmed(path)?.as_str())
                    .map_err(|e| refuse(format!("--secret-file {}: {e}", path.display())))?,
                None => ApiSecret::generate(),
            };
            let (mode, public, private, print_private) = match mode {
                ModeArg::Basic => {
                    if public_key.is_some() {
                        return Err(refuse("--public-key is for e2e mode; in basic mode the server keeps the key pair (use --private-key-file to bring one)"));
                    }
                    let secret_key = match &private_key_file {
                        Some(path) => {
                            SecretKey::parse(read_trimmed(path)?.as_str()).map_err(|e| {
                                refuse(format!("--private-key-file {}: {e}", path.display()))
                            })?
                        }
                        None => SecretKey::generate(),
                    };
                    let public = secret_key.public_key();
                    (GatewayMode::Basic, public, Some(secret_key), false)
                }
                ModeArg::E2e => {
                    if private_key_file.is_some() {
                        return Err(refuse("--private-key-file is for basic mode; in e2e mode the server never holds the private key (give --public-key)"));
                    }
                    match public_key {
                        Some(hex) => {
                            let public = PublicKey::parse(&hex)
                                .map_err(|e| refuse(format!("--public-key: {e}")))?;
                            (GatewayMode::E2e, public, None, false)
                        }
                        None => {
                            let pair = KeyPair::generate();
                            (GatewayMode::E2e, pair.public, Some(pair.secret), true)
                        }
                    }
                }
            };
            let now = UnixMs::now();
            let new = |id: GatewayId| GatewayRecord {
                id,
                account: account.id,
                mode,
                secret_hash: state.data_key.hash_secret(&secret).to_vec(),
                secret_sealed: state.data_key.seal(secret.expose().as_bytes()),
                public_key: public,
                private_sealed: match mode {
                    GatewayMode::Basic => {
                        private.as_ref().map(|k| state.data_key.seal(k.as_bytes()))
                    }
                    GatewayMode::E2e => None,
                },
                callback_url: callback_url.clone(),
                bulk_lookup: false,
                created_at: now,
            };
            let record = match id {
                Some(id) => {
                    let id = GatewayId::parse(&id).map_err(|e| refuse(format!("--id: {e}")))?;
                    state
                        .store
                        .create_gateway(&new(id))
                        .await
                        .map_err(|e| match e {
                            StoreError::AlreadyExists { .. } => {
                                refuse(format!("gateway ID {id} already exists"))
                            }
                            other => other.into(),
                        })?
                }
                None => create_with_fresh_id(state, new).await?,
            };
            writeln!(
                out,
                "created gateway ID {} ({} mode) for account {}",
                record.id, record.mode, account.name
            )?;
            writeln!(out, "public key: {}", record.public_key)?;
            if secret_file.is_none() {
                writeln!(out, "secret: {}", secret.expose())?;
            }
            if let (true, Some(private)) = (print_private, &private) {
                writeln!(out, "private key: {}", private.to_hex().as_str())?;
            }
            if secret_file.is_none() || print_private {
                writeln!(
                    out,
                    "(shown once: store it now, it cannot be displayed again)"
                )?;
            }
        }
        GatewayCommand::SetCallback { id, url, clear } => {
            let id = GatewayId::parse(&id).map_err(|e| refuse(format!("gateway ID: {e}")))?;
            let url = match (url, clear) {
                (Some(url), false) => Some(check_callback_url(state, &url).await?),
                (None, true) => None,
                _ => return Err(refuse("give the new callback URL, or --clear to remove it")),
            };
            state
                .store
                .set_callback_url(&id, url.as_deref())
                .await
                .map_err(|e| match e {
                    StoreError::NotFound { .. } => refuse(format!("no gateway ID {id}")),
                    other => other.into(),
                })?;
            match url {
                Some(url) => writeln!(out, "callback URL of {id}: {url}")?,
                None => writeln!(out, "callback URL of {id} removed")?,
            }
        }
        GatewayCommand::SetStatusUrl {
            id,
            url,
            clear,
            new_secret,
        } => set_status_url(state, &id, url, clear, new_secret, out).await?,
        GatewayCommand::SetLookup { id, bulk } => {
            let id = GatewayId::parse(&id).map_err(|e| refuse(format!("gateway ID: {e}")))?;
            let on = bulk == "on";
            state
                .store
                .set_bulk_lookup(&id, on)
                .await
                .map_err(|e| match e {
                    StoreError::NotFound { .. } => refuse(format!("no gateway ID {id}")),
                    other => other.into(),
                })?;
            writeln!(out, "bulk lookup of {id}: {bulk}")?;
        }
        GatewayCommand::List { account } => {
            let account = match account {
                Some(name) => Some(find_account(state, &name).await?.id),
                None => None,
            };
            for g in state.store.list_gateways(account).await? {
                writeln!(
                    out,
                    "{} {:<5} {}",
                    g.id,
                    g.mode,
                    g.callback_url.as_deref().unwrap_or("-")
                )?;
            }
        }
        GatewayCommand::Show { id } => {
            let id = GatewayId::parse(&id).map_err(|e| refuse(format!("gateway ID: {e}")))?;
            let g = state
                .store
                .gateway(&id)
                .await?
                .ok_or_else(|| refuse(format!("no gateway ID {id}")))?;
            let account = state
                .store
                .account(g.account)
                .await?
                .map(|a| a.name)
                .unwrap_or_default();
            writeln!(out, "gateway ID: {}", g.id)?;
            writeln!(out, "account: {account}")?;
            writeln!(out, "mode: {}", g.mode)?;
            writeln!(out, "public key: {}", g.public_key)?;
            writeln!(
                out,
                "callback URL: {}",
                g.callback_url.as_deref().unwrap_or("-")
            )?;
            let status_url = state.store.status_hook(&g.id).await?.map(|hook| hook.url);
            writeln!(out, "status URL: {}", status_url.as_deref().unwrap_or("-"))?;
            writeln!(
                out,
                "bulk lookup: {}",
                if g.bulk_lookup { "on" } else { "off" }
            )?;
        }
    }
    Ok(())
}

/// `gateway set-status-url`.
async fn set_status_url(
    state: &AppState,
    id: &str,
    url: Option<String>,
    clear: bool,
    new_secret: bool,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    let id = GatewayId::parse(id).map_err(|e| refuse(format!("gateway ID: {e}")))?;
    let unknown = |e: StoreError| match e {
        StoreError::NotFound { .. } => refuse(format!("no gateway ID {id}")),
        other => other.into(),
    };
    let url = match (url, clear) {
        (Some(url), false) => check_callback_url(state, &url).await?,
        (None, true) => {
            state.store.clear_status_url(&id).await.map_err(unknown)?;
            writeln!(out, "status URL of {id} removed, with its signing secret")?;
            return Ok(());
        }
        _ => return Err(refuse("give the new status URL, or --clear to remove it")),
    };
    let fresh = match new_secret || !state.store.has_status_secret(&id).await? {
        true => Some(StatusSecret::generate()),
        false => None,
    };
    let sealed = fresh
        .as_ref()
        .map(|secret| state.data_key.seal(secret.expose().as_bytes()));
    state
        .store
        .set_status_url(&id, &url, sealed.as_deref())
        .await
        .map_err(unknown)?;
    writeln!(out, "status URL of {id}: {url}")?;
    match fresh {
        Some(secret) => {
            writeln!(out, "signing secret: {}", secret.expose())?;
            writeln!(
                out,
                "(shown once: store it now, it cannot be displayed again)"
            )?;
        }
        None => writeln!(
            out,
            "signing secret unchanged (--new-secret makes a new one)"
        )?,
    }
    Ok(())
}

/// Inserts with a random ID, drawing again on the (rare) collision.
async fn create_with_fresh_id(
    state: &AppState,
    new: impl Fn(GatewayId) -> GatewayRecord,
) -> Result<GatewayRecord, AdminError> {
    for _ in 0..16 {
        match state.store.create_gateway(&new(GatewayId::random())).await {
            Err(StoreError::AlreadyExists { .. }) => continue,
            other => return Ok(other?),
        }
    }
    Err(refuse(
        "could not find a free gateway ID after 16 tries; give one with --id",
    ))
}

fn read_trimmed(path: &std::path::Path) -> Result<zeroize::Zeroizing<String>, AdminError> {
    std::fs::read_to_string(path)
        .map(|s| zeroize::Zeroizing::new(s.trim().to_owned()))
        .map_err(|e| refuse(format!("cannot read {}: {e}", path.display())))
}

/// Accepts absolute http(s) URLs whose host is not in a forbidden range (unless the
/// config allows it); returns the normalised form.
pub(crate) async fn check_callback_url(state: &AppState, raw: &str) -> Result<String, AdminError> {
    let policy = AddressPolicy::new(
        &state.settings.callbacks.allowed_ranges,
        &state.settings.callbacks.allowed_ports,
    )
    .map_err(refuse)?;
    guard::check_url(raw, &policy).await.map_err(refuse)
}
