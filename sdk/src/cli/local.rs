//! Commands that work without a server: key generation, lookup hashes, and encrypting or
//! decrypting a text message by hand.
//!
//! `encrypt` prints two lines, the nonce and then the box, both hex; `decrypt` takes the
//! nonce as an option and the box on standard input, so the two compose in a shell.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::args::HashArgs;
use super::{say, Failure};
use crate::crypto::SharedKey;
use crate::protocol::{hash_email, hash_phone, E2eMessage, KeyPair, Nonce, PublicKey, SecretKey};

/// Prints a fresh key pair, or writes it to `out` (mode 0600) and `out.pub`.
pub(crate) fn keygen(out: Option<&Path>) -> Result<(), Failure> {
    let pair = KeyPair::generate();
    let private = Zeroizing::new(format!("private:{}", pair.secret.to_hex().as_str()));
    let public = format!("public:{}", pair.public);
    let Some(path) = out else {
        say(private.as_str());
        say(&public);
        return Ok(());
    };
    let mut public_path = PathBuf::from(path).into_os_string();
    public_path.push(".pub");
    let public_path = PathBuf::from(public_path);
    write_new(
        path,
        Zeroizing::new(format!("{}\n", *private)).as_bytes(),
        0o600,
    )?;
    write_new(&public_path, format!("{public}\n").as_bytes(), 0o644)?;
    say(format!("private key written to {}", path.display()));
    say(format!("public key written to {}", public_path.display()));
    say(&public);
    Ok(())
}

/// Creates `path` (never overwriting an existing file) holding `contents`, with the Unix
/// permission bits `mode`.
pub(crate) fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), Failure> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let fail = |e: std::io::Error| Failure::new(format!("cannot write {}: {e}", path.display()));
    let mut file = options.open(path).map_err(fail)?;
    file.write_all(contents).map_err(fail)
}

/// Prints the lookup hash of the phone number or e-mail address.
pub(crate) fn hash(args: &HashArgs) -> Result<(), Failure> {
    match (&args.phone, &args.email) {
        (Some(phone), _) => say(hash_phone(phone)),
        (None, Some(email)) => say(hash_email(email)),
        (None, None) => return Err(Failure::usage("pass --phone or --email")),
    }
    Ok(())
}

/// Reads all of standard input as UTF-8.
pub(crate) fn read_stdin() -> Result<String, Failure> {
    std::io::read_to_string(std::io::stdin())
        .map_err(|e| Failure::new(format!("cannot read standard input as UTF-8 text: {e}")))
}

/// Encrypts standard input (one trailing newline dropped) as a text message.
pub(crate) fn encrypt(secret: &SecretKey, to: &PublicKey) -> Result<(), Failure> {
    let input = read_stdin()?;
    let text = input
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&input);
    if text.is_empty() {
        return Err(Failure::usage(
            "nothing to encrypt: pipe the message text into standard input",
        ));
    }
    let nonce = Nonce::random();
    let shared =
        SharedKey::new(secret, to).map_err(|e| Failure::new(format!("--to-public-key: {e}")))?;
    let sealed = shared.seal(&nonce, &E2eMessage::Text(text.to_owned()).to_padded());
    say(nonce);
    say(hex::encode(sealed));
    Ok(())
}

/// Decrypts a hex box from standard input and prints the message.
pub(crate) fn decrypt(secret: &SecretKey, from: &PublicKey, nonce: &Nonce) -> Result<(), Failure> {
    let input = read_stdin()?;
    let sealed = hex::decode(input.trim())
        .map_err(|_| Failure::usage("standard input must be the box as hex characters"))?;
    let plain = SharedKey::new(secret, from)
        .and_then(|key| key.open(nonce, &sealed))
        .map_err(|e| {
            Failure::new(format!(
                "{e}; check --from-public-key, --nonce and the private key"
            ))
        })?;
    let message = E2eMessage::from_padded(&plain)
        .map_err(|e| Failure::new(format!("the box opened, but holds no valid message: {e}")))?;
    say(describe(&message));
    Ok(())
}

/// A text message as its text; other types as a one-line summary.
pub(crate) fn describe(message: &E2eMessage) -> String {
    match message {
        E2eMessage::Text(text) => text.clone(),
        E2eMessage::File(file) => format!(
            "file {} ({}, {} bytes) in blob {}{}",
            file.name.as_deref().unwrap_or("without name"),
            file.media_type,
            file.size,
            file.blob_id,
            file.caption
                .as_deref()
                .map(|c| format!(", caption: {c}"))
                .unwrap_or_default()
        ),
        E2eMessage::Image { blob_id, size, .. } => {
            format!("image ({size} bytes) in blob {blob_id}")
        }
        E2eMessage::Location(loc) => format!("location {},{}", loc.latitude, loc.longitude),
        E2eMessage::DeliveryReceipt {
            status,
            message_ids,
        } => {
            let ids: Vec<String> = message_ids.iter().map(ToString::to_string).collect();
            format!("delivery receipt ({status:?}) for {}", ids.join(", "))
        }
    }
}
