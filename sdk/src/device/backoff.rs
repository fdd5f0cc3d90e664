//! Exponential backoff with jitter for reconnecting.
//!
//! The base delay starts at `first`, doubles after every failed attempt up to `max`, and
//! goes back to `first` after a successful login. Each actual delay is drawn uniformly
//! from the upper half of the base (`base/2 ..= base`), so devices that lost the server
//! at the same moment do not all come back at the same moment.

use std::time::Duration;

use crate::crypto::fill_random;

/// The delays between reconnection attempts.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    first: Duration,
    max: Duration,
    base: Duration,
}

impl Backoff {
    /// Starts at `first` (at least 1 ms) and never exceeds `max` (at least `first`).
    pub(crate) fn new(first: Duration, max: Duration) -> Self {
        let first = first.max(Duration::from_millis(1));
        Self {
            first,
            max: max.max(first),
            base: first,
        }
    }

    /// Back to the first delay, after a successful login.
    pub(crate) fn reset(&mut self) {
        self.base = self.first;
    }

    /// The delay before the next attempt; doubles the base for the one after.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let base = self.base;
        self.base = base.saturating_mul(2).min(self.max);
        let half = base / 2;
        half + half.mul_f64(unit_random())
    }
}

/// A uniform random number in `[0, 1)`.
fn unit_random() -> f64 {
    let mut bytes = [0u8; 4];
    fill_random(&mut bytes);
    f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_with_jitter_and_reset() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let bases = [1, 2, 4, 8, 16, 32, 60, 60];
        for base in bases {
            let base = Duration::from_secs(base);
            let delay = backoff.next_delay();
            assert!(delay >= base / 2 && delay <= base, "{delay:?} for {base:?}");
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_secs(1));
    }

    #[test]
    fn nonsense_bounds_are_made_usable() {
        let mut backoff = Backoff::new(Duration::ZERO, Duration::ZERO);
        assert!(backoff.next_delay() <= Duration::from_millis(1));
        assert!(backoff.next_delay() <= Duration::from_millis(1));
    }
}
