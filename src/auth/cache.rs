//! A small time-bounded cache for hot directory reads on the request path (gateway records
//! for authentication, recipient keys for sends).
//!
//! Entries live for a short TTL, so a change (a revoked identity, a new callback URL, a
//! rotated secret) takes effect within that time on every node without invalidation
//! messages. The map is emptied when it reaches its capacity, which bounds memory.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct TtlCache<K, V> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
    ttl: Duration,
    capacity: usize,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            ttl,
            capacity: capacity.max(1),
        }
    }

    /// The cached value if it is younger than the TTL.
    pub fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, v)| v.clone())
    }

    pub fn put(&self, key: K, value: V) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.capacity {
            entries.clear();
        }
        entries.insert(key, (Instant::now(), value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_capacity_is_bounded() {
        let cache = TtlCache::new(Duration::from_secs(60), 2);
        cache.put(1, "a");
        cache.put(2, "b");
        assert_eq!(cache.get(&1), Some("a"));
        cache.put(3, "c");
        assert_eq!(cache.get(&1), None, "full: emptied before the insert");
        assert_eq!(cache.get(&3), Some("c"));
        let short = TtlCache::new(Duration::ZERO, 10);
        short.put(1, "a");
        assert_eq!(short.get(&1), None, "a zero TTL never hits");
    }
}
