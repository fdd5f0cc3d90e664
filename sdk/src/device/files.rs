//! The device's files: where they live and how they are written.
//!
//! Every file is created with mode 0600 (owner only) on Unix, because together they
//! hold the device's secret key and who it talks to. The keys file is only ever created,
//! never replaced; the other files are replaced atomically (temporary file, then
//! rename), so a crash leaves either the old or the new content.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::DeviceError;

/// Unix permission bits of every device file.
const PRIVATE_MODE: u32 = 0o600;

/// Options that create a file readable by its owner only.
fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, PRIVATE_MODE);
    options
}

/// Creates `path` with `contents`, mode 0600; an existing file is left alone and
/// reported as [`DeviceError::Exists`].
pub(crate) fn create_private(path: &Path, contents: &[u8]) -> Result<(), DeviceError> {
    let mut file = private_options()
        .create_new(true)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => DeviceError::Exists(path.to_path_buf()),
            _ => DeviceError::file(path, format!("cannot create: {e}")),
        })?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| DeviceError::file(path, format!("cannot write: {e}")))
}

/// Replaces `path` with `contents` atomically, mode 0600.
pub(crate) fn replace_private(path: &Path, contents: &[u8]) -> Result<(), DeviceError> {
    let temporary = with_suffix(path, ".tmp");
    let _ = std::fs::remove_file(&temporary);
    create_private(&temporary, contents)?;
    std::fs::rename(&temporary, path)
        .map_err(|e| DeviceError::file(path, format!("cannot replace: {e}")))
}

/// Opens `path` for appending, creating it with mode 0600 if needed.
pub(crate) fn append_private(path: &Path) -> Result<File, DeviceError> {
    private_options()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| DeviceError::file(path, format!("cannot open for appending: {e}")))
}

/// Reads `path` as UTF-8; `Ok(None)` when it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<String>, DeviceError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(DeviceError::file(path, format!("cannot read: {e}"))),
    }
}

/// Refuses a file that others than its owner may read or write (Unix only).
pub(crate) fn check_private(path: &Path) -> Result<(), DeviceError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| DeviceError::file(path, format!("cannot read: {e}")))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(DeviceError::file(
                path,
                format!(
                    "is accessible to other users (mode {:o}); run 'chmod 600' on it",
                    mode & 0o777
                ),
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// A file next to the keys file: `device.json` gives `device.<name>`.
pub fn companion_path(keys_path: &Path, name: &str) -> PathBuf {
    let stem = keys_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "device".to_owned());
    keys_path.with_file_name(format!("{stem}.{name}"))
}

/// `path` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn companions_sit_next_to_the_keys_file() {
        assert_eq!(
            companion_path(Path::new("/etc/tocsin/device.json"), "seen"),
            Path::new("/etc/tocsin/device.seen")
        );
        assert_eq!(
            companion_path(Path::new("keys"), "contacts.json"),
            Path::new("keys.contacts.json")
        );
    }
}
