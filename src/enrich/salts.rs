//! The salt keeper: holds the current days' salts in memory and in the store, makes
//! the next one before it is needed and destroys each one once its day and the grace
//! period are over (in memory, in the table, and — by a checkpoint — in the WAL).
//!
//! "Over" is decided by the wall clock *and* the monotonic clock: when a salt is first
//! held, the keeper notes how long its life still is on the monotonic clock, and only
//! destroys it once both say it is over. A wall clock that jumps forward (a bad NTP
//! step, a misset date) therefore cannot destroy today's salt — which would count
//! every visitor of the rest of the day twice once the clock is set right.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use super::visitor::Salt;
use crate::clock::{day_of, Millis, DAY_MS};
use crate::store::{Result, SqliteStore};

pub struct SaltKeeper {
    salts: RwLock<Vec<Salt>>,
    grace_ms: Millis,
    /// Per day: when its salt's life ends on the monotonic clock.
    ends: Mutex<HashMap<i64, Instant>>,
}

impl SaltKeeper {
    pub fn new(grace_minutes: u32) -> Self {
        SaltKeeper {
            salts: RwLock::new(Vec::new()),
            grace_ms: i64::from(grace_minutes) * 60_000,
            ends: Mutex::new(HashMap::new()),
        }
    }

    /// The salt of `day`, if held.
    pub fn get(&self, day: i64) -> Option<Salt> {
        let salts = self.salts.read().unwrap_or_else(|p| p.into_inner());
        salts.iter().find(|s| s.day == day).cloned()
    }

    /// Ensures today's and tomorrow's salts exist and destroys expired ones.
    /// Called at start and then every minute.
    pub fn rotate(&self, store: &SqliteStore, now: Millis) -> Result<()> {
        self.rotate_at(store, now, Instant::now())
    }

    /// [`rotate`](Self::rotate) with the monotonic clock's reading passed in (tests).
    pub fn rotate_at(&self, store: &SqliteStore, now: Millis, mono: Instant) -> Result<()> {
        let today = day_of(now);
        let end_of = |day: i64| (day + 1) * DAY_MS + self.grace_ms;
        let mut ends = self.ends.lock().unwrap_or_else(|p| p.into_inner());
        let stored = store.salts()?;
        for s in &stored {
            ends.entry(s.day).or_insert_with(|| {
                mono + Duration::from_millis((end_of(s.day) - now).max(0) as u64)
            });
        }
        // The first day to keep: every earlier one is over by both clocks.
        let over = |day: i64| end_of(day) <= now && ends.get(&day).is_none_or(|e| *e <= mono);
        let keep_from = stored
            .iter()
            .map(|s| s.day)
            .filter(|d| !over(*d))
            .min()
            .unwrap_or(today)
            .min(today);
        if stored.iter().any(|s| s.day < keep_from) {
            let destroyed = store.destroy_salts_before(keep_from)?;
            tracing::info!(destroyed, "visitor salts destroyed");
        }
        let wall_only: Vec<i64> = stored
            .iter()
            .map(|s| s.day)
            .filter(|d| *d >= keep_from && end_of(*d) <= now)
            .collect();
        if !wall_only.is_empty() {
            tracing::warn!(days = ?wall_only, "the clock says these salts are over, but not this much time has passed: kept (did the clock jump forward?)");
        }
        ends.retain(|day, _| *day >= keep_from);
        let mut held: Vec<Salt> = stored.into_iter().filter(|s| s.day >= keep_from).collect();
        for day in [today, today + 1] {
            if !held.iter().any(|s| s.day == day) {
                held.push(store.put_salt(&Salt::random(day))?);
                ends.insert(
                    day,
                    mono + Duration::from_millis((end_of(day) - now).max(0) as u64),
                );
            }
        }
        *self.salts.write().unwrap_or_else(|p| p.into_inner()) = held;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::HOUR_MS;

    #[test]
    fn salts_live_for_their_day_plus_grace_then_vanish_from_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let keeper = SaltKeeper::new(60);
        let day0 = 20_000;
        // Real time passes on both clocks: the monotonic one follows the wall clock.
        let t0 = Instant::now();
        let start = day0 * DAY_MS + 12 * HOUR_MS;
        let at = |wall: Millis| t0 + Duration::from_millis((wall - start) as u64);
        keeper.rotate_at(&store, start, t0).unwrap();
        let s0 = keeper.get(day0).unwrap();
        assert!(keeper.get(day0 + 1).is_some());

        // A restart the same day reads the same salt back.
        let again = SaltKeeper::new(60);
        let wall = day0 * DAY_MS + 13 * HOUR_MS;
        again.rotate_at(&store, wall, at(wall)).unwrap();
        assert_eq!(again.get(day0).unwrap(), s0);

        // Within the grace period of the next day the old salt is still there...
        let wall = (day0 + 1) * DAY_MS + 30 * 60_000;
        keeper.rotate_at(&store, wall, at(wall)).unwrap();
        assert!(keeper.get(day0).is_some());
        // ...after it, gone from memory, the table and every file of the data dir.
        let wall = (day0 + 1) * DAY_MS + 2 * HOUR_MS;
        keeper.rotate_at(&store, wall, at(wall)).unwrap();
        assert!(keeper.get(day0).is_none());
        assert!(store.salts().unwrap().iter().all(|s| s.day != day0));
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            assert!(
                !bytes.windows(32).any(|w| w == s0.bytes()),
                "yesterday's salt is still on disk"
            );
        }
    }

    /// The wall clock jumps three days forward, then back: today's salt survives, so
    /// a visitor stays one visitor. Once as much time has really passed, it goes.
    #[test]
    fn a_clock_jumping_forward_does_not_destroy_todays_salt() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let keeper = SaltKeeper::new(60);
        let day0 = 20_000;
        let noon = day0 * DAY_MS + 12 * HOUR_MS;
        let t0 = Instant::now();
        keeper.rotate_at(&store, noon, t0).unwrap();
        let s0 = keeper.get(day0).unwrap();
        // One minute later (monotonic), the wall clock says three days later.
        let t1 = t0 + Duration::from_secs(60);
        keeper.rotate_at(&store, noon + 3 * DAY_MS, t1).unwrap();
        assert_eq!(keeper.get(day0), Some(s0.clone()), "kept in memory");
        assert!(
            store.salts().unwrap().iter().any(|s| s.day == day0),
            "kept in the store"
        );
        // The clock is set right again: the same salt.
        let t2 = t1 + Duration::from_secs(60);
        keeper.rotate_at(&store, noon + 2 * 60_000, t2).unwrap();
        assert_eq!(keeper.get(day0), Some(s0));
        // When its day and the grace period are really over (both clocks), it goes.
        let later = t0 + Duration::from_millis((13 * HOUR_MS) as u64);
        keeper
            .rotate_at(&store, (day0 + 1) * DAY_MS + 61 * 60_000, later)
            .unwrap();
        assert!(keeper.get(day0).is_none());
        assert!(store.salts().unwrap().iter().all(|s| s.day != day0));
    }
}
