//! Periodic work of a serving process, as one table: what runs, how often, and why.
//! Each job runs on the blocking pool on its own interval (the first run at start),
//! so a slow one (retention over a big store) never delays another (site reload).

use std::sync::Arc;
use std::time::Duration;

use crate::collect::Collector;

pub struct Job {
    pub name: &'static str,
    pub every: Duration,
    pub run: fn(&Collector),
}

const TICK: Duration = Duration::from_millis(100);
const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

pub const JOBS: &[Job] = &[
    // Under load the writer lets derived rows gather up to ingest.index_interval_ms;
    // when the load stops, no batch comes to write them: this does.
    Job {
        name: "ingest tick",
        every: TICK,
        run: |c| c.ingest.tick(),
    },
    // A site removed or changed by the CLI (another process) stops or changes
    // collection within a second: a removed key must not keep storing. One row (the
    // settings version) is read; the sites only when it moved. A hit a change could
    // let in checks at once (`SiteCache::refresh_now`).
    Job {
        name: "reload sites",
        every: SECOND,
        run: |c| {
            c.sites.reload();
        },
    },
    // The WAL is copied into the database beside the writer, without blocking anyone
    // (the writer would wait for an fsync between batches); the writer copies only
    // what is left when it starts the WAL over past its limit.
    Job {
        name: "checkpoint",
        every: SECOND,
        run: |c| {
            if let Err(e) = c.store.checkpoint_passive() {
                tracing::warn!(error = %e, "checkpoint failed");
            }
        },
    },
    // The operator's referrer-spam additions apply within seconds, without a restart.
    Job {
        name: "reload referrer spam list",
        every: Duration::from_secs(5),
        run: reload_spam_list,
    },
    // The operator's scanner and cloud networks apply within seconds, too.
    Job {
        name: "reload scanner network lists",
        every: Duration::from_secs(5),
        run: reload_network_lists,
    },
    // A geolocation database replaced on disk (geoipupdate, a cron download) is used
    // within seconds: read off the hot path, swapped atomically.
    Job {
        name: "reload geolocation databases",
        every: Duration::from_secs(5),
        run: |c| c.enricher.geo.reload(),
    },
    // Clients and sites whose rate allowance is full again take no memory.
    Job {
        name: "forget idle rate limits",
        every: MINUTE,
        run: |c| c.rate_limits.forget_idle(),
    },
    Job {
        name: "rotate salts",
        every: MINUTE,
        run: |c| {
            if let Err(e) = c.salts.rotate(&c.store, c.clock.now_ms()) {
                tracing::error!(error = %e, "salt rotation failed");
            }
        },
    },
    Job {
        name: "reload signing keys",
        every: MINUTE,
        run: |c| c.email.reload_keys(c.store.as_ref(), c.clock.now_ms()),
    },
    // Past days' web events held in memory for filtered views: a day changed by a
    // late event, retention or an erasure is let go (reports stop using it at once:
    // they check its mark) and read again; a day that settled is read.
    Job {
        name: "refresh day segments",
        every: Duration::from_secs(15),
        run: |c| match c.store.refresh_segments(c.clock.now_ms()) {
            Ok(0) => {}
            Ok(n) => {
                let (held, events, bytes) = c.store.segments().held();
                tracing::info!(
                    built = n,
                    held,
                    events,
                    mib = bytes >> 20,
                    "day segments read for filtered views"
                );
            }
            Err(e) => tracing::warn!(error = %e, "reading day segments failed"),
        },
    },
    Job {
        name: "retention",
        every: HOUR,
        run: |c| match crate::store::run_retention(c.store.as_ref(), c.clock.now_ms()) {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "retention: old events deleted"),
            Err(e) => tracing::error!(error = %e, "retention failed"),
        },
    },
    Job {
        name: "compact rollups",
        every: HOUR,
        run: |c| match crate::store::compact_rollups(c.store.as_ref(), c.clock.now_ms()) {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, "hourly rollups of old days folded into days"),
            Err(e) => tracing::error!(error = %e, "rollup compaction failed"),
        },
    },
    Job {
        name: "purge dashboard sessions",
        every: HOUR,
        run: |c| {
            if let Err(e) = c.store.purge_web_sessions(c.clock.now_ms()) {
                tracing::error!(error = %e, "purging expired dashboard sessions failed");
            }
        },
    },
];

/// The running jobs (see [`start`]).
pub struct Jobs {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Starts every job; [`Jobs::stop`] ends them.
pub fn start(c: &Arc<Collector>) -> Jobs {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let tasks = JOBS
        .iter()
        .map(|job| {
            let c = c.clone();
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(job.every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = stopped.wait_for(|s| *s) => return,
                    }
                    // A run started is waited for, even when the stop comes meanwhile:
                    // the blocking pool would finish it anyway, unseen.
                    let c = c.clone();
                    if tokio::task::spawn_blocking(move || (job.run)(&c))
                        .await
                        .is_err()
                    {
                        tracing::error!(job = job.name, "job panicked");
                    }
                }
            })
        })
        .collect();
    Jobs { stop, tasks }
}

impl Jobs {
    /// Lets no job start again and waits up to `within` for the runs under way to end
    /// (one may wait for a lock another process holds, up to its busy timeout).
    /// Returns whether every job ended: then none writes to the store any more.
    pub async fn stop(self, within: Duration) -> bool {
        self.stop.send_replace(true);
        let all = async {
            for t in self.tasks {
                let _ = t.await;
            }
        };
        match tokio::time::timeout(within, all).await {
            Ok(_) => true,
            Err(_) => {
                tracing::warn!("a periodic job was still running at the stop");
                false
            }
        }
    }
}

/// Re-reads `DATA/scanner-networks.toml` when it changed (or went away). A file that
/// does not parse is logged with the value at fault and the lists in use are kept.
fn reload_network_lists(c: &Collector) {
    let Some(dir) = c.store.path().parent() else {
        return;
    };
    let path = dir.join(NETWORKS_FILE);
    let lists = &c.email.networks;
    let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
    let mut read = lists.extra_read.lock().unwrap_or_else(|p| p.into_inner());
    if *read == modified {
        return;
    }
    *read = modified;
    let nets = match modified {
        None => Vec::new(),
        Some(_) => match std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|text| crate::enrich::networks::parse(&text))
        {
            Ok(nets) => nets,
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cannot use the scanner network lists; keeping the ones in use");
                return;
            }
        },
    };
    tracing::info!(file = %path.display(), networks = nets.len(), "scanner network additions loaded");
    lists.set_extra(nets);
}

/// Re-reads `DATA/referrer-spam.txt` when it changed (or went away).
fn reload_spam_list(c: &Collector) {
    let Some(dir) = c.store.path().parent() else {
        return;
    };
    let path = dir.join(SPAM_FILE);
    let spam = &c.enricher.spam;
    let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
    let mut read = spam.extra_read.lock().unwrap_or_else(|p| p.into_inner());
    if *read == modified {
        return;
    }
    let domains = match modified {
        None => Default::default(),
        Some(_) => match std::fs::read_to_string(&path) {
            Ok(text) => crate::enrich::spam::parse(&text),
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cannot read the referrer spam list");
                return;
            }
        },
    };
    tracing::info!(file = %path.display(), domains = domains.len(), "referrer spam additions loaded");
    spam.set_extra(domains);
    *read = modified;
}

/// The operator's referrer-spam additions, in the data directory.
pub const SPAM_FILE: &str = "referrer-spam.txt";

/// The operator's scanner and cloud networks, in the data directory.
pub const NETWORKS_FILE: &str = "scanner-networks.toml";
