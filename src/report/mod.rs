//! Report: pure functions from a store, a site and a date range to typed results.
//! Everything here reads rollups, so the cost of a report depends on the number of
//! hours and distinct values in the range, not on the number of raw events.
//!
//! Unique visitors: a visitor id is a hash with a salt that changes every UTC day, so
//! an id never spans two days. The rollups count each id once per (day, row); summing
//! whole days is therefore the exact number of distinct ids in the range — the same
//! person on two days is two visitors, by design (no lasting identifier exists).

pub mod ads;
pub mod email;
pub mod export;
pub mod privacy;
pub mod raw;

use serde::Serialize;

use crate::clock::DAY_MS;
use crate::model::Site;
use crate::store::{Counts, Dim, Filter, Result, RollupSum, Store};
use raw::{Aggregate, Group};

/// Seconds as `1m 05s` or `42s`.
pub fn fmt_duration(secs: f64) -> String {
    let s = secs.round() as i64;
    if s >= 60 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// Whole UTC days, both ends included.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct DateRange {
    pub from_day: i64,
    pub to_day: i64,
}

impl DateRange {
    pub fn hours(&self) -> (i64, i64) {
        (self.from_day * 24, (self.to_day + 1) * 24)
    }

    pub fn millis(&self) -> (i64, i64) {
        (self.from_day * DAY_MS, (self.to_day + 1) * DAY_MS)
    }

    /// `YYYY-MM-DD` of a day number.
    pub fn date(day: i64) -> String {
        chrono::DateTime::from_timestamp(day * 86_400, 0)
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default()
    }

    /// The range of the same length just before this one (for "change vs previous").
    pub fn previous(&self) -> DateRange {
        let len = self.to_day - self.from_day + 1;
        DateRange {
            from_day: self.from_day - len,
            to_day: self.from_day - 1,
        }
    }

    /// The hours the period before this one is compared over: the same stretch of
    /// the period of the same length just before. A range that ends today is counted
    /// up to the current hour (included), so the period before is cut at the same
    /// hour of its last day — a morning is compared with a morning, not a whole day.
    ///
    /// Only where that last day still has hourly rollups: days older than
    /// [`HOURLY_ROLLUP_DAYS`](crate::store::HOURLY_ROLLUP_DAYS) are folded into one row
    /// per day, which no hour can cut (and ClickHouse keeps their hours, so the two
    /// backends would answer differently); a longer range is compared in whole days,
    /// where one partial day weighs little.
    pub fn previous_hours(&self, now_ms: crate::clock::Millis) -> (i64, i64) {
        let (from, to) = self.hours();
        let len = (self.to_day - self.from_day + 1) * 24;
        let now_hour = now_ms.div_euclid(crate::clock::HOUR_MS);
        let today = now_ms.div_euclid(DAY_MS);
        let hourly = self.from_day > today - crate::store::HOURLY_ROLLUP_DAYS;
        let end = if hourly && now_hour >= from && now_hour < to {
            now_hour + 1
        } else {
            to
        };
        (from - len, end - len)
    }

    /// Parses `YYYY-MM-DD` into a day number.
    pub fn parse_date(s: &str) -> Option<i64> {
        let d = chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()?;
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
        Some((d - epoch).num_days())
    }
}

/// What a report is about: a date range, and filters that every number must match.
/// Without filters reports read the rollups; with filters, the raw events (a rollup
/// holds one dimension, a filter combines two).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    pub range: DateRange,
    pub filters: Vec<Filter>,
}

impl Query {
    pub fn new(range: DateRange) -> Query {
        Query {
            range,
            filters: Vec::new(),
        }
    }

    /// One pass over the matching raw events for `groups`.
    fn aggregate(&self, store: &dyn Store, site: &Site, groups: &[Group]) -> Result<Aggregate> {
        let (from, to) = self.range.millis();
        Aggregate::new(store, site.id, from, to, &self.filters, groups)
    }
}

/// Buckets of a time series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interval {
    Hour,
    Day,
    Week,
    Month,
}

impl Interval {
    /// The rollup bucket a series of this interval is built from.
    fn step_hours(self) -> i64 {
        if self == Interval::Hour {
            1
        } else {
            24
        }
    }

    pub fn parse(s: &str) -> Option<Interval> {
        Some(match s {
            "hour" => Interval::Hour,
            "day" => Interval::Day,
            "week" => Interval::Week,
            "month" => Interval::Month,
            _ => return None,
        })
    }

    /// The label of the bucket an hour falls in (weeks start on Monday, UTC).
    fn label(self, hour: i64) -> String {
        let Some(t) = chrono::DateTime::from_timestamp(hour * 3600, 0) else {
            return String::new();
        };
        match self {
            Interval::Hour => t.format("%Y-%m-%dT%H:00Z").to_string(),
            Interval::Day => t.format("%Y-%m-%d").to_string(),
            Interval::Week => {
                use chrono::Datelike;
                let monday = t.date_naive()
                    - chrono::Duration::days(i64::from(t.weekday().num_days_from_monday()));
                monday.format("%Y-%m-%d").to_string()
            }
            Interval::Month => t.format("%Y-%m").to_string(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Overview {
    pub visitors: i64,
    pub visits: i64,
    pub pageviews: i64,
    pub events: i64,
    /// Percent of visits with a single event.
    pub bounce_rate: f64,
    /// Mean visit duration in seconds.
    pub visit_duration: f64,
    /// Events flagged as machine traffic (not in the numbers above).
    pub bot_events: i64,
    /// Mean deepest scroll and visible seconds per page view (JS tracker only).
    pub scroll_depth: Option<f64>,
    pub engagement_time: Option<f64>,
}

impl Overview {
    fn from_counts(c: &Counts, bot_events: i64) -> Overview {
        let ratio = |a: i64, b: i64| if b > 0 { a as f64 / b as f64 } else { 0.0 };
        Overview {
            visitors: c.visitors,
            visits: c.visits,
            pageviews: c.pageviews,
            events: c.events,
            bounce_rate: (ratio(c.bounces, c.visits) * 1000.0).round() / 10.0,
            visit_duration: (ratio(c.duration_ms, c.visits) / 100.0).round() / 10.0,
            bot_events,
            scroll_depth: per_report(c).0,
            engagement_time: per_report(c).1,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    pub value: String,
    pub visitors: i64,
    pub visits: i64,
    pub pageviews: i64,
    pub events: i64,
    /// Mean deepest scroll (percent) of page views that reported one (JS tracker).
    pub scroll_depth: Option<f64>,
    /// Mean visible seconds per page view that reported engagement (JS tracker).
    pub engagement_time: Option<f64>,
}

impl From<RollupSum> for Row {
    fn from(r: RollupSum) -> Row {
        let (scroll_depth, engagement_time) = per_report(&r.counts);
        Row {
            value: r.value,
            visitors: r.counts.visitors,
            visits: r.counts.visits,
            pageviews: r.counts.pageviews,
            events: r.counts.events,
            scroll_depth,
            engagement_time,
        }
    }
}

/// The last 30 minutes, from raw events.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Realtime {
    pub visitors: i64,
    pub pageviews: i64,
    pub pages: Vec<Row>,
}

pub const REALTIME_MS: i64 = 30 * 60_000;

/// The last 30 minutes of traffic matching `filters`: totals, and the pages with the
/// most page views (what the panel shows, so what it is sorted by).
pub fn realtime(
    store: &dyn Store,
    site: &Site,
    now_ms: i64,
    filters: &[Filter],
    limit: usize,
) -> Result<Realtime> {
    let (from, to) = (now_ms - REALTIME_MS, now_ms + 1);
    let page = Group::Dim(Dim::Page);
    let agg = Aggregate::new(store, site.id, from, to, filters, &[Group::Total, page])?;
    let total = agg.total();
    let mut pages: Vec<Row> = agg
        .sums(page, usize::MAX)
        .into_iter()
        .map(Row::from)
        .collect();
    pages.sort_by(|a, b| {
        (b.pageviews, b.visitors)
            .cmp(&(a.pageviews, a.visitors))
            .then_with(|| a.value.cmp(&b.value))
    });
    pages.truncate(limit);
    Ok(Realtime {
        visitors: total.visitors,
        pageviews: total.pageviews,
        pages,
    })
}

fn per_report(c: &Counts) -> (Option<f64>, Option<f64>) {
    if c.scroll_n <= 0 {
        return (None, None);
    }
    let n = c.scroll_n as f64;
    (
        Some((c.scroll_sum as f64 / n * 10.0).round() / 10.0),
        Some((c.engaged_ms as f64 / n / 100.0).round() / 10.0),
    )
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DayPoint {
    pub date: String,
    pub visitors: i64,
    pub visits: i64,
    pub pageviews: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Breakdown {
    pub dimension: &'static str,
    pub rows: Vec<Row>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SiteReport {
    pub site: String,
    pub from: String,
    pub to: String,
    /// The filters every number matches (`dim==value`).
    pub filters: Vec<String>,
    pub overview: Overview,
    /// The same numbers for the period of the same length just before; when the range
    /// ends today, only up to the same hour of that period's last day
    /// ([`DateRange::previous_hours`]).
    pub previous: Overview,
    pub days: Vec<DayPoint>,
    pub breakdowns: Vec<Breakdown>,
    pub goals: Vec<ads::GoalRow>,
    pub conversions: ads::ConversionSummary,
}

/// A campaign's whole report: email opens and clicks, ad impressions and clicks, and
/// the conversions credited to it.
pub fn campaign(
    store: &dyn Store,
    c: &crate::model::Campaign,
    model: ads::Model,
    now: crate::clock::Millis,
    with_recipients: bool,
) -> Result<email::CampaignReport> {
    let mut r = email::campaign_report(c, &store.campaign_events(c.id)?, with_recipients);
    r.ads = Some(ads::campaign_ads(store, c, model, now)?);
    Ok(r)
}

/// The breakdowns of the standard report, in display order.
pub const REPORT_DIMS: &[Dim] = &[
    Dim::Page,
    Dim::Title,
    Dim::EntryPage,
    Dim::ExitPage,
    Dim::Source,
    Dim::Referrer,
    Dim::Medium,
    Dim::UtmSource,
    Dim::UtmMedium,
    Dim::UtmCampaign,
    Dim::Browser,
    Dim::Os,
    Dim::Device,
    Dim::Screen,
    Dim::Country,
    Dim::Region,
    Dim::City,
    Dim::Event,
    Dim::EventProp,
    Dim::Outbound,
    Dim::Download,
    Dim::Bot,
    Dim::BotSource,
];

pub fn overview(store: &dyn Store, site: &Site, q: &Query) -> Result<Overview> {
    let (from, to) = q.range.hours();
    overview_hours(store, site, &q.filters, from, to)
}

/// [`overview`] over an hour range `[from, to)` (a period compared up to an hour).
pub fn overview_hours(
    store: &dyn Store,
    site: &Site,
    filters: &[Filter],
    from: i64,
    to: i64,
) -> Result<Overview> {
    if !filters.is_empty() {
        let h = crate::clock::HOUR_MS;
        let groups = period_groups(24);
        let c = Aggregate::new(store, site.id, from * h, to * h, filters, &groups)?.total();
        return Ok(Overview::from_counts(&c, 0));
    }
    let total = store
        .rollup_sums(site.id, Dim::Total, from, to, 1)?
        .into_iter()
        .next()
        .map(|r| r.counts)
        .unwrap_or_default();
    let bots: i64 = store
        .rollup_sums(site.id, Dim::Bot, from, to, 100)?
        .iter()
        .map(|r| r.counts.events)
        .sum();
    Ok(Overview::from_counts(&total, bots))
}

pub fn breakdown(
    store: &dyn Store,
    site: &Site,
    q: &Query,
    dim: Dim,
    limit: usize,
) -> Result<Breakdown> {
    let (from, to) = q.range.hours();
    let sums = if q.filters.is_empty() {
        store.rollup_sums(site.id, dim, from, to, limit)?
    } else {
        q.aggregate(store, site, &[Group::Dim(dim)])?
            .sums(Group::Dim(dim), limit)
    };
    let rows = sums.into_iter().map(Row::from).collect();
    Ok(Breakdown {
        dimension: dim.name(),
        rows,
    })
}

/// The visitors/visits/pageviews time series, one point per bucket (empty ones too).
/// Visitors of a week or month are the sum of its days' (ids change daily).
pub fn series(
    store: &dyn Store,
    site: &Site,
    q: &Query,
    interval: Interval,
) -> Result<Vec<DayPoint>> {
    let step = interval.step_hours();
    let buckets: Vec<(i64, Counts)> = if q.filters.is_empty() {
        let (from, to) = q.range.hours();
        store.rollup_series(site.id, from, to, step)?
    } else {
        raw_buckets(&q.aggregate(store, site, &period_groups(step))?, step)
    };
    Ok(points(q.range, interval, buckets))
}

/// What a filtered overview and a filtered series count, the same for both: a period's
/// overview and its daily chart then share their kept days (`raw::counted`), so the
/// dashboard reads a filtered period compared with the page once, not twice.
fn period_groups(step: i64) -> [Group; 2] {
    [Group::Total, Group::Hours(step)]
}

fn raw_buckets(agg: &Aggregate, step: i64) -> Vec<(i64, Counts)> {
    agg.sums(Group::Hours(step), usize::MAX)
        .into_iter()
        .filter_map(|r| Some((r.value.parse().ok()?, r.counts)))
        .collect()
}

/// One point per bucket of the range, empty buckets included.
fn points(range: DateRange, interval: Interval, buckets: Vec<(i64, Counts)>) -> Vec<DayPoint> {
    let (from, to) = range.hours();
    let step = interval.step_hours();
    let buckets: std::collections::HashMap<i64, Counts> = buckets.into_iter().collect();
    let mut out: Vec<DayPoint> = Vec::new();
    let mut hour = from;
    while hour < to {
        let c = buckets.get(&hour).copied().unwrap_or_default();
        let label = interval.label(hour);
        match out.last_mut() {
            Some(p) if p.date == label => {
                p.visitors += c.visitors;
                p.visits += c.visits;
                p.pageviews += c.pageviews;
            }
            _ => out.push(DayPoint {
                date: label,
                visitors: c.visitors,
                visits: c.visits,
                pageviews: c.pageviews,
            }),
        }
        hour += step;
    }
    out
}

pub fn days(store: &dyn Store, site: &Site, q: &Query) -> Result<Vec<DayPoint>> {
    series(store, site, q, Interval::Day)
}

/// A site's whole report at time `now_ms` (which decides how much of a range that ends
/// today is compared with the period before).
pub fn site_report(
    store: &dyn Store,
    site: &Site,
    q: &Query,
    limit: usize,
    model: ads::Model,
    now_ms: crate::clock::Millis,
) -> Result<SiteReport> {
    let range = q.range;
    let mut breakdowns = Vec::new();
    let (overview_now, days_now) = if q.filters.is_empty() {
        for dim in REPORT_DIMS {
            breakdowns.push(breakdown(store, site, q, *dim, limit)?);
        }
        (overview(store, site, q)?, days(store, site, q)?)
    } else {
        // One pass over the matching events for the whole page; only what raw events
        // can answer (not props, links or bots).
        let dims: Vec<Dim> = REPORT_DIMS
            .iter()
            .copied()
            .filter(|d| Filter::DIMS.contains(d))
            .collect();
        let mut groups: Vec<Group> = dims.iter().map(|d| Group::Dim(*d)).collect();
        groups.extend([Group::Total, Group::Hours(24)]);
        let agg = q.aggregate(store, site, &groups)?;
        for dim in dims {
            breakdowns.push(Breakdown {
                dimension: dim.name(),
                rows: agg
                    .sums(Group::Dim(dim), limit)
                    .into_iter()
                    .map(Row::from)
                    .collect(),
            });
        }
        (
            Overview::from_counts(&agg.total(), 0),
            points(range, Interval::Day, raw_buckets(&agg, 24)),
        )
    };
    let (prev_from, prev_to) = range.previous_hours(now_ms);
    Ok(SiteReport {
        site: site.domain.clone(),
        from: DateRange::date(range.from_day),
        to: DateRange::date(range.to_day),
        filters: q.filters.iter().map(Filter::to_param).collect(),
        overview: overview_now,
        previous: overview_hours(store, site, &q.filters, prev_from, prev_to)?,
        days: days_now,
        breakdowns,
        goals: ads::goals(store, site, range)?,
        conversions: ads::conversions(store, site, range, model)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        let d = DateRange::parse_date("2026-11-29").unwrap();
        assert_eq!(DateRange::date(d), "2026-11-29");
        assert_eq!(DateRange::parse_date("1970-01-02"), Some(1));
        assert_eq!(DateRange::parse_date("2024-01-01'--"), None);
    }

    #[test]
    fn a_range_ending_today_is_compared_up_to_the_same_hour() {
        let today = DateRange::parse_date("2026-12-01").unwrap();
        // 09:30 UTC: today 00:00–10:00 against yesterday 00:00–10:00, not all of yesterday.
        let now = today * DAY_MS + 9 * crate::clock::HOUR_MS + 30 * 60_000;
        let day = DateRange {
            from_day: today,
            to_day: today,
        };
        assert_eq!(
            day.previous_hours(now),
            ((today - 1) * 24, (today - 1) * 24 + 10)
        );
        // Seven days ending today: the seven before, cut at the same hour of their last day.
        let week = DateRange {
            from_day: today - 6,
            to_day: today,
        };
        assert_eq!(
            week.previous_hours(now),
            ((today - 13) * 24, (today - 7) * 24 + 10)
        );
        // Thirty days ending today: the day the period before ends on is folded into a
        // daily row already, so the periods are compared in whole days.
        let month = DateRange {
            from_day: today - 29,
            to_day: today,
        };
        assert_eq!(
            month.previous_hours(now),
            ((today - 59) * 24, (today - 29) * 24)
        );
        // A range in the past is compared whole.
        let past = DateRange {
            from_day: today - 3,
            to_day: today - 2,
        };
        assert_eq!(
            past.previous_hours(now),
            ((today - 5) * 24, (today - 3) * 24)
        );
    }

    #[test]
    fn overview_rates() {
        let c = Counts {
            visitors: 3,
            visits: 4,
            pageviews: 9,
            events: 1,
            bounces: 1,
            duration_ms: 120_000,
            ..Counts::default()
        };
        let o = Overview::from_counts(&c, 2);
        assert_eq!(o.bounce_rate, 25.0);
        assert_eq!(o.visit_duration, 30.0);
        assert_eq!(o.bot_events, 2);
    }
}
