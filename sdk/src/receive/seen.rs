//! What was taken so far (a callback's (sender, message ID) pair, a status event's ID),
//! bounded: the oldest key is forgotten when a new one would exceed the capacity.

use std::collections::{HashSet, VecDeque};
use std::hash::Hash;

/// A bounded set that remembers insertion order.
#[derive(Debug)]
pub(super) struct Seen<K> {
    capacity: usize,
    order: VecDeque<K>,
    keys: HashSet<K>,
}

impl<K: Clone + Eq + Hash> Seen<K> {
    /// Room for `capacity` keys (at least one).
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            order: VecDeque::new(),
            keys: HashSet::new(),
        }
    }

    pub(super) fn contains(&self, key: &K) -> bool {
        self.keys.contains(key)
    }

    /// Adds `key`, forgetting the oldest keys beyond the capacity.
    pub(super) fn insert(&mut self, key: K) {
        if !self.keys.insert(key.clone()) {
            return;
        }
        self.order.push_back(key);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.keys.remove(&old);
            }
        }
    }

    /// Forgets `key`; returns whether it was there.
    pub(super) fn remove(&mut self, key: &K) -> bool {
        if !self.keys.remove(key) {
            return false;
        }
        self.order.retain(|k| k != key);
        true
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.keys.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{IdentityId, MessageId};

    type Key = (IdentityId, MessageId);

    fn key(n: u8) -> Key {
        (
            IdentityId::parse("ALICE123").unwrap(),
            MessageId::from_bytes([n; 8]),
        )
    }

    #[test]
    fn the_oldest_pair_goes_first() {
        let mut seen = Seen::new(2);
        seen.insert(key(1));
        seen.insert(key(2));
        seen.insert(key(2));
        assert_eq!(seen.len(), 2);
        seen.insert(key(3));
        assert!(!seen.contains(&key(1)));
        assert!(seen.contains(&key(2)) && seen.contains(&key(3)));
        assert!(seen.remove(&key(2)));
        assert!(!seen.remove(&key(2)));
        seen.insert(key(4));
        assert!(seen.contains(&key(3)) && seen.contains(&key(4)));
    }
}
