//! ClickHouse: where collectors forward every committed event (`store.backend =
//! "clickhouse"`, see docs/scale-out.md). This module speaks to it over HTTP with the
//! `clickhouse` crate (RowBinary, no schema validation: 18.16 lacks the DESCRIBE
//! settings the crate's validation sends): creating and migrating the schema, inserting
//! one batch part into one shard, and looking up a part's marker row.
//!
//! SQL is built as text (18.16 has no query parameters): values only through
//! [`sql::literal`] or as integers, names only through [`sql::ident`] and [`sql::name`].
//! Every statement goes out with `query_raw`: the crate's `query` would take a `?`
//! inside a literal (a title, a recipient) for a bind placeholder and fail the
//! statement, for ever.

mod events;
pub mod reader;
pub mod row;
pub mod sql;

use std::time::Duration;

use clickhouse::Client;

use crate::config::StoreConfig;
use crate::store::sqlite::{Deletion, Relabel};
pub use row::{ConsentChRow, EventRow, RollupRow, SessionChRow, SharedRow, SumRow};

/// Statements of each schema version, in order (see `sql/`).
const MIGRATIONS: &[&str] = &[
    include_str!("sql/001_events.sql"),
    include_str!("sql/002_rollups.sql"),
    include_str!("sql/003_sessions.sql"),
    include_str!("sql/004_shared.sql"),
    include_str!("sql/005_geo.sql"),
    include_str!("sql/006_visits_on_events.sql"),
];

/// The nine sums of a rollup read, named so ORDER BY can use them.
const SUMS: &str = "sum(visitors) AS s_visitors, sum(visits) AS s_visits, \
    sum(pageviews) AS s_pageviews, sum(events) AS s_events, sum(bounces) AS s_bounces, \
    sum(duration_ms) AS s_duration_ms, sum(scroll_sum) AS s_scroll_sum, \
    sum(scroll_n) AS s_scroll_n, sum(engaged_ms) AS s_engaged_ms";
const NONZERO: &str = "s_visitors != 0 OR s_visits != 0 OR s_pageviews != 0 OR s_events != 0 \
    OR s_bounces != 0 OR s_duration_ms != 0 OR s_scroll_sum != 0 OR s_scroll_n != 0 \
    OR s_engaged_ms != 0";

#[derive(Debug, thiserror::Error)]
pub enum ChError {
    /// The same insert (query id) is still running on the server: its outcome decides.
    #[error("the previous attempt is still running on the server")]
    AlreadyRunning,
    #[error("ClickHouse did not answer within {0:?}")]
    TimedOut(Duration),
    #[error("ClickHouse: {0}")]
    Server(String),
}

impl From<clickhouse::error::Error> for ChError {
    fn from(e: clickhouse::error::Error) -> Self {
        let text = e.to_string();
        // Code 216: QUERY_WITH_SAME_ID_IS_ALREADY_RUNNING.
        if text.contains("Code: 216") {
            ChError::AlreadyRunning
        } else {
            ChError::Server(text)
        }
    }
}

pub type Result<T> = std::result::Result<T, ChError>;

/// The configured servers: one client per shard (writes), one for schema and reads.
#[derive(Clone)]
pub struct ClickHouse {
    main: Client,
    shards: Vec<Client>,
    /// The database, quoted for SQL.
    db: String,
    cluster: Option<String>,
    timeout: Duration,
}

impl ClickHouse {
    /// Clients for the validated configuration; nothing is sent yet.
    pub fn new(c: &StoreConfig) -> ClickHouse {
        let client = |url: &str| {
            Client::default()
                .with_url(url)
                .with_user(&c.user)
                .with_password(&c.password)
                .with_database(&c.database)
                .with_validation(false)
                // A failing statement answers 500 instead of a 200 with an error at the end.
                .with_setting("wait_end_of_query", "1")
        };
        let shards = if c.shards.is_empty() {
            vec![client(&c.url)]
        } else {
            c.shards.iter().map(|u| client(u)).collect()
        };
        ClickHouse {
            main: client(&c.url),
            shards,
            db: sql::name(&c.database).expect("validated database name"),
            cluster: (!c.cluster.is_empty())
                .then(|| sql::name(&c.cluster).expect("validated cluster name")),
            timeout: Duration::from_millis(c.timeout_ms),
        }
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The shard holding a visitor's events.
    pub fn shard_of(&self, visitor_id: i64) -> usize {
        (visitor_id as u64 % self.shards.len() as u64) as usize
    }

    async fn timed<T>(&self, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        tokio::time::timeout(self.timeout, f)
            .await
            .unwrap_or(Err(ChError::TimedOut(self.timeout)))
    }

    async fn execute(&self, client: &Client, sql: &str) -> Result<()> {
        self.timed(async { Ok(client.query_raw(sql).execute().await?) })
            .await
    }

    /// Creates the database and brings every shard's schema (and the main server's
    /// read table) to the newest version. Safe to run from many collectors at once:
    /// every statement is `IF NOT EXISTS`.
    pub async fn migrate(&self) -> Result<()> {
        let mut servers: Vec<&Client> = self.shards.iter().collect();
        if self.cluster.is_none() && self.shards.len() == 1 {
            servers.truncate(1);
        } else {
            servers.push(&self.main);
        }
        // What reports read: the local table itself on one server (through a Merge
        // table), a Distributed table over every shard's on a cluster. pixeltrack writes each shard's local table
        // itself (by visitor), so the Distributed table's sharding key is never used.
        let read_table = |name: &str| match &self.cluster {
            // A Merge table, not a view: reads can use PREWHERE.
            None => format!(
                "CREATE TABLE IF NOT EXISTS {db}.{name} AS {db}.{name}_local \
                 ENGINE = Merge({plain}, '^{name}_local$')",
                db = self.db,
                plain = sql::literal(self.db.trim_matches('`')),
            ),
            Some(cluster) => format!(
                "CREATE TABLE IF NOT EXISTS {db}.{name} AS {db}.{name}_local \
                 ENGINE = Distributed({cluster}, {db}, {name}_local, rand())",
                db = self.db
            ),
        };
        let (rollups_table, events_table) = (read_table("rollups"), read_table("events"));
        for server in servers {
            // The database may not exist yet: these two run without it selected.
            let bare = server.clone().with_database("default");
            self.execute(&bare, &format!("CREATE DATABASE IF NOT EXISTS {}", self.db))
                .await?;
            self.execute(
                &bare,
                &format!(
                    "CREATE TABLE IF NOT EXISTS {}.schema_migrations \
                     (version UInt32, applied_at DateTime) ENGINE = Log",
                    self.db
                ),
            )
            .await?;
            let done: u32 = self
                .timed(async {
                    Ok(bare
                        .query_raw(&format!(
                            "SELECT toUInt32(max(version)) FROM {}.schema_migrations",
                            self.db
                        ))
                        .fetch_one()
                        .await?)
                })
                .await?;
            for (i, script) in MIGRATIONS.iter().enumerate().skip(done as usize) {
                let script = script
                    .replace("{db}", &self.db)
                    .replace("{events_table}", &events_table)
                    .replace("{rollups_table}", &rollups_table);
                for stmt in statements(&script).iter().flat_map(|s| sliced(s)) {
                    if let Some((table, column)) = added_column(&stmt) {
                        if self.has_column(&bare, table, column).await? {
                            continue;
                        }
                    }
                    if let Some(table) = optimized_table(&stmt) {
                        self.optimize_each_partition(&bare, table).await?;
                        continue;
                    }
                    self.execute(&bare, &stmt).await?;
                }
                self.execute(
                    &bare,
                    &format!(
                        "INSERT INTO {}.schema_migrations VALUES ({}, now())",
                        self.db,
                        i + 1
                    ),
                )
                .await?;
            }
        }
        Ok(())
    }

    /// `OPTIMIZE TABLE … PARTITION ID … FINAL` until each partition of `table` is one
    /// part: 18.16 merges a single partition when none is named, and an OPTIMIZE that
    /// meets a background merge of the same parts returns without merging. A rewrite
    /// of a large partition takes minutes, so this waits an hour, not the query timeout.
    async fn optimize_each_partition(&self, client: &Client, table: &str) -> Result<()> {
        let table = sql::ident(table)
            .ok_or_else(|| ChError::Server(format!("no table {table} to optimize")))?;
        let hour = Duration::from_secs(3600);
        let deadline = tokio::time::Instant::now() + hour;
        loop {
            let parts: Vec<String> = self
                .timed(async {
                    Ok(client
                        .query_raw(&format!(
                            "SELECT partition_id FROM system.parts WHERE database = {} \
                             AND table = {} AND active GROUP BY partition_id HAVING count() > 1",
                            sql::literal(self.db.trim_matches('`')),
                            sql::literal(table)
                        ))
                        .fetch_all::<String>()
                        .await?)
                })
                .await?;
            if parts.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(ChError::TimedOut(hour));
            }
            for id in parts {
                let stmt = format!(
                    "OPTIMIZE TABLE {}.{table} PARTITION ID {} FINAL",
                    self.db,
                    sql::literal(&id)
                );
                tokio::time::timeout_at(deadline, client.query_raw(&stmt).execute())
                    .await
                    .map_err(|_| ChError::TimedOut(hour))??;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Whether `table` of the database has `column` (18.16 has no `ADD COLUMN IF NOT
    /// EXISTS`).
    async fn has_column(&self, client: &Client, table: &str, column: &str) -> Result<bool> {
        let sql = format!(
            "SELECT count() FROM system.columns WHERE database = {} AND table = {} AND name = {}",
            sql::literal(self.db.trim_matches('`')),
            sql::literal(table),
            sql::literal(column)
        );
        let n: u64 = self
            .timed(async { Ok(client.query_raw(&sql).fetch_one().await?) })
            .await?;
        Ok(n > 0)
    }

    /// Whether the marker row `marker` is on `shard`: the part it closes landed.
    pub async fn has_marker(&self, shard: usize, marker: u64) -> Result<bool> {
        let sql = format!(
            "SELECT count() FROM {}.events_local WHERE site_id = 0 AND event_id = {marker}",
            self.db
        );
        let n: u64 = self
            .timed(async { Ok(self.shards[shard].query_raw(&sql).fetch_one().await?) })
            .await?;
        Ok(n > 0)
    }

    /// Whether an insert with `query_id` is still running on `shard`.
    pub async fn running(&self, shard: usize, query_id: &str) -> Result<bool> {
        let sql = format!(
            "SELECT count() FROM system.processes WHERE query_id = {}",
            sql::literal(query_id)
        );
        let n: u64 = self
            .timed(async { Ok(self.shards[shard].query_raw(&sql).fetch_one().await?) })
            .await?;
        Ok(n > 0)
    }

    /// Inserts `rows` into `shard`'s `table` in one statement with `query_id` (a second
    /// attempt with the same id while the first runs is refused). Rows of one
    /// partition go in atomically: all or none.
    pub async fn insert<T>(
        &self,
        shard: usize,
        table: &str,
        query_id: &str,
        rows: &[T::Value<'_>],
    ) -> Result<()>
    where
        T: clickhouse::RowWrite,
    {
        let table = sql::ident(table).expect("an allowlisted table");
        let client = &self.shards[shard];
        self.timed(async {
            let mut ins = client
                .insert::<T>(table)
                .await?
                .with_setting("query_id", query_id);
            for r in rows {
                ins.write(r).await?;
            }
            ins.end().await?;
            Ok(())
        })
        .await
    }

    /// Deletes the events matching `d` on every shard (an `ALTER … DELETE` mutation,
    /// which ClickHouse completes in the background; running it twice is harmless).
    /// Conditions on Nullable columns go through `ifNull`: 18.16 runs a mutation as
    /// `if(condition, …)`, and a NULL condition fails it — for ever, in the background.
    pub async fn delete(&self, d: &Deletion) -> Result<()> {
        let mut cond = vec!["site_id != 0".to_owned()];
        if let Some(s) = d.site_id {
            cond.push(format!("site_id = {s}"));
        }
        if let Some(v) = d.visitor_id {
            cond.push(format!("visitor_id = {v}"));
        }
        if let Some(r) = &d.recipient {
            cond.push(format!(
                "recipient = {} AND isNotNull(campaign_id)",
                sql::literal(r)
            ));
        }
        if let Some(c) = d.campaign_id {
            cond.push(format!("ifNull(campaign_id, 0) = {c}"));
        }
        if let Some(b) = d.before_ms {
            cond.push(format!("toUInt64(ts) * 1000 + ts_ms < {}", b.max(0)));
        }
        let sql = format!(
            "ALTER TABLE {}.events_local DELETE WHERE {}",
            self.db,
            cond.join(" AND ")
        );
        for shard in &self.shards {
            self.execute(shard, &sql).await?;
        }
        // Visits go as they do locally: with their site, their visitor, or (retention)
        // when they ended before the cut; an email recipient has none.
        if (d.site_id.is_some() || d.visitor_id.is_some())
            && d.recipient.is_none()
            && d.campaign_id.is_none()
        {
            let mut cond = Vec::new();
            if let Some(s) = d.site_id {
                cond.push(format!("site_id = {s}"));
            }
            if let Some(v) = d.visitor_id {
                cond.push(format!("visitor_id = {v}"));
            }
            if let Some(b) = d.before_ms {
                cond.push(format!("last_ms < {b}"));
            }
            let sql = format!(
                "ALTER TABLE {}.sessions_local DELETE WHERE {}",
                self.db,
                cond.join(" AND ")
            );
            for shard in &self.shards {
                self.execute(shard, &sql).await?;
            }
        }
        if let (Some(site), Some(hour)) = (d.site_id, d.rollups_before_hour) {
            let sql = format!(
                "ALTER TABLE {}.rollups_local DELETE WHERE site_id = {site} AND hour < {hour}",
                self.db
            );
            for shard in &self.shards {
                self.execute(shard, &sql).await?;
            }
        }
        Ok(())
    }

    /// Relabels the events each of `relabels` selects (by recipient, kind, time and
    /// their present verdict and reason) with its verdict and reason, which must be the
    /// same for all of them (one `ALTER … UPDATE` mutation per shard for many
    /// corrections).
    pub async fn relabel(&self, relabels: &[Relabel]) -> Result<()> {
        let Some(first) = relabels.first() else {
            return Ok(());
        };
        let any: Vec<String> = relabels
            .iter()
            .map(|r| {
                let reason = if r.from_reason.is_empty() {
                    String::new()
                } else {
                    format!(" AND verdict_reason = {}", sql::literal(&r.from_reason))
                };
                format!(
                    "(ifNull(campaign_id, 0) = {} AND recipient = {} AND name = {} AND toUInt64(ts) * 1000 + ts_ms >= {} AND verdict = {}{reason})",
                    r.campaign_id,
                    sql::literal(&r.recipient),
                    sql::literal(&r.name),
                    r.from_ms.max(0),
                    sql::literal(&r.from_verdict)
                )
            })
            .collect();
        let sql = format!(
            "ALTER TABLE {}.events_local UPDATE verdict = {}, verdict_reason = {} \
             WHERE site_id != 0 AND ({})",
            self.db,
            sql::literal(&first.verdict),
            sql::literal(&first.reason),
            any.join(" OR ")
        );
        for shard in &self.shards {
            self.execute(shard, &sql).await?;
        }
        Ok(())
    }

    /// Whether rollup write `seq` of `collector` landed on `shard`.
    pub async fn has_rollup_marker(&self, shard: usize, collector: u32, seq: i64) -> Result<bool> {
        let sql = format!(
            "SELECT count() FROM {}.rollups_local WHERE site_id = 0 AND dim = -1 AND hour = {seq} AND value = {}",
            self.db,
            sql::literal(&RollupRow::marker_value(collector))
        );
        let n: u64 = self
            .timed(async { Ok(self.shards[shard].query_raw(&sql).fetch_one().await?) })
            .await?;
        Ok(n > 0)
    }

    async fn fetch_sums(&self, sql: String) -> Result<Vec<SumRow>> {
        self.timed(async { Ok(self.main.query_raw(&sql).fetch_all::<SumRow>().await?) })
            .await
    }

    /// What [`crate::store::RollupStore::rollup_sums`] answers, from ClickHouse: the
    /// same sums in the same order. Values whose sums are all zero are left out
    /// (SummingMergeTree drops such rows when it merges, so they come and go).
    pub async fn rollup_sums(
        &self,
        site_id: i64,
        dim: i64,
        from_hour: i64,
        to_hour: i64,
        limit: usize,
    ) -> Result<Vec<SumRow>> {
        self.fetch_sums(format!(
            "SELECT value, {SUMS} FROM {}.rollups \
             WHERE site_id = {site_id} AND dim = {dim} AND hour >= {from_hour} AND hour < {to_hour} \
             GROUP BY value HAVING {NONZERO} \
             ORDER BY s_visitors DESC, s_pageviews DESC, s_events DESC, s_visits DESC, value \
             LIMIT {limit}",
            self.db
        ))
        .await
    }

    /// One value of `dim` summed over the range (None: no row at all).
    pub async fn rollup_value(
        &self,
        site_id: i64,
        dim: i64,
        value: &str,
        from_hour: i64,
        to_hour: i64,
    ) -> Result<Option<SumRow>> {
        Ok(self
            .fetch_sums(format!(
                "SELECT value, {SUMS} FROM {}.rollups \
                 WHERE site_id = {site_id} AND dim = {dim} AND hour >= {from_hour} AND hour < {to_hour} \
                 AND value = {} GROUP BY value",
                self.db,
                sql::literal(value)
            ))
            .await?
            .pop())
    }

    /// `Dim::Total` per bucket of `bucket_hours`, keyed (in `value`) by the bucket's
    /// first hour, as [`crate::store::RollupStore::rollup_series`] answers.
    pub async fn rollup_series(
        &self,
        site_id: i64,
        from_hour: i64,
        to_hour: i64,
        bucket_hours: i64,
    ) -> Result<Vec<SumRow>> {
        let b = bucket_hours.max(1);
        self.fetch_sums(format!(
            "SELECT toString(intDiv(hour - {from_hour}, {b}) * {b} + {from_hour}) AS value, {SUMS} \
             FROM {}.rollups \
             WHERE site_id = {site_id} AND dim = 0 AND hour >= {from_hour} AND hour < {to_hour} \
             GROUP BY value ORDER BY toInt64(value)",
            self.db
        ))
        .await
    }

    /// Publishes a new body of shared table `kind` (see `sql/004_shared.sql`).
    pub async fn publish_shared(&self, kind: &str, version: u64, body: &str) -> Result<()> {
        let row = SharedRow {
            kind,
            version,
            body,
        };
        self.timed(async {
            let mut ins = self.main.insert::<SharedRow<'static>>("shared").await?;
            ins.write(&row).await?;
            ins.end().await?;
            Ok(())
        })
        .await
    }

    /// The newest body of every shared table: `(kind, version, body)`.
    pub async fn latest_shared(&self) -> Result<Vec<(String, u64, String)>> {
        let sql = format!(
            "SELECT kind, max(version), argMax(body, version) FROM {}.shared GROUP BY kind",
            self.db
        );
        self.timed(async {
            Ok(self
                .main
                .query_raw(&sql)
                .fetch_all::<(String, u64, String)>()
                .await?)
        })
        .await
    }

    /// Merges the shared table's parts now, so replaced bodies (a destroyed salt in
    /// an old one) do not wait for a background merge to go.
    pub async fn compact_shared(&self) -> Result<()> {
        self.execute(
            &self.main,
            &format!("OPTIMIZE TABLE {}.shared FINAL", self.db),
        )
        .await
    }

    /// Hands consent recorded on this collector to the admin.
    pub async fn push_consent(&self, rows: &[crate::store::sqlite::ConsentRow]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        self.timed(async {
            let mut ins = self
                .main
                .insert::<ConsentChRow<'static>>("consent_changes")
                .await?;
            for r in rows {
                ins.write(&ConsentChRow {
                    site_id: r.site_id,
                    campaign_id: r.campaign_id,
                    recipient: &r.recipient,
                    granted: u8::from(r.granted),
                    updated_ms: r.updated_ms,
                })
                .await?;
            }
            ins.end().await?;
            Ok(())
        })
        .await
    }

    /// Consent collectors recorded after `since_ms`, oldest first.
    pub async fn pull_consent(
        &self,
        since_ms: i64,
    ) -> Result<Vec<crate::store::sqlite::ConsentRow>> {
        let sql = format!(
            "SELECT site_id, campaign_id, recipient, granted, updated_ms FROM {}.consent_changes \
             WHERE updated_ms > {since_ms} ORDER BY updated_ms",
            self.db
        );
        let rows: Vec<(i64, i64, String, u8, i64)> = self
            .timed(async { Ok(self.main.query_raw(&sql).fetch_all().await?) })
            .await?;
        Ok(rows
            .into_iter()
            .map(|(site_id, campaign_id, recipient, granted, updated_ms)| {
                crate::store::sqlite::ConsentRow {
                    site_id,
                    campaign_id,
                    recipient,
                    granted: granted != 0,
                    updated_ms,
                }
            })
            .collect())
    }

    /// Every event row (markers left out) on every shard: for tests and `status`.
    pub async fn count_events(&self) -> Result<u64> {
        let mut total = 0;
        for c in &self.shards {
            let sql = format!(
                "SELECT count() FROM {}.events_local WHERE site_id != 0",
                self.db
            );
            let n: u64 = self
                .timed(async { Ok(c.query_raw(&sql).fetch_one().await?) })
                .await?;
            total += n;
        }
        Ok(total)
    }
}

/// The statements of a migration script: separated by lines holding only `;`, with
/// `--` comment lines dropped.
/// `(table, column)` of an `ALTER TABLE <db>.<table> ADD COLUMN <column> <type>`
/// statement of a migration script.
fn added_column(stmt: &str) -> Option<(&str, &str)> {
    let mut words = stmt.split_whitespace();
    let head: Vec<&str> = words.by_ref().take(2).collect();
    if head != ["ALTER", "TABLE"] {
        return None;
    }
    let table = words.next()?.rsplit('.').next()?;
    let add: Vec<&str> = words.by_ref().take(2).collect();
    if add != ["ADD", "COLUMN"] {
        return None;
    }
    Some((table, words.next()?))
}

fn statements(script: &str) -> Vec<String> {
    script
        .split("\n;")
        .map(|s| {
            s.lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n")
                .trim()
                .to_owned()
        })
        .filter(|s| !s.is_empty())
        .collect()
}

/// The table of a migration's `OPTIMIZE TABLE <db>.<table> FINAL`: run per partition.
fn optimized_table(stmt: &str) -> Option<&str> {
    let rest = stmt
        .strip_prefix("OPTIMIZE TABLE ")?
        .strip_suffix(" FINAL")?;
    let (_, table) = rest.rsplit_once('.')?;
    (!table.contains(' ')).then_some(table)
}

/// How many times a migration statement that holds `{slice}` runs, once per value.
const SLICES: u32 = 16;

/// A statement as it runs: once, or once per slice when it holds `{slice}` (a backfill
/// split by visitor, so no one statement needs the memory of the whole table).
fn sliced(stmt: &str) -> Vec<String> {
    if stmt.contains("{slice}") {
        (0..SLICES)
            .map(|k| stmt.replace("{slice}", &k.to_string()))
            .collect()
    } else {
        vec![stmt.to_owned()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_with_slices_runs_once_per_slice() {
        let backfill = statements(MIGRATIONS[5])
            .into_iter()
            .flat_map(|s| sliced(&s))
            .filter(|s| s.starts_with("INSERT"))
            .collect::<Vec<_>>();
        assert_eq!(backfill.len(), SLICES as usize);
        assert!(backfill[15].contains("% 16 = 15") && !backfill[15].contains("{slice}"));
        assert_eq!(sliced("SELECT 1"), vec!["SELECT 1".to_owned()]);
        assert_eq!(
            optimized_table("OPTIMIZE TABLE `pt`.events_local FINAL"),
            Some("events_local")
        );
        assert_eq!(
            optimized_table("OPTIMIZE TABLE `pt`.events_local PARTITION 1 FINAL"),
            None
        );
    }

    #[test]
    fn added_columns_are_recognised_for_the_existence_check() {
        assert_eq!(
            added_column("ALTER TABLE `pt`.events_local ADD COLUMN region String"),
            Some(("events_local", "region"))
        );
        assert_eq!(added_column("DROP TABLE IF EXISTS `pt`.events"), None);
        assert_eq!(added_column("ALTER TABLE `pt`.events DELETE WHERE 1"), None);
        let geo = statements(MIGRATIONS[4]);
        let added: Vec<_> = geo.iter().filter_map(|s| added_column(s)).collect();
        assert_eq!(added.len(), 6);
        assert!(added.contains(&("sessions_local", "city")));
    }

    #[test]
    fn visit_columns_are_added_once_each() {
        let stmts = statements(MIGRATIONS[5]);
        let added: Vec<_> = stmts.iter().filter_map(|s| added_column(s)).collect();
        assert_eq!(added.len(), 2 + crate::store::SESSION_DIMS.len());
        assert_eq!(added[0], ("events_local", "visit_found"));
        assert_eq!(added[1], ("events_local", "visit_entry_page"));
    }

    #[test]
    fn migration_scripts_split_into_statements() {
        let s = MIGRATIONS[0]
            .replace("{db}", "`pt`")
            .replace("{events_table}", "CREATE VIEW x AS SELECT 1");
        let st = statements(&s);
        assert_eq!(st.len(), 2, "{st:#?}");
        assert!(st[0].contains("CREATE TABLE IF NOT EXISTS `pt`.events_local"));
        assert!(st[1].ends_with("CREATE VIEW x AS SELECT 1"));
    }
}
