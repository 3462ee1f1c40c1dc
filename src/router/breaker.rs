//! Circuit breaker for one target (provider + model).
//!
//! ```text
//!   Closed   --(failure_threshold consecutive failures, or one provider fault)--> Open
//!   Open     --(cooldown elapsed)--> HalfOpen: one probe request is let through
//!   HalfOpen --probe succeeds--> Closed (the cooldown starts short again)
//!   HalfOpen --probe fails-->    Open, for twice the last cooldown (at most max_cooldown)
//! ```
//! Open targets are skipped by the failover loop, so recovery needs no traffic of its own: the
//! first request after the cooldown is the probe. The first cooldown is short, so a target that
//! flapped is back in use within seconds; each failed probe doubles it, so a target that stays
//! down costs one probe per `max_cooldown`. A probe that never reports (its client went away)
//! stops blocking others after another cooldown; one whose request ran out of the request's own
//! deadline reports nothing either way ([`Breaker::release`]).
//!
//! Every method has an `_at(now)` twin for the tests, which drive the clock.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    first_cooldown: Duration,
    max_cooldown: Duration,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    consecutive_failures: u32,
    opened_at: Option<Instant>,
    probe_started: Option<Instant>,
    /// Open periods in a row (1 from the first opening); 0 while closed.
    opens: u32,
}

impl Inner {
    fn cooldown(&self, first: Duration, max: Duration) -> Duration {
        let doublings = self.opens.saturating_sub(1).min(16);
        first.saturating_mul(1 << doublings).min(max.max(first))
    }

    fn open(&mut self, now: Instant) {
        self.opened_at = Some(now);
        self.probe_started = None;
        self.opens = self.opens.saturating_add(1);
    }
}

impl Breaker {
    pub fn new(threshold: u32, first_cooldown: Duration, max_cooldown: Duration) -> Self {
        Breaker {
            threshold: threshold.max(1),
            first_cooldown,
            max_cooldown,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// May a request go to this target now? In half-open state only one probe at a time.
    pub fn try_acquire(&self) -> bool {
        self.try_acquire_at(Instant::now())
    }

    pub fn try_acquire_at(&self, now: Instant) -> bool {
        let mut s = self.inner.lock();
        let Some(opened) = s.opened_at else {
            return true;
        };
        let cooldown = s.cooldown(self.first_cooldown, self.max_cooldown);
        if now.saturating_duration_since(opened) < cooldown {
            return false;
        }
        match s.probe_started {
            Some(p) if now.saturating_duration_since(p) < cooldown => false,
            _ => {
                s.probe_started = Some(now);
                true
            }
        }
    }

    pub fn on_success(&self) {
        let mut s = self.inner.lock();
        *s = Inner::default();
    }

    /// A failure that is the target's: counts toward opening; a failed probe reopens for longer.
    pub fn on_failure(&self) {
        self.on_failure_at(Instant::now());
    }

    pub fn on_failure_at(&self, now: Instant) {
        let mut s = self.inner.lock();
        s.consecutive_failures = s.consecutive_failures.saturating_add(1);
        match (s.opened_at, s.probe_started) {
            (None, _) if s.consecutive_failures >= self.threshold => s.open(now),
            (None, _) => {}
            (Some(_), Some(_)) => s.open(now),
            // Open, no probe out: a request that started before the opening, failing late.
            (Some(_), None) => {}
        }
    }

    /// A fault that no retry will cure (the provider refused our key, our credit, our model):
    /// open now, whatever the count.
    pub fn trip(&self) {
        self.trip_at(Instant::now());
    }

    pub fn trip_at(&self, now: Instant) {
        let mut s = self.inner.lock();
        s.consecutive_failures = s.consecutive_failures.saturating_add(1);
        if s.opened_at.is_none() || s.probe_started.is_some() {
            s.open(now);
        }
    }

    /// The attempt ended for a reason that says nothing about the target (the request's own
    /// deadline): it neither counts nor keeps the probe slot.
    pub fn release(&self) {
        self.inner.lock().probe_started = None;
    }

    pub fn state(&self) -> BreakerState {
        self.state_at(Instant::now())
    }

    pub fn state_at(&self, now: Instant) -> BreakerState {
        let s = self.inner.lock();
        match s.opened_at {
            None => BreakerState::Closed,
            Some(o)
                if now.saturating_duration_since(o)
                    < s.cooldown(self.first_cooldown, self.max_cooldown) =>
            {
                BreakerState::Open
            }
            Some(_) => BreakerState::HalfOpen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn opens_after_threshold_probes_after_cooldown_and_closes() {
        let b = Breaker::new(2, Duration::ZERO, Duration::ZERO);
        assert!(b.try_acquire());
        b.on_failure();
        assert_eq!(b.state(), BreakerState::Closed);
        b.on_failure();
        // cooldown 0: immediately half-open, one probe allowed at a time
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(b.try_acquire());
        b.on_failure();
        assert!(b.try_acquire());
        b.on_success();
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn open_breaker_refuses_until_cooldown() {
        let b = Breaker::new(1, Duration::from_secs(3600), Duration::from_secs(3600));
        b.on_failure();
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!b.try_acquire());
    }

    #[test]
    fn each_failed_probe_doubles_the_cooldown_up_to_the_cap() {
        let b = Breaker::new(1, 2 * S, 30 * S);
        let t0 = Instant::now();
        b.on_failure_at(t0);
        let mut opened = t0;
        for cooldown in [2, 4, 8, 16, 30, 30] {
            let cooldown = cooldown * S;
            assert!(
                !b.try_acquire_at(opened + cooldown - S / 10),
                "{cooldown:?}"
            );
            assert_eq!(b.state_at(opened + cooldown - S / 10), BreakerState::Open);
            let probe = opened + cooldown;
            assert!(b.try_acquire_at(probe), "{cooldown:?}");
            assert!(!b.try_acquire_at(probe), "one probe at a time");
            b.on_failure_at(probe);
            opened = probe;
        }
        // A successful probe closes it, and the next opening starts short again.
        assert!(b.try_acquire_at(opened + 30 * S));
        b.on_success();
        let t1 = opened + 31 * S;
        b.on_failure_at(t1);
        assert!(b.try_acquire_at(t1 + 2 * S));
    }

    #[test]
    fn trips_at_once_and_ignores_late_failures_and_released_probes() {
        let b = Breaker::new(5, 2 * S, 30 * S);
        let t0 = Instant::now();
        b.trip_at(t0);
        assert_eq!(b.state_at(t0), BreakerState::Open);
        // Requests that started before the opening and fail later do not extend it.
        b.on_failure_at(t0 + S);
        assert!(b.try_acquire_at(t0 + 2 * S));
        // The probe ran out of its request's deadline: no verdict, the slot is free again.
        b.release();
        assert!(b.try_acquire_at(t0 + 2 * S));
        b.on_success();
        assert_eq!(b.state_at(t0 + 2 * S), BreakerState::Closed);
    }
}
