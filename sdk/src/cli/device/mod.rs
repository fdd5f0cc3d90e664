//! `tocsin-cli device …`: enrol a device, listen for messages (saving received files),
//! send texts and replies, answer alarms, pin keys. Each command is a few calls into [`crate::device`]
//! plus printing.
//!
//! `init` checks that the keys file does not exist before it enrols anything, so a
//! failed run never leaves an identity without its keys; after writing the file it logs
//! in once, which proves that the server holds the key just pinned.

mod args;
mod print;

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

pub(crate) use args::DeviceArgs;
use args::DeviceCommand;

use super::remote::text_argument;
use super::setup::Settings;
use super::{say, Failure};
use crate::client::{Error, PrivateCa};
use crate::device::{
    companion_path, Admission, Connection, Contacts, DeviceError, DeviceKeys, Directory, Event,
    ListenEnd, ListenOptions, Listener, SeenStore,
};
use crate::protocol::{
    Answer, E2eMessage, GatewayId, IdentityId, InviteCode, MessageFlags, MessageId, PublicKey,
    StopReason,
};

/// How long `device answer` waits for the server to confirm the answer.
const ANSWER_CONFIRMATION: std::time::Duration = std::time::Duration::from_secs(15);

impl From<DeviceError> for Failure {
    fn from(err: DeviceError) -> Self {
        match err {
            DeviceError::Http(Error::Unauthorized) => Failure::new(
                "the server refused the enrollment token (401); pass --enrollment-token-file \
                 or set TOCSIN_ENROLLMENT_TOKEN",
            ),
            DeviceError::Http(Error::Forbidden(reason)) => Failure::new(format!(
                "the server does not admit this device: {reason}; ask its operator for an \
                 invite code and pass --invite CODE"
            )),
            DeviceError::Http(Error::Transport(reason)) if reason.contains("certificate") => {
                Failure::new(format!(
                    "cannot reach the server ({reason}); if a private CA issued the server's \
                     certificate, pass --ca-file PATH or set TOCSIN_CA_FILE"
                ))
            }
            DeviceError::Http(Error::Transport(reason)) => Failure::new(format!(
                "cannot reach the server ({reason}); check the URL and that the server is running"
            )),
            other => Failure::new(other.to_string()),
        }
    }
}

/// Runs a device command on a single-threaded runtime; `settings` gives the private CA
/// (`--ca-file`) for the commands that reach the server.
pub(crate) fn run(settings: &Settings, args: DeviceArgs) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(format!("cannot start the async runtime: {e}")))?;
    let path = keys_path(args.keys)?;
    let ca = match args.command {
        DeviceCommand::Trust { .. } => None,
        _ => settings.private_ca()?,
    };
    runtime.block_on(execute(&path, ca.as_ref(), args.command))
}

async fn execute(
    path: &Path,
    ca: Option<&PrivateCa>,
    command: DeviceCommand,
) -> Result<(), Failure> {
    match command {
        DeviceCommand::Init {
            server,
            server_key,
            invite,
            enrollment_token_file,
        } => {
            let invite = invite
                .as_deref()
                .map(InviteCode::parse)
                .transpose()
                .map_err(|e| Failure::usage(format!("--invite: {e}")))?;
            let token = enrollment_token(enrollment_token_file.as_deref())?;
            let admission = match (&invite, &token) {
                (Some(code), _) => Admission::Invite(code),
                (None, Some(token)) => Admission::Token(token.as_str()),
                (None, None) => Admission::Open,
            };
            init(path, &server, ca, server_key, admission).await
        }
        DeviceCommand::Listen {
            no_receipts,
            files,
            no_files,
        } => {
            let files = (!no_files).then(|| files.unwrap_or_else(|| files_dir(path)));
            listen(path, ca, !no_receipts, files).await
        }
        DeviceCommand::Send { to, text } => send(path, ca, &to, None, text).await,
        DeviceCommand::Reply {
            to,
            to_public_key,
            text,
        } => send(path, ca, to.as_identity(), to_public_key, text).await,
        DeviceCommand::Answer {
            alarm_id,
            answer,
            from_gateway,
            eta,
            note,
        } => answer_alarm(path, ca, &from_gateway, &alarm_id, answer, eta, &note).await,
        DeviceCommand::Trust { id, public_key } => {
            let mut contacts = Contacts::load(&companion_path(path, "contacts.json"))?;
            match contacts.insert(id, public_key) {
                Some(old) if old != public_key => say(format!("{id}: {old} replaced")),
                _ => {}
            }
            contacts.save()?;
            say(format!("{id}: {public_key} pinned"));
            Ok(())
        }
    }
}

async fn init(
    path: &Path,
    server: &str,
    ca: Option<&PrivateCa>,
    server_key: Option<PublicKey>,
    admission: Admission<'_>,
) -> Result<(), Failure> {
    if path.exists() {
        return Err(Failure::usage(format!(
            "{} already exists; this device is enrolled (pass --keys for another one)",
            path.display()
        )));
    }
    let server_url_problem = |e| match e {
        DeviceError::Http(Error::Invalid(reason)) => Failure::usage(format!("--server: {reason}")),
        other => other.into(),
    };
    let directory = directory_for(server, ca).map_err(server_url_problem)?;
    let keys = DeviceKeys::enrol(&directory, admission, server_key)
        .await
        .map_err(server_url_problem)?;
    create_parent(path)?;
    keys.save(path)?;
    say(format!("identity: {}", keys.identity));
    say(format!("public key: {}", keys.public_key()));
    say(format!("server key: {} (pinned)", keys.server_key));
    say(format!("keys written to {}", path.display()));
    let connection = Connection::connect(&keys, &directory)
        .await
        .map_err(|e| Failure::new(format!("enrolled, but the first login failed: {e}")))?;
    connection.close().await;
    say("login: ok");
    Ok(())
}

async fn listen(
    path: &Path,
    ca: Option<&PrivateCa>,
    receipts: bool,
    files: Option<PathBuf>,
) -> Result<(), Failure> {
    let (keys, directory) = load(path, ca)?;
    let seen = SeenStore::open(&companion_path(path, "seen"), SeenStore::DEFAULT_CAPACITY)?;
    let options = ListenOptions {
        automatic_receipts: receipts,
        fetch_files: files.is_some(),
        ..ListenOptions::default()
    };
    let mut printer = print::Printer { files };
    let mut listener = Listener::new(keys, directory, seen).with_options(options);
    let stop = async {
        // Without a Ctrl-C handler the default action ends the process, which is fine.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    match listener.run(|notice| printer.notice(notice), stop).await? {
        ListenEnd::Stopped => Ok(()),
        ListenEnd::Refused(reason) => Err(Failure::new(format!(
            "the server ended the session and asked not to reconnect: {reason}"
        ))),
    }
}

async fn send(
    path: &Path,
    ca: Option<&PrivateCa>,
    to: &IdentityId,
    public_key: Option<PublicKey>,
    text: String,
) -> Result<(), Failure> {
    let text = text_argument(text)?;
    if text.is_empty() {
        return Err(Failure::usage("the text is empty"));
    }
    let (keys, directory) = load(path, ca)?;
    let key = match public_key {
        Some(key) => key,
        None => directory.public_key(to).await.map_err(|e| match e {
            DeviceError::UnknownKey(id) => Failure::new(format!("{id} is not a known, active ID")),
            other => other.into(),
        })?,
    };
    let mut connection = Connection::connect(&keys, &directory).await?;
    let flags = MessageFlags::default().with(MessageFlags::PUSH);
    let id = connection
        .send_with_key(to, &key, &E2eMessage::Text(text), flags)
        .await?;
    connection.close().await;
    say(id);
    Ok(())
}

/// Sends the answer, then waits for the `ALARM_STOP` that confirms it. Messages that
/// arrive meanwhile are left unacknowledged, so `device listen` still shows them.
async fn answer_alarm(
    path: &Path,
    ca: Option<&PrivateCa>,
    gateway: &GatewayId,
    alarm: &MessageId,
    answer: Answer,
    eta: Option<u16>,
    note: &str,
) -> Result<(), Failure> {
    if note.len() > crate::protocol::csp::ALARM_NOTE_MAX {
        return Err(Failure::usage("--note: at most 200 bytes"));
    }
    if eta == Some(u16::MAX) {
        return Err(Failure::usage("--eta: at most 65534 minutes"));
    }
    let (keys, directory) = load(path, ca)?;
    let mut connection = Connection::connect(&keys, &directory).await?;
    let gateway = *gateway.as_identity();
    connection
        .answer_alarm(&gateway, alarm, answer, eta, note)
        .await?;
    let confirmed = tokio::time::timeout(ANSWER_CONFIRMATION, async {
        loop {
            match connection.next_event().await? {
                Event::AlarmStop(stop) if stop.gateway == gateway && stop.message_id == *alarm => {
                    return Ok::<_, DeviceError>(stop);
                }
                Event::Closed { reason, .. } => return Err(DeviceError::Closed(reason)),
                _ => {}
            }
        }
    })
    .await;
    connection.close().await;
    let stop = confirmed.map_err(|_| {
        Failure::new(format!(
            "the server did not confirm the answer within {} s: the alarm may have ended, \
             been answered already, or not reached this device's identity ({}); check \
             MESSAGE-ID and --from-gateway",
            ANSWER_CONFIRMATION.as_secs(),
            keys.identity
        ))
    })??;
    match (stop.reason, stop.answer) {
        (StopReason::Answered, Some(taken)) => {
            say(format!("answered {}", taken.as_str().replace('_', "-")));
            Ok(())
        }
        (reason, _) => Err(Failure::new(format!(
            "the alarm stopped ({reason}) before the answer was taken"
        ))),
    }
}

/// The default place for received files: `files` next to the keys file.
fn files_dir(keys_path: &Path) -> PathBuf {
    keys_path.with_file_name("files")
}

/// A directory of the server at `url`, trusting `ca` too when given.
fn directory_for(url: &str, ca: Option<&PrivateCa>) -> Result<Directory, DeviceError> {
    match ca {
        Some(ca) => Directory::with_private_ca(url, ca),
        None => Directory::new(url),
    }
}

/// The keys and a directory (trusting `ca` too) with the contacts pinned.
fn load(path: &Path, ca: Option<&PrivateCa>) -> Result<(DeviceKeys, Directory), Failure> {
    if !path.exists() {
        return Err(Failure::usage(format!(
            "{} does not exist; run 'tocsin-cli device init --server URL' first, or pass --keys",
            path.display()
        )));
    }
    let keys = DeviceKeys::load(path)?;
    let mut directory = directory_for(&keys.server_url, ca)?;
    Contacts::load(&companion_path(path, "contacts.json"))?.pin_into(&mut directory);
    Ok((keys, directory))
}

/// `--keys`, or the default under the user's configuration directory.
fn keys_path(given: Option<PathBuf>) -> Result<PathBuf, Failure> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    given
        .or_else(|| {
            let config = non_empty("XDG_CONFIG_HOME")
                .map(PathBuf::from)
                .or_else(|| non_empty("HOME").map(|home| PathBuf::from(home).join(".config")))?;
            Some(config.join("tocsin").join("device.json"))
        })
        .ok_or_else(|| Failure::usage("no home directory to keep the keys in; pass --keys PATH"))
}

/// Creates the keys file's directory (mode 0700) if it is missing.
fn create_parent(path: &Path) -> Result<(), Failure> {
    let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(parent)
        .map_err(|e| Failure::new(format!("cannot create {}: {e}", parent.display())))
}

/// The enrollment token from the file, or from `TOCSIN_ENROLLMENT_TOKEN`, if any.
fn enrollment_token(file: Option<&Path>) -> Result<Option<Zeroizing<String>>, Failure> {
    let text = match file {
        Some(path) => std::fs::read_to_string(path)
            .map(Zeroizing::new)
            .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?,
        None => match std::env::var("TOCSIN_ENROLLMENT_TOKEN") {
            Ok(value) => Zeroizing::new(value),
            Err(_) => return Ok(None),
        },
    };
    let token = Zeroizing::new(text.trim().to_owned());
    Ok((!token.is_empty()).then_some(token))
}
