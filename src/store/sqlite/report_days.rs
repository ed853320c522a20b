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
//!
//! The marks are read before the events a body is counted from, so a late write in
//! between leaves a body marked older than it is: counted again, never wrong.

use std::collections::HashMap;

use rusqlite::{params, Connection};

use super::Result;
use crate::store::KeptDays;

/// The kept bodies of `key` still right for the days `[first, end)`, and every day's
/// mark now (one read snapshot).
pub(super) fn kept(
    conn: &Connection,
    site_id: i64,
    key: &str,
    reach: i64,
    first: i64,
    end: i64,
) -> Result<KeptDays> {
    let mut out = KeptDays::default();
    if first >= end {
        return Ok(out);
    }
    let reach = reach.max(0);
    let tx = conn.unchecked_transaction()?;
    let mut late: HashMap<i64, i64> = HashMap::new();
    {
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
    // Each day's window sum, sliding: add the day entering, drop the one leaving.
    let mark = |d: i64| late.get(&d).copied().unwrap_or(0);
    let mut sum: i64 = (first - reach..first).map(mark).sum();
    for day in first..end {
        sum += mark(day);
        out.marks.insert(day, sum);
        sum -= mark(day - reach);
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
    let tx = conn.unchecked_transaction()?;
    {
        let mut st = tx.prepare_cached(
            "INSERT OR REPLACE INTO report_days (site_id, key, day, reach, body, through)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for (day, body, through) in days {
            st.execute(params![site_id, key, day, reach.max(0), body, through])?;
        }
    }
    tx.commit()?;
    Ok(())
}
