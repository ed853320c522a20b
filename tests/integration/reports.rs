//! Filtered reports read raw events; unfiltered ones read rollups. On the same data
//! the two must agree, dimension by dimension — and a filter must narrow every number.

use crate::common;

use pixeltrack::report::raw::{Aggregate, Group};
use pixeltrack::report::{self, DateRange, Query};
use pixeltrack::store::prelude::*;
use pixeltrack::store::{Dim, Filter, SqliteStore};

#[test]
fn raw_counts_agree_with_the_rollups_and_filters_narrow() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    common::cli(&data, &["demo", "--days", "4", "--visitors-per-day", "60"]);
    let store = SqliteStore::open(&data).unwrap();
    let site = store.sites().unwrap().remove(0);
    let today = pixeltrack::clock::day_of(chrono::Utc::now().timestamp_millis());
    // Whole past days only, so no visit is cut by the range.
    let range = DateRange {
        from_day: today - 10,
        to_day: today - 1,
    };
    let with_data = common::rollups_agree_with_raw_events(&store, site.id.0, range);
    assert!(
        with_data >= 12,
        "the demo fills most dimensions ({with_data})"
    );
    // The total: visitors, visits, pageviews, bounces and duration agree too.
    let q = Query::new(range);
    let rolled = report::overview(&store, &site, &q).unwrap();
    let (m0, m1) = range.millis();
    let raw = Aggregate::new(&store, site.id, m0, m1, &[], &[Group::Total])
        .unwrap()
        .total();
    assert_eq!(
        (
            rolled.visitors,
            rolled.visits,
            rolled.pageviews,
            rolled.events
        ),
        (raw.visitors, raw.visits, raw.pageviews, raw.events)
    );

    // A filter every event passes gives the unfiltered numbers, scroll depth and
    // engagement time included (the filtered path counts the engagement events too).
    let all = Query {
        range,
        filters: vec![Filter::parse("source!=no-such-source").unwrap()],
    };
    assert!(rolled.scroll_depth.is_some() && rolled.engagement_time.is_some());
    assert_eq!(
        report::overview(&store, &site, &all).unwrap(),
        report::Overview {
            bot_events: 0,
            ..rolled.clone()
        }
    );
    // (Rollups keep no visits per page: the rest of each page's row.)
    let pages_of = |q: &Query| {
        let rows = report::breakdown(&store, &site, q, Dim::Page, 1000)
            .unwrap()
            .rows;
        rows.into_iter()
            .map(|r| report::Row { visits: 0, ..r })
            .collect::<Vec<_>>()
    };
    assert_eq!(pages_of(&all), pages_of(&q));
    // The top value of `dim` unfiltered, and the query filtered by it.
    let top = |dim: Dim| {
        let row = report::breakdown(&store, &site, &q, dim, 1)
            .unwrap()
            .rows
            .remove(0);
        let f = Filter::parse(&format!("{}=={}", dim.name(), row.value)).unwrap();
        let filters = vec![f];
        (row, Query { range, filters })
    };
    // An engagement event carries its visit: a filter by the visit's entry page finds it.
    let (_, by_entry) = top(Dim::EntryPage);
    let o = report::overview(&store, &site, &by_entry).unwrap();
    assert!(
        o.scroll_depth.is_some() && o.engagement_time.is_some(),
        "{o:?}"
    );

    // A filter narrows every number, and combines with a breakdown by another dimension.
    let (top_source, filtered) = top(Dim::Source);
    let o = report::overview(&store, &site, &filtered).unwrap();
    assert_eq!(
        (o.visitors, o.visits, o.pageviews),
        (top_source.visitors, top_source.visits, top_source.pageviews)
    );
    assert!(o.visitors < rolled.visitors);
    assert!(o.scroll_depth.is_some(), "{o:?}");
    let pages = report::breakdown(&store, &site, &filtered, Dim::Page, 100).unwrap();
    let pv: i64 = pages.rows.iter().map(|r| r.pageviews).sum();
    assert_eq!(pv, o.pageviews, "page views of the filtered pages add up");
    let not = Query {
        range,
        filters: vec![Filter::parse(&format!("source!={}", top_source.value)).unwrap()],
    };
    assert_eq!(
        report::overview(&store, &site, &not).unwrap().visits + o.visits,
        rolled.visits
    );
    // Contains is case-insensitive; a series under a filter sums to the filtered total.
    let days = report::series(&store, &site, &filtered, report::Interval::Day).unwrap();
    assert_eq!(days.len(), 10);
    assert_eq!(days.iter().map(|d| d.pageviews).sum::<i64>(), o.pageviews);
    let weeks = report::series(&store, &site, &filtered, report::Interval::Week).unwrap();
    assert_eq!(weeks.iter().map(|d| d.pageviews).sum::<i64>(), o.pageviews);
    let upper = top_source.value.to_uppercase();
    if !upper.is_empty() {
        let c = Query {
            range,
            filters: vec![Filter::parse(&format!("source~{upper}")).unwrap()],
        };
        assert!(report::overview(&store, &site, &c).unwrap().visits >= o.visits);
    }
}

#[test]
fn filters_are_checked_against_the_allowlist() {
    for bad in [
        "referrer) UNION SELECT 1--==x",
        "bot==crawler",
        "page",
        "sort=visits;DROP TABLE events",
        "==x",
    ] {
        assert!(Filter::parse(bad).is_err(), "{bad}");
    }
    let f = Filter::parse("utm_campaign~<img src=x onerror=alert(1)>").unwrap();
    assert_eq!(f.to_param(), "utm_campaign~<img src=x onerror=alert(1)>");
}

/// Folding old hourly rollups into daily rows changes no number of any whole-day
/// report, and does shrink the table.
#[test]
fn compacting_rollups_keeps_every_number() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    common::cli(&data, &["demo", "--days", "12", "--visitors-per-day", "40"]);
    let store = SqliteStore::open(&data).unwrap();
    let site = store.sites().unwrap().remove(0);
    let now = chrono::Utc::now().timestamp_millis();
    let today = pixeltrack::clock::day_of(now);
    let snapshot = |store: &SqliteStore| {
        let mut out = Vec::new();
        for range in [
            DateRange {
                from_day: today - 11,
                to_day: today,
            },
            DateRange {
                from_day: today - 11,
                to_day: today - 8,
            },
            DateRange {
                from_day: today - 9,
                to_day: today - 9,
            },
        ] {
            let q = Query::new(range);
            out.push(format!("{:?}", report::overview(store, &site, &q).unwrap()));
            out.push(format!("{:?}", report::days(store, &site, &q).unwrap()));
            for d in Dim::ALL.iter().skip(1) {
                out.push(format!(
                    "{:?}",
                    report::breakdown(store, &site, &q, *d, 1000).unwrap()
                ));
            }
        }
        out
    };
    // Distinct values per dimension over everything (unchanged by folding).
    let values = |store: &SqliteStore| {
        let (h0, h1) = (0, (today + 1) * 24);
        Dim::ALL
            .iter()
            .map(|d| {
                store
                    .rollup_sums(site.id, *d, h0, h1, 100_000)
                    .unwrap()
                    .len()
            })
            .sum::<usize>()
    };
    let before = snapshot(&store);
    let days = store.rollup_days_to_compact(today - 7).unwrap();
    assert!(days.len() >= 4, "old days to fold: {days:?}");
    let folded = pixeltrack::store::compact_rollups(&store, now).unwrap();
    assert!(folded > 0);
    assert_eq!(snapshot(&store), before, "every report number is unchanged");
    assert!(store.rollup_days_to_compact(today - 7).unwrap().is_empty());
    // Running it again changes nothing; the distinct values per dimension are the same.
    let n = values(&store);
    assert_eq!(pixeltrack::store::compact_rollups(&store, now).unwrap(), 0);
    assert_eq!(values(&store), n);
    assert_eq!(snapshot(&store), before);
}
