//! Commands that call the gateway API, each one client method plus printing.
//!
//! A "not found" answer is reported as a failure (exit status 1) naming what was not
//! found, so scripts can test the exit status.

use std::path::Path;

use super::args::{Command, LookupArgs, SimpleTarget};
use super::local::{read_stdin, write_new};
use super::setup::Settings;
use super::{say, Failure};
use crate::client::{Client, Error, Recipient};
use crate::protocol::IdentityId;

/// Runs a command that needs the server, on a single-threaded runtime.
pub(crate) fn run(settings: &Settings, command: Command) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(execute(settings, command))
}

async fn execute(settings: &Settings, command: Command) -> Result<(), Failure> {
    match command {
        Command::SendSimple { to, text } => {
            let client = settings.client()?;
            let id = client
                .send_simple(&recipient(to)?, &text_argument(text)?)
                .await?;
            say(id);
        }
        Command::SendE2e { to, text } => {
            let text = text_argument(text)?;
            let id = settings
                .e2e_client()?
                .send_text(&to, &text)
                .await
                .map_err(|e| not_found(e, &to))?;
            say(id);
        }
        Command::SendFile {
            to,
            path,
            caption,
            media_type,
        } => {
            let client = settings.e2e_client()?;
            let data = read_file(&path)?;
            let media_type = media_type.unwrap_or_else(|| guess_media_type(&path).to_owned());
            let name = path.file_name().and_then(|n| n.to_str());
            let id = client
                .send_file(&to, &data, &media_type, name, caption.as_deref(), None)
                .await
                .map_err(|e| match e {
                    Error::TooLarge => Failure::new(
                        "the encrypted file is over the server's blob limit (20 MiB unless \
                         configured otherwise; encryption adds 16 bytes) or the caption makes \
                         the message too long",
                    ),
                    other => not_found(other, &to),
                })?;
            say(id);
        }
        Command::Lookup(args) => lookup(&settings.client()?, args).await?,
        Command::Pubkey { id } => {
            let key = settings.client()?.pubkey(&id).await?;
            say(key.ok_or_else(|| unknown_id(&id))?);
        }
        Command::Capabilities { id } => {
            let caps = settings.client()?.capabilities(&id).await?;
            say(caps.ok_or_else(|| unknown_id(&id))?);
        }
        Command::Credits => say(settings.client()?.credits().await?),
        Command::Upload { path, persist } => {
            let data = read_file(&path)?;
            say(settings.client()?.upload_blob(data, persist).await?);
        }
        Command::Download { blob_id, out } => {
            if out.exists() {
                return Err(Failure::usage(format!(
                    "{} already exists; choose another --out path",
                    out.display()
                )));
            }
            let data = settings.client()?.download_blob(&blob_id).await?;
            let data = data.ok_or_else(|| {
                Failure::new(format!("blob {blob_id} does not exist or has expired"))
            })?;
            write_new(&out, &data, 0o644)?;
            say(format!("{} bytes written to {}", data.len(), out.display()));
        }
        Command::Alarm(args) => super::alarm::execute(settings, args.command).await?,
        Command::Keygen { .. }
        | Command::Hash(_)
        | Command::Encrypt { .. }
        | Command::Decrypt { .. }
        | Command::Device(_)
        | Command::Callback(_) => {
            return Err(Failure::new("this command does not use the gateway API"));
        }
    }
    Ok(())
}

async fn lookup(client: &Client, args: LookupArgs) -> Result<(), Failure> {
    let found = match (&args.phone, &args.email, &args.phone_hash, &args.email_hash) {
        (Some(phone), ..) => client.lookup_phone(phone).await?,
        (_, Some(email), ..) => client.lookup_email(email).await?,
        (_, _, Some(hash), _) => client.lookup_phone_hash(hash).await?,
        (_, _, _, Some(hash)) => client.lookup_email_hash(hash).await?,
        _ => {
            return Err(Failure::usage(
                "pass one of --phone, --email, --phone-hash, --email-hash",
            ))
        }
    };
    say(found.ok_or_else(|| Failure::new("no ID is linked to that value"))?);
    Ok(())
}

fn recipient(target: SimpleTarget) -> Result<Recipient, Failure> {
    match (target.to, target.phone, target.email) {
        (Some(id), ..) => Ok(Recipient::Id(id)),
        (_, Some(phone), _) => Ok(Recipient::Phone(phone)),
        (_, _, Some(email)) => Ok(Recipient::Email(email)),
        _ => Err(Failure::usage("pass one of --to, --phone and --email")),
    }
}

/// The text argument, or standard input (one trailing newline dropped) for `-`.
pub(crate) fn text_argument(text: String) -> Result<String, Failure> {
    if text != "-" {
        return Ok(text);
    }
    let mut input = read_stdin()?;
    if input.ends_with('\n') {
        input.pop();
        if input.ends_with('\r') {
            input.pop();
        }
    }
    Ok(input)
}

fn read_file(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::new(format!("cannot read {}: {e}", path.display())))
}

fn unknown_id(id: &IdentityId) -> Failure {
    Failure::new(format!("{id} is not a known, active ID"))
}

/// Names the recipient when an E2E send fails because its key is missing.
fn not_found(err: Error, to: &IdentityId) -> Failure {
    match err {
        Error::NotFound => unknown_id(to),
        other => other.into(),
    }
}

/// A media type from the file name's extension; `application/octet-stream` otherwise.
fn guess_media_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "txt" | "log" => "text/plain",
        "csv" => "text/csv",
        "json" => "application/json",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "mp4" => "video/mp4",
        _ => "application/octet-stream",
    }
}
