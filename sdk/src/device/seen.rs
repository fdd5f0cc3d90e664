//! [`SeenStore`]: the messages this device has already handled, so that a message that
//! comes again is dropped instead of shown twice.
//!
//! Delivery is at least once: a message whose ack did not reach the server (the
//! connection dropped between handling and ack) comes again at the next login. A message
//! counts as seen when either its (sender, message ID) or its nonce was seen before; the
//! nonce check also catches a box replayed under a new message ID.
//!
//! The store keeps the newest `capacity` entries (10,000 by default) and forgets older
//! ones, so a replay older than that window would pass; the server's message TTL bounds
//! how old an honest redelivery can be. On disk it is a text file, one entry per line
//! (`SENDER MESSAGEID NONCE`, hex), mode 0600, appended to as entries arrive and rewritten
//! atomically when it grows past twice the capacity. Lines that do not parse are skipped.

use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::files::{append_private, read_optional, replace_private};
use super::{DeviceError, Received};
use crate::protocol::{IdentityId, MessageId, Nonce};

/// One handled message.
#[derive(Debug, Clone, Copy)]
struct Entry {
    sender: IdentityId,
    message_id: MessageId,
    nonce: Nonce,
}

impl Entry {
    fn line(&self) -> String {
        format!("{} {} {}\n", self.sender, self.message_id, self.nonce)
    }

    fn parse(line: &str) -> Option<Self> {
        let mut fields = line.split_whitespace();
        let entry = Self {
            sender: IdentityId::parse(fields.next()?).ok()?,
            message_id: MessageId::parse(fields.next()?).ok()?,
            nonce: Nonce::parse(fields.next()?).ok()?,
        };
        fields.next().is_none().then_some(entry)
    }
}

/// The handled messages, newest last, bounded; optionally kept in a file.
#[derive(Debug)]
pub struct SeenStore {
    file: Option<(PathBuf, File)>,
    capacity: usize,
    order: VecDeque<Entry>,
    ids: HashSet<(IdentityId, MessageId)>,
    nonces: HashSet<Nonce>,
    /// Lines in the file, including ones evicted from memory or unparsable.
    lines: usize,
}

impl SeenStore {
    /// Entries kept unless told otherwise.
    pub const DEFAULT_CAPACITY: usize = 10_000;

    /// A store that lives in memory only (at least one entry).
    pub fn in_memory(capacity: usize) -> Self {
        Self {
            file: None,
            capacity: capacity.max(1),
            order: VecDeque::new(),
            ids: HashSet::new(),
            nonces: HashSet::new(),
            lines: 0,
        }
    }

    /// Loads the store kept at `path`, creating the file (mode 0600) if it is missing.
    ///
    /// # Errors
    ///
    /// [`DeviceError::File`] when the file cannot be read or written.
    pub fn open(path: &Path, capacity: usize) -> Result<Self, DeviceError> {
        let mut store = Self::in_memory(capacity);
        let text = read_optional(path)?.unwrap_or_default();
        for line in text.lines() {
            store.lines += 1;
            if let Some(entry) = Entry::parse(line) {
                store.remember(entry);
            }
        }
        store.file = Some((path.to_path_buf(), append_private(path)?));
        if store.lines > store.order.len() {
            store.compact()?;
        }
        Ok(store)
    }

    /// Whether `received` was handled before, by (sender, message ID) or by nonce.
    pub fn contains(&self, received: &Received) -> bool {
        self.ids.contains(&(received.sender, received.message_id))
            || self.nonces.contains(&received.nonce)
    }

    /// Records `received` as handled; returns `false` (and records nothing) when it
    /// was already.
    ///
    /// # Errors
    ///
    /// [`DeviceError::File`] when the file cannot be written; the entry is then kept
    /// in memory only.
    pub fn insert(&mut self, received: &Received) -> Result<bool, DeviceError> {
        if self.contains(received) {
            return Ok(false);
        }
        let entry = Entry {
            sender: received.sender,
            message_id: received.message_id,
            nonce: received.nonce,
        };
        self.remember(entry);
        if let Some((path, file)) = &mut self.file {
            file.write_all(entry.line().as_bytes())
                .map_err(|e| DeviceError::file(path.as_path(), format!("cannot append: {e}")))?;
            self.lines += 1;
            if self.lines > self.capacity.saturating_mul(2) {
                self.compact()?;
            }
        }
        Ok(true)
    }

    /// Number of entries kept.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Adds an entry (unless a duplicate) and evicts the oldest beyond the capacity.
    fn remember(&mut self, entry: Entry) {
        if self.ids.contains(&(entry.sender, entry.message_id))
            || self.nonces.contains(&entry.nonce)
        {
            return;
        }
        self.ids.insert((entry.sender, entry.message_id));
        self.nonces.insert(entry.nonce);
        self.order.push_back(entry);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&(old.sender, old.message_id));
                self.nonces.remove(&old.nonce);
            }
        }
    }

    /// Rewrites the file with exactly the entries kept.
    fn compact(&mut self) -> Result<(), DeviceError> {
        let Some((path, _)) = self.file.take() else {
            return Ok(());
        };
        let text: String = self.order.iter().map(Entry::line).collect();
        replace_private(&path, text.as_bytes())?;
        let file = append_private(&path)?;
        self.file = Some((path, file));
        self.lines = self.order.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{E2eMessage, MessageFlags};

    fn message(sender: &str) -> Received {
        Received {
            sender: IdentityId::parse(sender).unwrap(),
            message_id: MessageId::random(),
            created_at: 0,
            flags: MessageFlags::default(),
            nickname: None,
            nonce: Nonce::random(),
            message: E2eMessage::Text("x".into()),
            expires_at: None,
        }
    }

    #[test]
    fn duplicates_by_id_or_by_nonce_are_caught() {
        let mut store = SeenStore::in_memory(10);
        let first = message("ALICE123");
        assert!(store.insert(&first).unwrap());
        assert!(!store.insert(&first).unwrap());
        let same_nonce = Received {
            message_id: MessageId::random(),
            ..first.clone()
        };
        assert!(store.contains(&same_nonce));
        let same_id_other_sender = Received {
            sender: IdentityId::parse("BOB45678").unwrap(),
            nonce: Nonce::random(),
            ..first.clone()
        };
        assert!(!store.contains(&same_id_other_sender));
    }

    #[test]
    fn the_oldest_entries_go_first_and_the_file_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.seen");
        let mut store = SeenStore::open(&path, 3).unwrap();
        let all: Vec<Received> = (0..10).map(|_| message("*ALERTS1")).collect();
        for m in &all {
            store.insert(m).unwrap();
        }
        assert_eq!(store.len(), 3);
        assert!(!store.contains(&all[6]) && store.contains(&all[7]));
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert!(lines <= 6, "{lines} lines");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"garbage line\n")
            .unwrap();
        let reopened = SeenStore::open(&path, 3).unwrap();
        assert_eq!(reopened.len(), 3);
        assert!(reopened.contains(&all[9]) && !reopened.contains(&all[6]));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("garbage"), "rewritten without the bad line");
    }
}
