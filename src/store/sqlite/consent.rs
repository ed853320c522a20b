//! Which recipients have consent recorded, in memory: an email open or click of a
//! recipient with no row in `consent` (every recipient of a site that records none) is
//! answered without reading SQLite, and without sending the read to another thread.
//!
//! The filter holds a hash of `(site, recipient)` of every consent row, so "not in it"
//! means "no row" and "in it" means "read the row". Every process that writes consent
//! (the server, the CLI) touches a signal file beside the database before and after its
//! transaction ([`ConsentFilter::changing`]); a filter that sees the file change drops
//! its keys and reads the rows again [`WINDOW`] later, when any transaction begun before
//! the touch has committed or failed (its busy timeout is shorter). Until then, and
//! until the first read, every lookup reads SQLite, as if there were no filter. A
//! withdrawal therefore applies to the next hit, whichever process records it.

use std::collections::HashSet;
use std::hash::BuildHasher;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::StoreError;
use crate::store::Result;

/// How long after a change the filter waits before it reads the rows again: longer than
/// any writer's busy timeout (10 s), so a transaction that touched the signal before it
/// began has ended by then.
const WINDOW: Duration = Duration::from_secs(15);

/// With more rows than this, no filter: every lookup reads SQLite (as before it existed).
/// A bound on its memory (about 24 bytes a row) and on the time a read of the rows takes.
pub const MAX_KEYS: usize = 250_000;

/// The signal file, beside the database.
pub const SIGNAL_FILE: &str = "consent.changed";

/// The signal file as last seen: its length and modification time (`None`: no file).
type Signature = Option<(u64, SystemTime)>;

#[derive(Default)]
struct State {
    /// The hashed `(site, recipient)` of every row, once read and while no change has
    /// been seen since.
    keys: Option<HashSet<u64>>,
    /// The signal file as it was when the filter last looked.
    seen: Signature,
    /// Whether the filter has looked at the signal file yet.
    looked: bool,
    /// Counts the changes seen: a read of the rows started before the last one is stale.
    generation: u64,
    /// After a change: no read of the rows before this instant.
    wait_until: Option<Instant>,
    /// A read of the rows is under way.
    loading: bool,
    /// The last read found more than [`MAX_KEYS`] rows: no filter until the next change.
    too_many: bool,
}

pub(super) struct ConsentFilter {
    db: PathBuf,
    signal: PathBuf,
    state: Arc<Mutex<State>>,
    /// Seeded per process: recipient ids come from the wire.
    seed: foldhash::fast::RandomState,
    window: Duration,
}

fn signature(signal: &Path) -> Signature {
    let m = std::fs::metadata(signal).ok()?;
    Some((m.len(), m.modified().ok()?))
}

fn key(seed: &foldhash::fast::RandomState, site_id: i64, recipient: &str) -> u64 {
    seed.hash_one((site_id, recipient))
}

impl ConsentFilter {
    pub(super) fn new(db: &Path) -> ConsentFilter {
        ConsentFilter {
            db: db.to_owned(),
            signal: db.with_file_name(SIGNAL_FILE),
            state: Default::default(),
            seed: Default::default(),
            window: WINDOW,
        }
    }

    #[cfg(test)]
    fn with_window(mut self, window: Duration) -> ConsentFilter {
        self.window = window;
        self
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `recipient` certainly has no consent row on the site. `false` when it
    /// has one, or when the filter does not know (not read yet, or a change is under
    /// way): the caller reads SQLite then. One `stat` of the signal file and a lookup.
    pub(super) fn unrecorded(&self, site_id: i64, recipient: &str) -> bool {
        let now_sig = signature(&self.signal);
        let now = Instant::now();
        let mut st = self.state();
        if !st.looked || st.seen != now_sig {
            // A change (or a signal file from before this process): whatever the
            // filter holds may be stale, and a writer may still be committing.
            if st.looked || now_sig.is_some() {
                st.wait_until = Some(now + self.window);
            }
            st.looked = true;
            st.seen = now_sig;
            st.generation += 1;
            st.keys = None;
            st.too_many = false;
        }
        if let Some(keys) = &st.keys {
            return !keys.contains(&key(&self.seed, site_id, recipient));
        }
        if !st.loading && !st.too_many && st.wait_until.is_none_or(|t| now >= t) {
            st.loading = true;
            self.load(st.generation);
        }
        false
    }

    /// Reads the rows on a thread of its own, and keeps them unless a change was seen
    /// meanwhile.
    fn load(&self, generation: u64) {
        let (db, state, seed, window) = (
            self.db.clone(),
            self.state.clone(),
            self.seed.clone(),
            self.window,
        );
        let spawned = std::thread::Builder::new()
            .name("pixeltrack-consent".into())
            .spawn(move || {
                let read = read_keys(&db, &seed);
                let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
                st.loading = false;
                if st.generation != generation {
                    return;
                }
                match read {
                    Ok(Some(keys)) => st.keys = Some(keys),
                    Ok(None) => st.too_many = true,
                    Err(e) => {
                        tracing::warn!(error = %e, "reading the consent rows failed: every email hit reads its consent from the database until a retry succeeds");
                        st.wait_until = Some(Instant::now() + window);
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "starting the consent reader failed");
            let mut st = self.state();
            st.loading = false;
            st.wait_until = Some(Instant::now() + self.window);
        }
    }

    /// Runs `write`, a transaction that records consent, between two touches of the
    /// signal file: every filter (this process's and the others') drops its keys and
    /// reads the rows again after the write has ended.
    pub(super) fn changing<T>(&self, write: impl FnOnce() -> Result<T>) -> Result<T> {
        self.touch()?;
        let out = write();
        let after = self.touch();
        let out = out?;
        after?;
        Ok(out)
    }

    /// Changes the signal file's length and modification time. A writer that knows only
    /// inside its transaction whether it changes a row touches before its commit and
    /// after it, as [`changing`](Self::changing) does.
    pub(super) fn touch(&self) -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let io = |source| StoreError::File {
            path: self.signal.clone(),
            source,
        };
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.signal)
            .map_err(io)?;
        if f.metadata().map_err(io)?.len() >= 4096 {
            f.set_len(0).map_err(io)?;
        }
        f.write_all(b"\n").map_err(io)?;
        f.set_modified(SystemTime::now()).map_err(io)?;
        Ok(())
    }
}

/// The hashed `(site, recipient)` of every consent row; `None` past [`MAX_KEYS`].
fn read_keys(db: &Path, seed: &foldhash::fast::RandomState) -> Result<Option<HashSet<u64>>> {
    let conn = rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let rows: i64 = conn.query_row("SELECT count(*) FROM consent", [], |r| r.get(0))?;
    if rows as usize > MAX_KEYS {
        return Ok(None);
    }
    let mut keys = HashSet::with_capacity(rows as usize);
    let mut st = conn.prepare("SELECT site_id, recipient FROM consent")?;
    let mut q = st.query([])?;
    while let Some(r) = q.next()? {
        keys.insert(key(seed, r.get(0)?, &r.get::<_, String>(1)?));
    }
    Ok(Some(keys))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SiteId;
    use crate::store::{PrivacyStore, SqliteStore};

    /// Asks until the filter knows (it reads the rows on a thread of its own).
    fn settled(f: &ConsentFilter, site: i64, r: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let known = f.state().keys.is_some();
            let answer = f.unrecorded(site, r);
            if known && f.state().keys.is_some() {
                return answer;
            }
            assert!(Instant::now() < deadline, "the filter never read the rows");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_recipient_without_rows_is_known_and_a_change_anywhere_applies_to_the_next_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let server = SqliteStore::open(dir.path()).unwrap();
        // Another process: its own store on the same files.
        let cli = SqliteStore::open(dir.path()).unwrap();
        cli.set_consent(SiteId(1), 0, "ann@example.com", true, 1)
            .unwrap();
        let f = ConsentFilter::new(&dir.path().join(super::super::DB_FILE))
            .with_window(Duration::from_millis(50));

        assert!(
            !f.unrecorded(1, "bob@example.com"),
            "nothing known before the read"
        );
        assert!(settled(&f, 1, "bob@example.com"), "Bob has no row");
        assert!(!f.unrecorded(1, "ann@example.com"), "Ann has one");
        assert!(f.unrecorded(2, "ann@example.com"), "but not on site 2");

        // Recorded by the other process: the very next lookup reads SQLite.
        cli.set_consent(SiteId(1), 7, "bob@example.com", false, 2)
            .unwrap();
        assert!(!f.unrecorded(1, "bob@example.com"));
        assert_eq!(
            server.consent(SiteId(1), 7, "bob@example.com").unwrap(),
            Some(false)
        );
        // Then the rows are read again, Bob's with them.
        assert!(!settled(&f, 1, "bob@example.com"));
        assert!(settled(&f, 1, "cem@example.com"));
    }

    /// A writer that died after its commit, before its second touch: the first touch
    /// holds the filter off for the window, and the rows read after it have the row.
    #[test]
    fn a_row_committed_after_the_first_touch_is_in_the_rows_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let db = dir.path().join(super::super::DB_FILE);
        let f = ConsentFilter::new(&db).with_window(Duration::from_millis(300));
        assert!(settled(&f, 1, "ann@example.com"));

        let writer = ConsentFilter::new(&db);
        writer.touch().unwrap();
        assert!(!f.unrecorded(1, "ann@example.com"), "a change is under way");
        // The commit comes later than the touch, and no second touch follows.
        std::thread::sleep(Duration::from_millis(100));
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute(
            "INSERT INTO consent (site_id, campaign_id, recipient, granted, updated_ms) \
             VALUES (1, 0, 'ann@example.com', 0, 1)",
            [],
        )
        .unwrap();
        assert!(!f.unrecorded(1, "ann@example.com"));
        assert!(!settled(&f, 1, "ann@example.com"), "the row was read again");
        assert_eq!(
            store.consent(SiteId(1), 3, "ann@example.com").unwrap(),
            Some(false)
        );
    }

    /// Replication takes the same rows in again and again: only a merge that changes a
    /// row signals, and then the next lookup reads SQLite.
    #[test]
    fn a_merge_signals_only_when_it_changes_a_row() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let f = ConsentFilter::new(&dir.path().join(super::super::DB_FILE));
        assert!(settled(&f, 1, "ann@example.com"));
        let row = super::super::shared::ConsentRow {
            site_id: 1,
            campaign_id: 0,
            recipient: "ann@example.com".into(),
            granted: false,
            updated_ms: 10,
        };
        assert_eq!(store.merge_consent(std::slice::from_ref(&row)).unwrap(), 1);
        assert!(!f.unrecorded(1, "ann@example.com"), "the merge was seen");
        let signal = signature(&dir.path().join(SIGNAL_FILE));
        assert_eq!(store.merge_consent(&[row]).unwrap(), 0);
        assert_eq!(
            signature(&dir.path().join(SIGNAL_FILE)),
            signal,
            "nothing changed"
        );
    }

    #[test]
    fn past_the_bound_there_is_no_filter() {
        let dir = tempfile::tempdir().unwrap();
        let _store = SqliteStore::open(dir.path()).unwrap();
        let db = dir.path().join(super::super::DB_FILE);
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i <= {MAX_KEYS}) \
             INSERT INTO consent (site_id, campaign_id, recipient, granted, updated_ms) \
             SELECT 1, 0, 'r' || i, 1, 1 FROM n"
        ))
        .unwrap();
        let f = ConsentFilter::new(&db);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !f.state().too_many {
            assert!(!f.unrecorded(1, "nobody"));
            assert!(Instant::now() < deadline, "the rows were never counted");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!f.unrecorded(1, "nobody"), "no filter: SQLite answers");
        assert!(f.state().keys.is_none());
    }
}
