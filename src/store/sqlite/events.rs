//! Raw events in SQLite: reading rows of the `events` table back into [`Event`]s
//! (shared with the writer's replay and subject export), and the event queries
//! behind filtered reports, campaign reports, attribution, goals and funnels. Only
//! fixed SQL fragments are spliced (`dim_sql`, `pattern_sql`); values are bound.

use std::collections::{BTreeMap, HashMap, HashSet};

use rusqlite::params;

use super::{open_conn, SqliteStore};
use crate::clock::Millis;
use crate::config::Synchronous;
use crate::model::{AdFields, BotReason, Device, EmailFields, Event, SiteId, Utm, Verdict};
use crate::store::{
    AdCount, Dim, EmailRow, EventStore, Filter, FilterOp, Group, KeptDays, Pattern, PatternKind,
    Result, StoreError, Tally, Touch, WebCounts, WebRow, SESSION_DIMS,
};

/// `SELECT <every events column, in event_from_row order> FROM events`; callers add the rest.
pub(super) const EVENT_COLUMNS: &str = include_str!("sql/queries/event_columns.sql");
/// How many columns [`EVENT_COLUMNS`] selects (what [`event_from_row`] reads).
pub(super) const EVENT_COLUMN_COUNT: usize = 46;
const CAMPAIGN_EVENTS: &str = include_str!("sql/queries/campaign_events.sql");
/// Whether a recipient opened a campaign's email, by a human-triggered open. Its verdict
/// condition is one side of `events_recipient`'s (schema 27): SQLite reads that index.
const HUMAN_OPEN: &str = "SELECT 1 FROM events WHERE campaign_id = ?1 AND recipient = ?2
    AND name = 'email_open' AND verdict IN ('human', 'gmail_proxy', 'yahoo_proxy', 'other_proxy')
    LIMIT 1";
/// Attribution's touches; `/*key*/` narrows them to one visitor or click id.
const TOUCHES: &str = include_str!("sql/queries/touches.sql");

/// [`TOUCHES`] in `index`, narrowed by `key`.
fn touches_sql(index: &str, key: &str) -> String {
    TOUCHES.replace("/*index*/", index).replace("/*key*/", key)
}

fn touch_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Touch> {
    Ok(Touch {
        ts_ms: r.get(0)?,
        name: r.get::<_, String>(1)?,
        visitor_id: r.get(2)?,
        click_id: r.get(3)?,
        campaign_id: r.get(4)?,
        ad: r.get(5)?,
        value_minor: r.get(6)?,
        currency: r.get::<_, String>(7)?,
    })
}

pub(super) fn event_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Event> {
    let bot: Option<String> = r.get(24)?;
    let device: String = r.get(23)?;
    Ok(Event {
        site_id: r.get(0)?,
        ts_ms: r.get(1)?,
        name: r.get::<_, String>(2)?.into(),
        visitor_id: r.get(3)?,
        session_id: r.get(4)?,
        host: r.get::<_, String>(5)?.into(),
        path: r.get(6)?,
        query: r.get(7)?,
        title: r.get(8)?,
        referrer: r.get(9)?,
        referrer_host: r.get::<_, String>(10)?.into(),
        source: r.get::<_, String>(11)?.into(),
        medium: r.get::<_, String>(12)?.into(),
        utm: Utm {
            source: r.get::<_, String>(13)?,
            medium: r.get::<_, String>(14)?,
            campaign: r.get(15)?,
            term: r.get(16)?,
            content: r.get(17)?,
        },
        click_id: r.get(18)?,
        browser: r.get::<_, String>(19)?.into(),
        browser_version: r.get::<_, String>(20)?.into(),
        os: r.get::<_, String>(21)?.into(),
        os_version: r.get::<_, String>(22)?.into(),
        device: Device::parse(&device),
        bot: bot.as_deref().and_then(BotReason::parse),
        value_minor: r.get(25)?,
        currency: r.get::<_, String>(26)?.into(),
        order_id: r.get(27)?,
        props: r.get::<_, String>(28)?.into(),
        ip: r.get(29)?,
        email: email_from_row(r)?,
        scroll_pct: r.get(36)?,
        engaged_ms: r.get(37)?,
        screen_width: r.get(38)?,
        ad: ad_from_row(r)?,
        country: r.get::<_, String>(41)?.into(),
        region: r.get::<_, String>(42)?.into(),
        city: r.get::<_, String>(43)?.into(),
        asn: r.get(44)?,
        as_org: r.get(45)?,
    })
}

/// Campaign events with no verdict are ad impressions and clicks.
fn ad_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<AdFields>> {
    let Some(campaign_id) = r.get::<_, Option<i64>>(30)? else {
        return Ok(None);
    };
    if !r.get_ref(33)?.as_str().unwrap_or("").is_empty() {
        return Ok(None);
    }
    Ok(Some(AdFields {
        campaign_id,
        link: r.get(32)?,
        ad: r.get(39)?,
        placement: r.get(40)?,
    }))
}

fn email_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<EmailFields>> {
    let Some(campaign_id) = r.get::<_, Option<i64>>(30)? else {
        return Ok(None);
    };
    let verdict: String = r.get(33)?;
    if verdict.is_empty() {
        return Ok(None);
    }
    let reason: String = r.get(34)?;
    let client: String = r.get(35)?;
    Ok(Some(EmailFields {
        campaign_id,
        recipient: r.get(31)?,
        link: r.get(32)?,
        verdict: Verdict::parse(&verdict).unwrap_or(Verdict::Human),
        reason: intern_reason(&reason),
        client: intern_client(&client),
    }))
}

/// Reasons and clients are short codes from fixed sets; reading one back gives the
/// same `&'static str` (unknown codes from newer versions read as `other`).
pub(crate) fn intern_reason(s: &str) -> &'static str {
    crate::model::EMAIL_REASONS
        .iter()
        .map(|(code, _, _)| *code)
        .find(|code| *code == s)
        .unwrap_or("other")
}

pub(crate) fn intern_client(s: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "Gmail",
        "Yahoo",
        "Outlook",
        "Thunderbird",
        "Apple Mail",
        "other",
    ];
    KNOWN.iter().find(|k| **k == s).copied().unwrap_or("other")
}

/// Web traffic: no bots, no email or ad events (those have a campaign).
pub(super) const WEB_EVENT: &str = "bot IS NULL AND campaign_id IS NULL";

/// The key days read from another store are kept under: never the same as this
/// database's own (their marks are of another kind, and the two may disagree while
/// forwarding catches up).
impl SqliteStore {
    /// `pattern_counts` read from `other` (ClickHouse): whole days that are over are
    /// kept like a filtered view's (`report_days`, checked against `other`'s day marks),
    /// the rest read from it. Summing days is exact for the same reason as in
    /// `goal_days` (a visitor id is one day's).
    fn remote_pattern_counts(
        &self,
        other: &dyn EventStore,
        site_id: SiteId,
        pattern: &Pattern,
        from_ms: Millis,
        to_ms: Millis,
    ) -> Result<(i64, i64)> {
        let now = crate::clock::Clock::System.now_ms();
        let (first, end) = crate::clock::settled_days(from_ms, to_ms, now);
        if first >= end {
            return other.pattern_counts(site_id, pattern, from_ms, to_ms);
        }
        let key = format!("goal:{}:{}", pattern.kind.as_str(), pattern.glob);
        let kept = self.kept_days(site_id, &key, 0, first, end)?;
        let mut total = (0, 0);
        let mut missing = Vec::new();
        for day in first..end {
            match kept
                .fresh
                .get(&day)
                .and_then(|b| serde_json::from_str::<(i64, i64)>(b).ok())
            {
                Some((n, v)) => total = (total.0 + n, total.1 + v),
                None => missing.push(day),
            }
        }
        let by_day: HashMap<i64, (i64, i64)> = other
            .pattern_counts_by_day(site_id, pattern, &missing)?
            .into_iter()
            .collect();
        let mut counted: Vec<(i64, String, i64)> = Vec::new();
        // Days without a matching event count (and are kept) as zeros.
        for day in missing {
            let (n, v) = by_day.get(&day).copied().unwrap_or_default();
            total = (total.0 + n, total.1 + v);
            if let Some(mark) = kept.marks.get(&day) {
                counted.push((day, format!("[{n},{v}]"), *mark));
            }
        }
        if !counted.is_empty() {
            // A cache: a failed write leaves the numbers right, counted again next time.
            if let Err(e) = self.keep_days(site_id, &key, 0, &counted) {
                tracing::warn!(error = %e, "keeping a goal's daily counts failed");
            }
        }
        for (a, b) in [
            (from_ms, first * crate::clock::DAY_MS),
            (end * crate::clock::DAY_MS, to_ms),
        ] {
            if a < b {
                let (n, v) = other.pattern_counts(site_id, pattern, a, b)?;
                total = (total.0 + n, total.1 + v);
            }
        }
        Ok(total)
    }
}

fn remote_key(key: &str) -> String {
    format!("{key}@remote")
}

/// The SQL expression of a dimension over `events e LEFT JOIN sessions s LEFT JOIN
/// visit_ends v` (what a visit started with, and where it stands): session-level
/// dimensions come from the visit (as in the rollups), falling back to the event for
/// hits without a visit. Only these fixed strings are ever spliced into SQL.
fn dim_sql(d: Dim) -> Option<&'static str> {
    macro_rules! one_event_entry {
        () => {
            "CASE WHEN e.session_id != 0 AND e.name = 'pageview' THEN e.path ELSE '' END"
        };
    }
    Some(match d {
        Dim::Page => "e.path",
        Dim::Title => "e.title",
        // A visit whose first hit is the only event naming it has no row at all
        // (`one_event_visits.sql`): that hit is its start, a page view its entry page.
        Dim::EntryPage => concat!("COALESCE(s.entry_page, ", one_event_entry!(), ")"),
        // A visit of one hit has no end row: it ends at its entry page.
        Dim::ExitPage => concat!(
            "COALESCE(v.exit_page, s.entry_page, ",
            one_event_entry!(),
            ")"
        ),
        Dim::Source => "COALESCE(s.source, e.source)",
        Dim::Referrer => "COALESCE(s.referrer_host, e.referrer_host)",
        Dim::Medium => "COALESCE(s.medium, e.medium)",
        Dim::UtmSource => "COALESCE(s.utm_source, e.utm_source)",
        Dim::UtmMedium => "COALESCE(s.utm_medium, e.utm_medium)",
        Dim::UtmCampaign => "COALESCE(s.utm_campaign, e.utm_campaign)",
        Dim::UtmTerm => "COALESCE(s.utm_term, e.utm_term)",
        Dim::UtmContent => "COALESCE(s.utm_content, e.utm_content)",
        Dim::Browser => "COALESCE(s.browser, e.browser)",
        Dim::Os => "COALESCE(s.os, e.os)",
        Dim::Device => "COALESCE(s.device, e.device)",
        Dim::Country => "COALESCE(s.country, e.country)",
        Dim::Region => "COALESCE(s.region, e.region)",
        Dim::City => "COALESCE(s.city, e.city)",
        Dim::Event => "e.name",
        _ => return None,
    })
}

/// The condition for one pattern kind, its glob bound as parameter `?n`.
pub(super) fn pattern_sql(kind: PatternKind, n: usize) -> String {
    match kind {
        PatternKind::Event => format!("name GLOB ?{n}"),
        PatternKind::Page => format!("(name = 'pageview' AND path GLOB ?{n})"),
    }
}

impl EventStore for SqliteStore {
    fn for_each_event(
        &self,
        site_id: SiteId,
        from_ms: Millis,
        to_ms: Millis,
        f: &mut dyn FnMut(Event) -> std::io::Result<()>,
    ) -> Result<u64> {
        if let Some(other) = &self.reads_from {
            return other.for_each_event(site_id, from_ms, to_ms, f);
        }
        // A connection of its own: a long export must not block the server's reads. And
        // pages of rows, each read in a short transaction of its own, handed to `f`
        // after it ends: a reader that is slow (or never reads) holds no transaction,
        // so the WAL can be checkpointed and does not grow behind it.
        const PAGE: i64 = 2_000;
        let conn = open_conn(&self.path, Synchronous::Normal)?;
        // EVENT_COLUMNS ends with "FROM events": add the row id after its columns.
        let columns = EVENT_COLUMNS.replacen("FROM events", ", id FROM events", 1);
        let sql = format!(
            "{columns} WHERE site_id = ?1 AND ts_ms < ?3 AND (ts_ms, id) > (?2, ?4) ORDER BY ts_ms, id LIMIT ?5"
        );
        let id_col = EVENT_COLUMN_COUNT;
        let (mut after_ts, mut after_id) = (from_ms, i64::MIN);
        let mut n = 0;
        loop {
            let page: Vec<(Event, Millis, i64)> = {
                let mut st = conn.prepare_cached(&sql)?;
                let rows =
                    st.query_map(params![site_id, after_ts, to_ms, after_id, PAGE], |r| {
                        let e = event_from_row(r)?;
                        let ts = e.ts_ms;
                        Ok((e, ts, r.get(id_col)?))
                    })?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            let full = page.len() as i64 == PAGE;
            for (e, ts, id) in page {
                (after_ts, after_id) = (ts, id);
                if f(e).is_err() {
                    return Ok(n); // the reader went away (broken pipe): stop quietly
                }
                n += 1;
            }
            if !full {
                return Ok(n);
            }
        }
    }

    fn count_events(&self, site_id: SiteId) -> Result<u64> {
        if let Some(other) = &self.reads_from {
            return other.count_events(site_id);
        }
        let conn = self.conn();
        let n: i64 = conn.query_row(
            "SELECT COUNT(*) FROM events WHERE site_id = ?1",
            [site_id],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    fn has_events(&self, site_id: SiteId) -> Result<bool> {
        if let Some(other) = &self.reads_from {
            return other.has_events(site_id);
        }
        Ok(self.conn().query_row(
            "SELECT EXISTS (SELECT 1 FROM events WHERE site_id = ?1)",
            [site_id],
            |r| r.get(0),
        )?)
    }

    fn web_counts(
        &self,
        site_id: SiteId,
        from_ms: Millis,
        to_ms: Millis,
        filters: &[Filter],
        groups: &[Group],
    ) -> Result<WebCounts> {
        if let Some(other) = &self.reads_from {
            return other.web_counts(site_id, from_ms, to_ms, filters, groups);
        }
        let mut tally = Tally::new(groups);
        self.matching_rows(site_id, from_ms, to_ms, filters, &mut |r| tally.add(r))?;
        Ok(tally.finish())
    }

    fn web_counts_by_day(
        &self,
        site_id: SiteId,
        days: &[i64],
        filters: &[Filter],
        groups: &[Group],
    ) -> Result<Vec<(i64, WebCounts)>> {
        self.counts_by_day(site_id, days, filters, groups)
    }

    fn web_rows(
        &self,
        site_id: SiteId,
        from_ms: Millis,
        to_ms: Millis,
        f: &mut dyn FnMut(&WebRow),
    ) -> Result<bool> {
        match &self.reads_from {
            Some(other) => other.web_rows(site_id, from_ms, to_ms, f),
            None => self
                .matching_rows(site_id, from_ms, to_ms, &[], f)
                .map(|_| true),
        }
    }

    fn campaign_events(&self, campaign_id: i64) -> Result<Vec<EmailRow>> {
        if let Some(other) = &self.reads_from {
            return other.campaign_events(campaign_id);
        }
        let conn = self.conn();
        let mut st = conn.prepare_cached(CAMPAIGN_EVENTS)?;
        let rows = st.query_map([campaign_id], |r| {
            Ok(EmailRow {
                ts_ms: r.get(0)?,
                name: r.get::<_, String>(1)?,
                recipient: r.get(2)?,
                link: r.get(3)?,
                verdict: r.get(4)?,
                client: r.get(5)?,
                device: r.get(6)?,
                reason: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn has_human_open(&self, campaign_id: i64, recipient: &str) -> Result<bool> {
        if let Some(other) = &self.reads_from {
            return other.has_human_open(campaign_id, recipient);
        }
        let conn = self.conn();
        // Prepared once per connection: a campaign's clicks ask this of each new recipient.
        let mut st = conn.prepare_cached(HUMAN_OPEN)?;
        Ok(st.exists(params![campaign_id, recipient])?)
    }

    fn ad_counts(
        &self,
        site_id: SiteId,
        campaign_id: Option<i64>,
        from_ms: Millis,
        to_ms: Millis,
    ) -> Result<Vec<AdCount>> {
        if let Some(other) = &self.reads_from {
            return other.ad_counts(site_id, campaign_id, from_ms, to_ms);
        }
        let conn = self.conn();
        let mut st = conn.prepare_cached(include_str!("sql/queries/ad_counts.sql"))?;
        let rows = st.query_map(params![site_id, from_ms, to_ms, campaign_id], |r| {
            Ok(AdCount {
                campaign_id: r.get(0)?,
                ad: r.get(1)?,
                name: r.get::<_, String>(2)?,
                bot: r.get(3)?,
                n: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn touches(&self, site_id: SiteId, from_ms: Millis, to_ms: Millis) -> Result<Vec<Touch>> {
        self.held_touches(site_id, from_ms, to_ms, &|_| true, &mut |a, b| {
            self.read_touches(site_id, a, b)
        })
    }

    fn touches_of(
        &self,
        site_id: SiteId,
        from_ms: Millis,
        to_ms: Millis,
        visitors: &HashSet<i64>,
        click_ids: &HashSet<String>,
    ) -> Result<Vec<Touch>> {
        let of = |t: &Touch| t.is_of(visitors, click_ids);
        self.held_touches(site_id, from_ms, to_ms, &of, &mut |a, b| {
            self.read_touches_of(site_id, a, b, visitors, click_ids)
        })
    }

    fn keeps_days(&self) -> bool {
        // Days read from another store are checked against its own marks (ClickHouse's
        // `day_marks`); a store without them keeps nothing (`kept_days` gives no mark).
        true
    }

    fn kept_days(
        &self,
        site_id: SiteId,
        key: &str,
        reach: i64,
        first: i64,
        end: i64,
    ) -> Result<KeptDays> {
        let days = (first, end);
        match &self.reads_from {
            None => super::report_days::kept(&self.conn(), site_id.0, key, reach, days, None),
            Some(other) => match other.day_marks(site_id, first - reach.max(0), end)? {
                Some(m) => {
                    let key = &remote_key(key);
                    super::report_days::kept(&self.conn(), site_id.0, key, reach, days, Some(&m))
                }
                None => Ok(KeptDays::default()),
            },
        }
    }

    fn keep_days(
        &self,
        site_id: SiteId,
        key: &str,
        reach: i64,
        days: &[(i64, String, i64)],
    ) -> Result<()> {
        let key = match &self.reads_from {
            None => key.to_owned(),
            Some(_) => remote_key(key),
        };
        super::report_days::keep(&self.conn(), site_id.0, &key, reach, days)
    }

    fn pattern_counts(
        &self,
        site_id: SiteId,
        pattern: &Pattern,
        from_ms: Millis,
        to_ms: Millis,
    ) -> Result<(i64, i64)> {
        if let Some(other) = &self.reads_from {
            return self.remote_pattern_counts(other.as_ref(), site_id, pattern, from_ms, to_ms);
        }
        super::goal_days::pattern_counts(
            &self.conn(),
            site_id.0,
            pattern,
            from_ms,
            to_ms,
            crate::clock::Clock::System.now_ms(),
        )
    }

    fn funnel_rows(
        &self,
        site_id: SiteId,
        steps: &[Pattern],
        by_visit: bool,
        from_ms: Millis,
        to_ms: Millis,
    ) -> Result<Vec<(i64, Millis, u64)>> {
        if let Some(other) = &self.reads_from {
            return other.funnel_rows(site_id, steps, by_visit, from_ms, to_ms);
        }
        if steps.is_empty() || steps.len() > 32 {
            return Err(StoreError::Conflict("a funnel has 1 to 32 steps".into()));
        }
        // Only fixed SQL and parameter numbers are spliced; the patterns are bound.
        let mask = steps
            .iter()
            .enumerate()
            .map(|(i, s)| format!("(({}) << {i})", pattern_sql(s.kind, i + 4)))
            .collect::<Vec<_>>()
            .join(" | ");
        let key = if by_visit { "session_id" } else { "visitor_id" };
        let sql = format!(
            "SELECT {key}, ts_ms, {mask} AS m FROM events
             WHERE site_id = ?1 AND ts_ms >= ?2 AND ts_ms < ?3 AND visitor_id != 0 AND {WEB_EVENT}
               AND m != 0
             ORDER BY {key}, ts_ms, id"
        );
        let conn = self.conn();
        let mut st = conn.prepare(&sql)?;
        let mut args: Vec<rusqlite::types::Value> =
            vec![site_id.0.into(), from_ms.into(), to_ms.into()];
        args.extend(steps.iter().map(|s| s.sql_glob().into()));
        let rows = st.query_map(rusqlite::params_from_iter(args), |r| {
            Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

impl SqliteStore {
    /// Streams the web events in `[from, to)` that match every filter, each with its
    /// visit: what [`EventStore::web_counts`] counts (engagement events included: they
    /// count scroll depth and visible time).
    fn matching_rows(
        &self,
        site_id: SiteId,
        from_ms: Millis,
        to_ms: Millis,
        filters: &[Filter],
        f: &mut dyn FnMut(&WebRow),
    ) -> Result<()> {
        let mut args: Vec<rusqlite::types::Value> =
            vec![site_id.0.into(), from_ms.into(), to_ms.into()];
        let mut cond = String::new();
        for flt in filters {
            let col = dim_sql(flt.dim).ok_or_else(|| {
                StoreError::Conflict(format!("cannot filter by {}", flt.dim.name()))
            })?;
            args.push(flt.value.clone().into());
            let n = args.len();
            cond.push_str(&match flt.op {
                FilterOp::Is => format!(" AND {col} = ?{n}"),
                FilterOp::IsNot => format!(" AND {col} != ?{n}"),
                FilterOp::Contains => format!(" AND instr(lower({col}), lower(?{n})) > 0"),
            });
        }
        let dims = SESSION_DIMS
            .iter()
            .filter_map(|d| dim_sql(*d))
            .collect::<Vec<_>>()
            .join(", ");
        let (entry, exit) = (dim_sql(Dim::EntryPage), dim_sql(Dim::ExitPage));
        let (entry, exit) = (entry.unwrap_or("''"), exit.unwrap_or("''"));
        let sql = format!(
            "SELECT e.ts_ms, e.visitor_id, e.session_id, e.name, e.path,
                    {entry}, {exit},
                    COALESCE(v.events, e.session_id != 0), COALESCE(v.last_ms - s.start_ms, 0),
                    e.title,
                    e.scroll_pct, e.engaged_ms, {dims}
             FROM events e LEFT JOIN sessions s ON s.id = e.session_id
                  LEFT JOIN visit_ends v ON v.id = e.session_id
             WHERE e.site_id = ?1 AND e.ts_ms >= ?2 AND e.ts_ms < ?3
               AND e.bot IS NULL AND e.campaign_id IS NULL{cond}"
        );
        let conn = self.conn();
        let mut st = conn.prepare_cached(&sql)?;
        let mut rows = st.query(rusqlite::params_from_iter(args))?;
        // One row's buffers, reused: a filtered page reads millions of rows.
        let mut row = WebRow {
            dims: vec![String::new(); SESSION_DIMS.len()],
            ..WebRow::default()
        };
        let text = |r: &rusqlite::Row, i: usize, to: &mut String| -> rusqlite::Result<()> {
            to.clear();
            if let rusqlite::types::ValueRef::Text(t) = r.get_ref(i)? {
                to.push_str(&String::from_utf8_lossy(t));
            }
            Ok(())
        };
        while let Some(r) = rows.next()? {
            row.ts_ms = r.get(0)?;
            row.visitor_id = r.get(1)?;
            row.session_id = r.get(2)?;
            text(r, 3, &mut row.name)?;
            text(r, 4, &mut row.path)?;
            text(r, 5, &mut row.entry_page)?;
            text(r, 6, &mut row.exit_page)?;
            row.visit_events = r.get(7)?;
            row.visit_ms = r.get(8)?;
            text(r, 9, &mut row.title)?;
            row.scroll_pct = r.get(10)?;
            row.engaged_ms = r.get(11)?;
            for (i, d) in row.dims.iter_mut().enumerate() {
                text(r, 12 + i, d)?;
            }
            f(&row);
        }
        Ok(())
    }

    /// The touches of `[from, to)` read from the events (here or in the store reads
    /// come from), none from held days.
    pub(super) fn read_touches(
        &self,
        site_id: SiteId,
        from_ms: Millis,
        to_ms: Millis,
    ) -> Result<Vec<Touch>> {
        if let Some(other) = &self.reads_from {
            return other.touches(site_id, from_ms, to_ms);
        }
        let conn = self.conn();
        let mut st = conn.prepare_cached(&touches_sql("", ""))?;
        let rows = st.query_map(params![site_id, from_ms, to_ms], touch_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// [`read_touches`](Self::read_touches) of these visitors or carrying these click
    /// ids.
    pub(super) fn read_touches_of(
        &self,
        site_id: SiteId,
        from_ms: Millis,
        to_ms: Millis,
        visitors: &HashSet<i64>,
        click_ids: &HashSet<String>,
    ) -> Result<Vec<Touch>> {
        if let Some(other) = &self.reads_from {
            return other.touches_of(site_id, from_ms, to_ms, visitors, click_ids);
        }
        // One seek per visitor and click id (the indexes of schema 22), each touch once,
        // in the order of the range's read.
        let conn = self.conn();
        let mut found: BTreeMap<(Millis, i64), Touch> = BTreeMap::new();
        let keys: [(&str, &str, Vec<rusqlite::types::Value>); 2] = [
            (
                "INDEXED BY events_touch_visitors",
                "AND visitor_id = ?4",
                visitors.iter().map(|v| (*v).into()).collect(),
            ),
            (
                "INDEXED BY events_touch_click_ids",
                "AND click_id = ?4",
                click_ids
                    .iter()
                    .filter(|c| !c.is_empty())
                    .map(|c| c.clone().into())
                    .collect(),
            ),
        ];
        for (index, narrow, values) in keys {
            let mut st = conn.prepare_cached(&touches_sql(index, narrow))?;
            for v in values {
                let rows = st.query_map(params![site_id, from_ms, to_ms, v], |r| {
                    Ok(((r.get(0)?, r.get(8)?), touch_from_row(r)?))
                })?;
                for row in rows {
                    let (at, t) = row?;
                    found.insert(at, t);
                }
            }
        }
        Ok(found.into_values().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The human-triggered verdicts are written out in SQL in several places that must
    /// agree with each other (a partial index is read only where a query repeats its
    /// condition) and with `Verdict::is_human_triggered`: a verdict added to one and not
    /// the others would count its opens in one report and not in another.
    #[test]
    fn every_list_of_human_triggered_verdicts_in_sql_is_the_models() {
        let expected: std::collections::BTreeSet<&str> = crate::model::Verdict::ALL
            .into_iter()
            .filter(|v| v.is_human_triggered())
            .map(|v| v.as_str())
            .collect();
        let sources = [
            (
                "migration 027",
                include_str!("sql/migrations/027_recipient_lookups.sql"),
            ),
            ("reclassify.sql", super::super::writer::RECLASSIFY),
            ("HUMAN_OPEN", HUMAN_OPEN),
            (
                "store/clickhouse/events.rs",
                include_str!("../clickhouse/events.rs"),
            ),
        ];
        for (name, text) in sources {
            let lists: Vec<std::collections::BTreeSet<&str>> = text
                .split("verdict IN (")
                .skip(1)
                .map(|rest| {
                    let list = &rest[..rest.find(')').expect("a closed list")];
                    list.split(',')
                        .map(|v| v.trim().trim_matches('\''))
                        .collect()
                })
                .collect();
            assert!(!lists.is_empty(), "{name} lists the verdicts");
            for list in lists {
                assert_eq!(list, expected, "{name}");
            }
        }
    }

    /// A stored reason reads back as itself (an event re-read by the writer's replay or
    /// an export keeps its reason), whatever the release that added it.
    #[test]
    fn every_reason_code_reads_back_as_itself() {
        for (code, _, _) in crate::model::EMAIL_REASONS {
            assert_eq!(intern_reason(code), *code);
        }
        assert_eq!(intern_reason("from_the_future"), "other");
    }

    #[test]
    fn the_column_count_matches_the_select_list() {
        let list = EVENT_COLUMNS
            .trim_start_matches("SELECT")
            .split("FROM events")
            .next()
            .unwrap();
        assert_eq!(list.split(',').count(), EVENT_COLUMN_COUNT);
    }

    /// A recipient's events are found in `events_recipient`, and a campaign's in time
    /// order in `events_campaign` (schema 27): no query on an email hit's path, nor the
    /// campaign report, scans a campaign or sorts it.
    #[test]
    fn recipient_and_campaign_queries_read_their_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::SqliteStore::open(dir.path()).unwrap();
        let conn = store.conn();
        let plan = |sql: &str| -> String {
            let mut st = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let n = st.parameter_count();
            let args: Vec<i64> = vec![0; n];
            let rows = st
                .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
                .unwrap();
            rows.map(|r| r.unwrap()).collect::<Vec<_>>().join("; ")
        };
        let reclassify = plan(super::super::writer::RECLASSIFY);
        assert!(
            reclassify.contains("INDEX events_recipient"),
            "{reclassify}"
        );
        let opened = plan(HUMAN_OPEN);
        assert!(opened.contains("INDEX events_recipient"), "{opened}");
        // Comparing a bound parameter with a constant of the index's condition makes
        // SQLite plan the statement again whenever the parameter is bound: not here.
        let mut re = conn.prepare(super::super::writer::RECLASSIFY).unwrap();
        for (name, verdict) in [("email_click", "human"), ("email_open", "human")] {
            let args =
                rusqlite::params!["scanner", "burst", 1, "r@example.com", name, 0, verdict, ""];
            let mut rows = re.query(args).unwrap();
            while rows.next().unwrap().is_some() {}
        }
        assert_eq!(re.get_status(rusqlite::StatementStatus::RePrepare), 0);
        let report = plan(CAMPAIGN_EVENTS);
        assert!(report.contains("INDEX events_campaign"), "{report}");
        assert!(!report.contains("TEMP B-TREE"), "{report}");
    }

    /// Pages of 2,000 hand over every event once, in time order, also when many share
    /// a millisecond across a page boundary.
    #[test]
    fn every_event_is_streamed_once_across_pages() {
        use crate::store::EventStore;
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::SqliteStore::open(dir.path()).unwrap();
        let mut w = store.writer(Synchronous::Normal).unwrap();
        let events: Vec<Event> = (0..4_500)
            .map(|i| Event {
                site_id: 1,
                ts_ms: 1_000 + i / 7, // seven events per millisecond
                path: format!("/{i}"),
                ..Event::default()
            })
            .collect();
        w.apply(&events, &[], None).unwrap();
        let mut seen = Vec::new();
        let n = store
            .for_each_event(SiteId(1), 1_000, 1_000 + 4_500, &mut |e| {
                seen.push(e.path);
                Ok(())
            })
            .unwrap();
        assert_eq!(n, 4_500);
        let want: Vec<String> = (0..4_500).map(|i| format!("/{i}")).collect();
        assert_eq!(seen, want);
        // A range that starts in the middle of a millisecond's events takes all of it.
        let n = store
            .for_each_event(SiteId(1), 1_100, 1_101, &mut |_| Ok(()))
            .unwrap();
        assert_eq!(n, 7);
    }
}
