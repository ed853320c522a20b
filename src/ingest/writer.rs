//! The writer's state: sessions, the seen-visitor keys, the derived rows not written
//! yet and the SQLite writer connection — everything that turns events into committed
//! transactions, and decides when derived rows are written ([`Index`]). The writer
//! thread (`ingest::start`) owns one; the `demo` command drives one directly.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock::Millis;
use crate::metrics::Metrics;
use crate::model::{DropReason, Event};
use crate::store::sqlite::{ImportKey, SqliteWriter};
use crate::store::{Derived, Reclassify};

use super::sessions::Sessions;
use super::uniques::SeenKeys;

/// When the derived rows of committed events are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Index {
    /// In the same transaction as the events (the writer is idle, or stopping).
    Now,
    /// With a later batch, unless the pending rows are older or more than the bounds.
    Later,
}

/// Sessions, the seen-visitor filter, the derived rows not written yet and the writer
/// connection: everything that turns events into committed transactions. The writer
/// thread owns one; the `demo` command drives one directly.
pub struct EventWriter {
    sqlite: SqliteWriter,
    sessions: Sessions,
    seen: SeenKeys,
    pub(super) metrics: Arc<Metrics>,
    /// Derived rows of committed events, not written yet.
    pending: Derived,
    /// When `pending` got its first rows.
    pending_since: Option<Instant>,
    /// Bounds on `pending`: its age and its size.
    index_interval: Duration,
    index_max_rows: usize,
    /// Bound of the unique-visitor keys held in memory (see `uniques`).
    max_unique_keys: usize,
    /// The days whose new unique-visitor keys are stored (`None`: every day). A key
    /// can only recur in another process on a day whose salt is stored: an import's
    /// other days have a salt of its own run, so their keys are counted in memory and
    /// never written.
    key_days: Option<std::collections::HashSet<i64>>,
    /// Bound of the open sessions held in memory (see `Sessions::trim`).
    max_open_sessions: usize,
    /// Below this rate a pause in the load writes the derived rows at once.
    light_load_per_second: u64,
    /// A conversion repeating an order id counted this recently is a duplicate.
    dedupe_window_ms: Millis,
    /// When order ids past the window were last deleted.
    orders_pruned_ms: Millis,
    /// The newest event time seen: "now" for a recovery after a failed batch.
    latest_ms: Millis,
    /// Events committed in the current and the previous load window.
    window: (Instant, u64, u64),
    /// A write failed: the in-memory state must be rebuilt before the next one.
    needs_recovery: bool,
    failing: Failing,
    /// With forwarding: the most committed events that may wait to be shipped.
    spool_max: Option<i64>,
    /// The unique-key bound was reached and said so in the log (until keys free up).
    keys_full_said: bool,
    /// Uncertain email clicks waiting for a landing pageview.
    landings: super::landing::Landings,
    /// Import: a batch sessionized, its derived rows gathered, not written yet (see
    /// [`write_imported`](Self::write_imported)).
    held: Option<Held>,
}

/// A batch ready to be written in one transaction: what `commit_with` would apply.
struct Held {
    events: Vec<Event>,
    reclassify: Vec<Reclassify>,
    keys: Vec<ImportKey>,
    derived: Derived,
}

impl Held {
    /// Commits the batch with its import keys and derived rows, in one transaction.
    fn write(&mut self, sqlite: &mut SqliteWriter) -> crate::store::Result<()> {
        sqlite.reserve_ids(false);
        sqlite.apply_imported(
            &self.events,
            &self.reclassify,
            &self.keys,
            Some(&mut self.derived),
        )
    }
}

/// Load is measured over windows this long (see `ingest.light_load_per_second`).
const LOAD_WINDOW: Duration = Duration::from_millis(100);

/// Drops the new unique-visitor keys of days whose keys are not stored.
fn drop_unstored_keys(days: &Option<std::collections::HashSet<i64>>, d: &mut Derived) {
    if let Some(days) = days {
        d.new_keys.retain(|(day, _)| days.contains(day));
    }
}

impl EventWriter {
    pub fn new(sqlite: SqliteWriter, session_timeout_ms: Millis, metrics: Arc<Metrics>) -> Self {
        EventWriter {
            sqlite,
            sessions: Sessions::new(session_timeout_ms),
            landings: Default::default(),
            seen: SeenKeys::default(),
            metrics,
            pending: Derived::default(),
            pending_since: None,
            index_interval: Duration::from_secs(1),
            index_max_rows: 200_000,
            max_unique_keys: usize::MAX,
            key_days: None,
            max_open_sessions: usize::MAX,
            light_load_per_second: 1_000,
            dedupe_window_ms: 30 * crate::clock::DAY_MS,
            orders_pruned_ms: 0,
            latest_ms: 0,
            window: (Instant::now(), 0, 0),
            needs_recovery: false,
            failing: Failing::default(),
            spool_max: None,
            keys_full_said: false,
            held: None,
        }
    }

    /// With forwarding on: past `max` committed events not shipped yet, hits are
    /// refused as `spool_full` (the forwarder clears it as it ships).
    /// The real writer on `store` with the default session timeout: events written
    /// with their visits and rollups, as the server writes them.
    #[cfg(test)]
    pub(crate) fn for_tests(store: &crate::store::SqliteStore) -> Self {
        let w = store
            .writer(crate::config::Synchronous::Normal)
            .expect("a writer");
        Self::new(w, 30 * 60_000, Arc::new(Metrics::default()))
    }

    pub fn with_spool_bound(mut self, max: u64) -> Self {
        self.spool_max = Some(max as i64);
        self
    }

    /// Stores new unique-visitor keys only of `days` (those whose salt is stored).
    pub fn with_stored_key_days(mut self, days: impl IntoIterator<Item = i64>) -> Self {
        self.key_days = Some(days.into_iter().collect());
        self
    }

    pub fn with_dedupe_window(mut self, ms: Millis) -> Self {
        self.dedupe_window_ms = ms;
        self
    }

    /// Bounds the unique-visitor keys and the open sessions held in memory; applies
    /// from the next `recover`.
    pub fn with_memory_bounds(mut self, unique_keys: usize, open_sessions: usize) -> Self {
        self.max_unique_keys = unique_keys.max(1);
        self.max_open_sessions = open_sessions;
        self
    }

    /// How long and how large derived rows may wait under load, and below which rate
    /// a pause writes them at once.
    pub fn with_index_bounds(
        mut self,
        interval: Duration,
        max_rows: usize,
        light_load_per_second: u64,
    ) -> Self {
        self.index_interval = interval;
        self.index_max_rows = max_rows.max(1);
        self.light_load_per_second = light_load_per_second;
        self
    }

    /// Drops conversions whose (site, order id) was counted within the window — in
    /// this batch or before (like Meta's Conversions API does with event ids). A page
    /// reload on the thank-you page then counts once.
    fn dedupe_orders(&self, events: &mut Vec<Event>) {
        let mut fresh = HashSet::new();
        events.retain(|e| {
            if e.name != crate::enrich::CONVERSION || e.order_id.is_empty() {
                return true;
            }
            let again = !fresh.insert((e.site_id, e.order_id.clone()))
                || self
                    .sqlite
                    .order_counted(e.site_id, &e.order_id, e.ts_ms - self.dedupe_window_ms)
                    .unwrap_or_else(|err| {
                        tracing::error!(error = %err, "order lookup failed; counting the conversion");
                        false
                    });
            if again {
                self.metrics.dropped(DropReason::Duplicate);
            }
            !again
        });
    }

    /// Rebuilds the in-memory state from the store, exactly as it was after the last
    /// committed derived rows, then replays the events committed since (a crash or a
    /// failed write left them unindexed) and writes their derived rows. Called at
    /// start and after a failed batch. Returns how many events were replayed.
    pub fn recover(&mut self, now: Millis) -> crate::store::Result<usize> {
        self.pending = Derived::default();
        self.pending_since = None;
        let spilled = self.load_keys()?;
        if spilled > 0 {
            tracing::warn!(
                keys = spilled,
                bound = self.max_unique_keys,
                "unique-visitor keys past ingest.max_unique_keys: the store decides them"
            );
        }
        let unindexed = self.sqlite.unindexed_events()?;
        let first = unindexed.first().map_or(now, |e| e.ts_ms.min(now));
        self.sessions = Sessions::new(self.sessions.timeout_ms()).with_cap(self.max_open_sessions);
        self.sessions.resume(
            self.sqlite
                .recent_sessions(first - self.sessions.timeout_ms())?,
        );
        let n = unindexed.len();
        for mut e in unindexed {
            self.sessions
                .track(&mut e, &mut self.pending, &mut self.seen);
        }
        self.sessions.finish_batch(&mut self.pending);
        self.sqlite.reserve_ids(false);
        self.sqlite.apply(&[], &[], Some(&mut self.pending))?;
        self.indexed();
        if n > 0 {
            tracing::info!(events = n, "derived rows rebuilt from unindexed events");
        }
        Ok(n)
    }

    /// The number of the last hit log record whose events are committed.
    pub fn logged(&self) -> crate::store::Result<u64> {
        self.sqlite.logged()
    }

    /// Commits `events` as [`commit`](Self::commit) does, with the hit log's records up
    /// to `seq` marked committed in the same transaction (`None`: no record among them).
    /// Leaves `events` empty with its room, for the caller to fill again: the indexer's
    /// hold of a few thousand events, allocated anew each time, cost 7 % of its thread
    /// in page faults (docs/benchmarks.md).
    pub fn commit_logged(
        &mut self,
        events: &mut Vec<Event>,
        reclassify: Vec<Reclassify>,
        index: Index,
        seq: Option<u64>,
    ) -> bool {
        if let Some(seq) = seq {
            self.sqlite.log_mark(seq);
        }
        let ok = self.commit_with(events, reclassify, &[], index);
        events.clear();
        // Not left for a later transaction whatever happened to this one.
        self.sqlite.forget_log_mark();
        ok
    }

    pub fn pending_is_empty(&self) -> bool {
        self.pending_since.is_none()
    }

    /// Below `light_load_per_second` in the current and the last load window: a
    /// light load, whose pauses write the derived rows at once.
    pub fn light_load(&mut self) -> bool {
        self.count_load(0);
        let per_window = self.light_load_per_second / (1_000 / LOAD_WINDOW.as_millis() as u64);
        self.window.2 < per_window && self.window.1 < per_window
    }

    fn count_load(&mut self, events: u64) {
        let (start, now, prev) = &mut self.window;
        let elapsed = start.elapsed();
        if elapsed >= LOAD_WINDOW {
            *prev = if elapsed >= 2 * LOAD_WINDOW { 0 } else { *now };
            *now = 0;
            *start = Instant::now();
        }
        *now += events;
    }

    /// The pending rows were committed.
    fn indexed(&mut self) {
        self.pending.clear();
        self.pending_since = None;
    }

    pub fn evict_idle(&mut self, now: Millis) {
        self.sessions.evict_idle(now);
        // Hourly: order ids older than the dedupe window can no longer match anything.
        if now - self.orders_pruned_ms >= crate::clock::HOUR_MS {
            self.orders_pruned_ms = now;
            if let Err(e) = self.sqlite.prune_orders(now - self.dedupe_window_ms) {
                tracing::error!(error = %e, "pruning old order ids failed");
            }
        }
    }

    /// Sessionizes `events` (in time order) and commits them, with every derived row
    /// pending: what the demo and tests use. Returns whether the commit succeeded.
    pub fn write(&mut self, events: Vec<Event>, reclassify: Vec<Reclassify>) -> bool {
        self.commit(events, reclassify, Index::Now)
    }

    /// An import's batch (in time order), with the import keys of its lines, committed
    /// in the same transaction as its events (`pixeltrack import`). The batch before it
    /// is written on a thread of its own while this one is sessionized, then this one
    /// is held until the next call or [`finish_import`](Self::finish_import). Returns
    /// whether the batch before was written (true for the first); on false, stop:
    /// what was committed stays. Leaves in `events` the buffer of the batch written,
    /// emptied, for the caller to fill again.
    pub fn write_imported(&mut self, events: &mut Vec<Event>, keys: &[ImportKey]) -> bool {
        if self.needs_recovery {
            return false;
        }
        if events.is_empty() && keys.is_empty() {
            return true;
        }
        let mut batch = std::mem::take(events);
        let orders = batch
            .iter()
            .any(|e| e.name == crate::enrich::CONVERSION && !e.order_id.is_empty());
        if orders {
            // The store must hold the batch before's orders to tell a repeated one.
            if !self.finish_import() {
                return false;
            }
            self.dedupe_orders(&mut batch);
        }
        self.count_load(batch.len() as u64);
        let held = self.held.take();
        let EventWriter {
            sqlite,
            sessions,
            seen,
            pending,
            landings,
            latest_ms,
            ..
        } = self;
        let (mut written, reclassify) = std::thread::scope(|s| {
            let writing = held.map(|mut h| {
                s.spawn(move || {
                    let result = h.write(sqlite);
                    // The written batch is emptied here, beside the sessionizer:
                    // freeing its strings and rows.
                    let n = h.events.len() as u64;
                    let bots = h.events.iter().filter(|e| e.bot.is_some()).count() as u64;
                    h.events.clear();
                    h.derived.clear();
                    (result, n, bots, h.events, h.derived)
                })
            });
            for e in batch.iter_mut() {
                *latest_ms = (*latest_ms).max(e.ts_ms);
                sessions.track(e, pending, seen);
            }
            let reclassify = landings.confirm(&batch);
            sessions.finish_batch(pending);
            (writing.map(|w| w.join()), reclassify)
        });
        // This batch's derived rows, before `written` marks the pending rows indexed;
        // the next batch's go into the tables of the batch written, emptied (see
        // `Derived::clear`).
        let recycled = match &mut written {
            Some(Ok((.., spent))) => std::mem::take(spent),
            _ => Derived::default(),
        };
        let mut derived = std::mem::replace(&mut self.pending, recycled);
        drop_unstored_keys(&self.key_days, &mut derived);
        let ok = match written {
            None => true,
            Some(Ok((result, n, bots, spent, _))) => {
                *events = spent;
                self.written(result, n, bots, true)
            }
            Some(Err(_)) => {
                tracing::error!("the import's writing thread stopped unexpectedly");
                self.needs_recovery = true;
                false
            }
        };
        self.held = Some(Held {
            events: batch,
            reclassify,
            keys: keys.to_vec(),
            derived,
        });
        self.pending_since = None;
        ok
    }

    /// Writes the import's held batch, if any; returns whether it was written.
    pub fn finish_import(&mut self) -> bool {
        let Some(mut h) = self.held.take() else {
            return !self.needs_recovery;
        };
        let result = h.write(&mut self.sqlite);
        let bots = h.events.iter().filter(|e| e.bot.is_some()).count() as u64;
        self.written(result, h.events.len() as u64, bots, true)
    }

    /// For a writer beside the server's (`import`): takes in the unique-visitor keys
    /// counted so far on the live days, so a visitor the server counted today is not
    /// counted again. Unlike [`recover`](Self::recover), replays nothing: the server's
    /// unindexed events are its own.
    pub fn load_unique_keys(&mut self) -> crate::store::Result<()> {
        self.load_keys().map(|_| ())
    }

    /// Loads the keys memory held back into it, those past the bound into the store's
    /// `uniques`; then marks the days whose keys the store holds some of (past the bound
    /// before, or just now) as decided by the store for every key memory does not hold,
    /// so a bound raised since, or a day that ends and frees memory, does not count
    /// them again. Returns how many keys went past the bound.
    fn load_keys(&mut self) -> crate::store::Result<usize> {
        self.seen = SeenKeys::new(self.max_unique_keys);
        let spill = self.seen.load(self.sqlite.unique_keys()?);
        if !spill.is_empty() {
            self.sqlite.spill_unique_keys(&spill)?;
        }
        for day in self.sqlite.days_decided_by_store()? {
            self.seen.open(day);
        }
        Ok(spill.len())
    }

    /// Sessionizes `events` (in time order) and commits them in one transaction, with
    /// the pending derived rows when `index` says now or the bounds are reached.
    /// Returns whether the events were committed; failures are logged and counted,
    /// and the in-memory state is rebuilt from the store.
    pub fn commit(
        &mut self,
        events: Vec<Event>,
        reclassify: Vec<Reclassify>,
        index: Index,
    ) -> bool {
        let mut events = events;
        self.commit_with(&mut events, reclassify, &[], index)
    }

    fn commit_with(
        &mut self,
        events: &mut Vec<Event>,
        mut reclassify: Vec<Reclassify>,
        imported: &[ImportKey],
        index: Index,
    ) -> bool {
        if self.needs_recovery {
            if !self.retry_due() {
                self.refused(events.len() as u64);
                return false;
            }
            match self.recover(self.latest_ms) {
                Ok(_) => {
                    // The rebuild wrote to the store: writes work again.
                    self.needs_recovery = false;
                    self.failing.succeeded();
                    self.metrics.store_failing.store(false, Ordering::Relaxed);
                }
                Err(e) => {
                    // Still failing: nothing is written on top of a state not rebuilt.
                    self.failed(events.len() as u64, &e);
                    return false;
                }
            }
        }
        self.dedupe_orders(events);
        self.count_load(events.len() as u64);
        let due = self
            .pending_since
            .is_some_and(|t| t.elapsed() >= self.index_interval);
        let nothing_due = (index == Index::Later && !due) || self.pending_is_empty();
        if events.is_empty() && reclassify.is_empty() && imported.is_empty() && nothing_due {
            // Nothing to write (an idle tick): no empty transaction.
            return true;
        }
        for e in events.iter_mut() {
            self.latest_ms = self.latest_ms.max(e.ts_ms);
            self.sessions.track(e, &mut self.pending, &mut self.seen);
        }
        // After the batch's own events (applied first in the transaction).
        reclassify.extend(self.landings.confirm(events));
        if self.pending_since.is_none() && self.pending.rows() > 0 {
            self.pending_since = Some(Instant::now());
        }
        let now = index == Index::Now || due || self.pending.rows() >= self.index_max_rows;
        if now {
            self.sessions.finish_batch(&mut self.pending);
            drop_unstored_keys(&self.key_days, &mut self.pending);
        }
        let m = self.metrics.clone();
        let n = events.len() as u64;
        let bots = events.iter().filter(|e| e.bot.is_some()).count() as u64;
        let started = Instant::now();
        self.sqlite.reserve_ids(index == Index::Later);
        let result = self.sqlite.apply_imported(
            events,
            &reclassify,
            imported,
            now.then_some(&mut self.pending),
        );
        m.commit_latency(started.elapsed());
        self.written(result, n, bots, now)
    }

    /// After a batch's transaction: counts it, and on failure logs it and has the
    /// in-memory state rebuilt before the next one. `indexed`: its derived rows were in it.
    fn written(
        &mut self,
        result: crate::store::Result<()>,
        n: u64,
        bots: u64,
        indexed: bool,
    ) -> bool {
        let m = self.metrics.clone();
        match result {
            Ok(()) => {
                self.failing.succeeded();
                m.store_failing.store(false, Ordering::Relaxed);
                if indexed {
                    self.indexed();
                    m.index_writes.fetch_add(1, Ordering::Relaxed);
                }
                m.batches_written.fetch_add(1, Ordering::Relaxed);
                m.events_stored.fetch_add(n, Ordering::Relaxed);
                m.open_sessions
                    .store(self.sessions.len() as i64, Ordering::Relaxed);
                m.sessions_cut.store(self.sessions.cut, Ordering::Relaxed);
                m.unique_keys_held
                    .store(self.seen.len() as i64, Ordering::Relaxed);
                let full = self.seen.len() >= self.max_unique_keys;
                if full && !self.keys_full_said {
                    tracing::warn!(
                        bound = self.max_unique_keys,
                        "unique-visitor keys reached ingest.max_unique_keys: until the day changes, new keys are decided by the database (a page write for each new visitor), which slows the writer (raise the bound if memory allows: 10-30 bytes a key)"
                    );
                }
                self.keys_full_said = full;
                m.bot_events_stored.fetch_add(bots, Ordering::Relaxed);
                if let Some(max) = self.spool_max {
                    let backlog =
                        self.sqlite.last_event_id() - m.forward_shipped_to.load(Ordering::Relaxed);
                    m.spool_backlog.store(backlog, Ordering::Relaxed);
                    if backlog >= max {
                        m.spool_full.store(true, Ordering::Relaxed);
                    }
                }
                true
            }
            Err(e) => {
                self.failed(n, &e);
                // Sessions and pending rows counted events that are not stored: start
                // over from what is (the last derived rows plus the unindexed events)
                // before the next batch.
                self.needs_recovery = true;
                false
            }
        }
    }

    /// Whether a write may be tried: none failed, or the wait after the last failure
    /// is over (see [`Failing::retry_at`]).
    pub fn retry_due(&self) -> bool {
        !self.needs_recovery || self.failing.retry_at.is_none_or(|t| Instant::now() >= t)
    }

    /// A batch of `n` events was not written: logged (rate-limited), counted as
    /// `store_error` drops, and `/readyz` says not ready until a write succeeds.
    fn failed(&mut self, n: u64, e: &crate::store::StoreError) {
        self.failing.failed(n, e);
        self.count_failed(n);
    }

    /// A batch of `n` events not tried, a write having failed a moment ago: counted
    /// as a failed one.
    fn refused(&mut self, n: u64) {
        self.failing.count(n);
        self.count_failed(n);
    }

    fn count_failed(&self, n: u64) {
        let m = &self.metrics;
        m.store_failing.store(true, Ordering::Relaxed);
        m.batches_failed.fetch_add(1, Ordering::Relaxed);
        for _ in 0..n {
            m.dropped(DropReason::StoreError);
        }
    }
}

/// Failed writes, logged as they start, then as one summary per [`FAILURE_LOG_EVERY`]
/// while they go on (a full disk fails every batch: thousands a second), and once more
/// when writes succeed again.
#[derive(Default)]
struct Failing {
    since: Option<Instant>,
    reported: Option<Instant>,
    batches: u64,
    events: u64,
    /// No write is tried before this: after a failure the next try rebuilds the
    /// writer's state from the store and, with the hit log, reads back the answered
    /// hits, which a full disk made every batch do. The wait doubles from
    /// [`RETRY_FIRST`] to [`RETRY_MAX`] while writes keep failing.
    retry_at: Option<Instant>,
    wait: Duration,
}

const FAILURE_LOG_EVERY: Duration = Duration::from_secs(10);
const RETRY_FIRST: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(1);

impl Failing {
    fn failed(&mut self, events: u64, e: &crate::store::StoreError) {
        self.wait = (self.wait * 2).clamp(RETRY_FIRST, RETRY_MAX);
        self.retry_at = Some(Instant::now() + self.wait);
        self.count(events);
        match self.reported {
            None => {
                tracing::error!(error = %e, events, "writing to the store failed; the events are dropped (store_error) and /readyz says not ready until a write succeeds");
                self.since = Some(Instant::now());
                self.reported = Some(Instant::now());
                (self.batches, self.events) = (0, 0);
            }
            Some(at) if at.elapsed() >= FAILURE_LOG_EVERY => {
                tracing::error!(error = %e, batches = self.batches, events = self.events, "writes to the store still failing");
                self.reported = Some(Instant::now());
                (self.batches, self.events) = (0, 0);
            }
            Some(_) => {}
        }
    }

    /// A batch of `events` not written, for the next summary.
    fn count(&mut self, events: u64) {
        self.batches += 1;
        self.events += events;
    }

    fn succeeded(&mut self) {
        if let Some(since) = self.since.take() {
            tracing::info!(
                failed_for_ms = since.elapsed().as_millis() as u64,
                "writes to the store succeed again"
            );
            *self = Failing::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{DAY_MS, HOUR_MS};
    use crate::model::BotReason;
    use crate::store::SqliteStore;
    use std::collections::HashMap;

    const T0: Millis = 20_148 * DAY_MS + 22 * HOUR_MS;

    /// Five hours across midnight of 300 visitors: visits of one to five pages, gaps
    /// past the session timeout (a second visit), custom events, bots, and conversions
    /// whose order ids repeat across batches (a reload of the thank-you page), in a few
    /// batches only (a batch with one is written after the batch before it, not beside).
    fn events() -> Vec<Event> {
        let mut out = Vec::new();
        for v in 1..=300_i64 {
            let start = T0 + (v * 7_919 % 300) * 60_000;
            for n in 0..(1 + v % 5) {
                out.push(Event {
                    site_id: 1,
                    ts_ms: start + n * 90_000,
                    name: "pageview".into(),
                    visitor_id: v,
                    path: format!("/p/{}", (v + n) % 17),
                    title: format!("Page {}", (v + n) % 17),
                    source: ["", "Google", "Hacker News"][(v % 3) as usize].into(),
                    browser: ["Firefox", "Chrome"][(v % 2) as usize].into(),
                    bot: (v % 23 == 0).then_some(BotReason::Crawler),
                    ..Event::default()
                });
            }
            if v % 4 == 0 {
                out.push(Event {
                    site_id: 1,
                    ts_ms: start + 2 * HOUR_MS,
                    name: "pageview".into(),
                    visitor_id: v,
                    path: "/back".into(),
                    ..Event::default()
                });
            }
            if v % 6 == 0 {
                out.push(Event {
                    site_id: 1,
                    ts_ms: start + 60_000,
                    name: "signup".into(),
                    visitor_id: v,
                    path: "/join".into(),
                    props: r#"{"plan":"pro"}"#.into(),
                    ..Event::default()
                });
            }
            if v % 60 == 0 {
                for again in [0, 2 * 60_000, 40 * 60_000] {
                    out.push(Event {
                        site_id: 1,
                        ts_ms: start + 70_000 + again,
                        name: crate::enrich::CONVERSION.into(),
                        visitor_id: v,
                        path: "/thanks".into(),
                        order_id: format!("order-{v}"),
                        value_minor: Some(1_000 + v),
                        currency: "EUR".into(),
                        ..Event::default()
                    });
                }
            }
        }
        out.sort_by_key(|e| e.ts_ms);
        out
    }

    /// Every row the writer derives, and what it stored of each event, as text. A
    /// session id is its visit's number in event order (ids start at a random number
    /// per writer).
    fn derived(dir: &std::path::Path) -> Vec<String> {
        let conn = rusqlite::Connection::open(dir.join("pixeltrack.db")).unwrap();
        let rows = |q: &str| -> Vec<Vec<rusqlite::types::Value>> {
            let mut st = conn.prepare(q).unwrap();
            let n = st.column_count();
            st.query_map([], |r| (0..n).map(|i| r.get(i)).collect())
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        let text = |r: &[rusqlite::types::Value]| format!("{r:?}");
        let events =
            rows("SELECT session_id, ts_ms, name, visitor_id, path FROM events ORDER BY id");
        let mut visit: HashMap<i64, i64> = HashMap::new();
        let mut number = |v: &rusqlite::types::Value| -> rusqlite::types::Value {
            match v {
                rusqlite::types::Value::Integer(id) if *id != 0 => {
                    let n = visit.len() as i64 + 1;
                    rusqlite::types::Value::Integer(*visit.entry(*id).or_insert(n))
                }
                other => other.clone(),
            }
        };
        let mut out = Vec::new();
        for mut e in events {
            e[0] = number(&e[0]);
            out.push(text(&e));
        }
        // As the store's readers see them (a visit of one hit has no end row).
        let mut sessions: Vec<String> =
            rows(include_str!("../store/sqlite/sql/queries/session_rows.sql"))
                .into_iter()
                .map(|mut r| {
                    r[0] = number(&r[0]);
                    text(&r)
                })
                .collect();
        sessions.sort();
        out.extend(sessions);
        for q in [
            "SELECT site_id, dim, hour, value, visitors, visits, pageviews, events, bounces, \
             duration_ms FROM rollups WHERE visitors != 0 OR visits != 0 OR pageviews != 0 \
             OR events != 0 OR bounces != 0 OR duration_ms != 0 ORDER BY 1, 2, 3, 4",
            "SELECT site_id, order_id FROM orders ORDER BY 1, 2",
        ] {
            out.extend(rows(q).iter().map(|r| text(r)));
        }
        out
    }

    fn site(store: &SqliteStore) {
        use crate::store::SiteStore;
        let key = crate::model::SiteKey::parse("writertest").unwrap();
        let s = store.add_site(&key, "w.example", "W", 0).unwrap();
        assert_eq!(s.id.0, 1);
    }

    /// Two fresh stores with the test site, and their directories.
    fn two_stores() -> [(tempfile::TempDir, SqliteStore); 2] {
        std::array::from_fn(|_| {
            let dir = tempfile::tempdir().unwrap();
            let store = SqliteStore::open(dir.path()).unwrap();
            site(&store);
            (dir, store)
        })
    }

    /// Import keys for the `i`th chunk of events, one per event.
    fn keys_of(i: usize, chunk: &[Event]) -> Vec<ImportKey> {
        chunk
            .iter()
            .enumerate()
            .map(|(j, e)| ImportKey {
                site_id: 1,
                ts_ms: e.ts_ms,
                key: (i * 1_000 + j) as i64,
            })
            .collect()
    }

    /// An import stores the unique-visitor keys only of days whose salt is stored
    /// (another process can meet those visitors again); it counts every day's visitors
    /// the same either way.
    #[test]
    fn an_import_stores_the_keys_of_live_days_only_and_counts_the_same() {
        let all = events();
        let day = T0 / DAY_MS;
        let [(da, a), (db, b)] = two_stores();
        let mut wa = EventWriter::for_tests(&a);
        let mut wb = EventWriter::for_tests(&b).with_stored_key_days([day + 1]);
        for (i, chunk) in all.chunks(64).enumerate() {
            let keys = keys_of(i, chunk);
            assert!(wa.write_imported(&mut chunk.to_vec(), &keys));
            assert!(wb.write_imported(&mut chunk.to_vec(), &keys));
        }
        assert!(wa.finish_import() && wb.finish_import());
        assert_eq!(derived(da.path()), derived(db.path()), "the same rows");
        let key_days = |dir: &std::path::Path| -> Vec<(i64, usize)> {
            let conn = rusqlite::Connection::open(dir.join("pixeltrack.db")).unwrap();
            let mut st = conn
                .prepare("SELECT day, sum(length(keys)) / 8 FROM unique_keys GROUP BY day")
                .unwrap();
            st.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as usize)))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        let (ka, kb) = (key_days(da.path()), key_days(db.path()));
        assert_eq!(
            ka.iter().map(|(d, _)| *d).collect::<Vec<_>>(),
            [day, day + 1]
        );
        assert_eq!(
            kb,
            ka[1..],
            "the stored day's keys, all of them; none of the other"
        );
    }

    /// After a failed write the next ones are not tried until a short wait is over
    /// (each try rebuilds the writer's state: a full disk made every batch do it);
    /// they count as failed, and the first one after the wait writes.
    #[test]
    fn after_a_failed_write_the_next_waits_before_it_is_tried() {
        let [(dir, store), _] = two_stores();
        let sqlite = store
            .writer(crate::config::Synchronous::Normal)
            .unwrap()
            .with_busy_timeout(Duration::from_millis(200))
            .unwrap();
        let metrics = Arc::new(Metrics::default());
        let mut writer = EventWriter::new(sqlite, 30 * 60_000, metrics.clone());
        let all: Vec<Event> = events()
            .into_iter()
            .filter(|e| e.name == "pageview")
            .collect();
        let locker = rusqlite::Connection::open(dir.path().join("pixeltrack.db")).unwrap();
        locker.execute_batch("BEGIN IMMEDIATE").unwrap();
        // Three tries, each once the wait before it is over: the wait doubles, 50, 100,
        // then 200 ms (a margin for the checks below on a slow machine).
        for n in 0..3 {
            while !writer.retry_due() {
                std::thread::sleep(Duration::from_millis(5));
            }
            let t = Instant::now();
            assert!(!writer.write(all[n * 10..n * 10 + 10].to_vec(), Vec::new()));
            assert!(
                t.elapsed() >= Duration::from_millis(200),
                "tried: waited for the lock"
            );
        }
        let failed_at = Instant::now();
        locker.execute_batch("COMMIT").unwrap();
        // The lock is gone, but the wait after the failure is not over.
        let t = Instant::now();
        assert!(!writer.retry_due());
        assert!(!writer.write(all[30..40].to_vec(), Vec::new()));
        assert!(t.elapsed() < RETRY_FIRST, "not tried: {:?}", t.elapsed());
        assert_eq!(metrics.drops(DropReason::StoreError), 40);
        std::thread::sleep(Duration::from_millis(200).saturating_sub(failed_at.elapsed()));
        assert!(writer.retry_due());
        assert!(writer.write(all[40..50].to_vec(), Vec::new()));
        use crate::store::EventStore;
        assert_eq!(store.count_events(crate::model::SiteId(1)).unwrap(), 10);
    }

    /// Past the memory bound for unique-visitor keys the store decides them: every
    /// row's visitors are what a writer with room for every key counts, across batches,
    /// after a restart that loads back more keys than now fit (those go to `uniques`,
    /// without their visitor), and with a new day. The keys taken by the store are kept
    /// by visitor (`visitor_uniques`) and go with their day's salt.
    #[test]
    fn past_the_key_bound_the_store_counts_the_same_visitors() {
        let mut all = events();
        // A visitor of many pages: more keys stored than a short list is searched for.
        all.extend((0..150).map(|i| Event {
            site_id: 1,
            ts_ms: T0 + i * 50_000,
            name: "pageview".into(),
            visitor_id: 9_999,
            path: format!("/many/{i}"),
            title: format!("Many {}", i % 7),
            ..Event::default()
        }));
        all.sort_by_key(|e| e.ts_ms);
        // The same visitors again the next day, and a second pass over every hit an hour
        // later: every key is met again, in memory or in the store.
        let shifted = |all: &[Event], by: Millis| -> Vec<Event> {
            all.iter()
                .map(|e| Event {
                    ts_ms: e.ts_ms + by,
                    ..e.clone()
                })
                .collect()
        };
        let next_day = shifted(&all, DAY_MS);
        all.extend(shifted(&all, HOUR_MS));
        all.sort_by_key(|e| e.ts_ms);
        all.extend(next_day);
        let [(da, a), (db, b)] = two_stores();
        let mut wa = EventWriter::for_tests(&a);
        let bounded = |store: &SqliteStore, keys: usize| {
            let mut w = EventWriter::for_tests(store).with_memory_bounds(keys, 1_000_000);
            w.recover(T0).unwrap();
            w
        };
        let mut wb = bounded(&b, 60);
        for (i, chunk) in all.chunks(29).enumerate() {
            if i == 3 {
                // A restart with a lower bound: the keys held so far are loaded back,
                // past it.
                drop(wb);
                wb = bounded(&b, 25);
            }
            if i == 8 {
                // And one with a raised bound, the same day: memory has room again,
                // but the store holds keys of the day that memory does not.
                drop(wb);
                wb = bounded(&b, 1_000_000);
            }
            if i == 60 {
                // Lowered again before the next day begins, whose keys then go past it.
                drop(wb);
                wb = bounded(&b, 25);
            }
            assert!(wa.write(chunk.to_vec(), Vec::new()));
            assert!(wb.write(chunk.to_vec(), Vec::new()));
        }
        let (ra, rb) = (derived(da.path()), derived(db.path()));
        assert!(ra.len() > 500, "{} rows", ra.len());
        if let Some(i) = (0..ra.len().max(rb.len())).find(|&i| ra.get(i) != rb.get(i)) {
            panic!(
                "row {i} differs: in memory {:?}, past the bound {:?}",
                ra.get(i),
                rb.get(i)
            );
        }
        let conn = rusqlite::Connection::open(db.path().join("pixeltrack.db")).unwrap();
        let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
        let day = T0 / DAY_MS;
        assert!(
            count("SELECT count(*) FROM uniques") > 0,
            "loaded back past the bound"
        );
        assert!(
            count("SELECT max(n) FROM visitor_uniques WHERE visitor = 9999") > 64,
            "a visitor's keys in rows appended"
        );
        assert!(
            count(&format!(
                "SELECT count(*) FROM visitor_uniques WHERE day = {}",
                day + 1
            )) > 0,
            "the next day's keys by visitor"
        );
        let by_visitor: Vec<Vec<u8>> = conn
            .prepare("SELECT keys FROM visitor_uniques")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let keys: Vec<i64> = by_visitor
            .iter()
            .flat_map(|b| b.chunks_exact(8))
            .map(|k| i64::from_be_bytes(k.try_into().unwrap()))
            .collect();
        let distinct: HashSet<i64> = keys.iter().copied().collect();
        assert_eq!(distinct.len(), keys.len(), "each key once");
        let legacy: Vec<i64> = conn
            .prepare("SELECT key FROM uniques")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(
            legacy.iter().all(|k| !distinct.contains(k)),
            "a key in one table only"
        );
        // Erasing a visitor erases the keys kept with their id.
        let v: i64 = conn
            .query_row("SELECT visitor FROM visitor_uniques LIMIT 1", [], |r| {
                r.get(0)
            })
            .unwrap();
        let before = count("SELECT count(*) FROM visitor_uniques");
        crate::store::PrivacyStore::erase_subject(&b, &crate::store::Subject::Visitor(v)).unwrap();
        let theirs = format!("SELECT count(*) FROM visitor_uniques WHERE visitor = {v}");
        assert_eq!(count(&theirs), 0, "erased with the visitor");
        assert!(count("SELECT count(*) FROM visitor_uniques") < before);
        assert!(
            count("SELECT count(*) FROM visitor_uniques") > 0,
            "the others' kept"
        );
        b.destroy_salts_before(day + 2).unwrap();
        assert_eq!(
            count(&format!(
                "SELECT count(*) FROM visitor_uniques WHERE day < {}",
                day + 1
            )),
            0,
            "the first day's keys go with its salt"
        );
    }

    /// An import writes a batch while it sessionizes the next: the store ends exactly
    /// as written batch by batch, conversions repeated across batches counted once.
    #[test]
    fn an_overlapped_import_derives_what_batch_by_batch_writes_derive() {
        let all = events();
        let [(da, a), (db, b)] = two_stores();
        let mut wa = EventWriter::for_tests(&a);
        let mut wb = EventWriter::for_tests(&b);
        let mut buffer = Vec::new();
        for (i, chunk) in all.chunks(29).enumerate() {
            assert!(wa.write(chunk.to_vec(), Vec::new()));
            let keys = keys_of(i, chunk);
            buffer.clear();
            buffer.extend_from_slice(chunk);
            assert!(wb.write_imported(&mut buffer, &keys));
            assert!(buffer.is_empty(), "the buffer back is empty");
        }
        // The same order in two batches in a row: the second is a repeat only if the
        // first was written before it was checked.
        let last = all.last().map_or(T0, |e| e.ts_ms);
        for (i, at) in [last + 60_000, last + 120_000].into_iter().enumerate() {
            let conversion = Event {
                site_id: 1,
                ts_ms: at,
                name: crate::enrich::CONVERSION.into(),
                visitor_id: 7,
                path: "/thanks".into(),
                order_id: "order-late".into(),
                value_minor: Some(990),
                currency: "EUR".into(),
                ..Event::default()
            };
            assert!(wa.write(vec![conversion.clone()], Vec::new()));
            let key = ImportKey {
                site_id: 1,
                ts_ms: at,
                key: -1 - i as i64,
            };
            buffer.clear();
            buffer.push(conversion);
            assert!(wb.write_imported(&mut buffer, &[key]));
        }
        assert!(wb.finish_import());
        let (ra, rb) = (derived(da.path()), derived(db.path()));
        assert!(ra.len() > 500, "{} rows", ra.len());
        assert_eq!(
            rb.iter()
                .filter(|r| r.starts_with("[Integer(1), Text(\"order-"))
                .count(),
            6,
            "each order once"
        );
        if let Some(i) = (0..ra.len().max(rb.len())).find(|&i| ra.get(i) != rb.get(i)) {
            panic!(
                "row {i} differs: batch by batch {:?}, overlapped {:?}",
                ra.get(i),
                rb.get(i)
            );
        }
    }
}
