//! The grammar of `tocsin-cli device …`.
//!
//! The keys file defaults to `$XDG_CONFIG_HOME/tocsin/device.json`, or
//! `~/.config/tocsin/device.json` when that variable is unset; `--keys` or
//! `TOCSIN_DEVICE_KEYS` name another one. The enrollment token, like every secret, is
//! read from a file or the environment, never from the command line.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::protocol::{Answer, GatewayId, IdentityId, MessageId, PublicKey};

const AFTER_HELP: &str = "\
Files:
  The keys file (mode 0600) holds the device's identity, its secret key, the pinned chat
  server key and the server URL. Next to it: NAME.contacts.json (pinned keys of other IDs,
  e.g. gateway IDs) and NAME.seen (messages already shown, so none is shown twice).

Received files:
  'device listen' downloads the file of every file message (at most 20 MiB), checks it,
  and saves it in the directory 'files' next to the keys file, or in --files DIR. The
  sender's file name is reduced to a plain name (no directories, no leading dots); an
  existing file is never replaced: ' (1)', ' (2)', ... is added instead. A thumbnail is
  saved as NAME.thumbnail. Only once the file is saved does the device tell the server
  it is done with it, so the server may delete it.

Keys of other IDs:
  Keys come from the server's directory, gateway IDs (*…) included. To rely on a key the
  gateway's operator published rather than on the server, pin it once with 'device trust'
  (a message that does not open under a pinned key is refused), or pass --to-public-key
  to 'device reply'.";

/// `tocsin-cli device …`: act as a device of the chat network.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct DeviceArgs {
    /// The device's keys file [default: ~/.config/tocsin/device.json].
    #[arg(long, env = "TOCSIN_DEVICE_KEYS", global = true, value_name = "PATH")]
    pub keys: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: DeviceCommand,
}

/// The device subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum DeviceCommand {
    /// Enrol a new device with a server: make a key pair, register it, write the keys
    /// file.
    Init {
        /// Base URL of the server, e.g. https://alerts.example.org.
        #[arg(long, value_name = "URL")]
        server: String,
        /// The chat server key the operator published; without it, the key the server
        /// states now is pinned (trust on first use).
        #[arg(long, value_name = "HEX")]
        server_key: Option<PublicKey>,
        /// The one-time invite code the server's operator gave you
        /// (`tocsin admin identity invite`), or TOCSIN_INVITE. Not needed by a server
        /// with open enrolment.
        #[arg(
            long,
            value_name = "CODE",
            env = "TOCSIN_INVITE",
            hide_env_values = true
        )]
        invite: Option<String>,
        /// File holding the enrollment token (instead of TOCSIN_ENROLLMENT_TOKEN), for
        /// provisioning systems of servers that have one.
        #[arg(long, value_name = "PATH", conflicts_with = "invite")]
        enrollment_token_file: Option<PathBuf>,
    },
    /// Print every message as it arrives, one line each; save the files of file
    /// messages; send automatic receipts; reconnect when the connection drops. Ctrl-C
    /// stops.
    Listen {
        /// Do not send automatic "received" receipts.
        #[arg(long)]
        no_receipts: bool,
        /// Where to save received files [default: the directory 'files' next to the
        /// keys file].
        #[arg(long, value_name = "DIR", conflicts_with = "no_files")]
        files: Option<PathBuf>,
        /// Do not download files; only print their description.
        #[arg(long)]
        no_files: bool,
    },
    /// Send a text to an ID; print its message ID once the server stored it.
    Send {
        /// The recipient (a user ID or a gateway ID).
        #[arg(long, value_name = "ID")]
        to: IdentityId,
        /// The text; '-' reads it from standard input.
        text: String,
    },
    /// Reply to a gateway ID with a text; print its message ID.
    Reply {
        /// The gateway ID, e.g. '*ALERTS1'.
        #[arg(long, value_name = "ID")]
        to: GatewayId,
        /// The gateway ID's public key, instead of the pinned one or the directory's.
        #[arg(long, value_name = "HEX")]
        to_public_key: Option<PublicKey>,
        /// The text; '-' reads it from standard input.
        text: String,
    },
    /// Answer an alarm: send the answer, wait (15 s at most) for the server to confirm
    /// it, print 'answered ANSWER'.
    Answer {
        /// The alarm's ID: the ID of the message it arrived in.
        alarm_id: MessageId,
        /// coming or not-coming.
        #[arg(value_parser = parse_answer, value_name = "coming|not-coming")]
        answer: Answer,
        /// The gateway ID that triggered the alarm, e.g. '*ALERTS1'.
        #[arg(long, value_name = "ID")]
        from_gateway: GatewayId,
        /// Minutes until you arrive.
        #[arg(long, value_name = "MINUTES")]
        eta: Option<u16>,
        /// A short note (at most 200 bytes), e.g. 'on my way'.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Pin the public key of an ID (typically a gateway ID) in the contacts file.
    Trust {
        /// The ID.
        #[arg(long, value_name = "ID")]
        id: IdentityId,
        /// Its public key (64 hex characters).
        #[arg(long, value_name = "HEX")]
        public_key: PublicKey,
    },
}

/// `coming`, or `not-coming` (also written `not_coming`, as on the wire).
fn parse_answer(s: &str) -> Result<Answer, String> {
    Answer::parse(&s.replace('-', "_")).map_err(|_| "expected coming or not-coming".to_owned())
}
