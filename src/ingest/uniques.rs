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
//! In memory a day's keys are kept by visitor (see [`BY_VISITOR`]): a hit's keys are all
//! its visitor's, so checking them is one lookup and a short scan.
//!
//! Bound: at most `ingest.max_unique_keys` keys (10–30 bytes each in memory). Keys
//! beyond it are decided by the store ([`Seen::Full`]: `visitor_uniques`, a visitor's
//! keys of a day together, read and appended in key order with the other derived rows —
//! exact, at a range read and about a page write for each visitor of a write; keys
//! loaded back at start past the bound go to `uniques`, without their visitor). From
//! then on that day is the store's for every key memory does not hold (`Day::open`;
//! at start, the days those tables hold keys of), also once memory has room again — a
//! new day frees the day before yesterday's keys, a restart may raise the bound — so
//! every counted key is in exactly one of those places, and "new" never depends on
//! which one answered.

use std::collections::{HashMap, HashSet};

/// The keys are hashes already (keyed by the secret daily salt): a fixed fast hasher.
type Keys = HashSet<i64, foldhash::fast::FixedState>;

/// A visitor's keys are kept together, in a short list, up to this many; the next go
/// to the day's set. A hit checks about fifteen keys of one visitor: together they are
/// one lookup and a scan of a few cache lines, where a set of millions of keys took a
/// cache miss for each.
const BY_VISITOR: usize = 48;

/// The keys of one visitor on one day.
#[derive(Debug, Default)]
struct Visitor {
    keys: Vec<i64>,
    /// Some of its keys went to the day's set (past [`BY_VISITOR`]).
    spilled: bool,
}

/// One day's keys: by visitor, and a set for the keys loaded from the store (their
/// visitor is not stored) and those of visitors with more than [`BY_VISITOR`].
#[derive(Debug, Default)]
struct Day {
    day: i64,
    visitors: HashMap<i64, Visitor, foldhash::fast::FixedState>,
    rest: Keys,
    /// Keys were loaded into `rest`: every visitor's key may be there.
    loaded: bool,
    /// The store holds keys of this day that memory does not (memory had no room for
    /// one, or keys loaded back went past the bound): memory answers for the keys it
    /// holds, the store for every other key of the day — also once memory has room
    /// again (a bound raised since a restart, a new day freeing the day before
    /// yesterday's keys), so a key never counts in both.
    open: bool,
}

impl Day {
    fn clear(&mut self, day: i64) {
        self.day = day;
        self.visitors.clear();
        self.rest.clear();
        self.loaded = false;
        self.open = false;
    }
}

#[derive(Debug)]
pub struct SeenKeys {
    /// At most today and yesterday: a short list, searched without hashing.
    days: Vec<Day>,
    /// The tables of the last day dropped, for the next day to fill.
    spare: Option<Day>,
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
            // The day first: a new one drops older days and their keys from `len`.
            let i = self.day(day);
            let full = self.len >= self.cap;
            let d = &mut self.days[i];
            if d.rest.contains(&key) {
                continue;
            }
            if full {
                d.open = true;
                spill.push((day, key));
                continue;
            }
            d.rest.insert(key);
            d.loaded = true;
            self.len += 1;
        }
        spill
    }

    /// Where in `days` the tables of `day` are, made (and days before yesterday dropped)
    /// when it is new.
    fn day(&mut self, day: i64) -> usize {
        if day > self.newest {
            self.newest = day;
            // Visitor ids of days before yesterday can no longer occur (their salt is gone).
            // `SqliteWriter::unique_keys` loads only what this keeps: change both.
            // A day that ends keeps its tables, emptied, for the next new day: a day's set
            // grows to about the size of the one before, and growing a set of a million
            // keys from nothing rehashes every key several times (an import of many days).
            let (keep, gone): (Vec<_>, Vec<_>) =
                self.days.drain(..).partition(|d| d.day >= day - 1);
            self.days = keep;
            self.spare = gone
                .into_iter()
                .max_by_key(|d| d.visitors.capacity() + d.rest.capacity());
            self.len = self
                .days
                .iter()
                .map(|d| d.rest.len() + d.visitors.values().map(|v| v.keys.len()).sum::<usize>())
                .sum();
        }
        if let Some(i) = self.days.iter().position(|d| d.day == day) {
            return i;
        }
        let mut d = self.spare.take().unwrap_or_default();
        d.clear(day);
        self.days.push(d);
        self.days.len() - 1
    }

    /// Whether `key`, a key of `visitor`'s on `day`, was counted before; remembered now
    /// when it was not and there is room.
    pub fn first(&mut self, day: i64, visitor: i64, key: i64) -> Seen {
        // The day first: a new one drops older days and their keys from `len`.
        let i = self.day(day);
        let full = self.len >= self.cap;
        let d = &mut self.days[i];
        let v = d.visitors.get_mut(&visitor);
        let (in_list, spilled) = v
            .as_ref()
            .map_or((false, false), |v| (v.keys.contains(&key), v.spilled));
        if in_list || ((spilled || d.loaded) && d.rest.contains(&key)) {
            return Seen::Yes;
        }
        if d.open || full {
            d.open = true;
            return Seen::Full;
        }
        match v {
            Some(v) if v.keys.len() >= BY_VISITOR => {
                v.spilled = true;
                d.rest.insert(key);
            }
            Some(v) => v.keys.push(key),
            None => {
                let mut keys = Vec::with_capacity(16);
                keys.push(key);
                d.visitors.insert(
                    visitor,
                    Visitor {
                        keys,
                        spilled: false,
                    },
                );
            }
        }
        self.len += 1;
        Seen::First
    }

    /// Marks `day` as one of which the store holds keys memory does not (see
    /// `Day::open`). Days older than yesterday are not held, and are left alone.
    pub fn open(&mut self, day: i64) {
        if day >= self.newest.saturating_sub(1) {
            let i = self.day(day);
            self.days[i].open = true;
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

    /// Visitor 7 for tests where the visitor does not matter.
    const V: i64 = 7;

    #[test]
    fn a_key_counts_once_per_day_and_old_days_are_dropped() {
        let mut s = SeenKeys::default();
        assert!(s.load(vec![(10, 1), (10, 2)]).is_empty());
        assert_eq!(s.first(10, V, 1), Seen::Yes);
        assert_eq!(s.first(10, V, 3), Seen::First);
        assert_eq!(s.first(11, V, 1), Seen::First, "another day");
        assert_eq!(s.len(), 4);
        assert_eq!(s.first(12, V, 9), Seen::First);
        assert_eq!(s.len(), 2, "day 10 dropped once day 12 began");
        // Day 12 took day 10's table: none of day 10's keys came with it.
        assert_eq!(
            s.first(12, V, 1),
            Seen::First,
            "day 10's key is new on day 12"
        );
        assert_eq!(s.first(12, V, 3), Seen::First);
        assert_eq!(s.first(13, V, 1), Seen::First, "and day 11's on day 13");
        assert_eq!(s.first(13, V, 1), Seen::Yes);
        assert_eq!(s.len(), 4, "days 12 and 13");
    }

    #[test]
    fn past_the_bound_the_store_decides_and_a_new_day_makes_room() {
        let mut s = SeenKeys::new(2);
        assert_eq!(s.load(vec![(10, 1), (10, 2), (10, 3)]), vec![(10, 3)]);
        assert_eq!(s.first(10, V, 1), Seen::Yes, "remembered keys still answer");
        assert_eq!(s.first(10, V, 4), Seen::Full);
        assert_eq!(s.first(11, V, 4), Seen::Full, "yesterday still fills it");
        assert_eq!(s.first(12, V, 4), Seen::First, "day 10 gone: room again");
        assert_eq!(
            s.first(11, V, 5),
            Seen::Full,
            "but not for day 11, whose keys the store holds some of"
        );
        assert_eq!(s.first(11, V, 6), Seen::Full);
        assert_eq!(s.first(12, V, 5), Seen::First, "day 12's keys are memory's");
        assert_eq!(s.first(12, V, 4), Seen::Yes);
    }

    #[test]
    fn a_day_the_store_holds_keys_of_is_decided_there_whatever_the_room() {
        // A restart with a raised bound: memory has room, but the store holds some of
        // day 10's keys (past the bound before the restart) and none of day 11's.
        let mut s = SeenKeys::new(1_000);
        assert!(s.load(vec![(10, 1), (11, 2)]).is_empty());
        s.open(10);
        s.open(3);
        assert_eq!(s.first(10, V, 1), Seen::Yes, "held by memory");
        assert_eq!(s.first(10, V, 9), Seen::Full, "the store's to decide");
        assert_eq!(s.first(11, V, 9), Seen::First, "day 11 is memory's");
        assert_eq!(s.len(), 3, "a day too old to be held was left alone");
        assert_eq!(s.days.len(), 2);
    }

    /// The keys as one set a day, which is what the grouping by visitor must answer
    /// like, key for key.
    struct Plain {
        days: Vec<(i64, HashSet<i64>)>,
        /// Days of which a key went to the store: the store decides all they lack.
        open: HashSet<i64>,
        newest: i64,
        cap: usize,
    }

    impl Plain {
        fn len(&self) -> usize {
            self.days.iter().map(|(_, k)| k.len()).sum()
        }
        fn first(&mut self, day: i64, key: i64) -> Seen {
            if day > self.newest {
                self.newest = day;
                self.days.retain(|(d, _)| *d >= day - 1);
                self.open.retain(|d| *d >= day - 1);
            }
            let full = self.len() >= self.cap;
            if !self.days.iter().any(|(d, _)| *d == day) {
                self.days.push((day, HashSet::new()));
            }
            let keys = &mut self.days.iter_mut().find(|(d, _)| *d == day).unwrap().1;
            if keys.contains(&key) {
                Seen::Yes
            } else if full || self.open.contains(&day) {
                self.open.insert(day);
                Seen::Full
            } else {
                keys.insert(key);
                Seen::First
            }
        }
    }

    #[test]
    fn keys_grouped_by_visitor_answer_as_one_set_a_day_does() {
        // xorshift: the same sequence on every run.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        for cap in [usize::MAX, 3_000, 500] {
            let mut grouped = SeenKeys::new(cap);
            let mut plain = Plain {
                days: Vec::new(),
                open: HashSet::new(),
                newest: i64::MIN,
                cap,
            };
            // Keys stored by an earlier run: their visitor is not known.
            let stored: Vec<(i64, i64)> = (0..400).map(|_| (100, next(5_000) as i64)).collect();
            let spill = grouped.load(stored.clone());
            let mut plain_spill = Vec::new();
            for (d, k) in stored {
                if plain.first(d, k) == Seen::Full {
                    plain_spill.push((d, k));
                }
            }
            assert_eq!(spill, plain_spill, "cap {cap}");
            let (mut firsts, mut spilled_visitors) = (0, 0);
            let mut day = 100;
            for i in 0..40_000 {
                if i % 10_000 == 9_999 {
                    day += 1;
                }
                // A few visitors with hundreds of keys (past BY_VISITOR), most with few.
                let visitor = if next(10) == 0 { next(3) } else { next(2_000) } as i64;
                // A key belongs to one visitor (the hash includes it) and may recur.
                let key = visitor * 10_000 + next(if visitor < 3 { 300 } else { 20 }) as i64;
                // A day out of order now and then, as an import's may be.
                let d = if next(50) == 0 { day - 1 } else { day };
                let want = plain.first(d, key);
                assert_eq!(grouped.first(d, visitor, key), want, "cap {cap}, step {i}");
                assert_eq!(grouped.len(), plain.len(), "cap {cap}, step {i}");
                firsts += usize::from(want == Seen::First);
            }
            for d in &grouped.days {
                spilled_visitors += d.visitors.values().filter(|v| v.spilled).count();
            }
            assert!(firsts >= 500, "cap {cap}: {firsts} first keys");
            if cap == usize::MAX {
                assert!(
                    spilled_visitors > 0,
                    "some visitors went past {BY_VISITOR} keys"
                );
            }
        }
    }
}
