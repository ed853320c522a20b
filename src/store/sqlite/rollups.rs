//! Rollups in SQLite: the `rollups` table of hourly rows per site, dimension and
//! value. Reports sum them ([`RollupStore`]); compaction folds the hours of old days
//! into one row per day. Every write is an additive delta, so both are exact.

use rusqlite::params;

use super::SqliteStore;
use crate::clock::Millis;
use crate::model::SiteId;
use crate::store::{Counts, Dim, Result, RollupStore, RollupSum};

pub(super) const UPSERT_ROLLUP: &str = include_str!("sql/queries/upsert_rollup.sql");
const ROLLUP_SUMS: &str = include_str!("sql/queries/rollup_sums.sql");
const ROLLUP_SERIES: &str = include_str!("sql/queries/rollup_series.sql");

fn counts_from(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Counts> {
    Ok(Counts {
        visitors: r.get(first)?,
        visits: r.get(first + 1)?,
        pageviews: r.get(first + 2)?,
        events: r.get(first + 3)?,
        bounces: r.get(first + 4)?,
        duration_ms: r.get(first + 5)?,
        scroll_sum: r.get(first + 6)?,
        scroll_n: r.get(first + 7)?,
        engaged_ms: r.get(first + 8)?,
    })
}

/// The `ON CONFLICT … DO UPDATE` rule of a rollup upsert (adding the deltas), shared by
/// the writer's upsert and the compaction, so both add every counter the same way.
fn upsert_rule() -> &'static str {
    let at = UPSERT_ROLLUP
        .find("ON CONFLICT")
        .unwrap_or(UPSERT_ROLLUP.len());
    &UPSERT_ROLLUP[at..]
}

impl RollupStore for SqliteStore {
    fn rollup_sums(
        &self,
        site_id: SiteId,
        dim: Dim,
        from_hour: i64,
        to_hour: i64,
        limit: usize,
    ) -> Result<Vec<RollupSum>> {
        if let Some(other) = &self.reads_from {
            return other.rollup_sums(site_id, dim, from_hour, to_hour, limit);
        }
        let conn = self.conn();
        let mut st = conn.prepare_cached(ROLLUP_SUMS)?;
        let rows = st.query_map(
            params![site_id, dim as i64, from_hour, to_hour, limit as i64],
            |r| {
                Ok(RollupSum {
                    value: r.get(0)?,
                    counts: counts_from(r, 1)?,
                })
            },
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn rollup_value(
        &self,
        site_id: SiteId,
        dim: Dim,
        value: &str,
        from_hour: i64,
        to_hour: i64,
    ) -> Result<Counts> {
        if let Some(other) = &self.reads_from {
            return other.rollup_value(site_id, dim, value, from_hour, to_hour);
        }
        let conn = self.conn();
        let mut st = conn.prepare_cached(
            "SELECT SUM(visitors), SUM(visits), SUM(pageviews), SUM(events), SUM(bounces),
                    SUM(duration_ms), SUM(scroll_sum), SUM(scroll_n), SUM(engaged_ms)
             FROM rollups WHERE site_id = ?1 AND dim = ?2 AND hour >= ?3 AND hour < ?4 AND value = ?5",
        )?;
        let c = st.query_row(
            params![site_id, dim as i64, from_hour, to_hour, value],
            |r| {
                let n = |i: usize| r.get::<_, Option<i64>>(i).map(Option::unwrap_or_default);
                Ok(Counts {
                    visitors: n(0)?,
                    visits: n(1)?,
                    pageviews: n(2)?,
                    events: n(3)?,
                    bounces: n(4)?,
                    duration_ms: n(5)?,
                    scroll_sum: n(6)?,
                    scroll_n: n(7)?,
                    engaged_ms: n(8)?,
                })
            },
        )?;
        Ok(c)
    }

    fn rollup_series(
        &self,
        site_id: SiteId,
        from_hour: i64,
        to_hour: i64,
        bucket_hours: i64,
    ) -> Result<Vec<(i64, Counts)>> {
        if let Some(other) = &self.reads_from {
            return other.rollup_series(site_id, from_hour, to_hour, bucket_hours);
        }
        let conn = self.conn();
        let mut st = conn.prepare_cached(ROLLUP_SERIES)?;
        let rows = st.query_map(
            params![site_id, from_hour, to_hour, bucket_hours.max(1)],
            |r| Ok((r.get(0)?, counts_from(r, 1)?)),
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

impl SqliteStore {
    /// Days before `before_day` that still have hourly rollup rows (past midnight).
    pub fn rollup_days_to_compact(&self, before_day: i64) -> Result<Vec<i64>> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT DISTINCT hour / 24 FROM rollups WHERE hour < ?1 AND hour % 24 != 0 ORDER BY 1",
        )?;
        let rows = st.query_map([before_day * 24], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Folds one day's hourly rollup rows into a single row per value at the day's
    /// first hour, in one transaction. Rollup rows are additive (every write is a
    /// delta), so this is exact and safe beside the writer; a 30-day panel then reads
    /// 30 rows per value instead of 720. Returns the rows folded away.
    pub fn compact_rollup_day(&self, day: i64) -> Result<usize> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let (first, end) = (day * 24, day * 24 + 24);
        tx.execute(
            &format!(
                "INSERT INTO rollups (site_id, dim, hour, value, visitors, visits, pageviews, events,
                                  bounces, duration_ms, scroll_sum, scroll_n, engaged_ms)
             SELECT site_id, dim, ?1, value, SUM(visitors), SUM(visits), SUM(pageviews),
                    SUM(events), SUM(bounces), SUM(duration_ms), SUM(scroll_sum), SUM(scroll_n),
                    SUM(engaged_ms)
             FROM rollups WHERE hour > ?1 AND hour < ?2
             GROUP BY site_id, dim, value
             {}",
                upsert_rule()
            ),
            params![first, end],
        )?;
        let n = tx.execute(
            "DELETE FROM rollups WHERE hour > ?1 AND hour < ?2",
            params![first, end],
        )?;
        tx.commit()?;
        Ok(n)
    }
}

/// Whole days of hourly rollups kept before they are folded into one row per day.
pub const HOURLY_ROLLUP_DAYS: i64 = 7;

/// Folds the hourly rollups of days older than [`HOURLY_ROLLUP_DAYS`] into daily rows,
/// a day per transaction (the writer waits for one day at most). Reports over whole
/// days are unchanged; an hourly series over those days shows each day at midnight.
pub fn compact_rollups(store: &SqliteStore, now: Millis) -> Result<usize> {
    let before = crate::clock::day_of(now) - HOURLY_ROLLUP_DAYS;
    let mut folded = 0;
    for day in store.rollup_days_to_compact(before)? {
        folded += store.compact_rollup_day(day)?;
    }
    Ok(folded)
}
