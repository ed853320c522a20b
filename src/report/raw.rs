//! Filtered reports: one read of the matching raw events builds every number of the
//! page at once — totals, each breakdown, the time series — counted where the data is
//! (`store::web_counts` has the rules). `tests/integration/reports.rs` checks that,
//! without filters, this agrees with the rollups dimension by dimension.
//!
//! Whole days that are over are counted once and kept where the store keeps days
//! ([`EventStore::kept_days`](crate::store::EventStore::kept_days), invalidated by late
//! writes, retention, erasure and removals): a day's counts add to the others' exactly,
//! since no visitor and no visit spans two UTC days ([`WebCounts::merge`]). Days not
//! kept yet are counted by [`EventStore::web_counts_by_day`](crate::store::EventStore::web_counts_by_day)
//! (SQLite: a read per day on every core; ClickHouse: one query per run of days).

use crate::clock::{Clock, Millis, DAY_MS};
use crate::model::SiteId;
pub use crate::store::Group;
use crate::store::{group_name, Counts, Filter, Result, RollupSum, Store, WebCounts};

/// Counts of the requested groups, from the backend's [`web_counts`](crate::store::EventStore::web_counts).
pub struct Aggregate {
    groups: WebCounts,
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
        let now = Clock::System.now_ms();
        Ok(Aggregate {
            groups: counted(store, site_id, from_ms, to_ms, filters, groups, now)?,
        })
    }

    /// The rows of one group, largest first (as the rollups order them).
    pub fn sums(&self, group: Group, limit: usize) -> Vec<RollupSum> {
        let mut rows: Vec<RollupSum> = self
            .groups
            .0
            .get(&group)
            .into_iter()
            .flatten()
            .map(|(v, c)| RollupSum {
                value: v.clone(),
                counts: *c,
            })
            .collect();
        // Rollups count no visits per page (a page's rows have 0): pages tied on the rest
        // go by their value here too, or a filter that every event passes would reorder
        // them.
        let visits = |c: &Counts| {
            if group == Group::Dim(crate::store::Dim::Page) {
                0
            } else {
                c.visits
            }
        };
        rows.sort_by(|a, b| {
            let (x, y) = (&a.counts, &b.counts);
            (y.visitors, y.pageviews, y.events, visits(y))
                .cmp(&(x.visitors, x.pageviews, x.events, visits(x)))
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

/// What a kept filtered count is named: its groups and filters, in order (a site keeps
/// the days of its most recently counted keys only: `report_days::KEYS_PER_KIND`). The
/// `2` is what is counted: days kept before engagement events were counted (`web:`) are
/// counted again.
fn key(filters: &[Filter], groups: &[Group]) -> String {
    let groups: Vec<String> = groups.iter().map(|g| group_name(*g)).collect();
    let filters: Vec<String> = filters.iter().map(Filter::to_param).collect();
    format!(
        "web2:{}|{}",
        serde_json::to_string(&groups).unwrap_or_default(),
        serde_json::to_string(&filters).unwrap_or_default()
    )
}

/// The counts of `[from, to)` at time `now`: whole days over for an hour
/// ([`settled_days`](crate::clock::settled_days)) kept or counted and kept, the rest
/// (today, partial days at the ends) counted each time.
pub(crate) fn counted(
    store: &dyn Store,
    site_id: SiteId,
    from: Millis,
    to: Millis,
    filters: &[Filter],
    groups: &[Group],
    now: Millis,
) -> Result<WebCounts> {
    let (first, end) = crate::clock::settled_days(from, to, now);
    if !store.keeps_days() || first >= end {
        return store.web_counts(site_id, from, to, filters, groups);
    }
    let key = key(filters, groups);
    let kept = store.kept_days(site_id, &key, 0, first, end)?;
    let mut total = WebCounts::default();
    let mut missing = Vec::new();
    for day in first..end {
        match kept.fresh.get(&day).and_then(|b| WebCounts::from_body(b)) {
            Some(c) => total.merge(c),
            None => missing.push(day),
        }
    }
    let mut keep = Vec::new();
    for (day, c) in store.web_counts_by_day(site_id, &missing, filters, groups)? {
        // A day without a mark has events whose visits are still being written: counted
        // now, kept another time.
        if let Some(mark) = kept.marks.get(&day) {
            keep.push((day, c.body(), *mark));
        }
        total.merge(c);
    }
    if !keep.is_empty() {
        // A cache: when it cannot be written (busy past its timeout, read-only), the
        // numbers are still right, and the next report counts again.
        if let Err(e) = store.keep_days(site_id, &key, 0, &keep) {
            tracing::warn!(error = %e, "keeping a filtered view's daily counts failed");
        }
    }
    for (a, b) in [(from, first * DAY_MS), (end * DAY_MS, to)] {
        if a < b {
            total.merge(store.web_counts(site_id, a, b, filters, groups)?);
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::HOUR_MS;
    use crate::model::Event;
    use crate::store::{Dim, EventStore, PrivacyStore, SiteStore, SqliteStore, Subject};

    /// 2025-03-01 00:00 UTC: every test day is over, by the system clock too.
    const D0: Millis = 20_148 * DAY_MS;
    const SOURCES: [&str; 3] = ["Google", "Bing", ""];
    const PAGES: [&str; 4] = ["/", "/a", "/b", "/blog/b"];

    /// Pages tied on everything rollups count go by their value, whatever their visits
    /// (rollups count none per page); other groups keep visits as a tie-break.
    #[test]
    fn pages_tied_on_what_rollups_count_go_by_their_value() {
        let row = |visits| Counts {
            visitors: 38,
            pageviews: 40,
            visits,
            ..Counts::default()
        };
        use std::collections::HashMap;
        let rows = HashMap::from([
            ("/blog".to_owned(), row(39)),
            ("/blog/x".to_owned(), row(40)),
        ]);
        let source = Group::Dim(Dim::Source);
        let page = Group::Dim(Dim::Page);
        let agg = Aggregate {
            groups: WebCounts(HashMap::from([(page, rows.clone()), (source, rows)])),
        };
        let values = |g| {
            agg.sums(g, 10)
                .into_iter()
                .map(|r| r.value)
                .collect::<Vec<_>>()
        };
        assert_eq!(values(page), ["/blog", "/blog/x"]);
        assert_eq!(values(source), ["/blog/x", "/blog"]);
    }

    fn pageview(ts_ms: Millis, visitor_id: i64, path: &str, source: &str) -> Event {
        Event {
            site_id: 1,
            ts_ms,
            name: "pageview".into(),
            visitor_id,
            path: path.into(),
            title: format!("Title of {path}"),
            source: source.into(),
            browser: ["Firefox", "Chrome"][(visitor_id % 2) as usize].into(),
            ..Event::default()
        }
    }

    /// Six days of visits: one to four page views each, some visitors back for a
    /// second visit with another source, one visit just before midnight, and a
    /// signup event now and then. Visitor ids are per day, as the salt makes them.
    fn events(days: std::ops::Range<i64>) -> Vec<Event> {
        let mut out = Vec::new();
        for day in days {
            for i in 0..20_i64 {
                let v = 1_000 * (day + 1) + i;
                let start = D0 + day * DAY_MS + (i * 67 % 23) * HOUR_MS;
                let source = SOURCES[((i + day) % 3) as usize];
                for n in 0..=(i % 4) {
                    let path = PAGES[((i + n) % 4) as usize];
                    out.push(pageview(start + n * 60_000, v, path, source));
                }
                if i % 5 == 0 {
                    out.push(Event {
                        name: "signup".into(),
                        ..pageview(start + 5 * 60_000, v, "/a", source)
                    });
                }
                if i % 3 == 0 {
                    let back = SOURCES[((i + day + 1) % 3) as usize];
                    out.push(pageview(start + 3 * HOUR_MS, v, "/b", back));
                }
            }
            let late_night = D0 + (day + 1) * DAY_MS - 2 * 60_000;
            out.push(pageview(late_night, 1_000 * (day + 1) + 99, "/", "Google"));
            out.push(pageview(
                late_night + 60_000,
                1_000 * (day + 1) + 99,
                "/a",
                "Google",
            ));
        }
        out.sort_by_key(|e| e.ts_ms);
        out
    }

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        assert!(writer(&store).write(events(0..6), Vec::new()));
        (dir, store)
    }

    fn writer(store: &SqliteStore) -> crate::ingest::EventWriter {
        crate::ingest::EventWriter::for_tests(store)
    }

    fn filters() -> Vec<Vec<Filter>> {
        let f = |s: &str| Filter::parse(s).unwrap();
        vec![
            vec![f("source==Google")],
            vec![f("page==/a")],
            vec![f("source!=Bing"), f("page~b")],
        ]
    }

    /// What the site page asks for, plus buckets that straddle midnight.
    fn groups() -> Vec<Group> {
        let mut g: Vec<Group> = Filter::DIMS.iter().map(|d| Group::Dim(*d)).collect();
        g.extend([Group::Total, Group::Hours(24), Group::Hours(5)]);
        g
    }

    fn ranges() -> Vec<(Millis, Millis)> {
        vec![
            (D0, D0 + 6 * DAY_MS),
            (D0 + 5 * HOUR_MS, D0 + 4 * DAY_MS + 7 * HOUR_MS),
            (D0 - DAY_MS, D0 + 9 * DAY_MS),
        ]
    }

    /// Every filter over every range: the kept and counted days give what one read of
    /// the whole range gives.
    fn check(store: &SqliteStore, now: Millis) {
        for f in filters() {
            for (from, to) in ranges() {
                let whole = store
                    .web_counts(SiteId(1), from, to, &f, &groups())
                    .unwrap();
                let got = counted(store, SiteId(1), from, to, &f, &groups(), now).unwrap();
                assert_eq!(got, whole, "{f:?} over [{from}, {to}) at {now}");
            }
        }
    }

    use crate::store::sqlite::report_days::testing::{db, kept_as_days_end};

    #[test]
    fn kept_days_add_up_to_one_read_of_the_range_and_are_counted_once() {
        let (dir, store) = store();
        let google = store
            .web_counts(SiteId(1), D0, D0 + 6 * DAY_MS, &filters()[0], &groups())
            .unwrap();
        let total = google.0[&Group::Total][""];
        assert!(
            total.visitors > 20 && total.bounces > 0 && total.events > 0,
            "the data has visitors, bounces and events: {total:?}"
        );
        kept_as_days_end(dir.path(), "web2:%", D0, |now| check(&store, now));
        // The kept rows are what is read: events deleted behind the store's back do
        // not show until the day is counted again.
        db(dir.path())
            .execute(
                "DELETE FROM events WHERE ts_ms < ?1 AND source = 'Google'",
                [D0 + DAY_MS],
            )
            .unwrap();
        let later = D0 + 20 * DAY_MS;
        let got = counted(
            &store,
            SiteId(1),
            D0,
            D0 + 6 * DAY_MS,
            &filters()[0],
            &groups(),
            later,
        );
        assert_eq!(got.unwrap(), google);
    }

    #[test]
    fn a_late_event_makes_its_day_counted_again() {
        let (_dir, store) = store();
        let now = D0 + 20 * DAY_MS;
        check(&store, now);
        let before = store
            .web_counts(SiteId(1), D0, D0 + 6 * DAY_MS, &filters()[0], &groups())
            .unwrap();
        // A visit of day 1 imported after the day was kept.
        let late = vec![
            pageview(D0 + DAY_MS + 7 * HOUR_MS, 77_777, "/a", "Google"),
            pageview(D0 + DAY_MS + 7 * HOUR_MS + 60_000, 77_777, "/x", "Google"),
        ];
        assert!(writer(&store).write(late, Vec::new()));
        let after = store
            .web_counts(SiteId(1), D0, D0 + 6 * DAY_MS, &filters()[0], &groups())
            .unwrap();
        assert_ne!(before, after, "the scenario: the late visit counts");
        check(&store, now);
    }

    #[test]
    fn retention_and_erasure_drop_the_kept_days_they_change() {
        let (_dir, store) = store();
        let now = D0 + 20 * DAY_MS;
        check(&store, now);
        store
            .apply_retention(SiteId(1), D0 + 2 * DAY_MS + 6 * HOUR_MS, false)
            .unwrap();
        check(&store, now);
        let visitor = 1_000 * 4 + 3;
        store.erase_subject(&Subject::Visitor(visitor)).unwrap();
        check(&store, now);
    }

    /// With the past days held in memory (`store::segments`), a filter on any
    /// dimension, and several together, count what one read of the events counts; a
    /// day changed by a late visit, retention or an erasure is read from the events
    /// until its segment is read again.
    #[test]
    fn held_day_segments_count_what_the_events_count_and_go_when_their_day_changes() {
        let (_dir, store) = store();
        let now = D0 + 20 * DAY_MS;
        let days: Vec<i64> = (D0 / DAY_MS - 1..D0 / DAY_MS + 7).collect();
        let held = |store: &SqliteStore| {
            let (held, rest) = store.held_segments(SiteId(1), &days).unwrap();
            let mut held: Vec<i64> = held.iter().map(|s| s.day).collect();
            held.sort_unstable();
            (held, rest)
        };
        // The events' site (segments are read for the sites there are).
        let site = store
            .add_site(
                &crate::model::SiteKey::generate(),
                "example.com",
                "Example",
                D0,
            )
            .unwrap();
        assert_eq!(site.id, SiteId(1));
        store.segments().configure(62, 1 << 30);
        let built = store.refresh_segments(now).unwrap();
        assert!(built >= days.len(), "{built} {:?}", held(&store));
        assert_eq!(held(&store), (days.clone(), vec![]), "every day is held");
        let f = |s: &str| Filter::parse(s).unwrap();
        let mut views: Vec<Vec<Filter>> = vec![vec![]];
        for d in Filter::DIMS {
            let n = d.name();
            views.push(vec![f(&format!("{n}==Google"))]);
            views.push(vec![f(&format!("{n}!=Firefox"))]);
            views.push(vec![f(&format!("{n}~B"))]);
            views.push(vec![f(&format!("{n}=="))]);
        }
        views.push(vec![f("source!=Bing"), f("page~b"), f("browser==Chrome")]);
        views.push(vec![f("title~of /A"), f("entry_page==/a")]);
        let mut groups = groups();
        groups.push(Group::Hours(1));
        let compare = |store: &SqliteStore| {
            for v in &views {
                let mut got = store
                    .web_counts_by_day(SiteId(1), &days, v, &groups)
                    .unwrap();
                let mut want =
                    crate::store::events::each_day(store, SiteId(1), &days, v, &groups).unwrap();
                got.sort_by_key(|(d, _)| *d);
                want.sort_by_key(|(d, _)| *d);
                assert_eq!(got, want, "{v:?}");
            }
        };
        compare(&store);
        let google = store
            .web_counts_by_day(SiteId(1), &days, &[f("source==Google")], &groups)
            .unwrap();
        assert!(google
            .iter()
            .any(|(_, c)| c.0[&Group::Total].get("").is_some_and(|t| t.bounces > 0)));

        // A visit of day 1 imported late: that day is read from the events again.
        let late = vec![
            pageview(D0 + DAY_MS + 7 * HOUR_MS, 77_777, "/a", "Google"),
            pageview(D0 + DAY_MS + 7 * HOUR_MS + 60_000, 77_777, "/x", "Google"),
        ];
        assert!(writer(&store).write(late, Vec::new()));
        let (_, rest) = held(&store);
        assert_eq!(rest, vec![D0 / DAY_MS + 1]);
        compare(&store);
        assert_eq!(
            store.refresh_segments(now).unwrap(),
            1,
            "the changed day is read again"
        );
        assert!(held(&store).1.is_empty());
        compare(&store);

        // Retention into day 2, and an erasure: nothing held is used before it is read
        // again without what they removed.
        store
            .apply_retention(SiteId(1), D0 + 2 * DAY_MS + 6 * HOUR_MS, false)
            .unwrap();
        assert!(held(&store).1.contains(&(D0 / DAY_MS + 2)));
        compare(&store);
        store.refresh_segments(now).unwrap();
        assert_eq!(held(&store).1, Vec::<i64>::new());
        compare(&store);
        store
            .erase_subject(&Subject::Visitor(1_000 * 4 + 3))
            .unwrap();
        assert_eq!(
            held(&store).0,
            Vec::<i64>::new(),
            "an erasure lets every day go"
        );
        compare(&store);
        store.refresh_segments(now).unwrap();
        assert_eq!(held(&store).1, Vec::<i64>::new());
        compare(&store);

        // Not held at all: the events are read, and the memory is let go.
        store.segments().configure(0, 0);
        store.refresh_segments(now).unwrap();
        assert_eq!(store.segments().held().0, 0);
        compare(&store);
    }

    /// Two processes on one database: one reads a changed day again and keeps its row
    /// with the new mark; the other's older segment of that day is not used.
    #[test]
    fn a_day_read_again_by_another_process_is_not_counted_from_an_older_segment() {
        let (dir, a) = store();
        let now = D0 + 20 * DAY_MS;
        a.add_site(
            &crate::model::SiteKey::generate(),
            "example.com",
            "Example",
            D0,
        )
        .unwrap();
        let b = SqliteStore::open(dir.path()).unwrap();
        for s in [&a, &b] {
            s.segments().configure(62, 1 << 30);
            s.refresh_segments(now).unwrap();
        }
        let day = D0 / DAY_MS + 1;
        assert_eq!(
            a.held_segments(SiteId(1), &[day]).unwrap().1,
            Vec::<i64>::new()
        );
        let late = vec![pageview(D0 + DAY_MS + 7 * HOUR_MS, 77_777, "/a", "Google")];
        assert!(writer(&b).write(late, Vec::new()));
        assert_eq!(b.refresh_segments(now).unwrap(), 1);
        assert_eq!(
            b.held_segments(SiteId(1), &[day]).unwrap().1,
            Vec::<i64>::new()
        );
        assert_eq!(a.held_segments(SiteId(1), &[day]).unwrap().1, vec![day]);
    }

    #[test]
    fn a_day_whose_visits_are_not_written_yet_is_counted_but_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        assert!(writer(&store).write(events(0..2), Vec::new()));
        // Day 2's events committed, their visits not (as under load, or before a
        // restart replays them).
        let mut w = store.writer(crate::config::Synchronous::Normal).unwrap();
        w.apply(&events(2..3), &[], None).unwrap();
        let now = D0 + 20 * DAY_MS;
        check(&store, now);
        let days: Vec<i64> = db(dir.path())
            .prepare("SELECT DISTINCT day FROM report_days ORDER BY day")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(!days.is_empty());
        assert!(
            !days.contains(&(D0 / DAY_MS + 2)),
            "day 2 is not kept while its visits are not written: {days:?}"
        );
    }

    #[test]
    fn a_site_keeps_the_days_of_its_most_recent_filtered_views_only() {
        let (dir, store) = store();
        let now = D0 + 20 * DAY_MS;
        let view = |i: usize| vec![Filter::parse(&format!("page==/p{i}")).unwrap()];
        let groups = [Group::Total, Group::Dim(Dim::Page)];
        for i in 0..40 {
            counted(
                &store,
                SiteId(1),
                D0,
                D0 + 2 * DAY_MS,
                &view(i),
                &groups,
                now,
            )
            .unwrap();
        }
        let keys: Vec<String> = db(dir.path())
            .prepare("SELECT DISTINCT key FROM report_days WHERE key LIKE 'web2:%'")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(
            keys.len(),
            crate::store::sqlite::KEPT_KEYS_PER_KIND as usize
        );
        assert!(keys.contains(&key(&view(39), &groups)));
        assert!(!keys.contains(&key(&view(0), &groups)));
    }
}
