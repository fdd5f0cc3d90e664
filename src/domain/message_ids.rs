//! Message IDs the server assigns: time-ordered, and unique across the nodes sharing a
//! database.
//!
//! An ID is 64 bits, sent big-endian (so the byte order sorts like the number):
//!
//! | bits | field |
//! | --- | --- |
//! | 63–23 | milliseconds since 2024-01-01 UTC (41 bits, until 2093) |
//! | 22–13 | node number (10 bits), taken from the store at start |
//! | 12–0 | sequence within the millisecond (13 bits) |
//!
//! Why time-ordered: every accepted message enters the queue's unique index
//! `(sender, message_id, recipient)`. With random IDs each entry lands on a random page of
//! that index, and SQLite's write-ahead log writes a whole page per dirtied page at every
//! commit; IDs that grow with time append to the same few pages instead. The store
//! benchmark went from about 7,500 to 10,500 accepted per second from this alone.
//!
//! Why unique: the generator never hands out the same (millisecond, sequence) twice in one
//! process, even if the clock steps back (it keeps counting from the last ID); two
//! processes differ in the node number, which the store hands out from a counter at every
//! start. More than 8,192 IDs in one millisecond borrow the next millisecond.
//!
//! What an ID reveals: the moment it was assigned, which the message's own date shows
//! anyway, and how many IDs this node assigned earlier in the same millisecond.

use std::sync::atomic::{AtomicU64, Ordering};

use tocsin_sdk::protocol::MessageId;

use super::UnixMs;

/// 2024-01-01T00:00:00Z in unix milliseconds.
const EPOCH_MS: i64 = 1_704_067_200_000;
const SEQUENCE_BITS: u32 = 13;
const NODE_BITS: u32 = 10;
const TIME_BITS: u32 = 64 - NODE_BITS - SEQUENCE_BITS;

/// Hands out message IDs for one node.
#[derive(Debug)]
pub struct MessageIds {
    node: u64,
    /// The last (milliseconds << SEQUENCE_BITS | sequence) handed out.
    last: AtomicU64,
}

impl MessageIds {
    /// Nodes that can be told apart; the store's counter is taken modulo this.
    pub const NODES: u64 = 1 << NODE_BITS;

    /// A generator for node `node` (taken modulo [`Self::NODES`]).
    pub fn new(node: u64) -> Self {
        Self {
            node: node % Self::NODES,
            last: AtomicU64::new(0),
        }
    }

    /// The next ID, for a message accepted at `now`.
    pub fn next(&self, now: UnixMs) -> MessageId {
        let mask = (1u64 << (TIME_BITS + SEQUENCE_BITS)) - 1;
        let millis = u64::try_from(now.ms_since(UnixMs::new(EPOCH_MS))).unwrap_or(0);
        let floor = (millis << SEQUENCE_BITS) & mask;
        let previous = self
            .last
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
                Some(floor.max(last + 1) & mask)
            })
            .unwrap_or_else(|last| last);
        let tick = floor.max(previous + 1) & mask;
        let millis = tick >> SEQUENCE_BITS;
        let sequence = tick & ((1 << SEQUENCE_BITS) - 1);
        let value =
            (millis << (NODE_BITS + SEQUENCE_BITS)) | (self.node << SEQUENCE_BITS) | sequence;
        MessageId::from_bytes(value.to_be_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn value(id: MessageId) -> u64 {
        u64::from_be_bytes(*id.as_bytes())
    }

    #[test]
    fn ids_grow_with_time_and_within_a_millisecond() {
        let ids = MessageIds::new(5);
        let a = ids.next(UnixMs::new(NOW));
        let b = ids.next(UnixMs::new(NOW));
        let c = ids.next(UnixMs::new(NOW + 1));
        assert!(value(a) < value(b) && value(b) < value(c));
        // The byte order sorts the same way, as the store's index compares bytes.
        assert!(a.as_bytes() < b.as_bytes() && b.as_bytes() < c.as_bytes());
        assert_eq!(value(a) >> 23, (NOW - EPOCH_MS) as u64);
        assert_eq!(value(c) >> 23, (NOW + 1 - EPOCH_MS) as u64);
    }

    #[test]
    fn a_clock_that_steps_back_does_not_repeat_an_id() {
        let ids = MessageIds::new(1);
        let before = ids.next(UnixMs::new(NOW));
        let after = ids.next(UnixMs::new(NOW - 60_000));
        assert!(value(after) > value(before));
    }

    #[test]
    fn a_full_millisecond_borrows_the_next_one() {
        let ids = MessageIds::new(0);
        let all: Vec<u64> = (0..10_000)
            .map(|_| value(ids.next(UnixMs::new(NOW))))
            .collect();
        assert!(all.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(all[8_191] >> 23, (NOW - EPOCH_MS) as u64);
        assert_eq!(all[8_192] >> 23, (NOW - EPOCH_MS) as u64 + 1);
    }

    #[test]
    fn nodes_never_share_an_id() {
        let (one, two) = (
            MessageIds::new(3),
            MessageIds::new(3 + MessageIds::NODES + 1),
        );
        let mut seen = std::collections::HashSet::new();
        for _ in 0..20_000 {
            assert!(seen.insert(value(one.next(UnixMs::new(NOW)))));
            assert!(seen.insert(value(two.next(UnixMs::new(NOW)))));
        }
        assert_eq!((value(one.next(UnixMs::new(NOW))) >> 13) & 0x3ff, 3);
        assert_eq!((value(two.next(UnixMs::new(NOW))) >> 13) & 0x3ff, 4);
    }

    #[test]
    fn threads_never_share_an_id() {
        let ids = std::sync::Arc::new(MessageIds::new(9));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let ids = ids.clone();
                std::thread::spawn(move || {
                    (0..5_000)
                        .map(|_| value(ids.next(UnixMs::new(NOW))))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<u64> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 20_000);
    }

    #[test]
    fn times_before_the_epoch_count_from_zero() {
        let ids = MessageIds::new(2);
        assert_eq!(value(ids.next(UnixMs::new(0))) >> 23, 0);
    }
}
