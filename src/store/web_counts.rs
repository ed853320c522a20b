//! Filtered reports' numbers: web events counted per group with the rollups' rules
//! (session dimensions from the visit, pages count page views, events the others, an
//! unset UTM or referrer is no row, bounces are one-event visits). A backend answers
//! [`EventStore::web_counts`](super::EventStore::web_counts) where its data is: SQLite
//! streams the matching rows through [`Tally`], ClickHouse groups in SQL. Both must give
//! the same numbers (`tests/clickhouse.rs` compares them); without filters they agree
//! with the rollups dimension by dimension (`tests/integration/reports.rs`).

use std::collections::{HashMap, HashSet};

use super::{Counts, Dim, WebRow, SESSION_DIMS};
use crate::clock::{Millis, HOUR_MS};

/// How web events are grouped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Group {
    /// One row, value `""`.
    Total,
    Dim(Dim),
    /// Buckets of this many hours, the value being the bucket's first hour.
    Hours(i64),
}

/// The counts of each requested group, by value. `duration_ms` (the summed length of
/// the visits) is counted for [`Group::Total`] only — it is what the overview shows, and
/// summing visit lengths per value would cost a set of visits per value — and is 0 in
/// every other group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebCounts(pub HashMap<Group, HashMap<String, Counts>>);

/// foldhash, not SipHash: a filtered page at 10 M events hashes tens of millions of
/// visitor and visit ids (SipHash was 6 % of the time, per-row key allocation more).
type Fast = foldhash::fast::RandomState;

#[derive(Default)]
struct Acc {
    visitors: HashSet<i64, Fast>,
    /// Visit → (its events, its length).
    visits: HashMap<i64, (i64, Millis), Fast>,
    pageviews: i64,
    events: i64,
}

impl Acc {
    fn add(&mut self, r: &WebRow) {
        if r.visitor_id != 0 {
            self.visitors.insert(r.visitor_id);
        }
        if r.session_id != 0 {
            self.visits
                .insert(r.session_id, (r.visit_events, r.visit_ms));
        }
        if r.name == "pageview" {
            self.pageviews += 1;
        } else {
            self.events += 1;
        }
    }

    fn counts(&self, group: Group) -> Counts {
        Counts {
            visitors: self.visitors.len() as i64,
            visits: self.visits.len() as i64,
            pageviews: self.pageviews,
            events: self.events,
            bounces: self.visits.values().filter(|(n, _)| *n == 1).count() as i64,
            duration_ms: match group {
                Group::Total => self.visits.values().map(|(_, d)| d).sum(),
                _ => 0,
            },
            ..Counts::default()
        }
    }
}

/// The value `r` counts under in `group` (None: not counted there). Borrowed, so a
/// row adds to an existing value without allocating.
fn value_of<'a>(group: Group, r: &'a WebRow, hours: &'a mut String) -> Option<&'a str> {
    match group {
        Group::Total => Some(""),
        Group::Hours(h) => {
            let h = h.max(1);
            hours.clear();
            use std::fmt::Write;
            let _ = write!(hours, "{}", (r.ts_ms / HOUR_MS).div_euclid(h) * h);
            Some(hours.as_str())
        }
        Group::Dim(d) => {
            let v = match d {
                Dim::Page if r.name == "pageview" => r.path.as_str(),
                Dim::Title if r.name == "pageview" => r.title.as_str(),
                Dim::Event if r.name != "pageview" => r.name.as_str(),
                Dim::EntryPage => r.entry_page.as_str(),
                Dim::ExitPage => r.exit_page.as_str(),
                d => {
                    let i = SESSION_DIMS.iter().position(|s| *s == d)?;
                    r.dims.get(i)?.as_str()
                }
            };
            (!(v.is_empty() && d.empty_means_unset())).then_some(v)
        }
    }
}

/// Counts streamed rows into groups, one row at a time.
pub struct Tally {
    by: HashMap<Group, HashMap<String, Acc>>,
    hours: String,
}

impl Tally {
    pub fn new(groups: &[Group]) -> Tally {
        Tally {
            by: groups.iter().map(|g| (*g, HashMap::new())).collect(),
            hours: String::new(),
        }
    }

    pub fn add(&mut self, r: &WebRow) {
        for (g, m) in self.by.iter_mut() {
            if let Some(v) = value_of(*g, r, &mut self.hours) {
                match m.get_mut(v) {
                    Some(acc) => acc.add(r),
                    None => {
                        let mut acc = Acc::default();
                        acc.add(r);
                        m.insert(v.to_owned(), acc);
                    }
                }
            }
        }
    }

    pub fn finish(self) -> WebCounts {
        WebCounts(
            self.by
                .into_iter()
                .map(|(g, m)| (g, m.into_iter().map(|(v, a)| (v, a.counts(g))).collect()))
                .collect(),
        )
    }
}
