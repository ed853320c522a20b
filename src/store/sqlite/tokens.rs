//! API tokens and token signing keys in SQLite: the `api_tokens` table (secrets
//! stored as SHA-256 hashes only) and `token_keys`. Installation-level, like the
//! accounts beside them, so they implement [`TokenStore`], not `Store`.

use rusqlite::{params, OptionalExtension};

use super::SqliteStore;
use crate::clock::Millis;
use crate::store::{ApiToken, Result, Scope, StoreError, TokenStore};

fn api_token_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApiToken> {
    let scope: String = r.get(2)?;
    Ok(ApiToken {
        id: r.get(0)?,
        name: r.get(1)?,
        // An unknown scope from a newer version reads as the least powerful one.
        scope: Scope::parse(&scope).unwrap_or(Scope::Read),
        site_id: r.get(3)?,
        created_ms: r.get(4)?,
    })
}

impl TokenStore for SqliteStore {
    fn token_keys(&self, now: Millis) -> Result<Vec<(u8, [u8; 32])>> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO token_keys (id, key, created_ms) SELECT 1, ?1, ?2 WHERE NOT EXISTS (SELECT 1 FROM token_keys)",
            params![&crate::token::random_master()[..], now],
        )?;
        let mut st = conn.prepare("SELECT id, key FROM token_keys ORDER BY id")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, key) = row?;
            if let (Ok(id), Ok(key)) = (u8::try_from(id), <[u8; 32]>::try_from(key.as_slice())) {
                out.push((id, key));
            }
        }
        Ok(out)
    }

    fn rotate_token_key(&self, now: Millis) -> Result<u8> {
        let conn = self.conn();
        let next: i64 =
            conn.query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM token_keys", [], |r| {
                r.get(0)
            })?;
        let id = u8::try_from(next).map_err(|_| {
            StoreError::Conflict("key ids are exhausted (255); retire old keys first".into())
        })?;
        conn.execute(
            "INSERT INTO token_keys (id, key, created_ms) VALUES (?1, ?2, ?3)",
            params![i64::from(id), &crate::token::random_master()[..], now],
        )?;
        Ok(id)
    }

    fn retire_token_key(&self, id: u8) -> Result<bool> {
        let conn = self.conn();
        let count: i64 = conn.query_row("SELECT COUNT(*) FROM token_keys", [], |r| r.get(0))?;
        let max: i64 = conn.query_row("SELECT COALESCE(MAX(id), 0) FROM token_keys", [], |r| {
            r.get(0)
        })?;
        if count <= 1 || i64::from(id) == max {
            return Err(StoreError::Conflict(
                "the newest key signs new tokens and cannot be retired; rotate first".into(),
            ));
        }
        let n = conn.execute("DELETE FROM token_keys WHERE id = ?1", [i64::from(id)])?;
        Ok(n == 1)
    }

    fn add_api_token(&self, t: &ApiToken, hash: &str) -> Result<i64> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO api_tokens (name, hash, scope, site_id, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![t.name, hash, t.scope.as_str(), t.site_id, t.created_ms],
        )?;
        Ok(conn.last_insert_rowid())
    }

    fn api_token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                "SELECT id, name, scope, site_id, created_ms FROM api_tokens WHERE hash = ?1",
                [hash],
                api_token_from_row,
            )
            .optional()?)
    }

    fn api_tokens(&self) -> Result<Vec<ApiToken>> {
        let conn = self.conn();
        let mut st = conn
            .prepare("SELECT id, name, scope, site_id, created_ms FROM api_tokens ORDER BY id")?;
        let rows = st.query_map([], api_token_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn revoke_api_token(&self, id: i64) -> Result<bool> {
        let conn = self.conn();
        Ok(conn.execute("DELETE FROM api_tokens WHERE id = ?1", [id])? == 1)
    }
}
