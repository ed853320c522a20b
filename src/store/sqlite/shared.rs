//! The installation's shared state as tables of rows: what an admin publishes and its
//! collectors apply (`crate::replicate`). A table is dumped whole, as JSON
//! (`{"columns": [...], "rows": [[...], ...]}`, blobs as `{"b64": "..."}`), and applied
//! whole, in one transaction that replaces the table's rows — so a collector's copy is
//! always one consistent snapshot of the admin's, and a row deleted there (a removed
//! site, a destroyed salt) is deleted here.

use base64::Engine;
use rusqlite::types::{Value, ValueRef};
use serde_json::{json, Value as Json};

use super::{checkpoint, SqliteStore};
use crate::store::{Result, StoreError};

/// The tables collectors take from the admin, in the order they are applied: what a
/// hit needs to be recognised (sites and their settings, campaigns), verified (the
/// keys that sign email and ad links), counted as one visitor everywhere (the daily
/// salts) and refused when it must be (consent withdrawn).
pub const SHARED_TABLES: &[&str] = &["sites", "campaigns", "token_keys", "salts", "consent"];

fn bad(table: &str, why: impl std::fmt::Display) -> StoreError {
    StoreError::Conflict(format!("shared table {table}: {why}"))
}

impl SqliteStore {
    /// Every row of `table` (one of [`SHARED_TABLES`]), as JSON, in primary-key order.
    pub fn dump_shared(&self, table: &str) -> Result<String> {
        let table = shared_table(table)?;
        let conn = self.conn();
        let mut st = conn.prepare(&format!("SELECT * FROM {table} ORDER BY rowid"))?;
        let columns: Vec<String> = st.column_names().iter().map(|c| c.to_string()).collect();
        let n = columns.len();
        let mut rows = st.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let mut row = Vec::with_capacity(n);
            for i in 0..n {
                row.push(match r.get_ref(i)? {
                    ValueRef::Null => Json::Null,
                    ValueRef::Integer(v) => json!(v),
                    ValueRef::Real(v) => json!(v),
                    ValueRef::Text(t) => Json::String(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => {
                        json!({ "b64": base64::engine::general_purpose::STANDARD.encode(b) })
                    }
                });
            }
            out.push(Json::Array(row));
        }
        Ok(json!({ "columns": columns, "rows": out }).to_string())
    }

    /// Replaces every row of `table` with those of `body` (what [`Self::dump_shared`]
    /// made on the admin at `version`, its clock), in one transaction. Deleted rows leave
    /// no bytes behind (secure_delete, then a checkpoint): a destroyed salt is gone here
    /// too. Consent is merged instead: a recipient's choice recorded here after the
    /// snapshot (a withdrawal on this collector the admin has not taken in yet) stays.
    pub fn apply_shared(&self, table: &str, body: &str, version: i64) -> Result<()> {
        let table = shared_table(table)?;
        if table == "consent" {
            return self
                .consent_filter
                .changing(|| self.replace_shared(table, body, version));
        }
        self.replace_shared(table, body, version)
    }

    fn replace_shared(&self, table: &'static str, body: &str, version: i64) -> Result<()> {
        let doc: Json = serde_json::from_str(body).map_err(|e| bad(table, e))?;
        let columns: Vec<&str> = doc["columns"]
            .as_array()
            .ok_or_else(|| bad(table, "no columns"))?
            .iter()
            .map(|c| {
                c.as_str()
                    .ok_or_else(|| bad(table, "a column is not a name"))
            })
            .collect::<Result<_>>()?;
        // Names reach SQL only when they are columns this table has.
        let mut conn = self.conn();
        let known: Vec<String> = conn
            .prepare(&format!("SELECT * FROM {table} LIMIT 0"))?
            .column_names()
            .iter()
            .map(|c| c.to_string())
            .collect();
        if let Some(c) = columns.iter().find(|c| !known.iter().any(|k| k == *c)) {
            return Err(bad(table, format!("unknown column {c:?} (a newer admin?)")));
        }
        let rows = doc["rows"]
            .as_array()
            .ok_or_else(|| bad(table, "no rows"))?;
        let consent = table == "consent";
        let tx = conn.transaction()?;
        let deleted = if consent {
            tx.execute("DELETE FROM consent WHERE updated_ms <= ?1", [version])?
        } else {
            tx.execute(&format!("DELETE FROM {table}"), [])?
        };
        {
            let marks = vec!["?"; columns.len()].join(", ");
            let newer_wins = if consent {
                " ON CONFLICT (site_id, campaign_id, recipient) DO UPDATE SET \
                 granted = excluded.granted, updated_ms = excluded.updated_ms \
                 WHERE excluded.updated_ms > consent.updated_ms"
            } else {
                ""
            };
            let mut ins = tx.prepare(&format!(
                "INSERT INTO {table} ({}) VALUES ({marks}){newer_wins}",
                columns.join(", ")
            ))?;
            for row in rows {
                let cells = row
                    .as_array()
                    .filter(|r| r.len() == columns.len())
                    .ok_or_else(|| bad(table, "a row does not match the columns"))?;
                let values = cells
                    .iter()
                    .map(|v| value(table, v))
                    .collect::<Result<Vec<Value>>>()?;
                ins.execute(rusqlite::params_from_iter(values))?;
            }
        }
        tx.commit()?;
        if deleted > 0 && table == "salts" {
            checkpoint(&conn)?;
        }
        Ok(())
    }
}

/// A recipient's consent as recorded (`consent` table).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentRow {
    pub site_id: i64,
    pub campaign_id: i64,
    pub recipient: String,
    pub granted: bool,
    pub updated_ms: i64,
}

impl SqliteStore {
    /// Consent recorded after `since_ms`, oldest first: what a collector hands on.
    pub fn consent_since(&self, since_ms: i64) -> Result<Vec<ConsentRow>> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT site_id, campaign_id, recipient, granted, updated_ms FROM consent
             WHERE updated_ms > ?1 ORDER BY updated_ms",
        )?;
        let rows = st.query_map([since_ms], |r| {
            Ok(ConsentRow {
                site_id: r.get(0)?,
                campaign_id: r.get(1)?,
                recipient: r.get(2)?,
                granted: r.get(3)?,
                updated_ms: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Takes in consent recorded elsewhere; the newer choice of each recipient wins.
    /// The signal of a consent change (see `consent.rs`) goes out only when a row
    /// changed: an admin takes the same rows in again for a minute.
    pub fn merge_consent(&self, rows: &[ConsentRow]) -> Result<usize> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut n = 0;
        {
            let mut st = tx.prepare(
                "INSERT INTO consent (site_id, campaign_id, recipient, granted, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (site_id, campaign_id, recipient) DO UPDATE SET
                   granted = excluded.granted, updated_ms = excluded.updated_ms
                 WHERE excluded.updated_ms > consent.updated_ms",
            )?;
            for r in rows {
                n += st.execute(rusqlite::params![
                    r.site_id,
                    r.campaign_id,
                    r.recipient,
                    r.granted,
                    r.updated_ms
                ])?;
            }
        }
        if n > 0 {
            self.consent_filter.touch()?;
        }
        tx.commit()?;
        if n > 0 {
            self.consent_filter.touch()?;
        }
        Ok(n)
    }
}

fn shared_table(table: &str) -> Result<&'static str> {
    SHARED_TABLES
        .iter()
        .find(|t| **t == table)
        .copied()
        .ok_or_else(|| bad(table, "not a shared table"))
}

fn value(table: &str, v: &Json) -> Result<Value> {
    Ok(match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Integer(i64::from(*b)),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Real(n.as_f64().ok_or_else(|| bad(table, "a number"))?),
        },
        Json::String(s) => Value::Text(s.clone()),
        Json::Object(o) => {
            let b64 = o
                .get("b64")
                .and_then(Json::as_str)
                .ok_or_else(|| bad(table, "an object that is not a blob"))?;
            Value::Blob(
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| bad(table, e))?,
            )
        }
        Json::Array(_) => return Err(bad(table, "a nested array")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SiteKey;
    use crate::store::{CampaignStore, SiteStore, TokenStore};

    /// A collector's copy after applying is the admin's, row for row — sites with their
    /// settings, campaigns, signing keys, salts — and rows gone there go here.
    #[test]
    fn a_collector_holds_what_the_admin_dumped() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let admin = SqliteStore::open(a.path()).unwrap();
        let collector = SqliteStore::open(b.path()).unwrap();
        let site = admin
            .add_site(&SiteKey::generate(), "shop.example", "Shop", 1_000)
            .unwrap();
        admin
            .add_site(&SiteKey::generate(), "blog.example", "Blog", 1_000)
            .unwrap();
        admin
            .add_campaign(site.id, "Sale '24 \u{e9}", 2_000)
            .unwrap();
        admin.token_keys(3_000).unwrap();
        admin
            .put_salt(&crate::enrich::Salt::random(20_000))
            .unwrap();
        // The collector had a site of its own: it goes.
        collector
            .add_site(&SiteKey::generate(), "stale.example", "Stale", 1)
            .unwrap();
        for t in SHARED_TABLES {
            collector
                .apply_shared(t, &admin.dump_shared(t).unwrap(), 5_000)
                .unwrap();
            assert_eq!(
                collector.dump_shared(t).unwrap(),
                admin.dump_shared(t).unwrap(),
                "{t}"
            );
        }
        assert_eq!(collector.sites().unwrap(), admin.sites().unwrap());
        let days = |s: &SqliteStore| -> Vec<(i64, [u8; 32])> {
            s.salts()
                .unwrap()
                .into_iter()
                .map(|x| (x.day, *x.bytes()))
                .collect()
        };
        assert_eq!(days(&collector), days(&admin));
        assert_eq!(days(&collector).len(), 1);
        assert_eq!(
            collector.token_keys(3_000).unwrap(),
            admin.token_keys(3_000).unwrap()
        );
        // Unknown tables and columns are refused, and nothing is applied.
        assert!(collector.apply_shared("api_tokens", "{}", 5_000).is_err());
        let err = collector
            .apply_shared("sites", r#"{"columns": ["id", "evil"], "rows": []}"#, 5_000)
            .unwrap_err()
            .to_string();
        assert!(err.contains("evil"), "{err}");
        assert_eq!(collector.sites().unwrap().len(), 2);
    }

    /// A withdrawal recorded on a collector after the admin's snapshot survives the
    /// snapshot, reaches the admin, and comes back to every collector from there.
    #[test]
    fn consent_recorded_on_a_collector_is_kept_and_taken_in() {
        use crate::model::SiteId;
        use crate::store::PrivacyStore;
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let admin = SqliteStore::open(a.path()).unwrap();
        let collector = SqliteStore::open(b.path()).unwrap();
        admin.set_consent(SiteId(1), 0, "ann", true, 1_000).unwrap();
        admin.set_consent(SiteId(1), 0, "bob", true, 1_000).unwrap();
        collector
            .apply_shared("consent", &admin.dump_shared("consent").unwrap(), 2_000)
            .unwrap();
        // Bob withdraws on the collector; the admin's next snapshot (older) comes.
        collector
            .set_consent(SiteId(1), 0, "bob", false, 3_000)
            .unwrap();
        collector
            .apply_shared("consent", &admin.dump_shared("consent").unwrap(), 2_500)
            .unwrap();
        assert_eq!(collector.consent(SiteId(1), 0, "bob").unwrap(), Some(false));
        assert_eq!(collector.consent(SiteId(1), 0, "ann").unwrap(), Some(true));
        // The admin takes it in; an older choice never overwrites a newer one.
        let changes = collector.consent_since(2_500).unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(admin.merge_consent(&changes).unwrap(), 1);
        assert_eq!(admin.merge_consent(&changes).unwrap(), 0, "idempotent");
        assert_eq!(admin.consent(SiteId(1), 0, "bob").unwrap(), Some(false));
        let mut stale = changes[0].clone();
        (stale.granted, stale.updated_ms) = (true, 2_900);
        assert_eq!(admin.merge_consent(&[stale]).unwrap(), 0);
        assert_eq!(admin.consent(SiteId(1), 0, "bob").unwrap(), Some(false));
        // Erased on the admin: gone from the collector with the next snapshot.
        admin
            .erase_subject(&crate::store::Subject::Recipient {
                site_id: None,
                recipient: "ann".into(),
            })
            .unwrap();
        collector
            .apply_shared("consent", &admin.dump_shared("consent").unwrap(), 4_000)
            .unwrap();
        assert_eq!(collector.consent(SiteId(1), 0, "ann").unwrap(), None);
        assert_eq!(collector.consent(SiteId(1), 0, "bob").unwrap(), Some(false));
    }
}
