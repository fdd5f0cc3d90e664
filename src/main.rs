//! The `tocsin` binary: `serve`, `admin …` and `migrate`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tocsin::admin::{self, AdminCommand, AdminError};
use tocsin::config::{ConfigError, Settings};
use tocsin::startup::{open_state, Application};

/// mimalloc instead of the system allocator: requests are parsed on one thread and their
/// buffers freed on another, which glibc's malloc handles with locks and arena hops.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Tocsin: self-hosted end-to-end encrypted gateway for machine-to-person alerts.
///
/// Configuration comes from config/default.toml (compiled in), config/$TOCSIN_ENV.toml and
/// TOCSIN__SECTION__KEY environment variables.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway (HTTP API, metrics) until SIGINT or SIGTERM.
    Serve,
    /// Manage accounts, credits, gateway IDs and identities in the configured store.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Create or upgrade the database schema, then exit.
    Migrate,
}

#[tokio::main]
async fn main() -> ExitCode {
    // Everything the server makes (data directory, database, blobs, keys) is its owner's
    // alone.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let cli = Cli::parse();
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    tocsin::telemetry::init(&settings.log);
    let result = match cli.command {
        Command::Serve => serve(settings).await,
        Command::Migrate => open_state(settings).await.map(|state| {
            println!(
                "database schema is up to date ({:?})",
                state.store.backend()
            );
        }),
        Command::Admin(cmd) => return run_admin(settings, cmd).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A setting that only serving checks (the listener's TLS): the configuration is
        // wrong, as for the settings checked at load.
        Err(e) if e.downcast_ref::<ConfigError>().is_some() => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    app.run_until_stopped(tocsin::shutdown::wait_for_signal())
        .await
}

async fn run_admin(settings: Settings, cmd: AdminCommand) -> ExitCode {
    let state = match open_state(settings).await {
        Ok(state) => state,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    let result = admin::run(&state, cmd, &mut stdout).await;
    state.store.close().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(AdminError::Refused(reason)) => {
            eprintln!("refused: {reason}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
