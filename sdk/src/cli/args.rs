//! The command line grammar of `tocsin-cli`.
//!
//! Values are parsed into wire types by clap (IDs, keys, hashes, nonces, blob IDs), so a
//! malformed value is a usage error before anything runs. There is deliberately no
//! `--secret`, no `--private-key` and no `--status-secret` option: values on the command
//! line are visible to every user of the machine through the process list.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use super::alarm::AlarmArgs;
use super::callback::CallbackArgs;
use super::device::DeviceArgs;
use crate::client::ClientBuilder;
use crate::protocol::{BlobId, GatewayId, IdentityId, LookupHash, Nonce, PublicKey};

const AFTER_HELP: &str = "\
Credentials:
  The API secret comes from the environment variable TOCSIN_SECRET or from the file named
  by --secret-file; the gateway's private key from TOCSIN_PRIVATE_KEY or --private-key-file
  (64 hex characters, optionally prefixed with 'private:'); the status URL's signing
  secret ('callback serve') from TOCSIN_STATUS_SECRET or --status-secret-file. None is
  ever accepted as a command line value.

TLS:
  An https server is checked against the system's root certificates. For a server whose
  certificate a private CA issued, pass that CA's certificate with --ca-file PATH (or set
  TOCSIN_CA_FILE); devices then reach its chat server as wss:// with the same trust.

Exit status: 0 success, 1 the operation failed, 2 the command line or the credentials are
wrong or missing.";

/// Talks to a Tocsin (Threema Gateway compatible) server and works with its keys.
#[derive(Debug, Parser)]
#[command(name = "tocsin-cli", version, after_help = AFTER_HELP)]
pub(crate) struct Cli {
    /// Base URL of the gateway server.
    #[arg(long, env = "TOCSIN_BASE_URL", global = true, value_name = "URL",
          default_value = ClientBuilder::DEFAULT_BASE_URL)]
    pub base_url: String,

    /// The gateway ID to act as, e.g. '*ALERTS1'.
    #[arg(long, env = "TOCSIN_GATEWAY_ID", global = true, value_name = "ID")]
    pub from: Option<GatewayId>,

    /// File holding the API secret (instead of TOCSIN_SECRET).
    #[arg(long, global = true, value_name = "PATH")]
    pub secret_file: Option<PathBuf>,

    /// File holding the gateway's private key (instead of TOCSIN_PRIVATE_KEY).
    #[arg(long, global = true, value_name = "PATH")]
    pub private_key_file: Option<PathBuf>,

    /// PEM file with the certificate of a private CA to trust (besides the system's
    /// root certificates) for an https server; used by every command that talks to the
    /// server, 'device' commands included.
    #[arg(long, env = "TOCSIN_CA_FILE", global = true, value_name = "PATH")]
    pub ca_file: Option<PathBuf>,

    /// Seconds allowed for each request.
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 60)]
    pub timeout: u64,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Generate a key pair; print it, or write PATH (private, mode 0600) and PATH.pub.
    Keygen {
        /// Write the keys to files instead of printing them.
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
    },
    /// Print the lookup hash of a phone number or an e-mail address.
    Hash(HashArgs),
    /// Encrypt the text on standard input for a public key; print the nonce and the box.
    Encrypt {
        /// The recipient's public key (64 hex characters).
        #[arg(long, value_name = "HEX")]
        to_public_key: PublicKey,
    },
    /// Decrypt a box (hex on standard input) from a public key; print the message.
    Decrypt {
        /// The sender's public key (64 hex characters).
        #[arg(long, value_name = "HEX")]
        from_public_key: PublicKey,
        /// The nonce printed by the sender (48 hex characters).
        #[arg(long, value_name = "HEX")]
        nonce: Nonce,
    },
    /// Send a text in basic mode (the server encrypts it). Cost: 1 credit.
    SendSimple {
        /// The recipient.
        #[command(flatten)]
        to: SimpleTarget,
        /// The text; '-' reads it from standard input.
        text: String,
    },
    /// Look up the key, encrypt the text locally and send it. Cost: 1 credit.
    SendE2e {
        /// The recipient's ID.
        #[arg(long, value_name = "ID")]
        to: IdentityId,
        /// The text; '-' reads it from standard input.
        text: String,
    },
    /// Encrypt and upload a file, then send a file message. Cost: 2 credits.
    SendFile {
        /// The recipient's ID.
        #[arg(long, value_name = "ID")]
        to: IdentityId,
        /// The file to send.
        path: PathBuf,
        /// A caption shown below the file.
        #[arg(long)]
        caption: Option<String>,
        /// Media type; guessed from the file name when left out.
        #[arg(long, value_name = "TYPE")]
        media_type: Option<String>,
    },
    /// Find the ID linked to a phone number, an e-mail address, or a hash of either.
    Lookup(LookupArgs),
    /// Print the public key of an ID.
    Pubkey {
        /// The ID (a user ID or a gateway ID).
        id: IdentityId,
    },
    /// Print what an ID's app can receive.
    Capabilities {
        /// The ID.
        id: IdentityId,
    },
    /// Print the account's remaining credits.
    Credits,
    /// Upload a file as a blob, as it is (encrypt it first); print the blob ID. Cost: 1 credit.
    Upload {
        /// The file to upload.
        path: PathBuf,
        /// Keep the blob after a recipient fetched it.
        #[arg(long)]
        persist: bool,
    },
    /// Download a blob (still encrypted) into a file.
    Download {
        /// The blob ID (32 hex characters).
        blob_id: BlobId,
        /// Where to write it; an existing file is not overwritten.
        #[arg(long, value_name = "PATH")]
        out: PathBuf,
    },
    /// Trigger, inspect, list and resolve alarms that ring recipients tier after tier
    /// until enough of them answer.
    Alarm(AlarmArgs),
    /// Act as a device of the chat network: enrol, listen, send, reply.
    Device(DeviceArgs),
    /// Receive the gateway's callbacks (incoming messages) and status events for a
    /// gateway ID.
    Callback(CallbackArgs),
}

/// Exactly one of `--phone` and `--email`.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub(crate) struct HashArgs {
    /// A phone number; only its digits count.
    #[arg(long)]
    pub phone: Option<String>,
    /// An e-mail address; trimmed and lowercased first.
    #[arg(long)]
    pub email: Option<String>,
}

/// Exactly one of `--to`, `--phone` and `--email`.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub(crate) struct SimpleTarget {
    /// The recipient's ID.
    #[arg(long, value_name = "ID")]
    pub to: Option<IdentityId>,
    /// The recipient's phone number; the server finds the ID.
    #[arg(long)]
    pub phone: Option<String>,
    /// The recipient's e-mail address; the server finds the ID.
    #[arg(long)]
    pub email: Option<String>,
}

/// Exactly one way to look an ID up.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub(crate) struct LookupArgs {
    /// A phone number (sent to the server).
    #[arg(long)]
    pub phone: Option<String>,
    /// An e-mail address (sent to the server).
    #[arg(long)]
    pub email: Option<String>,
    /// A phone hash (64 hex characters); the number itself stays here.
    #[arg(long, value_name = "HEX")]
    pub phone_hash: Option<LookupHash>,
    /// An e-mail hash (64 hex characters).
    #[arg(long, value_name = "HEX")]
    pub email_hash: Option<LookupHash>,
}
