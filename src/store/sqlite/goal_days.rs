//! Wildcard goals counted per whole day (schema 19) and per whole hour of the days not
//! settled yet (schema 26), once.
//!
//! A goal with a wildcard (`page:/docs/*`) has no rollup row, so its completions and
//! distinct visitors come from the raw events: a month of a busy site was a scan of
//! ten million rows on every report (9.5 s of the 11 s of a 10 M-event report). A day
//! that is over does not change, with three exceptions, so its two numbers are counted
//! the first time a report needs them and kept in `goal_days`:
//!
//! - **Events written late for it** (an import, a back-dated drop-in hit, a batch
//!   committed just after midnight): the writer records, per site and day, a mark
//!   that grows with every late write (`late_events.max_id`, [`mark_late`]: the newest
//!   late event id, and at least one more than the mark before, since the server's
//!   writer gives ids from a reserved block that another writer's ids may pass); a
//!   kept day counted before the mark grew is stale and counted again.
//! - **Events removed from it** (retention, a visitor's erasure, a removed site): those
//!   paths delete the kept days they touch.
//! - **Days still open**: only days that ended an hour or more ago are kept
//!   ([`settled_days`](crate::clock::settled_days)),
//!   so a batch whose day was still current when the writer looked cannot land after the
//!   day was counted.
//!
//! Today (and yesterday, in today's first hour) is kept per whole hour the same way
//! (`goal_hours`, schema 26): an hour that ended five minutes ago is counted once, with
//! the ids of its distinct visitors, since a day's visitors are the union of its hours'.
//! The writer marks a day late for an event whose hour ended a minute or more before
//! the commit ([`late_before`]), so a batch spanning the end of an hour marks nothing.
//! Only the current hour (and the partial days at the range's start) are counted from
//! the raw events on every report: at 10 M events a month that was 128 of the site
//! page's 228 ms at 17:00, and grew through the day.
//!
//! Summing days is exact because a visitor id is an HMAC with the day's salt: the same
//! person on two days has two ids, so the distinct visitors of a range are the sum of
//! each day's (the rollups' visitors rely on the same fact).

use std::collections::HashMap;

use rusqlite::{params, Connection};

use super::Result;
use crate::clock::{day_of, hour_of, Millis, DAY_MS, HOUR_MS};
use crate::store::pattern::Pattern;

/// `(completions, distinct visitors)` of `pattern` among the web events of
/// `[from_ms, to_ms)`: whole days that are over from `goal_days` and the settled hours
/// of the days that are not from `goal_hours` (counted and kept when missing or stale),
/// the rest from the raw events.
pub(super) fn pattern_counts(
    conn: &Connection,
    site_id: i64,
    pattern: &Pattern,
    from_ms: Millis,
    to_ms: Millis,
    now_ms: Millis,
) -> Result<(i64, i64)> {
    let (first, end) = crate::clock::settled_days(from_ms, to_ms, now_ms);
    if first >= end {
        return open_days(conn, site_id, pattern, from_ms, to_ms, now_ms);
    }
    let mut total = days(conn, site_id, pattern, first, end)?;
    let mut add = |(c, v): (i64, i64)| {
        total.0 += c;
        total.1 += v;
    };
    if from_ms < first * DAY_MS {
        add(raw(conn, site_id, pattern, from_ms, first * DAY_MS)?);
    }
    if end * DAY_MS < to_ms {
        add(open_days(
            conn,
            site_id,
            pattern,
            end * DAY_MS,
            to_ms,
            now_ms,
        )?);
    }
    Ok(total)
}

/// `[from_ms, to_ms)`, which holds no whole settled day (today's part of a range, or
/// yesterday's in today's first hour): its whole hours of yesterday and today that
/// ended [`HOUR_SETTLE_MS`] ago from `goal_hours` (counted and kept when missing or
/// stale), the rest from the raw events. The visitors are the union of the hours' ids
/// and the rest's: one person in two hours of a day is one visitor.
fn open_days(
    conn: &Connection,
    site_id: i64,
    pattern: &Pattern,
    from_ms: Millis,
    to_ms: Millis,
    now_ms: Millis,
) -> Result<(i64, i64)> {
    let oldest = (day_of(now_ms) - 1) * 24;
    let first =
        (from_ms.div_euclid(HOUR_MS) + i64::from(from_ms.rem_euclid(HOUR_MS) != 0)).max(oldest);
    let end = hour_of(to_ms).min(hour_of(now_ms - HOUR_SETTLE_MS));
    if first >= end {
        return raw(conn, site_id, pattern, from_ms, to_ms);
    }
    let key = pattern.to_string();
    let mut completions = 0;
    let mut visitors: std::collections::HashSet<i64, foldhash::fast::FixedState> =
        Default::default();
    let mut counted = Vec::new();
    {
        // One snapshot: what is kept, the late marks, and the events counted.
        let tx = super::read_snapshot(conn)?;
        let mut kept: HashMap<i64, (i64, Vec<u8>)> = kept_rows(
            &tx,
            "SELECT h.hour, h.completions, h.visitors FROM goal_hours h
             LEFT JOIN late_events l ON l.site_id = h.site_id AND l.day = h.hour / 24
             WHERE h.site_id = ?1 AND h.pattern = ?2 AND h.hour >= ?3 AND h.hour < ?4
               AND h.through_id >= IFNULL(l.max_id, 0)",
            site_id,
            &key,
            (first, end),
        )?;
        let late = late_marks(
            &tx,
            site_id,
            first.div_euclid(24),
            (end - 1).div_euclid(24) + 1,
        )?;
        let mut hour = first;
        while hour < end {
            if let Some((c, ids)) = kept.remove(&hour) {
                completions += c;
                visitors.extend(
                    ids.chunks_exact(8)
                        .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes"))),
                );
                hour += 1;
                continue;
            }
            let run_start = hour;
            while hour < end && !kept.contains_key(&hour) {
                hour += 1;
            }
            let mut per_hour = by_hour(&tx, site_id, pattern, run_start * HOUR_MS, hour * HOUR_MS)?;
            for h in run_start..hour {
                let (c, ids) = per_hour.remove(&h).unwrap_or_default();
                completions += c;
                visitors.extend(ids.iter().copied());
                let through = late.get(&h.div_euclid(24)).copied().unwrap_or(0);
                counted.push((h, c, ids, through));
            }
        }
        for (a, b) in [(from_ms, first * HOUR_MS), (end * HOUR_MS, to_ms)] {
            if a < b {
                for (c, ids) in by_hour(&tx, site_id, pattern, a, b)?.into_values() {
                    completions += c;
                    visitors.extend(ids);
                }
            }
        }
        tx.commit()?;
    }
    if !counted.is_empty() {
        // A cache, as for days: the numbers are right even when it cannot be written.
        if let Err(e) = keep_hours(conn, site_id, &key, &counted, oldest) {
            tracing::warn!(error = %e, "keeping the wildcard goal's hourly counts failed");
        }
    }
    Ok((completions, visitors.len() as i64))
}

/// Per hour of `[from_ms, to_ms)`: the completions and the distinct visitor ids
/// (ascending; anonymous hits, visitor 0, complete without a visitor).
fn by_hour(
    conn: &Connection,
    site_id: i64,
    pattern: &Pattern,
    from_ms: Millis,
    to_ms: Millis,
) -> Result<HashMap<i64, (i64, Vec<i64>)>> {
    let sql = format!(
        "SELECT ts_ms / {HOUR_MS} AS hour, visitor_id, COUNT(*) FROM events
         WHERE site_id = ?1 AND ts_ms >= ?2 AND ts_ms < ?3 AND {} AND {}
         GROUP BY hour, visitor_id",
        super::events::WEB_EVENT,
        super::events::pattern_sql(pattern.kind, 4)
    );
    let mut st = conn.prepare_cached(&sql)?;
    let mut rows = st.query(params![site_id, from_ms, to_ms, pattern.sql_glob()])?;
    let mut out: HashMap<i64, (i64, Vec<i64>)> = HashMap::new();
    while let Some(r) = rows.next()? {
        let (hour, visitor, n): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
        let e = out.entry(hour).or_default();
        e.0 += n;
        if visitor != 0 {
            e.1.push(visitor);
        }
    }
    for (_, ids) in out.values_mut() {
        ids.sort_unstable();
    }
    Ok(out)
}

/// Keeps counted hours `(hour, completions, visitor ids, through_id)`, and lets go of
/// the rows of hours before `oldest` (days settled now: kept per day).
fn keep_hours(
    conn: &Connection,
    site_id: i64,
    key: &str,
    rows: &[(i64, i64, Vec<i64>, i64)],
    oldest: i64,
) -> Result<()> {
    let tx = conn.unchecked_transaction()?;
    {
        let mut st = tx.prepare_cached(
            "INSERT OR REPLACE INTO goal_hours (site_id, pattern, hour, completions, visitors, through_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for (hour, c, ids, through) in rows {
            let blob: Vec<u8> = ids.iter().flat_map(|v| v.to_le_bytes()).collect();
            st.execute(params![site_id, key, hour, c, blob, through])?;
        }
        tx.execute(
            "DELETE FROM goal_hours WHERE site_id = ?1 AND hour < ?2",
            params![site_id, oldest],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// The raw count, as before schema 19.
fn raw(
    conn: &Connection,
    site_id: i64,
    pattern: &Pattern,
    from_ms: Millis,
    to_ms: Millis,
) -> Result<(i64, i64)> {
    let sql = format!(
        "SELECT COUNT(*), COUNT(DISTINCT NULLIF(visitor_id, 0)) FROM events
         WHERE site_id = ?1 AND ts_ms >= ?2 AND ts_ms < ?3 AND {} AND {}",
        super::events::WEB_EVENT,
        super::events::pattern_sql(pattern.kind, 4)
    );
    let mut st = conn.prepare_cached(&sql)?;
    Ok(
        st.query_row(params![site_id, from_ms, to_ms, pattern.sql_glob()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?,
    )
}

/// Days `[first, end)`, all over: kept ones read, the others counted (in one read
/// snapshot with the late marks they are checked against) and kept.
fn days(
    conn: &Connection,
    site_id: i64,
    pattern: &Pattern,
    first: i64,
    end: i64,
) -> Result<(i64, i64)> {
    let key = pattern.to_string();
    let mut counted: Vec<(i64, i64, i64, i64)> = Vec::new();
    let mut total = (0, 0);
    {
        // One snapshot: what is kept, the late marks, and the events counted.
        let tx = super::read_snapshot(conn)?;
        let kept: HashMap<i64, (i64, i64)> = kept_rows(
            &tx,
            "SELECT g.day, g.completions, g.visitors FROM goal_days g
             LEFT JOIN late_events l ON l.site_id = g.site_id AND l.day = g.day
             WHERE g.site_id = ?1 AND g.pattern = ?2 AND g.day >= ?3 AND g.day < ?4
               AND g.through_id >= IFNULL(l.max_id, 0)",
            site_id,
            &key,
            (first, end),
        )?;
        let late = late_marks(&tx, site_id, first, end)?;
        // Runs of days not kept, each counted with one grouped read.
        let mut day = first;
        while day < end {
            if let Some(&(c, v)) = kept.get(&day) {
                total.0 += c;
                total.1 += v;
                day += 1;
                continue;
            }
            let run_start = day;
            while day < end && !kept.contains_key(&day) {
                day += 1;
            }
            let per_day = grouped(&tx, site_id, pattern, run_start, day)?;
            for d in run_start..day {
                let (c, v) = per_day.get(&d).copied().unwrap_or((0, 0));
                total.0 += c;
                total.1 += v;
                counted.push((d, c, v, late.get(&d).copied().unwrap_or(0)));
            }
        }
        tx.commit()?;
    }
    if !counted.is_empty() {
        // A cache: if it cannot be written now (the database busy past its timeout,
        // read-only), the numbers are still right, and the next report counts again.
        if let Err(e) = keep(conn, site_id, &key, &counted) {
            tracing::warn!(error = %e, "keeping the wildcard goal's daily counts failed");
        }
    }
    Ok(total)
}

/// The kept rows `(day or hour, (completions, visitors))` of `sql`, which selects them
/// by `?1` site, `?2` pattern and `[?3, ?4)`, leaving out those its late marks made stale.
fn kept_rows<V: rusqlite::types::FromSql>(
    conn: &Connection,
    sql: &str,
    site_id: i64,
    key: &str,
    (first, end): (i64, i64),
) -> Result<HashMap<i64, (i64, V)>> {
    let mut st = conn.prepare_cached(sql)?;
    let rows = st.query_map(params![site_id, key, first, end], |r| {
        Ok((r.get::<_, i64>(0)?, (r.get(1)?, r.get(2)?)))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The late marks of the site's days `[first, end)` (see [`mark_late`]).
fn late_marks(conn: &Connection, site_id: i64, first: i64, end: i64) -> Result<HashMap<i64, i64>> {
    let mut st = conn.prepare_cached(
        "SELECT day, max_id FROM late_events WHERE site_id = ?1 AND day >= ?2 AND day < ?3",
    )?;
    let rows = st.query_map(params![site_id, first, end], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Completions and distinct visitors per day of `[first, end)`.
fn grouped(
    conn: &Connection,
    site_id: i64,
    pattern: &Pattern,
    first: i64,
    end: i64,
) -> Result<HashMap<i64, (i64, i64)>> {
    let sql = format!(
        "SELECT ts_ms / {DAY_MS} AS day, COUNT(*), COUNT(DISTINCT NULLIF(visitor_id, 0))
         FROM events
         WHERE site_id = ?1 AND ts_ms >= ?2 AND ts_ms < ?3 AND {} AND {}
         GROUP BY day",
        super::events::WEB_EVENT,
        super::events::pattern_sql(pattern.kind, 4)
    );
    let mut st = conn.prepare_cached(&sql)?;
    let rows = st.query_map(
        params![site_id, first * DAY_MS, end * DAY_MS, pattern.sql_glob()],
        |r| Ok((r.get::<_, i64>(0)?, (r.get(1)?, r.get(2)?))),
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn keep(conn: &Connection, site_id: i64, key: &str, rows: &[(i64, i64, i64, i64)]) -> Result<()> {
    let tx = conn.unchecked_transaction()?;
    {
        let mut st = tx.prepare_cached(
            "INSERT OR REPLACE INTO goal_days (site_id, pattern, day, completions, visitors, through_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for (day, c, v, through) in rows {
            st.execute(params![site_id, key, day, c, v, through])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// How long after an hour ends the writer still takes its events as on time: a batch
/// spanning the hour's end is not late.
const LATE_HOUR_MS: Millis = 60_000;

/// Hours of the days not settled yet are kept once they ended this long ago: a batch
/// the writer found on time (its hour over for less than [`LATE_HOUR_MS`]) has been
/// committed by then.
pub const HOUR_SETTLE_MS: Millis = 5 * 60_000;

/// Events older than this at `now_ms` are written late: their day is over, or their
/// hour ended [`LATE_HOUR_MS`] or more ago.
pub(super) fn late_before(now_ms: Millis) -> Millis {
    (day_of(now_ms) * DAY_MS).max(hour_of(now_ms - LATE_HOUR_MS) * HOUR_MS)
}

/// In the writer's transaction: the days of `(site_id, ts_ms, id)` written late at
/// `now_ms` ([`late_before`]) get a new late mark (their newest late event id, and
/// more than the mark before), which makes their kept goal counts, of days and hours,
/// stale.
pub(super) fn mark_late(
    tx: &Connection,
    late: impl Iterator<Item = (i64, Millis, i64)>,
    now_ms: Millis,
) -> Result<()> {
    let before = late_before(now_ms);
    let mut newest: HashMap<(i64, i64), i64> = HashMap::new();
    for (site_id, ts_ms, id) in late {
        if ts_ms < before {
            let e = newest.entry((site_id, day_of(ts_ms))).or_insert(id);
            *e = (*e).max(id);
        }
    }
    if newest.is_empty() {
        return Ok(());
    }
    let mut st = tx.prepare_cached(
        "INSERT INTO late_events (site_id, day, max_id) VALUES (?1, ?2, ?3)
         ON CONFLICT (site_id, day) DO UPDATE SET max_id = max(max_id + 1, excluded.max_id)",
    )?;
    for ((site_id, day), id) in newest {
        st.execute(params![site_id, day, id])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Event, SiteId};
    use crate::store::pattern::PatternKind;
    use crate::store::{PrivacyStore, SiteStore, SqliteStore, Subject};

    /// 2025-03-01 00:00 UTC: every test day is over, by the system clock too.
    const D0: Millis = 20_148 * DAY_MS;

    fn ev(ts_ms: Millis, name: &str, path: &str, visitor_id: i64) -> Event {
        Event {
            site_id: 1,
            ts_ms,
            name: name.into(),
            path: path.into(),
            visitor_id,
            ..Event::default()
        }
    }

    /// Five days of events: docs pages by a few visitors (some twice a day), other
    /// pages, a bot, anonymous hits and custom events.
    fn events() -> Vec<Event> {
        let mut out = Vec::new();
        for day in 0..5 {
            let t = D0 + day * DAY_MS;
            for h in 0..24 {
                let ts = t + h * HOUR_MS + 17 * 60_000;
                let v = 1_000 * (day + 1) + h % 5;
                out.push(ev(ts, "pageview", &format!("/docs/{}", h % 3), v));
                out.push(ev(ts + 1, "pageview", "/pricing", v));
                out.push(ev(ts + 2, "signup", "/docs/x", v));
                if h % 7 == 0 {
                    out.push(ev(ts + 3, "pageview", "/docs/anon", 0));
                    let mut bot = ev(ts + 4, "pageview", "/docs/bot", 99);
                    bot.bot = Some(crate::model::BotReason::EmptyUa);
                    out.push(bot);
                }
            }
        }
        out
    }

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let mut w = store.writer(crate::config::Synchronous::Normal).unwrap();
        w.apply(&events(), &[], None).unwrap();
        (dir, store)
    }

    fn kept(store: &SqliteStore) -> i64 {
        store
            .conn()
            .query_row("SELECT count(*) FROM goal_days", [], |r| r.get(0))
            .unwrap()
    }

    /// Ranges of whole days, of parts of days, and reaching into days not over yet.
    fn ranges() -> Vec<(Millis, Millis)> {
        vec![
            (D0, D0 + 5 * DAY_MS),
            (D0 + DAY_MS, D0 + 3 * DAY_MS),
            (D0 + 5 * HOUR_MS, D0 + 4 * DAY_MS + 7 * HOUR_MS),
            (D0 + 30 * HOUR_MS, D0 + 31 * HOUR_MS),
            (D0 - DAY_MS, D0 + 9 * DAY_MS),
        ]
    }

    fn check(store: &SqliteStore, now: Millis) {
        let conn = store.conn();
        for p in ["page:/docs/*", "event:sign*", "page:/docs/?"] {
            let p = Pattern::parse(p).unwrap();
            for (from, to) in ranges() {
                assert_eq!(
                    pattern_counts(&conn, 1, &p, from, to, now).unwrap(),
                    raw(&conn, 1, &p, from, to).unwrap(),
                    "{p} over [{from}, {to}) at {now}"
                );
            }
        }
    }

    #[test]
    fn kept_days_give_the_raw_counts_and_are_counted_once() {
        let (_dir, store) = store();
        // "Now" in the middle of the fourth day: days 0-2 can be kept, not 3 and 4.
        let now = D0 + 3 * DAY_MS + 12 * HOUR_MS;
        check(&store, now);
        let after_first = kept(&store);
        assert!(after_first > 0, "whole days that are over are kept");
        let open: i64 = count(
            &store,
            "SELECT count(*) FROM goal_days WHERE day >= ?1",
            D0 / DAY_MS + 3,
        );
        assert_eq!(open, 0, "a day not over for an hour is never kept");
        check(&store, now);
        assert_eq!(
            kept(&store),
            after_first,
            "a second report counts nothing again"
        );
        // Days that end: kept as they end.
        check(&store, D0 + 20 * DAY_MS);
        assert!(kept(&store) > after_first);
        // The same numbers with the kept rows alone: a row changed by hand shows.
        store
            .conn()
            .execute("UPDATE goal_days SET completions = completions + 1000", [])
            .unwrap();
        let p = Pattern::new(PatternKind::Page, "/docs/*").unwrap();
        let conn = store.conn();
        let (c, _) = pattern_counts(&conn, 1, &p, D0, D0 + 5 * DAY_MS, D0 + 20 * DAY_MS).unwrap();
        assert_eq!(c, raw(&conn, 1, &p, D0, D0 + 5 * DAY_MS).unwrap().0 + 5_000);
    }

    #[test]
    fn an_event_written_late_makes_its_day_counted_again() {
        let (_dir, store) = store();
        let now = D0 + 20 * DAY_MS;
        check(&store, now);
        let before = kept(&store);
        // An import of day 1, well after it ended: a new visitor on a docs page.
        let mut w = store.writer(crate::config::Synchronous::Normal).unwrap();
        w.apply(
            &[ev(D0 + DAY_MS + HOUR_MS, "pageview", "/docs/late", 777)],
            &[],
            None,
        )
        .unwrap();
        let p = Pattern::new(PatternKind::Page, "/docs/*").unwrap();
        let conn = store.conn();
        let (c, v) = pattern_counts(&conn, 1, &p, D0, D0 + 5 * DAY_MS, now).unwrap();
        assert_eq!((c, v), raw(&conn, 1, &p, D0, D0 + 5 * DAY_MS).unwrap());
        drop(conn);
        check(&store, now);
        assert_eq!(
            kept(&store),
            before,
            "the stale day was replaced, not added"
        );
    }

    /// The server's writer gives ids from a block reserved ahead, so an import beside it
    /// can write a late event with a higher id first: the server's later late event, with
    /// the lower id, must still make the day stale.
    #[test]
    fn a_late_event_with_a_lower_id_than_the_last_mark_still_counts() {
        let (_dir, store) = store();
        let now = D0 + 20 * DAY_MS;
        let mut server = store.writer(crate::config::Synchronous::Normal).unwrap();
        server.reserve_ids(true);
        server
            .apply(
                &[ev(D0 + DAY_MS + HOUR_MS, "pageview", "/docs/a", 701)],
                &[],
                None,
            )
            .unwrap();
        let mut import = store
            .writer(crate::config::Synchronous::Normal)
            .unwrap()
            .beside_server();
        import
            .apply(
                &[ev(D0 + DAY_MS + 2 * HOUR_MS, "pageview", "/docs/b", 702)],
                &[],
                Some(&mut crate::store::Derived::default()),
            )
            .unwrap();
        check(&store, now);
        // The server's next late event, for the same day, from its block: a lower id.
        server
            .apply(
                &[ev(D0 + DAY_MS + 3 * HOUR_MS, "pageview", "/docs/c", 703)],
                &[],
                None,
            )
            .unwrap();
        let ids: Vec<i64> = {
            let conn = store.conn();
            let mut st = conn
                .prepare(
                    "SELECT id FROM events WHERE visitor_id IN (701, 702, 703) ORDER BY visitor_id",
                )
                .unwrap();
            st.query_map([], |r| r.get(0))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        };
        assert!(
            ids[2] < ids[1],
            "the scenario: the server's late event has the lower id"
        );
        check(&store, now);
    }

    #[test]
    fn retention_and_erasure_drop_the_kept_days_they_change() {
        let (_dir, store) = store();
        let now = D0 + 20 * DAY_MS;
        check(&store, now);
        // Retention in the middle of day 2: days 0-2 lose events.
        let before = D0 + 2 * DAY_MS + 6 * HOUR_MS;
        store.apply_retention(SiteId(1), before, false).unwrap();
        let marks: i64 = count(
            &store,
            "SELECT count(*) FROM late_events WHERE day <= ?1",
            day_of(before),
        );
        assert_eq!(marks, 0, "the late marks of days retention emptied go too");
        check(&store, now);
        // A visitor of day 3 erased.
        store.erase_subject(&Subject::Visitor(4_001)).unwrap();
        check(&store, now);
    }

    /// An event is late once its day is over, or its hour over for a minute: not when
    /// a batch spans the end of an hour.
    #[test]
    fn late_means_a_day_over_or_an_hour_over_for_a_minute() {
        let t = |h: i64, m: i64, s: i64| D0 + h * HOUR_MS + m * 60_000 + s * 1_000;
        let late = |ts: Millis, now: Millis| ts < late_before(now);
        assert!(!late(t(16, 59, 59), t(17, 0, 30)), "a batch spanning 17:00");
        assert!(
            late(t(16, 59, 59), t(17, 1, 0)),
            "hour 16 over for a minute"
        );
        assert!(!late(t(17, 0, 0), t(17, 59, 0)), "this hour");
        assert!(late(t(3, 0, 0), t(17, 0, 30)), "an earlier hour of today");
        assert!(
            late(t(23, 59, 59), t(24, 0, 30)),
            "yesterday, even a second ago"
        );
        assert!(!late(t(24, 0, 1), t(24, 0, 30)));
    }

    /// `sql`'s one number, with `?1` bound to `p`.
    fn count(store: &SqliteStore, sql: &str, p: i64) -> i64 {
        store.conn().query_row(sql, [p], |r| r.get(0)).unwrap()
    }

    fn kept_hours(store: &SqliteStore) -> i64 {
        store
            .conn()
            .query_row("SELECT count(*) FROM goal_hours", [], |r| r.get(0))
            .unwrap()
    }

    /// Today's part of a range (and yesterday's, in today's first hour) comes from the
    /// kept hours that ended five minutes ago and the raw events after them: the same
    /// numbers as the raw events, a visitor of two hours counted once.
    #[test]
    fn kept_hours_of_the_open_days_give_the_raw_counts() {
        let (_dir, store) = store();
        // 13:10 on day 4: hours 0-12 of day 4 can be kept, not 13.
        let now = D0 + 4 * DAY_MS + 13 * HOUR_MS + 10 * 60_000;
        check(&store, now);
        let hours = kept_hours(&store);
        assert!(hours >= 13, "today's settled hours are kept: {hours}");
        let open: i64 = count(
            &store,
            "SELECT count(*) FROM goal_hours WHERE hour >= ?1",
            hour_of(now),
        );
        assert_eq!(open, 0, "an hour not over for five minutes is never kept");
        check(&store, now);
        assert_eq!(
            kept_hours(&store),
            hours,
            "a second report counts nothing again"
        );
        // The kept rows are what the report reads: a row changed by hand shows.
        store
            .conn()
            .execute(
                "UPDATE goal_hours SET completions = completions + 1000 WHERE hour = ?1",
                [hour_of(D0 + 4 * DAY_MS + 3 * HOUR_MS)],
            )
            .unwrap();
        let p = Pattern::new(PatternKind::Page, "/docs/*").unwrap();
        let conn = store.conn();
        let (today, tomorrow) = (D0 + 4 * DAY_MS, D0 + 5 * DAY_MS);
        let (c, v) = pattern_counts(&conn, 1, &p, today, tomorrow, now).unwrap();
        let (rc, rv) = raw(&conn, 1, &p, today, tomorrow).unwrap();
        assert_eq!((c, v), (rc + 1000, rv));
        conn.execute(
            "UPDATE goal_hours SET completions = completions - 1000 WHERE hour = ?1",
            [hour_of(D0 + 4 * DAY_MS + 3 * HOUR_MS)],
        )
        .unwrap();
        drop(conn);
        // 00:20 on day 4: day 3 is not settled yet, so its hours are read and kept.
        check(&store, D0 + 4 * DAY_MS + 20 * 60_000);
        let yesterday: i64 = count(
            &store,
            "SELECT count(DISTINCT hour) FROM goal_hours WHERE hour / 24 = ?1",
            day_of(D0) + 3,
        );
        assert_eq!(yesterday, 24, "every hour of yesterday");
        // A day later, the rows of the day before yesterday are let go.
        check(&store, D0 + 5 * DAY_MS + 20 * 60_000);
        let old: i64 = count(
            &store,
            "SELECT count(*) FROM goal_hours WHERE hour / 24 < ?1",
            day_of(D0) + 4,
        );
        assert_eq!(old, 0);
    }

    /// An event written for an hour that is over (an import, a back-dated hit) makes the
    /// kept hours of its day stale; retention, erasure and a removed site drop them.
    #[test]
    fn kept_hours_go_stale_with_a_late_write_and_go_with_what_is_removed() {
        let (_dir, store) = store();
        let now = D0 + 4 * DAY_MS + 13 * HOUR_MS + 10 * 60_000;
        check(&store, now);
        let mut w = store.writer(crate::config::Synchronous::Normal).unwrap();
        // A new visitor at 05:30 and one of 07:17, both on docs pages.
        w.apply(
            &[
                ev(
                    D0 + 4 * DAY_MS + 5 * HOUR_MS + 30 * 60_000,
                    "pageview",
                    "/docs/late",
                    888,
                ),
                ev(
                    D0 + 4 * DAY_MS + 5 * HOUR_MS + 31 * 60_000,
                    "pageview",
                    "/docs/late",
                    5_002,
                ),
            ],
            &[],
            None,
        )
        .unwrap();
        check(&store, now);
        store.erase_subject(&Subject::Visitor(5_002)).unwrap();
        assert_eq!(
            kept_hours(&store),
            0,
            "an erased visitor's hours are not known"
        );
        check(&store, now);
        store
            .apply_retention(SiteId(1), D0 + 4 * DAY_MS + 2 * HOUR_MS, false)
            .unwrap();
        check(&store, now);
        assert!(kept_hours(&store) > 0);
        let key = crate::model::SiteKey::generate();
        store.add_site(&key, "a.example", "A", 0).unwrap();
        assert!(store.remove_site(&key).unwrap());
        assert_eq!(kept_hours(&store), 0);
    }

    #[test]
    fn a_removed_site_leaves_no_kept_days_or_late_marks() {
        let (_dir, store) = store();
        let key = crate::model::SiteKey::generate();
        let site = store.add_site(&key, "a.example", "A", 0).unwrap();
        assert_eq!(site.id, SiteId(1), "the events above are this site's");
        check(&store, D0 + 20 * DAY_MS);
        assert!(kept(&store) > 0);
        assert!(store.remove_site(&key).unwrap());
        let left: i64 = store
            .conn()
            .query_row(
                "SELECT (SELECT count(*) FROM goal_days) + (SELECT count(*) FROM late_events)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(left, 0);
    }
}
