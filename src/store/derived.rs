//! What the writer derives from committed events and writes beside them: sessions,
//! rollup deltas and unique-visitor keys ([`Derived`]), gathered over one or more
//! batches so that each distinct row is written once.

use super::{RollupKey, Rollups, SESSION_DIMS};
use crate::clock::Millis;

/// The state of a session after a batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionRow {
    pub id: i64,
    pub site_id: i64,
    pub visitor_id: i64,
    pub start_ms: Millis,
    pub last_ms: Millis,
    pub pageviews: i64,
    pub events: i64,
    pub entry_page: String,
    pub exit_page: String,
    /// Session-level dimension values, in [`SESSION_DIMS`] order (see [`Dims`]).
    pub dims: Dims,
}

/// A visit's starting values, in [`SESSION_DIMS`] order (a row written by an older
/// build may hold fewer). Shared: they never change after the visit's first event, and
/// every write of derived rows takes a copy of each visit that had a hit since the last
/// one. Kept in one string, not one allocation each: the thread that writes a visit's
/// row reads them from memory the sessionizer filled on another core, a cache miss per
/// separate string (most of the time spent binding a visit's row, measured on an import).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dims(std::sync::Arc<Packed>);

#[derive(Debug, Default, PartialEq, Eq)]
struct Packed {
    text: String,
    /// Where each value ends in `text`; the first `n` are used.
    ends: [u32; SESSION_DIMS.len()],
    n: u8,
}

impl From<Vec<String>> for Dims {
    fn from(values: Vec<String>) -> Dims {
        Dims::new(values)
    }
}

impl Dims {
    /// The values in order; past [`SESSION_DIMS`]' count, the rest are left out.
    pub fn new<S: AsRef<str>>(values: impl IntoIterator<Item = S>) -> Dims {
        // Held first, so that the text is allocated once at its length (grown value by
        // value, it was reallocated four or five times a visit).
        let mut values = values.into_iter();
        let held: [Option<S>; SESSION_DIMS.len()] = std::array::from_fn(|_| values.next());
        let len = held.iter().flatten().map(|v| v.as_ref().len()).sum();
        let mut p = Packed {
            text: String::with_capacity(len),
            ..Packed::default()
        };
        for v in held.iter().flatten() {
            p.text.push_str(v.as_ref());
            p.ends[usize::from(p.n)] = p.text.len() as u32;
            p.n += 1;
        }
        Dims(std::sync::Arc::new(p))
    }

    /// The `i`th value, if the row has one.
    pub fn get(&self, i: usize) -> Option<&str> {
        let p = &*self.0;
        if i >= usize::from(p.n) {
            return None;
        }
        let start = if i == 0 { 0 } else { p.ends[i - 1] as usize };
        p.text.get(start..p.ends[i] as usize)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    pub fn len(&self) -> usize {
        usize::from(self.0.n)
    }

    pub fn is_empty(&self) -> bool {
        self.0.n == 0
    }
}

impl SessionRow {
    /// A visit of one hit ends where it starts: last time its start time, one event, a
    /// page view if it has an entry page, which is also its exit page. Such a visit has
    /// no `visit_ends` row — readers take these values from its start (`session_rows.sql`)
    /// — so that most visits of a typical site, and almost all of an imported log's,
    /// cost one row instead of two. A visit that goes on gets its end row with its
    /// second hit; its counts never go back.
    pub fn ends_at_start(&self) -> bool {
        self.events == 1
            && self.last_ms == self.start_ms
            && self.exit_page == self.entry_page
            && self.pageviews == i64::from(!self.entry_page.is_empty())
    }
}

/// What events add to the derived tables (sessions, rollups, unique-visitor keys),
/// accumulated in memory over one or more committed event batches and written in one
/// go — one upsert per distinct row, not per event.
#[derive(Debug, Default)]
pub struct Derived {
    pub sessions: Vec<SessionRow>,
    /// Ids of `sessions` whose start row this write leaves alone: stored already as it
    /// is (a visit that went on: only its end is written), or not stored at all (a
    /// visit whose first hit is the only event naming it: readers take its start from
    /// that event, and it has no end row either).
    pub starts_skipped: std::collections::HashSet<i64>,
    pub rollups: Rollups,
    /// Unique-visitor keys counted for the first time, `(day, key)`.
    pub new_keys: Vec<(i64, i64)>,
    /// Keys the writer's memory had no room to decide: new if the store has not
    /// counted them yet (each then adds a visitor to its row as it is written).
    pub overflow: Vec<UniqueCandidate>,
}

/// A unique-visitor key for the store to decide, with the row it counts for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UniqueCandidate {
    pub day: i64,
    /// The visitor the key is of: the store keeps a visitor's keys together.
    pub visitor: i64,
    pub key: i64,
    pub rollup: RollupKey,
}

impl Derived {
    /// Empties it for the next writes and keeps its tables' memory: a server writes
    /// derived rows every second, and tables grown again from nothing each time took
    /// memory the allocator had given back to the system meanwhile, each fresh page
    /// zeroed by the kernel at first touch (`bench_writer`: 40 % fewer page faults).
    /// What it keeps is bounded by the largest write (`ingest.index_max_rows`).
    pub fn clear(&mut self) {
        let Derived {
            sessions,
            starts_skipped,
            rollups,
            new_keys,
            overflow,
        } = self;
        sessions.clear();
        starts_skipped.clear();
        rollups.clear();
        new_keys.clear();
        overflow.clear();
    }

    /// Rows a flush would write: the size a writer bounds.
    pub fn rows(&self) -> usize {
        self.sessions.len() + self.rollups.len() + self.new_keys.len() + self.overflow.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Counts, Dim};

    #[test]
    fn dims_give_back_each_value_in_order_empty_ones_included() {
        let d = Dims::new(["google", "", "search", "é✓", ""]);
        assert_eq!(d.len(), 5);
        let values: Vec<&str> = d.iter().collect();
        assert_eq!(values, ["google", "", "search", "é✓", ""]);
        assert_eq!(d.get(3), Some("é✓"));
        assert_eq!(d.get(5), None, "past the row's values");
        assert!(Dims::default().is_empty() && Dims::default().get(0).is_none());
        let all: Vec<String> = (0..20).map(|i| i.to_string()).collect();
        assert_eq!(
            Dims::from(all).len(),
            SESSION_DIMS.len(),
            "the rest left out"
        );
    }

    #[test]
    fn a_cleared_write_is_empty_like_a_new_one() {
        let mut d = Derived::default();
        d.sessions.push(SessionRow::default());
        d.starts_skipped.insert(1);
        d.rollups.add(1, Dim::Page, 0, "/a", &Counts::default());
        d.new_keys.push((1, 2));
        d.overflow.push(UniqueCandidate {
            day: 1,
            visitor: 3,
            key: 2,
            rollup: RollupKey {
                site_id: 1,
                dim: Dim::Page,
                hour: 0,
                value: "/a".into(),
            },
        });
        assert_eq!(d.rows(), 4);
        d.clear();
        assert_eq!(d.rows(), 0);
        assert!(d.starts_skipped.is_empty());
        assert!(d.rollups.is_empty());
    }
}
