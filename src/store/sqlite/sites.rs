//! Sites in SQLite: the `sites` table (key, domain, name, privacy settings, extra
//! hosts) and the `goals` of each site. Removing a site removes every row that names
//! it, in every table, in one transaction.

use rusqlite::{params, OptionalExtension};

use super::{record_deletion, Deletion, SqliteStore};
use crate::clock::Millis;
use crate::model::{Privacy, PrivacyMode, Site, SiteId, SiteKey, WithoutConsent};
use crate::store::{Goal, Pattern, PatternKind, Result, SiteStore, StoreError};

const SITE_COLUMNS: &str = "SELECT id, key, domain, name, created_ms, privacy_mode, honour_gpc, \
     honour_dnt, without_consent, retention_days, allow_emails, email_mode, hosts, matomo_id FROM sites";

fn site_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Site> {
    let key: String = r.get(1)?;
    let mode: String = r.get(5)?;
    let without: String = r.get(8)?;
    let defaults = Privacy::default();
    Ok(Site {
        id: SiteId(r.get(0)?),
        key: SiteKey::parse(&key).unwrap_or_else(|| SiteKey::parse("invalid").expect("valid")),
        domain: r.get(2)?,
        name: r.get(3)?,
        created_ms: r.get(4)?,
        hosts: r
            .get::<_, String>(12)?
            .split(',')
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .collect(),
        matomo_id: r.get(13)?,
        privacy: Privacy {
            mode: PrivacyMode::parse(&mode).unwrap_or(defaults.mode),
            honour_gpc: r.get(6)?,
            honour_dnt: r.get(7)?,
            without_consent: WithoutConsent::parse(&without).unwrap_or(defaults.without_consent),
            retention_days: r.get(9)?,
            allow_emails: r.get(10)?,
            deliverability_only: r.get::<_, String>(11)? == "deliverability",
        },
    })
}

/// A site id binds as its integer.
impl rusqlite::ToSql for SiteId {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        self.0.to_sql()
    }
}

impl SiteStore for SqliteStore {
    fn settings_version(&self) -> Result<i64> {
        // Bumped by triggers on `sites` (schema 18).
        Ok(self
            .conn()
            .query_row("SELECT n FROM settings_version WHERE id = 1", [], |r| {
                r.get(0)
            })?)
    }

    fn sites(&self) -> Result<Vec<Site>> {
        let conn = self.conn();
        let mut st = conn.prepare(&format!("{SITE_COLUMNS} ORDER BY id"))?;
        let rows = st.query_map([], site_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn site_by_key(&self, key: &SiteKey) -> Result<Option<Site>> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                &format!("{SITE_COLUMNS} WHERE key = ?1"),
                [key.as_str()],
                site_from_row,
            )
            .optional()?)
    }

    fn add_site(&self, key: &SiteKey, domain: &str, name: &str, now: Millis) -> Result<Site> {
        let conn = self.conn();
        let exists: Option<String> = conn
            .query_row("SELECT key FROM sites WHERE domain = ?1", [domain], |r| {
                r.get(0)
            })
            .optional()?;
        if let Some(existing) = exists {
            return Err(StoreError::Conflict(format!(
                "a site for {domain} exists already (key {existing})"
            )));
        }
        conn.execute(
            "INSERT INTO sites (key, domain, name, created_ms) VALUES (?1, ?2, ?3, ?4)",
            params![key.as_str(), domain, name, now],
        )?;
        Ok(Site {
            id: SiteId(conn.last_insert_rowid()),
            key: key.clone(),
            domain: domain.to_owned(),
            name: name.to_owned(),
            created_ms: now,
            privacy: Privacy::default(),
            hosts: Vec::new(),
            matomo_id: None,
        })
    }

    fn rename_site(&self, site_id: SiteId, name: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE sites SET name = ?2 WHERE id = ?1",
            params![site_id, name],
        )?;
        Ok(())
    }

    fn remove_site(&self, key: &SiteKey) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let id: Option<i64> = tx
            .query_row("SELECT id FROM sites WHERE key = ?1", [key.as_str()], |r| {
                r.get(0)
            })
            .optional()?;
        let Some(id) = id else {
            return Ok(false);
        };
        record_deletion(
            &tx,
            &Deletion {
                site_id: Some(id),
                rollups_before_hour: Some(i64::MAX),
                ..Deletion::default()
            },
        )?;
        for table in [
            "events",
            "sessions",
            "rollups",
            "campaigns",
            "consent",
            "last_opens",
            "orders",
            "goals",
            "funnels",
            "share_links",
            "import_keys",
            "goal_days",
            "goal_hours",
            "late_events",
            "report_days",
        ] {
            tx.execute(&format!("DELETE FROM {table} WHERE site_id = ?1"), [id])?;
        }
        tx.execute("DELETE FROM user_sites WHERE site_id = ?1", [id])?;
        tx.execute("DELETE FROM api_tokens WHERE site_id = ?1", [id])?;
        tx.execute("DELETE FROM sites WHERE id = ?1", [id])?;
        tx.commit()?;
        self.segments.forget(Some(id));
        Ok(true)
    }

    fn set_privacy(&self, site_id: SiteId, p: &Privacy) -> Result<()> {
        let conn = self.conn();
        conn.execute(
            "UPDATE sites SET privacy_mode = ?2, honour_gpc = ?3, honour_dnt = ?4, without_consent = ?5, \
             retention_days = ?6, allow_emails = ?7, email_mode = ?8 WHERE id = ?1",
            params![
                site_id,
                p.mode.as_str(),
                p.honour_gpc,
                p.honour_dnt,
                p.without_consent.as_str(),
                p.retention_days,
                p.allow_emails,
                if p.deliverability_only { "deliverability" } else { "full" }
            ],
        )?;
        Ok(())
    }

    fn set_hosts(&self, site_id: SiteId, hosts: &[String]) -> Result<()> {
        let conn = self.conn();
        conn.execute(
            "UPDATE sites SET hosts = ?2 WHERE id = ?1",
            params![site_id, hosts.join(",")],
        )?;
        Ok(())
    }

    fn set_matomo_id(&self, site_id: SiteId, matomo_id: Option<i64>) -> Result<()> {
        let conn = self.conn();
        if let Some(n) = matomo_id {
            let taken: Option<String> = conn
                .query_row(
                    "SELECT domain FROM sites WHERE matomo_id = ?1 AND id <> ?2",
                    params![n, site_id],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(domain) = taken {
                return Err(StoreError::Conflict(format!(
                    "Matomo id {n} is already {domain}'s"
                )));
            }
        }
        conn.execute(
            "UPDATE sites SET matomo_id = ?2 WHERE id = ?1",
            params![site_id, matomo_id],
        )?;
        Ok(())
    }

    fn site_by_matomo_id(&self, matomo_id: i64) -> Result<Option<Site>> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                &format!("{SITE_COLUMNS} WHERE matomo_id = ?1"),
                [matomo_id],
                site_from_row,
            )
            .optional()?)
    }

    fn goals(&self, site_id: SiteId) -> Result<Vec<Goal>> {
        let conn = self.conn();
        let mut st = conn.prepare_cached(
            "SELECT id, site_id, name, kind, pattern FROM goals WHERE site_id = ?1 ORDER BY id",
        )?;
        let rows = st.query_map([site_id], |r| {
            let kind: String = r.get(3)?;
            let glob: String = r.get(4)?;
            Ok(Goal {
                id: r.get(0)?,
                site_id: r.get(1)?,
                name: r.get(2)?,
                pattern: Pattern {
                    kind: PatternKind::parse(&kind).unwrap_or(PatternKind::Event),
                    glob,
                },
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn add_goal(
        &self,
        site_id: SiteId,
        name: &str,
        pattern: &Pattern,
        now: Millis,
    ) -> Result<Goal> {
        let conn = self.conn();
        let n = conn.execute(
            "INSERT OR IGNORE INTO goals (site_id, name, kind, pattern, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![site_id, name, pattern.kind.as_str(), pattern.glob, now],
        )?;
        if n == 0 {
            return Err(StoreError::Conflict(format!(
                "the site already has a goal named {name:?}"
            )));
        }
        Ok(Goal {
            id: conn.last_insert_rowid(),
            site_id: site_id.0,
            name: name.to_owned(),
            pattern: pattern.clone(),
        })
    }

    fn remove_goal(&self, site_id: SiteId, name: &str) -> Result<bool> {
        let n = self.conn().execute(
            "DELETE FROM goals WHERE site_id = ?1 AND name = ?2",
            params![site_id, name],
        )?;
        Ok(n > 0)
    }
}
