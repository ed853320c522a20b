//! Filtered reports' numbers: web events counted per group with the rollups' rules
//! (session dimensions from the visit, pages count page views, events the others, an
//! unset UTM or referrer is no row, bounces are one-event visits, engagement events
//! count scroll depth and visible time in the total and their page only). A backend answers
//! [`EventStore::web_counts`](super::EventStore::web_counts) where its data is: SQLite
//! streams the matching rows through [`Tally`], ClickHouse groups in SQL. Both must give
//! the same numbers (`tests/clickhouse.rs` compares them); without filters they agree
//! with the rollups dimension by dimension (`tests/integration/reports.rs`).

use std::collections::{HashMap, HashSet};

use super::{Counts, Dim, WebRow, SESSION_DIMS};
use crate::clock::{Millis, HOUR_MS};
use crate::model::ENGAGEMENT;

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

/// One group of a kept body: its name, and each value with its nine counters.
type Body<V> = (String, Vec<(V, [i64; 9])>);

impl WebCounts {
    /// Every group of `groups`, with no value.
    pub fn empty(groups: &[Group]) -> WebCounts {
        WebCounts(groups.iter().map(|g| (*g, HashMap::default())).collect())
    }

    /// Adds the counts of a disjoint stretch of time. Exact for every counter, distinct
    /// visitors and visits included, when the two stretches share no visitor and no
    /// visit: whole UTC days do (a visitor id is keyed with its day's salt, and a visit
    /// is one visitor's), which is how reports keep filtered numbers per day.
    pub fn merge(&mut self, other: WebCounts) {
        for (g, values) in other.0 {
            let mine = self.0.entry(g).or_default();
            for (v, c) in values {
                let e = mine.entry(v).or_default();
                let (a, b) = (e.to_array(), c.to_array());
                *e = Counts::from_array(std::array::from_fn(|i| a[i] + b[i]));
            }
        }
    }

    /// The counts as kept text: `[[group, [[value, nine counters], …]], …]`.
    pub fn body(&self) -> String {
        let groups: Vec<Body<&str>> = self
            .0
            .iter()
            .map(|(g, values)| {
                let rows = values
                    .iter()
                    .map(|(v, c)| (v.as_str(), c.to_array()))
                    .collect();
                (group_name(*g), rows)
            })
            .collect();
        serde_json::to_string(&groups).unwrap_or_default()
    }

    /// None for a body this build does not read (counted again).
    pub fn from_body(s: &str) -> Option<WebCounts> {
        let groups: Vec<Body<String>> = serde_json::from_str(s).ok()?;
        let mut out = WebCounts::default();
        for (g, rows) in groups {
            let values = rows
                .into_iter()
                .map(|(v, a)| (v, Counts::from_array(a)))
                .collect();
            out.0.insert(parse_group(&g)?, values);
        }
        Some(out)
    }
}

/// A group's name in kept bodies and keys: `*`, `hours:24`, or the dimension's name.
pub fn group_name(g: Group) -> String {
    match g {
        Group::Total => "*".into(),
        Group::Hours(h) => format!("hours:{h}"),
        Group::Dim(d) => d.name().into(),
    }
}

fn parse_group(s: &str) -> Option<Group> {
    match s {
        "*" => Some(Group::Total),
        _ => match s.strip_prefix("hours:") {
            Some(h) => Some(Group::Hours(h.parse().ok()?)),
            None => Some(Group::Dim(Dim::parse(s)?)),
        },
    }
}

/// foldhash, not SipHash: a filtered page at 10 M events hashes tens of millions of
/// visitor and visit ids (SipHash was 6 % of the time, per-row key allocation more).
type Fast = foldhash::fast::RandomState;

/// The counts of one value. For a group whose value is the visit's (the total, where
/// it came from, its client, place, entry and exit page), every event of a visit has
/// the same value, so a visit is counted at its first event — one set of visits for all
/// groups, not one per value ([`Tally::add`]); other groups keep their visits' ids.
#[derive(Default)]
struct Acc {
    visitors: HashSet<i64, Fast>,
    /// Visit → (its events, its length): groups counted per event only.
    visits: HashMap<i64, (i64, Millis), Fast>,
    /// Visits counted at their first event (groups of the visit's values).
    first_visits: i64,
    first_bounces: i64,
    first_duration_ms: i64,
    pageviews: i64,
    events: i64,
    /// Engagement events: summed deepest scroll, how many reported one, visible time.
    scroll_sum: i64,
    scroll_n: i64,
    engaged_ms: i64,
}

impl Acc {
    /// An engagement event: scroll depth and visible time, nothing else (as the rollups
    /// count it: it is no page view, no interaction, and leaves its visit as it is).
    fn add_engagement(&mut self, r: &WebRow) {
        self.scroll_sum += r.scroll_pct.unwrap_or(0);
        self.scroll_n += i64::from(r.scroll_pct.is_some());
        self.engaged_ms += r.engaged_ms.unwrap_or(0);
    }

    /// One event; `first` says whether its visit is counted here already (`Some(true)`:
    /// this is its first event; None: a group counted per event).
    fn add(&mut self, r: &WebRow, first: Option<bool>) {
        match first {
            None => {
                if r.visitor_id != 0 {
                    self.visitors.insert(r.visitor_id);
                }
                if r.session_id != 0 {
                    self.visits
                        .insert(r.session_id, (r.visit_events, r.visit_ms));
                }
            }
            Some(true) => {
                if r.visitor_id != 0 {
                    self.visitors.insert(r.visitor_id);
                }
                if r.session_id != 0 {
                    self.first_visits += 1;
                    self.first_bounces += i64::from(r.visit_events == 1);
                    self.first_duration_ms += r.visit_ms;
                }
            }
            Some(false) => {}
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
            visits: self.visits.len() as i64 + self.first_visits,
            pageviews: self.pageviews,
            events: self.events,
            bounces: self.visits.values().filter(|(n, _)| *n == 1).count() as i64
                + self.first_bounces,
            duration_ms: match group {
                Group::Total => {
                    self.visits.values().map(|(_, d)| d).sum::<i64>() + self.first_duration_ms
                }
                _ => 0,
            },
            scroll_sum: self.scroll_sum,
            scroll_n: self.scroll_n,
            engaged_ms: self.engaged_ms,
        }
    }
}

/// Whether every event of a visit counts under the same value of `group`.
fn per_visit(group: Group) -> bool {
    match group {
        Group::Total => true,
        Group::Hours(_) => false,
        Group::Dim(d) => matches!(d, Dim::EntryPage | Dim::ExitPage) || SESSION_DIMS.contains(&d),
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

/// Adds to the counts of value `v` with `f`, starting them if `v` has none: one lookup,
/// and the key allocated only for a new value (a filtered page at 10 M events adds to
/// existing values almost every time).
fn add_to(m: &mut HashMap<String, Acc, Fast>, v: &str, f: impl FnOnce(&mut Acc)) {
    match m.get_mut(v) {
        Some(acc) => f(acc),
        None => {
            let mut acc = Acc::default();
            f(&mut acc);
            m.insert(v.to_owned(), acc);
        }
    }
}

/// Counts streamed rows into groups, one row at a time.
pub struct Tally {
    by: Vec<(Group, bool, HashMap<String, Acc, Fast>)>,
    /// Visits seen so far (for the groups counted per visit).
    seen: HashSet<i64, Fast>,
    hours: String,
}

impl Tally {
    pub fn new(groups: &[Group]) -> Tally {
        let mut by: Vec<(Group, bool, HashMap<String, Acc, Fast>)> = Vec::new();
        for g in groups {
            if !by.iter().any(|(x, _, _)| x == g) {
                by.push((*g, per_visit(*g), HashMap::default()));
            }
        }
        Tally {
            by,
            seen: HashSet::default(),
            hours: String::new(),
        }
    }

    pub fn add(&mut self, r: &WebRow) {
        if r.name == ENGAGEMENT {
            // Counted where the rollups count it: the total (and its hours) and its page.
            for (g, _, m) in self.by.iter_mut() {
                let v = match g {
                    Group::Total | Group::Hours(_) => value_of(*g, r, &mut self.hours),
                    Group::Dim(Dim::Page) => Some(r.path.as_str()),
                    Group::Dim(_) => None,
                };
                if let Some(v) = v {
                    add_to(m, v, |a| a.add_engagement(r));
                }
            }
            return;
        }
        // An event whose visit is not stored (yet) has its own values, which may differ
        // from its visit's other events: it is counted one by one in every group, as is
        // an event without a visit (`first` always true).
        let unknown_visit = r.session_id != 0 && r.visit_events == 0;
        let first = r.session_id == 0 || (!unknown_visit && self.seen.insert(r.session_id));
        for (g, visit_level, m) in self.by.iter_mut() {
            let first = (*visit_level && !unknown_visit).then_some(first);
            if let Some(v) = value_of(*g, r, &mut self.hours) {
                add_to(m, v, |a| a.add(r, first));
            }
        }
    }

    pub fn finish(self) -> WebCounts {
        WebCounts(
            self.by
                .into_iter()
                .map(|(g, _, m)| (g, m.into_iter().map(|(v, a)| (v, a.counts(g))).collect()))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(session: i64, visitor: i64, name: &str, source: &str, visit_events: i64) -> WebRow {
        let mut dims = vec![String::new(); SESSION_DIMS.len()];
        dims[0] = source.into();
        WebRow {
            ts_ms: 1_000,
            visitor_id: visitor,
            session_id: session,
            name: name.into(),
            path: "/".into(),
            dims,
            visit_events,
            visit_ms: 60_000,
            ..WebRow::default()
        }
    }

    #[test]
    fn a_visit_counts_once_per_value_and_events_without_a_stored_visit_each_count() {
        assert_eq!(SESSION_DIMS[0], Dim::Source);
        let source = Group::Dim(Dim::Source);
        let mut t = Tally::new(&[Group::Total, source, Group::Dim(Dim::Page)]);
        // A stored visit of three events (all "Google"), a bounce, and a visit whose
        // row is not stored yet (its events carry their own, differing sources).
        for name in ["pageview", "pageview", "signup"] {
            t.add(&row(1, 10, name, "Google", 3));
        }
        t.add(&row(2, 20, "pageview", "Bing", 1));
        t.add(&row(3, 30, "pageview", "DuckDuckGo", 0));
        t.add(&row(3, 30, "pageview", "", 0));
        let c = t.finish();
        let total = c.0[&Group::Total][""];
        assert_eq!((total.visitors, total.visits), (3, 3));
        assert_eq!((total.pageviews, total.events, total.bounces), (5, 1, 1));
        assert_eq!(total.duration_ms, 3 * 60_000);
        let by = &c.0[&source];
        let google = by["Google"];
        assert_eq!(
            (
                google.visitors,
                google.visits,
                google.pageviews,
                google.events
            ),
            (1, 1, 2, 1)
        );
        assert_eq!(
            google.duration_ms, 0,
            "lengths are summed for the total only"
        );
        assert_eq!((by["Bing"].visits, by["Bing"].bounces), (1, 1));
        assert_eq!((by["DuckDuckGo"].visits, by[""].visits), (1, 1));
        let page = c.0[&Group::Dim(Dim::Page)]["/"];
        assert_eq!((page.visitors, page.visits, page.pageviews), (3, 3, 5));
    }
}
