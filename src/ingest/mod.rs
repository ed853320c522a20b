//! Ingest: a bounded queue in front of one writer thread that group-commits.
//!
//! The writer blocks for the first queued event, takes whatever else is queued (up
//! to `batch_max`), writes it all in one transaction and then acknowledges every
//! event of the batch. While it commits, new events queue up and form the next batch,
//! so the batch size adapts to the load; under a heavy load the writer takes the queue
//! every 250 µs instead of being woken by each hit (`TICK`). In `commit` durability the
//! pixel answers only after its acknowledgement: a 200 means the row is committed.
//!
//! Full queue policy: the hit is dropped as `overload` (counted) and the pixel still
//! answers — a tracking pixel must never slow down or break the page that embeds it.

mod ack;
pub mod hitlog;
pub mod landing;
pub mod sessions;
pub mod uniques;
mod writer;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::config::{Durability, IngestConfig};
use crate::metrics::Metrics;
use crate::model::{DropReason, Event};
use crate::store::Reclassify;
use ack::Ack;

pub use writer::{EventWriter, Index};

enum Msg {
    Event(Box<Event>, Option<Ack>),
    /// Re-label earlier email events (written with the next batch).
    Reclassify(Reclassify),
    /// Write the derived rows if they are due (sent every 100 ms by a server job).
    Tick,
    /// Drain what is queued, commit, and stop.
    Shutdown,
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
    pub async fn submit(&self, event: Box<Event>) -> Submitted {
        if self.metrics.spool_full.load(Ordering::Relaxed) {
            // Forwarding is too far behind: nothing more is promised until it catches up.
            return self.drop_with(DropReason::SpoolFull);
        }
        let (ack, answer) = if self.durability == Durability::Commit {
            let (ack, answer) = ack::pair();
            (Some(ack), Some(answer))
        } else {
            (None, None)
        };
        // Boxed by enrichment already: the event is not copied on its way.
        match self.tx.try_send(Msg::Event(event, ack)) {
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
        let Some(mut answer) = answer else {
            return Submitted::Stored;
        };
        let outcome = match tokio::time::timeout(self.commit_timeout, &mut answer).await {
            Ok(outcome) => outcome,
            Err(_) if answer.abandon() => {
                self.metrics.commit_timeouts.fetch_add(1, Ordering::Relaxed);
                return self.drop_with(DropReason::Timeout);
            }
            // The writer took it just in time: its commit decides.
            Err(_) => answer.await,
        };
        match outcome {
            Some(true) => Submitted::Stored,
            // The writer counted the store_error drop already.
            Some(false) => Submitted::Dropped(DropReason::StoreError),
            None => self.drop_with(DropReason::ShuttingDown),
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

/// A collector request in flight; see [`IngestHandle::arrival`].
pub struct InFlight(Arc<AtomicI64>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What the writer thread leaves behind when it stops.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Stopped {
    /// Events that were acknowledged (async durability) or queued for the final
    /// drain, and whose batch then failed: lost.
    pub lost: u64,
}

/// Moves what is queued into `msgs`, up to `batch_max`.
fn take_queued(rx: &mut mpsc::Receiver<Msg>, msgs: &mut Vec<Msg>, batch_max: usize) {
    while msgs.len() < batch_max {
        match rx.try_recv() {
            Ok(m) => msgs.push(m),
            Err(_) => break,
        }
    }
}

/// How often a gathering writer looks at the queue again.
const GATHER_STEP: Duration = Duration::from_micros(50);

/// Under concurrent load, lets hits that other handlers are still working on join the
/// batch: while it holds fewer than half of the collector requests in flight, the
/// writer waits for them, up to `gather_for` (`ingest.gather_us`). Without it a commit
/// takes what happened to queue while the last one ran — about 14 events on the
/// realistic mix — and a commit writes whole pages: 30 events a commit write a quarter
/// fewer bytes an event and cost the writer a fifth less CPU (`docs/benchmarks.md`).
/// Half, not all: the other half keeps the handlers busy while this batch commits. A
/// lone client (nothing else in flight) never waits.
fn gather(
    rx: &mut mpsc::Receiver<Msg>,
    msgs: &mut Vec<Msg>,
    batch_max: usize,
    gather_for: Duration,
    in_flight: &AtomicI64,
) {
    if gather_for.is_zero() {
        return;
    }
    let until = std::time::Instant::now() + gather_for;
    while msgs.len() < batch_max
        && (msgs.len() as i64) * 2 < in_flight.load(Ordering::Acquire)
        && std::time::Instant::now() < until
    {
        std::thread::sleep(GATHER_STEP);
        take_queued(rx, msgs, batch_max);
    }
}

/// How often the writer takes the queue under a heavy load (see `start`): about ten
/// hits of the realistic mix at 40,000 a second.
const TICK: Duration = Duration::from_micros(250);

/// What the writer thread hands the indexer thread.
enum Batch {
    /// Hits in the hit log's record `seq`, answered already.
    Logged {
        events: Vec<Event>,
        fixes: Vec<Reclassify>,
        seq: u64,
    },
    /// Hits (and fixes, ticks) to commit now; `acks` wait for the commit. `quiet`: no
    /// other hit is in flight (a lone client reads its hit in the next report).
    Now {
        events: Vec<Event>,
        fixes: Vec<Reclassify>,
        acks: Vec<Option<Ack>>,
        quiet: bool,
        stopping: bool,
        /// The writer thread waits until the batch is committed (or held).
        wait: bool,
    },
}

/// The most answered hits the indexer may have to commit; past it hits wait for
/// their commit again (a store that is locked or failing cannot hold up memory).
const LOGGED_MAX: i64 = 50_000;

/// The hits the writer thread takes and the most collector requests in flight, over two
/// windows of 100 ms: whether the load is light (`ingest.light_load_per_second`, as the
/// indexer counts it for derived rows), and whether one client sends one hit at a time.
struct Load {
    start: std::time::Instant,
    /// Hits, and the most requests in flight, this window and the last.
    now: (u64, i64),
    prev: (u64, i64),
    per_window: u64,
}

impl Load {
    fn new(per_second: u64) -> Load {
        Load {
            start: std::time::Instant::now(),
            now: (0, 0),
            prev: (0, 0),
            per_window: per_second / 10,
        }
    }

    /// Counts `hits` taken with `in_flight` requests in their handlers; returns whether
    /// the load is light, and whether no more than one request was in flight at any
    /// batch of this window and the last.
    fn count(&mut self, hits: u64, in_flight: i64) -> (bool, bool) {
        const WINDOW: Duration = Duration::from_millis(100);
        let elapsed = self.start.elapsed();
        if elapsed >= WINDOW {
            self.prev = if elapsed >= 2 * WINDOW {
                (0, 0)
            } else {
                self.now
            };
            self.now = (0, 0);
            self.start = std::time::Instant::now();
        }
        self.now.0 += hits;
        self.now.1 = self.now.1.max(in_flight);
        (
            self.now.0 < self.per_window && self.prev.0 < self.per_window,
            self.now.1 <= 1 && self.prev.1 <= 1,
        )
    }
}

/// What the two threads share about the hit log.
#[derive(Default)]
struct LogState {
    /// The last record committed (the store's mark).
    committed: std::sync::atomic::AtomicU64,
    /// A commit of logged hits failed: until they are replayed from the log and
    /// committed, new hits wait for their commit.
    failing: std::sync::atomic::AtomicBool,
}

/// Starts the writer thread (takes hits from the queue, appends them to the hit log
/// under concurrent load and answers them) and the indexer thread (owns `writer`:
/// commits what the writer thread hands it — answered hits held up to
/// `ingest.log_hold_ms` to be committed together, the others at once). `log` and what
/// an earlier run left in it: with `log_hold_ms = 0` nothing is appended (every hit
/// waits for its commit), and what was left is still committed first.
pub fn start(
    writer: EventWriter,
    config: &IngestConfig,
    clock: Clock,
    (mut log, leftover): (hitlog::HitLog, hitlog::Leftover),
) -> (IngestHandle, JoinHandle<Stopped>) {
    let (tx, mut rx) = mpsc::channel::<Msg>(config.queue_capacity);
    let in_flight = Arc::new(AtomicI64::new(0));
    let others_in_flight = in_flight.clone();
    let batch_max = config.batch_max;
    let gather_for = Duration::from_micros(config.gather_us);
    let hold = Duration::from_millis(config.log_hold_ms);
    let light_load_per_second = config.light_load_per_second;
    let metrics = writer.metrics.clone();
    let state = Arc::new(LogState::default());
    if let Ok(seq) = writer.logged() {
        state.committed.store(seq, Ordering::Relaxed);
    }
    let (itx, irx) = std::sync::mpsc::channel::<Batch>();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let indexer = {
        let state = state.clone();
        std::thread::Builder::new()
            .name("pixeltrack-indexer".into())
            .spawn(move || index(writer, irx, done_tx, state, leftover, hold, clock))
            .expect("spawning the indexer thread")
    };
    let m = metrics.clone();
    let thread = std::thread::Builder::new()
        .name("pixeltrack-writer".into())
        .spawn(move || {
            let mut stopping = false;
            let mut append_failed_said = false;
            let mut load = Load::new(light_load_per_second);
            // Batches sent for their commit whose hits still wait for it (see below).
            let mut unfinished = 0usize;
            // Under a heavy load (neither light nor one client's, as the last batch
            // found it) the writer looks at the queue every `TICK` rather than sleeping
            // until a hit wakes it: a handler's hand-off then costs it no wake-up of
            // this thread, and the batch gathers while it sleeps.
            let mut heavy = false;
            while !stopping {
                let first = if heavy && !gather_for.is_zero() {
                    std::thread::sleep(TICK);
                    match rx.try_recv() {
                        Ok(m) => m,
                        Err(mpsc::error::TryRecvError::Empty) => {
                            heavy = false;
                            continue;
                        }
                        Err(mpsc::error::TryRecvError::Disconnected) => break,
                    }
                } else {
                    match rx.blocking_recv() {
                        Some(m) => m,
                        None => break,
                    }
                };
                let mut msgs = vec![first];
                take_queued(&mut rx, &mut msgs, batch_max);
                if !heavy {
                    gather(&mut rx, &mut msgs, batch_max, gather_for, &others_in_flight);
                }
                if msgs.iter().any(|m| matches!(m, Msg::Shutdown)) {
                    // Take what arrived before the shutdown request too.
                    stopping = true;
                    rx.close();
                    while let Ok(m) = rx.try_recv() {
                        msgs.push(m);
                    }
                }
                // Whether this batch may go to the hit log. When it may not and a
                // commit is still under way, the batch waits for it before its hits
                // are taken (so, untaken, they can still time out).
                wait_done(&done_rx, &mut unfinished, Some(Duration::ZERO));
                let may_log = !hold.is_zero()
                    && !stopping
                    && !state.failing.load(Ordering::Acquire)
                    && m.hit_log_backlog.load(Ordering::Acquire) < LOGGED_MAX;
                if !may_log {
                    wait_done(&done_rx, &mut unfinished, None);
                }
                let mut events = Vec::with_capacity(msgs.len());
                let mut acks = Vec::with_capacity(msgs.len());
                let mut fixes = Vec::new();
                for msg in msgs {
                    match msg {
                        Msg::Event(e, ack) => {
                            if let Some(a) = &ack {
                                if !a.claim() {
                                    // Its handler gave up and answered `timeout`.
                                    m.queue_depth.fetch_sub(1, Ordering::Relaxed);
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
                m.queue_depth
                    .fetch_sub(acks.len() as i64, Ordering::Relaxed);
                // Whether any hit is in flight besides those of this batch (whose
                // handlers wait for its answer): none means the load has paused.
                let waiting = acks.iter().filter(|a| a.is_some()).count() as i64;
                let in_flight_now = others_in_flight.load(Ordering::Acquire);
                let quiet = rx.is_empty() && in_flight_now <= waiting;
                let (light, lone) = load.count(acks.len() as u64, in_flight_now);
                heavy = !(light || lone);
                // Logged unless nothing else is in flight and the load is light, or one
                // client sends one hit at a time (then it waits for its commit, and its
                // client reads it in the next report, as a burst's last hits are), when
                // the indexer keeps up. Hits answered already (async durability) are
                // always logged: no client waits for their commit, and committed one
                // small batch at a time they took the indexer twice the CPU
                // (benchmarks.md, 2026-12-06, noon); logged, a stop that cannot commit
                // them leaves them for the next start instead of losing them.
                let answered = waiting == 0;
                let to_log = may_log && !events.is_empty() && (answered || !(quiet && (light || lone)));
                let logged = if to_log {
                    match log.append(&events) {
                        Ok(seq) => Some(seq),
                        Err(e) => {
                            m.hit_log_append_failures.fetch_add(1, Ordering::Relaxed);
                            if !append_failed_said {
                                tracing::error!(error = %e, "appending to the hit log failed: hits wait for their commit until it works again");
                            }
                            append_failed_said = true;
                            None
                        }
                    }
                } else {
                    None
                };
                match logged {
                    Some(seq) => {
                        append_failed_said = false;
                        m.hit_log_backlog
                            .fetch_add(events.len() as i64, Ordering::AcqRel);
                        for ack in acks.into_iter().flatten() {
                            ack.answer(true);
                        }
                        let _ = itx.send(Batch::Logged { events, fixes, seq });
                    }
                    None => {
                        // Taken, these wait for their commit; the next hits wait to be
                        // taken meanwhile (past `commit_timeout_ms` they are answered
                        // `timeout` and never written), as with a writer of one thread —
                        // unless the commit takes longer than `log_hold_ms` (a lock
                        // held by another process, a slow disk): then the next hits
                        // are taken, and answered from the hit log (their handlers
                        // are not alone any more) rather than held up behind it.
                        let wait = waiting > 0;
                        let sent = itx.send(Batch::Now {
                            events,
                            fixes,
                            acks,
                            quiet,
                            stopping,
                            wait,
                        });
                        if sent.is_ok() && wait {
                            unfinished += 1;
                            let stall = if hold.is_zero() { None } else { Some(hold) };
                            wait_done(&done_rx, &mut unfinished, stall);
                        }
                    }
                }
                log.release(state.committed.load(Ordering::Acquire));
            }
            drop(itx);
            let stopped = indexer.join().unwrap_or_else(|_| {
                tracing::error!("the indexer thread panicked: answered hits in the hit log are stored at the next start");
                Stopped::default()
            });
            let committed = state.committed.load(Ordering::Acquire);
            log.release(committed);
            if log.holds_uncommitted(committed) {
                tracing::warn!("answered hits the store could not take are in the hit log: they are stored at the next start");
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

/// Waits up to `for_` (`None`: as long as it takes) for the indexer to finish the
/// `unfinished` batches the writer thread sent it for their commit; counts them down.
fn wait_done(done: &std::sync::mpsc::Receiver<()>, unfinished: &mut usize, for_: Option<Duration>) {
    if *unfinished == 0 {
        return;
    }
    let until = for_.map(|d| std::time::Instant::now() + d);
    while *unfinished > 0 {
        let r = match until {
            None => done
                .recv()
                .map_err(|_| std::sync::mpsc::RecvTimeoutError::Disconnected),
            Some(t) => done.recv_timeout(t.saturating_duration_since(std::time::Instant::now())),
        };
        match r {
            Ok(()) => *unfinished -= 1,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => return,
            // The indexer is gone: nothing left to wait for.
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => *unfinished = 0,
        }
    }
}

/// The indexer thread: commits what the writer thread hands it. Answered hits are held
/// up to `hold` (or until hits that wait for their commit come) and committed together,
/// with their last record's number; records a crash or a failed commit left in the log
/// are replayed first.
fn index(
    mut writer: EventWriter,
    rx: std::sync::mpsc::Receiver<Batch>,
    done: std::sync::mpsc::Sender<()>,
    state: Arc<LogState>,
    leftover: hitlog::Leftover,
    hold: Duration,
    clock: Clock,
) -> Stopped {
    let mut stopped = Stopped::default();
    let metrics = writer.metrics.clone();
    let mut last_evict = clock.now_ms();
    // Records to replay before anything else: those found at start, and after a failed
    // commit of answered hits the log's records the store does not have.
    let hitlog::Leftover {
        dir: log_dir,
        records,
        files: mut replayed_files,
    } = leftover;
    if !records.is_empty() {
        tracing::info!(
            records = records.len(),
            "storing the answered hits found in the hit log"
        );
    }
    let mut replay = Some(records);
    let mut failed = false;
    let mut held: Vec<Event> = Vec::new();
    let mut held_fixes: Vec<Reclassify> = Vec::new();
    // The answered hits among `held`, the last record they came in, and since when.
    let mut held_logged = 0i64;
    let mut held_seq: Option<u64> = None;
    let mut held_since: Option<std::time::Instant> = None;
    loop {
        // After a failed commit of answered hits, the log is read again (and what it
        // holds committed first) once the writer's wait after the failure is over:
        // until then hits that wait for their commit are answered `store_error`.
        if failed && writer.retry_due() {
            replay = writer
                .logged()
                .ok()
                .and_then(|committed| hitlog::records_after(&log_dir, committed).ok());
        }
        if let Some(records) = replay.take() {
            failed = false;
            for (seq, mut events) in records {
                if seq <= state.committed.load(Ordering::Acquire) {
                    continue;
                }
                if !writer.commit_logged(&mut events, Vec::new(), Index::Later, Some(seq)) {
                    failed = true;
                    break;
                }
                state.committed.store(seq, Ordering::Release);
            }
            if !failed {
                for f in replayed_files.drain(..) {
                    if let Err(e) = std::fs::remove_file(&f) {
                        tracing::warn!(error = %e, path = %f.display(), "removing a replayed hit log file failed");
                    }
                }
            }
            state.failing.store(failed, Ordering::Release);
        }
        let msg = match held_since {
            None => match rx.recv() {
                Ok(b) => Some(b),
                Err(_) => break,
            },
            Some(t) => match rx.recv_timeout(hold.saturating_sub(t.elapsed())) {
                Ok(b) => Some(b),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            },
        };
        // A batch the writer thread waits for (until its commit, or until it is held).
        let mut now_batch = false;
        let mut acks = Vec::new();
        let mut index = Index::Later;
        let mut quiet = false;
        let mut stopping = false;
        match msg {
            Some(Batch::Logged { events, fixes, seq }) => {
                if failed || seq <= state.committed.load(Ordering::Acquire) {
                    // In the log: replayed from there (or already).
                    metrics
                        .hit_log_backlog
                        .fetch_sub(events.len() as i64, Ordering::AcqRel);
                    held_fixes.extend(fixes);
                    continue;
                }
                held_logged += events.len() as i64;
                held.extend(events);
                held_fixes.extend(fixes);
                held_seq = Some(seq);
                let since = *held_since.get_or_insert_with(std::time::Instant::now);
                if since.elapsed() < hold && held.len() < HELD_MAX {
                    continue;
                }
            }
            Some(Batch::Now {
                events,
                fixes,
                acks: a,
                quiet: q,
                stopping: s,
                wait,
            }) => {
                (acks, quiet, stopping) = (a, q, s);
                now_batch = wait;
                held.extend(events);
                held_fixes.extend(fixes);
                if !stopping && held_since.is_some() && acks.iter().all(Option::is_none) {
                    // Nothing waits for this (a tick, fixes, async hits): committed with
                    // the answered hits held, when their time is up.
                    if now_batch {
                        let _ = done.send(());
                    }
                    continue;
                }
                // When the derived rows are written (see `Index`): with the events when
                // nothing else is pending and nothing else is in flight (one client at a
                // time: it reads its own hit in the next report), or when stopping.
                // Otherwise they gather over batches, one upsert per row for many
                // events, and are written when the load pauses while it is light (a
                // burst that ends: written before its last answer), when they reach the
                // bounds (checked with every batch), or at the next tick after that.
                if stopping || (writer.pending_is_empty() && quiet && held_seq.is_none()) {
                    index = Index::Now;
                }
            }
            None => {}
        }
        let n = acks.len() as u64;
        let unanswered = acks.iter().filter(|a| a.is_none()).count() as u64;
        let seq = held_seq.take();
        held_since = None;
        // The hold keeps its room for the next one (at most `HELD_MAX` events and a
        // batch, 928 bytes an event: under 8 MiB): growing it anew copied every held
        // event at each doubling, and its fresh pages were 7 % of this thread's time.
        let ok = writer.commit_logged(&mut held, std::mem::take(&mut held_fixes), index, seq);
        metrics
            .hit_log_backlog
            .fetch_sub(held_logged, Ordering::AcqRel);
        held_logged = 0;
        if ok {
            if let Some(seq) = seq {
                state.committed.store(seq, Ordering::Release);
            }
            if quiet && !writer.pending_is_empty() && writer.light_load() {
                // The events are committed whatever this write does.
                writer.commit(Vec::new(), Vec::new(), Index::Now);
            }
        } else {
            if seq.is_some() {
                // Answered hits the store did not take: in the log, replayed before
                // anything else is written; until then new hits wait for their commit.
                failed = true;
                state.failing.store(true, Ordering::Release);
            }
            // Waiting handlers answer store_error; the others were told "stored".
            stopped.lost += if stopping { n } else { unanswered };
        }
        for ack in acks.into_iter().flatten() {
            ack.answer(ok);
        }
        if now_batch {
            let _ = done.send(());
        }
        let t = clock.now_ms();
        if t - last_evict > 60_000 {
            writer.evict_idle(t);
            last_evict = t;
        }
        if stopping {
            return stopped;
        }
    }
    // The writer thread stopped without a last batch: commit what is held.
    if !held.is_empty() || !held_fixes.is_empty() {
        let seq = held_seq.take();
        if writer.commit_logged(&mut held, held_fixes, Index::Now, seq) {
            if let Some(seq) = seq {
                state.committed.store(seq, Ordering::Release);
            }
        }
    }
    stopped
}

/// The most hits the indexer holds before it commits them, however young.
const HELD_MAX: usize = 8_192;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn store_with_site() -> (tempfile::TempDir, crate::store::SqliteStore) {
        use crate::store::SiteStore;
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::SqliteStore::open(dir.path()).unwrap();
        let key = crate::model::SiteKey::parse("logtest").unwrap();
        store.add_site(&key, "l.example", "L", 0).unwrap();
        (dir, store)
    }

    fn hit(n: i64) -> Event {
        Event {
            site_id: 1,
            ts_ms: crate::clock::Clock::System.now_ms() + n,
            name: "pageview".into(),
            visitor_id: 1 + n % 7,
            path: format!("/p/{n}"),
            props: "{}".into(),
            ..Event::default()
        }
    }

    fn stored(dir: &std::path::Path) -> i64 {
        let conn = rusqlite::Connection::open(dir.join("pixeltrack.db")).unwrap();
        conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
            .unwrap()
    }

    /// Asks the writer to stop and waits for its thread: what it left behind.
    async fn stop(handle: &IngestHandle, thread: JoinHandle<Stopped>) -> Stopped {
        handle.shutdown().await;
        tokio::task::spawn_blocking(move || thread.join().unwrap())
            .await
            .unwrap()
    }

    fn config(hold_ms: u64) -> IngestConfig {
        IngestConfig {
            log_hold_ms: hold_ms,
            ..crate::config::Config::default().ingest
        }
    }

    /// Under concurrent load a hit is answered once it is in the hit log, before its
    /// commit: another process reading the log then finds it. Stopping commits it, and
    /// a log whose records are all committed is gone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_hits_are_answered_from_the_log_and_committed_by_the_stop() {
        let (dir, store) = store_with_site();
        let writer = EventWriter::for_tests(&store);
        let log = hitlog::HitLog::open(dir.path(), writer.logged().unwrap(), false).unwrap();
        assert!(log.1.records.is_empty());
        // Held for ten minutes: nothing logged is committed before the stop.
        let (handle, thread) = start(writer, &config(600_000), Clock::System, log);
        // Other hits in flight: each batch is logged, not committed at once.
        let others = [handle.arrival(), handle.arrival()];
        for n in 0..20 {
            assert_eq!(handle.submit(Box::new(hit(n))).await, Submitted::Stored);
        }
        assert_eq!(stored(dir.path()), 0, "answered before any commit");
        let metrics = handle.metrics.clone();
        assert_eq!(metrics.hit_log_backlog.load(Ordering::Acquire), 20);
        assert!(metrics
            .render()
            .contains("\npixeltrack_hit_log_backlog 20\n"));
        let (_, left) = hitlog::HitLog::open(dir.path(), 0, false).unwrap();
        let logged: Vec<Event> = left.records.into_iter().flat_map(|r| r.1).collect();
        assert_eq!(logged.len(), 20, "every answered hit is in the log");
        assert_eq!(logged[7].path, "/p/7");
        drop(others);
        let stopped = stop(&handle, thread).await;
        assert_eq!(stopped, Stopped::default());
        assert_eq!(stored(dir.path()), 20);
        assert_eq!(metrics.hit_log_backlog.load(Ordering::Acquire), 0);
        let (_, left) = hitlog::HitLog::open(dir.path(), 0, false).unwrap();
        assert!(left.files.is_empty(), "committed: the log files are gone");
    }

    /// Hits answered at once (async durability) under concurrent load go the way of
    /// the others: into the hit log, held and committed together — not one small
    /// commit for each batch of them, which cost the indexer twice the CPU.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn async_hits_under_load_are_logged_and_held_like_the_others() {
        let (dir, store) = store_with_site();
        let writer = EventWriter::for_tests(&store);
        let log = hitlog::HitLog::open(dir.path(), writer.logged().unwrap(), false).unwrap();
        let config = IngestConfig {
            durability: Durability::Async,
            ..config(600_000)
        };
        let (handle, thread) = start(writer, &config, Clock::System, log);
        let others = [handle.arrival(), handle.arrival()];
        for n in 0..20 {
            assert_eq!(handle.submit(Box::new(hit(n))).await, Submitted::Stored);
        }
        let metrics = handle.metrics.clone();
        let deadline = Instant::now() + Duration::from_secs(10);
        while metrics.hit_log_backlog.load(Ordering::Acquire) < 20 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(metrics.hit_log_backlog.load(Ordering::Acquire), 20);
        assert_eq!(stored(dir.path()), 0, "held, not committed batch by batch");
        drop(others);
        let stopped = stop(&handle, thread).await;
        assert_eq!(stopped, Stopped::default());
        assert_eq!(stored(dir.path()), 20);
    }

    /// A lone hit waits for its commit; when that commit stalls (another process holds
    /// the write lock), the hits that come meanwhile are not held up behind it: they
    /// are answered from the hit log, not `timeout`. Both are stored once the lock goes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stalled_commit_does_not_hold_up_the_hits_behind_it() {
        let (dir, store) = store_with_site();
        let writer = EventWriter::for_tests(&store);
        let log = hitlog::HitLog::open(dir.path(), writer.logged().unwrap(), false).unwrap();
        let config = IngestConfig {
            commit_timeout_ms: 1_000,
            ..config(50)
        };
        let (handle, thread) = start(writer, &config, Clock::System, log);
        let locker = rusqlite::Connection::open(dir.path().join("pixeltrack.db")).unwrap();
        locker.execute_batch("BEGIN IMMEDIATE").unwrap();
        let h = handle.clone();
        let lone = tokio::spawn(async move {
            let _arrived = h.arrival();
            h.submit(Box::new(hit(0))).await
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!lone.is_finished(), "the lone hit waits for its commit");
        let t = Instant::now();
        let _arrived = handle.arrival();
        assert_eq!(handle.submit(Box::new(hit(1))).await, Submitted::Stored);
        assert!(
            t.elapsed() < Duration::from_millis(900),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(stored(dir.path()), 0, "answered from the log");
        locker.execute_batch("COMMIT").unwrap();
        assert_eq!(lone.await.unwrap(), Submitted::Stored);
        drop(_arrived);
        let stopped = stop(&handle, thread).await;
        assert_eq!(stopped, Stopped::default());
        assert_eq!(stored(dir.path()), 2);
    }

    /// A visitor erased while their hits wait in the hit log: the hits are not stored
    /// after the erasure.
    #[test]
    fn hits_held_in_the_log_of_a_visitor_erased_meanwhile_are_not_stored() {
        use crate::store::PrivacyStore;
        let (dir, store) = store_with_site();
        let mut writer = EventWriter::for_tests(&store);
        let erased = hit(3).visitor_id;
        assert_eq!(
            store
                .erase_subject(&crate::store::Subject::Visitor(erased))
                .unwrap(),
            0
        );
        let hits: Vec<Event> = (0..14).map(hit).collect();
        let others = hits.iter().filter(|e| e.visitor_id != erased).count() as i64;
        assert!(others < 14);
        assert!(writer.commit_logged(&mut { hits }, Vec::new(), Index::Now, Some(1)));
        assert_eq!(stored(dir.path()), others);
        let conn = rusqlite::Connection::open(dir.path().join("pixeltrack.db")).unwrap();
        let theirs: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM events WHERE visitor_id = ?1",
                [erased],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(theirs, 0);
    }

    /// Records a crash left in the log (hits answered, never committed) are committed
    /// when the writer starts, each exactly once: the store keeps the number of the
    /// last record it has, so a second start (or a file the first could not remove)
    /// adds nothing.
    #[test]
    fn answered_hits_a_crash_left_in_the_log_are_stored_once_at_the_next_start() {
        let (dir, store) = store_with_site();
        {
            let (mut log, _) = hitlog::HitLog::open(dir.path(), 0, false).unwrap();
            log.append(&(0..5).map(hit).collect::<Vec<_>>()).unwrap();
            log.append(&(5..8).map(hit).collect::<Vec<_>>()).unwrap();
        }
        let copy = tempfile::tempdir().unwrap();
        for f in std::fs::read_dir(dir.path()).unwrap() {
            let f = f.unwrap().path();
            if f.to_string_lossy().ends_with(".log") {
                std::fs::copy(&f, copy.path().join(f.file_name().unwrap())).unwrap();
            }
        }
        let run = |store: &crate::store::SqliteStore| {
            let writer = EventWriter::for_tests(store);
            let log = hitlog::HitLog::open(dir.path(), writer.logged().unwrap(), false).unwrap();
            let (handle, thread) = start(writer, &config(50), Clock::System, log);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(handle.shutdown());
            assert_eq!(thread.join().unwrap(), Stopped::default());
        };
        run(&store);
        assert_eq!(stored(dir.path()), 8, "both records replayed");
        let (_, left) = hitlog::HitLog::open(dir.path(), 0, false).unwrap();
        assert!(left.files.is_empty(), "replayed files removed");
        // The same records again (a removal that failed): the store has them.
        for f in std::fs::read_dir(copy.path()).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, dir.path().join(f.file_name().unwrap())).unwrap();
        }
        run(&store);
        assert_eq!(stored(dir.path()), 8, "nothing stored twice");
    }

    /// A batch waits for hits other handlers are on, until it holds half of those in
    /// flight or its time is up; a lone client never waits.
    #[test]
    fn a_batch_gathers_the_hits_in_flight_and_a_lone_one_goes_at_once() {
        let long = Duration::from_secs(5);
        let (tx, mut rx) = mpsc::channel::<Msg>(16);
        let in_flight = AtomicI64::new(1);
        let mut msgs = vec![Msg::Tick];
        let t = Instant::now();
        gather(&mut rx, &mut msgs, 100, long, &in_flight);
        assert!(t.elapsed() < Duration::from_secs(1), "a lone hit waited");
        assert_eq!(msgs.len(), 1);

        // Three in flight, one taken: the next one to arrive joins the batch, and then
        // two of three are enough.
        in_flight.store(3, Ordering::Release);
        let late = tx.clone();
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            late.blocking_send(Msg::Tick).unwrap();
        });
        let t = Instant::now();
        gather(&mut rx, &mut msgs, 100, long, &in_flight);
        sender.join().unwrap();
        assert_eq!(msgs.len(), 2, "the hit in flight joined the batch");
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "it waited past two of three"
        );

        // Hits in flight that never come: the batch goes when its time is up, and
        // `gather_us = 0` never waits.
        in_flight.store(10, Ordering::Release);
        let t = Instant::now();
        gather(
            &mut rx,
            &mut msgs,
            100,
            Duration::from_millis(30),
            &in_flight,
        );
        assert!(t.elapsed() >= Duration::from_millis(30));
        assert!(t.elapsed() < Duration::from_secs(1));
        gather(&mut rx, &mut msgs, 100, Duration::ZERO, &in_flight);
        assert_eq!(msgs.len(), 2);
        drop(tx);
    }
}
