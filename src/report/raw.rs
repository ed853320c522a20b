//! Filtered reports: one pass over the matching raw events builds every number of the
//! page at once — totals, each breakdown, the time series — with the rollups' rules
//! (session dimensions from the visit, pages count page views, events the others, an
//! unset UTM or referrer is no row, bounces are one-event visits).
//! `tests/integration/reports.rs` checks that, without filters, this agrees with the
//! rollups dimension by dimension.

use std::collections::{HashMap, HashSet};

use crate::clock::{Millis, HOUR_MS};
use crate::model::SiteId;
use crate::store::{Counts, Dim, Filter, Result, RollupSum, Store, WebRow, SESSION_DIMS};

/// How raw-event counts are grouped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Group {
    /// One row, value `""`.
    Total,
    Dim(Dim),
    /// Buckets of this many hours, the value being the bucket's first hour.
    Hours(i64),
}

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

    fn counts(&self) -> Counts {
        Counts {
            visitors: self.visitors.len() as i64,
            visits: self.visits.len() as i64,
            pageviews: self.pageviews,
            events: self.events,
            bounces: self.visits.values().filter(|(n, _)| *n == 1).count() as i64,
            duration_ms: self.visits.values().map(|(_, d)| d).sum(),
            ..Counts::default()
        }
    }
}

/// Counts of the requested groups, from one pass over the raw events.
pub struct Aggregate {
    groups: HashMap<Group, HashMap<String, Acc>>,
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

impl Aggregate {
    pub fn new(
        store: &dyn Store,
        site_id: SiteId,
        from_ms: Millis,
        to_ms: Millis,
        filters: &[Filter],
        groups: &[Group],
    ) -> Result<Aggregate> {
        let mut by: HashMap<Group, HashMap<String, Acc>> =
            groups.iter().map(|g| (*g, HashMap::new())).collect();
        let mut hours = String::new();
        store.web_rows(site_id, from_ms, to_ms, filters, &mut |r| {
            for (g, m) in by.iter_mut() {
                if let Some(v) = value_of(*g, &r, &mut hours) {
                    match m.get_mut(v) {
                        Some(acc) => acc.add(&r),
                        None => {
                            let mut acc = Acc::default();
                            acc.add(&r);
                            m.insert(v.to_owned(), acc);
                        }
                    }
                }
            }
        })?;
        Ok(Aggregate { groups: by })
    }

    /// The rows of one group, largest first (as the rollups order them).
    pub fn sums(&self, group: Group, limit: usize) -> Vec<RollupSum> {
        let mut rows: Vec<RollupSum> = self
            .groups
            .get(&group)
            .into_iter()
            .flatten()
            .map(|(v, a)| RollupSum {
                value: v.clone(),
                counts: a.counts(),
            })
            .collect();
        rows.sort_by(|a, b| {
            let (x, y) = (&a.counts, &b.counts);
            (y.visitors, y.pageviews, y.events, y.visits)
                .cmp(&(x.visitors, x.pageviews, x.events, x.visits))
                .then(a.value.cmp(&b.value))
        });
        rows.truncate(limit);
        rows
    }

    pub fn total(&self) -> Counts {
        self.sums(Group::Total, 1)
            .into_iter()
            .next()
            .map(|r| r.counts)
            .unwrap_or_default()
    }
}
