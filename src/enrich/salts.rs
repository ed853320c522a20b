//! The salt keeper: holds the current days' salts in memory and in the store, makes
//! the next one before it is needed and destroys each one once its day and the grace
//! period are over (in memory, in the table, and — by a checkpoint — in the WAL).

use std::sync::RwLock;

use super::visitor::Salt;
use crate::clock::{day_of, Millis, DAY_MS};
use crate::store::{Result, SqliteStore};

pub struct SaltKeeper {
    salts: RwLock<Vec<Salt>>,
    grace_ms: Millis,
}

impl SaltKeeper {
    pub fn new(grace_minutes: u32) -> Self {
        SaltKeeper {
            salts: RwLock::new(Vec::new()),
            grace_ms: i64::from(grace_minutes) * 60_000,
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
        let today = day_of(now);
        // Yesterday's salt survives the first `grace` of today.
        let keep_from = if now - today * DAY_MS < self.grace_ms {
            today - 1
        } else {
            today
        };
        let destroyed = store.destroy_salts_before(keep_from)?;
        if destroyed > 0 {
            tracing::info!(destroyed, "visitor salts destroyed");
        }
        let mut held: Vec<Salt> = store
            .salts()?
            .into_iter()
            .filter(|s| s.day >= keep_from)
            .collect();
        for day in [today, today + 1] {
            if !held.iter().any(|s| s.day == day) {
                held.push(store.put_salt(&Salt::random(day))?);
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
        keeper.rotate(&store, day0 * DAY_MS + 12 * HOUR_MS).unwrap();
        let s0 = keeper.get(day0).unwrap();
        assert!(keeper.get(day0 + 1).is_some());

        // A restart the same day reads the same salt back.
        let again = SaltKeeper::new(60);
        again.rotate(&store, day0 * DAY_MS + 13 * HOUR_MS).unwrap();
        assert_eq!(again.get(day0).unwrap(), s0);

        // Within the grace period of the next day the old salt is still there...
        keeper
            .rotate(&store, (day0 + 1) * DAY_MS + 30 * 60_000)
            .unwrap();
        assert!(keeper.get(day0).is_some());
        // ...after it, gone from memory, the table and every file of the data dir.
        keeper
            .rotate(&store, (day0 + 1) * DAY_MS + 2 * HOUR_MS)
            .unwrap();
        assert!(keeper.get(day0).is_none());
        assert!(store.salts().unwrap().iter().all(|s| s.day != day0));
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            assert!(
                !bytes.windows(32).any(|w| w == s0.bytes),
                "yesterday's salt is still on disk"
            );
        }
    }
}
