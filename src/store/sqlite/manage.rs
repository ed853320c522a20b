//! What the dashboard manages beyond sites and accounts: saved funnels, share-link
//! secrets shown again to admins, and the settings version a serving process watches
//! (schema 18, `sql/migrations/018_manage.sql`).
//!
//! The settings version is bumped by triggers on `sites`, so every writer (CLI, API,
//! dashboard, replicator) moves it without knowing about it; reading it is one row.

use rusqlite::{params, OptionalExtension};

use super::SqliteStore;
use crate::clock::Millis;
use crate::model::SiteId;
use crate::store::{Pattern, Result, StoreError};

/// A saved funnel of a site.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Funnel {
    pub id: i64,
    pub site_id: SiteId,
    pub name: String,
    pub steps: Vec<Pattern>,
    /// `visit` or a number of days such as `7d` (`report::ads::Within::parse`).
    pub within: String,
}

fn funnel_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Funnel> {
    let steps: String = r.get(3)?;
    Ok(Funnel {
        id: r.get(0)?,
        site_id: SiteId(r.get(1)?),
        name: r.get(2)?,
        // Written by `add_funnel` from parsed patterns; a line that no longer parses
        // is skipped rather than failing the page.
        steps: steps.lines().filter_map(Pattern::parse).collect(),
        within: r.get(4)?,
    })
}

impl SqliteStore {
    pub fn funnels(&self, site_id: SiteId) -> Result<Vec<Funnel>> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT id, site_id, name, steps, within FROM funnels WHERE site_id = ?1 ORDER BY name",
        )?;
        let rows = st.query_map([site_id.0], funnel_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn funnel(&self, site_id: SiteId, id: i64) -> Result<Option<Funnel>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT id, site_id, name, steps, within FROM funnels WHERE site_id = ?1 AND id = ?2",
                [site_id.0, id],
                funnel_from_row,
            )
            .optional()?)
    }

    /// Saves a funnel; a `Conflict` when the site has one of that name.
    pub fn add_funnel(
        &self,
        site_id: SiteId,
        name: &str,
        steps: &[Pattern],
        within: &str,
        now: Millis,
    ) -> Result<i64> {
        let text = steps
            .iter()
            .map(Pattern::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        let conn = self.conn();
        let r = conn.execute(
            "INSERT INTO funnels (site_id, name, steps, within, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![site_id.0, name, text, within, now],
        );
        match r {
            Ok(_) => Ok(conn.last_insert_rowid()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(StoreError::Conflict(format!(
                    "this site already has a funnel named {name:?}"
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub fn remove_funnel(&self, site_id: SiteId, id: i64) -> Result<bool> {
        Ok(self.conn().execute(
            "DELETE FROM funnels WHERE site_id = ?1 AND id = ?2",
            [site_id.0, id],
        )? == 1)
    }

    /// Keeps a share link's secret so admins can see its URL again.
    pub fn set_share_secret(&self, id: i64, secret: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE share_links SET secret = ?2 WHERE id = ?1",
            params![id, secret],
        )?;
        Ok(())
    }

    /// The secrets kept, by share link id (links made before schema 18 have none).
    pub fn share_secrets(&self) -> Result<Vec<(i64, String)>> {
        let conn = self.conn();
        let mut st = conn.prepare("SELECT id, secret FROM share_links WHERE secret IS NOT NULL")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SiteKey;
    use crate::store::SiteStore;

    #[test]
    fn every_change_to_a_site_moves_the_settings_version_and_funnels_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let v0 = store.settings_version().unwrap();
        let site = store
            .add_site(&SiteKey::generate(), "a.example", "A", 0)
            .unwrap();
        let v1 = store.settings_version().unwrap();
        assert!(v1 > v0);
        store.set_hosts(site.id, &["localhost".into()]).unwrap();
        let v2 = store.settings_version().unwrap();
        assert!(v2 > v1);
        assert_eq!(
            store.settings_version().unwrap(),
            v2,
            "reading moves nothing"
        );

        let steps = vec![
            Pattern::parse("/pricing").unwrap(),
            Pattern::parse("event:signup").unwrap(),
        ];
        let id = store
            .add_funnel(site.id, "Signup", &steps, "visit", 1)
            .unwrap();
        assert!(matches!(
            store.add_funnel(site.id, "Signup", &steps, "visit", 1),
            Err(StoreError::Conflict(_))
        ));
        let f = store.funnel(site.id, id).unwrap().unwrap();
        assert_eq!(
            (f.name.as_str(), &f.steps, f.within.as_str()),
            ("Signup", &steps, "visit")
        );
        assert_eq!(store.funnels(site.id).unwrap().len(), 1);
        assert!(store.remove_funnel(site.id, id).unwrap());
        assert!(store.funnels(site.id).unwrap().is_empty());

        store.add_funnel(site.id, "Again", &steps, "7d", 1).unwrap();
        assert!(store.remove_site(&site.key).unwrap());
        assert!(
            store.funnels(site.id).unwrap().is_empty(),
            "removed with its site"
        );
        assert!(store.settings_version().unwrap() > v2);
    }
}
