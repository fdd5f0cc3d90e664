//! Moments in time as the store keeps them.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A moment as milliseconds since the unix epoch (UTC), the unit of every time the store
/// keeps. Arithmetic saturates: a TTL added to a far moment stays at the far end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixMs(i64);

impl UnixMs {
    /// Later than any real moment: "never" for a deadline.
    pub const MAX: Self = Self(i64::MAX);

    pub const fn new(ms: i64) -> Self {
        Self(ms)
    }

    /// The wall clock now.
    pub fn now() -> Self {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self(i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))
    }

    /// As the store binds it (BIGINT).
    pub const fn get(self) -> i64 {
        self.0
    }

    /// `ms` milliseconds later (earlier when negative).
    pub const fn plus_ms(self, ms: i64) -> Self {
        Self(self.0.saturating_add(ms))
    }

    /// `ms` milliseconds earlier.
    pub const fn minus_ms(self, ms: i64) -> Self {
        Self(self.0.saturating_sub(ms))
    }

    /// Whole seconds since the epoch, as the chat protocol dates messages.
    pub const fn as_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// `d` later.
    pub fn plus(self, d: Duration) -> Self {
        self.plus_ms(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    /// `d` earlier.
    pub fn minus(self, d: Duration) -> Self {
        self.minus_ms(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    /// Milliseconds from `earlier` to `self`; negative when `earlier` is later.
    pub const fn ms_since(self, earlier: Self) -> i64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for UnixMs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_and_orders() {
        let t = UnixMs::new(1_000);
        assert_eq!(t.plus(Duration::from_secs(2)), UnixMs::new(3_000));
        assert_eq!(t.minus(Duration::from_millis(1_500)), UnixMs::new(-500));
        assert_eq!(UnixMs::MAX.plus_ms(1), UnixMs::MAX);
        assert_eq!(t.plus(Duration::MAX), UnixMs::MAX);
        assert_eq!(UnixMs::new(3_000).ms_since(t), 2_000);
        assert_eq!(UnixMs::new(2_999).as_secs(), 2);
        assert_eq!(UnixMs::new(-1).as_secs(), -1);
        assert!(t < t.plus_ms(1));
    }

    #[test]
    fn now_is_after_the_year_2020() {
        assert!(UnixMs::now() > UnixMs::new(1_577_836_800_000));
    }
}
