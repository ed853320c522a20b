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

pub mod landing;
pub mod sessions;
pub mod uniques;
mod writer;

use std::sync::atomic::{AtomicI64, AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::clock::Clock;
use crate::config::{Durability, IngestConfig};
use crate::metrics::Metrics;
use crate::model::{DropReason, Event};
use crate::store::Reclassify;

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
    pub async fn submit(&self, event: Box<Event>) -> Submitted {
        if self.metrics.spool_full.load(Ordering::Relaxed) {
            // Forwarding is too far behind: nothing more is promised until it catches up.
            return self.drop_with(DropReason::SpoolFull);
        }
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
    let gather_for = Duration::from_micros(config.gather_us);
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
                take_queued(&mut rx, &mut msgs, batch_max);
                gather(&mut rx, &mut msgs, batch_max, gather_for, &others_in_flight);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

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
