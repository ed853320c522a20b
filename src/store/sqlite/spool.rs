//! The spool as the forwarder reads it: the events table is the durable local log
//! (ids never reused, see schema 13), `forward_state` says how far it was shipped and
//! `forward_batch` holds the one batch being shipped. The forwarder (`crate::forward`)
//! owns the only [`Spool`]; the writer thread only appends events.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension};

use super::events::{event_from_row, EVENT_COLUMNS};
use crate::clock::Millis;
use crate::model::Event;
use crate::store::{session_values, Result, SessionRow, SESSION_DIMS};

/// How a visit started: what of it never changes (its entry page and its
/// [`SESSION_DIMS`] values, in that order), shipped with each of its events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VisitColumns {
    pub entry_page: String,
    pub dims: Vec<String>,
}

impl VisitColumns {
    /// The start of a visit that `e` begins.
    pub fn started_by(e: &Event) -> VisitColumns {
        VisitColumns {
            entry_page: if e.is_pageview() {
                e.path.clone()
            } else {
                String::new()
            },
            dims: session_values(e).iter().map(|v| v.to_string()).collect(),
        }
    }
}

/// A visit's [`VisitColumns`], by id: the entry page, then [`SESSION_DIMS`] in order
/// (`tests::visit_columns_follow_session_dims` holds the two together).
const VISIT_COLUMNS: &str = "SELECT entry_page, source, referrer_host, medium, utm_source, \
    utm_medium, utm_campaign, utm_term, utm_content, browser, os, device, country, region, \
    city FROM sessions WHERE id = ?1";

/// A sealed batch: the events with ids in `from_id..=to_id`, one month's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    pub seq: i64,
    pub from_id: i64,
    pub to_id: i64,
    /// Attempts started; more than 0 means one may have landed.
    pub attempts: i64,
    /// A bit per shard whose part landed.
    pub shards_done: u64,
}

pub struct Spool {
    conn: Connection,
}

/// A deletion ClickHouse must follow (see schema 13): the set fields are ANDed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Deletion {
    pub site_id: Option<i64>,
    pub visitor_id: Option<i64>,
    /// An email recipient: only events with a campaign.
    pub recipient: Option<String>,
    pub campaign_id: Option<i64>,
    /// Events before this time.
    pub before_ms: Option<Millis>,
    /// Also the site's rollup rows before this hour (`i64::MAX`: all of them).
    pub rollups_before_hour: Option<i64>,
}

/// An email verdict corrected after the fact: the recipient's events of one kind since
/// `from_ms` with verdict `from_verdict` (and reason `from_reason`, unless empty) become
/// `verdict` / `reason` (what the writer's `Reclassify` did).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relabel {
    pub campaign_id: i64,
    pub recipient: String,
    pub name: String,
    pub from_ms: Millis,
    pub verdict: String,
    pub reason: String,
    pub from_verdict: String,
    pub from_reason: String,
}

/// A change ClickHouse must follow, numbered in the order it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Delete(Deletion),
    Relabel(Relabel),
}

/// One rollup delta as forwarded: a row of the rollups table's key and its nine
/// counters (visitors, visits, pageviews, events, bounces, duration_ms, scroll_sum,
/// scroll_n, engaged_ms).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RollupDelta {
    pub site_id: i64,
    pub dim: i64,
    pub hour: i64,
    pub value: String,
    pub counts: [i64; 9],
}

/// Packs deltas: per row the site, dim, hour, value length (u32) and bytes, and the
/// nine counters, all little-endian.
pub fn pack_rollups(rows: &[RollupDelta]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.len() * 112);
    for r in rows {
        out.extend_from_slice(&r.site_id.to_le_bytes());
        out.extend_from_slice(&r.dim.to_le_bytes());
        out.extend_from_slice(&r.hour.to_le_bytes());
        out.extend_from_slice(&(r.value.len() as u32).to_le_bytes());
        out.extend_from_slice(r.value.as_bytes());
        for c in r.counts {
            out.extend_from_slice(&c.to_le_bytes());
        }
    }
    out
}

/// The rows [`pack_rollups`] packed; None if the bytes are not such a packing.
pub fn unpack_rollups(mut b: &[u8]) -> Option<Vec<RollupDelta>> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (b.get(..n)?, b.get(n..)?);
        *b = rest;
        Some(head)
    }
    let i64_of =
        |b: &mut &[u8]| -> Option<i64> { Some(i64::from_le_bytes(take(b, 8)?.try_into().ok()?)) };
    let mut out = Vec::new();
    while !b.is_empty() {
        let site_id = i64_of(&mut b)?;
        let dim = i64_of(&mut b)?;
        let hour = i64_of(&mut b)?;
        let len = u32::from_le_bytes(take(&mut b, 4)?.try_into().ok()?) as usize;
        let value = String::from_utf8(take(&mut b, len)?.to_vec()).ok()?;
        let mut counts = [0i64; 9];
        for c in &mut counts {
            *c = i64_of(&mut b)?;
        }
        out.push(RollupDelta {
            site_id,
            dim,
            hour,
            value,
            counts,
        });
    }
    Some(out)
}

/// Packs session rows: per row the seven integers of [`SessionRow`] (id, site,
/// visitor, start, last, page views, events), then the entry page, the exit page and
/// the dimension values, each as a length (u32) and bytes; all little-endian.
pub fn pack_sessions(rows: &[SessionRow]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.len() * 160);
    let text = |out: &mut Vec<u8>, s: &str| {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    };
    for r in rows {
        for n in [
            r.id,
            r.site_id,
            r.visitor_id,
            r.start_ms,
            r.last_ms,
            r.pageviews,
            r.events,
        ] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        text(&mut out, &r.entry_page);
        text(&mut out, &r.exit_page);
        out.extend_from_slice(&(r.dims.len() as u32).to_le_bytes());
        for d in r.dims.iter() {
            text(&mut out, d);
        }
    }
    out
}

/// The rows [`pack_sessions`] packed; None if the bytes are not such a packing.
pub fn unpack_sessions(mut b: &[u8]) -> Option<Vec<SessionRow>> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (b.get(..n)?, b.get(n..)?);
        *b = rest;
        Some(head)
    }
    fn int(b: &mut &[u8]) -> Option<i64> {
        Some(i64::from_le_bytes(take(b, 8)?.try_into().ok()?))
    }
    fn len(b: &mut &[u8]) -> Option<usize> {
        Some(u32::from_le_bytes(take(b, 4)?.try_into().ok()?) as usize)
    }
    fn text(b: &mut &[u8]) -> Option<String> {
        let n = len(b)?;
        String::from_utf8(take(b, n)?.to_vec()).ok()
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let mut r = SessionRow {
            id: int(&mut b)?,
            site_id: int(&mut b)?,
            visitor_id: int(&mut b)?,
            start_ms: int(&mut b)?,
            last_ms: int(&mut b)?,
            pageviews: int(&mut b)?,
            events: int(&mut b)?,
            entry_page: text(&mut b)?,
            exit_page: text(&mut b)?,
            dims: Default::default(),
        };
        let n = len(&mut b)?;
        if n > 64 {
            return None;
        }
        let mut dims = Vec::with_capacity(n);
        for _ in 0..n {
            dims.push(text(&mut b)?);
        }
        r.dims = dims.into();
        out.push(r);
    }
    Some(out)
}

/// One write of derived rows as the forwarder ships it: the rollup deltas and the
/// visits as they stand after the write.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DerivedWrite {
    pub seq: i64,
    /// Attempts started at shipping the rollups; more than 0 means one may have landed.
    pub attempts: i64,
    pub rollups: Vec<RollupDelta>,
    pub sessions: Vec<SessionRow>,
}

/// Whether forwarding has started (its state row exists).
pub(super) fn forwarding_started(tx: &rusqlite::Transaction<'_>) -> Result<bool> {
    Ok(tx
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM forward_state)")?
        .query_row([], |r| r.get(0))?)
}

/// Records one write's rollup deltas and visits for the forwarder, in the writer's
/// transaction (the caller checked [`forwarding_started`]).
pub(super) fn record_derived(
    tx: &rusqlite::Transaction<'_>,
    rollups: &[RollupDelta],
    sessions: &[SessionRow],
) -> Result<()> {
    if !rollups.is_empty() || !sessions.is_empty() {
        tx.prepare_cached("INSERT INTO forward_rollups (body, sessions) VALUES (?1, ?2)")?
            .execute([pack_rollups(rollups), pack_sessions(sessions)])?;
    }
    Ok(())
}

/// Rows per packed snapshot chunk.
const SNAPSHOT_ROWS: usize = 10_000;

/// Records `d` for the forwarder, in the transaction of the local delete — only if
/// forwarding ever started (otherwise ClickHouse holds nothing to delete).
pub(super) fn record_deletion(tx: &rusqlite::Transaction<'_>, d: &Deletion) -> Result<()> {
    tx.execute(
        "INSERT INTO forward_changes (op, site_id, visitor_id, recipient, campaign_id, before_ms)
         SELECT 'delete', ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM forward_state)",
        params![
            d.site_id,
            d.visitor_id,
            d.recipient,
            d.campaign_id,
            d.before_ms
        ],
    )?;
    Ok(())
}

/// Records a verdict correction for the forwarder, in the writer's transaction that
/// applies it locally (again only once forwarding started).
pub(super) fn record_relabel(
    tx: &rusqlite::Transaction<'_>,
    r: &crate::store::Reclassify,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO forward_changes (op, campaign_id, recipient, name, from_ms, verdict, reason, from_verdict, from_reason)
         SELECT 'relabel', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 WHERE EXISTS (SELECT 1 FROM forward_state)",
    )?
    .execute(params![
        r.campaign_id,
        r.recipient,
        r.name,
        r.from_ms,
        r.verdict,
        r.reason,
        r.from_verdict,
        r.from_reason
    ])?;
    Ok(())
}

const BATCH_COLUMNS: &str = "seq, from_id, to_id, attempts, shards_done";

fn batch_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Batch> {
    Ok(Batch {
        seq: r.get(0)?,
        from_id: r.get(1)?,
        to_id: r.get(2)?,
        attempts: r.get(3)?,
        shards_done: r.get::<_, i64>(4)? as u64,
    })
}

/// The month of a time (UTC), as ClickHouse's `toYYYYMM` partitions by it.
fn month(ts_ms: Millis) -> (i32, u32) {
    use chrono::Datelike;
    let secs = ts_ms.clamp(0, i64::from(u32::MAX) * 1000) / 1000;
    let d = chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default();
    (d.year(), d.month())
}

impl Spool {
    pub(super) fn new(conn: Connection) -> Spool {
        Spool { conn }
    }

    /// This installation's collector id, minted (random, 24 bits, never 0) the first
    /// time forwarding starts; and the shipped high-water mark.
    pub fn state(&mut self) -> Result<(u32, i64)> {
        let found = self
            .conn
            .query_row(
                "SELECT collector_id, shipped_to FROM forward_state WHERE one = 1",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u32, r.get(1)?)),
            )
            .optional()?;
        if let Some(s) = found {
            return Ok(s);
        }
        let mut b = [0u8; 4];
        getrandom::fill(&mut b).map_err(|e| crate::store::StoreError::Conflict(e.to_string()))?;
        let id = (u32::from_le_bytes(b) & 0x00ff_ffff).max(1);
        // Forwarding starts: in one transaction (so no write of derived rows falls
        // between), the state row and the rollups and visits as they stand, as the
        // first writes to ship.
        let tx = self.conn.transaction()?;
        let fresh = tx.execute(
            "INSERT OR IGNORE INTO forward_state (one, collector_id, shipped_to) VALUES (1, ?1, 0)",
            [i64::from(id)],
        )? == 1;
        if fresh {
            let mut st = tx.prepare(
                "SELECT site_id, dim, hour, value, visitors, visits, pageviews, events, bounces,
                        duration_ms, scroll_sum, scroll_n, engaged_ms FROM rollups",
            )?;
            let mut rows = st.query([])?;
            let mut chunk = Vec::new();
            let mut ins = tx.prepare("INSERT INTO forward_rollups (body) VALUES (?1)")?;
            while let Some(r) = rows.next()? {
                let mut counts = [0i64; 9];
                for (i, c) in counts.iter_mut().enumerate() {
                    *c = r.get(4 + i)?;
                }
                chunk.push(RollupDelta {
                    site_id: r.get(0)?,
                    dim: r.get(1)?,
                    hour: r.get(2)?,
                    value: r.get(3)?,
                    counts,
                });
                if chunk.len() == SNAPSHOT_ROWS {
                    ins.execute([pack_rollups(&chunk)])?;
                    chunk.clear();
                }
            }
            if !chunk.is_empty() {
                ins.execute([pack_rollups(&chunk)])?;
            }
            // And the visits as they stand (filtered reports read them): every row,
            // selected as the writer selects the open ones.
            let mut st = tx.prepare(super::writer::SESSION_ROWS)?;
            let mut rows = st.query([])?;
            let mut ins =
                tx.prepare("INSERT INTO forward_rollups (body, sessions) VALUES (x'', ?1)")?;
            let mut chunk = Vec::new();
            while let Some(r) = rows.next()? {
                chunk.push(super::writer::session_from_row(r)?);
                if chunk.len() == SNAPSHOT_ROWS {
                    ins.execute([pack_sessions(&chunk)])?;
                    chunk.clear();
                }
            }
            if !chunk.is_empty() {
                ins.execute([pack_sessions(&chunk)])?;
            }
        }
        tx.commit()?;
        self.state()
    }

    /// The sealed batch not shipped yet, if any.
    pub fn open_batch(&self) -> Result<Option<Batch>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {BATCH_COLUMNS} FROM forward_batch ORDER BY seq LIMIT 1"),
                [],
                batch_from_row,
            )
            .optional()?)
    }

    /// Seals the next batch: up to `max_rows` events past the shipped mark, cut before
    /// the first one of another month. None when everything is shipped.
    pub fn seal(&mut self, max_rows: usize) -> Result<Option<Batch>> {
        let shipped: i64 = self.conn.query_row(
            "SELECT shipped_to FROM forward_state WHERE one = 1",
            [],
            |r| r.get(0),
        )?;
        // Only events whose visits are written (none in `unindexed`): each event ships
        // with how its visit started.
        let mut st = self.conn.prepare_cached(
            "SELECT id, ts_ms FROM events WHERE id > ?1
               AND id < IFNULL((SELECT min(from_id) FROM unindexed), 9223372036854775807)
             ORDER BY id LIMIT ?2",
        )?;
        let rows: Vec<(i64, Millis)> = st
            .query_map(params![shipped, max_rows as i64], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let Some(&(from_id, first_ts)) = rows.first() else {
            return Ok(None);
        };
        let m = month(first_ts);
        let to_id = rows
            .iter()
            .take_while(|(_, ts)| month(*ts) == m)
            .last()
            .map_or(from_id, |(id, _)| *id);
        self.conn.execute(
            "INSERT INTO forward_batch (from_id, to_id) VALUES (?1, ?2)",
            [from_id, to_id],
        )?;
        self.open_batch()
    }

    /// The events of `b` still stored (erasure or retention may have removed some),
    /// with their ids and how their visits started, in id order.
    pub fn events(&self, b: &Batch) -> Result<Vec<(i64, Event, Option<VisitColumns>)>> {
        let columns = EVENT_COLUMNS.replacen("FROM events", ", id FROM events", 1);
        let mut st = self
            .conn
            .prepare_cached(&format!("{columns} WHERE id BETWEEN ?1 AND ?2 ORDER BY id"))?;
        let events: Vec<(i64, Event)> = st
            .query_map([b.from_id, b.to_id], |r| {
                let id: i64 = r.get(super::events::EVENT_COLUMN_COUNT)?;
                Ok((id, event_from_row(r)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut visit = self.conn.prepare_cached(VISIT_COLUMNS)?;
        let mut seen: HashMap<i64, Option<VisitColumns>> = HashMap::new();
        let mut out = Vec::with_capacity(events.len());
        for (id, e) in events {
            let v = match e.session_id {
                0 => None,
                s => match seen.get(&s) {
                    Some(v) => v.clone(),
                    None => {
                        let v = visit
                            .query_row([s], |r| {
                                Ok(VisitColumns {
                                    entry_page: r.get(0)?,
                                    dims: (1..=SESSION_DIMS.len())
                                        .map(|i| r.get(i))
                                        .collect::<rusqlite::Result<_>>()?,
                                })
                            })
                            .optional()?
                            // A visit without a row is one whose first hit is the only
                            // event naming it (`one_event_visits.sql`): this one.
                            .or_else(|| Some(VisitColumns::started_by(&e)));
                        seen.insert(s, v.clone());
                        v
                    }
                },
            };
            out.push((id, e, v));
        }
        Ok(out)
    }

    /// Records that an attempt starts: from now on the batch's markers are checked
    /// before it is sent again.
    pub fn attempt(&mut self, seq: i64) -> Result<()> {
        self.conn.execute(
            "UPDATE forward_batch SET attempts = attempts + 1 WHERE seq = ?1",
            [seq],
        )?;
        Ok(())
    }

    pub fn shard_done(&mut self, seq: i64, shard: usize) -> Result<()> {
        self.conn.execute(
            "UPDATE forward_batch SET shards_done = shards_done | ?2 WHERE seq = ?1",
            params![seq, 1i64 << shard],
        )?;
        Ok(())
    }

    /// Every part of `b` landed: the mark moves past it, in one transaction.
    pub fn shipped(&mut self, b: &Batch) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE forward_state SET shipped_to = max(shipped_to, ?1) WHERE one = 1",
            [b.to_id],
        )?;
        tx.execute("DELETE FROM forward_batch WHERE seq = ?1", [b.seq])?;
        tx.commit()?;
        Ok(())
    }

    /// Up to `limit` of the oldest changes not yet made in ClickHouse, in order.
    pub fn next_changes(&self, limit: usize) -> Result<Vec<(i64, Change)>> {
        let mut st = self.conn.prepare_cached(
            "SELECT seq, op, site_id, visitor_id, recipient, campaign_id, before_ms,
                    name, from_ms, verdict, reason, rollups_before_hour, from_verdict, from_reason
             FROM forward_changes ORDER BY seq LIMIT ?1",
        )?;
        let rows = st.query_map([limit as i64], |r| {
            let op: String = r.get(1)?;
            let change = if op == "relabel" {
                Change::Relabel(Relabel {
                    campaign_id: r.get(5)?,
                    recipient: r.get(4)?,
                    name: r.get(7)?,
                    from_ms: r.get(8)?,
                    verdict: r.get(9)?,
                    reason: r.get(10)?,
                    from_verdict: r.get(12)?,
                    from_reason: r.get(13)?,
                })
            } else {
                Change::Delete(Deletion {
                    site_id: r.get(2)?,
                    visitor_id: r.get(3)?,
                    recipient: r.get(4)?,
                    campaign_id: r.get(5)?,
                    before_ms: r.get(6)?,
                    rollups_before_hour: r.get(11)?,
                })
            };
            Ok((r.get(0)?, change))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// ClickHouse accepted the changes up to `seq` (as mutations, which it completes
    /// on its own).
    pub fn changes_done(&mut self, seq: i64) -> Result<()> {
        self.conn
            .execute("DELETE FROM forward_changes WHERE seq <= ?1", [seq])?;
        Ok(())
    }

    /// The oldest writes of derived rows not shipped yet, in order: as many as fit in
    /// `max_rows` rollup rows (at least one), so a busy writer's many small writes go
    /// out in few inserts.
    pub fn next_rollups(&self, max_rows: usize) -> Result<Vec<DerivedWrite>> {
        let mut st = self.conn.prepare_cached(
            "SELECT seq, attempts, body, sessions FROM forward_rollups ORDER BY seq LIMIT 1000",
        )?;
        let mut rows = st.query([])?;
        let (mut out, mut n) = (Vec::new(), 0);
        while let Some(r) = rows.next()? {
            let body: Vec<u8> = r.get(2)?;
            let sessions: Option<Vec<u8>> = r.get(3)?;
            let w = DerivedWrite {
                seq: r.get(0)?,
                attempts: r.get(1)?,
                rollups: unpack_rollups(&body).unwrap_or_default(),
                sessions: sessions
                    .and_then(|b| unpack_sessions(&b))
                    .unwrap_or_default(),
            };
            n += w.rollups.len() + 1;
            if !out.is_empty() && n > max_rows {
                break;
            }
            out.push(w);
        }
        Ok(out)
    }

    /// Records an attempt at shipping the writes `seqs`.
    pub fn rollups_attempt(&mut self, seqs: &[i64]) -> Result<()> {
        let tx = self.conn.transaction()?;
        for seq in seqs {
            tx.execute(
                "UPDATE forward_rollups SET attempts = attempts + 1 WHERE seq = ?1",
                [seq],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn rollups_shipped(&mut self, seqs: &[i64]) -> Result<()> {
        let tx = self.conn.transaction()?;
        for seq in seqs {
            tx.execute("DELETE FROM forward_rollups WHERE seq = ?1", [seq])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Events committed and not shipped yet: up to the newest event's id, not the
    /// AUTOINCREMENT counter, which a writer under load sets to the top of the block of
    /// ids it reserved (`SqliteWriter::reserve_ids`) — thousands of ids no event holds.
    pub fn backlog(&self) -> Result<i64> {
        Ok(self.conn.query_row(
            "SELECT max(0, IFNULL((SELECT max(id) FROM events), 0)
                  - (SELECT shipped_to FROM forward_state WHERE one = 1))",
            [],
            |r| r.get(0),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::{pack_sessions, unpack_sessions, Change, Deletion};
    use crate::store::SessionRow;

    #[test]
    fn visit_columns_follow_session_dims() {
        let names: Vec<&str> = super::VISIT_COLUMNS
            .trim_start_matches("SELECT ")
            .split(" FROM")
            .next()
            .unwrap()
            .split(',')
            .map(str::trim)
            .collect();
        let mut want = vec!["entry_page"];
        want.extend(crate::store::SESSION_DIMS.iter().map(|d| match d.name() {
            "referrer" => "referrer_host",
            n => n,
        }));
        assert_eq!(names, want);
    }

    #[test]
    fn session_rows_survive_packing() {
        let rows = vec![
            SessionRow {
                id: (1_700_000_000_000 << 20) | 7,
                site_id: 3,
                visitor_id: -42,
                start_ms: 1_700_000_000_000,
                last_ms: 1_700_000_060_000,
                pageviews: 2,
                events: 3,
                entry_page: "/é?".into(),
                exit_page: String::new(),
                dims: (0..12)
                    .map(|i| format!("v'{i}\\\0"))
                    .collect::<Vec<_>>()
                    .into(),
            },
            SessionRow::default(),
        ];
        assert_eq!(unpack_sessions(&pack_sessions(&rows)), Some(rows.clone()));
        let packed = pack_sessions(&rows);
        assert_eq!(
            unpack_sessions(&packed[..packed.len() - 1]),
            None,
            "truncated"
        );
        assert_eq!(unpack_sessions(&[]), Some(vec![]));
    }
    use crate::store::sqlite::SqliteStore;
    use crate::store::{PrivacyStore, Subject};

    /// Deletions are recorded for ClickHouse only once forwarding has started (before,
    /// ClickHouse holds nothing), then handed out in order until done.
    #[test]
    fn deletions_are_recorded_once_forwarding_started() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let mut spool = store.spool().unwrap();
        store.erase_subject(&Subject::Visitor(7)).unwrap();
        assert!(spool.next_changes(10).unwrap().is_empty());
        let (collector, shipped) = spool.state().unwrap();
        assert!(collector > 0 && collector < 1 << 24);
        assert_eq!(shipped, 0);
        assert_eq!(spool.state().unwrap().0, collector, "minted once");
        store.erase_subject(&Subject::Visitor(7)).unwrap();
        store
            .erase_subject(&Subject::Recipient {
                site_id: Some(3),
                recipient: "r'1".into(),
            })
            .unwrap();
        let changes = spool.next_changes(10).unwrap();
        assert_eq!(changes.len(), 2);
        assert_eq!(
            changes[0].1,
            Change::Delete(Deletion {
                visitor_id: Some(7),
                ..Deletion::default()
            })
        );
        assert_eq!(
            changes[1].1,
            Change::Delete(Deletion {
                site_id: Some(3),
                recipient: Some("r'1".into()),
                ..Deletion::default()
            })
        );
        spool.changes_done(changes[0].0).unwrap();
        assert_eq!(spool.next_changes(10).unwrap().len(), 1);
        spool.changes_done(changes[1].0).unwrap();
        assert!(spool.next_changes(10).unwrap().is_empty());
    }
}
