//! One event as a ClickHouse row (`events_local`, see `sql/001_events.sql`), in column
//! order, serialized as RowBinary by the `clickhouse` crate.

use clickhouse::Row;
use serde::Serialize;

use crate::model::{BotReason, Event};
use crate::store::sqlite::VisitColumns;

/// Bits of an event id below the collector id: the spool id, and the marker bit.
pub const COLLECTOR_SHIFT: u32 = 40;
const MARKER_BIT: u64 = 1 << 39;

/// The ClickHouse id of spool event `id` of collector `collector`.
pub fn event_id(collector: u32, id: i64) -> u64 {
    (u64::from(collector) << COLLECTOR_SHIFT) | (id as u64 & (MARKER_BIT - 1))
}

/// The id of the marker row of batch `seq`'s part for `shard` (at most 256 shards).
pub fn marker_id(collector: u32, seq: i64, shard: usize) -> u64 {
    (u64::from(collector) << COLLECTOR_SHIFT)
        | MARKER_BIT
        | ((seq as u64) << 8 & (MARKER_BIT - 1))
        | shard as u64
}

#[derive(Row, Serialize, Debug, Clone, PartialEq)]
pub struct EventRow<'a> {
    pub event_id: u64,
    pub version: u32,
    pub site_id: i64,
    pub ts: u32,
    pub ts_ms: u16,
    pub name: &'a str,
    pub visitor_id: i64,
    pub session_id: i64,
    pub host: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub title: &'a str,
    pub referrer: &'a str,
    pub referrer_host: &'a str,
    pub source: &'a str,
    pub medium: &'a str,
    pub utm_source: &'a str,
    pub utm_medium: &'a str,
    pub utm_campaign: &'a str,
    pub utm_term: &'a str,
    pub utm_content: &'a str,
    pub click_id: &'a str,
    pub browser: &'a str,
    pub browser_version: &'a str,
    pub os: &'a str,
    pub os_version: &'a str,
    pub device: &'a str,
    pub bot: &'a str,
    pub value_minor: Option<i64>,
    pub currency: &'a str,
    pub order_id: &'a str,
    pub props: &'a str,
    pub ip: &'a str,
    pub campaign_id: Option<i64>,
    pub recipient: &'a str,
    pub link: &'a str,
    pub verdict: &'a str,
    pub verdict_reason: &'a str,
    pub email_client: &'a str,
    pub scroll_pct: Option<i64>,
    pub engaged_ms: Option<i64>,
    pub screen_width: Option<i64>,
    pub ad: &'a str,
    pub placement: &'a str,
    pub country: &'a str,
    // Schema 5 (`sql/005_geo.sql`): added at the end of the table, so here too.
    pub region: &'a str,
    pub city: &'a str,
    pub asn: u32,
    pub as_org: &'a str,
    /// The event's visit, as it started (schema 6): where it came from, its client,
    /// country and entry page — what never changes in a visit, so filtered reports
    /// need no join for it. `visit_found` 0: no visit known (the event's own values
    /// stand in, as SQLite's `COALESCE` does).
    pub visit_found: u8,
    pub visit_entry_page: &'a str,
    pub visit_source: &'a str,
    pub visit_referrer_host: &'a str,
    pub visit_medium: &'a str,
    pub visit_utm_source: &'a str,
    pub visit_utm_medium: &'a str,
    pub visit_utm_campaign: &'a str,
    pub visit_utm_term: &'a str,
    pub visit_utm_content: &'a str,
    pub visit_browser: &'a str,
    pub visit_os: &'a str,
    pub visit_device: &'a str,
    pub visit_country: &'a str,
    pub visit_region: &'a str,
    pub visit_city: &'a str,
}

/// Seconds and the millisecond remainder (18.16 has no DateTime64); times before 1970
/// or past 2106 (a forged or broken clock) are clamped into DateTime's range.
fn split_ms(ms: i64) -> (u32, u16) {
    let ms = ms.clamp(0, i64::from(u32::MAX) * 1000 + 999);
    ((ms / 1000) as u32, (ms % 1000) as u16)
}

impl<'a> EventRow<'a> {
    pub fn new(id: u64, e: &'a Event, visit: Option<&'a VisitColumns>) -> EventRow<'a> {
        let (ts, ts_ms) = split_ms(e.ts_ms);
        let v = |i: usize| visit.and_then(|v| v.dims.get(i)).map_or("", String::as_str);
        let email = e.email.as_ref();
        let ad = e.ad.as_ref();
        EventRow {
            event_id: id,
            version: 0,
            site_id: e.site_id,
            ts,
            ts_ms,
            name: &e.name,
            visitor_id: e.visitor_id,
            session_id: e.session_id,
            host: &e.host,
            path: &e.path,
            query: &e.query,
            title: &e.title,
            referrer: &e.referrer,
            referrer_host: &e.referrer_host,
            source: &e.source,
            medium: &e.medium,
            utm_source: &e.utm.source,
            utm_medium: &e.utm.medium,
            utm_campaign: &e.utm.campaign,
            utm_term: &e.utm.term,
            utm_content: &e.utm.content,
            click_id: &e.click_id,
            browser: &e.browser,
            browser_version: &e.browser_version,
            os: &e.os,
            os_version: &e.os_version,
            device: e.device.as_str(),
            bot: e.bot.map(BotReason::as_str).unwrap_or(""),
            value_minor: e.value_minor,
            currency: &e.currency,
            order_id: &e.order_id,
            props: &e.props,
            ip: e.ip.as_deref().unwrap_or(""),
            campaign_id: email.map(|m| m.campaign_id).or(ad.map(|a| a.campaign_id)),
            recipient: email.map(|m| m.recipient.as_str()).unwrap_or(""),
            link: email
                .map(|m| m.link.as_str())
                .or(ad.map(|a| a.link.as_str()))
                .unwrap_or(""),
            verdict: email.map(|m| m.verdict.as_str()).unwrap_or(""),
            verdict_reason: email.map(|m| m.reason).unwrap_or(""),
            email_client: email.map(|m| m.client).unwrap_or(""),
            scroll_pct: e.scroll_pct,
            engaged_ms: e.engaged_ms,
            screen_width: e.screen_width,
            ad: ad.map(|a| a.ad.as_str()).unwrap_or(""),
            placement: ad.map(|a| a.placement.as_str()).unwrap_or(""),
            country: &e.country,
            region: &e.region,
            city: &e.city,
            asn: e.asn,
            as_org: &e.as_org,
            visit_found: u8::from(visit.is_some()),
            visit_entry_page: visit.map_or("", |v| v.entry_page.as_str()),
            visit_source: v(0),
            visit_referrer_host: v(1),
            visit_medium: v(2),
            visit_utm_source: v(3),
            visit_utm_medium: v(4),
            visit_utm_campaign: v(5),
            visit_utm_term: v(6),
            visit_utm_content: v(7),
            visit_browser: v(8),
            visit_os: v(9),
            visit_device: v(10),
            visit_country: v(11),
            visit_region: v(12),
            visit_city: v(13),
        }
    }

    /// The marker row of a batch part: site 0, in the same month partition as the
    /// part's events (an insert into one partition is atomic).
    pub fn marker(id: u64, ts_ms: i64) -> EventRow<'static> {
        let (ts, ts_ms) = split_ms(ts_ms);
        EventRow {
            event_id: id,
            version: 0,
            site_id: 0,
            ts,
            ts_ms,
            name: "batch",
            visitor_id: 0,
            session_id: 0,
            host: "",
            path: "",
            query: "",
            title: "",
            referrer: "",
            referrer_host: "",
            source: "",
            medium: "",
            utm_source: "",
            utm_medium: "",
            utm_campaign: "",
            utm_term: "",
            utm_content: "",
            click_id: "",
            browser: "",
            browser_version: "",
            os: "",
            os_version: "",
            device: "",
            bot: "",
            value_minor: None,
            currency: "",
            order_id: "",
            props: "",
            ip: "",
            campaign_id: None,
            recipient: "",
            link: "",
            verdict: "",
            verdict_reason: "",
            email_client: "",
            scroll_pct: None,
            engaged_ms: None,
            screen_width: None,
            ad: "",
            placement: "",
            country: "",
            region: "",
            city: "",
            asn: 0,
            as_org: "",
            visit_found: 0,
            visit_entry_page: "",
            visit_source: "",
            visit_referrer_host: "",
            visit_medium: "",
            visit_utm_source: "",
            visit_utm_medium: "",
            visit_utm_campaign: "",
            visit_utm_term: "",
            visit_utm_content: "",
            visit_browser: "",
            visit_os: "",
            visit_device: "",
            visit_country: "",
            visit_region: "",
            visit_city: "",
        }
    }
}

/// One rollup delta as a ClickHouse row (`rollups_local`).
#[derive(Row, Serialize, Debug, Clone, PartialEq)]
pub struct RollupRow<'a> {
    pub site_id: i64,
    pub dim: i64,
    pub hour: i64,
    pub value: &'a str,
    pub visitors: i64,
    pub visits: i64,
    pub pageviews: i64,
    pub events: i64,
    pub bounces: i64,
    pub duration_ms: i64,
    pub scroll_sum: i64,
    pub scroll_n: i64,
    pub engaged_ms: i64,
}

impl<'a> RollupRow<'a> {
    /// A row of `d`.
    pub fn new(d: &'a crate::store::sqlite::RollupDelta) -> RollupRow<'a> {
        let c = crate::store::Counts::from_array(d.counts);
        RollupRow {
            site_id: d.site_id,
            dim: d.dim,
            hour: d.hour,
            value: &d.value,
            visitors: c.visitors,
            visits: c.visits,
            pageviews: c.pageviews,
            events: c.events,
            bounces: c.bounces,
            duration_ms: c.duration_ms,
            scroll_sum: c.scroll_sum,
            scroll_n: c.scroll_n,
            engaged_ms: c.engaged_ms,
        }
    }

    /// The marker row of write `seq` (its value names the collector).
    pub fn marker(seq: i64, value: &'a str) -> RollupRow<'a> {
        RollupRow {
            site_id: 0,
            dim: -1,
            hour: seq,
            value,
            visitors: 1,
            visits: 0,
            pageviews: 0,
            events: 0,
            bounces: 0,
            duration_ms: 0,
            scroll_sum: 0,
            scroll_n: 0,
            engaged_ms: 0,
        }
    }
}

impl RollupRow<'_> {
    /// The marker row's value for `collector`.
    pub fn marker_value(collector: u32) -> String {
        format!("pixeltrack-{collector}")
    }
}

/// One visit as a ClickHouse row (`sessions_local`): the collector's session row as
/// it stands after write `version`.
#[derive(Row, Serialize, Debug, Clone, PartialEq)]
pub struct SessionChRow<'a> {
    pub collector: u64,
    pub id: i64,
    pub version: u64,
    pub site_id: i64,
    pub visitor_id: i64,
    pub start_ms: i64,
    pub last_ms: i64,
    pub pageviews: i64,
    pub events: i64,
    pub entry_page: &'a str,
    pub exit_page: &'a str,
    // The session dimensions, in [`crate::store::SESSION_DIMS`] order.
    pub source: &'a str,
    pub referrer_host: &'a str,
    pub medium: &'a str,
    pub utm_source: &'a str,
    pub utm_medium: &'a str,
    pub utm_campaign: &'a str,
    pub utm_term: &'a str,
    pub utm_content: &'a str,
    pub browser: &'a str,
    pub os: &'a str,
    pub device: &'a str,
    pub country: &'a str,
    pub region: &'a str,
    pub city: &'a str,
}

impl<'a> SessionChRow<'a> {
    pub fn new(collector: u32, version: i64, s: &'a crate::store::SessionRow) -> Self {
        let dim = |i: usize| s.dims.get(i).unwrap_or("");
        SessionChRow {
            collector: u64::from(collector),
            id: s.id,
            version: version.max(0) as u64,
            site_id: s.site_id,
            visitor_id: s.visitor_id,
            start_ms: s.start_ms,
            last_ms: s.last_ms,
            pageviews: s.pageviews,
            events: s.events,
            entry_page: &s.entry_page,
            exit_page: &s.exit_page,
            source: dim(0),
            referrer_host: dim(1),
            medium: dim(2),
            utm_source: dim(3),
            utm_medium: dim(4),
            utm_campaign: dim(5),
            utm_term: dim(6),
            utm_content: dim(7),
            browser: dim(8),
            os: dim(9),
            device: dim(10),
            country: dim(11),
            region: dim(12),
            city: dim(13),
        }
    }
}

/// One body of a shared table (`shared`).
#[derive(Row, Serialize, Debug, Clone, PartialEq)]
pub struct SharedRow<'a> {
    pub kind: &'a str,
    pub version: u64,
    pub body: &'a str,
}

/// Consent recorded on a collector (`consent_changes`).
#[derive(Row, Serialize, Debug, Clone, PartialEq)]
pub struct ConsentChRow<'a> {
    pub site_id: i64,
    pub campaign_id: i64,
    pub recipient: &'a str,
    pub granted: u8,
    pub updated_ms: i64,
}

/// One row of a rollup read: a value and its nine sums.
#[derive(Row, serde::Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct SumRow {
    pub value: String,
    pub sums: [i64; 9],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_never_collide() {
        assert_eq!(event_id(1, 5), (1 << 40) | 5);
        assert_ne!(event_id(1, 5), event_id(2, 5));
        // A marker is never an event id, of any collector's spool.
        let m = marker_id(1, 5, 0);
        assert_ne!(m & MARKER_BIT, 0);
        assert_eq!(event_id(1, 5) & MARKER_BIT, 0);
        assert_ne!(marker_id(1, 5, 0), marker_id(1, 5, 1));
        assert_ne!(marker_id(1, 5, 0), marker_id(1, 6, 0));
        assert_eq!(m >> COLLECTOR_SHIFT, 1);
    }

    #[test]
    fn times_split_into_seconds_and_millis() {
        assert_eq!(split_ms(1_700_000_000_123), (1_700_000_000, 123));
        assert_eq!(split_ms(-5), (0, 0));
    }
}
