//! Privacy in SQLite: the `consent` and `last_opens` tables, retention, and subject
//! export and erasure. Deletions run on the store's connection (`secure_delete` ON)
//! and erasure checkpoints the WAL, so erased bytes leave the disk.

use rusqlite::{params, OptionalExtension};

use super::events::{event_from_row, EVENT_COLUMNS};
use super::{checkpoint, record_deletion, Deletion, SqliteStore};
use crate::clock::Millis;
use crate::model::{Event, SiteId};
use crate::store::{PrivacyStore, Result, SiteStore, Subject};

impl PrivacyStore for SqliteStore {
    fn set_consent(
        &self,
        site_id: SiteId,
        campaign_id: i64,
        recipient: &str,
        granted: bool,
        now: Millis,
    ) -> Result<()> {
        self.consent_filter.changing(|| {
            self.conn().execute(
                "INSERT INTO consent (site_id, campaign_id, recipient, granted, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (site_id, campaign_id, recipient) DO UPDATE SET granted = excluded.granted, updated_ms = excluded.updated_ms",
                params![site_id, campaign_id, recipient, granted, now],
            )?;
            Ok(())
        })
    }

    fn consent_unrecorded(&self, site_id: SiteId, recipient: &str) -> bool {
        self.consent_filter.unrecorded(site_id.0, recipient)
    }

    fn consent(&self, site_id: SiteId, campaign_id: i64, recipient: &str) -> Result<Option<bool>> {
        let conn = self.conn();
        let mut st = conn.prepare_cached(
            "SELECT granted FROM consent WHERE site_id = ?1 AND recipient = ?3 AND campaign_id IN (0, ?2)",
        )?;
        let rows = st.query_map(params![site_id, campaign_id, recipient], |r| {
            r.get::<_, bool>(0)
        })?;
        let mut out = None;
        for g in rows {
            let g = g?;
            out = Some(out.unwrap_or(true) && g);
        }
        Ok(out)
    }

    fn touch_last_open(&self, site_id: SiteId, recipient: &str, day: i64) -> Result<()> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO last_opens (site_id, recipient, day) VALUES (?1, ?2, ?3) \
             ON CONFLICT (site_id, recipient) DO UPDATE SET day = MAX(day, excluded.day)",
            params![site_id, recipient, day],
        )?;
        Ok(())
    }

    fn last_opens(&self, recipient: &str) -> Result<Vec<(i64, i64)>> {
        let conn = self.conn();
        let mut st = conn
            .prepare("SELECT site_id, day FROM last_opens WHERE recipient = ?1 ORDER BY site_id")?;
        let rows = st.query_map([recipient], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn apply_retention(&self, site_id: SiteId, before_ms: Millis, rollups: bool) -> Result<u64> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = tx.execute(
            "DELETE FROM events WHERE site_id = ?1 AND ts_ms < ?2",
            params![site_id, before_ms],
        )?;
        // A visit that ended before the cutoff also started before it. A session id is
        // its start time << 20 | a sequence, so the ids below the cutoff's are the
        // candidates, found without an index on the end (schema 25); the random ids of
        // visits from before ids grew with time, through `sessions_legacy`. A trigger
        // deletes each visit's end with it.
        tx.execute(
            "DELETE FROM sessions
             WHERE id IN (SELECT id FROM sessions WHERE site_id = ?1 AND id < ?2
                          UNION ALL SELECT id FROM sessions
                          WHERE id >> 20 != max(start_ms, 0) AND start_ms < ?3 AND site_id = ?1)
               AND COALESCE((SELECT last_ms FROM visit_ends v WHERE v.id = sessions.id),
                            start_ms) < ?3",
            params![site_id, before_ms.max(0).saturating_mul(1 << 20), before_ms],
        )?;
        // Kept goal counts of the days that lost events (see `goal_days`), and the late
        // marks of days now gone.
        for table in ["goal_days", "late_events"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE site_id = ?1 AND day <= ?2"),
                params![site_id, crate::clock::day_of(before_ms)],
            )?;
        }
        tx.execute(
            "DELETE FROM goal_hours WHERE site_id = ?1 AND hour <= ?2",
            params![site_id, crate::clock::hour_of(before_ms)],
        )?;
        // And the kept report days whose window reached into them (`report_days`).
        tx.execute(
            "DELETE FROM report_days WHERE site_id = ?1 AND day - reach <= ?2",
            params![site_id, crate::clock::day_of(before_ms)],
        )?;
        if n > 0 || rollups {
            record_deletion(
                &tx,
                &Deletion {
                    site_id: Some(site_id.0),
                    before_ms: Some(before_ms),
                    rollups_before_hour: rollups
                        .then(|| before_ms.div_euclid(crate::clock::HOUR_MS)),
                    ..Deletion::default()
                },
            )?;
        }
        if rollups {
            tx.execute(
                "DELETE FROM rollups WHERE site_id = ?1 AND hour < ?2",
                params![site_id, before_ms.div_euclid(crate::clock::HOUR_MS)],
            )?;
        }
        tx.commit()?;
        if n > 0 {
            self.segments.forget(Some(site_id.0));
        }
        Ok(n as u64)
    }

    fn subject_events(&self, subject: &Subject) -> Result<Vec<Event>> {
        let conn = self.conn();
        let base = EVENT_COLUMNS;
        let (sql, a, b): (String, rusqlite::types::Value, rusqlite::types::Value) = match subject {
            Subject::Recipient { site_id, recipient } => (
                format!("{base} WHERE recipient = ?1 AND campaign_id IS NOT NULL AND (?2 IS NULL OR site_id = ?2) ORDER BY ts_ms, id"),
                recipient.clone().into(),
                (*site_id).into(),
            ),
            Subject::Visitor(v) => (
                format!("{base} WHERE visitor_id = ?1 AND ?2 IS NULL ORDER BY ts_ms, id"),
                (*v).into(),
                rusqlite::types::Value::Null,
            ),
        };
        let mut st = conn.prepare(&sql)?;
        let rows = st.query_map(params![a, b], event_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn erase_subject(&self, subject: &Subject) -> Result<u64> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = match subject {
            Subject::Recipient { site_id, recipient } => {
                let n = tx.execute(
                    "DELETE FROM events WHERE recipient = ?1 AND campaign_id IS NOT NULL AND (?2 IS NULL OR site_id = ?2)",
                    params![recipient, site_id],
                )?;
                record_deletion(
                    &tx,
                    &Deletion {
                        site_id: *site_id,
                        recipient: Some(recipient.clone()),
                        ..Deletion::default()
                    },
                )?;
                // Its email clicks credited conversions: the kept credits go.
                tx.execute(
                    "DELETE FROM report_days WHERE ?1 IS NULL OR site_id = ?1",
                    [site_id],
                )?;
                let n = n + tx.execute(
                    "DELETE FROM consent WHERE recipient = ?1 AND (?2 IS NULL OR site_id = ?2)",
                    params![recipient, site_id],
                )?;
                n + tx.execute(
                    "DELETE FROM last_opens WHERE recipient = ?1 AND (?2 IS NULL OR site_id = ?2)",
                    params![recipient, site_id],
                )?
            }
            Subject::Visitor(v) => {
                let n = tx.execute("DELETE FROM events WHERE visitor_id = ?1", [v])?;
                // A visitor id is one day's; which goals it counted in is not kept.
                tx.execute("DELETE FROM goal_days", [])?;
                tx.execute("DELETE FROM goal_hours", [])?;
                tx.execute("DELETE FROM report_days", [])?;
                // The writer may still hold the visitor's open visit: it writes none of
                // its rows while the id is listed (`erased_visitors`, schema 23).
                let now = crate::clock::Clock::System.now_ms();
                tx.execute("DELETE FROM erased_visitors WHERE until_ms < ?1", [now])?;
                tx.execute(
                    "INSERT OR REPLACE INTO erased_visitors (visitor_id, until_ms) VALUES (?1, ?2)",
                    params![v, now + 2 * crate::clock::DAY_MS],
                )?;
                record_deletion(
                    &tx,
                    &Deletion {
                        visitor_id: Some(*v),
                        ..Deletion::default()
                    },
                )?;
                // The keys of rows the visitor was counted in past the writer's memory
                // bound: a seek in each day the table holds (today's and yesterday's at
                // most; the id is one day's, but which is not known here).
                let mut next = tx.prepare(
                    "SELECT day FROM visitor_uniques WHERE day > ?1 ORDER BY day LIMIT 1",
                )?;
                let mut day = i64::MIN;
                while let Some(d) = next.query_row([day], |r| r.get(0)).optional()? {
                    tx.execute(
                        "DELETE FROM visitor_uniques WHERE day = ?1 AND visitor = ?2",
                        params![d, v],
                    )?;
                    day = d;
                }
                drop(next);
                n + tx.execute("DELETE FROM sessions WHERE visitor_id = ?1", [v])?
            }
        };
        tx.commit()?;
        // What memory holds of the erased events goes too.
        self.segments.forget(None);
        // secure_delete zeroed the freed pages; move them out of the WAL too.
        checkpoint(&conn)?;
        Ok(n as u64)
    }
}

/// Deletes raw events past each site's retention period; returns how many.
pub fn run_retention(store: &SqliteStore, now: Millis) -> Result<u64> {
    let mut total = 0;
    for site in store.sites()? {
        if let Some(days) = site.privacy.retention_days {
            let before = now - i64::from(days) * crate::clock::DAY_MS;
            total += store.apply_retention(site.id, before, false)?;
        }
    }
    if total > 0 {
        store.checkpoint()?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SiteKey;
    use crate::store::SiteStore;

    /// Retention removes every visit that ended before the cutoff, both of its rows,
    /// whatever its id: one of today's ids (start time << 20), a random one of the builds
    /// before ids grew with time, and keeps the visits that ended after it; a removed
    /// site takes the rest.
    #[test]
    fn retention_removes_old_visits_whatever_their_ids() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let site = store
            .add_site(&SiteKey::generate(), "shop.example", "Shop", 0)
            .unwrap();
        let day = crate::clock::DAY_MS;
        let cutoff = 400 * day;
        // (id, start, last): old of today's kind, old random, straddling, recent random.
        let visits = [
            ((10 * day) << 20 | 5, 10 * day, 10 * day + 60_000),
            (0x5EED_0000_0000_0001, 20 * day, 20 * day + 1),
            (
                (cutoff - 60_000) << 20 | 6,
                cutoff - 60_000,
                cutoff + 60_000,
            ),
            (0x7EED_0000_0000_0002, cutoff + day, cutoff + day),
        ];
        // Visits of one hit, which have no end row (they end where they start): one
        // old, one recent.
        let one_hit = [(11 * day) << 20 | 7, (cutoff + 2 * day) << 20 | 8];
        {
            let conn = store.conn();
            for id in one_hit {
                conn.execute(
                    "INSERT INTO sessions VALUES (?1, ?2, 7, ?3, '/in', '', '', '', '', '', '',
                     '', '', '', '', '', '', '', '')",
                    params![id, site.id, id >> 20],
                )
                .unwrap();
            }
            for (id, start, last) in visits {
                conn.execute(
                    "INSERT INTO sessions VALUES (?1, ?2, 7, ?3, '/in', '', '', '', '', '', '',
                     '', '', '', '', '', '', '', '')",
                    params![id, site.id, start],
                )
                .unwrap();
                conn.execute(
                    "INSERT INTO visit_ends VALUES (?1, ?2, 1, 1, '/out')",
                    params![id, last],
                )
                .unwrap();
            }
        }
        store.apply_retention(site.id, cutoff, false).unwrap();
        let conn = store.conn();
        let ids = |table: &str| -> Vec<i64> {
            let mut st = conn
                .prepare(&format!("SELECT id FROM {table} ORDER BY id"))
                .unwrap();
            st.query_map([], |r| r.get(0))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        };
        let kept = vec![visits[2].0, visits[3].0];
        let mut sessions_kept = kept.clone();
        sessions_kept.insert(1, one_hit[1]);
        assert_eq!(ids("sessions"), sessions_kept);
        assert_eq!(ids("visit_ends"), kept);
        // Removing the site removes the rest, both rows of each visit.
        drop(conn);
        assert!(store.remove_site(&site.key).unwrap());
        let conn = store.conn();
        for table in ["sessions", "visit_ends"] {
            let n: i64 = conn
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
                .unwrap();
            assert_eq!(n, 0, "{table}");
        }
    }
}
