//! Reports' numbers of whole past days, kept (schema 21).
//!
//! Some report numbers are computed from raw events at report time (conversions: every
//! touch of the range and its lookback, credited in Rust). A day that is over keeps
//! its numbers unless an event of its window — the day and the `reach` days before it —
//! is written late or removed. So a report keeps each whole day's numbers (`body`,
//! the report's own format) the first time it needs them, with the window's mark:
//!
//! - **Written late**: the writer's late marks (`late_events.max_id`, per site and day,
//!   see `goal_days.rs`) only grow, and a relabelled event marks its day too. The mark
//!   of a window is the sum of its days' marks, so any of them growing makes it grow: a
//!   kept day whose mark is not the window's mark now is stale and counted again.
//! - **Removed**: retention, erasure, a removed campaign or site delete the kept days
//!   whose window lost events.
//! - **Days still open**: the report asks only for days ended an hour or more ago.
//! - **Visits still being written**: a day with events whose derived rows (sessions,
//!   rollups) the writer has not written yet (`unindexed`) gets no mark: counted, not
//!   kept, since filtered counts read the visits' rows.
//! - **Read from ClickHouse**: the admin's database keeps the days it reads from
//!   ClickHouse too, checked against ClickHouse's own marks instead
//!   (`EventStore::day_marks`: a hash sum of the day's event and visit rows, which any
//!   write, relabel, deletion or merge changes); nothing to invalidate by hand there.
//! - **Bounded**: a site keeps the days of the [`KEYS_PER_KIND`] most recently counted
//!   keys of each kind (the key up to its first ':'; a filtered view is one key).
//!
//! The marks are read before the events a body is counted from, so a late write in
//! between leaves a body marked older than it is: counted again, never wrong.

use std::collections::HashMap;

use rusqlite::{params, Connection};

use super::Result;
use crate::clock::DAY_MS;
use crate::store::KeptDays;

/// Keys of one kind a site keeps days of (see the module's doc).
pub const KEYS_PER_KIND: i64 = 32;

/// The kept bodies of `key` still right for the days `[first, end)`, and every day's
/// mark now (one read snapshot). `day_marks`: each day's own mark from the store the
/// events are read from (ClickHouse), or None for this database's late marks.
pub(super) fn kept(
    conn: &Connection,
    site_id: i64,
    key: &str,
    reach: i64,
    (first, end): (i64, i64),
    day_marks: Option<&HashMap<i64, i64>>,
) -> Result<KeptDays> {
    let mut out = KeptDays::default();
    if first >= end {
        return Ok(out);
    }
    let reach = reach.max(0);
    let tx = super::read_snapshot(conn)?;
    let mut late: HashMap<i64, i64> = HashMap::new();
    match day_marks {
        Some(m) => late.clone_from(m),
        None => {
            let mut st = tx.prepare_cached(
                "SELECT day, max_id FROM late_events WHERE site_id = ?1 AND day >= ?2 AND day < ?3",
            )?;
            let rows = st.query_map(params![site_id, first - reach, end], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            })?;
            for row in rows {
                let (day, id) = row?;
                late.insert(day, id);
            }
        }
    }
    // Each day's window sum, sliding: add the day entering, drop the one leaving
    // (wrapping: ClickHouse's marks are hashes).
    let mark = |d: i64| late.get(&d).copied().unwrap_or(0);
    let mut sum: i64 = (first - reach..first).map(mark).fold(0, i64::wrapping_add);
    for day in first..end {
        sum = sum.wrapping_add(mark(day));
        out.marks.insert(day, sum);
        sum = sum.wrapping_sub(mark(day - reach));
    }
    if day_marks.is_none() {
        let mut st = tx.prepare_cached(
            "SELECT DISTINCT e.ts_ms / ?4 FROM unindexed u
             JOIN events e ON e.id BETWEEN u.from_id AND u.to_id
             WHERE e.site_id = ?1 AND e.ts_ms >= ?2 AND e.ts_ms < ?3",
        )?;
        let rows = st.query_map(
            params![site_id, first * DAY_MS, end * DAY_MS, DAY_MS],
            |r| r.get::<_, i64>(0),
        )?;
        for day in rows {
            out.marks.remove(&day?);
        }
    }
    {
        let mut st = tx.prepare_cached(
            "SELECT day, body, through FROM report_days
             WHERE site_id = ?1 AND key = ?2 AND day >= ?3 AND day < ?4 AND reach = ?5",
        )?;
        let rows = st.query_map(params![site_id, key, first, end, reach], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        for row in rows {
            let (day, body, through) = row?;
            if out.marks.get(&day) == Some(&through) {
                out.fresh.insert(day, body);
            }
        }
    }
    tx.commit()?;
    Ok(out)
}

/// Keeps `(day, body, mark)` rows of `key`.
pub(super) fn keep(
    conn: &Connection,
    site_id: i64,
    key: &str,
    reach: i64,
    days: &[(i64, String, i64)],
) -> Result<()> {
    let now = crate::clock::Clock::System.now_ms();
    let tx = conn.unchecked_transaction()?;
    {
        let mut st = tx.prepare_cached(
            "INSERT OR REPLACE INTO report_days (site_id, key, day, reach, body, through, kept_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for (day, body, through) in days {
            st.execute(params![site_id, key, day, reach.max(0), body, through, now])?;
        }
    }
    // The keys of this kind past the bound, least recently counted first, go.
    let kind = match key.find(':') {
        Some(i) => &key[..=i],
        None => key,
    };
    tx.prepare_cached(
        "DELETE FROM report_days WHERE site_id = ?1 AND substr(key, 1, length(?2)) = ?2
           AND key NOT IN (SELECT key FROM report_days
                           WHERE site_id = ?1 AND substr(key, 1, length(?2)) = ?2
                           GROUP BY key ORDER BY max(kept_ms) DESC, key LIMIT ?3)",
    )?
    .execute(params![site_id, kind, KEYS_PER_KIND])?;
    tx.commit()?;
    Ok(())
}

/// What the tests of reports that keep days share: a look at the kept rows, and the life
/// of kept days checked against one read of the whole range.
#[cfg(test)]
pub(crate) mod testing {
    use crate::clock::{Millis, DAY_MS, HOUR_MS};

    /// A connection of the test's own to the store's file in `dir`.
    pub fn db(dir: &std::path::Path) -> rusqlite::Connection {
        rusqlite::Connection::open(dir.join("pixeltrack.db")).unwrap()
    }

    /// Kept rows whose key is `LIKE keys`.
    pub fn kept(dir: &std::path::Path, keys: &str) -> i64 {
        db(dir)
            .query_row(
                "SELECT count(*) FROM report_days WHERE key LIKE ?1",
                [keys],
                |r| r.get(0),
            )
            .unwrap()
    }

    /// `check(now)` compares a report with one read of its whole range. With "now" at
    /// midday of the fourth day of data starting on `d0`, the three days before are kept
    /// and none after; a second report keeps nothing more; days are kept as they end.
    pub fn kept_as_days_end(dir: &std::path::Path, keys: &str, d0: Millis, check: impl Fn(Millis)) {
        let now = d0 + 3 * DAY_MS + 12 * HOUR_MS;
        check(now);
        let first = kept(dir, keys);
        assert!(first > 0, "whole days that are over are kept");
        let open: i64 = db(dir)
            .query_row(
                "SELECT count(*) FROM report_days WHERE day >= ?1",
                [d0 / DAY_MS + 3],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(open, 0, "a day not over for an hour is never kept");
        check(now);
        assert_eq!(
            kept(dir, keys),
            first,
            "a second report counts nothing again"
        );
        check(d0 + 20 * DAY_MS);
        assert!(kept(dir, keys) > first, "days are kept as they end");
    }
}
