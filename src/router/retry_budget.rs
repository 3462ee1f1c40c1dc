//! A retry budget for one target: retries may be at most `ratio` of its requests over a sliding
//! window, plus a small floor so a quiet target can still retry. It stops retry storms: when a
//! target fails for everyone, each request's retries would multiply its load exactly when it
//! can least take it; with the budget spent, requests move on to the next target instead.
//! (Linkerd and Envoy budget retries the same way.)
//!
//! The window is `BUCKETS` buckets of `window / BUCKETS`; a bucket is reused when its slot
//! comes round again, so memory and time per call are constant.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

const BUCKETS: usize = 10;

#[derive(Debug)]
pub struct RetryBudget {
    ratio: f64,
    floor: u32,
    bucket: Duration,
    origin: Instant,
    buckets: Mutex<[Bucket; BUCKETS]>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Bucket {
    slot: u64,
    requests: u32,
    retries: u32,
}

impl RetryBudget {
    pub fn new(ratio: f64, floor: u32, window: Duration) -> RetryBudget {
        RetryBudget {
            ratio: ratio.max(0.0),
            floor,
            bucket: (window / BUCKETS as u32).max(Duration::from_millis(1)),
            origin: Instant::now(),
            buckets: Mutex::new([Bucket::default(); BUCKETS]),
        }
    }

    fn slot(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.origin).as_nanos();
        u64::try_from(since / self.bucket.as_nanos().max(1)).unwrap_or(u64::MAX)
    }

    /// A first attempt at the target.
    pub fn on_request(&self) {
        self.on_request_at(Instant::now());
    }

    pub fn on_request_at(&self, now: Instant) {
        let slot = self.slot(now);
        let mut b = self.buckets.lock();
        let cur = current(&mut b, slot);
        cur.requests = cur.requests.saturating_add(1);
    }

    /// May the target be retried now? Counts the retry when it may.
    pub fn try_retry(&self) -> bool {
        self.try_retry_at(Instant::now())
    }

    pub fn try_retry_at(&self, now: Instant) -> bool {
        let slot = self.slot(now);
        let mut b = self.buckets.lock();
        let live = b
            .iter()
            .filter(|x| x.slot + BUCKETS as u64 > slot && x.slot <= slot);
        let (requests, retries) = live.fold((0u64, 0u64), |(q, r), x| {
            (q + u64::from(x.requests), r + u64::from(x.retries))
        });
        let allowed = (self.ratio * requests as f64).floor() as u64;
        if retries >= allowed.max(u64::from(self.floor)) {
            return false;
        }
        let cur = current(&mut b, slot);
        cur.retries = cur.retries.saturating_add(1);
        true
    }
}

/// The bucket of `slot`, emptied first if it last held an older slot.
fn current(b: &mut [Bucket; BUCKETS], slot: u64) -> &mut Bucket {
    let cur = &mut b[(slot % BUCKETS as u64) as usize];
    if cur.slot != slot {
        *cur = Bucket {
            slot,
            ..Bucket::default()
        };
    }
    cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_a_share_of_requests_over_the_window() {
        let b = RetryBudget::new(0.2, 2, Duration::from_secs(10));
        let t0 = b.origin;
        // A quiet target: the floor allows two retries.
        assert!(b.try_retry_at(t0));
        assert!(b.try_retry_at(t0));
        assert!(!b.try_retry_at(t0));
        // Busy: 100 requests allow 20 retries in the window (2 are spent).
        for _ in 0..100 {
            b.on_request_at(t0);
        }
        let granted = (0..50).filter(|_| b.try_retry_at(t0)).count();
        assert_eq!(granted, 18);
        // The window slides: ten seconds later the old buckets no longer count.
        let later = t0 + Duration::from_secs(11);
        assert!(b.try_retry_at(later) && b.try_retry_at(later));
        assert!(!b.try_retry_at(later));
    }
}
