//! One caller's meters: spend this UTC day and month, the request and token buckets, and the
//! requests in flight.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::config::KeyPolicy;

#[derive(Debug, Default)]
pub struct Meter {
    in_flight: Arc<AtomicU32>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    day: u64,
    spent_day: f64,
    /// year * 12 + month - 1
    month: u64,
    spent_month: f64,
    /// Token buckets (`None` until first used: they start full).
    requests: Option<Bucket>,
    tokens: Option<Bucket>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    level: f64,
    at: Instant,
}

impl Bucket {
    /// The level now, refilled at `per_minute / 60` a second up to `per_minute`.
    fn refill(b: &mut Option<Bucket>, per_minute: u32, now: Instant) -> &mut Bucket {
        let cap = f64::from(per_minute);
        let b = b.get_or_insert(Bucket {
            level: cap,
            at: now,
        });
        let secs = now.saturating_duration_since(b.at).as_secs_f64();
        b.level = (b.level + secs * cap / 60.0).min(cap);
        b.at = now;
        b
    }

    /// Time until the level reaches `want`.
    fn wait(&self, want: f64, per_minute: u32) -> Duration {
        let rate = f64::from(per_minute) / 60.0;
        Duration::from_secs_f64(((want - self.level) / rate).clamp(0.0, 86_400.0))
    }
}

/// Why a request was refused, and how long until it could pass.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    Budget {
        /// "daily" or "monthly"
        period: &'static str,
        limit_usd: f64,
        spent_usd: f64,
        retry_after: Duration,
    },
    Rate {
        /// "requests" or "tokens"
        what: &'static str,
        per_minute: u32,
        retry_after: Duration,
    },
    Concurrency {
        max: u32,
    },
}

/// A request of the key in flight; released on drop.
pub struct KeyPermit(Option<Arc<AtomicU32>>);

impl Drop for KeyPermit {
    fn drop(&mut self) {
        if let Some(n) = &self.0 {
            n.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl State {
    /// Starts a new day or month when `now` is in one.
    fn roll(&mut self, now_unix: u64) {
        let day = utc_day(now_unix);
        if day != self.day {
            self.day = day;
            self.spent_day = 0.0;
        }
        let (y, m) = utc_month(now_unix);
        let month = y * 12 + u64::from(m) - 1;
        if month != self.month {
            self.month = month;
            self.spent_month = 0.0;
        }
    }
}

impl Meter {
    pub fn admit(&self, policy: &KeyPolicy, now_unix: u64) -> Result<KeyPermit, Refusal> {
        let now = Instant::now();
        let mut s = self.state.lock();
        s.roll(now_unix);
        if let Some(limit) = policy.budget_usd_per_day {
            if s.spent_day >= limit {
                return Err(Refusal::Budget {
                    period: "daily",
                    limit_usd: limit,
                    spent_usd: s.spent_day,
                    retry_after: Duration::from_secs((utc_day(now_unix) + 1) * 86_400 - now_unix),
                });
            }
        }
        if let Some(limit) = policy.budget_usd_per_month {
            if s.spent_month >= limit {
                return Err(Refusal::Budget {
                    period: "monthly",
                    limit_usd: limit,
                    spent_usd: s.spent_month,
                    retry_after: Duration::from_secs(
                        next_month_start(now_unix).saturating_sub(now_unix),
                    ),
                });
            }
        }
        if let Some(max) = policy.max_concurrent {
            if self.in_flight.load(Ordering::Acquire) >= max {
                return Err(Refusal::Concurrency { max });
            }
        }
        if let Some(tpm) = policy.tokens_per_minute {
            let b = Bucket::refill(&mut s.tokens, tpm, now);
            if b.level < 1.0 {
                return Err(Refusal::Rate {
                    what: "tokens",
                    per_minute: tpm,
                    retry_after: b.wait(1.0, tpm),
                });
            }
        }
        if let Some(rpm) = policy.requests_per_minute {
            let b = Bucket::refill(&mut s.requests, rpm, now);
            if b.level < 1.0 {
                return Err(Refusal::Rate {
                    what: "requests",
                    per_minute: rpm,
                    retry_after: b.wait(1.0, rpm),
                });
            }
            b.level -= 1.0;
        }
        drop(s);
        if policy.max_concurrent.is_none() {
            return Ok(KeyPermit(None));
        }
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Ok(KeyPermit(Some(self.in_flight.clone())))
    }

    /// A recorded request's cost (at `at_unix`) and tokens.
    pub fn charge(&self, at_unix: u64, cost_usd: f64, tokens: u64) {
        let mut s = self.state.lock();
        let now_unix = crate::chat::unix_now();
        s.roll(now_unix);
        if cost_usd.is_finite() && cost_usd > 0.0 {
            if utc_day(at_unix) == s.day {
                s.spent_day += cost_usd;
            }
            let (y, m) = utc_month(at_unix);
            if y * 12 + u64::from(m) - 1 == s.month {
                s.spent_month += cost_usd;
            }
        }
        if tokens > 0 {
            if let Some(b) = &mut s.tokens {
                b.level -= tokens as f64;
            }
        }
    }

    /// Spend today and this month (UTC).
    pub fn spent(&self, now_unix: u64) -> (f64, f64) {
        let mut s = self.state.lock();
        s.roll(now_unix);
        (s.spent_day, s.spent_month)
    }
}

pub fn utc_day(unix: u64) -> u64 {
    unix / 86_400
}

/// (year, month 1..=12) of a unix time, UTC (H. Hinnant's civil-from-days).
pub fn utc_month(unix: u64) -> (u64, u32) {
    let z = (unix / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year.max(0) as u64, month as u32)
}

/// Unix time of the first second of the month after the one `unix` is in.
pub fn next_month_start(unix: u64) -> u64 {
    let (y, m) = utc_month(unix);
    let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    days_from_civil(y as i64, m) * 86_400
}

fn days_from_civil(y: i64, m: u32) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468).max(0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_and_their_ends() {
        // 2024-02-29 12:00 UTC
        let t = 1_709_208_000;
        assert_eq!(utc_month(t), (2024, 2));
        assert_eq!(next_month_start(t), 1_709_251_200); // 2024-03-01
        assert_eq!(next_month_start(1_703_980_800), 1_704_067_200); // 2023-12-31 -> 2024-01-01
    }

    #[test]
    fn budgets_rates_and_concurrency() {
        let m = Meter::default();
        let now = crate::chat::unix_now();
        let p = KeyPolicy {
            budget_usd_per_day: Some(1.0),
            requests_per_minute: Some(2),
            max_concurrent: Some(1),
            ..KeyPolicy::default()
        };
        let first = m.admit(&p, now).unwrap();
        assert_eq!(
            m.admit(&p, now).err(),
            Some(Refusal::Concurrency { max: 1 })
        );
        drop(first);
        let _second = m.admit(&p, now).unwrap();
        let Err(Refusal::Rate {
            what, retry_after, ..
        }) = m.admit(
            &KeyPolicy {
                max_concurrent: None,
                ..p.clone()
            },
            now,
        )
        else {
            panic!("third request within the minute passed")
        };
        assert_eq!(what, "requests");
        assert!(retry_after > Duration::from_secs(20) && retry_after <= Duration::from_secs(30));
        m.charge(now, 1.5, 0);
        let p2 = KeyPolicy {
            budget_usd_per_day: Some(1.0),
            ..KeyPolicy::default()
        };
        assert!(matches!(
            m.admit(&p2, now),
            Err(Refusal::Budget {
                period: "daily",
                ..
            })
        ));
        let tpm = KeyPolicy {
            tokens_per_minute: Some(600),
            ..KeyPolicy::default()
        };
        let n = Meter::default();
        drop(n.admit(&tpm, now).unwrap());
        n.charge(now, 0.0, 1200);
        let Err(Refusal::Rate {
            what: "tokens",
            retry_after,
            ..
        }) = n.admit(&tpm, now)
        else {
            panic!("a key in token debt passed")
        };
        // 601 tokens to make up at 10 a second.
        assert!(retry_after >= Duration::from_secs(59), "{retry_after:?}");
    }
}
