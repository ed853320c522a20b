//! The SQLite backend: one file (`pixeltrack.db`) in the data dir, WAL mode so the
//! CLI and reports read while the server writes, one writer connection owned by the
//! ingest thread, and `secure_delete` so deleted salts and erased rows are zeroed.
//!
//! This file opens, migrates and checkpoints the database; each table family has a
//! file of its own: `sites.rs`, `campaigns.rs`, `events.rs`, `rollups.rs`,
//! `privacy.rs` (the event backend's traits), `tokens.rs` and `accounts.rs` (the
//! installation's), `salts.rs`, and `writer.rs` (the ingest thread's connection).
//! Migrations are in `sql/migrations/`, the larger queries in `sql/queries/`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::Connection;

use crate::config::Synchronous;
use crate::store::{Result, StoreError};

mod accounts;
mod campaigns;
mod consent;
mod events;
mod goal_days;
mod manage;
mod privacy;
pub(crate) mod report_days;
pub use report_days::KEYS_PER_KIND as KEPT_KEYS_PER_KIND;
mod rollups;
mod rows;
mod salts;
mod segments;
mod shared;
mod sites;
mod spool;
mod tokens;
mod writer;

pub use accounts::{Role, ShareLink, User, WebSession};
pub use manage::Funnel;
pub use privacy::run_retention;
pub use rollups::{compact_rollups, HOURLY_ROLLUP_DAYS};
pub use shared::{ConsentRow, SHARED_TABLES};
pub use spool::{
    pack_rollups, pack_sessions, unpack_rollups, unpack_sessions, Batch, Change, Deletion,
    DerivedWrite, Relabel, RollupDelta, Spool, VisitColumns,
};
use spool::{record_deletion, record_derived, record_relabel};
pub use writer::{ImportKey, ImportLookup, SqliteWriter};

// What the writer shares with the readers (`use super::…` in writer.rs).
use events::{event_from_row, EVENT_COLUMNS};
pub(crate) use events::{intern_client, intern_reason};
use rollups::UPSERT_ROLLUP;

pub const DB_FILE: &str = "pixeltrack.db";
/// Beside the database: what the file was at the last clean stop ([`SqliteStore::mark_clean_stop`]).
const CLEAN_STOP: &str = "clean-stop";

/// The database file's size, inode, and modification and change times (nanoseconds), as
/// one line; None when it cannot be read.
fn file_state(db: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(db).ok()?;
    Some(format!(
        "{} {} {}.{:09} {}.{:09}\n",
        m.len(),
        m.ino(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec()
    ))
}

/// Creates the data directory (0700) and an empty database file (0600) if they do
/// not exist: the database holds the link-signing keys and the day's salts. An existing
/// database of zero bytes is refused: SQLite would take it for a new, empty install
/// (and a new admin password) and hide whatever emptied it.
fn create_private(data_dir: &Path, path: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir_err = |source| StoreError::DataDir {
        path: data_dir.to_owned(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .map_err(dir_err)?;
    match std::fs::metadata(path) {
        Ok(m) if m.len() == 0 && !wal_has_frames(path) => Err(StoreError::Unusable {
            path: path.to_owned(),
            why: "the database file is empty (0 bytes), so it is not a pixeltrack database any more. \
                  Restore it from a backup; or, to start a new install on purpose, delete the file"
                .into(),
        }),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map(|_| ())
                .map_err(dir_err)
        }
        Err(e) => Err(dir_err(e)),
    }
}

/// A zero-byte database with a write-ahead log holds its pages there still.
fn wal_has_frames(db: &Path) -> bool {
    let wal = db.with_file_name(format!("{DB_FILE}-wal"));
    std::fs::metadata(wal).is_ok_and(|m| m.len() > 32)
}

/// What a damaged database says, with the way to recover.
fn damaged(problem: &str, db: &Path) -> String {
    format!(
        "the database is damaged ({problem}). Nothing was served. Stop every pixeltrack using it, copy the \
         data directory aside, then recover what can be read: sqlite3 {db} \".recover\" | sqlite3 recovered.db; \
         check it with sqlite3 recovered.db \"PRAGMA integrity_check\" and put it in place of {db} (removing \
         {db}-wal and {db}-shm) — or restore your last backup",
        db = db.display()
    )
}

/// An open or migration failure, said once with the path ("unable to open database
/// file: unable to open database file: Error code 14" was the old wording).
fn unusable(path: &Path, e: StoreError) -> StoreError {
    let why = match &e {
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, msg))
            if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase
            ) =>
        {
            damaged(msg.as_deref().unwrap_or("not a database"), path)
        }
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, Some(msg))) => {
            format!("{msg} (SQLite code {})", f.extended_code)
        }
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, None)) => f.to_string(),
        StoreError::SchemaTooNew { .. } => return e,
        other => other.to_string(),
    };
    StoreError::Unusable {
        path: path.to_owned(),
        why,
    }
}

/// Migrations in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("sql/migrations/001_init.sql"),
    include_str!("sql/migrations/002_email.sql"),
    include_str!("sql/migrations/003_privacy.sql"),
    include_str!("sql/migrations/004_api.sql"),
    include_str!("sql/migrations/005_web.sql"),
    include_str!("sql/migrations/006_ads.sql"),
    include_str!("sql/migrations/007_accounts.sql"),
    include_str!("sql/migrations/008_share.sql"),
    include_str!("sql/migrations/009_country.sql"),
    include_str!("sql/migrations/010_ids_never_reused.sql"),
    include_str!("sql/migrations/011_spool.sql"),
    include_str!("sql/migrations/012_unique_keys.sql"),
    include_str!("sql/migrations/013_forward.sql"),
    include_str!("sql/migrations/014_forward_sessions.sql"),
    include_str!("sql/migrations/015_relabel_from.sql"),
    include_str!("sql/migrations/016_geo.sql"),
    include_str!("sql/migrations/017_import_and_dropins.sql"),
    include_str!("sql/migrations/018_manage.sql"),
    include_str!("sql/migrations/019_goal_days.sql"),
    include_str!("sql/migrations/020_covering_touches.sql"),
    include_str!("sql/migrations/021_report_days.sql"),
    include_str!("sql/migrations/022_touches_by_key.sql"),
    include_str!("sql/migrations/023_erased_visitors.sql"),
    include_str!("sql/migrations/024_report_days_kept.sql"),
    include_str!("sql/migrations/025_visit_ends.sql"),
    include_str!("sql/migrations/026_goal_hours.sql"),
    include_str!("sql/migrations/027_recipient_lookups.sql"),
    include_str!("sql/migrations/028_hit_log.sql"),
    include_str!("sql/migrations/029_uniques_by_visitor.sql"),
];

pub struct SqliteStore {
    path: PathBuf,
    /// A small pool: a slow query (a filtered report over years) holds one connection,
    /// not every reader of the dashboard, API and jobs.
    conns: Vec<Mutex<Connection>>,
    next: std::sync::atomic::AtomicUsize,
    /// Where events and rollups are read from instead of this database (ClickHouse,
    /// where they are forwarded): every other family still reads here.
    reads_from: Option<Box<dyn crate::store::EventReads>>,
    /// The WAL's limit, shared with the writer (see `SqliteWriter::bound_wal`).
    wal_bound: std::sync::Arc<writer::WalBound>,
    /// Past days' web rows held in memory for filtered views (`segments.rs`).
    segments: crate::store::segments::Segments,
    /// Which email recipients have consent recorded (`consent.rs`).
    consent_filter: consent::ConsentFilter,
}

/// A read-only transaction: one snapshot for several reads, taking no write lock (the
/// connections' transactions are `IMMEDIATE`, see [`open_conn`]).
fn read_snapshot(conn: &Connection) -> Result<rusqlite::Transaction<'_>> {
    Ok(rusqlite::Transaction::new_unchecked(
        conn,
        rusqlite::TransactionBehavior::Deferred,
    )?)
}

/// Connections of a store's pool (the writer and the forwarder have their own).
const POOL: usize = 3;

/// The page size of a new database: 2 KiB, not SQLite's 4 KiB. A commit of the writer
/// dirties about six pages (the last leaf of `events`, the leaves of its indexes where
/// the batch's keys land, the file header when it grows) to change a few hundred bytes
/// of each, and every dirty page goes whole to the WAL and again into the file at the
/// checkpoint. On the realistic mix (`docs/benchmarks.md`): 3.0 → 2.2 KB written per
/// event, and a little less CPU per hit; 1 KiB wrote 1.8 KB but cost a fifth more CPU
/// (deeper trees, more splits). Reports read a little more (the 10 M site page 38–46 →
/// 52–56 ms). It applies when the file is created; an existing database keeps its size.
const PAGE_SIZE: i64 = 2048;

/// The writer's page cache: 2 MiB (about SQLite's default), not the readers' 64 MiB. The
/// writer touches the last leaves of its B-trees and the pages its keys land on; the
/// rest of a large cache only costs it. While the file is under 1 GiB, every commit
/// after a split in the middle of a B-tree (a conversion's touch, an email's
/// recipient) walks the whole cache: SQLite's `balance_nonroot` swaps page numbers
/// through the page at 1 GiB, and the truncation at the commit then visits every
/// cached page (`pcache1TruncateUnsafe`, 19.5 % of the writer thread with 64 MiB).
/// Measured in `docs/benchmarks.md` ("The writer's page cache at 2 MiB").
const WRITER_CACHE_KIB: i64 = 2048;

/// Prepared statements kept per connection (see [`open_conn`]).
const STATEMENT_CACHE: usize = 64;

fn open_conn(path: &Path, sync: Synchronous) -> Result<Connection> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // Every write transaction takes the write lock when it begins, where a lock held
    // elsewhere (the server's writer, a CLI write, a backup) is waited for up to the
    // busy timeout. A deferred one that reads first and then writes would fail at once:
    // SQLite never asks the busy handler when a read transaction wants to write. Reads
    // that need one snapshot take it with [`read_snapshot`].
    conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
    // Before WAL mode: it fixes the page size of a file not yet written.
    conn.pragma_update(None, "page_size", PAGE_SIZE)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    let sync = match sync {
        Synchronous::Normal => "NORMAL",
        Synchronous::Full => "FULL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // 64 MiB of page cache per connection (SQLite's default is 2 MiB): the rollups a
    // dashboard reads stay in memory instead of being re-read on every panel.
    conn.pragma_update(None, "cache_size", -65_536)?;
    // The writer's transaction alone uses about 20 statements, and its five bulk
    // inserts up to 7 sizes more each (`rows.rs`): under 60 (rusqlite keeps 16 by
    // default). Past the bound the least recent is parsed again at its next use.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database in `data_dir` and migrates it.
    pub fn open(data_dir: &Path) -> Result<SqliteStore> {
        let path = data_dir.join(DB_FILE);
        create_private(data_dir, &path)?;
        let mut conn = open_conn(&path, Synchronous::Normal).map_err(|e| unusable(&path, e))?;
        migrate(&mut conn).map_err(|e| unusable(&path, e))?;
        let mut conns = vec![Mutex::new(conn)];
        for _ in 1..POOL {
            conns.push(Mutex::new(
                open_conn(&path, Synchronous::Normal).map_err(|e| unusable(&path, e))?,
            ));
        }
        let wal_bound = std::sync::Arc::new(writer::WalBound::new(&path));
        Ok(SqliteStore {
            consent_filter: consent::ConsentFilter::new(&path),
            path,
            conns,
            next: std::sync::atomic::AtomicUsize::new(0),
            reads_from: None,
            wal_bound,
            segments: Default::default(),
        })
    }

    /// Before serving: reads every page of the database
    /// ([`check_integrity`](Self::check_integrity)) unless the file is as the last clean
    /// stop left it (see [`mark_clean_stop`](Self::mark_clean_stop)). Returns whether it read them. The
    /// mark is used once: a stop that is not clean (a crash, `kill -9`, power loss)
    /// leaves none, and the next start reads every page.
    pub fn check_at_start(&self) -> Result<bool> {
        let marker = self.path.with_file_name(CLEAN_STOP);
        // Used once: only a mark that could be taken away counts.
        let left = std::fs::read_to_string(&marker)
            .ok()
            .filter(|_| std::fs::remove_file(&marker).is_ok());
        let wal = self.path.with_file_name(format!("{DB_FILE}-wal"));
        let wal_empty = std::fs::metadata(&wal).map_or(true, |m| m.len() == 0);
        if wal_empty && left.is_some() && left == file_state(&self.path) {
            return Ok(false);
        }
        self.check_integrity()?;
        Ok(true)
    }

    /// At a clean stop, after the last write: copies the WAL into the file and notes
    /// the file's size, inode and times, so the next start can skip reading every page
    /// of a file nothing has touched since (minutes on a store of several GB). A file
    /// changed in any way (a later write, a restored copy, a damaged sector rewritten)
    /// has other times and is read. False when the WAL could not be emptied (a reader
    /// held it): nothing is noted then.
    pub fn mark_clean_stop(&self) -> std::io::Result<bool> {
        let busy: i64 = self
            .conn()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
            .map_err(std::io::Error::other)?;
        let Some(state) = (busy == 0).then(|| file_state(&self.path)).flatten() else {
            return Ok(false);
        };
        let marker = self.path.with_file_name(CLEAN_STOP);
        let tmp = marker.with_extension("tmp");
        std::fs::write(&tmp, state)?;
        std::fs::rename(&tmp, &marker)?;
        Ok(true)
    }

    /// Reads every page of the database (`PRAGMA quick_check`): run before serving, so
    /// a damaged file is refused with the steps to recover instead of acknowledging
    /// hits it may not keep. Measured: 0.7 s (cached) to 7 s (cold disk) for 360 MB,
    /// about 7 minutes for 5 GB.
    pub fn check_integrity(&self) -> Result<()> {
        let conn = self.conn();
        let mut st = conn.prepare("PRAGMA quick_check(5)")?;
        let problems: Vec<String> = st
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()
            .map_err(|e| unusable(&self.path, e.into()))?;
        if problems.len() == 1 && problems[0] == "ok" {
            return Ok(());
        }
        Err(StoreError::Unusable {
            path: self.path.clone(),
            why: damaged(&problems.join("; "), &self.path),
        })
    }

    /// Reads events and rollups from `other` (the same rows, forwarded to ClickHouse)
    /// instead of this database; sites, campaigns, privacy settings, tokens and
    /// accounts still read here.
    pub fn with_reads_from(mut self, other: Box<dyn crate::store::EventReads>) -> SqliteStore {
        self.reads_from = Some(other);
        // Touches there are found by scanning the range: held days carry theirs.
        self.segments.hold_touches(true);
        self
    }

    /// Whether events and rollups are read from another backend.
    pub fn reads_elsewhere(&self) -> bool {
        self.reads_from.is_some()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A new connection for the one writer thread, with a page cache of
    /// [`WRITER_CACHE_KIB`].
    pub fn writer(&self, sync: Synchronous) -> Result<SqliteWriter> {
        let conn = open_conn(&self.path, sync)?;
        conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
        // Statement journals in memory: a multi-row upsert (rollups, visits) keeps a
        // copy of each page it changes until it ends, and past 64 KiB SQLite spilled
        // that copy to a temporary file, one `pwrite` a page.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        SqliteWriter::new(conn, self.wal_bound.clone())
    }

    /// A new connection for `pixeltrack import`'s reading thread (see [`ImportLookup`]).
    pub fn import_lookup(&self) -> Result<ImportLookup> {
        Ok(ImportLookup::new(open_conn(
            &self.path,
            Synchronous::Normal,
        )?))
    }

    /// A new connection for the forwarder, which reads the spool (see [`Spool`]).
    pub fn spool(&self) -> Result<Spool> {
        Ok(Spool::new(open_conn(&self.path, Synchronous::Normal)?))
    }

    /// A free connection of the pool, or (all busy) the next one's turn. A panic while
    /// holding one cannot leave a half-done transaction behind (rusqlite rolls back on
    /// drop), so a poisoned lock is still usable.
    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        use std::sync::TryLockError;
        for c in &self.conns {
            match c.try_lock() {
                Ok(g) => return g,
                Err(TryLockError::Poisoned(p)) => return p.into_inner(),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.conns.len();
        self.conns[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Copies what the WAL holds into the main file without waiting for anyone, so
    /// the writer does not wait for an fsync; past its limit, the writer copies the
    /// rest itself and starts the WAL over (`SqliteWriter::bound_wal`).
    pub fn checkpoint_passive(&self) -> Result<()> {
        self.conn()
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        self.wal_bound.checkpointed();
        Ok(())
    }

    /// How large the WAL may grow before the writer starts it over (64 MiB unless
    /// set); for writers made after this call.
    pub fn set_wal_limit(&self, bytes: u64) {
        self.wal_bound.set_limit(bytes);
    }

    /// Moves everything in the WAL into the main file and truncates the WAL.
    pub fn checkpoint(&self) -> Result<()> {
        checkpoint(&self.conn())
    }
}

fn checkpoint(conn: &Connection) -> Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    Ok(())
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError::SchemaTooNew {
            found: version,
            known,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SiteKey;
    use crate::store::SiteStore;

    /// One connection busy for long (a slow report) does not hold other readers.
    #[test]
    fn a_busy_connection_does_not_hold_other_readers() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(SqliteStore::open(dir.path()).unwrap());
        let held = store.conn();
        let (tx, rx) = std::sync::mpsc::channel();
        let s = store.clone();
        std::thread::spawn(move || {
            let _ = tx.send(s.sites().map(|v| v.len()));
        });
        let got = rx.recv_timeout(std::time::Duration::from_secs(5));
        assert!(matches!(got, Ok(Ok(0))), "{got:?}");
        drop(held);
    }

    fn page_size(path: &Path) -> i64 {
        Connection::open(path)
            .unwrap()
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap()
    }

    /// New databases get the small pages; one made before keeps its own and works.
    #[test]
    fn a_new_database_has_small_pages_and_an_older_one_keeps_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        store
            .add_site(&SiteKey::generate(), "a.example", "A", 0)
            .unwrap();
        drop(store);
        assert_eq!(page_size(&dir.path().join(DB_FILE)), PAGE_SIZE);

        let old = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(old.path().join(DB_FILE)).unwrap();
            conn.pragma_update(None, "page_size", 4096).unwrap();
            conn.pragma_update(None, "journal_mode", "WAL").unwrap();
            conn.execute_batch("CREATE TABLE made_before (x)").unwrap();
        }
        let store = SqliteStore::open(old.path()).unwrap();
        store
            .add_site(&SiteKey::generate(), "b.example", "B", 0)
            .unwrap();
        assert_eq!(store.sites().unwrap().len(), 1);
        drop(store);
        assert_eq!(page_size(&old.path().join(DB_FILE)), 4096);
    }
}
