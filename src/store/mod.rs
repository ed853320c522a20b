//! Store: where events and their rollups live. One trait, so report and cli never
//! know which backend runs; SQLite (embedded, WAL, one writer) is the first backend.
//!
//! The writer commits raw events first: they are the durable log (the spool) that
//! everything else derives from. Sessions, rollup deltas and unique-visitor candidates
//! ([`Derived`]) follow in the same transaction when the writer is idle, or a little
//! later under load, together with a high-water mark; after a crash the writer rebuilds
//! them exactly from the events past the mark (see `ingest`).

mod dim;
mod filter;
mod pattern;
pub mod sqlite;

use std::collections::HashMap;

use crate::clock::Millis;
use crate::model::{Campaign, Event, Privacy, Site, SiteKey};

pub use dim::{Dim, SESSION_DIMS};
pub use filter::{Filter, FilterOp};
pub use pattern::{Pattern, PatternKind};
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Conflict(String),
    #[error("the database was written by a newer pixeltrack (schema {found}, this binary knows {known})")]
    SchemaTooNew { found: i64, known: i64 },
}

pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RollupKey {
    pub site_id: i64,
    pub dim: Dim,
    pub hour: i64,
    pub value: String,
}

/// Additive counters of one rollup row. Deltas may be negative (a bounce that
/// turned into a visit, an exit page that moved on).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub visitors: i64,
    pub visits: i64,
    pub pageviews: i64,
    pub events: i64,
    pub bounces: i64,
    pub duration_ms: i64,
    /// Sum and count of scroll depths (percent) reported for page views.
    pub scroll_sum: i64,
    pub scroll_n: i64,
    /// Visible time on pages, in milliseconds.
    pub engaged_ms: i64,
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        self.visitors += o.visitors;
        self.visits += o.visits;
        self.pageviews += o.pageviews;
        self.events += o.events;
        self.bounces += o.bounces;
        self.duration_ms += o.duration_ms;
        self.scroll_sum += o.scroll_sum;
        self.scroll_n += o.scroll_n;
        self.engaged_ms += o.engaged_ms;
    }
}

/// The state of a session after a batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionRow {
    pub id: i64,
    pub site_id: i64,
    pub visitor_id: i64,
    pub start_ms: Millis,
    pub last_ms: Millis,
    pub pageviews: i64,
    pub events: i64,
    pub entry_page: String,
    pub exit_page: String,
    /// Session-level dimension values, in [`SESSION_DIMS`] order.
    pub dims: Vec<String>,
}

/// Re-labels earlier email events of one recipient (e.g. the first clicks of a burst
/// that turned out to be a scanner). Only `human` events are changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reclassify {
    pub campaign_id: i64,
    pub recipient: String,
    pub name: String,
    pub from_ms: Millis,
    pub verdict: &'static str,
    pub reason: &'static str,
}

/// One email event as campaign reports read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailRow {
    pub ts_ms: Millis,
    pub name: String,
    pub recipient: String,
    pub link: String,
    pub verdict: String,
    pub client: String,
    pub device: String,
}

/// Rollup deltas of one batch. Looked up by a hash of the borrowed key parts, so
/// adding to a row that exists allocates nothing (the writer's hot loop).
#[derive(Debug, Default)]
pub struct Rollups {
    rows: HashMap<u64, Vec<(RollupKey, Counts)>, foldhash::fast::FixedState>,
    n: usize,
    /// Seeded per process: rollup values (paths, titles) are chosen by visitors.
    seed: foldhash::fast::RandomState,
}

impl Rollups {
    pub fn add(&mut self, site_id: i64, dim: Dim, hour: i64, value: &str, c: &Counts) {
        use std::hash::BuildHasher;
        let h = self.seed.hash_one((site_id, dim as u8, hour, value));
        let bucket = self.rows.entry(h).or_default();
        let found = bucket.iter_mut().find(|(k, _)| {
            k.site_id == site_id && k.dim == dim && k.hour == hour && k.value == value
        });
        match found {
            Some((_, counts)) => counts.add(c),
            None => {
                self.n += 1;
                bucket.push((
                    RollupKey {
                        site_id,
                        dim,
                        hour,
                        value: value.to_owned(),
                    },
                    *c,
                ))
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&RollupKey, &Counts)> {
        self.rows.values().flatten().map(|(k, c)| (k, c))
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Distinct rows held.
    pub fn len(&self) -> usize {
        self.n
    }
}

/// What events add to the derived tables (sessions, rollups, unique-visitor keys),
/// accumulated in memory over one or more committed event batches and written in one
/// go — one upsert per distinct row, not per event.
#[derive(Debug, Default)]
pub struct Derived {
    pub sessions: Vec<SessionRow>,
    pub rollups: Rollups,
    /// Unique-visitor keys counted for the first time, `(day, key)`.
    pub new_keys: Vec<(i64, i64)>,
    /// Keys the writer's memory had no room to decide: new if the store has not
    /// counted them yet (each then adds a visitor to its row as it is written).
    pub overflow: Vec<UniqueCandidate>,
}

/// A unique-visitor key for the store to decide, with the row it counts for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UniqueCandidate {
    pub day: i64,
    pub key: i64,
    pub rollup: RollupKey,
}

impl Derived {
    /// Rows a flush would write: the size a writer bounds.
    pub fn rows(&self) -> usize {
        self.sessions.len() + self.rollups.len() + self.new_keys.len() + self.overflow.len()
    }
}

/// One summed rollup row, as reports read it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RollupSum {
    pub value: String,
    pub counts: Counts,
}

/// One web event as filtered reports read it: its session-level dimensions come from
/// its visit (as in the rollups), or from the event itself when it has no visit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebRow {
    pub ts_ms: Millis,
    pub visitor_id: i64,
    pub session_id: i64,
    pub name: String,
    pub path: String,
    pub title: String,
    /// In [`SESSION_DIMS`] order.
    pub dims: Vec<String>,
    pub entry_page: String,
    pub exit_page: String,
    /// The visit's event count (a bounce has 1) and its length.
    pub visit_events: i64,
    pub visit_ms: Millis,
}

/// A goal of a site: what counts as converting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Goal {
    pub id: i64,
    pub site_id: i64,
    pub name: String,
    pub pattern: Pattern,
}

/// Ad events of one campaign and ad, counted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdCount {
    pub campaign_id: i64,
    pub ad: String,
    /// `impression` or `ad_click`.
    pub name: String,
    pub bot: bool,
    pub n: i64,
}

/// What attribution reads: a human click (ad or email), a page view that carries one
/// of our click ids, or a conversion.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Touch {
    pub ts_ms: Millis,
    pub name: String,
    pub visitor_id: i64,
    /// `ptclid:…` (minted by an ad click, or carried by a landing page or conversion).
    pub click_id: String,
    pub campaign_id: Option<i64>,
    pub ad: String,
    pub value_minor: Option<i64>,
    pub currency: String,
}

/// Reads and small writes every backend offers. Ranges are `[from, to)` in hours.
pub trait Store: Send + Sync {
    fn sites(&self) -> Result<Vec<Site>>;
    fn site_by_key(&self, key: &SiteKey) -> Result<Option<Site>>;
    fn add_site(&self, key: &SiteKey, domain: &str, name: &str, now: Millis) -> Result<Site>;
    fn rename_site(&self, site_id: i64, name: &str) -> Result<()>;
    fn rename_campaign(&self, id: i64, name: &str) -> Result<()>;
    /// Removes a campaign with its events and consent records; returns false if unknown.
    fn remove_campaign(&self, id: i64) -> Result<bool>;
    /// Removes a site and every row that belongs to it; returns false if unknown.
    fn remove_site(&self, key: &SiteKey) -> Result<bool>;

    /// Sums `dim` over `[from_hour, to_hour)`, grouped by value, largest first.
    fn rollup_sums(
        &self,
        site_id: i64,
        dim: Dim,
        from_hour: i64,
        to_hour: i64,
        limit: usize,
    ) -> Result<Vec<RollupSum>>;
    /// One value of `dim` summed over `[from_hour, to_hour)`.
    fn rollup_value(
        &self,
        site_id: i64,
        dim: Dim,
        value: &str,
        from_hour: i64,
        to_hour: i64,
    ) -> Result<Counts>;
    /// `Dim::Total` summed per bucket of `bucket_hours`, keyed by the bucket's first hour.
    fn rollup_series(
        &self,
        site_id: i64,
        from_hour: i64,
        to_hour: i64,
        bucket_hours: i64,
    ) -> Result<Vec<(i64, Counts)>>;
    /// Streams raw events of a site in time order.
    fn for_each_event(
        &self,
        site_id: i64,
        from_ms: Millis,
        to_ms: Millis,
        f: &mut dyn FnMut(Event) -> std::io::Result<()>,
    ) -> Result<u64>;
    fn count_events(&self, site_id: i64) -> Result<u64>;
    /// Whether the site has any event at all (cheap, unlike counting them).
    fn has_events(&self, site_id: i64) -> Result<bool>;

    fn campaigns(&self, site_id: Option<i64>) -> Result<Vec<Campaign>>;
    fn campaign(&self, id: i64) -> Result<Option<Campaign>>;
    fn add_campaign(&self, site_id: i64, name: &str, now: Millis) -> Result<Campaign>;
    fn set_campaign_sent(
        &self,
        id: i64,
        delivered: Option<i64>,
        sent_ms: Option<Millis>,
    ) -> Result<bool>;
    /// Every open and click of a campaign, in time order.
    fn campaign_events(&self, campaign_id: i64) -> Result<Vec<EmailRow>>;
    /// Whether the recipient has any open recorded for the campaign.
    fn has_open(&self, campaign_id: i64, recipient: &str) -> Result<bool>;

    /// Token master keys `(id, key)`; creates the first one if there is none.
    fn token_keys(&self, now: Millis) -> Result<Vec<(u8, [u8; 32])>>;
    /// Adds a new signing key; returns its id.
    fn rotate_token_key(&self, now: Millis) -> Result<u8>;
    /// Removes a key: tokens signed with it stop verifying.
    fn retire_token_key(&self, id: u8) -> Result<bool>;

    fn set_privacy(&self, site_id: i64, p: &Privacy) -> Result<()>;
    /// The extra hostnames whose pages may send a site's events.
    fn set_hosts(&self, site_id: i64, hosts: &[String]) -> Result<()>;
    /// Deletes raw events (and ended sessions) of a site older than `before_ms`; with
    /// `rollups`, also the hourly rollups before it. Returns the events deleted.
    fn apply_retention(&self, site_id: i64, before_ms: Millis, rollups: bool) -> Result<u64>;
    /// Every stored event of one person, for export (subject access).
    fn subject_events(&self, subject: &Subject) -> Result<Vec<Event>>;
    /// Deletes every event and derived row of one person, then checkpoints the WAL.
    /// Returns the rows deleted.
    fn erase_subject(&self, subject: &Subject) -> Result<u64>;
    /// Records an email recipient's consent (`campaign_id` 0: every campaign of the site).
    fn set_consent(
        &self,
        site_id: i64,
        campaign_id: i64,
        recipient: &str,
        granted: bool,
        now: Millis,
    ) -> Result<()>;
    /// `Some(false)` if consent is withdrawn for this campaign or the site, `Some(true)`
    /// if granted (and not withdrawn), `None` if never recorded.
    fn consent(&self, site_id: i64, campaign_id: i64, recipient: &str) -> Result<Option<bool>>;
    /// Deliverability-only mode: remembers the day of a recipient's last open.
    fn touch_last_open(&self, site_id: i64, recipient: &str, day: i64) -> Result<()>;
    /// `(site_id, day)` of the recipient's last open, per site, in deliverability-only mode.
    fn last_opens(&self, recipient: &str) -> Result<Vec<(i64, i64)>>;

    /// Stores a token's metadata under the SHA-256 `hash` of its secret; returns its id.
    fn add_api_token(&self, t: &ApiToken, hash: &str) -> Result<i64>;
    fn api_token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>>;
    fn api_tokens(&self) -> Result<Vec<ApiToken>>;
    fn revoke_api_token(&self, id: i64) -> Result<bool>;

    /// Streams the web events in `[from, to)` that match every filter (bots, campaign
    /// traffic and engagement pings left out): what filtered reports aggregate, since
    /// a rollup holds one dimension and a filter combines two.
    fn web_rows(
        &self,
        site_id: i64,
        from_ms: Millis,
        to_ms: Millis,
        filters: &[Filter],
        f: &mut dyn FnMut(WebRow),
    ) -> Result<()>;

    /// Records what a campaign cost (`None` clears it).
    fn set_campaign_cost(&self, id: i64, cost: Option<(i64, &str)>) -> Result<bool>;
    fn goals(&self, site_id: i64) -> Result<Vec<Goal>>;
    fn add_goal(&self, site_id: i64, name: &str, pattern: &Pattern, now: Millis) -> Result<Goal>;
    fn remove_goal(&self, site_id: i64, name: &str) -> Result<bool>;
    /// Ad impressions and clicks in `[from, to)`, per campaign (or one), ad, name, bot.
    fn ad_counts(
        &self,
        site_id: i64,
        campaign_id: Option<i64>,
        from_ms: Millis,
        to_ms: Millis,
    ) -> Result<Vec<AdCount>>;
    /// Human clicks, landing page views with our click id, and conversions in
    /// `[from, to)`, oldest first.
    fn touches(&self, site_id: i64, from_ms: Millis, to_ms: Millis) -> Result<Vec<Touch>>;
    /// Web events matching `pattern` in `[from, to)` (bots and campaign traffic
    /// excluded): `(events, distinct visitors)`.
    fn pattern_counts(
        &self,
        site_id: i64,
        pattern: &Pattern,
        from_ms: Millis,
        to_ms: Millis,
    ) -> Result<(i64, i64)>;
    /// Web events matching any of `steps` in `[from, to)`: `(key, time, mask)` ordered by
    /// key and time, where key is the visit (`by_visit`) or the visitor, and bit `i` of
    /// mask says the event matches step `i`. Events without a visitor are left out.
    fn funnel_rows(
        &self,
        site_id: i64,
        steps: &[Pattern],
        by_visit: bool,
        from_ms: Millis,
        to_ms: Millis,
    ) -> Result<Vec<(i64, Millis, u64)>>;
}

/// What an API token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Read reports and settings.
    Read,
    /// Also create and change sites and campaigns.
    Write,
    /// Also subject access and erasure.
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<Scope> {
        [Scope::Read, Scope::Write, Scope::Admin]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// An API token's metadata (its secret is never stored).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    pub scope: Scope,
    /// Limited to one site, or all sites when `None`.
    pub site_id: Option<i64>,
    pub created_ms: Millis,
}

/// Deletes raw events past each site's retention period; returns how many.
pub fn run_retention(store: &SqliteStore, now: Millis) -> Result<u64> {
    let mut total = 0;
    for site in store.sites()? {
        if let Some(days) = site.privacy.retention_days {
            let before = now - i64::from(days) * crate::clock::DAY_MS;
            total += store.apply_retention(site.id.0, before, false)?;
        }
    }
    if total > 0 {
        store.checkpoint()?;
    }
    Ok(total)
}

/// Whole days of hourly rollups kept before they are folded into one row per day.
pub const HOURLY_ROLLUP_DAYS: i64 = 7;

/// Folds the hourly rollups of days older than [`HOURLY_ROLLUP_DAYS`] into daily rows,
/// a day per transaction (the writer waits for one day at most). Reports over whole
/// days are unchanged; an hourly series over those days shows each day at midnight.
pub fn compact_rollups(store: &SqliteStore, now: Millis) -> Result<usize> {
    let before = crate::clock::day_of(now) - HOURLY_ROLLUP_DAYS;
    let mut folded = 0;
    for day in store.rollup_days_to_compact(before)? {
        folded += store.compact_rollup_day(day)?;
    }
    Ok(folded)
}

/// A person whose data is exported or erased.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// An email recipient id (optionally only on one site).
    Recipient {
        site_id: Option<i64>,
        recipient: String,
    },
    /// A (daily) visitor id, as shown in exports.
    Visitor(i64),
}
