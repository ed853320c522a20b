//! Forwarding: with `store.backend = "clickhouse"` every committed event is shipped to
//! ClickHouse, exactly once, from the spool — the same events table the writer commits
//! to before it answers, so a `200` still means durable across `kill -9` whether or not
//! ClickHouse is up.
//!
//! One batch at a time, on a thread of its own:
//! 1. **Seal**: the next events past the shipped mark (at most `store.batch_rows`, all
//!    of one month) become batch `seq`, recorded before anything is sent.
//! 2. **Send**: the batch is split by shard (a visitor's events all go to one); each
//!    part is one insert into that shard's `events_local`, with a marker row (site 0,
//!    id from `seq` and the shard) and the query id `pixeltrack-<collector>-<seq>-<shard>`.
//!    One insert into one month partition is atomic: the marker lands with the part or
//!    not at all. Each attempt is recorded before it is sent.
//! 3. **Retry**: after a failure whose outcome is unknown (a timeout, a dropped
//!    connection, a crash), nothing is re-sent while the earlier insert still runs (its
//!    query id is in `system.processes`; a second insert with the same id would be
//!    refused anyway), and a part whose marker is already there is not re-sent. Only a
//!    part that provably did not land is sent again — rebuilt from the same rows, so
//!    byte-identical unless an erasure removed some of them meanwhile.
//! 4. **Ship**: when every part landed, the mark moves past the batch.
//!
//! Derived rows follow: every write of them (rollup deltas and the visits it changed)
//! is recorded with the events it indexed, and shipped between batches — the visits
//! to their visitors' shards, the deltas with a marker row as a batch is.
//!
//! Changes follow: erasure, retention and removed sites and campaigns record what they
//! deleted locally, and email verdicts corrected after the fact what they relabelled
//! (each in the transaction of the local change); between batches the forwarder makes
//! each as an `ALTER TABLE … DELETE` or `… UPDATE` mutation on every shard, in order.
//!
//! Failures back off from 250 ms to 30 s. The backlog (committed, not shipped) is
//! bounded by `store.spool_max_events`: past it hits are refused as `spool_full` and
//! `/readyz` says not ready, until the forwarder catches up.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::config::StoreConfig;
use crate::metrics::Metrics;
use crate::store::clickhouse::row::{event_id, marker_id};
use crate::store::clickhouse::{ChError, ClickHouse, EventRow, RollupRow, SessionChRow};
use crate::store::sqlite::{Batch, Change, Relabel, Spool};
use crate::store::SessionRow;

/// The running forwarder; [`Forwarder::stop`] ends it after the current attempt.
pub struct Forwarder {
    stop: watch::Sender<bool>,
    thread: JoinHandle<()>,
}

impl Forwarder {
    /// Starts forwarding from `spool`. ClickHouse need not be up: the schema is
    /// created on the first successful contact, and collecting goes on meanwhile.
    pub fn start(spool: Spool, config: &StoreConfig, metrics: Arc<Metrics>) -> Forwarder {
        let (stop, stopped) = watch::channel(false);
        let ch = ClickHouse::new(config);
        let batch_rows = config.batch_rows;
        let spool_max = config.spool_max_events as i64;
        let thread = std::thread::Builder::new()
            .name("pixeltrack-forward".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("building the forwarder's runtime");
                let mut f = Forwarding {
                    spool,
                    ch,
                    metrics,
                    batch_rows,
                    spool_max,
                    collector: None,
                    migrated: false,
                    derived_turn: true,
                };
                rt.block_on(f.run(stopped));
            })
            .expect("spawning the forwarder thread");
        Forwarder { stop, thread }
    }

    /// Stops after the attempt in progress; what is not shipped stays in the spool for
    /// the next start.
    pub fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.thread.join();
    }
}

struct Forwarding {
    spool: Spool,
    ch: ClickHouse,
    metrics: Arc<Metrics>,
    batch_rows: usize,
    spool_max: i64,
    collector: Option<u32>,
    migrated: bool,
    /// Whether derived rows go next (else an event batch, when there is one).
    derived_turn: bool,
}

#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    ClickHouse(#[from] ChError),
    #[error("spool: {0}")]
    Spool(#[from] crate::store::StoreError),
}

/// Most verdict corrections made by one mutation.
const RELABELS_PER_MUTATION: usize = 50;
const IDLE: Duration = Duration::from_millis(200);
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
const LOG_EVERY: Duration = Duration::from_secs(60);

impl Forwarding {
    async fn run(&mut self, mut stopped: watch::Receiver<bool>) {
        let mut backoff = BACKOFF_MIN;
        let mut failing: Option<(Instant, Instant, u64)> = None; // since, last log, failures
        while !*stopped.borrow() {
            let outcome = self.step().await;
            self.update_backlog();
            let pause = match outcome {
                Ok(shipped) => {
                    if let Some((since, _, n)) = failing.take() {
                        tracing::info!(
                            failed_for_ms = since.elapsed().as_millis() as u64,
                            failures = n,
                            "forwarding to ClickHouse works again"
                        );
                    }
                    self.metrics.forward_failing.store(false, Ordering::Relaxed);
                    backoff = BACKOFF_MIN;
                    if shipped {
                        continue;
                    }
                    IDLE
                }
                Err(e) => {
                    self.metrics
                        .forward_failures
                        .fetch_add(1, Ordering::Relaxed);
                    self.metrics.forward_failing.store(true, Ordering::Relaxed);
                    match &mut failing {
                        None => {
                            tracing::warn!(error = %e, "forwarding to ClickHouse failed; retrying with backoff (events stay in the spool)");
                            failing = Some((Instant::now(), Instant::now(), 1));
                        }
                        Some((_, logged, n)) => {
                            *n += 1;
                            if logged.elapsed() >= LOG_EVERY {
                                tracing::warn!(error = %e, failures = *n, "forwarding to ClickHouse still failing");
                                *logged = Instant::now();
                            }
                        }
                    }
                    let pause = backoff;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    pause
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stopped.changed() => {}
            }
        }
    }

    /// Refreshes the backlog and the `spool_full` flag from the spool itself, so the
    /// flag clears as the forwarder catches up even while every hit is refused.
    fn update_backlog(&mut self) {
        if let Ok(backlog) = self.spool.backlog() {
            self.metrics.spool_backlog.store(backlog, Ordering::Relaxed);
            self.metrics
                .spool_full
                .store(backlog >= self.spool_max, Ordering::Relaxed);
        }
    }

    /// Ships one batch. Ok(false): nothing to ship.
    async fn step(&mut self) -> Result<bool, Failure> {
        let collector = match self.collector {
            Some(c) => c,
            None => {
                let (c, shipped) = self.spool.state()?;
                self.metrics
                    .forward_shipped_to
                    .store(shipped, Ordering::Relaxed);
                self.collector = Some(c);
                c
            }
        };
        if !self.migrated {
            self.ch.migrate().await?;
            self.migrated = true;
        }
        // Event batches and writes of derived rows take turns, so a steady stream of
        // either never holds up the other.
        let batch = match self.spool.open_batch()? {
            Some(b) => b,
            None if self.change().await? => return Ok(true),
            None if self.derived_turn && self.rollups(collector).await? => {
                self.derived_turn = false;
                return Ok(true);
            }
            None => match self.spool.seal(self.batch_rows)? {
                Some(b) => b,
                None => return self.rollups(collector).await,
            },
        };
        self.derived_turn = true;
        self.ship(collector, &batch).await?;
        Ok(true)
    }

    /// Makes the oldest pending change in ClickHouse, if any — only between batches, so
    /// after every batch that may hold its rows has landed. Consecutive relabels to
    /// the same verdict go as one mutation.
    async fn change(&mut self) -> Result<bool, Failure> {
        let changes = self.spool.next_changes(RELABELS_PER_MUTATION)?;
        let Some((seq, first)) = changes.first() else {
            return Ok(false);
        };
        let done = match first {
            Change::Delete(d) => {
                self.ch.delete(d).await?;
                *seq
            }
            Change::Relabel(r) => {
                let run: Vec<(i64, Relabel)> = changes
                    .iter()
                    .map_while(|(seq, c)| match c {
                        Change::Relabel(x)
                            if (&x.verdict, &x.reason) == (&r.verdict, &r.reason) =>
                        {
                            Some((*seq, x.clone()))
                        }
                        _ => None,
                    })
                    .collect();
                let relabels: Vec<Relabel> = run.iter().map(|(_, x)| x.clone()).collect();
                self.ch.relabel(&relabels).await?;
                run.last().map_or(*seq, |(s, _)| *s)
            }
        };
        self.spool.changes_done(done)?;
        Ok(true)
    }

    /// Ships the oldest writes of derived rows, if any, as many as fit in one insert
    /// (`store.batch_rows`). Their visits first, to the shards of their visitors (a
    /// visit's row replaces the older ones of the same visit, so sending it twice is
    /// harmless); then their rollup deltas with one marker row per write, in one insert
    /// into shard `first seq mod shards` — one partition, so all markers land or none.
    /// Under the same rules as event batches: the attempt recorded first; before a
    /// re-send, the query id must not be running, and writes whose markers are there
    /// are done (a retry may take in writes recorded since, so it is not byte-identical,
    /// but nothing that landed is sent again).
    async fn rollups(&mut self, collector: u32) -> Result<bool, Failure> {
        let writes = self.spool.next_rollups(self.batch_rows)?;
        let Some(first) = writes.first() else {
            return Ok(false);
        };
        let shard = (first.seq as u64 % self.ch.shard_count() as u64) as usize;
        let query_id = format!("pixeltrack-{collector}-r{}", first.seq);
        if first.attempts > 0 {
            if self.ch.running(shard, &query_id).await? {
                return Err(ChError::AlreadyRunning.into());
            }
            if self
                .ch
                .has_rollup_marker(shard, collector, first.seq)
                .await?
            {
                let landed: Vec<i64> = writes
                    .iter()
                    .take_while(|w| w.attempts > 0)
                    .map(|w| w.seq)
                    .collect();
                // The attempt that carried the first write carried all of these; check
                // the last one too, then they are done.
                let last = *landed.last().expect("the first is in");
                if self.ch.has_rollup_marker(shard, collector, last).await? {
                    self.spool.rollups_shipped(&landed)?;
                    return Ok(true);
                }
                // Otherwise go one write at a time.
                self.spool.rollups_shipped(&[first.seq])?;
                return Ok(true);
            }
        }
        for w in &writes {
            self.sessions(collector, w.seq, &w.sessions).await?;
        }
        let seqs: Vec<i64> = writes.iter().map(|w| w.seq).collect();
        self.spool.rollups_attempt(&seqs)?;
        let marker = RollupRow::marker_value(collector);
        let mut rows: Vec<RollupRow<'_>> = Vec::new();
        for w in &writes {
            rows.extend(w.rollups.iter().map(RollupRow::new));
            rows.push(RollupRow::marker(w.seq, &marker));
        }
        self.ch
            .insert::<RollupRow<'static>>(shard, "rollups_local", &query_id, &rows)
            .await?;
        self.spool.rollups_shipped(&seqs)?;
        Ok(true)
    }

    /// Sends the visits of derived-rows write `seq`, each to its visitor's shard; of
    /// a visit written twice in one write, the later row.
    async fn sessions(
        &mut self,
        collector: u32,
        seq: i64,
        sessions: &[SessionRow],
    ) -> Result<(), Failure> {
        let mut latest: std::collections::HashMap<(i64, i64), &SessionRow> =
            std::collections::HashMap::new();
        for s in sessions {
            latest.insert((s.site_id, s.id), s);
        }
        let mut parts: Vec<Vec<SessionChRow<'_>>> =
            (0..self.ch.shard_count()).map(|_| Vec::new()).collect();
        for s in latest.into_values() {
            parts[self.ch.shard_of(s.visitor_id)].push(SessionChRow::new(collector, seq, s));
        }
        for (shard, part) in parts.iter().enumerate().filter(|(_, p)| !p.is_empty()) {
            let query_id = format!("pixeltrack-{collector}-s{seq}-{shard}");
            self.ch
                .insert::<SessionChRow<'static>>(shard, "sessions_local", &query_id, part)
                .await?;
        }
        Ok(())
    }

    async fn ship(&mut self, collector: u32, batch: &Batch) -> Result<(), Failure> {
        let events = self.spool.events(batch)?;
        let shards = self.ch.shard_count();
        let mut parts: Vec<Vec<EventRow<'_>>> = (0..shards).map(|_| Vec::new()).collect();
        for (id, e, visit) in &events {
            parts[self.ch.shard_of(e.visitor_id)].push(EventRow::new(
                event_id(collector, *id),
                e,
                visit.as_ref(),
            ));
        }
        let query_id = |shard: usize| format!("pixeltrack-{collector}-{}-{shard}", batch.seq);
        let pending = |shard: usize| batch.shards_done & (1 << shard) == 0;
        if batch.attempts > 0 {
            // An earlier attempt may have landed, or may still be running.
            for shard in (0..shards).filter(|s| pending(*s)) {
                if self.ch.running(shard, &query_id(shard)).await? {
                    return Err(ChError::AlreadyRunning.into());
                }
                if self
                    .ch
                    .has_marker(shard, marker_id(collector, batch.seq, shard))
                    .await?
                {
                    self.spool.shard_done(batch.seq, shard)?;
                }
            }
        }
        let batch = self.spool.open_batch()?.unwrap_or_else(|| batch.clone());
        let todo: Vec<usize> = (0..shards)
            .filter(|s| batch.shards_done & (1 << s) == 0 && !parts[*s].is_empty())
            .collect();
        if !todo.is_empty() {
            self.spool.attempt(batch.seq)?;
        }
        for shard in todo {
            let part = &mut parts[shard];
            let ts_ms = events
                .iter()
                .find(|(_, e, _)| self.ch.shard_of(e.visitor_id) == shard)
                .map_or(0, |(_, e, _)| e.ts_ms);
            part.push(EventRow::marker(
                marker_id(collector, batch.seq, shard),
                ts_ms,
            ));
            self.ch
                .insert::<EventRow<'static>>(shard, "events_local", &query_id(shard), part)
                .await?;
            self.spool.shard_done(batch.seq, shard)?;
        }
        self.spool.shipped(&batch)?;
        let m = &self.metrics;
        m.forward_shipped_to.store(batch.to_id, Ordering::Relaxed);
        m.forwarded_events
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        m.forward_batches.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
