//! Raw events: what filtered reports, campaign reports, attribution, goals, funnels
//! and exports read ([`EventStore`]), and the rows those reads return. The events
//! themselves are written by the backend's writer, not through this trait.

use std::collections::{HashMap, HashSet};

use super::{Filter, Group, Pattern, Result, WebCounts};
use crate::clock::{Millis, DAY_MS};
use crate::model::{Event, SiteId};

/// Reads of raw events. Ranges are `[from, to)` in milliseconds.
pub trait EventStore: Send + Sync {
    /// Streams raw events of a site in time order.
    fn for_each_event(
        &self,
        site_id: SiteId,
        from_ms: Millis,
        to_ms: Millis,
        f: &mut dyn FnMut(Event) -> std::io::Result<()>,
    ) -> Result<u64>;
    fn count_events(&self, site_id: SiteId) -> Result<u64>;
    /// Whether the site has any event at all (cheap, unlike counting them).
    fn has_events(&self, site_id: SiteId) -> Result<bool>;

    /// The web events in `[from, to)` that match every filter (bots, campaign traffic
    /// and engagement pings left out), counted per group: what filtered reports show,
    /// since a rollup holds one dimension and a filter combines two. The rules are
    /// [`Tally`](super::web_counts::Tally)'s.
    fn web_counts(
        &self,
        site_id: SiteId,
        from_ms: Millis,
        to_ms: Millis,
        filters: &[Filter],
        groups: &[Group],
    ) -> Result<WebCounts>;

    /// [`web_counts`](Self::web_counts) of each of `days` (UTC day numbers), on its
    /// own: by default [`each_day`].
    fn web_counts_by_day(
        &self,
        site_id: SiteId,
        days: &[i64],
        filters: &[Filter],
        groups: &[Group],
    ) -> Result<Vec<(i64, WebCounts)>> {
        each_day(self, site_id, days, filters, groups)
    }

    /// Every web event of `[from, to)` (bots and campaign traffic left out, engagement
    /// pings in) with its visit's values, as [`Tally`](super::web_counts::Tally) reads
    /// it, unfiltered and in no particular order: what a day segment is read from
    /// (`store::segments`). `Ok(false)`: this backend cannot stream them.
    fn web_rows(
        &self,
        _site_id: SiteId,
        _from_ms: Millis,
        _to_ms: Millis,
        _f: &mut dyn FnMut(&WebRow),
    ) -> Result<bool> {
        Ok(false)
    }

    /// Every open and click of a campaign, in time order.
    fn campaign_events(&self, campaign_id: i64) -> Result<Vec<EmailRow>>;
    /// Whether the recipient has an open a person caused recorded for the campaign
    /// (verdict human or a mail provider's proxy; not MPP prefetches, scanners, bots).
    fn has_human_open(&self, campaign_id: i64, recipient: &str) -> Result<bool>;

    /// Ad impressions and clicks in `[from, to)`, per campaign (or one), ad, name, bot.
    fn ad_counts(
        &self,
        site_id: SiteId,
        campaign_id: Option<i64>,
        from_ms: Millis,
        to_ms: Millis,
    ) -> Result<Vec<AdCount>>;
    /// Human clicks, landing page views with our click id, and conversions in
    /// `[from, to)`, oldest first.
    fn touches(&self, site_id: SiteId, from_ms: Millis, to_ms: Millis) -> Result<Vec<Touch>>;
    /// The touches of `[from, to)` a later conversion can be credited through: those of
    /// one of `visitors`, and those carrying one of `click_ids` (oldest first). A
    /// backend may read them with less work than [`touches`](Self::touches).
    fn touches_of(
        &self,
        site_id: SiteId,
        from_ms: Millis,
        to_ms: Millis,
        visitors: &HashSet<i64>,
        click_ids: &HashSet<String>,
    ) -> Result<Vec<Touch>> {
        Ok(touches_of(
            self.touches(site_id, from_ms, to_ms)?,
            visitors,
            click_ids,
        ))
    }
    /// A mark per day of `[first, end)` that changes whenever anything a report reads
    /// of the site's day changes (a day missing from the map has mark 0), for a backend
    /// whose reports another store keeps days of: the admin's database keeps the days
    /// it reads from ClickHouse ([`kept_days`](Self::kept_days)). None: no such marks.
    fn day_marks(
        &self,
        _site_id: SiteId,
        _first: i64,
        _end: i64,
    ) -> Result<Option<HashMap<i64, i64>>> {
        Ok(None)
    }
    /// Whether this backend keeps reports' numbers of whole past days
    /// ([`kept_days`](Self::kept_days)); one that does not is read whole each time.
    fn keeps_days(&self) -> bool {
        false
    }
    /// A report's numbers (`key`: what and how they were counted) of the days
    /// `[first, end)`, all over, where each day's numbers read the events of the day and
    /// the `reach` days before it: the bodies still right, and every day's mark to keep
    /// a body counted now with ([`keep_days`](Self::keep_days)).
    fn kept_days(
        &self,
        _site_id: SiteId,
        _key: &str,
        _reach: i64,
        _first: i64,
        _end: i64,
    ) -> Result<KeptDays> {
        Ok(KeptDays::default())
    }
    /// Keeps `(day, body, mark)` rows counted after [`kept_days`](Self::kept_days) gave
    /// the marks. Best effort: a body not kept is counted again next time.
    fn keep_days(
        &self,
        _site_id: SiteId,
        _key: &str,
        _reach: i64,
        _days: &[(i64, String, i64)],
    ) -> Result<()> {
        Ok(())
    }
    /// Web events matching `pattern` in `[from, to)` (bots and campaign traffic
    /// excluded): `(events, distinct visitors)`.
    fn pattern_counts(
        &self,
        site_id: SiteId,
        pattern: &Pattern,
        from_ms: Millis,
        to_ms: Millis,
    ) -> Result<(i64, i64)>;
    /// [`pattern_counts`](Self::pattern_counts) of each of `days` (UTC day numbers) on
    /// its own; a day without a matching event may be left out.
    fn pattern_counts_by_day(
        &self,
        site_id: SiteId,
        pattern: &Pattern,
        days: &[i64],
    ) -> Result<Vec<(i64, (i64, i64))>> {
        days.iter()
            .map(|d| {
                let counts = self.pattern_counts(site_id, pattern, d * DAY_MS, (d + 1) * DAY_MS)?;
                Ok((*d, counts))
            })
            .collect()
    }
    /// Web events matching any of `steps` in `[from, to)`: `(key, time, mask)` ordered by
    /// key and time, where key is the visit (`by_visit`) or the visitor, and bit `i` of
    /// mask says the event matches step `i`. Events without a visitor are left out.
    fn funnel_rows(
        &self,
        site_id: SiteId,
        steps: &[Pattern],
        by_visit: bool,
        from_ms: Millis,
        to_ms: Millis,
    ) -> Result<Vec<(i64, Millis, u64)>>;
}

/// The touches of `all` of one of `visitors` or carrying one of `click_ids`: what
/// [`EventStore::touches_of`] answers, from every touch of its range.
pub fn touches_of(
    mut all: Vec<Touch>,
    visitors: &HashSet<i64>,
    click_ids: &HashSet<String>,
) -> Vec<Touch> {
    all.retain(|t| t.is_of(visitors, click_ids));
    all
}

impl Touch {
    /// Whether [`EventStore::touches_of`] gives this touch: one of `visitors`', or
    /// carrying one of `click_ids` (an empty one is none).
    pub fn is_of(&self, visitors: &HashSet<i64>, click_ids: &HashSet<String>) -> bool {
        visitors.contains(&self.visitor_id)
            || (!self.click_id.is_empty() && click_ids.contains(&self.click_id))
    }
}

/// [`EventStore::web_counts`] of each of `days`, one read per day, on up to as many
/// threads as there are cores.
pub fn each_day<S: EventStore + ?Sized>(
    store: &S,
    site_id: SiteId,
    days: &[i64],
    filters: &[Filter],
    groups: &[Group],
) -> Result<Vec<(i64, WebCounts)>> {
    on_cores(days, |day| {
        let (from, to) = (day * DAY_MS, (day + 1) * DAY_MS);
        Ok((*day, store.web_counts(site_id, from, to, filters, groups)?))
    })
}

/// `f` of each item, on up to as many threads as there are cores (four at most), each
/// thread taking the next item when it is done; the results in no particular order.
pub fn on_cores<I: Sync, T: Send>(
    items: &[I],
    f: impl Fn(&I) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4)
        .min(items.len());
    if threads <= 1 {
        return items.iter().map(&f).collect();
    }
    let next = AtomicUsize::new(0);
    let out = std::sync::Mutex::new(Vec::new());
    let work = || -> Result<()> {
        while let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) {
            let r = f(item)?;
            out.lock().unwrap_or_else(|p| p.into_inner()).push(r);
        }
        Ok(())
    };
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|_| s.spawn(work)).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect::<Result<Vec<()>>>()
    })?;
    Ok(out.into_inner().unwrap_or_else(|p| p.into_inner()))
}

/// One web event as filtered reports count it: its session-level dimensions come from
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
    /// An engagement event's deepest scroll (percent) and visible time.
    pub scroll_pct: Option<i64>,
    pub engaged_ms: Option<i64>,
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
    /// The code of the rule that decided the verdict (`ua_google_image_proxy`, `burst`…).
    pub reason: String,
}

/// Re-labels earlier email events of one recipient (e.g. the first clicks of a burst
/// that turned out to be a scanner, or a click a landing pageview showed to be a
/// person's). Only events with verdict `from_verdict` (and reason `from_reason`, if
/// set) are changed: `human` ones by default. Only clicks, and opens labelled with a
/// human-triggered verdict, are re-labelled ([`Reclassify::is_supported`]): the embedded
/// store finds a recipient's events in an index of those alone (schema 27), so that a
/// campaign's storm of prefetches and scanners appends instead of scattering.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reclassify {
    pub campaign_id: i64,
    pub recipient: String,
    pub name: String,
    pub from_ms: Millis,
    pub verdict: &'static str,
    pub reason: &'static str,
    pub from_verdict: &'static str,
    /// Empty: any reason.
    pub from_reason: &'static str,
}

impl Reclassify {
    /// Whether the events it selects are of those a recipient's events are looked up in:
    /// clicks, and opens with a human-triggered verdict.
    pub fn is_supported(&self) -> bool {
        self.name == "email_click"
            || crate::model::Verdict::parse(self.from_verdict)
                .is_some_and(crate::model::Verdict::is_human_triggered)
    }
}

impl Default for Reclassify {
    fn default() -> Self {
        Reclassify {
            campaign_id: 0,
            recipient: String::new(),
            name: String::new(),
            from_ms: 0,
            verdict: "",
            reason: "",
            from_verdict: "human",
            from_reason: "",
        }
    }
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

/// Numbers of whole past days a report kept ([`EventStore::kept_days`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeptDays {
    /// Day → body, for the days whose kept numbers are still right.
    pub fresh: HashMap<i64, String>,
    /// Day → its mark now: a body counted after this read is kept with it. A day
    /// without a mark is not to be kept now (the store is still writing what it reads).
    pub marks: HashMap<i64, i64>,
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
