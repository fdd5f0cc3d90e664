//! Saving a received file: a name that stays inside the directory, never replacing
//! anything, mode 0600.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::DownloadedFile;

/// Longest file name [`safe_file_name`] keeps, in bytes.
const MAX_NAME_BYTES: usize = 200;

/// Attempts at a free name before [`DownloadedFile::save_in`] gives up.
const MAX_SUFFIX: u32 = 9_999;

/// Where [`DownloadedFile::save_in`] put a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedFile {
    /// The file.
    pub path: PathBuf,
    /// The thumbnail, `<path>.thumbnail`, when there was one.
    pub thumbnail: Option<PathBuf>,
}

impl DownloadedFile {
    /// Saves the file in `dir` (which must exist) under [`safe_file_name`] of its
    /// name, and the thumbnail next to it as `<name>.thumbnail`. Nothing existing is
    /// overwritten: when the name (or its thumbnail name) is taken, ` (1)`, ` (2)`, … is
    /// added before the extension. A failed write removes what it had written.
    ///
    /// # Errors
    ///
    /// Whatever the file system says; `AlreadyExists` when no free name is left.
    pub fn save_in(&self, dir: &Path) -> std::io::Result<SavedFile> {
        let name = safe_file_name(self.name.as_deref());
        let (stem, extension) = split_extension(&name);
        for n in 0..=MAX_SUFFIX {
            let candidate = match n {
                0 => name.clone(),
                _ => format!("{stem} ({n}){extension}"),
            };
            let path = dir.join(&candidate);
            let thumbnail_path = dir.join(format!("{candidate}.thumbnail"));
            if self.thumbnail.is_some() && thumbnail_path.symlink_metadata().is_ok() {
                continue;
            }
            match write_new(&path, &self.data) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
            let Some(thumbnail) = &self.thumbnail else {
                return Ok(SavedFile {
                    path,
                    thumbnail: None,
                });
            };
            match write_new(&thumbnail_path, &thumbnail.data) {
                Ok(()) => {
                    return Ok(SavedFile {
                        path,
                        thumbnail: Some(thumbnail_path),
                    })
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&path);
                    if e.kind() != std::io::ErrorKind::AlreadyExists {
                        return Err(e);
                    }
                }
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("no free name left for {name} in {}", dir.display()),
        ))
    }
}

/// A file name that is safe to create in a directory: the last path component of
/// `name` (either slash counts), without control characters, without characters that
/// some file systems reserve (`<>:"|?*`), without leading dots and surrounding spaces,
/// at most 200 bytes, and not a name Windows reserves for devices. What is left when
/// nothing usable remains is `file`.
pub fn safe_file_name(name: Option<&str>) -> String {
    let raw = name.unwrap_or_default();
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| if "<>:\"|?*".contains(c) { '_' } else { c })
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.').trim();
    let mut out = truncate_keeping_extension(trimmed, MAX_NAME_BYTES);
    out = out.trim_end_matches(['.', ' ']).to_owned();
    if out.is_empty() {
        return "file".to_owned();
    }
    let stem = out
        .split('.')
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    let reserved = matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.len() == 4
            && stem.as_bytes()[3].is_ascii_digit());
    if reserved {
        out.insert(0, '_');
    }
    out
}

/// `name` cut to at most `max` bytes at a character boundary, keeping a short
/// extension.
fn truncate_keeping_extension(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_owned();
    }
    let (stem, extension) = split_extension(name);
    let extension = if extension.len() <= 16 { extension } else { "" };
    let mut budget = max - extension.len();
    while !stem.is_char_boundary(budget.min(stem.len())) {
        budget -= 1;
    }
    format!("{}{extension}", &stem[..budget.min(stem.len())])
}

/// `report.tar.gz` gives (`report.tar`, `.gz`); a name without a dot after its first
/// character has no extension.
fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(dot) if dot > 0 => name.split_at(dot),
        _ => (name, ""),
    }
}

/// Creates `path` (never replacing anything) with `data`, mode 0600 on Unix; removes
/// it again when writing fails.
fn write_new(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    let written = file.write_all(data).and_then(|()| file.sync_all());
    if written.is_err() {
        drop(file);
        let _ = std::fs::remove_file(path);
    }
    written
}
