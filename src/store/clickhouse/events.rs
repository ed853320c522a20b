//! Raw-event reads on ClickHouse: the queries behind [`crate::store::EventStore`]
//! (filtered reports, campaign reports, ads, attribution, goals, funnels, exports),
//! each answering exactly what the SQLite backend's query answers (`sqlite/events.rs`):
//! the same rows, in the same order, with the same conventions (a bot is `''`, not
//! NULL, here; times are `ts` seconds and `ts_ms` milliseconds, 18.16 having no
//! DateTime64).
//!
//! Every query names the read table `events` (a Merge table on one server, a
//! Distributed table on a cluster) right after FROM, so on a cluster the whole query —
//! its visit join included — runs on each shard against that shard's `sessions_local`,
//! which holds the visits of the same visitors. Filtered reports read the values a
//! visit started with from its events (`visit_*`, schema 6) and join only what changes.

use clickhouse::Row;
use serde::Deserialize;

use super::{sql, ChError, ClickHouse, Result};
use crate::clock::{Millis, DAY_MS};
use crate::model::{AdFields, BotReason, Device, EmailFields, Event, Utm, Verdict};
use crate::store::sqlite::{intern_client, intern_reason};
use crate::store::{
    AdCount, Counts, Dim, EmailRow, Filter, FilterOp, Group, Pattern, PatternKind, Touch,
    WebCounts, SESSION_DIMS,
};

/// An event's time in milliseconds.
const MS: &str = "(toInt64(ts) * 1000 + ts_ms)";
/// Web traffic: no bots, no email or ad events (those have a campaign).
const WEB_EVENT: &str = "bot = '' AND isNull(campaign_id)";

/// Every column of an event, in [`EventRead`] order.
const EVENT_COLUMNS: &str = "site_id, ts, ts_ms, name, visitor_id, session_id, host, path, \
    query, title, referrer, referrer_host, source, medium, utm_source, utm_medium, \
    utm_campaign, utm_term, utm_content, click_id, browser, browser_version, os, os_version, \
    device, bot, value_minor, currency, order_id, props, ip, campaign_id, recipient, link, \
    verdict, verdict_reason, email_client, scroll_pct, engaged_ms, screen_width, ad, \
    placement, country, region, city, asn, as_org";

#[derive(Row, Deserialize, Debug)]
struct EventRead {
    site_id: i64,
    ts: u32,
    ts_ms: u16,
    name: String,
    visitor_id: i64,
    session_id: i64,
    host: String,
    path: String,
    query: String,
    title: String,
    referrer: String,
    referrer_host: String,
    source: String,
    medium: String,
    utm: [String; 5],
    click_id: String,
    browser: String,
    browser_version: String,
    os: String,
    os_version: String,
    device: String,
    bot: String,
    value_minor: Option<i64>,
    currency: String,
    order_id: String,
    props: String,
    ip: String,
    campaign_id: Option<i64>,
    recipient: String,
    link: String,
    verdict: String,
    verdict_reason: String,
    email_client: String,
    scroll_pct: Option<i64>,
    engaged_ms: Option<i64>,
    screen_width: Option<i64>,
    ad: String,
    placement: String,
    country: String,
    region: String,
    city: String,
    asn: u32,
    as_org: String,
}

impl EventRead {
    /// The event as the SQLite backend reads it back (`event_from_row`): a campaign
    /// event with a verdict is email, one without is an ad.
    fn into_event(self) -> Event {
        let [utm_source, utm_medium, utm_campaign, utm_term, utm_content] = self.utm;
        let email = match (self.campaign_id, self.verdict.is_empty()) {
            (Some(campaign_id), false) => Some(EmailFields {
                campaign_id,
                recipient: self.recipient.clone(),
                link: self.link.clone(),
                verdict: Verdict::parse(&self.verdict).unwrap_or(Verdict::Human),
                reason: intern_reason(&self.verdict_reason),
                client: intern_client(&self.email_client),
            }),
            _ => None,
        };
        let ad = match (self.campaign_id, self.verdict.is_empty()) {
            (Some(campaign_id), true) => Some(AdFields {
                campaign_id,
                link: self.link,
                ad: self.ad,
                placement: self.placement,
            }),
            _ => None,
        };
        Event {
            site_id: self.site_id,
            ts_ms: i64::from(self.ts) * 1000 + i64::from(self.ts_ms),
            name: self.name.into(),
            visitor_id: self.visitor_id,
            session_id: self.session_id,
            host: self.host.into(),
            path: self.path,
            query: self.query,
            title: self.title,
            referrer: self.referrer,
            referrer_host: self.referrer_host.into(),
            source: self.source.into(),
            medium: self.medium.into(),
            utm: Utm {
                source: utm_source,
                medium: utm_medium,
                campaign: utm_campaign,
                term: utm_term,
                content: utm_content,
            },
            click_id: self.click_id,
            browser: self.browser.into(),
            browser_version: self.browser_version.into(),
            os: self.os.into(),
            os_version: self.os_version.into(),
            device: Device::parse(&self.device),
            bot: BotReason::parse(&self.bot),
            value_minor: self.value_minor,
            currency: self.currency.into(),
            order_id: self.order_id,
            props: self.props.into(),
            ip: (!self.ip.is_empty()).then_some(self.ip),
            email,
            scroll_pct: self.scroll_pct,
            engaged_ms: self.engaged_ms,
            screen_width: self.screen_width,
            ad,
            country: self.country.into(),
            region: self.region.into(),
            city: self.city.into(),
            asn: self.asn,
            as_org: self.as_org,
        }
    }
}

/// One row of `web_rows`, in `WebRow`'s terms.
#[derive(Row, Deserialize)]
pub struct WebRowRead {
    t_ms: i64,
    visitor_id: i64,
    session_id: i64,
    name: String,
    path: String,
    title: String,
    scroll_pct: Option<i64>,
    engaged_ms: Option<i64>,
    visit_events: i64,
    visit_ms: i64,
    entry_page: String,
    exit_page: String,
    dims: Vec<String>,
}

impl WebRowRead {
    pub fn into_web_row(self) -> crate::store::WebRow {
        crate::store::WebRow {
            ts_ms: self.t_ms,
            visitor_id: self.visitor_id,
            session_id: self.session_id,
            name: self.name,
            path: self.path,
            title: self.title,
            dims: self.dims,
            entry_page: self.entry_page,
            exit_page: self.exit_page,
            visit_events: self.visit_events,
            visit_ms: self.visit_ms,
            scroll_pct: self.scroll_pct,
            engaged_ms: self.engaged_ms,
        }
    }
}

/// One `(group, value)` of `web_counts`.
#[derive(Row, Deserialize)]
struct MarkRead {
    day: i64,
    mark: i64,
}

#[derive(Row, Deserialize, Debug)]
struct CountRead {
    /// The UTC day, or 0 when the range is counted whole.
    d: i64,
    g: u16,
    v: String,
    visitors: i64,
    visits: i64,
    pageviews: i64,
    events: i64,
    bounces: i64,
    duration_ms: i64,
    scroll_sum: i64,
    scroll_n: i64,
    engaged_ms: i64,
}

#[derive(Row, Deserialize, Debug)]
struct EmailRead {
    ms: i64,
    name: String,
    recipient: String,
    link: String,
    verdict: String,
    client: String,
    device: String,
    reason: String,
}

#[derive(Row, Deserialize, Debug)]
struct AdRead {
    campaign_id: i64,
    ad: String,
    name: String,
    bot: u8,
    n: u64,
}

#[derive(Row, Deserialize, Debug)]
struct TouchRead {
    ms: i64,
    name: String,
    visitor_id: i64,
    click_id: String,
    campaign_id: Option<i64>,
    ad: String,
    value_minor: Option<i64>,
    currency: String,
}

/// Where a filterable dimension's value is: on the event itself (`path`), on the
/// event as its visit started (`visit_source`, schema 6; with the event's own column
/// when no visit was known), or on the visit as it stands now (the exit page, from the
/// joined visits). The visits' own column, when it never changes, lets the join read
/// only the visits that can match.
enum Column {
    Event(&'static str),
    Started {
        visits: &'static str,
        event: &'static str,
    },
    Now(&'static str),
}

fn dim_column(d: Dim) -> Option<Column> {
    let started = |visits, event| Column::Started { visits, event };
    Some(match d {
        Dim::Page => Column::Event("path"),
        Dim::Title => Column::Event("title"),
        Dim::Event => Column::Event("name"),
        Dim::EntryPage => started("entry_page", "''"),
        Dim::ExitPage => Column::Now("s_exit_page"),
        Dim::Source => started("source", "source"),
        Dim::Referrer => started("referrer_host", "referrer_host"),
        Dim::Medium => started("medium", "medium"),
        Dim::UtmSource => started("utm_source", "utm_source"),
        Dim::UtmMedium => started("utm_medium", "utm_medium"),
        Dim::UtmCampaign => started("utm_campaign", "utm_campaign"),
        Dim::UtmTerm => started("utm_term", "utm_term"),
        Dim::UtmContent => started("utm_content", "utm_content"),
        Dim::Browser => started("browser", "browser"),
        Dim::Os => started("os", "os"),
        Dim::Device => started("device", "device"),
        Dim::Country => started("country", "country"),
        Dim::Region => started("region", "region"),
        Dim::City => started("city", "city"),
        _ => return None,
    })
}

/// A dimension's value in the `web_counts` query — the visit's when the event has one,
/// else the event's own: SQLite's `COALESCE(s.x, e.x)`. Only these fixed strings are
/// spliced.
fn dim_expr(d: Dim) -> Option<String> {
    Some(match dim_column(d)? {
        Column::Event(c) => c.to_owned(),
        Column::Started { visits, event } => {
            format!("if(visit_found = 1, visit_{visits}, {event})")
        }
        Column::Now(c) => format!("if(found = 1, {c}, '')"),
    })
}

/// `col = 'v'`, `col != 'v'` or a case-insensitive substring test.
fn filter_cond(col: &str, flt: &Filter) -> String {
    let v = sql::literal(&flt.value);
    match flt.op {
        FilterOp::Is => format!("{col} = {v}"),
        FilterOp::IsNot => format!("{col} != {v}"),
        // SQLite's lower() and instr(): ASCII case folding, bytes otherwise.
        FilterOp::Contains => format!("position(lower({col}), lower({v})) > 0"),
    }
}

/// Ranges up to this long read only the visits of their events' visit ids.
const NARROW_VISITS_MS: Millis = 2 * DAY_MS;

/// The longest visitor and click id lists `touches_of` puts in one statement (the
/// server parses at most 256 KiB of a query by default).
const TOUCH_LISTS_MAX: usize = 128 * 1024;

/// Past this many bytes of grouping state, a filtered report's statement spills to disk
/// rather than fail at the server's memory limit (at 10 M events one takes 1.9 GB).
const SPILL_BYTES: u64 = 2_000_000_000;

/// `(value, counted)` of an event in `group`, over the columns of the `web_counts`
/// subquery: what `Tally`'s `value_of` answers (not counted: `counted` is 0). An
/// engagement event is counted in the total, its hours and its page only (its scroll
/// depth and visible time; the aggregates leave it out of every other number).
fn group_cell(group: Group) -> Option<(String, String)> {
    Some(match group {
        Group::Total => ("''".into(), "toUInt8(1)".into()),
        Group::Hours(h) => (
            format!(
                "toString(intDiv(intDiv(toInt64(ts), 3600), {h}) * {h})",
                h = h.max(1)
            ),
            "toUInt8(1)".into(),
        ),
        Group::Dim(d) => {
            let column = match d {
                Dim::Page => "path".to_owned(),
                Dim::Title => "title".to_owned(),
                Dim::Event => "name".to_owned(),
                Dim::EntryPage => "entry_page".to_owned(),
                Dim::ExitPage => "exit_page".to_owned(),
                d if SESSION_DIMS.contains(&d) => format!("d_{}", d.name()),
                _ => return None,
            };
            let mut counted = match d {
                Dim::Page => "name IN ('pageview', 'engagement')".to_owned(),
                Dim::Title => "name = 'pageview'".to_owned(),
                Dim::Event => "name NOT IN ('pageview', 'engagement')".to_owned(),
                _ => "name != 'engagement'".to_owned(),
            };
            if d.empty_means_unset() {
                counted = format!("{counted} AND {column} != ''");
            }
            (column, format!("toUInt8({counted})"))
        }
    })
}

/// The condition of one pattern kind: a regular expression matching exactly what the
/// SQLite backend's `GLOB` matches (`*` is any text, everything else itself).
fn pattern_expr(p: &Pattern) -> String {
    let column = match p.kind {
        PatternKind::Event => "name",
        PatternKind::Page => "path",
    };
    let cond = format!("match({column}, {})", sql::literal(&glob_regex(&p.glob)));
    match p.kind {
        PatternKind::Event => cond,
        PatternKind::Page => format!("(name = 'pageview' AND {cond})"),
    }
}

/// `glob` as an RE2 expression anchored at both ends: `*` becomes `.*`, every ASCII
/// punctuation character is escaped, and `(?s)` lets `.` match newlines.
pub fn glob_regex(glob: &str) -> String {
    let mut out = String::from("(?s)^");
    for c in glob.chars() {
        match c {
            '*' => out.push_str(".*"),
            c if c.is_ascii_punctuation() => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push('$');
    out
}

/// `ts` bounds for `[from, to)` in milliseconds, so the primary key's date is used;
/// the exact condition on milliseconds follows them.
fn range(from_ms: Millis, to_ms: Millis) -> String {
    // Stored times lie in DateTime's range (see `row::split_ms`).
    let last = i64::from(u32::MAX) * 1000 + 1000;
    let (from_ms, to_ms) = (from_ms.clamp(0, last), to_ms.clamp(0, last));
    let (from_s, to_s) = (from_ms / 1000, (to_ms / 1000).min(i64::from(u32::MAX)));
    format!(
        "ts >= toDateTime({from_s}) AND ts <= toDateTime({to_s}) \
         AND {MS} >= {from_ms} AND {MS} < {to_ms}"
    )
}

impl ClickHouse {
    async fn fetch_all<T>(&self, sql: String) -> Result<Vec<T>>
    where
        T: clickhouse::RowOwned + clickhouse::RowRead,
    {
        self.timed(async { Ok(self.main.query_raw(&sql).fetch_all::<T>().await?) })
            .await
    }

    /// Sends `sql`'s rows to `tx`, in order, converted by `f`; stops quietly when the
    /// receiver is gone (the reader stopped reading). Each row must arrive within the
    /// timeout, not the whole stream. Rows go through a channel, not a callback, so
    /// the consumer runs outside this runtime (it may block, even on another runtime).
    async fn stream<T, U>(
        &self,
        sql: &str,
        tx: tokio::sync::mpsc::Sender<U>,
        f: impl Fn(T) -> U,
    ) -> Result<u64>
    where
        T: clickhouse::RowOwned + clickhouse::RowRead,
    {
        let mut cursor = self.main.query_raw(sql).fetch::<T>()?;
        let mut n = 0;
        loop {
            let next = tokio::time::timeout(self.timeout, cursor.next())
                .await
                .map_err(|_| ChError::TimedOut(self.timeout))??;
            let Some(row) = next else {
                return Ok(n);
            };
            if tx.send(f(row)).await.is_err() {
                return Ok(n);
            }
            n += 1;
        }
    }

    /// Every event of a site in `[from, to)`, oldest first.
    pub async fn for_each_event(
        &self,
        site_id: i64,
        from_ms: Millis,
        to_ms: Millis,
        tx: tokio::sync::mpsc::Sender<Event>,
    ) -> Result<u64> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM {db}.events \
             WHERE site_id = {site_id} AND {range} ORDER BY ts, ts_ms, event_id",
            db = self.db,
            range = range(from_ms, to_ms),
        );
        self.stream(&sql, tx, EventRead::into_event).await
    }

    pub async fn site_event_count(&self, site_id: i64) -> Result<u64> {
        let sql = format!(
            "SELECT count() FROM {}.events WHERE site_id = {site_id}",
            self.db
        );
        self.timed(async { Ok(self.main.query_raw(&sql).fetch_one::<u64>().await?) })
            .await
    }

    pub async fn has_events(&self, site_id: i64) -> Result<bool> {
        let sql = format!(
            "SELECT count() FROM (SELECT 1 FROM {}.events WHERE site_id = {site_id} LIMIT 1)",
            self.db
        );
        let n = self
            .timed(async { Ok(self.main.query_raw(&sql).fetch_one::<u64>().await?) })
            .await?;
        Ok(n > 0)
    }

    /// The web events in `[from, to)` matching every filter, counted per group in one
    /// scan: each event is repeated once per group it counts in (`ARRAY JOIN` over
    /// `(group, value, counted)`), then grouped by `(group, value)` — the rules of
    /// `store::web_counts::Tally`, in SQL, so only the groups' rows leave the server.
    pub async fn web_counts(
        &self,
        site_id: i64,
        from_ms: Millis,
        to_ms: Millis,
        filters: &[Filter],
        groups: &[Group],
    ) -> Result<WebCounts> {
        let mut days = self
            .web_counts_of(site_id, from_ms, to_ms, filters, groups, false)
            .await?;
        Ok(days
            .pop()
            .map_or_else(|| WebCounts::empty(groups), |(_, c)| c))
    }

    /// [`web_counts`](Self::web_counts) of each UTC day of `[first, end)`, in one query.
    pub async fn web_counts_by_day(
        &self,
        site_id: i64,
        (first, end): (i64, i64),
        filters: &[Filter],
        groups: &[Group],
    ) -> Result<Vec<(i64, WebCounts)>> {
        let mut days = self
            .web_counts_of(site_id, first * DAY_MS, end * DAY_MS, filters, groups, true)
            .await?;
        // Every day of the range, those without a matching event too.
        let have: std::collections::HashSet<i64> = days.iter().map(|(d, _)| *d).collect();
        for d in (first..end).filter(|d| !have.contains(d)) {
            days.push((d, WebCounts::empty(groups)));
        }
        Ok(days)
    }

    /// The counts of `[from, to)`, whole (one entry, day 0) or per UTC day.
    async fn web_counts_of(
        &self,
        site_id: i64,
        from_ms: Millis,
        to_ms: Millis,
        filters: &[Filter],
        groups: &[Group],
        by_day: bool,
    ) -> Result<Vec<(i64, WebCounts)>> {
        // Three places a filter applies: the events as read (PREWHERE: their own and
        // their visit's starting values), the visits joined (only those that can
        // match), and the joined rows (the exit page, which changes as a visit goes on).
        let (mut on_events, mut on_visits, mut on_joined) =
            (String::new(), String::new(), String::new());
        for flt in filters {
            let col = dim_column(flt.dim)
                .ok_or_else(|| ChError::Server(format!("cannot filter by {}", flt.dim.name())))?;
            let expr = dim_expr(flt.dim).unwrap_or_default();
            let cond = format!(" AND {}", filter_cond(&expr, flt));
            match col {
                Column::Event(_) => on_events.push_str(&cond),
                Column::Started { visits, .. } => {
                    on_events.push_str(&cond);
                    on_visits.push_str(&format!(" AND {}", filter_cond(visits, flt)));
                }
                Column::Now(_) => on_joined.push_str(&cond),
            }
        }
        let visits = self.visits_join(site_id, from_ms, to_ms, &on_visits);
        let mut cells = Vec::new();
        for (i, g) in groups.iter().enumerate() {
            if let Some((value, counted)) = group_cell(*g) {
                cells.push(format!("({i}, {value}, {counted})"));
            }
        }
        let empty = || WebCounts::empty(groups);
        if cells.is_empty() || groups.len() > 255 {
            return Ok(if by_day {
                Vec::new()
            } else {
                vec![(0, empty())]
            });
        }
        let day = if by_day {
            "toInt64(intDiv(toUInt32(ts), 86400))"
        } else {
            "toInt64(0)"
        };
        let sql = format!(
            "SELECT {day} AS d, toUInt16(cell.1) AS g, cell.2 AS v,
                    toInt64(uniqExactIf(visitor_id, visitor_id != 0 AND {counted})) AS visitors,
                    toInt64(uniqExactIf(session_id, session_id != 0 AND {counted})) AS visits,
                    toInt64(countIf(name = 'pageview')) AS pageviews,
                    toInt64(countIf(name NOT IN ('pageview', 'engagement'))) AS events,
                    toInt64(uniqExactIf(session_id, session_id != 0 AND visit_events = 1 AND {counted})) AS bounces,
                    toInt64(arraySum(arrayMap(t -> t.2, groupUniqArrayIf((session_id, visit_ms),
                        session_id != 0 AND {counted} AND cell.1 = {total})))) AS duration_ms,
                    toInt64(sumIf(assumeNotNull(scroll_pct), {engaged} AND isNotNull(scroll_pct))) AS scroll_sum,
                    toInt64(countIf({engaged} AND isNotNull(scroll_pct))) AS scroll_n,
                    toInt64(sumIf(assumeNotNull(engaged_ms), {engaged} AND isNotNull(engaged_ms))) AS engaged_ms
             FROM (
                 SELECT ts, visitor_id, session_id, name, path, title, scroll_pct, engaged_ms,
                        if(found = 1, s_events, 0) AS visit_events,
                        if(found = 1, s_visit_ms, 0) AS visit_ms,
                        {entry} AS entry_page, {exit} AS exit_page, {dims}
                 FROM {db}.events
                 {visits}
                 PREWHERE site_id = {site_id} AND {range} AND {WEB_EVENT}{on_events}
                 WHERE 1{on_joined}
             )
             ARRAY JOIN arrayFilter(c -> c.3 = 1, [{cells}]) AS cell
             GROUP BY d, g, v
             SETTINGS max_bytes_before_external_group_by = {SPILL_BYTES}",
            db = self.db,
            range = range(from_ms, to_ms),
            entry = dim_expr(Dim::EntryPage).unwrap_or_default(),
            exit = dim_expr(Dim::ExitPage).unwrap_or_default(),
            dims = SESSION_DIMS
                .iter()
                .filter_map(|d| Some(format!("{} AS d_{}", dim_expr(*d)?, d.name())))
                .collect::<Vec<_>>()
                .join(", "),
            cells = cells.join(", "),
            counted = "name != 'engagement'",
            engaged = "name = 'engagement'",
            // Visit lengths are summed for the total only (see `WebCounts`); no group
            // has this number when there is no total.
            total = groups
                .iter()
                .position(|g| *g == Group::Total)
                .unwrap_or(usize::MAX),
        );
        let rows: Vec<CountRead> = self.fetch_all(sql).await?;
        let mut out: std::collections::HashMap<i64, WebCounts> = std::collections::HashMap::new();
        if !by_day {
            out.insert(0, empty());
        }
        for r in rows {
            let Some(g) = groups.get(usize::from(r.g)) else {
                continue;
            };
            let counts = Counts {
                visitors: r.visitors,
                visits: r.visits,
                pageviews: r.pageviews,
                events: r.events,
                bounces: r.bounces,
                duration_ms: r.duration_ms,
                scroll_sum: r.scroll_sum,
                scroll_n: r.scroll_n,
                engaged_ms: r.engaged_ms,
            };
            out.entry(r.d)
                .or_insert_with(empty)
                .0
                .entry(*g)
                .or_default()
                .insert(r.v, counts);
        }
        Ok(out.into_iter().collect())
    }

    /// The join that gives each event of `[from, to)` its visit's moving values
    /// (`found`, `s_events`, `s_visit_ms`, `s_exit_page`), the visits read narrowed by
    /// `on_visits` (` AND …` conditions on the visit rows).
    fn visits_join(&self, site_id: i64, from_ms: Millis, to_ms: Millis, on_visits: &str) -> String {
        // Visits do not span two UTC days (a visitor id is one day's), so those of the
        // range's events started less than a day before it: the visits read are the
        // range's, not every visit the site ever had.
        // A short range (today, a day being kept) has a small share of the visits a
        // scan of the site's reads: only those of its events' visit ids are read past the id
        // (0.26 → 0.15 s for a day at 10 M events; for a month the set costs more than
        // it saves). Ids are per collector, so the set may let in another collector's
        // visit of the same id: the join's keys still decide. On a cluster each shard
        // runs this on its own events and visits (a visitor's are on one shard).
        let visits_read = if to_ms - from_ms <= NARROW_VISITS_MS {
            format!(
                "PREWHERE site_id = {site_id} AND id IN (SELECT session_id FROM {db}.events_local \
                 PREWHERE site_id = {site_id} AND {range}) WHERE 1",
                db = self.db,
                range = range(from_ms, to_ms),
            )
        } else {
            format!("WHERE site_id = {site_id}")
        };
        format!(
            "ANY LEFT JOIN (
                 SELECT id AS session_id, visitor_id, toUInt8(1) AS found,
                        argMax(events, version) AS s_events,
                        argMax(last_ms - start_ms, version) AS s_visit_ms,
                        argMax(exit_page, version) AS s_exit_page
                 FROM {db}.sessions_local {visits_read}{on_visits}
                   AND start_ms >= {visits_from} AND start_ms < {to_ms}
                 GROUP BY id, visitor_id
             ) USING (session_id, visitor_id)",
            db = self.db,
            visits_from = from_ms.saturating_sub(DAY_MS),
        )
    }

    /// Every web event of `[from, to)` with its visit's values, as `Tally` reads it:
    /// the rows `web_counts` groups, unfiltered, for a day segment (`store::segments`).
    pub async fn web_rows(
        &self,
        site_id: i64,
        from_ms: Millis,
        to_ms: Millis,
    ) -> Result<Vec<WebRowRead>> {
        let visits = self.visits_join(site_id, from_ms, to_ms, "");
        let sql = format!(
            "SELECT {MS} AS t_ms, visitor_id, session_id, name, path, title, scroll_pct, engaged_ms,
                    toInt64(if(found = 1, s_events, 0)) AS visit_events,
                    toInt64(if(found = 1, s_visit_ms, 0)) AS visit_ms,
                    {entry} AS entry_page, {exit} AS exit_page, [{dims}] AS dims
             FROM {db}.events
             {visits}
             PREWHERE site_id = {site_id} AND {range} AND {WEB_EVENT}",
            db = self.db,
            range = range(from_ms, to_ms),
            entry = dim_expr(Dim::EntryPage).unwrap_or_default(),
            exit = dim_expr(Dim::ExitPage).unwrap_or_default(),
            dims = SESSION_DIMS
                .iter()
                .map(|d| dim_expr(*d).unwrap_or_else(|| "''".into()))
                .collect::<Vec<_>>()
                .join(", "),
        );
        self.fetch_all(sql).await
    }

    /// A number per day of `[first, end)` (UTC day numbers) that changes whenever
    /// anything a report reads of the site's day changes: the wrapping sum of a hash of
    /// every event row's (id, version) and every visit row's (collector, id, version) of
    /// that day, rows a merge has not replaced yet included — so a merge changes it too,
    /// and the day is counted again: never wrong, sometimes more work. A day without
    /// rows has no entry (its mark is 0).
    pub async fn day_marks(&self, site_id: i64, first: i64, end: i64) -> Result<Vec<(i64, i64)>> {
        const DAY_S: i64 = 86_400;
        let sessions = match &self.cluster {
            Some(cluster) => format!("cluster({cluster}, {}, sessions_local)", self.db),
            None => format!("{}.sessions_local", self.db),
        };
        let (from_s, to_s) = (first * DAY_S, end * DAY_S);
        let rows: Vec<MarkRead> = self
            .fetch_all(format!(
                "SELECT d AS day, toInt64(sum(h)) AS mark FROM (
                     SELECT toInt64(intDiv(toUInt32(ts), {DAY_S})) AS d, cityHash64(event_id, version) AS h
                     FROM {db}.events
                     PREWHERE site_id = {site_id} AND ts >= toDateTime({from_s}) AND ts < toDateTime({to_s})
                     UNION ALL
                     SELECT toInt64(intDiv(start_ms, {day_ms})) AS d, cityHash64(collector, id, version) AS h
                     FROM {sessions}
                     WHERE site_id = {site_id} AND start_ms >= {from_ms} AND start_ms < {to_ms}
                 ) GROUP BY d",
                db = self.db,
                day_ms = DAY_S * 1000,
                from_ms = from_s * 1000,
                to_ms = to_s * 1000,
            ))
            .await?;
        Ok(rows.into_iter().map(|r| (r.day, r.mark)).collect())
    }

    /// Every open and click of a campaign, oldest first.
    pub async fn campaign_events(&self, campaign_id: i64) -> Result<Vec<EmailRow>> {
        let rows: Vec<EmailRead> = self
            .fetch_all(format!(
                "SELECT {MS} AS ms, name, recipient, link, verdict, email_client, device, verdict_reason \
                 FROM {}.events WHERE site_id != 0 AND campaign_id = {campaign_id} AND verdict != '' \
                 ORDER BY ts, ts_ms, event_id",
                self.db
            ))
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| EmailRow {
                ts_ms: r.ms,
                name: r.name,
                recipient: r.recipient,
                link: r.link,
                verdict: r.verdict,
                client: r.client,
                device: r.device,
                reason: r.reason,
            })
            .collect())
    }

    /// Whether the recipient has an open a person made (directly or through a proxy
    /// that loads on open).
    pub async fn has_human_open(&self, campaign_id: i64, recipient: &str) -> Result<bool> {
        let sql = format!(
            "SELECT count() FROM (SELECT 1 FROM {}.events WHERE site_id != 0 \
             AND campaign_id = {campaign_id} AND recipient = {} AND name = 'email_open' \
             AND verdict IN ('human', 'gmail_proxy', 'yahoo_proxy', 'other_proxy') LIMIT 1)",
            self.db,
            sql::literal(recipient)
        );
        let n = self
            .timed(async { Ok(self.main.query_raw(&sql).fetch_one::<u64>().await?) })
            .await?;
        Ok(n > 0)
    }

    pub async fn ad_counts(
        &self,
        site_id: i64,
        campaign_id: Option<i64>,
        from_ms: Millis,
        to_ms: Millis,
    ) -> Result<Vec<AdCount>> {
        let one = campaign_id
            .map(|c| format!(" AND campaign_id = {c}"))
            .unwrap_or_default();
        let rows: Vec<AdRead> = self
            .fetch_all(format!(
                "SELECT assumeNotNull(campaign_id) AS c, ad, name, toUInt8(bot != '') AS b, count() AS n \
                 FROM {db}.events \
                 WHERE site_id = {site_id} AND {range} AND isNotNull(campaign_id) AND verdict = ''{one} \
                 GROUP BY c, ad, name, b ORDER BY c, ad, name, b",
                db = self.db,
                range = range(from_ms, to_ms),
            ))
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| AdCount {
                campaign_id: r.campaign_id,
                ad: r.ad,
                name: r.name,
                bot: r.bot != 0,
                n: r.n as i64,
            })
            .collect())
    }

    pub async fn touches(
        &self,
        site_id: i64,
        from_ms: Millis,
        to_ms: Millis,
    ) -> Result<Vec<Touch>> {
        self.touches_where(site_id, from_ms, to_ms, "").await
    }

    /// The touches of `[from, to)` of these visitors or carrying these click ids (the
    /// lookback of today's conversions): the two lists narrow the read before the
    /// touch conditions' string columns are read. None when the lists are too long for
    /// one statement (the caller reads every touch and keeps theirs).
    pub async fn touches_of(
        &self,
        site_id: i64,
        from_ms: Millis,
        to_ms: Millis,
        visitors: &std::collections::HashSet<i64>,
        click_ids: &std::collections::HashSet<String>,
    ) -> Result<Option<Vec<Touch>>> {
        let click_ids: Vec<&str> = click_ids
            .iter()
            .map(String::as_str)
            .filter(|c| !c.is_empty())
            .collect();
        if visitors.is_empty() && click_ids.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let mut of = Vec::new();
        if !visitors.is_empty() {
            let ids: Vec<String> = visitors.iter().map(i64::to_string).collect();
            of.push(format!("visitor_id IN ({})", ids.join(", ")));
        }
        if !click_ids.is_empty() {
            of.push(format!("click_id IN ({})", sql::literal_list(click_ids)));
        }
        let of = of.join(" OR ");
        if of.len() > TOUCH_LISTS_MAX {
            return Ok(None);
        }
        Ok(Some(
            self.touches_where(site_id, from_ms, to_ms, &format!(" AND ({of})"))
                .await?,
        ))
    }

    async fn touches_where(
        &self,
        site_id: i64,
        from_ms: Millis,
        to_ms: Millis,
        narrow: &str,
    ) -> Result<Vec<Touch>> {
        let rows: Vec<TouchRead> = self
            .fetch_all(format!(
                "SELECT {MS} AS ms, name, visitor_id, click_id, campaign_id, ad, value_minor, currency \
                 FROM {db}.events \
                 PREWHERE site_id = {site_id} AND {range}{narrow} \
                 WHERE bot = '' \
                   AND ((name = 'ad_click' AND verdict = '') \
                     OR (name = 'email_click' AND verdict = 'human') \
                     OR name = 'conversion' \
                     OR (isNull(campaign_id) AND startsWith(click_id, 'ptclid:'))) \
                 ORDER BY ts, ts_ms, event_id",
                db = self.db,
                range = range(from_ms, to_ms),
            ))
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| Touch {
                ts_ms: r.ms,
                name: r.name,
                visitor_id: r.visitor_id,
                click_id: r.click_id,
                campaign_id: r.campaign_id,
                ad: r.ad,
                value_minor: r.value_minor,
                currency: r.currency,
            })
            .collect())
    }

    /// Web events matching `pattern`: `(events, distinct visitors)`.
    pub async fn pattern_counts(
        &self,
        site_id: i64,
        pattern: &Pattern,
        from_ms: Millis,
        to_ms: Millis,
    ) -> Result<(i64, i64)> {
        let sql = format!(
            "SELECT count(), uniqExactIf(visitor_id, visitor_id != 0) FROM {db}.events \
             WHERE site_id = {site_id} AND {range} AND {WEB_EVENT} AND {cond}",
            db = self.db,
            range = range(from_ms, to_ms),
            cond = pattern_expr(pattern),
        );
        let (n, v) = self
            .timed(async { Ok(self.main.query_raw(&sql).fetch_one::<(u64, u64)>().await?) })
            .await?;
        Ok((n as i64, v as i64))
    }

    /// [`pattern_counts`](Self::pattern_counts) of each UTC day of `[first, end)` that
    /// has a matching event, in one query.
    pub async fn pattern_counts_by_day(
        &self,
        site_id: i64,
        pattern: &Pattern,
        (first, end): (i64, i64),
    ) -> Result<Vec<(i64, (i64, i64))>> {
        let sql = format!(
            "SELECT toInt64(intDiv(toUInt32(ts), 86400)) AS d, count(), \
             uniqExactIf(visitor_id, visitor_id != 0) FROM {db}.events \
             WHERE site_id = {site_id} AND {range} AND {WEB_EVENT} AND {cond} GROUP BY d",
            db = self.db,
            range = range(first * DAY_MS, end * DAY_MS),
            cond = pattern_expr(pattern),
        );
        let rows = self
            .timed(async {
                Ok(self
                    .main
                    .query_raw(&sql)
                    .fetch_all::<(i64, u64, u64)>()
                    .await?)
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|(d, n, v)| (d, (n as i64, v as i64)))
            .collect())
    }

    /// `(key, time, mask)` of the web events matching any step, by key and time.
    pub async fn funnel_rows(
        &self,
        site_id: i64,
        steps: &[Pattern],
        by_visit: bool,
        from_ms: Millis,
        to_ms: Millis,
    ) -> Result<Vec<(i64, Millis, u64)>> {
        if steps.is_empty() || steps.len() > 32 {
            return Err(ChError::Server("a funnel has 1 to 32 steps".into()));
        }
        let mask = steps
            .iter()
            .enumerate()
            .map(|(i, s)| format!("bitShiftLeft(toUInt64({}), {i})", pattern_expr(s)))
            .reduce(|a, b| format!("bitOr({a}, {b})"))
            .unwrap_or_default();
        let key = if by_visit { "session_id" } else { "visitor_id" };
        let sql = format!(
            "SELECT {key} AS k, {MS} AS ms, {mask} AS m FROM {db}.events \
             WHERE site_id = {site_id} AND {range} AND visitor_id != 0 AND {WEB_EVENT} AND m != 0 \
             ORDER BY k, ms, event_id",
            db = self.db,
            range = range(from_ms, to_ms),
        );
        let rows: Vec<(i64, i64, u64)> = self.fetch_all(sql).await?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_become_anchored_literal_regexes() {
        assert_eq!(glob_regex("/docs*"), "(?s)^\\/docs.*$");
        assert_eq!(glob_regex("a.b?c[d]"), "(?s)^a\\.b\\?c\\[d\\]$");
        assert_eq!(glob_regex("*(x)+|é"), "(?s)^.*\\(x\\)\\+\\|é$");
    }

    #[test]
    fn every_filterable_dimension_has_an_expression() {
        for d in Filter::DIMS {
            assert!(dim_expr(d).is_some(), "{d:?}");
        }
    }
}
