//! Sessions and rollup deltas. The writer thread sees every event in order, so it
//! owns the open sessions: it stamps each event with its session id and turns the
//! event into additive rollup deltas and unique-visitor candidates for the batch.
//!
//! Visit-level numbers (visits, bounces, duration) are credited to the hour the
//! session started; event-level numbers (pageviews, events) to the event's hour.
//! A bounce is a session with a single event; the second event takes it back.
//!
//! Over 600 lines with its tests: a third of the file is the table of session cases.

use std::collections::HashMap;

use crate::clock::{day_of, hour_of, Millis};
use crate::model::Event;
use crate::store::{
    session_values, Counts, Derived, Dim, Dims, RollupKey, ScreenSize, SessionRow, UniqueCandidate,
    SESSION_DIMS,
};

use super::uniques::{Seen, SeenKeys};

struct Open {
    row: SessionRow,
    bounced: bool,
    /// Changed in the current batch (its row must be written).
    touched: bool,
    /// Its start (the `sessions` row: ids, values, entry page) has been handed to a
    /// write as it is now: only its end (`visit_ends`) can have changed since.
    start_written: bool,
    /// An event other than its own hits carries its id (an engagement): its start must
    /// be stored, since readers could no longer take it from the one event naming it.
    named: bool,
}

impl Open {
    /// Adds the visit's row to the write, with what of it the store must write. A visit
    /// whose first hit is still the only event naming it (most visits of a typical site,
    /// almost all of an imported log's) gets no row at all: readers take its start from
    /// that event (`session_rows.sql`, `events.rs`, the forwarder's `VisitColumns`), and
    /// its end is its start (`SessionRow::ends_at_start`). Its second hit, or an
    /// engagement naming it, writes its start then.
    fn hand_over(&mut self, batch: &mut Derived) {
        let rowless = self.row.ends_at_start() && !self.named;
        if self.start_written || rowless {
            batch.starts_skipped.insert(self.row.id);
        }
        self.start_written |= !rowless;
        batch.sessions.push(self.row.clone());
    }
}

pub struct Sessions {
    open: HashMap<(i64, i64), Open, foldhash::fast::RandomState>,
    timeout_ms: Millis,
    /// Sessions changed in the current batch.
    touched: Vec<(i64, i64)>,
    /// The low bits of the next new session's id (see [`Sessions::new_id`]).
    seq: i64,
    /// The most open sessions held; past it the longest idle ones end early.
    cap: usize,
    /// Sessions ended early by the bound, since start.
    pub cut: u64,
}

fn skip_empty(dim: Dim, value: &str) -> bool {
    value.is_empty() && dim.empty_means_unset()
}

fn add(batch: &mut Derived, site_id: i64, dim: Dim, hour: i64, value: &str, c: Counts) {
    if !skip_empty(dim, value) {
        batch.rollups.add(site_id, dim, hour, value, &c);
    }
}

/// The event-level rows of a non-pageview event: its name, and for the tracker's
/// `outbound`/`download` events the URL, and each custom prop as `event: key=value`.
fn custom_event_rows(e: &Event) -> Vec<(Dim, String)> {
    let mut rows = vec![(Dim::Event, e.name.to_string())];
    let props: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&e.props).unwrap_or_default();
    let url = props.get("url").and_then(|u| u.as_str()).unwrap_or("");
    match e.name.as_str() {
        "outbound" if !url.is_empty() => rows.push((Dim::Outbound, url.to_owned())),
        "download" if !url.is_empty() => rows.push((Dim::Download, url.to_owned())),
        _ => {}
    }
    for (k, v) in props.iter().take(crate::enrich::MAX_PROPS) {
        if let Some(v) = v.as_str() {
            rows.push((Dim::EventProp, format!("{}: {k}={v}", e.name)));
        }
    }
    rows
}

/// A unique-visitor key is the FNV-1a hash (64 bit) of its site, day, dimension, value
/// and visitor: stable across builds (the keys outlive a process: stored keys depend on
/// every byte of it), and these keys only live for a day or two, where 64 bits make a
/// collision negligible. This is the hash of its site and day, the same for every row
/// of a hit: hashed once.
fn key_prefix(site_id: i64, day: i64) -> u64 {
    fnv1a(
        fnv1a(0xcbf2_9ce4_8422_2325, &site_id.to_le_bytes()),
        &day.to_le_bytes(),
    )
}

/// A unique-visitor key (see [`key_prefix`]), from the hash of its site and day.
fn unique_key_after(prefix: u64, dim: Dim, value: &str, visitor: i64) -> i64 {
    let h = fnv1a(prefix, &[dim as u8]);
    let h = fnv1a(h, &(value.len() as u64).to_le_bytes());
    let h = fnv1a(h, value.as_bytes());
    fnv1a(h, &visitor.to_le_bytes()) as i64
}

fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

pub use crate::model::ENGAGEMENT;

const ONE_VISIT: Counts = Counts {
    visitors: 0,
    visits: 1,
    pageviews: 0,
    events: 0,
    bounces: 0,
    duration_ms: 0,
    scroll_sum: 0,
    scroll_n: 0,
    engaged_ms: 0,
};

impl Sessions {
    pub fn new(timeout_ms: Millis) -> Self {
        Sessions {
            open: HashMap::default(),
            timeout_ms,
            touched: Vec::new(),
            seq: crate::enrich::visitor::random_id(),
            cap: usize::MAX,
            cut: 0,
        }
    }

    /// Bounds the open sessions held in memory (`ingest.max_open_sessions`).
    pub fn with_cap(mut self, cap: usize) -> Self {
        self.cap = cap.max(10);
        self
    }

    /// Past the bound, ends the sessions idle longest (down to 90 % of it), so memory
    /// stays bounded under any visitor churn. A visitor whose session ended this way
    /// starts a new visit if they come back within the timeout — the only effect, and
    /// counted in `pixeltrack_sessions_cut_total`. Sessions changed since the last
    /// write of derived rows stay (their rows are not stored yet).
    fn trim(&mut self) {
        let keep = self.cap / 10 * 9;
        let mut idle: Vec<(Millis, (i64, i64))> = self
            .open
            .iter()
            .filter(|(_, o)| !o.touched)
            .map(|(k, o)| (o.row.last_ms, *k))
            .collect();
        let excess = self.open.len().saturating_sub(keep).min(idle.len());
        if excess == 0 {
            return;
        }
        idle.select_nth_unstable(excess - 1);
        for (_, k) in &idle[..excess] {
            self.open.remove(k);
        }
        self.cut += excess as u64;
    }

    /// Re-opens sessions that were open when the process stopped. A visit of one hit
    /// may have no start row (see [`Open::hand_over`]): its start is written again
    /// when it goes on (an upsert that changes nothing where the row is stored).
    pub fn resume(&mut self, rows: Vec<SessionRow>) {
        for row in rows {
            let bounced = row.events <= 1;
            let key = (row.site_id, row.visitor_id);
            let start_written = !row.ends_at_start();
            self.open.insert(
                key,
                Open {
                    row,
                    bounced,
                    touched: false,
                    start_written,
                    named: false,
                },
            );
        }
    }

    /// Forgets sessions idle for longer than the timeout.
    pub fn evict_idle(&mut self, now: Millis) {
        let timeout = self.timeout_ms;
        self.open
            .retain(|_, o| o.touched || now - o.row.last_ms <= timeout);
    }

    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn timeout_ms(&self) -> Millis {
        self.timeout_ms
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// A new session's id: its start time in the high bits and a per-writer sequence
    /// (from a random start) in the low 20, so ids are unique and grow with time — the
    /// sessions table appends and its recent rows share pages, instead of scattering.
    fn new_id(&mut self, start_ms: Millis) -> i64 {
        self.seq = self.seq.wrapping_add(1);
        (start_ms.max(0) << 20) | (self.seq & 0xF_FFFF)
    }

    /// The visitor's visit `e` belongs to, if it is open: `e` comes within the timeout
    /// of its last event. A replayed event (it has its session id already) follows the
    /// decision made when it was first written, whatever this memory holds now.
    fn open_visit(&self, e: &Event) -> Option<&Open> {
        self.open.get(&(e.site_id, e.visitor_id)).filter(|o| {
            e.ts_ms - o.row.last_ms <= self.timeout_ms
                && (e.session_id == 0 || e.session_id == o.row.id)
        })
    }

    /// Stamps `e` with its session and adds its counts to `batch`. `seen` holds the
    /// unique-visitor keys counted already; a key new to it adds a visitor to its row.
    pub fn track(&mut self, e: &mut Event, batch: &mut Derived, seen: &mut SeenKeys) {
        // Email opens/clicks and ad impressions/clicks are reported per campaign, not
        // as web traffic.
        if e.is_campaign_traffic() {
            return;
        }
        let hour = hour_of(e.ts_ms);
        let day = day_of(e.ts_ms);
        if let Some(reason) = e.bot {
            let c = Counts {
                events: 1,
                ..Counts::default()
            };
            add(batch, e.site_id, Dim::Bot, hour, reason.as_str(), c);
            add(batch, e.site_id, Dim::BotSource, hour, &e.source, c);
            add(batch, e.site_id, Dim::BotPage, hour, &e.path, c);
            return;
        }
        let pv = e.is_pageview();
        if e.name == ENGAGEMENT {
            // Scroll depth and visible time of a page view: page-level averages, nothing
            // else (it is not an interaction: it does not end a bounce, and leaves its
            // visit as it is). It carries its visit's id while the visit is open, so a
            // filter by the visit's values (source, entry page…) finds it.
            if let Some(id) = self.open_visit(e).map(|o| o.row.id) {
                e.session_id = id;
                let key = (e.site_id, e.visitor_id);
                let o = self.open.get_mut(&key).expect("found above");
                if !o.start_written && !o.named {
                    o.named = true;
                    if !o.touched {
                        o.touched = true;
                        self.touched.push(key);
                    }
                }
            }
            let c = Counts {
                scroll_sum: e.scroll_pct.unwrap_or(0),
                scroll_n: i64::from(e.scroll_pct.is_some()),
                engaged_ms: e.engaged_ms.unwrap_or(0),
                ..Counts::default()
            };
            add(batch, e.site_id, Dim::Total, hour, "", c);
            add(batch, e.site_id, Dim::Page, hour, &e.path, c);
            return;
        }
        if e.visitor_id == 0 {
            // An anonymous hit (no consent, GPC): counted, but no visitor and no visit.
            let c = Counts {
                pageviews: i64::from(pv),
                events: i64::from(!pv),
                ..Counts::default()
            };
            add(batch, e.site_id, Dim::Total, hour, "", c);
            for (d, v) in SESSION_DIMS.iter().zip(session_values(e)) {
                add(batch, e.site_id, *d, hour, v, c);
            }
            if pv {
                add(batch, e.site_id, Dim::Page, hour, &e.path, c);
                add(batch, e.site_id, Dim::Title, hour, &e.title, c);
                if let Some(s) = ScreenSize::of(e.screen_width) {
                    add(batch, e.site_id, Dim::Screen, hour, s.name(), c);
                }
            } else {
                for (d, v) in custom_event_rows(e) {
                    add(batch, e.site_id, d, hour, &v, c);
                }
            }
            return;
        }
        let key = (e.site_id, e.visitor_id);
        let live = self.open_visit(e).is_some();

        // A visit's own values (and the total) are the same for each of its events: once
        // one of its events on this day has checked their unique-visitor keys, the others
        // of the same day find them seen (or, past the memory bound, the store does), so
        // they are not checked again — the same counts for a fraction of the lookups.
        let mut visit_keys_checked = false;
        // What the visit adds to its total and session-value rows, at its start hour:
        // added below in one step with the event's own counts when the hours agree (one
        // table lookup per row instead of two or three).
        let mut visit_rows = (hour, Counts::default());
        if live {
            let o = self.open.get_mut(&key).expect("checked above");
            visit_keys_checked = day_of(o.row.last_ms) == day;
            let start_hour = hour_of(o.row.start_ms);
            let delta = (e.ts_ms - o.row.last_ms).max(0);
            o.row.last_ms = o.row.last_ms.max(e.ts_ms);
            o.row.events += 1;
            let mut visit = Counts {
                duration_ms: delta,
                ..Counts::default()
            };
            if o.bounced {
                visit.bounces = -1;
                o.bounced = false;
            }
            if visit != Counts::default() {
                visit_rows = (start_hour, visit);
                // The entry page as it is before this event (set by the first page view).
                if !o.row.entry_page.is_empty() {
                    add(
                        batch,
                        e.site_id,
                        Dim::EntryPage,
                        start_hour,
                        &o.row.entry_page,
                        visit,
                    );
                }
            }
            if pv {
                o.row.pageviews += 1;
                if o.row.entry_page.is_empty() {
                    o.row.entry_page = e.path.clone();
                    o.start_written = false;
                    add(
                        batch,
                        e.site_id,
                        Dim::EntryPage,
                        start_hour,
                        &e.path,
                        ONE_VISIT,
                    );
                }
                if o.row.exit_page != e.path {
                    let minus = Counts {
                        visits: -1,
                        ..Counts::default()
                    };
                    add(
                        batch,
                        e.site_id,
                        Dim::ExitPage,
                        start_hour,
                        &o.row.exit_page,
                        minus,
                    );
                    o.row.exit_page = e.path.clone();
                    add(
                        batch,
                        e.site_id,
                        Dim::ExitPage,
                        start_hour,
                        &e.path,
                        ONE_VISIT,
                    );
                }
            }
            e.session_id = o.row.id;
        } else {
            let page = if pv { e.path.clone() } else { String::new() };
            let row = SessionRow {
                // A replayed event (see `EventWriter::recover`) keeps the id it was
                // stored with; a new one gets a fresh id.
                id: if e.session_id != 0 {
                    e.session_id
                } else {
                    self.new_id(e.ts_ms)
                },
                site_id: e.site_id,
                visitor_id: e.visitor_id,
                start_ms: e.ts_ms,
                last_ms: e.ts_ms,
                pageviews: i64::from(pv),
                events: 1,
                entry_page: page.clone(),
                exit_page: page,
                dims: Dims::new(session_values(e)),
            };
            let visit = Counts {
                visits: 1,
                bounces: 1,
                ..Counts::default()
            };
            visit_rows = (hour, visit);
            if !row.entry_page.is_empty() {
                add(
                    batch,
                    e.site_id,
                    Dim::EntryPage,
                    hour,
                    &row.entry_page,
                    visit,
                );
            }
            add(
                batch,
                e.site_id,
                Dim::ExitPage,
                hour,
                &row.exit_page,
                ONE_VISIT,
            );
            e.session_id = row.id;
            if self.open.len() >= self.cap {
                self.trim();
            }
            // A stale session of the same visitor (a gap past the timeout) ends here.
            // If this batch changed it, its row is written now: `finish_batch` will
            // only see the new one (both visits in one batch: an import, the demo).
            let touched = match self.open.remove(&key) {
                Some(mut old) if old.touched => {
                    old.hand_over(batch);
                    true
                }
                _ => false,
            };
            self.open.insert(
                key,
                Open {
                    row,
                    bounced: true,
                    touched,
                    start_written: false,
                    named: false,
                },
            );
        }

        // Event-level counts, at the event's hour.
        let o = self.open.get_mut(&key).expect("inserted or found above");
        if !o.touched {
            o.touched = true;
            self.touched.push(key);
        }
        let c = if pv {
            Counts {
                pageviews: 1,
                ..Counts::default()
            }
        } else {
            Counts {
                events: 1,
                ..Counts::default()
            }
        };
        let one_visitor = Counts {
            visitors: 1,
            ..Counts::default()
        };
        let (visit_hour, visit) = visit_rows;
        let folded = if visit_hour == hour {
            visit
        } else {
            // A visit that began in an earlier hour: its rows at that hour.
            if visit != Counts::default() {
                add(batch, e.site_id, Dim::Total, visit_hour, "", visit);
                for (d, v) in SESSION_DIMS.iter().zip(o.row.dims.iter()) {
                    add(batch, e.site_id, *d, visit_hour, v, visit);
                }
            }
            Counts::default()
        };
        let prefix = key_prefix(e.site_id, day);
        let mut each = |d: Dim, v: &str, checked: bool, extra: &Counts| {
            if skip_empty(d, v) {
                return;
            }
            let mut row = c;
            row.add(extra);
            if !checked {
                let k = unique_key_after(prefix, d, v, e.visitor_id);
                match seen.first(day, e.visitor_id, k) {
                    Seen::Yes => {}
                    Seen::First => {
                        row.add(&one_visitor);
                        batch.new_keys.push((day, k));
                    }
                    Seen::Full => batch.overflow.push(UniqueCandidate {
                        day,
                        visitor: e.visitor_id,
                        key: k,
                        rollup: RollupKey {
                            site_id: e.site_id,
                            dim: d,
                            hour,
                            value: v.to_owned(),
                        },
                    }),
                }
            }
            batch.rollups.add(e.site_id, d, hour, v, &row);
        };
        let none = Counts::default();
        each(Dim::Total, "", visit_keys_checked, &folded);
        for (d, v) in SESSION_DIMS.iter().zip(o.row.dims.iter()) {
            each(*d, v, visit_keys_checked, &folded);
        }
        if pv {
            each(Dim::Page, &e.path, false, &none);
            each(Dim::Title, &e.title, false, &none);
            if let Some(s) = ScreenSize::of(e.screen_width) {
                each(Dim::Screen, s.name(), false, &none);
            }
        } else {
            for (d, v) in custom_event_rows(e) {
                each(d, &v, false, &none);
            }
        }
    }

    /// Ends the batch: adds the rows of every session it changed.
    pub fn finish_batch(&mut self, batch: &mut Derived) {
        batch.sessions.reserve(self.touched.len());
        for key in self.touched.drain(..) {
            if let Some(o) = self.open.get_mut(&key) {
                o.touched = false;
                o.hand_over(batch);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::HOUR_MS;
    use crate::model::BotReason;

    const T0: Millis = 1_700_000_000_000 / HOUR_MS * HOUR_MS;
    const MIN: Millis = 60_000;

    fn ev(visitor: i64, ts: Millis, name: &str, path: &str) -> Event {
        Event {
            site_id: 1,
            ts_ms: ts,
            name: name.into(),
            visitor_id: visitor,
            path: path.into(),
            source: "news".into(),
            ..Event::default()
        }
    }

    fn track(s: &mut Sessions, e: &mut Event, b: &mut Derived) {
        s.track(e, b, &mut SeenKeys::default());
    }

    fn total(b: &Derived, dim: Dim, value: &str) -> Counts {
        let mut c = Counts::default();
        for (k, v) in b.rollups.iter() {
            if k.dim == dim && k.value == value {
                c.add(v);
            }
        }
        c
    }

    /// One write's worth of `events`: what it hands over to the store.
    fn batch(s: &mut Sessions, events: &mut [Event]) -> Derived {
        let mut b = Derived::default();
        for e in events.iter_mut() {
            track(s, e, &mut b);
        }
        s.finish_batch(&mut b);
        b
    }

    #[test]
    fn a_start_row_is_written_once_when_its_visit_goes_on_or_its_entry_page_comes() {
        let mut s = Sessions::new(30 * MIN);
        let mut first = [ev(7, T0, "pageview", "/a"), ev(8, T0, "signup", "")];
        let b = batch(&mut s, &mut first);
        let (seven, eight) = (first[0].session_id, first[1].session_id);
        assert_eq!(b.sessions.len(), 2, "both visits are handed over");
        assert_eq!(
            b.starts_skipped,
            [seven, eight].into(),
            "a visit of one event has no row: readers take its start from that event"
        );
        let b = batch(
            &mut s,
            &mut [
                ev(7, T0 + MIN, "pageview", "/b"),
                ev(8, T0 + MIN, "pageview", "/c"),
            ],
        );
        assert_eq!(b.sessions.len(), 2, "both ends moved");
        assert!(
            b.starts_skipped.is_empty(),
            "both visits went on: their starts are written now"
        );
        let b = batch(&mut s, &mut [ev(8, T0 + 2 * MIN, "pageview", "/d")]);
        assert_eq!(b.starts_skipped, [eight].into(), "8's start is as written");
        // After a restart, the sessions read back from the store: a visit that went on
        // is written already.
        let mut resumed = Sessions::new(30 * MIN);
        resumed.resume(b.sessions.clone());
        let b = batch(&mut resumed, &mut [ev(8, T0 + 3 * MIN, "pageview", "/e")]);
        assert_eq!(b.starts_skipped, [eight].into());
        // A visit of one hit read back (from its event): written when it goes on.
        let mut one = [ev(9, T0, "pageview", "/f")];
        let b = batch(&mut s, &mut one);
        assert_eq!(b.starts_skipped, [one[0].session_id].into());
        let mut resumed = Sessions::new(30 * MIN);
        resumed.resume(b.sessions.clone());
        let mut next = [ev(9, T0 + MIN, "pageview", "/g")];
        let b = batch(&mut resumed, &mut next);
        assert_eq!(next[0].session_id, one[0].session_id, "the visit goes on");
        assert!(b.starts_skipped.is_empty(), "its start is written now");
    }

    #[test]
    fn an_engagement_naming_a_visit_of_one_hit_writes_its_start() {
        let mut s = Sessions::new(30 * MIN);
        let mut hit = [ev(7, T0, "pageview", "/a")];
        let b = batch(&mut s, &mut hit);
        assert_eq!(b.starts_skipped, [hit[0].session_id].into());
        // The engagement carries the visit's id: readers could no longer take the
        // visit's start from its one event, so the start row is written.
        let mut e = [ev(7, T0 + MIN, ENGAGEMENT, "/a")];
        let b = batch(&mut s, &mut e);
        assert_eq!(e[0].session_id, hit[0].session_id);
        assert_eq!(b.sessions.len(), 1, "the visit is handed over again");
        assert!(
            b.sessions[0].ends_at_start(),
            "and is still a visit of one hit"
        );
        assert!(b.starts_skipped.is_empty(), "its start row is written");
        // Once written, a second engagement changes nothing.
        let b = batch(&mut s, &mut [ev(7, T0 + 2 * MIN, ENGAGEMENT, "/a")]);
        assert!(b.sessions.is_empty());
    }

    #[test]
    fn one_pageview_is_a_bounced_visit() {
        let mut s = Sessions::new(30 * MIN);
        let mut b = Derived::default();
        let mut e = ev(7, T0, "pageview", "/a");
        track(&mut s, &mut e, &mut b);
        assert_ne!(e.session_id, 0);
        let t = total(&b, Dim::Total, "");
        assert_eq!((t.visits, t.bounces, t.pageviews), (1, 1, 1));
        assert_eq!(total(&b, Dim::EntryPage, "/a").visits, 1);
        assert_eq!(total(&b, Dim::ExitPage, "/a").visits, 1);
        assert_eq!(total(&b, Dim::Source, "news").visits, 1);
    }

    #[test]
    fn second_pageview_unbounces_moves_exit_and_adds_duration() {
        let mut s = Sessions::new(30 * MIN);
        let mut b = Derived::default();
        let mut a = ev(7, T0, "pageview", "/a");
        let mut c = ev(7, T0 + 5 * MIN, "pageview", "/b");
        track(&mut s, &mut a, &mut b);
        track(&mut s, &mut c, &mut b);
        assert_eq!(a.session_id, c.session_id);
        let t = total(&b, Dim::Total, "");
        assert_eq!(
            (t.visits, t.bounces, t.pageviews, t.duration_ms),
            (1, 0, 2, 5 * MIN)
        );
        assert_eq!(total(&b, Dim::ExitPage, "/a").visits, 0);
        assert_eq!(total(&b, Dim::ExitPage, "/b").visits, 1);
        assert_eq!(total(&b, Dim::EntryPage, "/a").visits, 1);
        s.finish_batch(&mut b);
        assert_eq!(b.sessions.len(), 1);
        assert_eq!(b.sessions[0].pageviews, 2);
    }

    #[test]
    fn thirty_minutes_of_silence_ends_a_session() {
        let mut s = Sessions::new(30 * MIN);
        let mut b = Derived::default();
        let mut a = ev(7, T0, "pageview", "/a");
        let mut c = ev(7, T0 + 31 * MIN, "pageview", "/a");
        track(&mut s, &mut a, &mut b);
        track(&mut s, &mut c, &mut b);
        assert_ne!(a.session_id, c.session_id);
        let t = total(&b, Dim::Total, "");
        assert_eq!((t.visits, t.bounces), (2, 2));
        s.finish_batch(&mut b);
        s.evict_idle(T0 + 62 * MIN);
        assert!(s.is_empty());
    }

    #[test]
    fn custom_events_count_as_events_not_pageviews() {
        let mut s = Sessions::new(30 * MIN);
        let mut b = Derived::default();
        track(&mut s, &mut ev(7, T0, "pageview", "/a"), &mut b);
        track(&mut s, &mut ev(7, T0 + MIN, "signup", "/a"), &mut b);
        let t = total(&b, Dim::Total, "");
        assert_eq!((t.pageviews, t.events, t.bounces), (1, 1, 0));
        assert_eq!(total(&b, Dim::Event, "signup").events, 1);
    }

    #[test]
    fn past_the_bound_the_longest_idle_sessions_end_first() {
        let mut s = Sessions::new(30 * MIN).with_cap(10);
        let mut b = Derived::default();
        for v in 1..=10 {
            track(&mut s, &mut ev(v, T0 + v * 1000, "pageview", "/a"), &mut b);
        }
        s.finish_batch(&mut b);
        // Visitor 1 comes back: the freshest session of all.
        track(&mut s, &mut ev(1, T0 + 60_000, "pageview", "/b"), &mut b);
        s.finish_batch(&mut b);
        // The bound is reached: down to 9 (visitor 2, idle longest, ends), then the new one.
        track(&mut s, &mut ev(11, T0 + 61_000, "pageview", "/a"), &mut b);
        assert_eq!((s.cut, s.len()), (1, 10));
        assert!(!s.open.contains_key(&(1, 2)), "visitor 2 was idle longest");
        assert!(s.open.contains_key(&(1, 1)), "the returning visitor stays");
        assert!(s.open.contains_key(&(1, 11)));
    }

    #[test]
    fn bots_only_count_under_bot() {
        let mut s = Sessions::new(30 * MIN);
        let mut b = Derived::default();
        let mut e = ev(7, T0, "pageview", "/a");
        e.bot = Some(BotReason::Crawler);
        track(&mut s, &mut e, &mut b);
        assert_eq!(e.session_id, 0);
        assert_eq!(total(&b, Dim::Bot, "crawler").events, 1);
        assert_eq!(total(&b, Dim::Total, ""), Counts::default());
        assert!(b.new_keys.is_empty());
    }

    #[test]
    fn two_visits_of_one_visitor_in_one_batch_both_keep_their_rows() {
        let mut s = Sessions::new(30 * MIN);
        let mut b = Derived::default();
        track(&mut s, &mut ev(7, T0, "pageview", "/a"), &mut b);
        track(&mut s, &mut ev(7, T0 + MIN, "pageview", "/b"), &mut b);
        // Back two hours later: a second visit, in the same batch.
        track(&mut s, &mut ev(7, T0 + 120 * MIN, "pageview", "/c"), &mut b);
        s.finish_batch(&mut b);
        let mut rows: Vec<(String, String, i64)> = b
            .sessions
            .iter()
            .map(|r| (r.entry_page.clone(), r.exit_page.clone(), r.pageviews))
            .collect();
        rows.sort();
        assert_eq!(
            rows,
            [("/a".into(), "/b".into(), 2), ("/c".into(), "/c".into(), 1)]
        );
    }

    #[test]
    fn page_views_count_under_their_screen_size_once_per_visitor() {
        let mut s = Sessions::new(30 * MIN);
        let mut b = Derived::default();
        let mut seen = SeenKeys::default();
        let mut track = |s: &mut Sessions, e: &mut Event, b: &mut Derived| s.track(e, b, &mut seen);
        let mut a = ev(7, T0, "pageview", "/a");
        a.screen_width = Some(390);
        track(&mut s, &mut a, &mut b);
        let mut a2 = ev(7, T0 + MIN, "pageview", "/b");
        a2.screen_width = Some(390);
        track(&mut s, &mut a2, &mut b);
        let mut d = ev(8, T0, "pageview", "/a");
        d.screen_width = Some(1920);
        track(&mut s, &mut d, &mut b);
        // No width (a plain pixel), and a custom event: no screen row.
        track(&mut s, &mut ev(9, T0, "pageview", "/a"), &mut b);
        let mut x = ev(7, T0 + 2 * MIN, "signup", "/b");
        x.screen_width = Some(390);
        track(&mut s, &mut x, &mut b);
        let phone = total(&b, Dim::Screen, "phone");
        assert_eq!((phone.visitors, phone.pageviews, phone.events), (1, 2, 0));
        let desktop = total(&b, Dim::Screen, "desktop");
        assert_eq!((desktop.visitors, desktop.pageviews), (1, 1));
        let all: i64 = b
            .rollups
            .iter()
            .filter(|(k, _)| k.dim == Dim::Screen)
            .map(|(_, v)| v.pageviews)
            .sum();
        assert_eq!(all, 3);
    }

    #[test]
    fn anonymous_hits_count_without_visitors_or_visits() {
        let mut s = Sessions::new(30 * MIN);
        let mut b = Derived::default();
        let mut e = ev(0, T0, "pageview", "/a");
        track(&mut s, &mut e, &mut b);
        track(&mut s, &mut ev(0, T0 + MIN, "pageview", "/a"), &mut b);
        assert_eq!(e.session_id, 0);
        let t = total(&b, Dim::Total, "");
        assert_eq!((t.pageviews, t.visits, t.visitors, t.bounces), (2, 0, 0, 0));
        assert_eq!(total(&b, Dim::Page, "/a").pageviews, 2);
        assert!(b.new_keys.is_empty() && s.is_empty());
    }

    #[test]
    fn engagement_feeds_page_averages_and_nothing_else() {
        let mut s = Sessions::new(30 * MIN);
        let mut b = Derived::default();
        track(&mut s, &mut ev(7, T0, "pageview", "/a"), &mut b);
        let mut e = ev(7, T0 + MIN, ENGAGEMENT, "/a");
        e.scroll_pct = Some(90);
        e.engaged_ms = Some(30_000);
        track(&mut s, &mut e, &mut b);
        let page = total(&b, Dim::Page, "/a");
        assert_eq!(
            (
                page.scroll_sum,
                page.scroll_n,
                page.engaged_ms,
                page.pageviews
            ),
            (90, 1, 30_000, 1)
        );
        let t = total(&b, Dim::Total, "");
        assert_eq!(
            (t.events, t.bounces),
            (0, 1),
            "engagement is no interaction"
        );
        // It carries its open visit's id (filters by the visit's values find it); past
        // the visit's timeout it has none.
        let visit = s.open[&(1, 7)].row.clone();
        assert_eq!(e.session_id, visit.id);
        assert_eq!((visit.events, visit.last_ms), (1, T0));
        let mut late = ev(7, T0 + 31 * MIN, ENGAGEMENT, "/a");
        track(&mut s, &mut late, &mut b);
        assert_eq!(late.session_id, 0);
    }

    #[test]
    fn outbound_downloads_and_props_get_rows() {
        let mut s = Sessions::new(30 * MIN);
        let mut b = Derived::default();
        let mut e = ev(7, T0, "outbound", "/a");
        e.props = r#"{"url":"https://other.example/x"}"#.into();
        track(&mut s, &mut e, &mut b);
        let mut d = ev(7, T0 + 1, "signup", "/a");
        d.props = r#"{"plan":"pro"}"#.into();
        track(&mut s, &mut d, &mut b);
        assert_eq!(
            total(&b, Dim::Outbound, "https://other.example/x").events,
            1
        );
        assert_eq!(total(&b, Dim::EventProp, "signup: plan=pro").events, 1);
        assert_eq!(total(&b, Dim::Event, "signup").events, 1);
    }

    fn unique_key(site_id: i64, day: i64, dim: Dim, value: &str, visitor: i64) -> i64 {
        unique_key_after(key_prefix(site_id, day), dim, value, visitor)
    }

    #[test]
    fn unique_keys_differ_by_every_part() {
        // The keys stored by every build so far: a change of the hash would count
        // today's visitors again after an upgrade.
        assert_eq!(
            unique_key(1, 2, Dim::Page, "/a", 9),
            2_395_058_353_067_163_282
        );
        assert_eq!(
            unique_key(7, 20_400, Dim::ExitPage, "www.google.com", -123_456_789),
            2_019_984_225_610_646_192
        );
        let k = unique_key(1, 2, Dim::Page, "/a", 9);
        assert_eq!(k, unique_key(1, 2, Dim::Page, "/a", 9));
        for other in [
            unique_key(2, 2, Dim::Page, "/a", 9),
            unique_key(1, 3, Dim::Page, "/a", 9),
            unique_key(1, 2, Dim::Source, "/a", 9),
            unique_key(1, 2, Dim::Page, "/b", 9),
            unique_key(1, 2, Dim::Page, "/a", 8),
        ] {
            assert_ne!(k, other);
        }
    }
}
