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

/// The hour number (hours since the epoch) of a timestamp.
pub fn hour_of(ts: Millis) -> i64 {
    ts.div_euclid(HOUR_MS)
}
