//! Reading back from ClickHouse behind the synchronous store traits ([`RollupStore`] and
//! [`EventStore`]), so every report, the dashboard, the API and the CLI read the
//! forwarded data with the code that reads SQLite. Each call blocks on a runtime of
//! the reader's own (one worker thread): callable from plain threads and from the
//! server's `spawn_blocking` tasks, never from async code directly.

use std::collections::HashMap;

use super::{ChError, ClickHouse, SumRow};
use crate::clock::Millis;
use crate::config::StoreConfig;
use crate::model::{Event, SiteId};
use crate::store::{
    AdCount, Counts, Dim, EmailRow, EventStore, Filter, Group, Pattern, Result, RollupStore,
    RollupSum, StoreError, Touch, WebCounts,
};

pub struct ClickHouseReader {
    ch: ClickHouse,
    /// Always `Some` until dropped (taken out to shut down without blocking).
    rt: Option<tokio::runtime::Runtime>,
    /// The last day marks read (see [`EventStore::day_marks`]).
    marks: std::sync::Mutex<Option<MarksRead>>,
}

/// Day marks read at `at` for the days `[first, end)` of a site.
struct MarksRead {
    site_id: i64,
    first: i64,
    end: i64,
    at: std::time::Instant,
    marks: HashMap<i64, i64>,
}

/// How long a read of day marks answers again. One report asks for the marks of its
/// range, of the period before it and of the conversions' lookback within moments, and
/// someone on the dashboard loads page after page, a filter after another: one read
/// answers them all (0.3–0.45 s at 18 M events, about half of a filtered page), and a
/// change to a past day in ClickHouse (a collector's late events, a deletion made
/// there) is seen by reports from five seconds later on. Today is never read by mark.
const MARKS_FRESH: std::time::Duration = std::time::Duration::from_secs(5);

/// How long the days of a read of day marks are read again with the next one, when
/// that asks for other days: one read instead of two, each as long as the longer one.
const MARKS_JOINED: std::time::Duration = std::time::Duration::from_secs(10);

impl ClickHouseReader {
    pub fn new(c: &StoreConfig) -> std::io::Result<ClickHouseReader> {
        Ok(ClickHouseReader {
            ch: ClickHouse::new(c),
            marks: std::sync::Mutex::new(None),
            rt: Some(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("pixeltrack-ch-read")
                    .enable_all()
                    .build()?,
            ),
        })
    }

    fn rt(&self) -> &tokio::runtime::Runtime {
        self.rt.as_ref().expect("the runtime lives until drop")
    }

    /// Runs `query` on the reader's runtime and hands each row it sends to `f` on this
    /// thread (which may block, e.g. writing to a slow client through another runtime);
    /// when `f` fails, the query stops. The number of rows `f` took.
    fn stream<T: Send + 'static>(
        &self,
        what: &str,
        query: impl FnOnce(
            ClickHouse,
            tokio::sync::mpsc::Sender<T>,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = super::Result<u64>> + Send>,
        >,
        mut f: impl FnMut(T) -> std::io::Result<()>,
    ) -> Result<u64> {
        let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
        let task = self.rt().spawn(query(self.ch.clone(), tx));
        let mut n = 0;
        while let Some(row) = rx.blocking_recv() {
            if f(row).is_err() {
                break;
            }
            n += 1;
        }
        drop(rx);
        self.rt()
            .handle()
            .block_on(task)
            .map_err(|e| StoreError::Conflict(format!("reading {what} from ClickHouse: {e}")))?
            .map_err(|e| remote(what, e))?;
        Ok(n)
    }

    fn run<T>(
        &self,
        what: &str,
        f: impl std::future::Future<Output = super::Result<T>>,
    ) -> Result<T> {
        self.rt().handle().block_on(f).map_err(|e| remote(what, e))
    }
}

impl Drop for ClickHouseReader {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which panics inside async code; this does not.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

fn counts(s: &[i64; 9]) -> Counts {
    Counts::from_array(*s)
}

fn remote(what: &str, e: ChError) -> StoreError {
    StoreError::Conflict(format!("reading {what} from ClickHouse: {e}"))
}

impl RollupStore for ClickHouseReader {
    fn rollup_sums(
        &self,
        site_id: SiteId,
        dim: Dim,
        from_hour: i64,
        to_hour: i64,
        limit: usize,
    ) -> Result<Vec<RollupSum>> {
        let rows = self.run(
            "rollups",
            self.ch
                .rollup_sums(site_id.0, dim as i64, from_hour, to_hour, limit),
        )?;
        Ok(rows
            .into_iter()
            .map(|r: SumRow| RollupSum {
                counts: counts(&r.sums),
                value: r.value,
            })
            .collect())
    }

    fn rollup_value(
        &self,
        site_id: SiteId,
        dim: Dim,
        value: &str,
        from_hour: i64,
        to_hour: i64,
    ) -> Result<Counts> {
        let row = self.run(
            "rollups",
            self.ch
                .rollup_value(site_id.0, dim as i64, value, from_hour, to_hour),
        )?;
        Ok(row.map(|r| counts(&r.sums)).unwrap_or_default())
    }

    fn rollup_series(
        &self,
        site_id: SiteId,
        from_hour: i64,
        to_hour: i64,
        bucket_hours: i64,
    ) -> Result<Vec<(i64, Counts)>> {
        let rows = self.run(
            "rollups",
            self.ch
                .rollup_series(site_id.0, from_hour, to_hour, bucket_hours),
        )?;
        rows.into_iter()
            .map(|r| {
                let bucket = r.value.parse::<i64>().map_err(|e| {
                    StoreError::Conflict(format!("ClickHouse bucket {:?}: {e}", r.value))
                })?;
                Ok((bucket, counts(&r.sums)))
            })
            .collect()
    }
}

impl EventStore for ClickHouseReader {
    fn for_each_event(
        &self,
        site_id: SiteId,
        from_ms: Millis,
        to_ms: Millis,
        f: &mut dyn FnMut(Event) -> std::io::Result<()>,
    ) -> Result<u64> {
        let site = site_id.0;
        self.stream(
            "events",
            move |ch, tx| {
                Box::pin(async move { ch.for_each_event(site, from_ms, to_ms, tx).await })
            },
            f,
        )
    }

    fn count_events(&self, site_id: SiteId) -> Result<u64> {
        self.run("events", self.ch.site_event_count(site_id.0))
    }

    fn has_events(&self, site_id: SiteId) -> Result<bool> {
        self.run("events", self.ch.has_events(site_id.0))
    }

    fn web_counts(
        &self,
        site_id: SiteId,
        from_ms: Millis,
        to_ms: Millis,
        filters: &[Filter],
        groups: &[Group],
    ) -> Result<WebCounts> {
        self.run(
            "events",
            self.ch
                .web_counts(site_id.0, from_ms, to_ms, filters, groups),
        )
    }

    fn day_marks(
        &self,
        site_id: SiteId,
        first: i64,
        end: i64,
    ) -> Result<Option<HashMap<i64, i64>>> {
        let site = site_id.0;
        let within = |m: &HashMap<i64, i64>| -> HashMap<i64, i64> {
            m.iter()
                .filter(|(d, _)| (first..end).contains(*d))
                .map(|(d, v)| (*d, *v))
                .collect()
        };
        let mut last = self.marks.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = last.as_ref().filter(|m| {
            m.site_id == site && m.first <= first && end <= m.end && m.at.elapsed() < MARKS_FRESH
        }) {
            return Ok(Some(within(&m.marks)));
        }
        // The period before the range and the conversions' lookback (31 days) too, and
        // the days of the read before if it was moments ago: the site page asks for its
        // range's days and for the held segments' 62 days, and one read answers both.
        let (mut from, mut to) = (first - (end - first) - 31, end);
        if let Some(m) = last
            .as_ref()
            .filter(|m| m.site_id == site && m.at.elapsed() < MARKS_JOINED)
        {
            (from, to) = (from.min(m.first), to.max(m.end));
        }
        let at = std::time::Instant::now();
        let marks: HashMap<i64, i64> = self
            .run("events", self.ch.day_marks(site, from, to))?
            .into_iter()
            .collect();
        let out = within(&marks);
        *last = Some(MarksRead {
            site_id: site,
            first: from,
            end: to,
            at,
            marks,
        });
        Ok(Some(out))
    }

    /// One query per run of consecutive days (a per-day query would read the range's
    /// visits once per day).
    fn web_counts_by_day(
        &self,
        site_id: SiteId,
        days: &[i64],
        filters: &[Filter],
        groups: &[Group],
    ) -> Result<Vec<(i64, WebCounts)>> {
        let mut out = Vec::new();
        for run in days.chunk_by(|a, b| *b == a + 1) {
            let run = (run[0], run[run.len() - 1] + 1);
            out.extend(self.run(
                "events",
                self.ch.web_counts_by_day(site_id.0, run, filters, groups),
            )?);
        }
        Ok(out)
    }

    fn web_rows(
        &self,
        site_id: SiteId,
        from_ms: Millis,
        to_ms: Millis,
        f: &mut dyn FnMut(&crate::store::WebRow),
    ) -> Result<bool> {
        for r in self.run("events", self.ch.web_rows(site_id.0, from_ms, to_ms))? {
            f(&r.into_web_row());
        }
        Ok(true)
    }

    fn campaign_events(&self, campaign_id: i64) -> Result<Vec<EmailRow>> {
        self.run("events", self.ch.campaign_events(campaign_id))
    }

    fn has_human_open(&self, campaign_id: i64, recipient: &str) -> Result<bool> {
        self.run("events", self.ch.has_human_open(campaign_id, recipient))
    }

    fn ad_counts(
        &self,
        site_id: SiteId,
        campaign_id: Option<i64>,
        from_ms: Millis,
        to_ms: Millis,
    ) -> Result<Vec<AdCount>> {
        self.run(
            "events",
            self.ch.ad_counts(site_id.0, campaign_id, from_ms, to_ms),
        )
    }

    fn touches(&self, site_id: SiteId, from_ms: Millis, to_ms: Millis) -> Result<Vec<Touch>> {
        self.run("events", self.ch.touches(site_id.0, from_ms, to_ms))
    }

    fn touches_of(
        &self,
        site_id: SiteId,
        from_ms: Millis,
        to_ms: Millis,
        visitors: &std::collections::HashSet<i64>,
        click_ids: &std::collections::HashSet<String>,
    ) -> Result<Vec<Touch>> {
        let narrowed = self.run(
            "events",
            self.ch
                .touches_of(site_id.0, from_ms, to_ms, visitors, click_ids),
        )?;
        match narrowed {
            Some(t) => Ok(t),
            None => Ok(crate::store::events::touches_of(
                self.touches(site_id, from_ms, to_ms)?,
                visitors,
                click_ids,
            )),
        }
    }

    fn pattern_counts(
        &self,
        site_id: SiteId,
        pattern: &Pattern,
        from_ms: Millis,
        to_ms: Millis,
    ) -> Result<(i64, i64)> {
        self.run(
            "events",
            self.ch.pattern_counts(site_id.0, pattern, from_ms, to_ms),
        )
    }

    /// One query per run of consecutive days.
    fn pattern_counts_by_day(
        &self,
        site_id: SiteId,
        pattern: &Pattern,
        days: &[i64],
    ) -> Result<Vec<(i64, (i64, i64))>> {
        let mut out = Vec::new();
        for run in days.chunk_by(|a, b| *b == a + 1) {
            let run = (run[0], run[run.len() - 1] + 1);
            out.extend(self.run(
                "events",
                self.ch.pattern_counts_by_day(site_id.0, pattern, run),
            )?);
        }
        Ok(out)
    }

    fn funnel_rows(
        &self,
        site_id: SiteId,
        steps: &[Pattern],
        by_visit: bool,
        from_ms: Millis,
        to_ms: Millis,
    ) -> Result<Vec<(i64, Millis, u64)>> {
        self.run(
            "events",
            self.ch
                .funnel_rows(site_id.0, steps, by_visit, from_ms, to_ms),
        )
    }
}
