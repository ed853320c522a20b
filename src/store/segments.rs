//! Day segments: a whole past day's web rows held in memory column by column, so that a
//! filtered view nobody asked for before is counted from memory instead of from the
//! day's raw events (issue 11: a new filter's first load at 10 M events).
//!
//! A segment is what [`Tally`](super::Tally) would read of the day — each event with its
//! visit's values — sorted by visitor, then visit, each text value stored once per day in
//! a dictionary and referred to by its index (one or two bytes for most dimensions). The
//! visit's values are stored once per visit. Because one visitor's visits, and one
//! visit's events, are next to each other, a value's distinct visitors and visits are
//! counted by comparing with the last one it saw: no set, no hashing, no strings while
//! counting. [`DaySegment::count`] gives exactly the counts `Tally` gives for the same
//! rows (`tests` holds both to each other on the demo's traffic); a day whose rows do
//! not have the shape this relies on (an event whose visit is not written, a visit with
//! differing values) gets no segment and is read as before.
//!
//! Segments are built by the serving process in the background (`server::jobs`), kept
//! under a memory budget, and used only while their day's mark is the one they were
//! built with (`report_days` key [`KEY`]: a late write changes the mark; retention,
//! erasure and removals delete the row), so a report never counts from a stale one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{
    Counts, Dim, Filter, FilterOp, Group, StoreError, Touch, WebCounts, WebRow, SESSION_DIMS,
};
use crate::clock::{DAY_MS, HOUR_MS};
use crate::model::ENGAGEMENT;

/// The `report_days` key whose rows say which days' segments are still right.
pub const KEY: &str = "segment";

/// The visit-level columns: [`SESSION_DIMS`], then the entry and exit pages.
const VISIT_COLS: usize = SESSION_DIMS.len() + 2;
const ENTRY: usize = SESSION_DIMS.len();
const EXIT: usize = SESSION_DIMS.len() + 1;
/// No visitor (an event without a visitor id), or a marker not set yet.
const NONE: u32 = u32::MAX;

/// Dictionary indexes, as narrow as the dictionary allows.
enum Codes {
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
}

impl Codes {
    #[inline]
    fn get(&self, i: usize) -> usize {
        match self {
            Codes::U8(v) => v[i] as usize,
            Codes::U16(v) => v[i] as usize,
            Codes::U32(v) => v[i] as usize,
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Codes::U8(v) => v.capacity(),
            Codes::U16(v) => v.capacity() * 2,
            Codes::U32(v) => v.capacity() * 4,
        }
    }
}

/// One dictionary-coded text column.
struct Column {
    dict: Vec<String>,
    codes: Codes,
}

impl Column {
    #[inline]
    fn code(&self, i: usize) -> usize {
        self.codes.get(i)
    }

    fn bytes(&self) -> usize {
        self.codes.bytes() + self.dict.iter().map(|s| s.capacity() + 24).sum::<usize>()
    }

    /// Whether each dictionary entry passes `f`.
    fn test(&self, f: &Filter) -> Vec<bool> {
        let needle = f.value.to_ascii_lowercase();
        self.dict
            .iter()
            .map(|v| match f.op {
                FilterOp::Is => *v == f.value,
                FilterOp::IsNot => *v != f.value,
                // SQLite's `lower()` folds ASCII only: so does this.
                FilterOp::Contains => v.to_ascii_lowercase().contains(&needle),
            })
            .collect()
    }
}

/// Builds a [`Column`]: values in, indexes out.
#[derive(Default)]
struct Dictionary {
    index: HashMap<String, u32>,
    dict: Vec<String>,
}

impl Dictionary {
    fn code(&mut self, v: &str) -> u32 {
        if let Some(c) = self.index.get(v) {
            return *c;
        }
        let c = self.dict.len() as u32;
        self.dict.push(v.to_owned());
        self.index.insert(v.to_owned(), c);
        c
    }

    fn column(self, codes: impl ExactSizeIterator<Item = u32>) -> Column {
        let n = self.dict.len();
        let codes = if n <= 1 << 8 {
            Codes::U8(codes.map(|c| c as u8).collect())
        } else if n <= 1 << 16 {
            Codes::U16(codes.map(|c| c as u16).collect())
        } else {
            Codes::U32(codes.collect())
        };
        Column {
            dict: self.dict,
            codes,
        }
    }
}

/// One visit (or one event without a visit): where its events end, its visitor's
/// ordinal in the day, and what the counts take from it.
#[derive(Clone, Copy)]
struct Visit {
    end: u32,
    visitor: u32,
    /// 0 for an event without a visit (it counts its visitor, and no visit).
    events: u32,
    ms: u32,
}

/// One whole day of one site's web rows (see the module's doc).
pub struct DaySegment {
    pub day: i64,
    /// The day's mark when it was read (`report_days`).
    pub mark: i64,
    /// About how much memory it holds.
    bytes: usize,
    visits: Vec<Visit>,
    /// Per visit.
    vcols: Vec<Column>,
    /// Per event.
    page: Column,
    title: Column,
    name: Column,
    hour: Vec<u8>,
    /// An engagement event's scroll depth (`i8::MIN`: none) and visible time (`NONE`).
    scroll: Vec<i8>,
    engaged: Vec<u32>,
    /// The day's touches, in the order [`EventStore::touches`](super::EventStore::touches)
    /// gives them: what conversions are credited from (a few in a hundred events). None
    /// when not read with the day ([`Segments::hold_touches`]).
    touches: Option<Vec<Touch>>,
}

/// An event while a segment is built.
struct Pending {
    visitor_id: i64,
    session_id: i64,
    hour: u8,
    page: u32,
    title: u32,
    name: u32,
    scroll: i8,
    engaged: u32,
    visit: [u32; VISIT_COLS],
    events: u32,
    ms: u32,
}

impl DaySegment {
    /// The segment of `day` from its rows (each as [`Tally::add`](super::Tally::add)
    /// takes it), or None when a row does not have the shape segments count exactly.
    pub fn build(
        day: i64,
        mark: i64,
        rows: impl FnOnce(&mut dyn FnMut(&WebRow)) -> super::Result<()>,
    ) -> super::Result<Option<DaySegment>> {
        let mut vd: Vec<Dictionary> = (0..VISIT_COLS).map(|_| Dictionary::default()).collect();
        let (mut page, mut title, mut name) = Default::default();
        let mut pending: Vec<Pending> = Vec::new();
        let mut fits = true;
        rows(&mut |r: &WebRow| {
            if !fits {
                return;
            }
            let hour = (r.ts_ms - day * DAY_MS).div_euclid(HOUR_MS);
            let scroll = match r.scroll_pct {
                None => Some(i8::MIN),
                Some(s) => i8::try_from(s).ok().filter(|s| *s != i8::MIN),
            };
            let engaged = match r.engaged_ms {
                None => Some(NONE),
                Some(e) => u32::try_from(e).ok().filter(|e| *e != NONE),
            };
            let (Some(scroll), Some(engaged), Ok(events), Ok(ms)) = (
                scroll,
                engaged,
                u32::try_from(r.visit_events),
                u32::try_from(r.visit_ms),
            ) else {
                fits = false;
                return;
            };
            // An event whose visit is not written yet takes its own values: not here.
            if !(0..24).contains(&hour) || (r.session_id != 0 && events == 0) {
                fits = false;
                return;
            }
            let mut visit = [0u32; VISIT_COLS];
            for (i, d) in r.dims.iter().enumerate().take(SESSION_DIMS.len()) {
                visit[i] = vd[i].code(d);
            }
            visit[ENTRY] = vd[ENTRY].code(&r.entry_page);
            visit[EXIT] = vd[EXIT].code(&r.exit_page);
            pending.push(Pending {
                visitor_id: r.visitor_id,
                session_id: r.session_id,
                hour: hour as u8,
                page: Dictionary::code(&mut page, &r.path),
                title: Dictionary::code(&mut title, &r.title),
                name: Dictionary::code(&mut name, &r.name),
                scroll,
                engaged,
                visit,
                events,
                ms,
            });
        })?;
        if !fits || pending.len() >= NONE as usize {
            return Ok(None);
        }
        pending.sort_unstable_by_key(|p| (p.visitor_id, p.session_id));
        // Visits: a run of one session id (each event without one is its own).
        let mut visits: Vec<Visit> = Vec::new();
        let mut vcodes: Vec<[u32; VISIT_COLS]> = Vec::new();
        let mut ordinal = 0u32;
        let mut seen_sessions = std::collections::HashSet::new();
        for (i, p) in pending.iter().enumerate() {
            let prev = i.checked_sub(1).map(|j| &pending[j]);
            let new_visitor = prev.is_none_or(|q| q.visitor_id != p.visitor_id);
            if new_visitor && prev.is_some() {
                ordinal += 1;
            }
            let same_visit = p.session_id != 0
                && prev.is_some_and(|q| q.session_id == p.session_id && !new_visitor);
            if same_visit {
                let (v, codes) = (
                    visits.last_mut().expect("a visit"),
                    vcodes.last().expect("its values"),
                );
                // A visit's values are its own, the same on each of its events.
                if *codes != p.visit || v.events != p.events || v.ms != p.ms {
                    return Ok(None);
                }
                v.end += 1;
                continue;
            }
            // One visit is one visitor's: a session id seen under two would be two here.
            if p.session_id != 0 && !seen_sessions.insert(p.session_id) {
                return Ok(None);
            }
            visits.push(Visit {
                end: i as u32 + 1,
                visitor: if p.visitor_id == 0 { NONE } else { ordinal },
                events: if p.session_id == 0 { 0 } else { p.events },
                ms: p.ms,
            });
            vcodes.push(p.visit);
        }
        let vcols = vd
            .into_iter()
            .enumerate()
            .map(|(c, d)| d.column(vcodes.iter().map(|v| v[c])))
            .collect();
        let mut seg = DaySegment {
            day,
            mark,
            bytes: 0,
            visits,
            vcols,
            page: page.column(pending.iter().map(|p| p.page)),
            title: title.column(pending.iter().map(|p| p.title)),
            name: name.column(pending.iter().map(|p| p.name)),
            hour: pending.iter().map(|p| p.hour).collect(),
            scroll: pending.iter().map(|p| p.scroll).collect(),
            engaged: pending.iter().map(|p| p.engaged).collect(),
            touches: None,
        };
        seg.bytes = seg.measure();
        Ok(Some(seg))
    }

    /// The segment with the day's touches (read with the same mark as its rows).
    pub fn with_touches(mut self, touches: Vec<Touch>) -> DaySegment {
        self.touches = Some(touches);
        self.bytes = self.measure();
        self
    }

    /// The day's touches that `keep` keeps, in their order; None when the segment was
    /// built without them.
    pub fn touches<'a>(
        &'a self,
        keep: &'a dyn Fn(&Touch) -> bool,
    ) -> Option<impl Iterator<Item = &'a Touch> + 'a> {
        Some(self.touches.as_ref()?.iter().filter(move |t| keep(t)))
    }

    /// About how much memory the segment holds.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn measure(&self) -> usize {
        std::mem::size_of::<DaySegment>()
            + self.visits.capacity() * std::mem::size_of::<Visit>()
            + self.vcols.iter().map(Column::bytes).sum::<usize>()
            + [&self.page, &self.title, &self.name]
                .iter()
                .map(|c| c.bytes())
                .sum::<usize>()
            + self.hour.capacity()
            + self.scroll.capacity()
            + self.engaged.capacity() * 4
            + self
                .touches
                .iter()
                .flatten()
                .map(|t| {
                    std::mem::size_of::<Touch>()
                        + t.name.capacity()
                        + t.click_id.capacity()
                        + t.ad.capacity()
                        + t.currency.capacity()
                })
                .sum::<usize>()
    }

    pub fn events(&self) -> usize {
        self.hour.len()
    }

    /// The day's counts of `groups` over the events matching every filter: what
    /// [`Tally`](super::Tally) counts from the same rows.
    pub fn count(&self, filters: &[Filter], groups: &[Group]) -> super::Result<WebCounts> {
        // Each filter, tested once per dictionary entry.
        let mut on_visit: Vec<(&Column, Vec<bool>)> = Vec::new();
        let mut on_event: Vec<(&Column, Vec<bool>)> = Vec::new();
        for f in filters {
            match self.column(f.dim) {
                Some((col, per_visit)) => {
                    let ok = col.test(f);
                    if per_visit {
                        on_visit.push((col, ok))
                    } else {
                        on_event.push((col, ok))
                    }
                }
                None => {
                    return Err(StoreError::Conflict(format!(
                        "cannot filter by {}",
                        f.dim.name()
                    )))
                }
            }
        }
        let code_of = |name: &str| self.name.dict.iter().position(|n| n == name);
        let (pageview, engagement) = (code_of("pageview"), code_of(ENGAGEMENT));
        let mut by: Vec<(Group, Source, Vec<Cell>)> = Vec::new();
        for g in groups {
            if by.iter().any(|(x, _, _)| x == g) {
                continue;
            }
            let source = self.source(*g);
            let cells = match &source {
                Source::Total => 1,
                Source::Hours(_, values) => values.len(),
                Source::Dim { col, .. } => self.col(*col).dict.len(),
                Source::Nothing => 0,
            };
            by.push((*g, source, vec![Cell::default(); cells]));
        }
        let mut start = 0usize;
        for (vi, v) in self.visits.iter().enumerate() {
            let (rows, visit) = (start..v.end as usize, vi as u32);
            start = v.end as usize;
            if !on_visit.iter().all(|(c, ok)| ok[c.code(vi)]) {
                continue;
            }
            for r in rows {
                if !on_event.iter().all(|(c, ok)| ok[c.code(r)]) {
                    continue;
                }
                let name = Some(self.name.code(r));
                if name == engagement {
                    // Counted in the total, its hours and its page only: its scroll
                    // depth and visible time (as `Tally` counts it).
                    let (scroll, engaged) = (self.scroll[r], self.engaged[r]);
                    for (_, source, cells) in by.iter_mut() {
                        let cell = match &*source {
                            Source::Total => 0,
                            Source::Hours(of, _) => of[self.hour[r] as usize] as usize,
                            Source::Dim { col: Col::Page, .. } => self.page.code(r),
                            _ => continue,
                        };
                        let c = &mut cells[cell];
                        c.touched = true;
                        if scroll != i8::MIN {
                            c.counts.scroll_sum += i64::from(scroll);
                            c.counts.scroll_n += 1;
                        }
                        if engaged != NONE {
                            c.counts.engaged_ms += i64::from(engaged);
                        }
                    }
                    continue;
                }
                let is_pageview = name == pageview;
                for (_, source, cells) in by.iter_mut() {
                    let cell = match &*source {
                        Source::Total => 0,
                        Source::Hours(of, _) => of[self.hour[r] as usize] as usize,
                        Source::Dim { col, counted } => {
                            // Pages and titles count page views, events the others.
                            let takes = match col {
                                Col::Page | Col::Title => is_pageview,
                                Col::Name => !is_pageview,
                                Col::Visit(_) => true,
                            };
                            let code = match col {
                                Col::Visit(c) => self.vcols[*c].code(vi),
                                c => self.col(*c).code(r),
                            };
                            if !takes || !counted[code] {
                                continue;
                            }
                            code
                        }
                        Source::Nothing => continue,
                    };
                    cells[cell].add(v, visit, is_pageview);
                }
            }
        }
        Ok(WebCounts(
            by.into_iter()
                .map(|(g, source, cells)| {
                    let values = cells
                        .into_iter()
                        .enumerate()
                        .filter(|(_, c)| c.touched)
                        .map(|(i, c)| {
                            let value = match &source {
                                Source::Hours(_, values) => values[i].to_string(),
                                Source::Dim { col, .. } => self.col(*col).dict[i].clone(),
                                Source::Total | Source::Nothing => String::new(),
                            };
                            let mut counts = c.counts;
                            if g != Group::Total {
                                counts.duration_ms = 0;
                            }
                            (value, counts)
                        })
                        .collect();
                    (g, values)
                })
                .collect(),
        ))
    }

    /// The column that holds `d` (None: rows do not carry it).
    fn col_of(d: Dim) -> Option<Col> {
        Some(match d {
            Dim::Page => Col::Page,
            Dim::Title => Col::Title,
            Dim::Event => Col::Name,
            Dim::EntryPage => Col::Visit(ENTRY),
            Dim::ExitPage => Col::Visit(EXIT),
            d => Col::Visit(SESSION_DIMS.iter().position(|s| *s == d)?),
        })
    }

    fn col(&self, c: Col) -> &Column {
        match c {
            Col::Page => &self.page,
            Col::Title => &self.title,
            Col::Name => &self.name,
            Col::Visit(i) => &self.vcols[i],
        }
    }

    /// The column a filter on `d` reads, and whether it is the visit's.
    fn column(&self, d: Dim) -> Option<(&Column, bool)> {
        let c = Self::col_of(d)?;
        Some((self.col(c), matches!(c, Col::Visit(_))))
    }

    /// Where a group's value comes from.
    fn source(&self, g: Group) -> Source {
        match g {
            Group::Total => Source::Total,
            Group::Hours(h) => {
                // Each hour of the day's bucket: the bucket's first hour (as `Tally`
                // names it), one cell per bucket.
                let h = h.max(1);
                let mut of = [0u32; 24];
                let mut values: Vec<i64> = Vec::new();
                for (hod, cell) in of.iter_mut().enumerate() {
                    let b = (self.day * 24 + hod as i64).div_euclid(h) * h;
                    if values.last() != Some(&b) {
                        values.push(b);
                    }
                    *cell = (values.len() - 1) as u32;
                }
                Source::Hours(of, values)
            }
            // A dimension rows do not carry counts nothing (as in `Tally`).
            Group::Dim(d) => match Self::col_of(d) {
                None => Source::Nothing,
                Some(col) => Source::Dim {
                    col,
                    // An unset value of these dimensions is no row (as `Tally` has it).
                    counted: self
                        .col(col)
                        .dict
                        .iter()
                        .map(|v| !(v.is_empty() && d.empty_means_unset()))
                        .collect(),
                },
            },
        }
    }
}

/// A segment's text columns.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Col {
    Page,
    Title,
    Name,
    /// One of the visit's ([`VISIT_COLS`]).
    Visit(usize),
}

/// Where a group takes an event's value from.
enum Source {
    Total,
    /// Each hour of the day's cell, and each cell's value.
    Hours([u32; 24], Vec<i64>),
    /// A column, and which of its dictionary entries count.
    Dim {
        col: Col,
        counted: Vec<bool>,
    },
    Nothing,
}

/// One value's counts, with the last visitor and visit it counted.
#[derive(Clone, Copy)]
struct Cell {
    counts: Counts,
    last_visitor: u32,
    last_visit: u32,
    touched: bool,
}

impl Default for Cell {
    fn default() -> Cell {
        Cell {
            counts: Counts::default(),
            last_visitor: NONE,
            last_visit: NONE,
            touched: false,
        }
    }
}

impl Cell {
    #[inline]
    fn add(&mut self, v: &Visit, visit: u32, is_pageview: bool) {
        self.touched = true;
        if v.visitor != NONE && self.last_visitor != v.visitor {
            self.last_visitor = v.visitor;
            self.counts.visitors += 1;
        }
        if v.events != 0 && self.last_visit != visit {
            self.last_visit = visit;
            self.counts.visits += 1;
            self.counts.bounces += i64::from(v.events == 1);
            self.counts.duration_ms += i64::from(v.ms);
        }
        if is_pageview {
            self.counts.pageviews += 1;
        } else {
            self.counts.events += 1;
        }
    }
}

/// The segments a process holds, under its budget.
#[derive(Default)]
pub struct Segments {
    inner: Mutex<Held>,
}

/// Which removals a segment read saw: one read while events were removed is not held.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Generation(u64);

#[derive(Default)]
struct Held {
    /// How many past days of each site to hold (0: none), and how many bytes at most.
    days: i64,
    budget: usize,
    by_day: HashMap<(i64, i64), Arc<DaySegment>>,
    /// Days read and found without a segment's shape, with their mark then: not read
    /// again until it changes.
    unfit: HashMap<(i64, i64), i64>,
    /// Counts removals ([`Segments::forget`]).
    generation: u64,
    /// Whether segments carry their day's touches (see [`Segments::hold_touches`]).
    touches: bool,
    /// See [`Segments::stop`].
    stopped: bool,
}

impl Segments {
    pub fn configure(&self, days: i64, budget_bytes: usize) {
        let mut h = self.lock();
        h.days = days.max(0);
        h.budget = budget_bytes;
    }

    /// Whether the days built from now on carry their touches, so that attribution
    /// reads a held day's from memory: for a store whose reads of touches scan every
    /// event of the range (ClickHouse: 0.2 s for the 30 days of today's conversions'
    /// lookback at 10 M events). SQLite finds them by index, faster than a filter of a
    /// month's touches in memory, and leaves it off.
    pub fn hold_touches(&self, on: bool) {
        self.lock().touches = on;
    }

    pub fn holds_touches(&self) -> bool {
        self.lock().touches
    }

    /// A stop: a refresh under way reads no further day (it may take minutes on a big
    /// store, and the stop waits for it), and none reads again.
    pub fn stop(&self) {
        self.lock().stopped = true;
    }

    pub fn stopped(&self) -> bool {
        self.lock().stopped
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many past days of each site to hold (0: none).
    pub fn days(&self) -> i64 {
        self.lock().days
    }

    pub fn get(&self, site_id: i64, day: i64) -> Option<Arc<DaySegment>> {
        self.lock().by_day.get(&(site_id, day)).cloned()
    }

    /// Now, for [`insert`](Self::insert): take it before reading a segment's rows.
    pub fn generation(&self) -> Generation {
        Generation(self.lock().generation)
    }

    /// Lets the segments of `site_id` (None: every site) go at once, in the process that
    /// removed events (retention, an erasure, a removed site); a read under way then is
    /// not held either. (Other processes' removals are seen at the next use, through
    /// the day's `report_days` row they deleted.)
    pub fn forget(&self, site_id: Option<i64>) {
        let mut h = self.lock();
        h.generation += 1;
        h.by_day
            .retain(|(site, _), _| site_id.is_some_and(|s| s != *site));
        h.unfit.clear();
    }

    /// Holds `seg` (read since `since`), letting older days go to make room; false
    /// when only newer days hold the budget, or events were removed since (`seg` is
    /// not held then).
    pub fn insert(&self, site_id: i64, seg: DaySegment, since: Generation) -> bool {
        let mut h = self.lock();
        if h.generation != since.0 {
            return false;
        }
        let mut used: usize = h.by_day.values().map(|s| s.bytes()).sum();
        while used + seg.bytes() > h.budget {
            let oldest = h
                .by_day
                .iter()
                .filter(|(_, s)| s.day < seg.day)
                .min_by_key(|(k, s)| (s.day, **k))
                .map(|(k, _)| *k);
            let Some(k) = oldest else {
                return false;
            };
            used -= h.by_day.remove(&k).map_or(0, |s| s.bytes());
        }
        h.by_day.insert((site_id, seg.day), Arc::new(seg));
        true
    }

    /// Drops the segments `keep` refuses (given their site).
    pub fn retain(&self, mut keep: impl FnMut(i64, &DaySegment) -> bool) {
        let mut h = self.lock();
        h.by_day.retain(|(site, _), s| keep(*site, s));
    }

    /// Whether the day was found unfit at this mark.
    pub fn unfit(&self, site_id: i64, day: i64, mark: i64) -> bool {
        self.lock().unfit.get(&(site_id, day)) == Some(&mark)
    }

    pub fn mark_unfit(&self, site_id: i64, day: i64, mark: i64) {
        let mut h = self.lock();
        // Bounded: past it, every day is tried once more.
        if h.unfit.len() >= 4096 {
            h.unfit.clear();
        }
        h.unfit.insert((site_id, day), mark);
    }

    pub fn is_empty(&self) -> bool {
        self.lock().by_day.is_empty()
    }

    /// `(segments, events, bytes)` held.
    pub fn held(&self) -> (usize, usize, usize) {
        let h = self.lock();
        (
            h.by_day.len(),
            h.by_day.values().map(|s| s.events()).sum(),
            h.by_day.values().map(|s| s.bytes()).sum(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Millis;
    use crate::store::Tally;

    fn row(
        ts: Millis,
        visitor: i64,
        session: i64,
        name: &str,
        path: &str,
        source: &str,
        events: i64,
    ) -> WebRow {
        let mut dims = vec![String::new(); SESSION_DIMS.len()];
        dims[0] = source.into();
        dims[4] = "Firefox".into();
        WebRow {
            ts_ms: ts,
            visitor_id: visitor,
            session_id: session,
            name: name.into(),
            path: path.into(),
            title: format!("T{path}"),
            dims,
            entry_page: "/".into(),
            exit_page: path.into(),
            visit_events: events,
            visit_ms: 1_000 * events,
            scroll_pct: (name == ENGAGEMENT).then_some(40),
            engaged_ms: (name == ENGAGEMENT).then_some(5_000),
        }
    }

    #[test]
    fn a_segment_counts_what_the_tally_counts() {
        let day = 20_000;
        let t0 = day * DAY_MS;
        let rows = [
            row(t0 + 10, 7, 1, "pageview", "/a", "Google", 3),
            row(t0 + 20, 7, 1, ENGAGEMENT, "/a", "Google", 3),
            row(t0 + 30, 7, 1, "signup", "/a", "Google", 3),
            row(t0 + 3 * HOUR_MS, 7, 2, "pageview", "/b", "", 1),
            row(t0 + 5 * HOUR_MS, 8, 3, "pageview", "/a", "Bing", 1),
            row(t0 + 6 * HOUR_MS, 9, 0, "pageview", "/c", "Google", 0),
            row(t0 + 6 * HOUR_MS, 0, 0, "pageview", "/c", "Google", 0),
        ];
        let seg = DaySegment::build(day, 0, |f| {
            rows.iter().rev().for_each(f);
            Ok(())
        })
        .unwrap()
        .expect("a segment");
        let groups = [
            Group::Total,
            Group::Hours(1),
            Group::Hours(24),
            Group::Dim(Dim::Source),
            Group::Dim(Dim::Page),
            Group::Dim(Dim::Event),
            Group::Dim(Dim::Referrer),
            Group::Dim(Dim::ExitPage),
        ];
        for filters in [
            vec![],
            vec![Filter::parse("source==Google").unwrap()],
            vec![Filter::parse("page~/A").unwrap()],
        ] {
            let mut t = Tally::new(&groups);
            rows.iter()
                .filter(|r| matches(r, &filters))
                .for_each(|r| t.add(r));
            assert_eq!(
                seg.count(&filters, &groups).unwrap(),
                t.finish(),
                "{filters:?}"
            );
        }
    }

    /// The filters of the test rows, applied as SQL applies them.
    fn matches(r: &WebRow, filters: &[Filter]) -> bool {
        filters.iter().all(|f| {
            let v = match f.dim {
                Dim::Source => &r.dims[0],
                Dim::Page => &r.path,
                _ => unreachable!(),
            };
            match f.op {
                FilterOp::Is => *v == f.value,
                FilterOp::IsNot => *v != f.value,
                FilterOp::Contains => v
                    .to_ascii_lowercase()
                    .contains(&f.value.to_ascii_lowercase()),
            }
        })
    }

    #[test]
    fn a_day_with_an_event_whose_visit_is_not_written_gets_no_segment() {
        let rows = [row(10, 7, 1, "pageview", "/a", "Google", 0)];
        let seg = DaySegment::build(0, 0, |f| {
            rows.iter().for_each(f);
            Ok(())
        })
        .unwrap();
        assert!(seg.is_none());
    }
}
