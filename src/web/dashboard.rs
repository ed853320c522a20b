//! The dashboard pages: the site list, a site's page (date range, top stats with the
//! change against the previous period, the chart, breakdown panels whose rows filter
//! the whole page, goals, conversions, realtime) and a campaign's page. Reading works
//! without JavaScript; `/static/app.js` only refreshes the realtime panel.
//!
//! Everything shown came from the wire, so it is rendered through maud (escaped) and
//! only ever becomes a link in two shapes: our own filter links (a query string we
//! build and percent-encode) and `https://<host>/` for a referrer host that is a
//! plain host name.
//!
//! Over 600 lines: the three pages share the range, filter and panel helpers here;
//! split it by page when a fourth page comes.

use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use maud::{html, Markup};

use super::chart;
use super::layout;
use super::{CurrentUser, WebError, WebState};
use crate::clock::{day_of, Millis};
use crate::model::{Campaign, Site};
use crate::report::ads::{AdReport, Money};
use crate::report::email::CampaignReport;
use crate::report::{self, DateRange, Overview, Query, Realtime, SiteReport};
use crate::store::{CampaignStore, Dim, Filter, SiteStore, Store};

/// The breakdown panels, in display order, with the count they show (the heading is
/// [`Dim::title`], as in the CLI).
const PANELS: &[(Dim, Count)] = &[
    (Dim::Page, Count::Pageviews),
    (Dim::Source, Count::Visitors),
    (Dim::Title, Count::Pageviews),
    (Dim::EntryPage, Count::Visits),
    (Dim::ExitPage, Count::Visits),
    (Dim::Referrer, Count::Visitors),
    (Dim::Medium, Count::Visitors),
    (Dim::UtmSource, Count::Visitors),
    (Dim::UtmMedium, Count::Visitors),
    (Dim::UtmCampaign, Count::Visitors),
    (Dim::Browser, Count::Visitors),
    (Dim::Os, Count::Visitors),
    (Dim::Device, Count::Visitors),
    (Dim::Screen, Count::Visitors),
    (Dim::Country, Count::Visitors),
    (Dim::Region, Count::Visitors),
    (Dim::City, Count::Visitors),
    (Dim::Event, Count::Events),
    (Dim::EventProp, Count::Events),
    (Dim::Outbound, Count::Events),
    (Dim::Download, Count::Events),
    (Dim::Bot, Count::Events),
];

/// Rows per panel on the site page; "details" shows up to [`DETAILS_ROWS`].
pub const PANEL_ROWS: usize = 10;
pub const DETAILS_ROWS: usize = 1000;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Count {
    Visitors,
    Visits,
    Pageviews,
    Events,
}

impl Count {
    pub fn label(self) -> &'static str {
        match self {
            Count::Visitors => "visitors",
            Count::Visits => "visits",
            Count::Pageviews => "views",
            Count::Events => "events",
        }
    }
    /// What a panel of `dim` counts.
    pub fn of_dim(dim: Dim) -> Count {
        PANELS
            .iter()
            .find(|(d, _)| *d == dim)
            .map(|(_, c)| *c)
            .unwrap_or(Count::Visitors)
    }
    pub fn of(self, r: &report::Row) -> i64 {
        match self {
            Count::Visitors => r.visitors,
            Count::Visits => r.visits,
            Count::Pageviews => r.pageviews,
            Count::Events => r.events,
        }
    }
}

/// The date range presets offered above every site page.
const PRESETS: &[(&str, &str)] = &[
    ("today", "Today"),
    ("yesterday", "Yesterday"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
    ("month", "This month"),
    ("lastmonth", "Last month"),
    ("90d", "Last 90 days"),
];

/// What a site page shows: its range (a preset or explicit dates) and its filters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct View {
    pub period: String,
    pub range: DateRange,
    pub filters: Vec<Filter>,
}

fn month_start(day: i64) -> i64 {
    use chrono::Datelike;
    chrono::DateTime::from_timestamp(day * 86_400, 0)
        .map(|d| day - i64::from(d.day0()))
        .unwrap_or(day)
}

impl View {
    /// Parses `period`, `from`, `to` and repeated `f` from a query string; anything
    /// unknown is a 400 with the reason.
    pub fn parse(query: &str, today: i64) -> Result<View, WebError> {
        let (mut period, mut from, mut to, mut filters) = (None, None, None, Vec::new());
        // The filter form: a dimension, an operator and a value.
        let (mut fd, mut fo, mut fv) = (None, None, None);
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            match k.as_ref() {
                "fd" => fd = Some(v.into_owned()),
                "fo" => fo = Some(v.into_owned()),
                "fv" => fv = Some(v.into_owned()),
                "period" => period = Some(v.into_owned()),
                "from" if !v.is_empty() => from = Some(v.into_owned()),
                "to" if !v.is_empty() => to = Some(v.into_owned()),
                "from" | "to" => {}
                "f" => filters.push(Filter::parse(&v).map_err(WebError::BadRequest)?),
                _ => {}
            }
        }
        if let (Some(d), Some(v)) = (fd, fv) {
            let op = match fo.as_deref().unwrap_or("is") {
                "is" => "==",
                "is_not" => "!=",
                "contains" => "~",
                _ => return Err(WebError::BadRequest("unknown filter operator".into())),
            };
            let f = Filter::parse(&format!("{d}{op}{v}")).map_err(WebError::BadRequest)?;
            filters.retain(|g: &Filter| g.dim != f.dim || g.op != f.op);
            filters.push(f);
        }
        if filters.len() > 10 {
            return Err(WebError::BadRequest("at most 10 filters".into()));
        }
        let date = |s: &str| {
            DateRange::parse_date(s)
                .ok_or_else(|| WebError::BadRequest("dates are YYYY-MM-DD".into()))
        };
        let (period, range) = match (from, to) {
            (Some(f), Some(t)) => {
                let (f, t) = (date(&f)?, date(&t)?);
                if f > t || t - f > 3_660 {
                    return Err(WebError::BadRequest(
                        "'from' must be on or before 'to', at most 10 years apart".into(),
                    ));
                }
                (
                    "custom".to_owned(),
                    DateRange {
                        from_day: f,
                        to_day: t,
                    },
                )
            }
            _ => {
                let p = period.unwrap_or_else(|| "30d".into());
                let range = match p.as_str() {
                    "today" => DateRange {
                        from_day: today,
                        to_day: today,
                    },
                    "yesterday" => DateRange {
                        from_day: today - 1,
                        to_day: today - 1,
                    },
                    "7d" => DateRange {
                        from_day: today - 6,
                        to_day: today,
                    },
                    "30d" => DateRange {
                        from_day: today - 29,
                        to_day: today,
                    },
                    "90d" => DateRange {
                        from_day: today - 89,
                        to_day: today,
                    },
                    "month" => DateRange {
                        from_day: month_start(today),
                        to_day: today,
                    },
                    "lastmonth" => {
                        let end = month_start(today) - 1;
                        DateRange {
                            from_day: month_start(end),
                            to_day: end,
                        }
                    }
                    _ => return Err(WebError::BadRequest("unknown period".into())),
                };
                (p, range)
            }
        };
        Ok(View {
            period,
            range,
            filters,
        })
    }

    /// This view's query string (period or dates, and filters).
    pub fn query_string(&self) -> String {
        self.query_with(&self.filters)
    }

    /// This view's query string, with `filters` instead of its own.
    fn query_with(&self, filters: &[Filter]) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        if self.period == "custom" {
            s.append_pair("from", &DateRange::date(self.range.from_day));
            s.append_pair("to", &DateRange::date(self.range.to_day));
        } else {
            s.append_pair("period", &self.period);
        }
        for f in filters {
            s.append_pair("f", &f.to_param());
        }
        s.finish()
    }

    /// A link that adds `dim==value` to the filters (replacing one on the same dimension).
    pub fn add_filter(&self, dim: Dim, value: &str) -> String {
        let mut fs: Vec<Filter> = self
            .filters
            .iter()
            .filter(|f| f.dim != dim)
            .cloned()
            .collect();
        fs.push(Filter {
            dim,
            op: crate::store::FilterOp::Is,
            value: value.to_owned(),
        });
        format!("?{}", self.query_with(&fs))
    }

    fn without_filter(&self, i: usize) -> String {
        let fs: Vec<Filter> = self
            .filters
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, f)| f.clone())
            .collect();
        format!("?{}", self.query_with(&fs))
    }

    fn with_period(&self, period: &str) -> String {
        let v = View {
            period: period.into(),
            ..self.clone()
        };
        format!("?{}", v.query_with(&self.filters))
    }

    pub fn query(&self) -> Query {
        Query {
            range: self.range,
            filters: self.filters.clone(),
        }
    }
}

/// A referrer host we may turn into a link: a plain DNS name, nothing else.
fn referrer_link(host: &str) -> Option<String> {
    let ok = !host.is_empty()
        && host.len() <= 253
        && host.contains('.')
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    ok.then(|| format!("https://{host}/"))
}

fn change(now: f64, before: f64, lower_is_better: bool) -> Markup {
    if before == 0.0 {
        return html! { span.change.flat { "—" } };
    }
    let pct = (now - before) / before * 100.0;
    let good = if lower_is_better {
        pct < 0.0
    } else {
        pct > 0.0
    };
    let class = if pct.abs() < 0.5 {
        "change flat"
    } else if good {
        "change up"
    } else {
        "change down"
    };
    let arrow = if pct >= 0.0 { "▲" } else { "▼" };
    html! { span class=(class) title="against the period before (when this one ends today: up to the same hour)" { (arrow) " " (format!("{:.0}%", pct.abs())) } }
}

fn stat(label: &str, value: String, ch: Markup) -> Markup {
    html! {
        div.stat {
            div.label { (label) }
            div.value { (value) }
            (ch)
        }
    }
}

fn opt_change(now: Option<f64>, before: Option<f64>) -> Markup {
    match (now, before) {
        (Some(n), Some(b)) => change(n, b, false),
        _ => html! { span.change.flat { "—" } },
    }
}

fn top_stats(o: &Overview, p: &Overview) -> Markup {
    let f = |v: i64| v as f64;
    html! {
        section.stats {
            (stat("Visitors", o.visitors.to_string(), change(f(o.visitors), f(p.visitors), false)))
            (stat("Visits", o.visits.to_string(), change(f(o.visits), f(p.visits), false)))
            (stat("Pageviews", o.pageviews.to_string(), change(f(o.pageviews), f(p.pageviews), false)))
            (stat("Bounce rate", format!("{:.0}%", o.bounce_rate), change(o.bounce_rate, p.bounce_rate, true)))
            (stat("Visit duration", report::fmt_duration(o.visit_duration), change(o.visit_duration, p.visit_duration, false)))
            (stat("Events", o.events.to_string(), change(f(o.events), f(p.events), false)))
            // Measured by the JS tracker only: a dash without it.
            (stat("Scroll depth", o.scroll_depth.map(|d| format!("{d:.0}%")).unwrap_or_else(|| "—".into()), opt_change(o.scroll_depth, p.scroll_depth)))
            (stat("Engagement time", o.engagement_time.map(report::fmt_duration).unwrap_or_else(|| "—".into()), opt_change(o.engagement_time, p.engagement_time)))
        }
    }
}

fn money_list(m: &[Money]) -> String {
    Money::list(m, " · ", "—")
}

/// Where a site page lives and what it may offer: the signed-in dashboard or a share link.
pub struct Frame<'a> {
    /// `/sites/<key>` or `/share/<secret>`.
    pub base: &'a str,
    pub user: Option<&'a CurrentUser>,
    pub public_url: &'a str,
}

/// Everything the site page reads, gathered off the async threads in one go.
pub struct SiteData {
    pub report: SiteReport,
    pub realtime: Realtime,
    pub campaigns: Vec<Campaign>,
    pub any_events: bool,
    /// The chart: hourly for a one-day range, daily otherwise; and the same buckets of
    /// the period before, for comparison.
    pub chart: Vec<report::DayPoint>,
    pub chart_previous: Vec<report::DayPoint>,
    pub hourly: bool,
}

pub fn load_site(
    store: &dyn Store,
    site: &Site,
    view: &View,
    model: report::ads::Model,
    now: Millis,
) -> crate::store::Result<SiteData> {
    let q = view.query();
    let hourly = view.range.from_day == view.range.to_day;
    let interval = if hourly {
        report::Interval::Hour
    } else {
        report::Interval::Day
    };
    let before = Query {
        range: view.range.previous(),
        filters: view.filters.clone(),
    };
    let report = report::site_report(store, site, &q, PANEL_ROWS, model, now)?;
    // A daily chart is the report's own days (a filtered page would read its events twice).
    let chart = if hourly {
        report::series(store, site, &q, interval)?
    } else {
        report.days.clone()
    };
    Ok(SiteData {
        report,
        realtime: report::realtime(store, site, now, &view.filters, 5)?,
        campaigns: store.campaigns(Some(site.id))?,
        any_events: store.has_events(site.id)?,
        chart,
        chart_previous: report::series(store, site, &before, interval)?,
        hourly,
    })
}

/// How a value of `dim` is shown: its label for an empty value, a country's name, a
/// region's label.
pub fn shown_value(dim: Dim, value: &str) -> std::borrow::Cow<'_, str> {
    match (value.is_empty(), dim) {
        (true, _) => dim.empty_label().into(),
        (false, Dim::Country) => crate::model::country_name(value).into(),
        (false, Dim::Region) => crate::model::region_label(value).into(),
        _ => value.into(),
    }
}

/// The engagement cells of a page row (scroll depth, visible seconds), or dashes.
fn engagement_cells(r: &report::Row) -> Markup {
    html! {
        td.num.eng { (r.scroll_depth.map(|d| format!("{d:.0}%")).unwrap_or_else(|| "—".into())) }
        td.num.eng { (r.engagement_time.map(report::fmt_duration).unwrap_or_else(|| "—".into())) }
    }
}

/// Whether a panel of `dim` shows scroll depth and engagement time.
pub fn shows_engagement(dim: Dim, rows: &[report::Row]) -> bool {
    dim == Dim::Page && rows.iter().any(|r| r.scroll_depth.is_some())
}

/// One cell of a breakdown row: the value as a filter link (to the page at `base`,
/// "" for this one) where it can filter, and a link to the referring site for a plain
/// referrer host.
pub fn value_cell(base: &str, view: &View, dim: Dim, r: &report::Row, share: Markup) -> Markup {
    let shown = shown_value(dim, &r.value);
    html! {
        td {
            @if Filter::DIMS.contains(&dim) {
                a.filter href={(base) (view.add_filter(dim, &r.value))} title="Show only this" { (shown) }
            } @else {
                span.value { (shown) }
            }
            @if dim == Dim::Referrer {
                @if let Some(href) = referrer_link(&r.value) {
                    " " a.out href=(href) rel="noopener noreferrer nofollow" target="_blank" title="Open the referring site" { "↗" }
                }
            }
            (share)
        }
    }
}

fn panel(frame: &Frame<'_>, view: &View, dim: Dim, count: Count, rows: &[report::Row]) -> Markup {
    let max = rows.iter().map(|r| count.of(r)).max().unwrap_or(0);
    let engagement = shows_engagement(dim, rows);
    html! {
        section.panel data-dimension=(dim.name()) {
            h2 { (dim.title()) }
            @if dim == Dim::Bot {
                p.muted.small { "Bots, crawlers and tools: not counted anywhere else on this page." }
            }
            @if dim == Dim::Screen {
                p.muted.small { "Screen width from the JS tracker: " @for (i, s) in crate::store::ScreenSize::ALL.iter().enumerate() { @if i > 0 { ", " } (s.name()) " " (s.limits()) } "." }
            }
            @if rows.is_empty() {
                p.muted { "Nothing in this period." }
            } @else {
                table {
                    thead { tr {
                        th { (dim.name().replace('_', " ")) }
                        th.num { (count.label()) }
                        @if engagement { th.num.eng title="Mean deepest scroll per page view" { "scroll" } th.num.eng title="Mean visible time per page view" { "time" } }
                    } }
                    tbody {
                        @for r in rows {
                            tr {
                                (value_cell("", view, dim, r, chart::share(count.of(r), max)))
                                td.num { (count.of(r)) }
                                @if engagement { (engagement_cells(r)) }
                            }
                        }
                    }
                }
                @if rows.len() >= PANEL_ROWS {
                    p.panel-foot { a.details href={(frame.base) "/details/" (dim.name()) "?" (view.query_string())} { "Details: all " (dim.title().to_lowercase()) " →" } }
                }
            }
        }
    }
}

fn realtime_panel(base: &str, view: &View, rt: &Realtime) -> Markup {
    let src = if view.filters.is_empty() {
        format!("{base}/realtime.json")
    } else {
        format!("{base}/realtime.json?{}", view.query_string())
    };
    html! {
        section.panel.realtime id="realtime" data-src=(src) {
            h2 { "Last 30 minutes" }
            @if !view.filters.is_empty() { p.muted.small { "Only traffic matching the filters." } }
            p { strong data-rt="visitors" { (rt.visitors) } " visitors · " strong data-rt="pageviews" { (rt.pageviews) } " pageviews" }
            ul.plain data-rt="pages" {
                @for p in &rt.pages {
                    li { span { (p.value) } " " span.muted { (p.pageviews) } }
                }
            }
            p.muted.small { "Pages by page views. Refreshes every 30 seconds with JavaScript; reload otherwise." }
        }
    }
}

/// The filter form: a dimension, is / is not / contains, a value; the view's range and
/// filters ride along as hidden fields.
fn filter_form(frame: &Frame<'_>, view: &View) -> Markup {
    html! {
        form.filter-form method="get" action=(frame.base) {
            @if view.period == "custom" {
                input type="hidden" name="from" value=(DateRange::date(view.range.from_day));
                input type="hidden" name="to" value=(DateRange::date(view.range.to_day));
            } @else {
                input type="hidden" name="period" value=(view.period);
            }
            @for f in &view.filters {
                input type="hidden" name="f" value=(f.to_param());
            }
            label { "Filter " select name="fd" aria-label="dimension" {
                @for d in Filter::DIMS { option value=(d.name()) { (d.name().replace('_', " ")) } }
            } }
            select name="fo" aria-label="operator" {
                option value="is" { "is" }
                option value="is_not" { "is not" }
                option value="contains" { "contains" }
            }
            input type="text" name="fv" aria-label="value" placeholder="value" required maxlength="2048";
            button type="submit" { "Add" }
        }
    }
}

/// A goal's filter: an exact page or event name filters the page; a wildcard cannot be
/// one filter (filters are `is`, `is not`, `contains`).
fn goal_filter(view: &View, pattern: &str) -> Option<String> {
    let p = crate::store::Pattern::parse(pattern)?;
    if p.glob.contains('*') {
        return None;
    }
    let dim = match p.kind {
        crate::store::PatternKind::Page => Dim::Page,
        crate::store::PatternKind::Event => Dim::Event,
    };
    Some(view.add_filter(dim, &p.glob))
}

/// The country map above the panels, its countries filter links like the rows.
fn country_map(view: &View, rows: &[report::Row]) -> Markup {
    html! {
        section.panel.wide data-dimension="map" {
            h2 { "Visitors by country" }
            (super::map::render(rows, |code| view.add_filter(Dim::Country, code)))
        }
    }
}

/// The site page's body (shared by the dashboard and share links).
pub fn site_body(frame: &Frame<'_>, site: &Site, view: &View, d: &SiteData) -> Markup {
    let r = &d.report;
    let labels: Vec<String> = d
        .chart
        .iter()
        .map(|p| {
            if d.hourly {
                p.date.get(11..16).unwrap_or(&p.date).to_owned()
            } else {
                p.date.clone()
            }
        })
        .collect();
    let mut lines = vec![
        chart::Line {
            name: "visitors",
            class: "series-a",
            values: d.chart.iter().map(|p| p.visitors).collect(),
        },
        chart::Line {
            name: "pageviews",
            class: "series-b",
            values: d.chart.iter().map(|p| p.pageviews).collect(),
        },
    ];
    // The period before, when there is one to compare with.
    let compare =
        d.chart_previous.len() == d.chart.len() && d.chart_previous.iter().any(|p| p.visitors > 0);
    if compare {
        lines.push(chart::Line {
            name: "visitors, period before",
            class: "series-prev",
            values: d.chart_previous.iter().map(|p| p.visitors).collect(),
        });
    }
    let title = if d.hourly {
        "Visitors and pageviews per hour (UTC)"
    } else {
        "Visitors and pageviews per day"
    };
    let chart = chart::lines(title, &labels, &lines);
    let countries = r
        .breakdowns
        .iter()
        .find(|b| b.dimension == Dim::Country.name());
    html! {
        div.site-head {
            h1 { (site.name) }
            span.muted { (site.domain) }
        }
        nav.periods {
            @for (p, label) in PRESETS {
                @if *p == view.period {
                    strong { (label) }
                } @else {
                    a href=(view.with_period(p)) { (label) }
                }
            }
            form.range method="get" action=(frame.base) {
                @for f in &view.filters {
                    input type="hidden" name="f" value=(f.to_param());
                }
                label { "From " input type="date" name="from" value=(DateRange::date(view.range.from_day)); }
                label { "to " input type="date" name="to" value=(DateRange::date(view.range.to_day)); }
                button type="submit" { "Show" }
            }
        }
        (filter_form(frame, view))
        @if !view.filters.is_empty() {
            div.filters {
                "Only traffic where "
                @for (i, f) in view.filters.iter().enumerate() {
                    span.chip {
                        (f.dim.name()) " " (match f.op { crate::store::FilterOp::Is => "is", crate::store::FilterOp::IsNot => "is not", crate::store::FilterOp::Contains => "contains" }) " "
                        strong { (if f.value.is_empty() { f.dim.empty_label() } else { f.value.as_str() }) }
                        " " a.remove href=(view.without_filter(i)) title="Remove this filter" { "×" }
                    }
                }
                " " a href={"?" (view.query_with(&[]))} { "Clear all" }
            }
        }
        @if !d.any_events {
            section.empty {
                h2 { "No data yet" }
                p { "Add this to every page of " strong { (site.domain) } " (before " code { "</body>" } "):" }
                pre { code { (site.tracker_snippet(frame.public_url)) } }
                p.muted { "Or only the pixel, for emails and ads: " code { (frame.public_url) "/p.gif?s=" (site.key) } }
            }
        }
        (top_stats(&r.overview, &r.previous))
        section.chart-box {
            (chart)
            p.legend {
                span.key.series-a { "visitors" } " " span.key.series-b { "pageviews" }
                @if compare { " " span.key.series-prev { "visitors, " (DateRange::date(view.range.previous().from_day)) @if d.hourly { "" } @else { " to " (DateRange::date(view.range.previous().to_day)) } } }
            }
        }
        div.grid {
            @if let Some(c) = countries {
                (country_map(view, &c.rows))
            }
            (realtime_panel(frame.base, view, &d.realtime))
            @for (dim, count) in PANELS {
                @if let Some(b) = r.breakdowns.iter().find(|b| b.dimension == dim.name()) {
                    (panel(frame, view, *dim, *count, &b.rows))
                }
            }
            @if !r.goals.is_empty() {
                section.panel data-dimension="goal" {
                    h2 { "Goals" }
                    table {
                        thead { tr { th { "goal" } th.num { "visitors" } th.num { "rate" } } }
                        tbody {
                            @for g in &r.goals {
                                tr {
                                    td {
                                        @if let Some(href) = goal_filter(view, &g.pattern) {
                                            a.filter href=(href) title={"Show only " (g.pattern)} { (g.name) }
                                        } @else {
                                            span.value title=(g.pattern) { (g.name) }
                                        }
                                    }
                                    td.num { (g.visitors) }
                                    td.num { (g.conversion_rate.map(|p| format!("{p:.1}%")).unwrap_or_else(|| "—".into())) }
                                }
                            }
                        }
                    }
                }
            }
            @if r.conversions.conversions > 0 {
                section.panel data-dimension="conversions" {
                    h2 { "Conversions" }
                    p { strong { (r.conversions.conversions) } " conversions · revenue " (money_list(&r.conversions.revenue)) " · unattributed " (r.conversions.unattributed) }
                    table {
                        thead { tr { th { "campaign" } th.num { "conversions" } th { "revenue" } } }
                        tbody {
                            @for c in &r.conversions.by_campaign {
                                @let name = c.campaign_name.as_str();
                                tr {
                                    td {
                                        @if frame.user.is_some() {
                                            a href={"/campaigns/" (c.campaign_id)} { (name) }
                                        } @else { (name) }
                                        " " span.muted { "(" (c.channel) ")" }
                                    }
                                    td.num { (c.conversions) }
                                    td { (money_list(&c.revenue)) }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if frame.user.is_some() && !d.campaigns.is_empty() {
            section.campaigns {
                h2 { "Campaigns" }
                ul {
                    @for c in &d.campaigns {
                        li { a href={"/campaigns/" (c.id)} { (c.name) } }
                    }
                }
            }
        }
        script src=(layout::script_href()) defer {}
    }
}

/// The site `key` names (its key, or its domain: `Site::find`) among those `user` may see.
pub async fn find_site(state: &WebState, user: &CurrentUser, key: &str) -> Result<Site, WebError> {
    let store = state.store.clone();
    let sites = tokio::task::spawn_blocking(move || store.sites())
        .await
        .map_err(WebError::internal)?
        .map_err(WebError::internal)?;
    // Someone else's site is "not found", so a viewer cannot learn which sites exist.
    let visible: Vec<Site> = sites.into_iter().filter(|s| user.can_view(s.id)).collect();
    Site::find(&visible, key).cloned().ok_or(WebError::NotFound)
}

/// `GET /`: the sites the user may see, with last 30 days' visitors.
pub async fn home(State(state): State<WebState>, user: CurrentUser) -> Result<Response, WebError> {
    let store = state.store.clone();
    let today = day_of(state.clock.now_ms());
    let u = user.clone();
    let rows =
        tokio::task::spawn_blocking(move || -> crate::store::Result<Vec<(Site, i64, i64)>> {
            let q = Query::new(DateRange {
                from_day: today - 29,
                to_day: today,
            });
            let t = Query::new(DateRange {
                from_day: today,
                to_day: today,
            });
            store
                .sites()?
                .into_iter()
                .filter(|s| u.can_view(s.id))
                .map(|s| {
                    let month = report::overview(store.as_ref(), &s, &q)?.visitors;
                    let day = report::overview(store.as_ref(), &s, &t)?.visitors;
                    Ok((s, day, month))
                })
                .collect()
        })
        .await
        .map_err(WebError::internal)?
        .map_err(WebError::internal)?;
    let body = html! {
        h1 { "Sites" }
        @if rows.is_empty() {
            section.empty {
                @if user.is_admin() {
                    p { "No sites yet. Add one under " a href="/settings" { "Settings" } ", or with " code { "pixeltrack site add example.com" } "." }
                } @else {
                    p { "No sites are shared with you yet; ask an admin." }
                }
            }
        } @else {
            table.sites {
                thead { tr { th { "site" } th.num { "visitors today" } th.num { "last 30 days" } } }
                tbody {
                    @for (s, day, month) in &rows {
                        tr {
                            td { a href={"/sites/" (s.key)} { (s.name) } " " span.muted { (s.domain) } }
                            td.num { (day) }
                            td.num { (month) }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::render(layout::page("Sites", Some(&user), body)))
}

/// `GET /sites/<key>`: the site page.
pub async fn site_page(
    State(state): State<WebState>,
    user: CurrentUser,
    Path(key): Path<String>,
    uri: Uri,
) -> Result<Response, WebError> {
    let site = find_site(&state, &user, &key).await?;
    if site.key.as_str() != key {
        // `/sites/shop.example`, as people type it: on to the site's own address.
        let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
        return Ok(Redirect::to(&format!("/sites/{}{query}", site.key)).into_response());
    }
    let now = state.clock.now_ms();
    let view = View::parse(uri.query().unwrap_or(""), day_of(now))?;
    let (store, s2, v2, model) = (state.store.clone(), site.clone(), view.clone(), state.ads);
    let data = tokio::task::spawn_blocking(move || load_site(store.as_ref(), &s2, &v2, model, now))
        .await
        .map_err(WebError::internal)?
        .map_err(WebError::internal)?;
    let base = format!("/sites/{}", site.key);
    let frame = Frame {
        base: &base,
        user: Some(&user),
        public_url: &state.public_url,
    };
    // Refused and machine hits, and the site's management pages (`web/manage`).
    let notice = super::manage::site::notice(&state, &user, &site, uri.query().unwrap_or("")).await;
    let body = html! { (notice) (site_body(&frame, &site, &view, &data)) };
    Ok(layout::render(layout::page(&site.name, Some(&user), body)))
}

/// `GET /sites/<key>/realtime.json`: what app.js refreshes the realtime panel with.
pub async fn realtime_json(
    State(state): State<WebState>,
    user: CurrentUser,
    Path(key): Path<String>,
    uri: Uri,
) -> Result<Response, WebError> {
    let site = find_site(&state, &user, &key).await?;
    realtime_of(&state, site, &uri).await
}

/// The realtime numbers of `site`, under the filters of the page's query string.
pub async fn realtime_of(state: &WebState, site: Site, uri: &Uri) -> Result<Response, WebError> {
    let (store, now) = (state.store.clone(), state.clock.now_ms());
    let view = View::parse(uri.query().unwrap_or(""), day_of(now))?;
    let rt = tokio::task::spawn_blocking(move || {
        report::realtime(store.as_ref(), &site, now, &view.filters, 5)
    })
    .await
    .map_err(WebError::internal)?
    .map_err(WebError::internal)?;
    Ok(Json(rt).into_response())
}

fn pct(p: Option<f64>) -> String {
    p.map(|p| format!("{p:.1}%")).unwrap_or_else(|| "—".into())
}

fn ads_section(a: &AdReport) -> Markup {
    let t = &a.total;
    html! {
        section.panel.wide {
            h2 { "Ads" }
            p.muted { (a.attribution.replace('_', "-")) " attribution, " (a.lookback_days) "-day lookback · machine traffic not counted: " (t.bot_impressions) " impressions, " (t.bot_clicks) " clicks" }
            table {
                thead { tr { th { "ad" } th.num { "impressions" } th.num { "clicks" } th.num { "CTR" } th.num { "conversions" } th.num { "conv. rate" } th { "revenue" } th { "avg order" } } }
                tbody {
                    @for (label, l) in std::iter::once(("all ads", t)).chain(a.ads.iter().map(|l| (if l.ad.is_empty() { "(no ad id)" } else { l.ad.as_str() }, l))) {
                        tr {
                            td { (label) }
                            td.num { (l.impressions) }
                            td.num { (l.clicks) }
                            td.num { (pct(l.ctr)) }
                            td.num { (l.conversions) }
                            td.num { (pct(l.conversion_rate)) }
                            td { (money_list(&l.revenue)) }
                            td { (money_list(&l.average_order_value)) }
                        }
                    }
                }
            }
            @if let Some(c) = &a.cost {
                p { "Cost " (c.amount) " " (c.currency) " · cost per acquisition "
                    (a.cost_per_acquisition.as_ref().map(|m| format!("{} {}", m.amount, m.currency)).unwrap_or_else(|| "— (no conversions yet)".into())) }
            }
            @if a.email_conversions > 0 {
                p { "Conversions credited to this campaign's email clicks: " (a.email_conversions) }
            }
        }
    }
}

fn campaign_body(site: &Site, r: &CampaignReport) -> Markup {
    let o = &r.opens;
    let k = &r.clicks;
    let verdicts =
        |m: &std::collections::BTreeMap<&'static str, report::email::Counted>| -> Markup {
            html! {
                table {
                    thead { tr { th { "verdict" } th.num { "total" } th.num { "recipients" } } }
                    tbody {
                        @for (v, c) in m {
                            tr { td { (v.replace('_', " ")) } td.num { (c.total) } td.num { (c.unique) } }
                        }
                    }
                }
            }
        };
    let reasons = |rows: &[report::email::ReasonRow]| -> Markup {
        html! {
            table {
                thead { tr { th { "verdict" } th { "why" } th.num { "total" } th.num { "recipients" } } }
                tbody {
                    @for x in rows {
                        tr {
                            td { (x.verdict.replace('_', " ")) @if x.confidence == "probable" { " " span.muted.small { "(probable)" } } }
                            td { span.small { (x.explanation) } }
                            td.num { (x.total) }
                            td.num { (x.unique) }
                        }
                    }
                }
            }
        }
    };
    let email = o.total + k.total > 0 || r.sent_ms.is_some();
    let hours: Vec<String> = r
        .first_48h
        .iter()
        .map(|h| format!("+{}h", h.hour))
        .collect();
    let bars: Vec<(i64, i64)> = r
        .first_48h
        .iter()
        .map(|h| (h.human_opens, h.machine_opens))
        .collect();
    html! {
        div.site-head {
            h1 { (r.name) }
            span.muted { "campaign " (r.id) " · " a href={"/sites/" (site.key)} { (site.name) } }
        }
        @if email {
            section.stats {
                (stat("Delivered", r.delivered.map(|d| d.to_string()).unwrap_or_else(|| "—".into()), html!{}))
                (stat("Human opens", o.unique_human.to_string(), html! { span.change.flat { "open rate " (pct(o.rate_human)) } }))
                (stat("All opens (machines too)", o.unique.to_string(), html! { span.change.flat { "open rate " (pct(o.rate_all)) } }))
                (stat("Human clicks", k.unique_human.to_string(), html! { span.change.flat { "CTR " (pct(k.ctr)) } }))
                (stat("Uncertain clicks", k.uncertain.unique.to_string(), html! { span.change.flat { "CTR with them " (pct(k.ctr_with_uncertain)) } }))
                (stat("Click-to-open", pct(k.click_to_open), html!{}))
            }
            div.grid {
                section.panel { h2 { "Opens by verdict" } p.muted.small { "Human-triggered: human, gmail proxy, yahoo proxy, other proxy." } (verdicts(&o.by_verdict)) }
                section.panel { h2 { "Clicks by verdict" } (verdicts(&k.by_verdict)) }
                section.panel.wide {
                    h2 { "Why: opens by reason" }
                    (reasons(&o.by_reason))
                }
                section.panel.wide {
                    h2 { "Why: clicks by reason" }
                    p.muted.small { "Uncertain clicks (probable) are counted apart: " (k.uncertain.probably_human.unique) " recipients probably people, " (k.uncertain.probably_machine.unique) " probably machines; not in the human clicks." }
                    (reasons(&k.by_reason))
                }
                section.panel.wide {
                    h2 { "Opens in the first 48 hours" }
                    (chart::stacked_bars("Human and machine opens per hour after sending", &hours, &bars, ("human-triggered", "machine")))
                    p.legend { span.key.series-a { "human-triggered" } " " span.key.series-b { "machine" } }
                }
                section.panel.wide {
                    h2 { "Links" }
                    table {
                        thead { tr { th { "link" } th.num { "clicks" } th.num { "recipients" } th.num { "human" } th.num { "uncertain" } } }
                        tbody {
                            @for l in &r.links {
                                tr { td { span.value { (l.url) } } td.num { (l.total) } td.num { (l.unique) } td.num { (l.unique_human) } td.num { (l.unique_uncertain) } }
                            }
                        }
                    }
                }
                section.panel {
                    h2 { "Email clients" }
                    table {
                        thead { tr { th { "client" } th.num { "opens" } th.num { "human" } } }
                        tbody { @for c in &r.clients { tr { td { (c.value) } td.num { (c.opens) } td.num { (c.human_opens) } } } }
                    }
                }
                section.panel {
                    h2 { "Devices" }
                    table {
                        thead { tr { th { "device" } th.num { "opens" } th.num { "human" } } }
                        tbody { @for c in &r.devices { tr { td { (c.value) } td.num { (c.opens) } td.num { (c.human_opens) } } } }
                    }
                }
            }
        }
        @if let Some(a) = &r.ads {
            @let ad_activity = a.total.impressions + a.total.clicks + a.total.bot_impressions + a.total.bot_clicks + a.total.conversions > 0;
            @if !email && !ad_activity {
                section.empty {
                    h2 { "Nothing yet" }
                    p { "Tag an email for this campaign: " code { "pixeltrack email tag --campaign " (r.id) " --recipient <id> < email.html" } }
                    p { "Or make an ad link: " code { "pixeltrack link create --site " (site.key) " --campaign " (r.id) " --ad <ad> <landing URL>" }
                        " and an impression pixel: " code { "/p.gif?s=" (site.key) "&e=impression&cmp=" (r.id) "&ad=<ad>" } }
                }
            }
            @if ad_activity || a.cost.is_some() {
                (ads_section(a))
            }
        }
    }
}

/// `GET /campaigns/<id>`: the campaign page (email and ads).
pub async fn campaign_page(
    State(state): State<WebState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id: i64 = id.parse().map_err(|_| WebError::NotFound)?;
    let (store, model, now) = (state.store.clone(), state.ads, state.clock.now_ms());
    let u = user.clone();
    let found = tokio::task::spawn_blocking(
        move || -> crate::store::Result<Option<(Site, CampaignReport)>> {
            let Some(c) = store.campaign(id)? else {
                return Ok(None);
            };
            let Some(site) = store
                .sites()?
                .into_iter()
                .find(|s| s.id.0 == c.site_id && u.can_view(s.id))
            else {
                return Ok(None);
            };
            let r = report::campaign(store.as_ref(), &c, model, now, false)?;
            Ok(Some((site, r)))
        },
    )
    .await
    .map_err(WebError::internal)?
    .map_err(WebError::internal)?;
    let (site, r) = found.ok_or(WebError::NotFound)?;
    let body = campaign_body(&site, &r);
    Ok(layout::render(layout::page(&r.name, Some(&user), body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_campaign_page_shows_each_verdicts_reason_and_uncertain_clicks_apart() {
        let c = crate::model::Campaign {
            id: 7,
            site_id: 1,
            name: "Reset".into(),
            created_ms: 0,
            sent_ms: Some(0),
            delivered: Some(10),
            cost: None,
        };
        let row = |who: &str, name: &str, verdict: &str, reason: &str| crate::store::EmailRow {
            ts_ms: 1_000,
            name: name.into(),
            recipient: who.into(),
            link: "https://shop.example/".into(),
            verdict: verdict.into(),
            client: "Outlook".into(),
            device: "desktop".into(),
            reason: reason.into(),
        };
        let events = vec![
            row("a", "email_open", "human", "mail_client"),
            row("a", "email_click", "human", "ok"),
            row("b", "email_click", "scanner", "cloud_network"),
            row("c", "email_click", "scanner", "<script>"),
        ];
        let r = report::email::campaign_report(&c, &events, false);
        let site = Site {
            id: crate::model::SiteId(1),
            key: crate::model::SiteKey::parse("k").unwrap(),
            domain: "shop.example".into(),
            name: "Shop".into(),
            created_ms: 0,
            privacy: Default::default(),
            hosts: Vec::new(),
            matomo_id: None,
        };
        let html = campaign_body(&site, &r).into_string();
        for want in [
            "Why: clicks by reason",
            "loaded by a mail app",
            "probably a scanner: the request came from a public cloud",
            "(probable)",
            "Uncertain clicks",
        ] {
            assert!(html.contains(want), "{want} missing");
        }
        assert!(
            !html.contains("<script>"),
            "an unknown stored reason is escaped"
        );
    }

    #[test]
    fn views_parse_presets_dates_and_filters() {
        let today = 20_000;
        let v = View::parse("", today).unwrap();
        assert_eq!(
            (v.period.as_str(), v.range.from_day, v.range.to_day),
            ("30d", today - 29, today)
        );
        let v = View::parse(
            "from=2024-01-01&to=2024-01-31&f=source%3D%3DGoogle&f=page~blog",
            today,
        )
        .unwrap();
        assert_eq!(v.period, "custom");
        assert_eq!(v.filters.len(), 2);
        assert_eq!(
            v.add_filter(Dim::Source, "Bing"),
            "?from=2024-01-01&to=2024-01-31&f=page%7Eblog&f=source%3D%3DBing"
        );
        assert_eq!(
            v.without_filter(0),
            "?from=2024-01-01&to=2024-01-31&f=page%7Eblog"
        );
        for bad in [
            "from=2024-01-01'--&to=2024-01-02",
            "f=referrer)%20UNION%20SELECT%201--==x",
            "period=forever",
            "from=2024-02-01&to=2024-01-01",
        ] {
            assert!(View::parse(bad, today).is_err(), "{bad}");
        }
        let m = View::parse(
            "period=lastmonth",
            DateRange::parse_date("2026-03-15").unwrap(),
        )
        .unwrap();
        assert_eq!(
            (
                DateRange::date(m.range.from_day),
                DateRange::date(m.range.to_day)
            ),
            ("2026-02-01".into(), "2026-02-28".into())
        );
    }

    #[test]
    fn the_filter_form_and_yesterday_make_views() {
        let today = 20_000;
        let v = View::parse("period=yesterday", today).unwrap();
        assert_eq!((v.range.from_day, v.range.to_day), (today - 1, today - 1));
        let v = View::parse(
            "period=7d&f=page%3D%3D%2Fa&fd=source&fo=is_not&fv=Google",
            today,
        )
        .unwrap();
        assert_eq!(
            v.filters.iter().map(Filter::to_param).collect::<Vec<_>>(),
            ["page==/a", "source!=Google"]
        );
        let v = View::parse("fd=utm_campaign&fo=contains&fv=<b>", today).unwrap();
        assert_eq!(v.filters[0].to_param(), "utm_campaign~<b>");
        for bad in [
            "fd=bot&fo=is&fv=x",
            "fd=page&fo=like&fv=x",
            "fd=page)--&fv=x",
        ] {
            assert!(View::parse(bad, today).is_err(), "{bad}");
        }
    }

    #[test]
    fn exact_goals_become_filters_and_wildcards_do_not() {
        let v = View::parse("period=7d", 20_000).unwrap();
        assert_eq!(
            goal_filter(&v, "page:/thanks").as_deref(),
            Some("?period=7d&f=page%3D%3D%2Fthanks")
        );
        assert_eq!(
            goal_filter(&v, "event:signup").as_deref(),
            Some("?period=7d&f=event%3D%3Dsignup")
        );
        assert_eq!(goal_filter(&v, "page:/blog/*"), None);
    }

    #[test]
    fn only_plain_host_names_become_referrer_links() {
        assert_eq!(
            referrer_link("news.example"),
            Some("https://news.example/".into())
        );
        for bad in [
            "",
            "javascript:alert(1)",
            "localhost",
            "a b.example",
            "x.example/\"><img",
            "com.google.android.gm:",
        ] {
            assert_eq!(referrer_link(bad), None, "{bad}");
        }
    }
}
