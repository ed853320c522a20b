//! The daily visitor-id salts in SQLite (the `salts` table), and their destruction
//! together with the unique-visitor keys of their days. SQLite-specific for now: the
//! server and `enrich::salts` call these on the concrete store.

use rusqlite::params;

use super::{checkpoint, SqliteStore};
use crate::enrich::Salt;
use crate::store::{Result, StoreError};

impl SqliteStore {
    /// Salts still held, oldest first.
    pub fn salts(&self) -> Result<Vec<Salt>> {
        let conn = self.conn();
        let mut st = conn.prepare("SELECT day, salt FROM salts ORDER BY day")?;
        let rows = st.query_map([], |r| {
            let day: i64 = r.get(0)?;
            let blob: Vec<u8> = r.get(1)?;
            Ok((day, blob))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (day, blob) = row?;
            if let Ok(bytes) = <[u8; 32]>::try_from(blob.as_slice()) {
                out.push(Salt::new(day, bytes));
            }
        }
        Ok(out)
    }

    /// Stores `salt` unless its day already has one; returns the day's salt.
    pub fn put_salt(&self, salt: &Salt) -> Result<Salt> {
        let conn = self.conn();
        conn.execute(
            "INSERT OR IGNORE INTO salts (day, salt) VALUES (?1, ?2)",
            params![salt.day, &salt.bytes()[..]],
        )?;
        let blob: Vec<u8> =
            conn.query_row("SELECT salt FROM salts WHERE day = ?1", [salt.day], |r| {
                r.get(0)
            })?;
        let bytes = <[u8; 32]>::try_from(blob.as_slice())
            .map_err(|_| StoreError::Conflict("stored salt has the wrong length".into()))?;
        Ok(Salt::new(salt.day, bytes))
    }

    /// Destroys salts of days before `keep_from_day`, and the unique-visitor keys of
    /// those days, then checkpoints so the bytes leave the WAL too.
    pub fn destroy_salts_before(&self, keep_from_day: i64) -> Result<usize> {
        let conn = self.conn();
        let n = conn.execute("DELETE FROM salts WHERE day < ?1", [keep_from_day])?;
        for table in ["unique_keys", "uniques", "visitor_uniques"] {
            conn.execute(
                &format!("DELETE FROM {table} WHERE day < ?1"),
                [keep_from_day - 1],
            )?;
        }
        if n > 0 {
            checkpoint(&conn)?;
        }
        Ok(n)
    }
}
