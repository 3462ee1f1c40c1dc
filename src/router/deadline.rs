//! Deadline budgets: every attempt runs within a window of the request's deadline, so a target
//! that hangs never eats the time of the targets after it.

/// What the request brings to every attempt besides its body.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions<'a> {
    /// When the request must be answered: its arrival plus the route's total timeout.
    pub deadline: tokio::time::Instant,
    /// The client's `x-mock-fault` header (forwarded to simulated providers only).
    pub sim_faults: Option<&'a str>,
}

/// The end of the next target's window. The last target gets all that is left; otherwise each
/// remaining target keeps twice the next one's share, so with two targets the first gets a
/// third of the deadline, and a later (last-chance) target always gets more than an earlier one.
pub fn window_end(
    now: tokio::time::Instant,
    deadline: tokio::time::Instant,
    remaining: usize,
) -> tokio::time::Instant {
    if remaining == 0 {
        return deadline;
    }
    let left = deadline.saturating_duration_since(now);
    let shares = 1 + 2 * u32::try_from(remaining)
        .unwrap_or(u32::MAX / 4)
        .min(1 << 20);
    (now + left / shares).min(deadline)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn windows_keep_a_reserve_for_the_targets_after() {
        let now = tokio::time::Instant::now();
        let deadline = now + Duration::from_secs(30);
        let w = |remaining| window_end(now, deadline, remaining) - now;
        assert_eq!(w(0), Duration::from_secs(30), "the last target gets all");
        assert_eq!(
            w(1),
            Duration::from_secs(10),
            "two targets: the fallback by ~10 s"
        );
        assert_eq!(w(2), Duration::from_secs(6));
        let past = window_end(deadline + Duration::from_secs(1), deadline, 3);
        assert_eq!(past, deadline, "never beyond the deadline");
    }
}
