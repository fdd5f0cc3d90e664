//! Whether the store takes writes, and why not.
//!
//! Durability fails closed. Two kinds of trouble are told apart:
//! * **passing** ([`Health::Degraded`]): a write failed for a reason that can go away (a
//!   full disk, a lock held too long, a dropped connection). Its transaction was rolled
//!   back whole and its callers were told to retry; the writer goes on trying, and the
//!   first commit that succeeds clears the state.
//! * **final** ([`Health::Failed`]): a sync of the write-ahead log failed, or a commit's
//!   outcome is unknown. What the disk holds can no longer be trusted to match what was
//!   answered, so no later write is taken and nothing more is answered as committed.
//!   Only a restart clears it; recovery then decides what survived.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, PoisonError};

/// What the store's writes can do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Ok,
    /// Writes fail for a reason that may pass; the writer keeps trying.
    Degraded(String),
    /// Writes are refused until a restart.
    Failed(String),
}

const OK: u8 = 0;
const DEGRADED: u8 = 1;
const FAILED: u8 = 2;

/// The store's [`Health`], shared by its handles; cheap to read on every write.
#[derive(Debug, Default)]
pub(super) struct HealthCell {
    state: AtomicU8,
    reason: Mutex<String>,
}

impl HealthCell {
    pub(super) fn get(&self) -> Health {
        let reason = || {
            self.reason
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        };
        match self.state.load(Ordering::Acquire) {
            OK => Health::Ok,
            DEGRADED => Health::Degraded(reason()),
            _ => Health::Failed(reason()),
        }
    }

    /// Why writes are refused for good, if they are.
    pub(super) fn failure(&self) -> Option<String> {
        match self.get() {
            Health::Failed(reason) => Some(reason),
            _ => None,
        }
    }

    pub(super) fn is_degraded(&self) -> bool {
        self.state.load(Ordering::Acquire) == DEGRADED
    }

    /// Writes fail for `reason`, for now. A failed store stays failed.
    pub(super) fn degrade(&self, reason: &str) {
        self.set(DEGRADED, reason);
    }

    /// Writes are refused for good because of `reason`; the first reason stays.
    pub(super) fn fail(&self, reason: &str) {
        self.set(FAILED, reason);
    }

    /// A commit went through: a passing trouble has passed.
    pub(super) fn recovered(&self) {
        if self.state.load(Ordering::Acquire) == DEGRADED {
            let _ = self
                .state
                .compare_exchange(DEGRADED, OK, Ordering::AcqRel, Ordering::Acquire);
        }
    }

    fn set(&self, state: u8, reason: &str) {
        let mut held = self.reason.lock().unwrap_or_else(PoisonError::into_inner);
        let now = self.state.load(Ordering::Acquire);
        if now == FAILED || (now == state && *held == reason) {
            return;
        }
        *held = reason.to_owned();
        self.state.store(state, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passing_trouble_clears_and_a_failure_stays() {
        let cell = HealthCell::default();
        assert_eq!(cell.get(), Health::Ok);
        cell.degrade("disk full");
        assert_eq!(cell.get(), Health::Degraded("disk full".into()));
        cell.recovered();
        assert_eq!(cell.get(), Health::Ok);
        cell.fail("sync failed");
        cell.degrade("disk full");
        cell.recovered();
        cell.fail("another");
        assert_eq!(cell.get(), Health::Failed("sync failed".into()));
        assert_eq!(cell.failure().as_deref(), Some("sync failed"));
    }
}
