//! Raw-event reads on ClickHouse: the queries behind [`crate::store::EventStore`]
//! (filtered reports, campaign reports, ads, attribution, goals, funnels, exports),
//! each answering exactly what the SQLite backend's query answers (`sqlite/events.rs`):
//! the same rows, in the same order, with the same conventions (a bot is `''`, not
//! NULL, here; times are `ts` seconds and `ts_ms` milliseconds, 18.16 having no
//! DateTime64).
//!
//! Every query names the read table `events` (a view on one server, a Distributed
//! table on a cluster) right after FROM, so on a cluster the whole query — its visit
//! join included — runs on each shard against that shard's `sessions_local`, which holds
//! the visits of the same visitors.

use clickhouse::Row;
use serde::Deserialize;

use super::{sql, ChError, ClickHouse, Result};
use crate::clock::Millis;
use crate::model::{AdFields, BotReason, Device, EmailFields, Event, Utm, Verdict};
use crate::store::sqlite::{intern_client, intern_reason};
use crate::store::{
    AdCount, Dim, EmailRow, Filter, FilterOp, Pattern, PatternKind, Touch, WebRow, SESSION_DIMS,
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
            name: self.name,
            visitor_id: self.visitor_id,
            session_id: self.session_id,
            host: self.host,
            path: self.path,
            query: self.query,
            title: self.title,
            referrer: self.referrer,
            referrer_host: self.referrer_host,
            source: self.source,
            medium: self.medium,
            utm: Utm {
                source: utm_source,
                medium: utm_medium,
                campaign: utm_campaign,
                term: utm_term,
                content: utm_content,
            },
            click_id: self.click_id,
            browser: self.browser,
            browser_version: self.browser_version,
            os: self.os,
            os_version: self.os_version,
            device: Device::parse(&self.device),
            bot: BotReason::parse(&self.bot),
            value_minor: self.value_minor,
            currency: self.currency,
            order_id: self.order_id,
            props: self.props,
            ip: (!self.ip.is_empty()).then_some(self.ip),
            email,
            scroll_pct: self.scroll_pct,
            engaged_ms: self.engaged_ms,
            screen_width: self.screen_width,
            ad,
            country: self.country,
            region: self.region,
            city: self.city,
            asn: self.asn,
            as_org: self.as_org,
        }
    }
}

#[derive(Row, Deserialize, Debug)]
struct WebRead {
    ms: i64,
    visitor_id: i64,
    session_id: i64,
    name: String,
    path: String,
    entry_page: String,
    exit_page: String,
    visit_events: i64,
    visit_ms: i64,
    title: String,
    dims: [String; SESSION_DIMS.len()],
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

/// The events table's column of an event-level value, and the visit's column when
/// the dimension is the visit's (as in the rollups).
fn dim_columns(d: Dim) -> Option<(&'static str, Option<&'static str>)> {
    Some(match d {
        Dim::Page => ("path", None),
        Dim::Title => ("title", None),
        Dim::Event => ("name", None),
        Dim::EntryPage => ("''", Some("s_entry_page")),
        Dim::ExitPage => ("''", Some("s_exit_page")),
        Dim::Source => ("source", Some("s_source")),
        Dim::Referrer => ("referrer_host", Some("s_referrer_host")),
        Dim::Medium => ("medium", Some("s_medium")),
        Dim::UtmSource => ("utm_source", Some("s_utm_source")),
        Dim::UtmMedium => ("utm_medium", Some("s_utm_medium")),
        Dim::UtmCampaign => ("utm_campaign", Some("s_utm_campaign")),
        Dim::UtmTerm => ("utm_term", Some("s_utm_term")),
        Dim::UtmContent => ("utm_content", Some("s_utm_content")),
        Dim::Browser => ("browser", Some("s_browser")),
        Dim::Os => ("os", Some("s_os")),
        Dim::Device => ("device", Some("s_device")),
        Dim::Country => ("country", Some("s_country")),
        Dim::Region => ("region", Some("s_region")),
        Dim::City => ("city", Some("s_city")),
        _ => return None,
    })
}

/// A dimension's value over `events ANY LEFT JOIN <visits>`: the visit's when the event
/// has one (`found`), else the event's own — SQLite's `COALESCE(s.x, e.x)`. Only these
/// fixed strings are spliced.
fn dim_expr(d: Dim) -> Option<String> {
    let (event, visit) = dim_columns(d)?;
    Some(match visit {
        Some(v) => format!("if(found = 1, {v}, {event})"),
        None => event.to_owned(),
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

    /// The web events in `[from, to)` matching every filter, with their visits.
    pub async fn web_rows(
        &self,
        site_id: i64,
        from_ms: Millis,
        to_ms: Millis,
        filters: &[Filter],
        tx: tokio::sync::mpsc::Sender<WebRow>,
    ) -> Result<()> {
        let mut cond = String::new();
        for flt in filters {
            let col = dim_expr(flt.dim)
                .ok_or_else(|| ChError::Server(format!("cannot filter by {}", flt.dim.name())))?;
            let v = sql::literal(&flt.value);
            cond.push_str(&match flt.op {
                FilterOp::Is => format!(" AND {col} = {v}"),
                FilterOp::IsNot => format!(" AND {col} != {v}"),
                // SQLite's lower() and instr(): ASCII case folding, bytes otherwise.
                FilterOp::Contains => format!(" AND position(lower({col}), lower({v})) > 0"),
            });
        }
        let dims = SESSION_DIMS
            .iter()
            .filter_map(|d| dim_expr(*d))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {MS} AS ms, visitor_id, session_id, name, path,
                    if(found = 1, s_entry_page, '') AS entry, if(found = 1, s_exit_page, '') AS exit,
                    if(found = 1, s_events, 0) AS visit_events, if(found = 1, s_visit_ms, 0) AS visit_ms,
                    title, {dims}
             FROM {db}.events
             ANY LEFT JOIN (
                 SELECT id AS session_id, visitor_id, toUInt8(1) AS found,
                        entry_page AS s_entry_page, exit_page AS s_exit_page,
                        events AS s_events, last_ms - start_ms AS s_visit_ms,
                        source AS s_source, referrer_host AS s_referrer_host, medium AS s_medium,
                        utm_source AS s_utm_source, utm_medium AS s_utm_medium,
                        utm_campaign AS s_utm_campaign, utm_term AS s_utm_term,
                        utm_content AS s_utm_content, browser AS s_browser, os AS s_os,
                        device AS s_device, country AS s_country,
                        region AS s_region, city AS s_city
                 FROM {db}.sessions_local FINAL WHERE site_id = {site_id}
             ) USING (session_id, visitor_id)
             WHERE site_id = {site_id} AND {range} AND {WEB_EVENT} AND name != 'engagement'{cond}
             ORDER BY ts, ts_ms, event_id",
            db = self.db,
            range = range(from_ms, to_ms),
        );
        self.stream(&sql, tx, |r: WebRead| WebRow {
            ts_ms: r.ms,
            visitor_id: r.visitor_id,
            session_id: r.session_id,
            name: r.name,
            path: r.path,
            title: r.title,
            dims: r.dims.into(),
            entry_page: r.entry_page,
            exit_page: r.exit_page,
            visit_events: r.visit_events,
            visit_ms: r.visit_ms,
        })
        .await?;
        Ok(())
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
        let rows: Vec<TouchRead> = self
            .fetch_all(format!(
                "SELECT {MS} AS ms, name, visitor_id, click_id, campaign_id, ad, value_minor, currency \
                 FROM {db}.events \
                 WHERE site_id = {site_id} AND {range} AND bot = '' \
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
