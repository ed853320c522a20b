//! Which visitors each rollup row has counted today: the exact distinct-visitor count
//! of a row is "keys seen for the first time". A key is a 64-bit hash of (site, day,
//! dimension, value, visitor); the visitor id changes with the daily salt, so only
//! today's and yesterday's keys can still recur.
//!
//! The set in memory decides while the writer runs: a key new to it adds a visitor at
//! once, and is appended to the `unique_keys` table with the other derived rows (an
//! append, not a scattered B-tree insert: 8 bytes written per key). At start, and after
//! a failed write, the set is loaded back from that table.
//!
//! Bound: at most `ingest.max_unique_keys` keys (10–20 bytes each in memory). Keys
//! beyond it are decided by the `uniques` B-tree in the store, as all keys were before
//! (exact, at the cost of a scattered page write per new key), until a new day frees
//! the memory of the day before yesterday. Every counted key is in exactly one of the
//! two places, so "new" never depends on which one answered.

use std::collections::HashSet;

/// The keys are hashes already (keyed by the secret daily salt): a fixed fast hasher.
type Keys = HashSet<i64, foldhash::fast::FixedState>;

#[derive(Debug)]
pub struct SeenKeys {
    /// At most today and yesterday: a short list, searched without hashing.
    days: Vec<(i64, Keys)>,
    /// The table of the last day dropped, for the next day to fill.
    spare: Option<Keys>,
    newest: i64,
    len: usize,
    cap: usize,
}

impl Default for SeenKeys {
    fn default() -> Self {
        SeenKeys::new(usize::MAX)
    }
}

/// What the memory says of a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// Counted before.
    Yes,
    /// Not counted before; remembered now.
    First,
    /// Unknown here and no room to remember it: the store decides.
    Full,
}

impl SeenKeys {
    pub fn new(cap: usize) -> Self {
        SeenKeys {
            days: Vec::new(),
            spare: None,
            newest: i64::MIN,
            len: 0,
            cap,
        }
    }

    /// Loads stored `(day, key)` pairs; returns those past the bound, which the caller
    /// must hand to the store's B-tree.
    pub fn load(&mut self, pairs: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
        let mut spill = Vec::new();
        for (day, key) in pairs {
            if self.first(day, key) == Seen::Full {
                spill.push((day, key));
            }
        }
        spill
    }

    pub fn first(&mut self, day: i64, key: i64) -> Seen {
        if day > self.newest {
            self.newest = day;
            // Visitor ids of days before yesterday can no longer occur (their salt is gone).
            // `SqliteWriter::unique_keys` loads only what this keeps: change both.
            // A day that ends keeps its table, emptied, for the next new day: a day's set
            // grows to about the size of the one before, and growing a set of a million
            // keys from nothing rehashes every key several times (an import of many days).
            let (keep, gone): (Vec<_>, Vec<_>) =
                self.days.drain(..).partition(|(d, _)| *d >= day - 1);
            self.days = keep;
            self.spare = gone
                .into_iter()
                .map(|(_, k)| k)
                .max_by_key(|k| k.capacity());
            self.len = self.days.iter().map(|(_, k)| k.len()).sum();
        }
        let i = match self.days.iter().position(|(d, _)| *d == day) {
            Some(i) => i,
            None => {
                let mut keys = self.spare.take().unwrap_or_default();
                keys.clear();
                self.days.push((day, keys));
                self.days.len() - 1
            }
        };
        let keys = &mut self.days[i].1;
        if self.len >= self.cap {
            return if keys.contains(&key) {
                Seen::Yes
            } else {
                Seen::Full
            };
        }
        // One probe: most keys a batch checks are new or seen, rarely both looked up.
        if keys.insert(key) {
            self.len += 1;
            Seen::First
        } else {
            Seen::Yes
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_counts_once_per_day_and_old_days_are_dropped() {
        let mut s = SeenKeys::default();
        assert!(s.load(vec![(10, 1), (10, 2)]).is_empty());
        assert_eq!(s.first(10, 1), Seen::Yes);
        assert_eq!(s.first(10, 3), Seen::First);
        assert_eq!(s.first(11, 1), Seen::First, "another day");
        assert_eq!(s.len(), 4);
        assert_eq!(s.first(12, 9), Seen::First);
        assert_eq!(s.len(), 2, "day 10 dropped once day 12 began");
        // Day 12 took day 10's table: none of day 10's keys came with it.
        assert_eq!(s.first(12, 1), Seen::First, "day 10's key is new on day 12");
        assert_eq!(s.first(12, 3), Seen::First);
        assert_eq!(s.first(13, 1), Seen::First, "and day 11's on day 13");
        assert_eq!(s.first(13, 1), Seen::Yes);
        assert_eq!(s.len(), 4, "days 12 and 13");
    }

    #[test]
    fn past_the_bound_the_store_decides_and_a_new_day_makes_room() {
        let mut s = SeenKeys::new(2);
        assert_eq!(s.load(vec![(10, 1), (10, 2), (10, 3)]), vec![(10, 3)]);
        assert_eq!(s.first(10, 1), Seen::Yes, "remembered keys still answer");
        assert_eq!(s.first(10, 4), Seen::Full);
        assert_eq!(s.first(11, 4), Seen::Full, "yesterday still fills it");
        assert_eq!(s.first(12, 4), Seen::First, "day 10 gone: room again");
    }
}
