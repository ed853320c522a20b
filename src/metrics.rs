//! Counters for `/metrics`, in Prometheus text format. Hand-rolled on atomics: the
//! label sets are small fixed enums (never paths or user agents), and the hot path
//! pays one relaxed atomic add per counter, with no registry lookups.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::model::DropReason;

/// Routes as metric labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    PixelGif,
    PixelPng,
    EmailOpen,
    EmailClick,
    Event,
    Script,
    Health,
    Metrics,
    /// Matomo's tracking API (`/matomo.php`, `/piwik.php`).
    Matomo,
    /// Plausible's events API (`/api/event`).
    Plausible,
    Other,
}

impl Route {
    const ALL: [Route; 11] = [
        Route::PixelGif,
        Route::PixelPng,
        Route::EmailOpen,
        Route::EmailClick,
        Route::Event,
        Route::Script,
        Route::Health,
        Route::Metrics,
        Route::Matomo,
        Route::Plausible,
        Route::Other,
    ];

    fn label(self) -> &'static str {
        match self {
            Route::PixelGif => "pixel_gif",
            Route::PixelPng => "pixel_png",
            Route::EmailOpen => "email_open",
            Route::EmailClick => "email_click",
            Route::Event => "event",
            Route::Script => "script",
            Route::Health => "health",
            Route::Metrics => "metrics",
            Route::Matomo => "matomo",
            Route::Plausible => "plausible",
            Route::Other => "other",
        }
    }
}

/// Upper bounds of the commit-latency buckets, in microseconds.
const COMMIT_BUCKETS_US: [u64; 12] = [
    250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000, 5_000_000,
];

/// Connections: open now, refused at the overall and at the per-address limit, and
/// requests in progress (from the handler's start to the end of the response body).
#[derive(Default)]
pub struct ConnStats {
    pub open: AtomicI64,
    pub refused_total: AtomicU64,
    pub refused_per_ip: AtomicU64,
    pub requests_in_progress: AtomicI64,
}

#[derive(Default)]
pub struct Metrics {
    requests: [AtomicU64; 11],
    drops: [AtomicU64; DropReason::ALL.len()],
    pub events_stored: AtomicU64,
    pub bot_events_stored: AtomicU64,
    pub batches_written: AtomicU64,
    pub batches_failed: AtomicU64,
    /// Transactions that wrote derived rows (sessions, rollups, unique keys).
    pub index_writes: AtomicU64,
    pub commit_timeouts: AtomicU64,
    pub queue_depth: AtomicI64,
    /// The last write to the store failed (`/readyz` says not ready).
    pub store_failing: std::sync::atomic::AtomicBool,
    /// The writer's memory: open sessions and unique-visitor keys held (both bounded,
    /// see `ingest.max_open_sessions` and `ingest.max_unique_keys`), and sessions the
    /// bound ended early.
    pub open_sessions: AtomicI64,
    pub unique_keys_held: AtomicI64,
    pub sessions_cut: AtomicU64,
    /// Forwarding to ClickHouse (`store.backend = "clickhouse"`): the spool's shipped
    /// mark, events committed and not shipped, whether the backlog reached
    /// `store.spool_max_events` (hits are then refused as `spool_full`), whether the
    /// last attempt failed, and what was shipped.
    pub forward_shipped_to: AtomicI64,
    pub spool_backlog: AtomicI64,
    /// Hits answered from the hit log and not committed to the store yet.
    pub hit_log_backlog: AtomicI64,
    /// Appends to the hit log that failed (their hits waited for their commit).
    pub hit_log_append_failures: AtomicU64,
    pub spool_full: std::sync::atomic::AtomicBool,
    pub forward_failing: std::sync::atomic::AtomicBool,
    pub forwarded_events: AtomicU64,
    pub forward_batches: AtomicU64,
    pub forward_failures: AtomicU64,
    pub conns: std::sync::Arc<ConnStats>,
    commit_buckets: [AtomicU64; COMMIT_BUCKETS_US.len()],
    commit_count: AtomicU64,
    commit_sum_us: AtomicU64,
}

impl Metrics {
    pub fn request(&self, route: Route) {
        let i = Route::ALL
            .iter()
            .position(|r| *r == route)
            .unwrap_or(Route::ALL.len() - 1);
        self.requests[i].fetch_add(1, Ordering::Relaxed);
    }

    pub fn dropped(&self, reason: DropReason) {
        self.drops[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()].load(Ordering::Relaxed)
    }

    pub fn commit_latency(&self, d: std::time::Duration) {
        let us = d.as_micros() as u64;
        for (i, bound) in COMMIT_BUCKETS_US.iter().enumerate() {
            if us <= *bound {
                self.commit_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.commit_count.fetch_add(1, Ordering::Relaxed);
        self.commit_sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut s = String::with_capacity(4096);
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        s.push_str("# HELP pixeltrack_http_requests_total HTTP requests by route.\n");
        s.push_str("# TYPE pixeltrack_http_requests_total counter\n");
        for (i, r) in Route::ALL.iter().enumerate() {
            let _ = writeln!(
                s,
                "pixeltrack_http_requests_total{{route=\"{}\"}} {}",
                r.label(),
                get(&self.requests[i])
            );
        }
        s.push_str("# HELP pixeltrack_events_stored_total Events committed to the store (bots included).\n");
        s.push_str("# TYPE pixeltrack_events_stored_total counter\n");
        let _ = writeln!(
            s,
            "pixeltrack_events_stored_total {}",
            get(&self.events_stored)
        );
        s.push_str("# HELP pixeltrack_bot_events_stored_total Events stored with a bot verdict.\n");
        s.push_str("# TYPE pixeltrack_bot_events_stored_total counter\n");
        let _ = writeln!(
            s,
            "pixeltrack_bot_events_stored_total {}",
            get(&self.bot_events_stored)
        );
        s.push_str("# HELP pixeltrack_events_dropped_total Hits not stored, by reason.\n");
        s.push_str("# TYPE pixeltrack_events_dropped_total counter\n");
        for r in DropReason::ALL {
            let _ = writeln!(
                s,
                "pixeltrack_events_dropped_total{{reason=\"{}\"}} {}",
                r.as_str(),
                self.drops(r)
            );
        }
        s.push_str("# HELP pixeltrack_commit_timeouts_total Hits abandoned (never written) because the writer did not take them within commit_timeout_ms.\n");
        s.push_str("# TYPE pixeltrack_commit_timeouts_total counter\n");
        let _ = writeln!(
            s,
            "pixeltrack_commit_timeouts_total {}",
            get(&self.commit_timeouts)
        );
        s.push_str(
            "# HELP pixeltrack_batches_written_total Transactions committed by the writer.\n",
        );
        s.push_str("# TYPE pixeltrack_batches_written_total counter\n");
        let _ = writeln!(
            s,
            "pixeltrack_batches_written_total {}",
            get(&self.batches_written)
        );
        s.push_str("# HELP pixeltrack_index_writes_total Transactions that wrote derived rows (sessions, rollups, unique visitors): fewer than batches under load.\n");
        s.push_str("# TYPE pixeltrack_index_writes_total counter\n");
        let _ = writeln!(
            s,
            "pixeltrack_index_writes_total {}",
            get(&self.index_writes)
        );
        s.push_str("# HELP pixeltrack_batches_failed_total Transactions that failed (their events are counted as store_error drops).\n");
        s.push_str("# TYPE pixeltrack_batches_failed_total counter\n");
        let _ = writeln!(
            s,
            "pixeltrack_batches_failed_total {}",
            get(&self.batches_failed)
        );
        for (name, help, v) in [
            ("open_sessions", "Open sessions the writer holds in memory (bounded by ingest.max_open_sessions).", self.open_sessions.load(Ordering::Relaxed)),
            ("unique_keys_held", "Unique-visitor keys the writer holds in memory (bounded by ingest.max_unique_keys).", self.unique_keys_held.load(Ordering::Relaxed)),
            ("hit_log_backlog", "Hits answered from the hit log and not committed to the store yet (bounded: past 50,000 hits wait for their commit).", self.hit_log_backlog.load(Ordering::Relaxed)),
        ] {
            let _ = writeln!(s, "# HELP pixeltrack_{name} {help}\n# TYPE pixeltrack_{name} gauge\npixeltrack_{name} {v}");
        }
        let _ = writeln!(
            s,
            "# HELP pixeltrack_hit_log_append_failures_total Appends to the hit log that failed: their hits waited for their commit instead.\n# TYPE pixeltrack_hit_log_append_failures_total counter\npixeltrack_hit_log_append_failures_total {}",
            get(&self.hit_log_append_failures)
        );
        for (name, help, v) in [
            (
                "spool_backlog",
                "Committed events not shipped to ClickHouse yet (store.backend = \"clickhouse\").",
                self.spool_backlog.load(Ordering::Relaxed),
            ),
            (
                "spool_full",
                "1 while the backlog is at store.spool_max_events: hits are refused as spool_full.",
                i64::from(self.spool_full.load(Ordering::Relaxed)),
            ),
            (
                "forward_failing",
                "1 while the last attempt to ship a batch to ClickHouse failed.",
                i64::from(self.forward_failing.load(Ordering::Relaxed)),
            ),
        ] {
            let _ = writeln!(s, "# HELP pixeltrack_{name} {help}\n# TYPE pixeltrack_{name} gauge\npixeltrack_{name} {v}");
        }
        for (name, help, v) in [
            (
                "forwarded_events_total",
                "Events shipped to ClickHouse (each exactly once).",
                get(&self.forwarded_events),
            ),
            (
                "forward_batches_total",
                "Batches shipped to ClickHouse.",
                get(&self.forward_batches),
            ),
            (
                "forward_failures_total",
                "Attempts to ship a batch that failed (retried with backoff).",
                get(&self.forward_failures),
            ),
        ] {
            let _ = writeln!(s, "# HELP pixeltrack_{name} {help}\n# TYPE pixeltrack_{name} counter\npixeltrack_{name} {v}");
        }
        let _ = writeln!(
            s,
            "# HELP pixeltrack_connections_open HTTP connections open now (bounded by limits.max_connections).\n# TYPE pixeltrack_connections_open gauge\npixeltrack_connections_open {}",
            self.conns.open.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP pixeltrack_connections_refused_total Connections closed on arrival, by the limit reached.\n# TYPE pixeltrack_connections_refused_total counter\npixeltrack_connections_refused_total{{limit=\"total\"}} {}\npixeltrack_connections_refused_total{{limit=\"per_ip\"}} {}",
            get(&self.conns.refused_total),
            get(&self.conns.refused_per_ip)
        );
        let _ = writeln!(
            s,
            "# HELP pixeltrack_sessions_cut_total Sessions ended early because ingest.max_open_sessions was reached.\n# TYPE pixeltrack_sessions_cut_total counter\npixeltrack_sessions_cut_total {}",
            get(&self.sessions_cut)
        );
        s.push_str("# HELP pixeltrack_queue_depth Events waiting for the writer.\n");
        s.push_str("# TYPE pixeltrack_queue_depth gauge\n");
        let _ = writeln!(
            s,
            "pixeltrack_queue_depth {}",
            self.queue_depth.load(Ordering::Relaxed).max(0)
        );
        s.push_str("# HELP pixeltrack_commit_seconds Time to write and commit one batch.\n");
        s.push_str("# TYPE pixeltrack_commit_seconds histogram\n");
        for (i, bound) in COMMIT_BUCKETS_US.iter().enumerate() {
            let _ = writeln!(
                s,
                "pixeltrack_commit_seconds_bucket{{le=\"{}\"}} {}",
                *bound as f64 / 1e6,
                get(&self.commit_buckets[i])
            );
        }
        let count = get(&self.commit_count);
        let _ = writeln!(s, "pixeltrack_commit_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            s,
            "pixeltrack_commit_seconds_sum {}",
            get(&self.commit_sum_us) as f64 / 1e6
        );
        let _ = writeln!(s, "pixeltrack_commit_seconds_count {count}");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_drop_reason_and_the_histogram() {
        let m = Metrics::default();
        m.dropped(DropReason::UnknownSite);
        m.dropped(DropReason::UnknownSite);
        m.commit_latency(std::time::Duration::from_micros(700));
        let text = m.render();
        assert!(text.contains("pixeltrack_events_dropped_total{reason=\"unknown_site\"} 2"));
        assert!(text.contains("pixeltrack_events_dropped_total{reason=\"overload\"} 0"));
        assert!(text.contains("pixeltrack_commit_seconds_bucket{le=\"0.0005\"} 0"));
        assert!(text.contains("pixeltrack_commit_seconds_bucket{le=\"0.001\"} 1"));
        assert!(text.contains("pixeltrack_commit_seconds_count 1"));
    }
}
