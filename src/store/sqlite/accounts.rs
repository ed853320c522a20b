//! Dashboard accounts in SQLite: users, their per-site access, and login sessions.
//! Kept out of the `Store` trait on purpose: accounts belong to the installation that
//! serves the dashboard, not to the event store a scaled-out setup swaps for ClickHouse.
//! Only password hashes (argon2id PHC strings) and session-id hashes are stored.

use rusqlite::{params, OptionalExtension, Transaction};

use super::SqliteStore;
use crate::clock::Millis;
use crate::model::SiteId;
use crate::store::{Result, StoreError};

/// What a user may do in the dashboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Sees every site and may change settings, users and tokens.
    Admin,
    /// Sees only the sites granted in `user_sites`, and changes nothing.
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

/// A dashboard user (never with its password hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub created_ms: Millis,
    /// Sites granted to a viewer (admins see all sites regardless).
    pub sites: Vec<SiteId>,
}

/// A live login session, as stored.
#[derive(Clone, Debug)]
pub struct WebSession {
    pub user: User,
    pub csrf: String,
    pub created_ms: Millis,
    pub last_ms: Millis,
    pub expires_ms: Millis,
}

const USER_COLUMNS: &str = "SELECT id, username, role, created_ms FROM users";

fn user_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    let role: String = r.get(2)?;
    Ok(User {
        id: r.get(0)?,
        username: r.get(1)?,
        // The CHECK constraint admits only the two roles; an unknown one is least privilege.
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        created_ms: r.get(3)?,
        sites: Vec::new(),
    })
}

fn load_sites(conn: &rusqlite::Connection, user: &mut User) -> Result<()> {
    let mut st =
        conn.prepare_cached("SELECT site_id FROM user_sites WHERE user_id = ?1 ORDER BY site_id")?;
    user.sites = st
        .query_map([user.id], |r| Ok(SiteId(r.get(0)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(())
}

fn admins_other_than(tx: &Transaction<'_>, user_id: i64) -> Result<i64> {
    Ok(tx.query_row(
        "SELECT count(*) FROM users WHERE role = 'admin' AND id != ?1",
        [user_id],
        |r| r.get(0),
    )?)
}

impl SqliteStore {
    pub fn count_users(&self) -> Result<i64> {
        Ok(self
            .conn()
            .query_row("SELECT count(*) FROM users", [], |r| r.get(0))?)
    }

    /// Adds a user; a taken name (compared case-insensitively) is a `Conflict`.
    pub fn add_user(
        &self,
        username: &str,
        password_hash: &str,
        role: Role,
        sites: &[SiteId],
        now: Millis,
    ) -> Result<User> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let taken: Option<String> = tx
            .query_row(
                "SELECT username FROM users WHERE username = ?1",
                [username],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(existing) = taken {
            return Err(StoreError::Conflict(format!(
                "a user named '{existing}' exists already"
            )));
        }
        tx.execute(
            "INSERT INTO users (username, password_hash, role, created_ms) VALUES (?1, ?2, ?3, ?4)",
            params![username, password_hash, role.as_str(), now],
        )?;
        let id = tx.last_insert_rowid();
        for site in sites {
            tx.execute(
                "INSERT OR IGNORE INTO user_sites (user_id, site_id) VALUES (?1, ?2)",
                params![id, site.0],
            )?;
        }
        tx.commit()?;
        let mut sites = sites.to_vec();
        sites.sort();
        sites.dedup();
        Ok(User {
            id,
            username: username.to_owned(),
            role,
            created_ms: now,
            sites,
        })
    }

    /// Adds `username` as an admin only if there are no users at all (first start).
    /// The check and the insert are one statement, so two starts cannot both create one.
    pub fn add_first_admin(
        &self,
        username: &str,
        password_hash: &str,
        now: Millis,
    ) -> Result<bool> {
        let n = self.conn().execute(
            "INSERT INTO users (username, password_hash, role, created_ms) \
             SELECT ?1, ?2, 'admin', ?3 WHERE NOT EXISTS (SELECT 1 FROM users)",
            params![username, password_hash, now],
        )?;
        Ok(n == 1)
    }

    pub fn users(&self) -> Result<Vec<User>> {
        let conn = self.conn();
        let mut st = conn.prepare(&format!("{USER_COLUMNS} ORDER BY id"))?;
        let mut users: Vec<User> = st
            .query_map([], user_from_row)?
            .collect::<rusqlite::Result<_>>()?;
        for u in &mut users {
            load_sites(&conn, u)?;
        }
        Ok(users)
    }

    /// The user named `username` (case-insensitive) and its password hash.
    pub fn user_with_hash(&self, username: &str) -> Result<Option<(User, String)>> {
        let conn = self.conn();
        let found = conn
            .query_row(
                "SELECT id, username, role, created_ms, password_hash FROM users WHERE username = ?1",
                [username],
                |r| Ok((user_from_row(r)?, r.get::<_, String>(4)?)),
            )
            .optional()?;
        match found {
            Some((mut user, hash)) => {
                load_sites(&conn, &mut user)?;
                Ok(Some((user, hash)))
            }
            None => Ok(None),
        }
    }

    /// Replaces a user's password hash and ends all of its sessions; returns how many
    /// sessions ended, or `None` when there is no such user.
    pub fn set_password(&self, username: &str, password_hash: &str) -> Result<Option<usize>> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let id: Option<i64> = tx
            .query_row(
                "SELECT id FROM users WHERE username = ?1",
                [username],
                |r| r.get(0),
            )
            .optional()?;
        let Some(id) = id else {
            return Ok(None);
        };
        tx.execute(
            "UPDATE users SET password_hash = ?1 WHERE id = ?2",
            params![password_hash, id],
        )?;
        let ended = tx.execute("DELETE FROM web_sessions WHERE user_id = ?1", [id])?;
        tx.commit()?;
        Ok(Some(ended))
    }

    /// Removes a user, its site grants and its sessions. Refuses (`Conflict`) to remove
    /// the last admin, which would lock everyone out of settings. `Ok(false)`: no such user.
    pub fn remove_user(&self, username: &str) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let found: Option<(i64, String)> = tx
            .query_row(
                "SELECT id, role FROM users WHERE username = ?1",
                [username],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((id, role)) = found else {
            return Ok(false);
        };
        if role == "admin" && admins_other_than(&tx, id)? == 0 {
            return Err(StoreError::Conflict(format!(
                "'{username}' is the last admin: add another admin first ('pixeltrack user add NAME --role admin')"
            )));
        }
        for table in ["web_sessions", "user_sites"] {
            tx.execute(&format!("DELETE FROM {table} WHERE user_id = ?1"), [id])?;
        }
        tx.execute("DELETE FROM users WHERE id = ?1", [id])?;
        tx.commit()?;
        Ok(true)
    }

    pub fn add_web_session(
        &self,
        id_hash: &str,
        user_id: i64,
        csrf: &str,
        now: Millis,
        expires_ms: Millis,
    ) -> Result<()> {
        self.conn().execute(
            "INSERT INTO web_sessions (id_hash, user_id, csrf, created_ms, last_ms, expires_ms) \
             VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
            params![id_hash, user_id, csrf, now, expires_ms],
        )?;
        Ok(())
    }

    /// The session with this id hash, with its user, unless it has expired by `now`.
    pub fn web_session(&self, id_hash: &str, now: Millis) -> Result<Option<WebSession>> {
        let conn = self.conn();
        let found = conn
            .query_row(
                "SELECT u.id, u.username, u.role, u.created_ms, s.csrf, s.created_ms, s.last_ms, s.expires_ms \
                 FROM web_sessions s JOIN users u ON u.id = s.user_id \
                 WHERE s.id_hash = ?1 AND s.expires_ms > ?2",
                params![id_hash, now],
                |r| {
                    Ok(WebSession {
                        user: user_from_row(r)?,
                        csrf: r.get(4)?,
                        created_ms: r.get(5)?,
                        last_ms: r.get(6)?,
                        expires_ms: r.get(7)?,
                    })
                },
            )
            .optional()?;
        match found {
            Some(mut s) => {
                load_sites(&conn, &mut s.user)?;
                Ok(Some(s))
            }
            None => Ok(None),
        }
    }

    /// Records activity on a session and moves its expiry (sliding idle timeout).
    pub fn touch_web_session(&self, id_hash: &str, now: Millis, expires_ms: Millis) -> Result<()> {
        self.conn().execute(
            "UPDATE web_sessions SET last_ms = ?2, expires_ms = ?3 WHERE id_hash = ?1",
            params![id_hash, now, expires_ms],
        )?;
        Ok(())
    }

    pub fn remove_web_session(&self, id_hash: &str) -> Result<bool> {
        Ok(self
            .conn()
            .execute("DELETE FROM web_sessions WHERE id_hash = ?1", [id_hash])?
            == 1)
    }

    /// Deletes sessions expired by `now`; returns how many.
    pub fn purge_web_sessions(&self, now: Millis) -> Result<usize> {
        Ok(self
            .conn()
            .execute("DELETE FROM web_sessions WHERE expires_ms <= ?1", [now])?)
    }
}

/// A read-only link to one site's dashboard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareLink {
    pub id: i64,
    pub site_id: SiteId,
    pub name: String,
    /// argon2id hash of the link's password, if it has one.
    pub password_hash: Option<String>,
    pub created_ms: Millis,
}

fn share_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ShareLink> {
    Ok(ShareLink {
        id: r.get(0)?,
        site_id: SiteId(r.get(1)?),
        name: r.get(2)?,
        password_hash: r.get(3)?,
        created_ms: r.get(4)?,
    })
}

impl SqliteStore {
    /// Stores a share link under the SHA-256 `hash` of its secret.
    pub fn add_share_link(
        &self,
        site_id: SiteId,
        hash: &str,
        password_hash: Option<&str>,
        name: &str,
        now: Millis,
    ) -> Result<i64> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO share_links (site_id, hash, password_hash, name, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![site_id.0, hash, password_hash, name, now],
        )?;
        Ok(conn.last_insert_rowid())
    }

    pub fn share_link_by_hash(&self, hash: &str) -> Result<Option<ShareLink>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT id, site_id, name, password_hash, created_ms FROM share_links WHERE hash = ?1",
                [hash],
                share_from_row,
            )
            .optional()?)
    }

    pub fn share_links(&self) -> Result<Vec<ShareLink>> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT id, site_id, name, password_hash, created_ms FROM share_links ORDER BY id",
        )?;
        let rows = st.query_map([], share_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn remove_share_link(&self, id: i64) -> Result<bool> {
        Ok(self
            .conn()
            .execute("DELETE FROM share_links WHERE id = ?1", [id])?
            == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).unwrap();
        (dir, s)
    }

    #[test]
    fn names_are_unique_ignoring_case() {
        let (_d, s) = store();
        s.add_user("Ann", "h", Role::Viewer, &[], 1).unwrap();
        assert!(matches!(
            s.add_user("ann", "h", Role::Viewer, &[], 1),
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(s.user_with_hash("ANN").unwrap().unwrap().0.username, "Ann");
    }

    #[test]
    fn first_admin_only_when_empty() {
        let (_d, s) = store();
        assert!(s.add_first_admin("admin", "h", 1).unwrap());
        assert!(!s.add_first_admin("admin2", "h", 1).unwrap());
        assert_eq!(s.count_users().unwrap(), 1);
    }

    #[test]
    fn last_admin_stays_and_removal_ends_sessions() {
        let (_d, s) = store();
        let a = s.add_user("a", "h", Role::Admin, &[], 1).unwrap();
        let v = s.add_user("v", "h", Role::Viewer, &[SiteId(7)], 1).unwrap();
        assert_eq!(v.sites, vec![SiteId(7)]);
        assert!(matches!(s.remove_user("a"), Err(StoreError::Conflict(_))));
        s.add_web_session("x", v.id, "c", 10, 100).unwrap();
        assert!(s.web_session("x", 50).unwrap().is_some());
        assert!(s.remove_user("v").unwrap());
        assert!(s.web_session("x", 50).unwrap().is_none());
        assert!(!s.remove_user("v").unwrap());
        s.add_user("b", "h", Role::Admin, &[], 1).unwrap();
        assert!(s.remove_user(&a.username).unwrap());
    }

    #[test]
    fn sessions_expire_and_password_change_ends_them() {
        let (_d, s) = store();
        let u = s.add_user("u", "h", Role::Viewer, &[], 1).unwrap();
        s.add_web_session("x", u.id, "c", 10, 100).unwrap();
        assert!(s.web_session("x", 100).unwrap().is_none(), "expired at 100");
        s.touch_web_session("x", 90, 200).unwrap();
        assert_eq!(s.web_session("x", 150).unwrap().unwrap().user.id, u.id);
        assert_eq!(s.set_password("u", "h2").unwrap(), Some(1));
        assert!(s.web_session("x", 150).unwrap().is_none());
        assert_eq!(s.set_password("nobody", "h2").unwrap(), None);
    }

    #[test]
    fn removing_a_site_removes_its_grants() {
        use crate::model::SiteKey;
        use crate::store::SiteStore;
        let (_d, s) = store();
        let key = SiteKey::generate();
        let site = s.add_site(&key, "a.example", "a", 1).unwrap();
        s.add_user("v", "h", Role::Viewer, &[site.id], 1).unwrap();
        assert!(s.remove_site(&key).unwrap());
        assert!(s.users().unwrap()[0].sites.is_empty());
    }
}
