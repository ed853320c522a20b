//! Rollups: hourly (later daily) rows of additive counters per site, dimension and
//! value, written as deltas by the writer and summed by reports. [`RollupStore`] is
//! what reports read from them; [`Rollups`] gathers one batch's deltas in memory.

use super::{Dim, Result};
use crate::model::SiteId;

/// What unfiltered reports read. Ranges are `[from, to)` in hours.
pub trait RollupStore: Send + Sync {
    /// Sums `dim` over `[from_hour, to_hour)`, grouped by value, largest first.
    fn rollup_sums(
        &self,
        site_id: SiteId,
        dim: Dim,
        from_hour: i64,
        to_hour: i64,
        limit: usize,
    ) -> Result<Vec<RollupSum>>;
    /// One value of `dim` summed over `[from_hour, to_hour)`.
    fn rollup_value(
        &self,
        site_id: SiteId,
        dim: Dim,
        value: &str,
        from_hour: i64,
        to_hour: i64,
    ) -> Result<Counts>;
    /// `Dim::Total` summed per bucket of `bucket_hours`, keyed by the bucket's first hour.
    fn rollup_series(
        &self,
        site_id: SiteId,
        from_hour: i64,
        to_hour: i64,
        bucket_hours: i64,
    ) -> Result<Vec<(i64, Counts)>>;
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RollupKey {
    pub site_id: i64,
    pub dim: Dim,
    pub hour: i64,
    pub value: String,
}

/// Additive counters of one rollup row. Deltas may be negative (a bounce that
/// turned into a visit, an exit page that moved on).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub visitors: i64,
    pub visits: i64,
    pub pageviews: i64,
    pub events: i64,
    pub bounces: i64,
    pub duration_ms: i64,
    /// Sum and count of scroll depths (percent) reported for page views.
    pub scroll_sum: i64,
    pub scroll_n: i64,
    /// Visible time on pages, in milliseconds.
    pub engaged_ms: i64,
}

impl Counts {
    /// The nine counters in column order (visitors, visits, pageviews, events,
    /// bounces, duration_ms, scroll_sum, scroll_n, engaged_ms): how they travel to
    /// ClickHouse and back.
    pub fn to_array(&self) -> [i64; 9] {
        [
            self.visitors,
            self.visits,
            self.pageviews,
            self.events,
            self.bounces,
            self.duration_ms,
            self.scroll_sum,
            self.scroll_n,
            self.engaged_ms,
        ]
    }

    pub fn from_array(a: [i64; 9]) -> Counts {
        let [visitors, visits, pageviews, events, bounces, duration_ms, scroll_sum, scroll_n, engaged_ms] =
            a;
        Counts {
            visitors,
            visits,
            pageviews,
            events,
            bounces,
            duration_ms,
            scroll_sum,
            scroll_n,
            engaged_ms,
        }
    }

    pub fn add(&mut self, o: &Counts) {
        self.visitors += o.visitors;
        self.visits += o.visits;
        self.pageviews += o.pageviews;
        self.events += o.events;
        self.bounces += o.bounces;
        self.duration_ms += o.duration_ms;
        self.scroll_sum += o.scroll_sum;
        self.scroll_n += o.scroll_n;
        self.engaged_ms += o.engaged_ms;
    }
}

/// One summed rollup row, as reports read it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RollupSum {
    pub value: String,
    pub counts: Counts,
}

/// Rollup deltas of one batch, in one open-addressed table looked up by a hash of the
/// borrowed key parts: adding to a row that exists allocates nothing (the writer's hot
/// loop), and a new row allocates only a long value. Short values (browsers, countries,
/// sources, most paths) are kept in the row itself, so a lookup that finds its row
/// compares them without following a pointer to memory no other lookup touched.
#[derive(Default)]
pub struct Rollups {
    rows: hashbrown::HashTable<(Key, Counts)>,
    /// Seeded per process: rollup values (paths, titles) are chosen by visitors.
    seed: foldhash::fast::RandomState,
}

/// A row's key as [`Rollups`] holds it.
struct Key {
    site_id: i64,
    hour: i64,
    dim: Dim,
    value: Value,
}

/// The longest value kept in the row itself (the row's `Value` is then 24 bytes, as a
/// `String`'s would be).
const SHORT: usize = 22;

enum Value {
    Short { len: u8, bytes: [u8; SHORT] },
    Long(Box<str>),
}
const _: () = assert!(std::mem::size_of::<Value>() == 24);

impl Value {
    fn new(s: &str) -> Value {
        if s.len() <= SHORT {
            let mut bytes = [0; SHORT];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            Value::Short {
                len: s.len() as u8,
                bytes,
            }
        } else {
            Value::Long(s.into())
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Value::Short { len, bytes } => &bytes[..*len as usize],
            Value::Long(s) => s.as_bytes(),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // Whole `str`s copied in: always UTF-8.
            Value::Short { len, bytes } => {
                std::str::from_utf8(&bytes[..*len as usize]).unwrap_or_default()
            }
            Value::Long(s) => s,
        }
    }
}

/// A row of [`Rollups`], borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RollupRef<'a> {
    pub site_id: i64,
    pub dim: Dim,
    pub hour: i64,
    pub value: &'a str,
}

impl std::fmt::Debug for Rollups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Rollups {
    fn hash(
        seed: &foldhash::fast::RandomState,
        site_id: i64,
        dim: Dim,
        hour: i64,
        value: &[u8],
    ) -> u64 {
        use std::hash::BuildHasher;
        seed.hash_one((site_id, dim as u8, hour, value))
    }

    pub fn add(&mut self, site_id: i64, dim: Dim, hour: i64, value: &str, c: &Counts) {
        let bytes = value.as_bytes();
        let h = Self::hash(&self.seed, site_id, dim, hour, bytes);
        let found = self.rows.find_mut(h, |(k, _)| {
            k.hour == hour && k.dim == dim && k.site_id == site_id && k.value.as_bytes() == bytes
        });
        match found {
            Some((_, counts)) => counts.add(c),
            None => {
                let seed = &self.seed;
                self.rows.insert_unique(
                    h,
                    (
                        Key {
                            site_id,
                            dim,
                            hour,
                            value: Value::new(value),
                        },
                        *c,
                    ),
                    |(k, _)| Self::hash(seed, k.site_id, k.dim, k.hour, k.value.as_bytes()),
                );
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (RollupRef<'_>, &Counts)> {
        self.rows.iter().map(|(k, c)| {
            (
                RollupRef {
                    site_id: k.site_id,
                    dim: k.dim,
                    hour: k.hour,
                    value: k.value.as_str(),
                },
                c,
            )
        })
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Removes every row and keeps the table's memory.
    pub fn clear(&mut self) {
        self.rows.clear();
    }

    /// Distinct rows held.
    pub fn len(&self) -> usize {
        self.rows.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one() -> Counts {
        Counts {
            pageviews: 1,
            ..Counts::default()
        }
    }

    /// Values kept in the row (up to 22 bytes) and on the heap (longer) are told apart
    /// by every byte and read back whole, multi-byte characters at the edge included.
    #[test]
    fn values_short_and_long_are_kept_apart_and_read_back_whole() {
        let values: Vec<String> = vec![
            "".into(),
            "a".into(),
            "/pricing".into(),
            "x".repeat(21),
            "x".repeat(22),
            "x".repeat(23),
            format!("{}é", "x".repeat(20)), // 22 bytes, the last two one character
            format!("{}é", "x".repeat(21)), // 23 bytes
            "/blog/a-long-path-that-is-not-short".into(),
            "/blog/a-long-path-that-is-not-shorT".into(),
        ];
        let mut r = Rollups::default();
        for (i, v) in values.iter().enumerate() {
            for _ in 0..=i {
                r.add(1, Dim::Page, 100, v, &one());
            }
        }
        // The same value under another dimension, hour or site is another row.
        r.add(1, Dim::Title, 100, "/pricing", &one());
        r.add(1, Dim::Page, 101, "/pricing", &one());
        r.add(2, Dim::Page, 100, "/pricing", &one());
        assert_eq!(r.len(), values.len() + 3);
        for (i, v) in values.iter().enumerate() {
            let rows: Vec<_> = r
                .iter()
                .filter(|(k, _)| {
                    k.site_id == 1 && k.dim == Dim::Page && k.hour == 100 && k.value == v
                })
                .collect();
            assert_eq!(rows.len(), 1, "{v:?}");
            assert_eq!(rows[0].1.pageviews, i as i64 + 1, "{v:?}");
        }
        r.clear();
        assert!(r.is_empty());
    }
}
