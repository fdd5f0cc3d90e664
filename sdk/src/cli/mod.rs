//! `tocsin-cli`: the SDK's command line for integrators, kept in the library so that the
//! binary is a one-line `main` and the logic is type-checked with the rest of the crate.
//!
//! | module | job |
//! | --- | --- |
//! | `args` | the grammar (clap) |
//! | `setup` | gateway ID, API secret, private key and status secret from flags, environment and files |
//! | `local` | commands that need no server: `keygen`, `hash`, `encrypt`, `decrypt` |
//! | `remote` | commands that call the gateway API |
//! | `alarm` | `alarm …`: trigger, status, list, resolve |
//! | `device` | `device …`: a device of the chat network (keys file, WebSocket session) |
//! | `callback` | `callback serve`: receive the gateway's callbacks over HTTP |
//! | `show` | the one-line form of a message |
//!
//! # Invariants
//!
//! * The API secret, the private key, the status signing secret and the enrollment
//!   token are read from the environment or from files, never from the command line,
//!   and never printed.
//! * Every failure ends as one line `error: …` on standard error saying what to fix, and
//!   exit status 1 (the operation failed) or 2 (the invocation is wrong or incomplete).
//!   No panic message or backtrace reaches the user.

mod alarm;
mod args;
mod callback;
mod device;
mod local;
mod remote;
mod setup;
mod show;

use std::ffi::OsString;
use std::fmt::Display;
use std::io::Write;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;

use crate::client::Error;
use args::{Cli, Command};
use setup::Settings;

/// Why a command failed: the one line shown to the user and the exit status.
#[derive(Debug)]
pub(crate) struct Failure {
    message: String,
    code: u8,
}

impl Failure {
    /// The operation failed (exit status 1).
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: 1,
        }
    }

    /// The invocation is wrong or incomplete (exit status 2).
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: 2,
        }
    }

    /// The same failure, with `more` (starting with its own separator) after the line.
    pub(crate) fn adding(mut self, more: &str) -> Self {
        self.message.push_str(more);
        self
    }
}

impl From<Error> for Failure {
    fn from(err: Error) -> Self {
        Self::new(match err {
            Error::Unauthorized => "the gateway refused the credentials (401); check --from or \
                 TOCSIN_GATEWAY_ID and the API secret in TOCSIN_SECRET or --secret-file"
                .to_owned(),
            Error::NoCredits => {
                "the account has not enough credits (402); top it up and try again".to_owned()
            }
            Error::Transport(reason) if reason.contains("certificate") => format!(
                "cannot talk to the gateway ({reason}); if a private CA issued the server's \
                 certificate, pass --ca-file PATH or set TOCSIN_CA_FILE"
            ),
            Error::Transport(reason) => format!(
                "cannot talk to the gateway ({reason}); check --base-url or TOCSIN_BASE_URL \
                 and that the server is running"
            ),
            other => other.to_string(),
        })
    }
}

/// Runs `tocsin-cli` with the process's arguments and returns its exit status.
pub fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|_| {
        let _ = writeln!(
            std::io::stderr(),
            "error: tocsin-cli hit an internal error; please report it with the command you ran"
        );
    }));
    let argv: Vec<OsString> = std::env::args_os().collect();
    let outcome = match refused_option(&argv) {
        Some(failure) => Err(failure),
        None => match Cli::try_parse_from(&argv) {
            Ok(cli) => run(cli),
            Err(e) => return clap_exit(&e),
        },
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            let _ = writeln!(std::io::stderr(), "error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

/// Refuses `--secret`, `--private-key` and `--status-secret` with a message that says
/// where they go instead, without repeating their value.
fn refused_option(argv: &[OsString]) -> Option<Failure> {
    let options = argv
        .iter()
        .skip(1)
        .take_while(|a| a.as_os_str() != "--")
        .filter_map(|a| a.to_str());
    for arg in options {
        let name = arg.split_once('=').map_or(arg, |(name, _)| name);
        if name == "--secret" {
            return Some(Failure::usage(
                "--secret is not accepted, because the command line is visible to other \
                 users; set TOCSIN_SECRET or pass --secret-file PATH",
            ));
        }
        if name == "--private-key" {
            return Some(Failure::usage(
                "--private-key is not accepted, because the command line is visible to other \
                 users; set TOCSIN_PRIVATE_KEY or pass --private-key-file PATH",
            ));
        }
        if name == "--status-secret" {
            return Some(Failure::usage(
                "--status-secret is not accepted, because the command line is visible to \
                 other users; set TOCSIN_STATUS_SECRET or pass --status-secret-file PATH",
            ));
        }
    }
    None
}

/// Prints help and version as clap does; folds any other clap error into one line.
fn clap_exit(err: &clap::Error) -> ExitCode {
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = err.print();
        return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2));
    }
    let rendered = err.render().to_string();
    let first_paragraph = rendered.split("\n\n").next().unwrap_or_default();
    let line = first_paragraph
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let line = line.strip_prefix("error: ").unwrap_or(&line);
    let _ = writeln!(std::io::stderr(), "error: {line}; see 'tocsin-cli --help'");
    ExitCode::from(2)
}

/// Runs one parsed command.
fn run(cli: Cli) -> Result<(), Failure> {
    let Cli {
        base_url,
        from,
        secret_file,
        private_key_file,
        ca_file,
        timeout,
        command,
    } = cli;
    let settings = Settings {
        base_url,
        from,
        secret_file,
        private_key_file,
        ca_file,
        timeout,
    };
    match command {
        Command::Keygen { out } => local::keygen(out.as_deref()),
        Command::Hash(args) => local::hash(&args),
        Command::Encrypt { to_public_key } => {
            local::encrypt(&settings.private_key()?, &to_public_key)
        }
        Command::Decrypt {
            from_public_key,
            nonce,
        } => local::decrypt(&settings.private_key()?, &from_public_key, &nonce),
        Command::Device(args) => device::run(&settings, args),
        Command::Callback(args) => callback::run(&settings, args),
        remote_command => remote::run(&settings, remote_command),
    }
}

/// Prints one line on standard output. A closed pipe is not an error worth reporting.
pub(crate) fn say(line: impl Display) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}
