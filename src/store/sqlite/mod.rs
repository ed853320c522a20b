//! The SQLite backend: one file (`pixeltrack.db`) in the data dir, WAL mode so the
//! CLI and reports read while the server writes, one writer connection owned by the
//! ingest thread, and `secure_delete` so deleted salts and erased rows are zeroed.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};

use super::{
    AdCount, ApiToken, Counts, Dim, EmailRow, Filter, FilterOp, Goal, Pattern, PatternKind, Result,
    RollupSum, Scope, SessionRow, Store, StoreError, Subject, Touch, WebRow, SESSION_DIMS,
};
use crate::clock::Millis;
use crate::config::Synchronous;
use crate::enrich::Salt;
use crate::model::{
    AdFields, BotReason, Campaign, Device, EmailFields, Event, Privacy, PrivacyMode, Site, SiteId,
    SiteKey, Utm, Verdict, WithoutConsent,
};

mod accounts;
mod writer;

pub use accounts::{Role, ShareLink, User, WebSession};
pub use writer::SqliteWriter;

pub const DB_FILE: &str = "pixeltrack.db";

/// Migrations in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("sql/migrations/001_init.sql"),
    include_str!("sql/migrations/002_email.sql"),
    include_str!("sql/migrations/003_privacy.sql"),
    include_str!("sql/migrations/004_api.sql"),
    include_str!("sql/migrations/005_web.sql"),
    include_str!("sql/migrations/006_ads.sql"),
    include_str!("sql/migrations/007_accounts.sql"),
    include_str!("sql/migrations/008_share.sql"),
    include_str!("sql/migrations/009_country.sql"),
    include_str!("sql/migrations/010_ids_never_reused.sql"),
    include_str!("sql/migrations/011_spool.sql"),
    include_str!("sql/migrations/012_unique_keys.sql"),
];

const UPSERT_ROLLUP: &str = include_str!("sql/queries/upsert_rollup.sql");
const ROLLUP_SUMS: &str = include_str!("sql/queries/rollup_sums.sql");
const ROLLUP_SERIES: &str = include_str!("sql/queries/rollup_series.sql");
/// `SELECT <every events column, in event_from_row order> FROM events`; callers add the rest.
const EVENT_COLUMNS: &str = include_str!("sql/queries/event_columns.sql");
const CAMPAIGN_EVENTS: &str = include_str!("sql/queries/campaign_events.sql");

pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
}

fn open_conn(path: &Path, sync: Synchronous) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    let sync = match sync {
        Synchronous::Normal => "NORMAL",
        Synchronous::Full => "FULL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // 64 MiB of page cache per connection (SQLite's default is 2 MiB): the rollups a
    // dashboard reads stay in memory instead of being re-read on every panel.
    conn.pragma_update(None, "cache_size", -65_536)?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database in `data_dir` and migrates it.
    pub fn open(data_dir: &Path) -> Result<SqliteStore> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.to_owned(),
            source,
        })?;
        let path = data_dir.join(DB_FILE);
        let mut conn = open_conn(&path, Synchronous::Normal)?;
        migrate(&mut conn)?;
        Ok(SqliteStore {
            path,
            conn: Mutex::new(conn),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A new connection for the one writer thread.
    pub fn writer(&self, sync: Synchronous) -> Result<SqliteWriter> {
        SqliteWriter::new(open_conn(&self.path, sync)?)
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-done transaction behind
        // (rusqlite rolls back on drop), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Salts still held, oldest first.
    pub fn salts(&self) -> Result<Vec<Salt>> {
        let conn = self.conn();
        let mut st = conn.prepare("SELECT day, salt FROM salts ORDER BY day")?;
        let rows = st.query_map([], |r| {
            let day: i64 = r.get(0)?;
            let blob: Vec<u8> = r.get(1)?;
            Ok((day, blob))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (day, blob) = row?;
            if let Ok(bytes) = <[u8; 32]>::try_from(blob.as_slice()) {
                out.push(Salt { day, bytes });
            }
        }
        Ok(out)
    }

    /// Stores `salt` unless its day already has one; returns the day's salt.
    pub fn put_salt(&self, salt: &Salt) -> Result<Salt> {
        let conn = self.conn();
        conn.execute(
            "INSERT OR IGNORE INTO salts (day, salt) VALUES (?1, ?2)",
            params![salt.day, &salt.bytes[..]],
        )?;
        let blob: Vec<u8> =
            conn.query_row("SELECT salt FROM salts WHERE day = ?1", [salt.day], |r| {
                r.get(0)
            })?;
        let bytes = <[u8; 32]>::try_from(blob.as_slice())
            .map_err(|_| StoreError::Conflict("stored salt has the wrong length".into()))?;
        Ok(Salt {
            day: salt.day,
            bytes,
        })
    }

    /// Destroys salts of days before `keep_from_day`, and the unique-visitor keys of
    /// those days, then checkpoints so the bytes leave the WAL too.
    pub fn destroy_salts_before(&self, keep_from_day: i64) -> Result<usize> {
        let conn = self.conn();
        let n = conn.execute("DELETE FROM salts WHERE day < ?1", [keep_from_day])?;
        for table in ["unique_keys", "uniques"] {
            conn.execute(
                &format!("DELETE FROM {table} WHERE day < ?1"),
                [keep_from_day - 1],
            )?;
        }
        if n > 0 {
            checkpoint(&conn)?;
        }
        Ok(n)
    }

    /// Sessions whose last event is at or after `since`.
    pub fn recent_sessions(&self, since: Millis) -> Result<Vec<SessionRow>> {
        writer::recent_sessions(&self.conn(), since)
    }

    /// Days before `before_day` that still have hourly rollup rows (past midnight).
    pub fn rollup_days_to_compact(&self, before_day: i64) -> Result<Vec<i64>> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT DISTINCT hour / 24 FROM rollups WHERE hour < ?1 AND hour % 24 != 0 ORDER BY 1",
        )?;
        let rows = st.query_map([before_day * 24], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Folds one day's hourly rollup rows into a single row per value at the day's
    /// first hour, in one transaction. Rollup rows are additive (every write is a
    /// delta), so this is exact and safe beside the writer; a 30-day panel then reads
    /// 30 rows per value instead of 720. Returns the rows folded away.
    pub fn compact_rollup_day(&self, day: i64) -> Result<usize> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let (first, end) = (day * 24, day * 24 + 24);
        tx.execute(
            &format!(
                "INSERT INTO rollups (site_id, dim, hour, value, visitors, visits, pageviews, events,
                                  bounces, duration_ms, scroll_sum, scroll_n, engaged_ms)
             SELECT site_id, dim, ?1, value, SUM(visitors), SUM(visits), SUM(pageviews),
                    SUM(events), SUM(bounces), SUM(duration_ms), SUM(scroll_sum), SUM(scroll_n),
                    SUM(engaged_ms)
             FROM rollups WHERE hour > ?1 AND hour < ?2
             GROUP BY site_id, dim, value
             {}",
                upsert_rule()
            ),
            params![first, end],
        )?;
        let n = tx.execute(
            "DELETE FROM rollups WHERE hour > ?1 AND hour < ?2",
            params![first, end],
        )?;
        tx.commit()?;
        Ok(n)
    }

    /// Copies what the WAL holds into the main file without waiting for anyone (the
    /// writer never checkpoints itself, so it never waits for an fsync); once readers
    /// have moved on, the writer starts the WAL over from its beginning.
    pub fn checkpoint_passive(&self) -> Result<()> {
        self.conn()
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Moves everything in the WAL into the main file and truncates the WAL.
    pub fn checkpoint(&self) -> Result<()> {
        checkpoint(&self.conn())
    }
}

fn checkpoint(conn: &Connection) -> Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    Ok(())
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError::SchemaTooNew {
            found: version,
            known,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

const SITE_COLUMNS: &str = "SELECT id, key, domain, name, created_ms, privacy_mode, honour_gpc, \
     honour_dnt, without_consent, retention_days, allow_emails, email_mode, hosts FROM sites";

fn site_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Site> {
    let key: String = r.get(1)?;
    let mode: String = r.get(5)?;
    let without: String = r.get(8)?;
    let defaults = Privacy::default();
    Ok(Site {
        id: SiteId(r.get(0)?),
        key: SiteKey::parse(&key).unwrap_or_else(|| SiteKey::parse("invalid").expect("valid")),
        domain: r.get(2)?,
        name: r.get(3)?,
        created_ms: r.get(4)?,
        hosts: r
            .get::<_, String>(12)?
            .split(',')
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .collect(),
        privacy: Privacy {
            mode: PrivacyMode::parse(&mode).unwrap_or(defaults.mode),
            honour_gpc: r.get(6)?,
            honour_dnt: r.get(7)?,
            without_consent: WithoutConsent::parse(&without).unwrap_or(defaults.without_consent),
            retention_days: r.get(9)?,
            allow_emails: r.get(10)?,
            deliverability_only: r.get::<_, String>(11)? == "deliverability",
        },
    })
}

fn counts_from(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Counts> {
    Ok(Counts {
        visitors: r.get(first)?,
        visits: r.get(first + 1)?,
        pageviews: r.get(first + 2)?,
        events: r.get(first + 3)?,
        bounces: r.get(first + 4)?,
        duration_ms: r.get(first + 5)?,
        scroll_sum: r.get(first + 6)?,
        scroll_n: r.get(first + 7)?,
        engaged_ms: r.get(first + 8)?,
    })
}

pub(super) fn event_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Event> {
    let bot: Option<String> = r.get(24)?;
    let device: String = r.get(23)?;
    Ok(Event {
        site_id: r.get(0)?,
        ts_ms: r.get(1)?,
        name: r.get(2)?,
        visitor_id: r.get(3)?,
        session_id: r.get(4)?,
        host: r.get(5)?,
        path: r.get(6)?,
        query: r.get(7)?,
        title: r.get(8)?,
        referrer: r.get(9)?,
        referrer_host: r.get(10)?,
        source: r.get(11)?,
        medium: r.get(12)?,
        utm: Utm {
            source: r.get(13)?,
            medium: r.get(14)?,
            campaign: r.get(15)?,
            term: r.get(16)?,
            content: r.get(17)?,
        },
        click_id: r.get(18)?,
        browser: r.get(19)?,
        browser_version: r.get(20)?,
        os: r.get(21)?,
        os_version: r.get(22)?,
        device: Device::parse(&device),
        bot: bot.as_deref().and_then(BotReason::parse),
        value_minor: r.get(25)?,
        currency: r.get(26)?,
        order_id: r.get(27)?,
        props: r.get(28)?,
        ip: r.get(29)?,
        email: email_from_row(r)?,
        scroll_pct: r.get(36)?,
        engaged_ms: r.get(37)?,
        screen_width: r.get(38)?,
        ad: ad_from_row(r)?,
        country: r.get(41)?,
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
fn intern_reason(s: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "ok",
        "ua_google_image_proxy",
        "ua_yahoo_mail_proxy",
        "ua_seznam_email_proxy",
        "ua_bare_mozilla",
        "ua_security_scanner",
        "scanner_network",
        "head_before_get",
        "too_soon_after_send",
        "empty_ua",
        "crawler_list",
        "burst",
        "one_ip_many_recipients",
        "click_without_open_soon_after_send",
    ];
    KNOWN.iter().find(|k| **k == s).copied().unwrap_or("other")
}

fn intern_client(s: &str) -> &'static str {
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

fn api_token_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApiToken> {
    let scope: String = r.get(2)?;
    Ok(ApiToken {
        id: r.get(0)?,
        name: r.get(1)?,
        // An unknown scope from a newer version reads as the least powerful one.
        scope: Scope::parse(&scope).unwrap_or(Scope::Read),
        site_id: r.get(3)?,
        created_ms: r.get(4)?,
    })
}

/// The `ON CONFLICT … DO UPDATE` rule of a rollup upsert (adding the deltas), shared by
/// the writer's upsert and the compaction, so both add every counter the same way.
fn upsert_rule() -> &'static str {
    let at = UPSERT_ROLLUP
        .find("ON CONFLICT")
        .unwrap_or(UPSERT_ROLLUP.len());
    &UPSERT_ROLLUP[at..]
}

/// Web traffic: no bots, no email or ad events (those have a campaign).
const WEB_EVENT: &str = "bot IS NULL AND campaign_id IS NULL";

/// The SQL expression of a dimension over `events e LEFT JOIN sessions s`: session-level
/// dimensions come from the visit (as in the rollups), falling back to the event for
/// hits without a visit. Only these fixed strings are ever spliced into SQL.
fn dim_sql(d: Dim) -> Option<&'static str> {
    Some(match d {
        Dim::Page => "e.path",
        Dim::Title => "e.title",
        Dim::EntryPage => "COALESCE(s.entry_page, '')",
        Dim::ExitPage => "COALESCE(s.exit_page, '')",
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
        Dim::Event => "e.name",
        _ => return None,
    })
}

/// The condition for one pattern kind, its glob bound as parameter `?n`.
fn pattern_sql(kind: PatternKind, n: usize) -> String {
    match kind {
        PatternKind::Event => format!("name GLOB ?{n}"),
        PatternKind::Page => format!("(name = 'pageview' AND path GLOB ?{n})"),
    }
}

fn campaign_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Campaign> {
    Ok(Campaign {
        id: r.get(0)?,
        site_id: r.get(1)?,
        name: r.get(2)?,
        created_ms: r.get(3)?,
        sent_ms: r.get(4)?,
        delivered: r.get(5)?,
        cost: r
            .get::<_, Option<i64>>(6)?
            .map(|m| r.get(7).map(|c| (m, c)))
            .transpose()?,
    })
}

const CAMPAIGN_COLUMNS: &str =
    "SELECT id, site_id, name, created_ms, sent_ms, delivered, cost_minor, cost_currency FROM campaigns";

impl Store for SqliteStore {
    fn sites(&self) -> Result<Vec<Site>> {
        let conn = self.conn();
        let mut st = conn.prepare(&format!("{SITE_COLUMNS} ORDER BY id"))?;
        let rows = st.query_map([], site_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn site_by_key(&self, key: &SiteKey) -> Result<Option<Site>> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                &format!("{SITE_COLUMNS} WHERE key = ?1"),
                [key.as_str()],
                site_from_row,
            )
            .optional()?)
    }

    fn add_site(&self, key: &SiteKey, domain: &str, name: &str, now: Millis) -> Result<Site> {
        let conn = self.conn();
        let exists: Option<String> = conn
            .query_row("SELECT key FROM sites WHERE domain = ?1", [domain], |r| {
                r.get(0)
            })
            .optional()?;
        if let Some(existing) = exists {
            return Err(StoreError::Conflict(format!(
                "a site for {domain} exists already (key {existing})"
            )));
        }
        conn.execute(
            "INSERT INTO sites (key, domain, name, created_ms) VALUES (?1, ?2, ?3, ?4)",
            params![key.as_str(), domain, name, now],
        )?;
        Ok(Site {
            id: SiteId(conn.last_insert_rowid()),
            key: key.clone(),
            domain: domain.to_owned(),
            name: name.to_owned(),
            created_ms: now,
            privacy: Privacy::default(),
            hosts: Vec::new(),
        })
    }

    fn rename_site(&self, site_id: i64, name: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE sites SET name = ?2 WHERE id = ?1",
            params![site_id, name],
        )?;
        Ok(())
    }

    fn rename_campaign(&self, id: i64, name: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE campaigns SET name = ?2 WHERE id = ?1",
            params![id, name],
        )?;
        Ok(())
    }

    fn remove_campaign(&self, id: i64) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM events WHERE campaign_id = ?1", [id])?;
        tx.execute("DELETE FROM consent WHERE campaign_id = ?1", [id])?;
        let n = tx.execute("DELETE FROM campaigns WHERE id = ?1", [id])?;
        tx.commit()?;
        Ok(n == 1)
    }

    fn remove_site(&self, key: &SiteKey) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let id: Option<i64> = tx
            .query_row("SELECT id FROM sites WHERE key = ?1", [key.as_str()], |r| {
                r.get(0)
            })
            .optional()?;
        let Some(id) = id else {
            return Ok(false);
        };
        for table in [
            "events",
            "sessions",
            "rollups",
            "campaigns",
            "consent",
            "last_opens",
            "orders",
            "goals",
            "share_links",
        ] {
            tx.execute(&format!("DELETE FROM {table} WHERE site_id = ?1"), [id])?;
        }
        tx.execute("DELETE FROM user_sites WHERE site_id = ?1", [id])?;
        tx.execute("DELETE FROM api_tokens WHERE site_id = ?1", [id])?;
        tx.execute("DELETE FROM sites WHERE id = ?1", [id])?;
        tx.commit()?;
        Ok(true)
    }

    fn rollup_sums(
        &self,
        site_id: i64,
        dim: Dim,
        from_hour: i64,
        to_hour: i64,
        limit: usize,
    ) -> Result<Vec<RollupSum>> {
        let conn = self.conn();
        let mut st = conn.prepare_cached(ROLLUP_SUMS)?;
        let rows = st.query_map(
            params![site_id, dim as i64, from_hour, to_hour, limit as i64],
            |r| {
                Ok(RollupSum {
                    value: r.get(0)?,
                    counts: counts_from(r, 1)?,
                })
            },
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn rollup_value(
        &self,
        site_id: i64,
        dim: Dim,
        value: &str,
        from_hour: i64,
        to_hour: i64,
    ) -> Result<Counts> {
        let conn = self.conn();
        let mut st = conn.prepare_cached(
            "SELECT SUM(visitors), SUM(visits), SUM(pageviews), SUM(events), SUM(bounces),
                    SUM(duration_ms), SUM(scroll_sum), SUM(scroll_n), SUM(engaged_ms)
             FROM rollups WHERE site_id = ?1 AND dim = ?2 AND hour >= ?3 AND hour < ?4 AND value = ?5",
        )?;
        let c = st.query_row(
            params![site_id, dim as i64, from_hour, to_hour, value],
            |r| {
                let n = |i: usize| r.get::<_, Option<i64>>(i).map(Option::unwrap_or_default);
                Ok(Counts {
                    visitors: n(0)?,
                    visits: n(1)?,
                    pageviews: n(2)?,
                    events: n(3)?,
                    bounces: n(4)?,
                    duration_ms: n(5)?,
                    scroll_sum: n(6)?,
                    scroll_n: n(7)?,
                    engaged_ms: n(8)?,
                })
            },
        )?;
        Ok(c)
    }

    fn rollup_series(
        &self,
        site_id: i64,
        from_hour: i64,
        to_hour: i64,
        bucket_hours: i64,
    ) -> Result<Vec<(i64, Counts)>> {
        let conn = self.conn();
        let mut st = conn.prepare_cached(ROLLUP_SERIES)?;
        let rows = st.query_map(
            params![site_id, from_hour, to_hour, bucket_hours.max(1)],
            |r| Ok((r.get(0)?, counts_from(r, 1)?)),
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn for_each_event(
        &self,
        site_id: i64,
        from_ms: Millis,
        to_ms: Millis,
        f: &mut dyn FnMut(Event) -> std::io::Result<()>,
    ) -> Result<u64> {
        // A connection of its own: a long export must not block the server's reads.
        let conn = open_conn(&self.path, Synchronous::Normal)?;
        let sql = format!(
            "{EVENT_COLUMNS} WHERE site_id = ?1 AND ts_ms >= ?2 AND ts_ms < ?3 ORDER BY ts_ms, id"
        );
        let mut st = conn.prepare(&sql)?;
        let mut rows = st.query(params![site_id, from_ms, to_ms])?;
        let mut n = 0;
        while let Some(row) = rows.next()? {
            if f(event_from_row(row)?).is_err() {
                break; // the reader went away (broken pipe): stop quietly
            }
            n += 1;
        }
        Ok(n)
    }

    fn has_events(&self, site_id: i64) -> Result<bool> {
        Ok(self.conn().query_row(
            "SELECT EXISTS (SELECT 1 FROM events WHERE site_id = ?1)",
            [site_id],
            |r| r.get(0),
        )?)
    }

    fn count_events(&self, site_id: i64) -> Result<u64> {
        let conn = self.conn();
        let n: i64 = conn.query_row(
            "SELECT COUNT(*) FROM events WHERE site_id = ?1",
            [site_id],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    fn campaigns(&self, site_id: Option<i64>) -> Result<Vec<Campaign>> {
        let conn = self.conn();
        let sql = format!("{CAMPAIGN_COLUMNS} WHERE ?1 IS NULL OR site_id = ?1 ORDER BY id");
        let mut st = conn.prepare(&sql)?;
        let rows = st.query_map([site_id], campaign_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn campaign(&self, id: i64) -> Result<Option<Campaign>> {
        let conn = self.conn();
        let sql = format!("{CAMPAIGN_COLUMNS} WHERE id = ?1");
        Ok(conn.query_row(&sql, [id], campaign_from_row).optional()?)
    }

    fn add_campaign(&self, site_id: i64, name: &str, now: Millis) -> Result<Campaign> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO campaigns (site_id, name, created_ms) VALUES (?1, ?2, ?3)",
            params![site_id, name, now],
        )?;
        Ok(Campaign {
            id: conn.last_insert_rowid(),
            site_id,
            name: name.to_owned(),
            created_ms: now,
            sent_ms: None,
            delivered: None,
            cost: None,
        })
    }

    fn set_campaign_sent(
        &self,
        id: i64,
        delivered: Option<i64>,
        sent_ms: Option<Millis>,
    ) -> Result<bool> {
        let conn = self.conn();
        let n = conn.execute(
            "UPDATE campaigns SET delivered = COALESCE(?2, delivered), sent_ms = COALESCE(?3, sent_ms) WHERE id = ?1",
            params![id, delivered, sent_ms],
        )?;
        Ok(n == 1)
    }

    fn campaign_events(&self, campaign_id: i64) -> Result<Vec<EmailRow>> {
        let conn = self.conn();
        let mut st = conn.prepare_cached(CAMPAIGN_EVENTS)?;
        let rows = st.query_map([campaign_id], |r| {
            Ok(EmailRow {
                ts_ms: r.get(0)?,
                name: r.get(1)?,
                recipient: r.get(2)?,
                link: r.get(3)?,
                verdict: r.get(4)?,
                client: r.get(5)?,
                device: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn has_open(&self, campaign_id: i64, recipient: &str) -> Result<bool> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                "SELECT 1 FROM events WHERE campaign_id = ?1 AND recipient = ?2 AND name = 'email_open' LIMIT 1",
                params![campaign_id, recipient],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    fn token_keys(&self, now: Millis) -> Result<Vec<(u8, [u8; 32])>> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO token_keys (id, key, created_ms) SELECT 1, ?1, ?2 WHERE NOT EXISTS (SELECT 1 FROM token_keys)",
            params![&crate::token::random_master()[..], now],
        )?;
        let mut st = conn.prepare("SELECT id, key FROM token_keys ORDER BY id")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, key) = row?;
            if let (Ok(id), Ok(key)) = (u8::try_from(id), <[u8; 32]>::try_from(key.as_slice())) {
                out.push((id, key));
            }
        }
        Ok(out)
    }

    fn rotate_token_key(&self, now: Millis) -> Result<u8> {
        let conn = self.conn();
        let next: i64 =
            conn.query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM token_keys", [], |r| {
                r.get(0)
            })?;
        let id = u8::try_from(next).map_err(|_| {
            StoreError::Conflict("key ids are exhausted (255); retire old keys first".into())
        })?;
        conn.execute(
            "INSERT INTO token_keys (id, key, created_ms) VALUES (?1, ?2, ?3)",
            params![i64::from(id), &crate::token::random_master()[..], now],
        )?;
        Ok(id)
    }

    fn set_privacy(&self, site_id: i64, p: &Privacy) -> Result<()> {
        let conn = self.conn();
        conn.execute(
            "UPDATE sites SET privacy_mode = ?2, honour_gpc = ?3, honour_dnt = ?4, without_consent = ?5, \
             retention_days = ?6, allow_emails = ?7, email_mode = ?8 WHERE id = ?1",
            params![
                site_id,
                p.mode.as_str(),
                p.honour_gpc,
                p.honour_dnt,
                p.without_consent.as_str(),
                p.retention_days,
                p.allow_emails,
                if p.deliverability_only { "deliverability" } else { "full" }
            ],
        )?;
        Ok(())
    }

    fn set_hosts(&self, site_id: i64, hosts: &[String]) -> Result<()> {
        let conn = self.conn();
        conn.execute(
            "UPDATE sites SET hosts = ?2 WHERE id = ?1",
            params![site_id, hosts.join(",")],
        )?;
        Ok(())
    }

    fn apply_retention(&self, site_id: i64, before_ms: Millis, rollups: bool) -> Result<u64> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = tx.execute(
            "DELETE FROM events WHERE site_id = ?1 AND ts_ms < ?2",
            params![site_id, before_ms],
        )?;
        tx.execute(
            "DELETE FROM sessions WHERE site_id = ?1 AND last_ms < ?2",
            params![site_id, before_ms],
        )?;
        if rollups {
            tx.execute(
                "DELETE FROM rollups WHERE site_id = ?1 AND hour < ?2",
                params![site_id, before_ms.div_euclid(crate::clock::HOUR_MS)],
            )?;
        }
        tx.commit()?;
        Ok(n as u64)
    }

    fn subject_events(&self, subject: &Subject) -> Result<Vec<Event>> {
        let conn = self.conn();
        let base = EVENT_COLUMNS;
        let (sql, a, b): (String, rusqlite::types::Value, rusqlite::types::Value) = match subject {
            Subject::Recipient { site_id, recipient } => (
                format!("{base} WHERE recipient = ?1 AND campaign_id IS NOT NULL AND (?2 IS NULL OR site_id = ?2) ORDER BY ts_ms, id"),
                recipient.clone().into(),
                (*site_id).into(),
            ),
            Subject::Visitor(v) => (
                format!("{base} WHERE visitor_id = ?1 AND ?2 IS NULL ORDER BY ts_ms, id"),
                (*v).into(),
                rusqlite::types::Value::Null,
            ),
        };
        let mut st = conn.prepare(&sql)?;
        let rows = st.query_map(params![a, b], event_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn erase_subject(&self, subject: &Subject) -> Result<u64> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = match subject {
            Subject::Recipient { site_id, recipient } => {
                let n = tx.execute(
                    "DELETE FROM events WHERE recipient = ?1 AND campaign_id IS NOT NULL AND (?2 IS NULL OR site_id = ?2)",
                    params![recipient, site_id],
                )?;
                let n = n + tx.execute(
                    "DELETE FROM consent WHERE recipient = ?1 AND (?2 IS NULL OR site_id = ?2)",
                    params![recipient, site_id],
                )?;
                n + tx.execute(
                    "DELETE FROM last_opens WHERE recipient = ?1 AND (?2 IS NULL OR site_id = ?2)",
                    params![recipient, site_id],
                )?
            }
            Subject::Visitor(v) => {
                let n = tx.execute("DELETE FROM events WHERE visitor_id = ?1", [v])?;
                n + tx.execute("DELETE FROM sessions WHERE visitor_id = ?1", [v])?
            }
        };
        tx.commit()?;
        // secure_delete zeroed the freed pages; move them out of the WAL too.
        checkpoint(&conn)?;
        Ok(n as u64)
    }

    fn set_consent(
        &self,
        site_id: i64,
        campaign_id: i64,
        recipient: &str,
        granted: bool,
        now: Millis,
    ) -> Result<()> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO consent (site_id, campaign_id, recipient, granted, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (site_id, campaign_id, recipient) DO UPDATE SET granted = excluded.granted, updated_ms = excluded.updated_ms",
            params![site_id, campaign_id, recipient, granted, now],
        )?;
        Ok(())
    }

    fn consent(&self, site_id: i64, campaign_id: i64, recipient: &str) -> Result<Option<bool>> {
        let conn = self.conn();
        let mut st = conn.prepare_cached(
            "SELECT granted FROM consent WHERE site_id = ?1 AND recipient = ?3 AND campaign_id IN (0, ?2)",
        )?;
        let rows = st.query_map(params![site_id, campaign_id, recipient], |r| {
            r.get::<_, bool>(0)
        })?;
        let mut out = None;
        for g in rows {
            let g = g?;
            out = Some(out.unwrap_or(true) && g);
        }
        Ok(out)
    }

    fn touch_last_open(&self, site_id: i64, recipient: &str, day: i64) -> Result<()> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO last_opens (site_id, recipient, day) VALUES (?1, ?2, ?3) \
             ON CONFLICT (site_id, recipient) DO UPDATE SET day = MAX(day, excluded.day)",
            params![site_id, recipient, day],
        )?;
        Ok(())
    }

    fn last_opens(&self, recipient: &str) -> Result<Vec<(i64, i64)>> {
        let conn = self.conn();
        let mut st = conn
            .prepare("SELECT site_id, day FROM last_opens WHERE recipient = ?1 ORDER BY site_id")?;
        let rows = st.query_map([recipient], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn add_api_token(&self, t: &ApiToken, hash: &str) -> Result<i64> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO api_tokens (name, hash, scope, site_id, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![t.name, hash, t.scope.as_str(), t.site_id, t.created_ms],
        )?;
        Ok(conn.last_insert_rowid())
    }

    fn api_token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                "SELECT id, name, scope, site_id, created_ms FROM api_tokens WHERE hash = ?1",
                [hash],
                api_token_from_row,
            )
            .optional()?)
    }

    fn api_tokens(&self) -> Result<Vec<ApiToken>> {
        let conn = self.conn();
        let mut st = conn
            .prepare("SELECT id, name, scope, site_id, created_ms FROM api_tokens ORDER BY id")?;
        let rows = st.query_map([], api_token_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn revoke_api_token(&self, id: i64) -> Result<bool> {
        let conn = self.conn();
        Ok(conn.execute("DELETE FROM api_tokens WHERE id = ?1", [id])? == 1)
    }

    fn web_rows(
        &self,
        site_id: i64,
        from_ms: Millis,
        to_ms: Millis,
        filters: &[Filter],
        f: &mut dyn FnMut(WebRow),
    ) -> Result<()> {
        let mut args: Vec<rusqlite::types::Value> =
            vec![site_id.into(), from_ms.into(), to_ms.into()];
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
        let sql = format!(
            "SELECT e.ts_ms, e.visitor_id, e.session_id, e.name, e.path,
                    COALESCE(s.entry_page, ''), COALESCE(s.exit_page, ''),
                    COALESCE(s.events, 0), COALESCE(s.last_ms - s.start_ms, 0), e.title, {dims}
             FROM events e LEFT JOIN sessions s ON s.id = e.session_id
             WHERE e.site_id = ?1 AND e.ts_ms >= ?2 AND e.ts_ms < ?3
               AND e.bot IS NULL AND e.campaign_id IS NULL AND e.name != 'engagement'{cond}"
        );
        let conn = self.conn();
        let mut st = conn.prepare_cached(&sql)?;
        let mut rows = st.query(rusqlite::params_from_iter(args))?;
        while let Some(r) = rows.next()? {
            let mut dims = Vec::with_capacity(SESSION_DIMS.len());
            for i in 0..SESSION_DIMS.len() {
                dims.push(r.get(10 + i)?);
            }
            f(WebRow {
                ts_ms: r.get(0)?,
                visitor_id: r.get(1)?,
                session_id: r.get(2)?,
                name: r.get(3)?,
                path: r.get(4)?,
                entry_page: r.get(5)?,
                exit_page: r.get(6)?,
                visit_events: r.get(7)?,
                visit_ms: r.get(8)?,
                title: r.get(9)?,
                dims,
            });
        }
        Ok(())
    }

    fn set_campaign_cost(&self, id: i64, cost: Option<(i64, &str)>) -> Result<bool> {
        let n = self.conn().execute(
            "UPDATE campaigns SET cost_minor = ?2, cost_currency = ?3 WHERE id = ?1",
            params![id, cost.map(|c| c.0), cost.map(|c| c.1).unwrap_or("")],
        )?;
        Ok(n == 1)
    }

    fn goals(&self, site_id: i64) -> Result<Vec<Goal>> {
        let conn = self.conn();
        let mut st = conn.prepare_cached(
            "SELECT id, site_id, name, kind, pattern FROM goals WHERE site_id = ?1 ORDER BY id",
        )?;
        let rows = st.query_map([site_id], |r| {
            let kind: String = r.get(3)?;
            let glob: String = r.get(4)?;
            Ok(Goal {
                id: r.get(0)?,
                site_id: r.get(1)?,
                name: r.get(2)?,
                pattern: Pattern {
                    kind: PatternKind::parse(&kind).unwrap_or(PatternKind::Event),
                    glob,
                },
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn add_goal(&self, site_id: i64, name: &str, pattern: &Pattern, now: Millis) -> Result<Goal> {
        let conn = self.conn();
        let n = conn.execute(
            "INSERT OR IGNORE INTO goals (site_id, name, kind, pattern, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![site_id, name, pattern.kind.as_str(), pattern.glob, now],
        )?;
        if n == 0 {
            return Err(StoreError::Conflict(format!(
                "the site already has a goal named {name:?}"
            )));
        }
        Ok(Goal {
            id: conn.last_insert_rowid(),
            site_id,
            name: name.to_owned(),
            pattern: pattern.clone(),
        })
    }

    fn remove_goal(&self, site_id: i64, name: &str) -> Result<bool> {
        let n = self.conn().execute(
            "DELETE FROM goals WHERE site_id = ?1 AND name = ?2",
            params![site_id, name],
        )?;
        Ok(n > 0)
    }

    fn ad_counts(
        &self,
        site_id: i64,
        campaign_id: Option<i64>,
        from_ms: Millis,
        to_ms: Millis,
    ) -> Result<Vec<AdCount>> {
        let conn = self.conn();
        let mut st = conn.prepare_cached(include_str!("sql/queries/ad_counts.sql"))?;
        let rows = st.query_map(params![site_id, from_ms, to_ms, campaign_id], |r| {
            Ok(AdCount {
                campaign_id: r.get(0)?,
                ad: r.get(1)?,
                name: r.get(2)?,
                bot: r.get(3)?,
                n: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn touches(&self, site_id: i64, from_ms: Millis, to_ms: Millis) -> Result<Vec<Touch>> {
        let conn = self.conn();
        let mut st = conn.prepare_cached(include_str!("sql/queries/touches.sql"))?;
        let rows = st.query_map(params![site_id, from_ms, to_ms], |r| {
            Ok(Touch {
                ts_ms: r.get(0)?,
                name: r.get(1)?,
                visitor_id: r.get(2)?,
                click_id: r.get(3)?,
                campaign_id: r.get(4)?,
                ad: r.get(5)?,
                value_minor: r.get(6)?,
                currency: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn pattern_counts(
        &self,
        site_id: i64,
        pattern: &Pattern,
        from_ms: Millis,
        to_ms: Millis,
    ) -> Result<(i64, i64)> {
        let sql = format!(
            "SELECT COUNT(*), COUNT(DISTINCT NULLIF(visitor_id, 0)) FROM events
             WHERE site_id = ?1 AND ts_ms >= ?2 AND ts_ms < ?3 AND {WEB_EVENT} AND {}",
            pattern_sql(pattern.kind, 4)
        );
        let conn = self.conn();
        let mut st = conn.prepare_cached(&sql)?;
        Ok(
            st.query_row(params![site_id, from_ms, to_ms, pattern.sql_glob()], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?,
        )
    }

    fn funnel_rows(
        &self,
        site_id: i64,
        steps: &[Pattern],
        by_visit: bool,
        from_ms: Millis,
        to_ms: Millis,
    ) -> Result<Vec<(i64, Millis, u64)>> {
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
            vec![site_id.into(), from_ms.into(), to_ms.into()];
        args.extend(steps.iter().map(|s| s.sql_glob().into()));
        let rows = st.query_map(rusqlite::params_from_iter(args), |r| {
            Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn retire_token_key(&self, id: u8) -> Result<bool> {
        let conn = self.conn();
        let count: i64 = conn.query_row("SELECT COUNT(*) FROM token_keys", [], |r| r.get(0))?;
        let max: i64 = conn.query_row("SELECT COALESCE(MAX(id), 0) FROM token_keys", [], |r| {
            r.get(0)
        })?;
        if count <= 1 || i64::from(id) == max {
            return Err(StoreError::Conflict(
                "the newest key signs new tokens and cannot be retired; rotate first".into(),
            ));
        }
        let n = conn.execute("DELETE FROM token_keys WHERE id = ?1", [i64::from(id)])?;
        Ok(n == 1)
    }
}
