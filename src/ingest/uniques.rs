//! Which visitors each rollup row has counted today: the exact distinct-visitor count
//! of a row is "keys seen for the first time". A key is a 64-bit hash of (site, day,
//! dimension, value, visitor); the visitor id changes with the daily salt, so only
//! today's and yesterday's keys can still recur.
//!
//! The set in memory is the authority while the writer runs: a key new to it adds a
//! visitor at once, and is appended to the `unique_keys` table with the other derived
//! rows (an append, not a scattered B-tree insert: ≈20 bytes written per key). At
//! start, and after a failed write, the set is loaded back from that table.
//!
//! Bound: keys of the live days only (older days are dropped as a new day starts),
//! about 40 bytes each in memory — a visitor who sees 5 pages adds about 20 keys, so
//! 100,000 visitors a day hold about 80 MB.

use std::collections::{HashMap, HashSet};

/// The keys are hashes already (keyed by the secret daily salt): a fixed fast hasher.
type Keys = HashSet<i64, foldhash::fast::FixedState>;

#[derive(Debug, Default)]
pub struct SeenKeys {
    days: HashMap<i64, Keys>,
    newest: i64,
}

impl SeenKeys {
    /// From stored `(day, key)` pairs.
    pub fn load(pairs: impl IntoIterator<Item = (i64, i64)>) -> Self {
        let mut s = SeenKeys::default();
        for (day, key) in pairs {
            s.first(day, key);
        }
        s
    }

    /// Records the key; true if it was not counted yet on `day`.
    pub fn first(&mut self, day: i64, key: i64) -> bool {
        if day > self.newest {
            self.newest = day;
            // Visitor ids of days before yesterday can no longer occur (their salt is gone).
            self.days.retain(|d, _| *d >= day - 1);
        }
        self.days.entry(day).or_default().insert(key)
    }

    pub fn len(&self) -> usize {
        self.days.values().map(Keys::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_counts_once_per_day_and_old_days_are_dropped() {
        let mut s = SeenKeys::load([(10, 1), (10, 2)]);
        assert!(!s.first(10, 1));
        assert!(s.first(10, 3));
        assert!(s.first(11, 1), "another day");
        assert_eq!(s.len(), 4);
        assert!(s.first(12, 9));
        assert_eq!(s.len(), 2, "day 10 dropped once day 12 began");
    }
}
