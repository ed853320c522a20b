//! One injectable clock: production reads the system time, tests pin it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Milliseconds since the Unix epoch, UTC.
pub type Millis = i64;

pub const HOUR_MS: Millis = 3_600_000;
pub const DAY_MS: Millis = 86_400_000;

#[derive(Clone, Debug, Default)]
pub enum Clock {
    #[default]
    System,
    /// A clock that only moves when told to (tests, demo data generation).
    Fixed(Arc<AtomicI64>),
}

impl Clock {
    pub fn fixed(at: Millis) -> Self {
        Clock::Fixed(Arc::new(AtomicI64::new(at)))
    }

    pub fn now_ms(&self) -> Millis {
        match self {
            Clock::System => chrono::Utc::now().timestamp_millis(),
            Clock::Fixed(t) => t.load(Ordering::Relaxed),
        }
    }

    /// Moves a fixed clock; a no-op on the system clock.
    pub fn set(&self, at: Millis) {
        if let Clock::Fixed(t) = self {
            t.store(at, Ordering::Relaxed);
        }
    }
}

/// The UTC day number (days since the epoch) of a timestamp.
pub fn day_of(ts: Millis) -> i64 {
    ts.div_euclid(DAY_MS)
}

/// How long after its end a day's numbers may be kept (wildcard goals, conversion
/// credits): longer than any batch takes from the writer's check of its day to its
/// commit, so nothing lands in a day after it was counted unless marked late.
pub const DAY_SETTLE_MS: Millis = HOUR_MS;

/// The whole days inside `[from, to)` that ended [`DAY_SETTLE_MS`] or more before
/// `now`, as day numbers `[first, end)` (empty when `first >= end`).
pub fn settled_days(from: Millis, to: Millis, now: Millis) -> (i64, i64) {
    let first = from.div_euclid(DAY_MS) + i64::from(from.rem_euclid(DAY_MS) != 0);
    (first, day_of(to).min(day_of(now - DAY_SETTLE_MS)))
}

/// The hour number (hours since the epoch) of a timestamp.
pub fn hour_of(ts: Millis) -> i64 {
    ts.div_euclid(HOUR_MS)
}
