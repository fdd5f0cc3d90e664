//! Rate limits (GCRA token buckets from `governor`), kept per node.
//!
//! Keyed limiters:
//! * per client IP, checked before authentication (cheap flood guard);
//! * per gateway ID, checked after authentication;
//! * per (claimed gateway ID, client IP) for *failed* authentications. When it runs dry the
//!   pair is blocked until the bucket refills: further attempts from that address get 429
//!   without their secret being checked at all, so a guess cannot succeed while blocked.
//!   The real sender, coming from another address, is not affected.
//! * per identity, on what its devices send over the chat protocol: frames (acks aside)
//!   and bytes, across all of the identity's sessions.
//!
//! A client is keyed by its IPv4 address, or by the /64 of its IPv6 address: one
//! subscriber or host usually holds a whole /64, so keying on the full address would give
//! one client 2^64 budgets ([`client_key`]).
//!
//! In a multi-node deployment each node enforces its own share, so the effective limit is
//! roughly the configured one times the number of nodes.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use tocsin_sdk::protocol::{GatewayId, IdentityId};

use crate::config::RateLimitSettings;

type Keyed<K, C> = RateLimiter<K, DashMapStateStore<K>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// Refused: retry after this long (whole seconds, at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after_secs: u64,
}

impl Limited {
    fn after(wait: Duration) -> Self {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Self {
            retry_after_secs: secs.max(1),
        }
    }
}

/// The key a client's budgets are kept under: an IPv4 address as it is (also when it
/// arrives IPv4-mapped), an IPv6 address cut to its /64.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from_bits(
                v6.to_bits() & !u128::from(u64::MAX),
            )),
        },
    }
}

/// How many blocked (ID, IP) pairs to remember before expired ones are swept.
const BLOCKED_SWEEP_AT: usize = 10_000;

/// A failed login's key: the claimed gateway ID (always 8 bytes; a `from` that is no
/// gateway ID is never recorded) and the client's address.
type FailureKey = (GatewayId, IpAddr);

pub struct RateLimits<C: Clock = DefaultClock> {
    per_ip: Option<Keyed<IpAddr, C>>,
    per_gateway: Option<Keyed<GatewayId, C>>,
    failures: Keyed<FailureKey, C>,
    /// Failures per gateway ID from every address, watched but never blocking.
    gateway_failures: Option<Keyed<GatewayId, C>>,
    /// At most one alarm a minute per gateway ID.
    alarms: Keyed<GatewayId, C>,
    identity_creation: Option<Keyed<IpAddr, C>>,
    /// Phone and e-mail hashes each gateway ID may look up in a day, found or not.
    lookups: Option<Keyed<GatewayId, C>>,
    device_frames: Option<Keyed<IdentityId, C>>,
    device_bytes: Option<Keyed<IdentityId, C>>,
    blocked: Mutex<HashMap<FailureKey, C::Instant>>,
    clock: C,
}

impl<C: Clock> std::fmt::Debug for RateLimits<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits").finish_non_exhaustive()
    }
}

fn quota(per_second: u32, burst: u32) -> Option<Quota> {
    let rate = NonZeroU32::new(per_second)?;
    let burst = NonZeroU32::new(burst.max(per_second)).unwrap_or(rate);
    Some(Quota::per_second(rate).allow_burst(burst))
}

fn keyed<K: Hash + Eq + Clone, C: Clock + Clone>(quota: Quota, clock: &C) -> Keyed<K, C> {
    RateLimiter::dashmap_with_clock(quota, clock.clone())
}

impl RateLimits<DefaultClock> {
    pub fn new(settings: &RateLimitSettings) -> Self {
        Self::with_clock(settings, DefaultClock::default())
    }
}

impl<C: Clock + Clone> RateLimits<C> {
    /// Builds the limiters on `clock` (tests pass a `FakeRelativeClock`).
    pub fn with_clock(settings: &RateLimitSettings, clock: C) -> Self {
        let failures_per_minute =
            NonZeroU32::new(settings.auth_failures_per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        Self {
            per_ip: quota(settings.per_ip_per_second, settings.per_ip_burst)
                .map(|q| keyed(q, &clock)),
            per_gateway: quota(settings.per_gateway_per_second, settings.per_gateway_burst)
                .map(|q| keyed(q, &clock)),
            failures: keyed(Quota::per_minute(failures_per_minute), &clock),
            gateway_failures: NonZeroU32::new(settings.auth_failures_per_gateway_per_minute)
                .map(|n| keyed(Quota::per_minute(n), &clock)),
            alarms: keyed(Quota::per_minute(NonZeroU32::MIN), &clock),
            identity_creation: None,
            lookups: None,
            device_frames: None,
            device_bytes: None,
            blocked: Mutex::new(HashMap::new()),
            clock,
        }
    }

    /// Limits identity creation per client IP to `per_hour` (0 = unlimited).
    #[must_use]
    pub fn with_identity_quota(mut self, per_hour: u32) -> Self {
        self.identity_creation =
            NonZeroU32::new(per_hour).map(|n| keyed(Quota::per_hour(n), &self.clock));
        self
    }

    /// Limits the phone and e-mail hashes each gateway ID looks up to `per_day`, refilled
    /// evenly over the day (0 = unlimited).
    #[must_use]
    pub fn with_lookup_quota(mut self, per_day: u32) -> Self {
        self.lookups = NonZeroU32::new(per_day).and_then(|n| {
            let period = Duration::from_secs(86_400) / n.get();
            Quota::with_period(period).map(|q| keyed(q.allow_burst(n), &self.clock))
        });
        self
    }

    /// `hashes` lookups by `gateway`, counted whether they find anything or not; `Err` when
    /// its daily quota cannot take them now (and, for more than a whole day's quota in one
    /// request, ever: it is then told to wait a day).
    pub fn check_lookups(&self, gateway: &GatewayId, hashes: usize) -> Result<(), Limited> {
        let (Some(lookups), Some(n)) = (
            &self.lookups,
            NonZeroU32::new(u32::try_from(hashes).unwrap_or(u32::MAX)),
        ) else {
            return Ok(());
        };
        match lookups.check_key_n(gateway, n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(Limited::after(not_until.wait_time_from(self.clock.now()))),
            Err(_) => Err(Limited::after(Duration::from_secs(86_400))),
        }
    }

    /// Limits what each identity's devices send: `frames` (per second, burst) counts every
    /// frame but acks, `bytes` (per second, burst) every frame's length. A rate of 0 turns
    /// that limiter off.
    #[must_use]
    pub fn with_device_budget(mut self, frames: (u32, u32), bytes: (u32, u32)) -> Self {
        self.device_frames = quota(frames.0, frames.1).map(|q| keyed(q, &self.clock));
        self.device_bytes = quota(bytes.0, bytes.1).map(|q| keyed(q, &self.clock));
        self
    }

    /// One frame (not an ack) from a device of `identity`; `Err` with how long until the
    /// identity's frame budget has room for it.
    pub fn check_device_frame(&self, identity: &IdentityId) -> Result<(), Duration> {
        match self.device_frames.as_ref().map(|l| l.check_key(identity)) {
            Some(Err(not_until)) => Err(not_until.wait_time_from(self.clock.now())),
            _ => Ok(()),
        }
    }

    /// `len` bytes of frames from a device of `identity`; `Err` with how long until the
    /// identity's byte budget has room for them. `len` must not exceed the burst (config
    /// makes the burst hold the largest frame); a larger one waits a second each time.
    pub fn check_device_bytes(&self, identity: &IdentityId, len: usize) -> Result<(), Duration> {
        let Some(bytes) = &self.device_bytes else {
            return Ok(());
        };
        let n = NonZeroU32::new(u32::try_from(len).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN);
        match bytes.check_key_n(identity, n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(not_until.wait_time_from(self.clock.now())),
            Err(_) => Err(Duration::from_secs(1)),
        }
    }

    /// One identity creation from `ip`.
    pub fn check_identity_creation(&self, ip: IpAddr) -> Result<(), Limited> {
        self.check(self.identity_creation.as_ref(), &client_key(ip))
    }

    fn check<K: Hash + Eq + Clone>(
        &self,
        limiter: Option<&Keyed<K, C>>,
        key: &K,
    ) -> Result<(), Limited> {
        match limiter.map(|l| l.check_key(key)) {
            Some(Err(not_until)) => Err(Limited::after(not_until.wait_time_from(self.clock.now()))),
            _ => Ok(()),
        }
    }

    /// One request from `ip`.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Limited> {
        self.check(self.per_ip.as_ref(), &client_key(ip))
    }

    /// One request by an authenticated gateway ID.
    pub fn check_gateway(&self, id: &GatewayId) -> Result<(), Limited> {
        self.check(self.per_gateway.as_ref(), id)
    }

    /// Whether `from` may try a secret from `ip` now (no earlier failures blocked it).
    pub fn check_not_blocked(&self, from: &GatewayId, ip: IpAddr) -> Result<(), Limited> {
        let now = self.clock.now();
        let key = (*from, client_key(ip));
        let mut blocked = self.lock_blocked();
        match blocked.get(&key) {
            Some(until) if *until > now => Err(Limited::after(until.duration_since(now).into())),
            Some(_) => {
                blocked.remove(&key);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Counts a failed authentication against `from` from every address; `true` when the
    /// gateway ID is past its watch and no alarm was raised for it within the minute.
    pub fn gateway_failure_alarm(&self, from: &GatewayId) -> bool {
        let past = self
            .gateway_failures
            .as_ref()
            .is_some_and(|l| l.check_key(from).is_err());
        past && self.alarms.check_key(from).is_ok()
    }

    /// Records a failed authentication; `Err` once the pair's budget is spent (it is then
    /// blocked until the bucket refills).
    pub fn record_failure(&self, from: &GatewayId, ip: IpAddr) -> Result<(), Limited> {
        let key = (*from, client_key(ip));
        let Err(not_until) = self.failures.check_key(&key) else {
            return Ok(());
        };
        let now = self.clock.now();
        let until = not_until.earliest_possible();
        let mut blocked = self.lock_blocked();
        if blocked.len() >= BLOCKED_SWEEP_AT {
            blocked.retain(|_, t| *t > now);
        }
        blocked.insert(key, until);
        Err(Limited::after(until.duration_since(now).into()))
    }

    /// Forgets buckets that are full again and blocks that have expired, so memory follows
    /// the recently active keys rather than every key ever seen.
    pub fn sweep(&self) {
        if let Some(l) = &self.per_ip {
            l.retain_recent();
        }
        if let Some(l) = &self.per_gateway {
            l.retain_recent();
        }
        self.failures.retain_recent();
        self.alarms.retain_recent();
        if let Some(l) = &self.gateway_failures {
            l.retain_recent();
        }
        if let Some(l) = &self.identity_creation {
            l.retain_recent();
        }
        if let Some(l) = &self.lookups {
            l.retain_recent();
        }
        for l in [&self.device_frames, &self.device_bytes]
            .into_iter()
            .flatten()
        {
            l.retain_recent();
        }
        let now = self.clock.now();
        self.lock_blocked().retain(|_, until| *until > now);
    }

    fn lock_blocked(&self) -> std::sync::MutexGuard<'_, HashMap<FailureKey, C::Instant>> {
        self.blocked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    fn settings() -> RateLimitSettings {
        RateLimitSettings {
            per_ip_per_second: 2,
            per_ip_burst: 4,
            per_gateway_per_second: 1,
            per_gateway_burst: 3,
            auth_failures_per_minute: 5,
            auth_failures_per_gateway_per_minute: 20,
            lookups_per_gateway_per_day: 0,
        }
    }

    fn gw(id: &str) -> GatewayId {
        GatewayId::parse(id).unwrap()
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn per_gateway_bucket_empties_after_its_burst_and_refills_with_time() {
        let clock = FakeRelativeClock::default();
        let limits = RateLimits::with_clock(&settings(), clock.clone());
        let id = GatewayId::parse("*ALERTS1").unwrap();
        for _ in 0..3 {
            limits.check_gateway(&id).unwrap();
        }
        assert_eq!(
            limits.check_gateway(&id),
            Err(Limited {
                retry_after_secs: 1
            })
        );
        clock.advance(Duration::from_secs(1));
        limits.check_gateway(&id).unwrap();
        // Another gateway ID has its own bucket.
        limits
            .check_gateway(&GatewayId::parse("*OTHER12").unwrap())
            .unwrap();
    }

    #[test]
    fn lookups_are_held_to_a_daily_quota_that_refills_over_the_day() {
        let clock = FakeRelativeClock::default();
        let limits = RateLimits::with_clock(&settings(), clock.clone()).with_lookup_quota(48);
        let (id, other) = (gw("*ALERTS1"), gw("*OTHER12"));
        limits.check_lookups(&id, 40).unwrap();
        limits.check_lookups(&id, 8).unwrap();
        let refused = limits.check_lookups(&id, 1).unwrap_err();
        assert_eq!(
            refused.retry_after_secs, 1800,
            "one lookup comes back each half hour"
        );
        limits.check_lookups(&other, 48).unwrap();
        assert_eq!(
            limits
                .check_lookups(&other, 49)
                .unwrap_err()
                .retry_after_secs,
            86_400,
            "more than a day's quota at once never fits"
        );
        clock.advance(Duration::from_secs(1800));
        limits.check_lookups(&id, 1).unwrap();
        assert!(limits.check_lookups(&id, 1).is_err());
        clock.advance(Duration::from_secs(86_400));
        limits.check_lookups(&id, 48).unwrap();
        let off = RateLimits::with_clock(&settings(), FakeRelativeClock::default());
        off.check_lookups(&id, 1_000_000).unwrap();
    }

    #[test]
    fn an_ipv6_client_is_one_client_across_its_64() {
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        let limits = RateLimits::with_clock(&settings(), FakeRelativeClock::default());
        for host in 1..=4 {
            limits
                .check_ip(v6(&format!("2001:db8:1:2::{host:x}")))
                .unwrap();
        }
        assert!(limits
            .check_ip(v6("2001:db8:1:2:ffff:ffff:ffff:ffff"))
            .is_err());
        limits.check_ip(v6("2001:db8:1:3::1")).unwrap();
        assert_eq!(client_key(v6("::ffff:192.0.2.1")), A);
        assert_eq!(client_key(A), A);
        for _ in 0..10 {
            if limits
                .record_failure(&gw("*ALERTS1"), v6("2001:db8:1:2::1"))
                .is_err()
            {
                break;
            }
        }
        assert!(limits
            .check_not_blocked(&gw("*ALERTS1"), v6("2001:db8:1:2::beef"))
            .is_err());
    }

    #[test]
    fn per_ip_limit_is_per_address_and_zero_disables_it() {
        let limits = RateLimits::with_clock(&settings(), FakeRelativeClock::default());
        for _ in 0..4 {
            limits.check_ip(A).unwrap();
        }
        assert!(limits.check_ip(A).is_err());
        limits.check_ip(B).unwrap();
        let off = RateLimitSettings {
            per_ip_per_second: 0,
            ..settings()
        };
        let limits = RateLimits::with_clock(&off, FakeRelativeClock::default());
        for _ in 0..1000 {
            limits.check_ip(A).unwrap();
        }
    }

    #[test]
    fn failed_logins_block_the_pair_within_ten_attempts_but_not_other_addresses() {
        let clock = FakeRelativeClock::default();
        let limits = RateLimits::with_clock(&settings(), clock.clone());
        let mut attempts = 0;
        while limits.check_not_blocked(&gw("*ALERTS1"), A).is_ok() {
            attempts += 1;
            assert!(
                attempts <= 10,
                "a brute force must be stopped within 10 attempts"
            );
            let _ = limits.record_failure(&gw("*ALERTS1"), A);
        }
        assert_eq!(attempts, 6, "five failures pass, the sixth blocks");
        let blocked = limits.check_not_blocked(&gw("*ALERTS1"), A).unwrap_err();
        assert_eq!(
            blocked.retry_after_secs, 12,
            "5 per minute: one attempt back every 12 s"
        );
        limits.check_not_blocked(&gw("*ALERTS1"), B).unwrap();
        limits.check_not_blocked(&gw("*OTHER12"), A).unwrap();
        limits.sweep();
        assert!(
            limits.check_not_blocked(&gw("*ALERTS1"), A).is_err(),
            "a sweep keeps live blocks"
        );
        clock.advance(Duration::from_secs(12));
        limits.sweep();
        assert!(
            limits.lock_blocked().is_empty(),
            "a sweep drops expired blocks"
        );
        limits.check_not_blocked(&gw("*ALERTS1"), A).unwrap();
        assert!(
            limits.record_failure(&gw("*ALERTS1"), A).is_ok(),
            "one refilled attempt"
        );
        assert!(limits.record_failure(&gw("*ALERTS1"), A).is_err());
    }

    #[test]
    fn a_devices_frames_and_bytes_have_budgets_that_say_how_long_to_wait() {
        let clock = FakeRelativeClock::default();
        let limits = RateLimits::with_clock(&settings(), clock.clone())
            .with_device_budget((2, 3), (100, 1000));
        let (alice, bob) = (
            IdentityId::parse("ALICE123").unwrap(),
            IdentityId::parse("BOB45678").unwrap(),
        );
        for _ in 0..3 {
            limits.check_device_frame(&alice).unwrap();
        }
        assert_eq!(
            limits.check_device_frame(&alice),
            Err(Duration::from_millis(500))
        );
        limits.check_device_frame(&bob).unwrap();
        limits.check_device_bytes(&alice, 1000).unwrap();
        assert_eq!(
            limits.check_device_bytes(&alice, 50),
            Err(Duration::from_millis(500))
        );
        clock.advance(Duration::from_millis(500));
        limits.check_device_frame(&alice).unwrap();
        limits.check_device_bytes(&alice, 50).unwrap();
        let off = RateLimits::with_clock(&settings(), clock).with_device_budget((0, 0), (0, 0));
        for _ in 0..10_000 {
            off.check_device_frame(&alice).unwrap();
            off.check_device_bytes(&alice, 8194).unwrap();
        }
    }

    #[test]
    fn failures_from_many_addresses_raise_one_alarm_a_minute_and_block_nothing() {
        let clock = FakeRelativeClock::default();
        let limits = RateLimits::with_clock(&settings(), clock.clone());
        let id = gw("*ALERTS1");
        let mut alarms = 0;
        for i in 0..100u8 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, i));
            let _ = limits.record_failure(&id, ip);
            alarms += usize::from(limits.gateway_failure_alarm(&id));
            limits.check_not_blocked(&id, ip).unwrap();
        }
        assert_eq!(alarms, 1, "past 20 failures, one alarm within the minute");
        clock.advance(Duration::from_secs(61));
        let ip = IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 1));
        for _ in 0..21 {
            let _ = limits.record_failure(&id, ip);
            alarms += usize::from(limits.gateway_failure_alarm(&id));
        }
        assert_eq!(alarms, 2);
        assert!(!limits.gateway_failure_alarm(&gw("*OTHER12")));
    }
}
