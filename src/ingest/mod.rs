//! Ingest: a bounded queue in front of one writer thread that group-commits.
//!
//! The writer blocks for the first queued event, takes whatever else is queued (up
//! to `batch_max`), writes it all in one transaction and then acknowledges every
//! event of the batch. While it commits, new events queue up and form the next batch,
//! so the batch size adapts to the load with no timer. In `commit` durability the
//! pixel answers only after its acknowledgement: a 200 means the row is committed.
//!
//! Full queue policy: the hit is dropped as `overload` (counted) and the pixel still
//! answers — a tracking pixel must never slow down or break the page that embeds it.

pub mod sessions;
pub mod uniques;

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::clock::{Clock, Millis};
use crate::config::{Durability, IngestConfig};
use crate::metrics::Metrics;
use crate::model::{DropReason, Event};
use crate::store::sqlite::SqliteWriter;
use crate::store::{Derived, Reclassify};

use sessions::Sessions;
use uniques::SeenKeys;

enum Msg {
    Event(Box<Event>, Option<Ack>),
    /// Re-label earlier email events (written with the next batch).
    Reclassify(Reclassify),
    /// Write the derived rows if they are due (sent every 100 ms by a server job).
    Tick,
    /// Drain what is queued, commit, and stop.
    Shutdown,
}

/// A waiting handler's side of one event. The handler and the writer race for the
/// event exactly once: the writer claims it when it takes it into a batch, the handler
/// abandons it when its wait runs out first. An abandoned event is never written, and
/// a claimed one is answered with its commit's outcome — so every answer is exact.
struct Ack {
    state: Arc<AtomicU8>,
    done: oneshot::Sender<bool>,
}

const PENDING: u8 = 0;
const CLAIMED: u8 = 1;
const ABANDONED: u8 = 2;

fn settle(state: &AtomicU8, to: u8) -> bool {
    state
        .compare_exchange(PENDING, to, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
}

/// The collectors' side of the queue. Cheap to clone.
#[derive(Clone)]
pub struct IngestHandle {
    tx: mpsc::Sender<Msg>,
    /// Hits being handled by a collector right now (see [`IngestHandle::arrival`]).
    in_flight: Arc<AtomicI64>,
    metrics: Arc<Metrics>,
    durability: Durability,
    commit_timeout: Duration,
}

/// How a submitted event fared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Submitted {
    /// Committed (commit durability) or queued (async durability).
    Stored,
    /// Not stored, and never will be: full queue, shutdown, a failed commit, or a wait
    /// for the writer longer than `commit_timeout_ms` (`timeout`).
    Dropped(DropReason),
}

impl IngestHandle {
    /// Queues `event`; in commit durability, waits for its commit. A hit the writer
    /// has not taken within `commit_timeout` is abandoned (never written) and dropped
    /// as `timeout`; once taken, the answer waits for the commit's outcome, which the
    /// store's busy timeout bounds.
    pub async fn submit(&self, event: Event) -> Submitted {
        let (ack, waiter) = if self.durability == Durability::Commit {
            let state = Arc::new(AtomicU8::new(PENDING));
            let (done, rx) = oneshot::channel();
            let ack = Ack {
                state: state.clone(),
                done,
            };
            (Some(ack), Some((state, rx)))
        } else {
            (None, None)
        };
        match self.tx.try_send(Msg::Event(Box::new(event), ack)) {
            Ok(()) => {
                self.metrics.queue_depth.fetch_add(1, Ordering::Relaxed);
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                return self.drop_with(DropReason::Overload);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                return self.drop_with(DropReason::ShuttingDown);
            }
        }
        let Some((state, mut rx)) = waiter else {
            return Submitted::Stored;
        };
        let outcome = match tokio::time::timeout(self.commit_timeout, &mut rx).await {
            Ok(outcome) => outcome,
            Err(_) if settle(&state, ABANDONED) => {
                self.metrics.commit_timeouts.fetch_add(1, Ordering::Relaxed);
                return self.drop_with(DropReason::Timeout);
            }
            // The writer took it just in time: its commit decides.
            Err(_) => rx.await,
        };
        match outcome {
            Ok(true) => Submitted::Stored,
            // The writer counted the store_error drop already.
            Ok(false) => Submitted::Dropped(DropReason::StoreError),
            Err(_) => self.drop_with(DropReason::ShuttingDown),
        }
    }

    fn drop_with(&self, reason: DropReason) -> Submitted {
        self.metrics.dropped(reason);
        Submitted::Dropped(reason)
    }

    /// Counts a collector request as in flight until the guard drops. The writer
    /// writes derived rows before answering whenever no other hit is in flight, so a
    /// client that waits for its answer and then reads a report sees its hit; while
    /// others are, it lets them gather (see `start`).
    pub fn arrival(&self) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.in_flight.clone())
    }

    /// Lets the writer write derived rows that are due although no hit arrives (the
    /// load stopped). Best effort: a full queue means the writer is busy anyway.
    pub fn tick(&self) {
        let _ = self.tx.try_send(Msg::Tick);
    }

    /// Queues a correction of earlier verdicts; best effort (a full queue skips it).
    pub fn reclassify(&self, r: Reclassify) {
        let _ = self.tx.try_send(Msg::Reclassify(r));
    }

    /// Asks the writer to commit everything queued so far and stop. Events submitted
    /// after this are dropped as `shutting_down`.
    pub async fn shutdown(&self) {
        let _ = self.tx.send(Msg::Shutdown).await;
    }
}

/// When the derived rows of committed events are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Index {
    /// In the same transaction as the events (the writer is idle, or stopping).
    Now,
    /// With a later batch, unless the pending rows are older or more than the bounds.
    Later,
}

/// A collector request in flight; see [`IngestHandle::arrival`].
pub struct InFlight(Arc<AtomicI64>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Sessions, the seen-visitor filter, the derived rows not written yet and the writer
/// connection: everything that turns events into committed transactions. The writer
/// thread owns one; the `demo` command drives one directly.
pub struct EventWriter {
    sqlite: SqliteWriter,
    sessions: Sessions,
    seen: SeenKeys,
    metrics: Arc<Metrics>,
    /// Derived rows of committed events, not written yet.
    pending: Derived,
    /// When `pending` got its first rows.
    pending_since: Option<Instant>,
    /// Bounds on `pending`: its age and its size.
    index_interval: Duration,
    index_max_rows: usize,
    /// Bound of the unique-visitor keys held in memory (see `uniques`).
    max_unique_keys: usize,
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
}

/// Load is measured over windows this long (see `ingest.light_load_per_second`).
const LOAD_WINDOW: Duration = Duration::from_millis(100);

impl EventWriter {
    pub fn new(sqlite: SqliteWriter, session_timeout_ms: Millis, metrics: Arc<Metrics>) -> Self {
        EventWriter {
            sqlite,
            sessions: Sessions::new(session_timeout_ms),
            seen: SeenKeys::default(),
            metrics,
            pending: Derived::default(),
            pending_since: None,
            index_interval: Duration::from_secs(1),
            index_max_rows: 200_000,
            max_unique_keys: usize::MAX,
            max_open_sessions: usize::MAX,
            light_load_per_second: 1_000,
            dedupe_window_ms: 30 * crate::clock::DAY_MS,
            orders_pruned_ms: 0,
            latest_ms: 0,
            window: (Instant::now(), 0, 0),
            needs_recovery: false,
            failing: Failing::default(),
        }
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
        self.seen = SeenKeys::new(self.max_unique_keys);
        let spill = self.seen.load(self.sqlite.unique_keys()?);
        if !spill.is_empty() {
            tracing::warn!(
                keys = spill.len(),
                bound = self.max_unique_keys,
                "unique-visitor keys past ingest.max_unique_keys: the store decides them"
            );
            self.sqlite.spill_unique_keys(&spill)?;
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
        self.sqlite.apply(&[], &[], Some(&mut self.pending))?;
        self.indexed();
        if n > 0 {
            tracing::info!(events = n, "derived rows rebuilt from unindexed events");
        }
        Ok(n)
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
        self.pending = Derived::default();
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

    /// Sessionizes `events` (in time order) and commits them in one transaction, with
    /// the pending derived rows when `index` says now or the bounds are reached.
    /// Returns whether the events were committed; failures are logged and counted,
    /// and the in-memory state is rebuilt from the store.
    pub fn commit(
        &mut self,
        mut events: Vec<Event>,
        reclassify: Vec<Reclassify>,
        index: Index,
    ) -> bool {
        self.dedupe_orders(&mut events);
        self.count_load(events.len() as u64);
        let due = self
            .pending_since
            .is_some_and(|t| t.elapsed() >= self.index_interval);
        if events.is_empty() && reclassify.is_empty() && index == Index::Later && !due {
            return true;
        }
        for e in &mut events {
            self.latest_ms = self.latest_ms.max(e.ts_ms);
            self.sessions.track(e, &mut self.pending, &mut self.seen);
        }
        if self.pending_since.is_none() && self.pending.rows() > 0 {
            self.pending_since = Some(Instant::now());
        }
        let now = index == Index::Now || due || self.pending.rows() >= self.index_max_rows;
        if now {
            self.sessions.finish_batch(&mut self.pending);
        }
        let m = self.metrics.clone();
        let n = events.len() as u64;
        let bots = events.iter().filter(|e| e.bot.is_some()).count() as u64;
        let started = Instant::now();
        let result = self
            .sqlite
            .apply(&events, &reclassify, now.then_some(&mut self.pending));
        m.commit_latency(started.elapsed());
        match result {
            Ok(()) => {
                self.failing.succeeded();
                m.store_failing.store(false, Ordering::Relaxed);
                if now {
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
                m.bot_events_stored.fetch_add(bots, Ordering::Relaxed);
                true
            }
            Err(e) => {
                self.failing.failed(n, &e);
                m.store_failing.store(true, Ordering::Relaxed);
                m.batches_failed.fetch_add(1, Ordering::Relaxed);
                for _ in 0..n {
                    m.dropped(DropReason::StoreError);
                }
                // Sessions and pending rows counted events that are not stored: start
                // over from what is (the last derived rows plus the unindexed events)
                // before the next batch.
                self.needs_recovery = true;
                false
            }
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
}

const FAILURE_LOG_EVERY: Duration = Duration::from_secs(10);

impl Failing {
    fn failed(&mut self, events: u64, e: &crate::store::StoreError) {
        self.batches += 1;
        self.events += events;
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

/// What the writer thread leaves behind when it stops.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Stopped {
    /// Events that were acknowledged (async durability) or queued for the final
    /// drain, and whose batch then failed: lost.
    pub lost: u64,
}

/// Starts the writer thread.
pub fn start(
    mut writer: EventWriter,
    config: &IngestConfig,
    clock: Clock,
) -> (IngestHandle, JoinHandle<Stopped>) {
    let (tx, mut rx) = mpsc::channel::<Msg>(config.queue_capacity);
    let in_flight = Arc::new(AtomicI64::new(0));
    let others_in_flight = in_flight.clone();
    let batch_max = config.batch_max;
    let metrics = writer.metrics.clone();
    let thread = std::thread::Builder::new()
        .name("pixeltrack-writer".into())
        .spawn(move || {
            let mut last_evict = clock.now_ms();
            let mut stopping = false;
            let mut stopped = Stopped::default();
            while !stopping {
                let Some(first) = rx.blocking_recv() else {
                    break;
                };
                let mut msgs = vec![first];
                while msgs.len() < batch_max {
                    match rx.try_recv() {
                        Ok(m) => msgs.push(m),
                        Err(_) => break,
                    }
                }
                if msgs.iter().any(|m| matches!(m, Msg::Shutdown)) {
                    // Take what arrived before the shutdown request too.
                    stopping = true;
                    rx.close();
                    while let Ok(m) = rx.try_recv() {
                        msgs.push(m);
                    }
                }
                let mut events = Vec::with_capacity(msgs.len());
                let mut acks = Vec::with_capacity(msgs.len());
                let mut fixes = Vec::new();
                for msg in msgs {
                    match msg {
                        Msg::Event(e, ack) => {
                            if let Some(a) = &ack {
                                if !settle(&a.state, CLAIMED) {
                                    // Its handler gave up and answered `timeout`.
                                    writer.metrics.queue_depth.fetch_sub(1, Ordering::Relaxed);
                                    continue;
                                }
                            }
                            events.push(*e);
                            acks.push(ack);
                        }
                        Msg::Reclassify(r) => fixes.push(r),
                        Msg::Tick | Msg::Shutdown => {}
                    }
                }
                writer
                    .metrics
                    .queue_depth
                    .fetch_sub(acks.len() as i64, Ordering::Relaxed);
                // Whether any hit is in flight besides those of this batch (whose
                // handlers wait for its answer): none means the load has paused.
                let waiting = acks.iter().filter(|a| a.is_some()).count() as i64;
                let quiet = |rx: &mpsc::Receiver<Msg>| {
                    rx.is_empty() && others_in_flight.load(Ordering::Acquire) <= waiting
                };
                // When the derived rows are written (see `Index`): with the events when
                // nothing else is pending and nothing else is in flight (one client at a
                // time: it reads its own hit in the next report), or when stopping.
                // Otherwise they gather over batches, one upsert per row for many events,
                // and are written when the load pauses while it is light (a burst that
                // ends: written before its last answer), when they reach the bounds
                // (checked with every batch), or at the next tick after that.
                let index = if stopping || (writer.pending_is_empty() && quiet(&rx)) {
                    Index::Now
                } else {
                    Index::Later
                };
                let n = acks.len() as u64;
                let unanswered = acks.iter().filter(|a| a.is_none()).count() as u64;
                let ok = writer.commit(events, fixes, index);
                if ok && !writer.pending_is_empty() && quiet(&rx) && writer.light_load() {
                    // The events are committed whatever this write does.
                    writer.commit(Vec::new(), Vec::new(), Index::Now);
                }
                if !ok {
                    // Waiting handlers answer store_error; the others were told "stored".
                    stopped.lost += if stopping { n } else { unanswered };
                }
                for ack in acks.into_iter().flatten() {
                    let _ = ack.done.send(ok);
                }
                let now = clock.now_ms();
                if now - last_evict > 60_000 {
                    writer.evict_idle(now);
                    last_evict = now;
                }
            }
            tracing::info!("writer stopped");
            stopped
        })
        .expect("spawning the writer thread");
    let handle = IngestHandle {
        tx,
        in_flight,
        metrics,
        durability: config.durability,
        commit_timeout: Duration::from_millis(config.commit_timeout_ms),
    };
    (handle, thread)
}
