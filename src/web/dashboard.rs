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
use axum::response::{IntoResponse, Response};
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

/// The breakdown panels, in display order, with their titles and the count they show.
const PANELS: &[(Dim, &str, Count)] = &[
    (Dim::Page, "Pages", Count::Pageviews),
    (Dim::Source, "Sources", Count::Visitors),
    (Dim::Title, "Page titles", Count::Pageviews),
    (Dim::EntryPage, "Entry pages", Count::Visits),
    (Dim::ExitPage, "Exit pages", Count::Visits),
    (Dim::Referrer, "Referrers", Count::Visitors),
    (Dim::Medium, "Media", Count::Visitors),
    (Dim::UtmSource, "UTM sources", Count::Visitors),
    (Dim::UtmMedium, "UTM media", Count::Visitors),
    (Dim::UtmCampaign, "UTM campaigns", Count::Visitors),
    (Dim::Browser, "Browsers", Count::Visitors),
    (Dim::Os, "Operating systems", Count::Visitors),
    (Dim::Device, "Devices", Count::Visitors),
    (Dim::Country, "Countries", Count::Visitors),
    (Dim::Region, "Regions", Count::Visitors),
    (Dim::City, "Cities", Count::Visitors),
    (Dim::Event, "Events", Count::Events),
    (Dim::EventProp, "Event properties", Count::Events),
    (Dim::Outbound, "Outbound links", Count::Events),
    (Dim::Download, "Downloads", Count::Events),
    (
        Dim::Bot,
        "Machine traffic (not counted above)",
        Count::Events,
    ),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Count {
    Visitors,
    Visits,
    Pageviews,
    Events,
}

impl Count {
    fn label(self) -> &'static str {
        match self {
            Count::Visitors => "visitors",
            Count::Visits => "visits",
            Count::Pageviews => "views",
            Count::Events => "events",
        }
    }
    fn of(self, r: &report::Row) -> i64 {
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
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            match k.as_ref() {
                "period" => period = Some(v.into_owned()),
                "from" if !v.is_empty() => from = Some(v.into_owned()),
                "to" if !v.is_empty() => to = Some(v.into_owned()),
                "from" | "to" => {}
                "f" => filters.push(Filter::parse(&v).map_err(WebError::BadRequest)?),
                _ => {}
            }
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
    fn add_filter(&self, dim: Dim, value: &str) -> String {
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

    fn query(&self) -> Query {
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
    html! { span class=(class) title="against the previous period of the same length" { (arrow) " " (format!("{:.0}%", pct.abs())) } }
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
}

pub fn load_site(
    store: &dyn Store,
    site: &Site,
    view: &View,
    model: report::ads::Model,
    now: Millis,
) -> crate::store::Result<SiteData> {
    Ok(SiteData {
        report: report::site_report(store, site, &view.query(), 10, model)?,
        realtime: report::realtime(store, site, now, 5)?,
        campaigns: store.campaigns(Some(site.id))?,
        any_events: store.has_events(site.id)?,
    })
}

fn panel(view: &View, dim: Dim, title: &str, count: Count, rows: &[report::Row]) -> Markup {
    let filterable = Filter::DIMS.contains(&dim);
    let max = rows.iter().map(|r| count.of(r)).max().unwrap_or(0);
    html! {
        section.panel data-dimension=(dim.name()) {
            h2 { (title) }
            @if rows.is_empty() {
                p.muted { "Nothing in this period." }
            } @else {
                table {
                    thead { tr { th { (dim.name().replace('_', " ")) } th.num { (count.label()) } } }
                    tbody {
                        @for r in rows {
                            @let region;
                            @let shown = match (r.value.is_empty(), dim) {
                                (true, _) => dim.empty_label(),
                                (false, Dim::Country) => crate::model::country_name(&r.value),
                                (false, Dim::Region) => {
                                    region = crate::model::region_label(&r.value);
                                    region.as_str()
                                }
                                _ => r.value.as_str(),
                            };
                            tr {
                                td {
                                    @if filterable {
                                        a.filter href=(view.add_filter(dim, &r.value)) title="Show only this" { (shown) }
                                    } @else {
                                        span.value { (shown) }
                                    }
                                    @if dim == Dim::Referrer {
                                        @if let Some(href) = referrer_link(&r.value) {
                                            " " a.out href=(href) rel="noopener noreferrer nofollow" target="_blank" title="Open the referring site" { "↗" }
                                        }
                                    }
                                    (chart::share(count.of(r), max))
                                }
                                td.num { (count.of(r)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn realtime_panel(base: &str, rt: &Realtime) -> Markup {
    html! {
        section.panel.realtime id="realtime" data-src={(base) "/realtime.json"} {
            h2 { "Last 30 minutes" }
            p { strong data-rt="visitors" { (rt.visitors) } " visitors · " strong data-rt="pageviews" { (rt.pageviews) } " pageviews" }
            ul data-rt="pages" {
                @for p in &rt.pages {
                    li { span { (p.value) } " " span.muted { (p.pageviews) } }
                }
            }
            p.muted.small { "Refreshes every 30 seconds with JavaScript; reload otherwise." }
        }
    }
}

/// The site page's body (shared by the dashboard and share links).
pub fn site_body(frame: &Frame<'_>, site: &Site, view: &View, d: &SiteData) -> Markup {
    let r = &d.report;
    let labels: Vec<String> = r.days.iter().map(|p| p.date.clone()).collect();
    let chart = chart::lines(
        "Visitors and pageviews per day",
        &labels,
        &[
            chart::Line {
                name: "visitors",
                class: "series-a",
                values: r.days.iter().map(|p| p.visitors).collect(),
            },
            chart::Line {
                name: "pageviews",
                class: "series-b",
                values: r.days.iter().map(|p| p.pageviews).collect(),
            },
        ],
    );
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
        section.chart-box { (chart) p.legend { span.key.series-a { "visitors" } " " span.key.series-b { "pageviews" } } }
        div.grid {
            (realtime_panel(frame.base, &d.realtime))
            @for (dim, title, count) in PANELS {
                @if let Some(b) = r.breakdowns.iter().find(|b| b.dimension == dim.name()) {
                    (panel(view, *dim, title, *count, &b.rows))
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
                                    td { span.value title=(g.pattern) { (g.name) } }
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

async fn find_site(state: &WebState, user: &CurrentUser, key: &str) -> Result<Site, WebError> {
    let store = state.store.clone();
    let sites = tokio::task::spawn_blocking(move || store.sites())
        .await
        .map_err(WebError::internal)?
        .map_err(WebError::internal)?;
    // Someone else's site is "not found", so a viewer cannot learn which sites exist.
    sites
        .into_iter()
        .find(|s| s.key.as_str() == key && user.can_view(s.id))
        .ok_or(WebError::NotFound)
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
    let body = site_body(&frame, &site, &view, &data);
    Ok(layout::render(layout::page(&site.name, Some(&user), body)))
}

/// `GET /sites/<key>/realtime.json`: what app.js refreshes the realtime panel with.
pub async fn realtime_json(
    State(state): State<WebState>,
    user: CurrentUser,
    Path(key): Path<String>,
) -> Result<Response, WebError> {
    let site = find_site(&state, &user, &key).await?;
    realtime_of(&state, site).await
}

pub async fn realtime_of(state: &WebState, site: Site) -> Result<Response, WebError> {
    let (store, now) = (state.store.clone(), state.clock.now_ms());
    let rt = tokio::task::spawn_blocking(move || report::realtime(store.as_ref(), &site, now, 5))
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
