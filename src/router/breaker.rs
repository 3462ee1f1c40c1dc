//! Circuit breaker for one target (provider + model).
//!
//! ```text
//!   Closed --(failure_threshold consecutive failures)--> Open
//!   Open   --(cooldown elapsed)--> HalfOpen: one probe request is let through
//!   HalfOpen --probe succeeds--> Closed
//!   HalfOpen --probe fails-->    Open (cooldown starts again)
//! ```
//! Open targets are skipped by the failover loop, so recovery needs no traffic of its own: the
//! first request after the cooldown is the probe. A probe that never reports (its client went
//! away) stops blocking others after another cooldown.

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
    cooldown: Duration,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    consecutive_failures: u32,
    opened_at: Option<Instant>,
    probe_started: Option<Instant>,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Breaker {
            threshold: threshold.max(1),
            cooldown,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// May a request go to this target now? In half-open state only one probe at a time.
    pub fn try_acquire(&self) -> bool {
        let now = Instant::now();
        let mut s = self.inner.lock();
        let Some(opened) = s.opened_at else {
            return true;
        };
        if now.duration_since(opened) < self.cooldown {
            return false;
        }
        match s.probe_started {
            Some(p) if now.duration_since(p) < self.cooldown => false,
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

    pub fn on_failure(&self) {
        let now = Instant::now();
        let mut s = self.inner.lock();
        s.consecutive_failures = s.consecutive_failures.saturating_add(1);
        if s.probe_started.is_some() || s.consecutive_failures >= self.threshold {
            s.opened_at = Some(now);
            s.probe_started = None;
        }
    }

    pub fn state(&self) -> BreakerState {
        let s = self.inner.lock();
        match s.opened_at {
            None => BreakerState::Closed,
            Some(o) if o.elapsed() < self.cooldown => BreakerState::Open,
            Some(_) => BreakerState::HalfOpen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_probes_after_cooldown_and_closes() {
        let b = Breaker::new(2, Duration::from_millis(0));
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
        let b = Breaker::new(1, Duration::from_secs(3600));
        b.on_failure();
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!b.try_acquire());
    }
}
