//! Campaigns in SQLite: the `campaigns` table. Removing a campaign removes its events
//! and consent records with it.

use rusqlite::{params, OptionalExtension};

use super::{record_deletion, Deletion, SqliteStore};
use crate::clock::Millis;
use crate::model::{Campaign, SiteId};
use crate::store::{CampaignStore, Result};

const CAMPAIGN_COLUMNS: &str =
    "SELECT id, site_id, name, created_ms, sent_ms, delivered, cost_minor, cost_currency FROM campaigns";

fn campaign_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Campaign> {
    Ok(Campaign {
        id: r.get(0)?,
        site_id: r.get(1)?,
        name: r.get(2)?,
        created_ms: r.get(3)?,
        sent_ms: r.get(4)?,
        delivered: r.get(5)?,
        cost: r
            .get::<_, Option<i64>>(6)?
            .map(|m| r.get(7).map(|c| (m, c)))
            .transpose()?,
    })
}

impl CampaignStore for SqliteStore {
    fn campaigns(&self, site_id: Option<SiteId>) -> Result<Vec<Campaign>> {
        let conn = self.conn();
        let sql = format!("{CAMPAIGN_COLUMNS} WHERE ?1 IS NULL OR site_id = ?1 ORDER BY id");
        let mut st = conn.prepare(&sql)?;
        let rows = st.query_map([site_id], campaign_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn campaign(&self, id: i64) -> Result<Option<Campaign>> {
        let conn = self.conn();
        let sql = format!("{CAMPAIGN_COLUMNS} WHERE id = ?1");
        Ok(conn.query_row(&sql, [id], campaign_from_row).optional()?)
    }

    fn add_campaign(&self, site_id: SiteId, name: &str, now: Millis) -> Result<Campaign> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO campaigns (site_id, name, created_ms) VALUES (?1, ?2, ?3)",
            params![site_id, name, now],
        )?;
        Ok(Campaign {
            id: conn.last_insert_rowid(),
            site_id: site_id.0,
            name: name.to_owned(),
            created_ms: now,
            sent_ms: None,
            delivered: None,
            cost: None,
        })
    }

    fn rename_campaign(&self, id: i64, name: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE campaigns SET name = ?2 WHERE id = ?1",
            params![id, name],
        )?;
        Ok(())
    }

    fn set_campaign_sent(
        &self,
        id: i64,
        delivered: Option<i64>,
        sent_ms: Option<Millis>,
    ) -> Result<bool> {
        let conn = self.conn();
        let n = conn.execute(
            "UPDATE campaigns SET delivered = COALESCE(?2, delivered), sent_ms = COALESCE(?3, sent_ms) WHERE id = ?1",
            params![id, delivered, sent_ms],
        )?;
        Ok(n == 1)
    }

    fn set_campaign_cost(&self, id: i64, cost: Option<(i64, &str)>) -> Result<bool> {
        let n = self.conn().execute(
            "UPDATE campaigns SET cost_minor = ?2, cost_currency = ?3 WHERE id = ?1",
            params![id, cost.map(|c| c.0), cost.map(|c| c.1).unwrap_or("")],
        )?;
        Ok(n == 1)
    }

    fn remove_campaign(&self, id: i64) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM events WHERE campaign_id = ?1", [id])?;
        // Its clicks no longer credit conversions: the site's kept credits go.
        tx.execute(
            "DELETE FROM report_days WHERE site_id = (SELECT site_id FROM campaigns WHERE id = ?1)",
            [id],
        )?;
        record_deletion(
            &tx,
            &Deletion {
                campaign_id: Some(id),
                ..Deletion::default()
            },
        )?;
        tx.execute("DELETE FROM consent WHERE campaign_id = ?1", [id])?;
        let n = tx.execute("DELETE FROM campaigns WHERE id = ?1", [id])?;
        tx.commit()?;
        Ok(n == 1)
    }
}
