//! Ads and conversions: attribution, the per-campaign and per-ad report, goals and
//! funnels. Like the email report, everything is computed from raw events at report
//! time, so a changed lookback or model re-applies to old data.
//!
//! Attribution joins a conversion to a human click (an ad click, or an email click
//! with a human verdict) of the same person: the click id the conversion carries
//! (`ptclid` on its page URL or `clid` on the pixel), the same visitor id, or a page
//! view of the same visitor that carried a click id. Visitor ids change every UTC
//! day, so without a click id a conversion only joins clicks of the same day. A
//! conversion nothing joins is reported as unattributed — never guessed.
//!
//! Over 600 lines with its tests: about a quarter is attribution and funnel cases.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::clock::{day_of, Clock, Millis, DAY_MS};
use crate::config::Attribution;
use crate::enrich::{money, AD_CLICK, CONVERSION};
use crate::model::{Campaign, Site, SiteId};
use crate::store::{Counts, Dim, Pattern, PatternKind, Result, Store, Touch};

use super::DateRange;

/// How conversions are credited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Model {
    pub attribution: Attribution,
    pub lookback_ms: Millis,
}

impl Model {
    pub fn from_config(c: &crate::config::AdsConfig) -> Self {
        Model {
            attribution: c.attribution,
            lookback_ms: i64::from(c.lookback_days) * DAY_MS,
        }
    }
}

/// The click a conversion is credited to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Credit {
    pub campaign_id: i64,
    /// The ad (empty for campaign-level links and email clicks).
    pub ad: String,
    /// `ad` or `email`.
    pub channel: &'static str,
    pub click_ms: Millis,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Conversion {
    pub ts_ms: Millis,
    pub value_minor: Option<i64>,
    pub currency: String,
    pub credit: Option<Credit>,
}

fn is_click(t: &Touch) -> bool {
    t.campaign_id.is_some() && (t.name == AD_CLICK || t.name == "email_click")
}

/// Credits each conversion in `touches` to one click (pure; `touches` in time order).
pub fn attribute(touches: &[Touch], model: Model) -> Vec<Conversion> {
    // Keyed by ids and visitor ids from stored events, not chosen freely per lookup: a
    // fast hasher, seeded per process (a month of a busy site is 200,000 touches).
    type Fast = foldhash::fast::RandomState;
    let mut by_click_id: HashMap<&str, Vec<&Touch>, Fast> = HashMap::default();
    let mut by_visitor: HashMap<i64, Vec<&Touch>, Fast> = HashMap::default();
    // Visitor → click ids their page views carried (with the time they were seen).
    let mut landed: HashMap<i64, Vec<(Millis, &str)>, Fast> = HashMap::default();
    let mut out = Vec::new();
    for t in touches {
        if is_click(t) {
            if !t.click_id.is_empty() {
                by_click_id.entry(&t.click_id).or_default().push(t);
            }
            if t.visitor_id != 0 {
                by_visitor.entry(t.visitor_id).or_default().push(t);
            }
            continue;
        }
        if t.name != CONVERSION {
            if t.visitor_id != 0 && !t.click_id.is_empty() {
                landed
                    .entry(t.visitor_id)
                    .or_default()
                    .push((t.ts_ms, &t.click_id));
            }
            continue;
        }
        let in_window = |c: &&Touch| c.ts_ms <= t.ts_ms && t.ts_ms - c.ts_ms <= model.lookback_ms;
        let mut ids: Vec<&str> = Vec::new();
        if !t.click_id.is_empty() {
            ids.push(&t.click_id);
        }
        let mut candidates: Vec<&Touch> = Vec::new();
        if t.visitor_id != 0 {
            if let Some(cs) = by_visitor.get(&t.visitor_id) {
                candidates.extend(cs.iter().copied());
            }
            ids.extend(
                landed
                    .get(&t.visitor_id)
                    .into_iter()
                    .flatten()
                    .map(|(_, id)| *id),
            );
        }
        for id in ids {
            if let Some(cs) = by_click_id.get(id) {
                candidates.extend(cs.iter().copied());
            }
        }
        candidates.retain(in_window);
        let pick = match model.attribution {
            Attribution::LastClick => candidates.iter().max_by_key(|c| c.ts_ms),
            Attribution::FirstClick => candidates.iter().min_by_key(|c| c.ts_ms),
        };
        out.push(Conversion {
            ts_ms: t.ts_ms,
            value_minor: t.value_minor,
            currency: t.currency.clone(),
            credit: pick.map(|c| Credit {
                campaign_id: c.campaign_id.unwrap_or(0),
                ad: c.ad.clone(),
                channel: if c.name == AD_CLICK { "ad" } else { "email" },
                click_ms: c.ts_ms,
            }),
        });
    }
    out
}

/// An amount in one currency, exact (`minor`) and as text (`amount`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Money {
    pub currency: String,
    pub amount: String,
    pub minor: i64,
}

impl Money {
    /// Amounts as text (`"19.99 EUR, 5.00 USD"`), or `empty` when there are none.
    pub fn list(m: &[Money], sep: &str, empty: &str) -> String {
        if m.is_empty() {
            return empty.to_owned();
        }
        m.iter()
            .map(|m| format!("{} {}", m.amount, m.currency))
            .collect::<Vec<_>>()
            .join(sep)
    }

    pub fn new(minor: i64, currency: &str) -> Money {
        Money {
            currency: currency.to_owned(),
            amount: money::format(minor, currency),
            minor,
        }
    }
}

/// Sums of conversion values per currency, and how many conversions carried each.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Revenue(BTreeMap<String, (i64, i64)>);

impl Revenue {
    fn merge(&mut self, o: &Revenue) {
        for (cur, (v, n)) in &o.0 {
            let e = self.0.entry(cur.clone()).or_default();
            e.0 += v;
            e.1 += n;
        }
    }

    fn add(&mut self, c: &Conversion) {
        if let Some(v) = c.value_minor {
            let e = self.0.entry(c.currency.clone()).or_default();
            e.0 += v;
            e.1 += 1;
        }
    }
    fn totals(&self) -> Vec<Money> {
        self.0
            .iter()
            .map(|(cur, (v, _))| Money::new(*v, cur))
            .collect()
    }
    /// Integer division in minor units: the average is exact to the minor unit, rounded down.
    fn averages(&self) -> Vec<Money> {
        self.0
            .iter()
            .filter(|(_, (_, n))| *n > 0)
            .map(|(cur, (v, n))| Money::new(v / n, cur))
            .collect()
    }
}

fn pct(num: i64, den: i64) -> Option<f64> {
    (den > 0).then(|| (num as f64 * 10_000.0 / den as f64).round() / 100.0)
}

/// One line of the ad report: a campaign total, or one ad of it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AdLine {
    pub ad: String,
    pub impressions: i64,
    pub bot_impressions: i64,
    pub clicks: i64,
    pub bot_clicks: i64,
    /// clicks / impressions, percent.
    pub ctr: Option<f64>,
    /// Conversions credited to this line's clicks.
    pub conversions: i64,
    /// conversions / clicks, percent.
    pub conversion_rate: Option<f64>,
    pub revenue: Vec<Money>,
    pub average_order_value: Vec<Money>,
    #[serde(skip)]
    rev: Revenue,
}

impl AdLine {
    fn finish(&mut self) {
        self.ctr = pct(self.clicks, self.impressions);
        self.conversion_rate = pct(self.conversions, self.clicks);
        self.revenue = self.rev.totals();
        self.average_order_value = self.rev.averages();
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AdReport {
    pub campaign_id: i64,
    pub name: String,
    pub attribution: &'static str,
    pub lookback_days: i64,
    pub total: AdLine,
    /// Per ad, by ad id (the empty ad is the campaign's ad-less links and impressions).
    pub ads: Vec<AdLine>,
    /// Conversions credited to the campaign's email clicks.
    pub email_conversions: i64,
    pub cost: Option<Money>,
    /// cost / conversions, in the cost's currency.
    pub cost_per_acquisition: Option<Money>,
}

fn model_name(a: Attribution) -> &'static str {
    match a {
        Attribution::LastClick => "last_click",
        Attribution::FirstClick => "first_click",
    }
}

/// The ad report of one campaign over its whole life (until `now`).
pub fn campaign_ads(
    store: &dyn Store,
    c: &Campaign,
    model: Model,
    now: Millis,
) -> Result<AdReport> {
    let (from, to) = (c.created_ms, now + 1);
    let mut lines: BTreeMap<String, AdLine> = BTreeMap::new();
    for row in store.ad_counts(SiteId(c.site_id), Some(c.id), from, to)? {
        let l = lines.entry(row.ad.clone()).or_insert_with(|| AdLine {
            ad: row.ad.clone(),
            ..AdLine::default()
        });
        match (row.name.as_str(), row.bot) {
            ("impression", false) => l.impressions += row.n,
            ("impression", true) => l.bot_impressions += row.n,
            (AD_CLICK, false) => l.clicks += row.n,
            (AD_CLICK, true) => l.bot_clicks += row.n,
            _ => {}
        }
    }
    let touches = store.touches(SiteId(c.site_id), from - model.lookback_ms, to)?;
    let mut total = AdLine::default();
    let mut email_conversions = 0;
    for conv in attribute(&touches, model) {
        let Some(credit) = conv.credit.as_ref().filter(|k| k.campaign_id == c.id) else {
            continue;
        };
        if conv.ts_ms < from {
            continue;
        }
        total.conversions += 1;
        total.rev.add(&conv);
        if credit.channel == "email" {
            email_conversions += 1;
            continue;
        }
        let l = lines.entry(credit.ad.clone()).or_insert_with(|| AdLine {
            ad: credit.ad.clone(),
            ..AdLine::default()
        });
        l.conversions += 1;
        l.rev.add(&conv);
    }
    for l in lines.values() {
        total.impressions += l.impressions;
        total.bot_impressions += l.bot_impressions;
        total.clicks += l.clicks;
        total.bot_clicks += l.bot_clicks;
    }
    total.finish();
    let mut ads: Vec<AdLine> = lines.into_values().collect();
    ads.iter_mut().for_each(AdLine::finish);
    let cost = c.cost.as_ref().map(|(m, cur)| Money::new(*m, cur));
    let cost_per_acquisition = c
        .cost
        .as_ref()
        .filter(|_| total.conversions > 0)
        .map(|(m, cur)| Money::new(m / total.conversions, cur));
    Ok(AdReport {
        campaign_id: c.id,
        name: c.name.clone(),
        attribution: model_name(model.attribution),
        lookback_days: model.lookback_ms / DAY_MS,
        total,
        ads,
        email_conversions,
        cost,
        cost_per_acquisition,
    })
}

/// Conversions of a site in a range: how many, their value, and who gets the credit.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ConversionSummary {
    pub conversions: i64,
    pub revenue: Vec<Money>,
    pub average_order_value: Vec<Money>,
    /// Conversions no click could be joined to.
    pub unattributed: i64,
    /// Per campaign (and channel) the conversions and revenue credited to it.
    pub by_campaign: Vec<CampaignCredit>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CampaignCredit {
    pub campaign_id: i64,
    /// The campaign's name ("(removed)" when it no longer exists).
    pub campaign_name: String,
    pub channel: &'static str,
    pub conversions: i64,
    pub revenue: Vec<Money>,
}

pub fn conversions(
    store: &dyn Store,
    site: &Site,
    range: DateRange,
    model: Model,
) -> Result<ConversionSummary> {
    let (from, to) = range.millis();
    let c = credited(store, site.id, from, to, model, Clock::System.now_ms())?;
    let names = if c.by.is_empty() {
        Vec::new()
    } else {
        store.campaigns(Some(site.id))?
    };
    Ok(ConversionSummary {
        conversions: c.conversions,
        revenue: c.all.totals(),
        average_order_value: c.all.averages(),
        unattributed: c.unattributed,
        by_campaign: c
            .by
            .into_iter()
            .map(|((campaign_id, channel), (n, r))| CampaignCredit {
                campaign_id,
                campaign_name: names
                    .iter()
                    .find(|c| c.id == campaign_id)
                    .map(|c| c.name.clone())
                    .unwrap_or_else(|| "(removed)".into()),
                channel,
                conversions: n,
                revenue: r.totals(),
            })
            .collect(),
    })
}

/// Conversions credited and added up. Adding is exact, so the credits of whole days a
/// store kept add up with those of the rest of a range.
#[derive(Debug, Default, PartialEq)]
struct Credits {
    conversions: i64,
    unattributed: i64,
    all: Revenue,
    by: BTreeMap<(i64, &'static str), (i64, Revenue)>,
}

/// [`Credits`] as a kept day's body (JSON).
#[derive(Serialize, Deserialize)]
struct CreditsBody {
    n: i64,
    unattributed: i64,
    revenue: Revenue,
    by: Vec<(i64, String, i64, Revenue)>,
}

impl Credits {
    fn add(&mut self, conv: &Conversion) {
        self.conversions += 1;
        self.all.add(conv);
        match &conv.credit {
            None => self.unattributed += 1,
            Some(k) => {
                let e = self.by.entry((k.campaign_id, k.channel)).or_default();
                e.0 += 1;
                e.1.add(conv);
            }
        }
    }

    fn merge(&mut self, o: Credits) {
        self.conversions += o.conversions;
        self.unattributed += o.unattributed;
        self.all.merge(&o.all);
        for (k, (n, r)) in o.by {
            let e = self.by.entry(k).or_default();
            e.0 += n;
            e.1.merge(&r);
        }
    }

    /// The credits of the conversions in `touches` from `from` on.
    fn of(touches: &[Touch], model: Model, from: Millis) -> Credits {
        let mut c = Credits::default();
        for conv in attribute(touches, model) {
            if conv.ts_ms >= from {
                c.add(&conv);
            }
        }
        c
    }

    fn body(&self) -> String {
        let body = CreditsBody {
            n: self.conversions,
            unattributed: self.unattributed,
            revenue: self.all.clone(),
            by: self
                .by
                .iter()
                .map(|((id, ch), (n, r))| (*id, (*ch).to_owned(), *n, r.clone()))
                .collect(),
        };
        serde_json::to_string(&body).unwrap_or_default()
    }

    /// None for a body this build does not read (counted again).
    fn from_body(s: &str) -> Option<Credits> {
        let b: CreditsBody = serde_json::from_str(s).ok()?;
        let mut by = BTreeMap::new();
        for (id, ch, n, r) in b.by {
            let ch = match ch.as_str() {
                "ad" => "ad",
                "email" => "email",
                _ => return None,
            };
            by.insert((id, ch), (n, r));
        }
        Some(Credits {
            conversions: b.n,
            unattributed: b.unattributed,
            all: b.revenue,
            by,
        })
    }
}

impl Model {
    /// What kept credits were counted with (a changed model counts them anew).
    fn key(&self) -> String {
        format!(
            "conversions:{}:{}",
            model_name(self.attribution),
            self.lookback_ms
        )
    }

    /// Days before a conversion's day its lookback reaches into.
    fn reach_days(&self) -> i64 {
        (self.lookback_ms.max(0) + DAY_MS - 1) / DAY_MS
    }
}

/// The conversions of `[from, to)`, credited. Where the store keeps days, the whole days
/// over for an hour ([`settled_days`](crate::clock::settled_days)) come from it (counted and kept when missing or stale), and the
/// rest (today, a partial first day) from [`credited_part`]; elsewhere from every touch
/// of the range and its lookback.
fn credited(
    store: &dyn Store,
    site_id: SiteId,
    from: Millis,
    to: Millis,
    model: Model,
    now: Millis,
) -> Result<Credits> {
    if !store.keeps_days() {
        let touches = store.touches(site_id, from - model.lookback_ms, to)?;
        return Ok(Credits::of(&touches, model, from));
    }
    let (first, end) = crate::clock::settled_days(from, to, now);
    if first >= end {
        return credited_part(store, site_id, from, to, model);
    }
    let (key, reach) = (model.key(), model.reach_days());
    let kept = store.kept_days(site_id, &key, reach, first, end)?;
    let mut fresh: HashMap<i64, Credits> = kept
        .fresh
        .iter()
        .filter_map(|(d, b)| Some((*d, Credits::from_body(b)?)))
        .collect();
    let mut total = Credits::default();
    let mut counted = Vec::new();
    let mut day = first;
    while day < end {
        if let Some(c) = fresh.remove(&day) {
            total.merge(c);
            day += 1;
            continue;
        }
        // A run of days not kept: their touches and lookback read once, credited per day.
        let run = day;
        while day < end && !fresh.contains_key(&day) {
            day += 1;
        }
        let touches = store.touches(site_id, run * DAY_MS - model.lookback_ms, day * DAY_MS)?;
        let mut per_day: BTreeMap<i64, Credits> =
            (run..day).map(|d| (d, Credits::default())).collect();
        for conv in attribute(&touches, model) {
            if conv.ts_ms >= run * DAY_MS {
                per_day.entry(day_of(conv.ts_ms)).or_default().add(&conv);
            }
        }
        for (d, c) in per_day {
            // A day without a mark is not kept now (see `kept_days`).
            if let Some(mark) = kept.marks.get(&d) {
                counted.push((d, c.body(), *mark));
            }
            total.merge(c);
        }
    }
    if !counted.is_empty() {
        // A cache: when it cannot be written (busy past its timeout, read-only), the
        // numbers are still right, and the next report counts again.
        if let Err(e) = store.keep_days(site_id, &key, reach, &counted) {
            tracing::warn!(error = %e, "keeping the conversions' daily credits failed");
        }
    }
    for (a, b) in [(from, first * DAY_MS), (end * DAY_MS, to)] {
        if a < b {
            total.merge(credited_part(store, site_id, a, b, model)?);
        }
    }
    Ok(total)
}

/// The conversions of `[from, to)` (today, a partial day), credited exactly as from
/// every touch of the range and its lookback, with less read: of the lookback, only the
/// touches these conversions can join — their visitors', and those carrying a click id
/// the conversions or their visitors' landing pages carry.
fn credited_part(
    store: &dyn Store,
    site_id: SiteId,
    from: Millis,
    to: Millis,
    model: Model,
) -> Result<Credits> {
    let recent = store.touches(site_id, from, to)?;
    if !recent.iter().any(|t| t.name == CONVERSION) {
        return Ok(Credits::default());
    }
    let visitors: HashSet<i64> = recent
        .iter()
        .filter(|t| t.name == CONVERSION && t.visitor_id != 0)
        .map(|t| t.visitor_id)
        .collect();
    // A click id counts when a conversion carries it, or a page view of a converting
    // visitor did (`attribute`'s `landed`).
    let lands = |t: &Touch| {
        !is_click(t)
            && t.name != CONVERSION
            && !t.click_id.is_empty()
            && visitors.contains(&t.visitor_id)
    };
    let mut click_ids: HashSet<String> = recent
        .iter()
        .filter(|t| (t.name == CONVERSION && !t.click_id.is_empty()) || lands(t))
        .map(|t| t.click_id.clone())
        .collect();
    let mut earlier = Vec::new();
    if model.lookback_ms > 0 {
        loop {
            earlier = store.touches_of(
                site_id,
                from - model.lookback_ms,
                from,
                &visitors,
                &click_ids,
            )?;
            // A landing page of the lookback can bring a click id not asked for yet.
            let more: Vec<String> = earlier
                .iter()
                .filter(|t| lands(t) && !click_ids.contains(&t.click_id))
                .map(|t| t.click_id.clone())
                .collect();
            if more.is_empty() {
                break;
            }
            click_ids.extend(more);
        }
    }
    earlier.extend(recent);
    Ok(Credits::of(&earlier, model, from))
}

/// A goal's numbers in a range.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GoalRow {
    pub name: String,
    pub pattern: String,
    /// Matching events (page views for page goals).
    pub completions: i64,
    /// Distinct visitors who completed it.
    pub visitors: i64,
    /// visitors / all visitors of the range, percent.
    pub conversion_rate: Option<f64>,
}

pub fn goals(store: &dyn Store, site: &Site, range: DateRange) -> Result<Vec<GoalRow>> {
    let goals = store.goals(site.id)?;
    if goals.is_empty() {
        return Ok(Vec::new());
    }
    let visitors = super::overview(store, site, &super::Query::new(range))?.visitors;
    let (from, to) = range.millis();
    let (from_h, to_h) = range.hours();
    goals
        .into_iter()
        .map(|g| {
            // An exact name or path is one rollup row (cheap at any volume); a wildcard
            // reads the raw events of the range.
            let (completions, v) = if g.pattern.glob.contains('*') {
                store.pattern_counts(site.id, &g.pattern, from, to)?
            } else {
                let (dim, pick): (Dim, fn(&Counts) -> i64) = match g.pattern.kind {
                    PatternKind::Page => (Dim::Page, |c| c.pageviews),
                    PatternKind::Event => (Dim::Event, |c| c.events),
                };
                let c = store.rollup_value(site.id, dim, &g.pattern.glob, from_h, to_h)?;
                (pick(&c), c.visitors)
            };
            Ok(GoalRow {
                name: g.name,
                pattern: g.pattern.to_string(),
                completions,
                visitors: v,
                conversion_rate: pct(v, visitors),
            })
        })
        .collect()
}

/// Where a funnel is counted: within one visit, or within a number of days from its
/// first step (for the same visitor id, which changes daily: see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Within {
    Visit,
    Days(i64),
}

impl Within {
    /// `visit`, or a number of days such as `7d` (1–365).
    pub fn parse(s: &str) -> Option<Within> {
        if s == "visit" {
            return Some(Within::Visit);
        }
        let n: i64 = s.strip_suffix('d')?.parse().ok()?;
        (1..=365).contains(&n).then_some(Within::Days(n))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FunnelStep {
    pub step: String,
    /// Visits (or visitors) that reached this step, in order.
    pub reached: i64,
    /// Lost since the previous step.
    pub dropped: i64,
    /// reached / previous step's reached, percent.
    pub from_previous: Option<f64>,
    /// reached / first step's reached, percent.
    pub from_start: Option<f64>,
}

/// Counts how far each key gets through the steps, in order (pure). `rows` are
/// `(key, time, mask)` ordered by key and time; bit `i` of mask: matches step `i`.
/// A key's funnel starts at its first step-0 event; with `Days(n)` later steps must
/// follow within n days of that start.
pub fn funnel_counts(rows: &[(i64, Millis, u64)], steps: usize, within: Within) -> Vec<i64> {
    let mut reached = vec![0i64; steps];
    let mut i = 0;
    while i < rows.len() {
        let key = rows[i].0;
        let mut j = i;
        while j < rows.len() && rows[j].0 == key {
            j += 1;
        }
        // Best progress over every possible start (a later start can get further
        // within a window), greedy from each start.
        let mut best = 0;
        for s in i..j {
            if rows[s].2 & 1 == 0 {
                continue;
            }
            let start = rows[s].1;
            let mut next = 1;
            for r in &rows[s + 1..j] {
                if next == steps {
                    break;
                }
                if let Within::Days(n) = within {
                    if r.1 - start > n * DAY_MS {
                        break;
                    }
                }
                if r.2 & (1 << next) != 0 {
                    next += 1;
                }
            }
            best = best.max(next);
            if best == steps {
                break;
            }
        }
        for r in reached.iter_mut().take(best) {
            *r += 1;
        }
        i = j;
    }
    reached
}

pub fn funnel(
    store: &dyn Store,
    site: &Site,
    range: DateRange,
    steps: &[Pattern],
    within: Within,
) -> Result<Vec<FunnelStep>> {
    let (from, to) = range.millis();
    let rows = store.funnel_rows(site.id, steps, within == Within::Visit, from, to)?;
    let counts = funnel_counts(&rows, steps.len(), within);
    let first = counts.first().copied().unwrap_or(0);
    Ok(steps
        .iter()
        .zip(&counts)
        .enumerate()
        .map(|(i, (p, &n))| {
            let prev = if i == 0 { n } else { counts[i - 1] };
            FunnelStep {
                step: p.to_string(),
                reached: n,
                dropped: prev - n,
                from_previous: if i == 0 { pct(n, n) } else { pct(n, prev) },
                from_start: pct(n, first),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAST: Model = Model {
        attribution: Attribution::LastClick,
        lookback_ms: 30 * DAY_MS,
    };

    fn click(ts: Millis, visitor: i64, id: &str, campaign: i64, ad: &str) -> Touch {
        Touch {
            ts_ms: ts,
            name: "ad_click".into(),
            visitor_id: visitor,
            click_id: id.into(),
            campaign_id: Some(campaign),
            ad: ad.into(),
            ..Touch::default()
        }
    }
    fn email_click(ts: Millis, visitor: i64, campaign: i64) -> Touch {
        Touch {
            name: "email_click".into(),
            click_id: String::new(),
            ad: String::new(),
            ..click(ts, visitor, "", campaign, "")
        }
    }
    fn view(ts: Millis, visitor: i64, id: &str) -> Touch {
        Touch {
            ts_ms: ts,
            name: "pageview".into(),
            visitor_id: visitor,
            click_id: id.into(),
            ..Touch::default()
        }
    }
    fn conv(ts: Millis, visitor: i64, id: &str, value: i64) -> Touch {
        Touch {
            ts_ms: ts,
            name: "conversion".into(),
            visitor_id: visitor,
            click_id: id.into(),
            value_minor: Some(value),
            currency: "EUR".into(),
            ..Touch::default()
        }
    }
    fn credited(c: &Conversion) -> Option<(i64, &str, &str)> {
        c.credit
            .as_ref()
            .map(|k| (k.campaign_id, k.ad.as_str(), k.channel))
    }

    #[test]
    fn last_click_wins_and_first_click_is_an_option() {
        let t = vec![
            click(1_000, 7, "ptclid:a", 1, "banner"),
            click(2_000, 7, "ptclid:b", 2, "video"),
            conv(3_000, 7, "", 100),
        ];
        assert_eq!(credited(&attribute(&t, LAST)[0]), Some((2, "video", "ad")));
        let first = Model {
            attribution: Attribution::FirstClick,
            ..LAST
        };
        assert_eq!(
            credited(&attribute(&t, first)[0]),
            Some((1, "banner", "ad"))
        );
    }

    #[test]
    fn email_click_then_ad_click_credits_the_ad() {
        let t = vec![
            email_click(1_000, 7, 5),
            click(2_000, 7, "ptclid:x", 9, "banner"),
            conv(3_000, 7, "", 100),
        ];
        assert_eq!(credited(&attribute(&t, LAST)[0]), Some((9, "banner", "ad")));
        // And the other way round, the email click is the last one.
        let t = vec![
            click(1_000, 7, "ptclid:x", 9, "banner"),
            email_click(2_000, 7, 5),
            conv(3_000, 7, "", 100),
        ];
        assert_eq!(credited(&attribute(&t, LAST)[0]), Some((5, "", "email")));
    }

    #[test]
    fn a_click_outside_the_window_is_not_credited() {
        let t = vec![
            click(0, 7, "ptclid:old", 1, "a"),
            conv(31 * DAY_MS, 0, "ptclid:old", 100),
        ];
        assert_eq!(attribute(&t, LAST)[0].credit, None);
        let t = vec![
            click(0, 7, "ptclid:old", 1, "a"),
            conv(30 * DAY_MS, 0, "ptclid:old", 100),
        ];
        assert_eq!(credited(&attribute(&t, LAST)[0]), Some((1, "a", "ad")));
    }

    #[test]
    fn a_conversion_without_a_click_stays_unattributed() {
        let t = vec![
            click(1_000, 7, "ptclid:a", 1, "a"),
            conv(2_000, 8, "", 100),
            conv(3_000, 0, "", 5),
        ];
        let c = attribute(&t, LAST);
        assert_eq!(c.len(), 2);
        assert!(c.iter().all(|c| c.credit.is_none()));
    }

    #[test]
    fn a_later_click_does_not_count() {
        let t = vec![conv(1_000, 7, "", 100), click(2_000, 7, "ptclid:a", 1, "a")];
        assert_eq!(attribute(&t, LAST)[0].credit, None);
    }

    #[test]
    fn joins_through_the_landing_page_and_across_visitor_ids() {
        // The click's visitor id (day 1) differs from the conversion's (day 2); the
        // landing page view of day 2 carried the click id.
        let t = vec![
            click(1_000, 70, "ptclid:k", 3, "a"),
            view(DAY_MS + 5, 71, "ptclid:k"),
            conv(DAY_MS + 9, 71, "", 100),
        ];
        assert_eq!(credited(&attribute(&t, LAST)[0]), Some((3, "a", "ad")));
    }

    #[test]
    fn funnels_count_ordered_steps() {
        // Steps: 0 = /, 1 = /pricing, 2 = signup. Masks per event.
        let rows = vec![
            // key 1: all three in order.
            (1, 10, 0b001),
            (1, 20, 0b010),
            (1, 30, 0b100),
            // key 2: pricing before home, then signup: only home → signup is out of
            // order for step 1, so it reaches step 0 only.
            (2, 10, 0b010),
            (2, 20, 0b001),
            (2, 30, 0b100),
            // key 3: home, pricing.
            (3, 10, 0b001),
            (3, 15, 0b010),
            // key 4: never starts.
            (4, 10, 0b100),
            // key 5: one event matching two steps does not take both.
            (5, 10, 0b011),
        ];
        assert_eq!(funnel_counts(&rows, 3, Within::Visit), vec![4, 2, 1]);
        // Within one day: key 1's steps are 20 ms apart, fine; spread key 6 over 3 days.
        let mut rows2 = rows.clone();
        rows2.extend([(6, 0, 0b001), (6, 3 * DAY_MS, 0b010)]);
        assert_eq!(funnel_counts(&rows2, 3, Within::Days(1)), vec![5, 2, 1]);
        assert_eq!(funnel_counts(&rows2, 3, Within::Days(7)), vec![5, 3, 1]);
        assert_eq!(funnel_counts(&[], 3, Within::Visit), vec![0, 0, 0]);
    }

    /// Kept daily credits against every touch read whole, on a real store.
    mod kept {
        use super::*;
        use crate::clock::HOUR_MS;
        use crate::model::{AdFields, EmailFields, Event, Verdict};
        use crate::store::{EventStore, PrivacyStore, Reclassify, SqliteStore};

        /// 2025-03-01 00:00 UTC: every test day is over, by the system clock too.
        const D0: Millis = 20_148 * DAY_MS;

        fn ev(ts_ms: Millis, name: &str, visitor_id: i64, click_id: &str) -> Event {
            Event {
                site_id: 1,
                ts_ms,
                name: name.into(),
                visitor_id,
                click_id: click_id.into(),
                path: "/x".into(),
                ..Event::default()
            }
        }
        fn ad_click(ts: Millis, visitor: i64, id: &str, campaign: i64, ad: &str) -> Event {
            Event {
                ad: Some(AdFields {
                    campaign_id: campaign,
                    ad: ad.into(),
                    ..AdFields::default()
                }),
                ..ev(ts, "ad_click", visitor, id)
            }
        }
        fn email_click(ts: Millis, visitor: i64, campaign: i64, verdict: Verdict) -> Event {
            Event {
                email: Some(EmailFields {
                    campaign_id: campaign,
                    recipient: format!("r{campaign}"),
                    link: "https://example.com/".into(),
                    verdict,
                    reason: "",
                    client: "",
                }),
                ..ev(ts, "email_click", visitor, "")
            }
        }
        fn conversion(ts: Millis, visitor: i64, id: &str, value: i64, cur: &str) -> Event {
            Event {
                value_minor: Some(value),
                currency: cur.into(),
                ..ev(ts, "conversion", visitor, id)
            }
        }

        /// Six days of clicks and conversions joined every way attribution joins: the
        /// same visitor, a click id carried a day later, a landing page a day later, an
        /// email click; plus unattributed ones and two waiting for the tests' changes.
        fn events() -> Vec<Event> {
            let mut out = Vec::new();
            for day in 0..6 {
                let t = D0 + day * DAY_MS;
                for i in 0..8 {
                    let v = 100 * day + i;
                    let id = format!("ptclid:{day}-{i}");
                    let at = t + i * HOUR_MS;
                    out.push(ad_click(
                        at,
                        v,
                        &id,
                        1 + i % 2,
                        ["a", "b", ""][i as usize % 3],
                    ));
                    match i % 3 {
                        0 => out.push(conversion(at + 1_800_000, v, "", 1_000 + i, "EUR")),
                        1 => out.push(conversion(at + DAY_MS, 100 * day + 50 + i, &id, 700, "USD")),
                        _ => {
                            let w = 100 * day + 70 + i;
                            out.push(ev(at + DAY_MS, "pageview", w, &id));
                            out.push(conversion(at + DAY_MS + 600_000, w, "", 300, "EUR"));
                        }
                    }
                }
                out.push(email_click(
                    t + 20 * HOUR_MS,
                    100 * day + 9,
                    3,
                    Verdict::Human,
                ));
                out.push(conversion(
                    t + 21 * HOUR_MS,
                    100 * day + 9,
                    "",
                    5_000,
                    "EUR",
                ));
                out.push(conversion(t + 22 * HOUR_MS, 100 * day + 99, "", 10, "EUR"));
            }
            // Waiting for a click written late (day 1) and for a relabelled one (day 3).
            out.push(conversion(
                D0 + 2 * DAY_MS + 5 * HOUR_MS,
                777,
                "ptclid:late",
                42,
                "EUR",
            ));
            out.push(email_click(
                D0 + 3 * DAY_MS + HOUR_MS,
                888,
                4,
                Verdict::Scanner,
            ));
            out.push(conversion(
                D0 + 3 * DAY_MS + 2 * HOUR_MS,
                888,
                "",
                43,
                "EUR",
            ));
            out.sort_by_key(|e| e.ts_ms);
            out
        }

        fn store() -> (tempfile::TempDir, SqliteStore) {
            let dir = tempfile::tempdir().unwrap();
            let store = SqliteStore::open(dir.path()).unwrap();
            assert!(writer(&store).write(events(), Vec::new()));
            (dir, store)
        }

        fn writer(store: &SqliteStore) -> crate::ingest::EventWriter {
            crate::ingest::EventWriter::for_tests(store)
        }

        fn models() -> Vec<Model> {
            vec![
                LAST,
                Model {
                    attribution: Attribution::FirstClick,
                    lookback_ms: 2 * DAY_MS,
                },
                Model {
                    attribution: Attribution::LastClick,
                    lookback_ms: DAY_MS + HOUR_MS,
                },
            ]
        }

        /// Whole days, parts of days, and ranges reaching into days not over yet.
        fn ranges() -> Vec<(Millis, Millis)> {
            vec![
                (D0, D0 + 7 * DAY_MS),
                (D0 + DAY_MS, D0 + 4 * DAY_MS),
                (D0 + 5 * HOUR_MS, D0 + 5 * DAY_MS + 7 * HOUR_MS),
                (D0 + 50 * HOUR_MS, D0 + 51 * HOUR_MS),
                (D0 - DAY_MS, D0 + 9 * DAY_MS),
            ]
        }

        fn whole(store: &SqliteStore, from: Millis, to: Millis, m: Model) -> Credits {
            let touches = store.touches(SiteId(1), from - m.lookback_ms, to).unwrap();
            Credits::of(&touches, m, from)
        }

        fn check(store: &SqliteStore, now: Millis) {
            for m in models() {
                for (from, to) in ranges() {
                    assert_eq!(
                        super::super::credited(store, SiteId(1), from, to, m, now).unwrap(),
                        whole(store, from, to, m),
                        "{m:?} over [{from}, {to}) at {now}"
                    );
                }
            }
        }

        use crate::store::sqlite::report_days::testing::{db, kept_as_days_end};

        #[test]
        fn kept_days_give_the_credits_of_every_touch_and_are_counted_once() {
            let (dir, store) = store();
            let all = whole(&store, D0, D0 + 6 * DAY_MS, LAST);
            assert!(
                all.by.len() >= 3 && all.unattributed > 0,
                "the data joins every way"
            );
            kept_as_days_end(dir.path(), "%", D0, |now| check(&store, now));
            // The kept rows are what is read: a row changed by hand shows.
            db(dir.path())
                .execute(
                    "UPDATE report_days SET body = json_set(body, '$.n', json_extract(body, '$.n') + 1000)",
                    [],
                )
                .unwrap();
            let got = super::super::credited(
                &store,
                SiteId(1),
                D0,
                D0 + 6 * DAY_MS,
                LAST,
                D0 + 20 * DAY_MS,
            );
            assert_eq!(got.unwrap().conversions, all.conversions + 6_000);
        }

        #[test]
        fn a_late_click_makes_the_days_its_lookback_reaches_counted_again() {
            let (_dir, store) = store();
            let now = D0 + 20 * DAY_MS;
            check(&store, now);
            let before = whole(&store, D0 + 2 * DAY_MS, D0 + 3 * DAY_MS, LAST);
            // Day 1's click, imported after day 2's conversion that carries its id.
            let late = ad_click(D0 + DAY_MS + 3 * HOUR_MS, 5, "ptclid:late", 5, "late");
            assert!(writer(&store).write(vec![late], Vec::new()));
            let after = whole(&store, D0 + 2 * DAY_MS, D0 + 3 * DAY_MS, LAST);
            assert_ne!(before, after, "the scenario: the late click takes a credit");
            check(&store, now);
        }

        #[test]
        fn a_relabelled_click_makes_its_days_counted_again() {
            let (_dir, store) = store();
            let now = D0 + 20 * DAY_MS;
            check(&store, now);
            let before = whole(&store, D0, D0 + 6 * DAY_MS, LAST);
            let mut w = store.writer(crate::config::Synchronous::Normal).unwrap();
            let relabel = Reclassify {
                campaign_id: 4,
                recipient: "r4".into(),
                name: "email_click".into(),
                from_ms: D0,
                verdict: "human",
                reason: "landing",
                from_verdict: "scanner",
                from_reason: "",
            };
            w.apply(&[], &[relabel], None).unwrap();
            assert_ne!(
                before,
                whole(&store, D0, D0 + 6 * DAY_MS, LAST),
                "the scenario"
            );
            check(&store, now);
        }

        #[test]
        fn retention_and_erasure_drop_the_kept_days_they_change() {
            let (_dir, store) = store();
            let now = D0 + 20 * DAY_MS;
            check(&store, now);
            store
                .apply_retention(SiteId(1), D0 + 2 * DAY_MS + 6 * HOUR_MS, false)
                .unwrap();
            check(&store, now);
            store
                .erase_subject(&crate::store::Subject::Recipient {
                    site_id: None,
                    recipient: "r3".into(),
                })
                .unwrap();
            check(&store, now);
        }
    }
}
