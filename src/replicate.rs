//! Replication of the installation's shared state through ClickHouse, for a
//! scaled-out installation (`role = "admin"` and `"collector"`, docs/scale-out.md).
//!
//! The admin owns sites and their settings, campaigns, the keys that sign email and
//! ad links, the daily visitor salts and email consent: every [`EVERY`] it dumps each
//! of these tables (`store/sqlite/shared.rs`) and publishes the ones that changed into
//! ClickHouse's `shared` table. Collectors read the newest body of each table as often
//! and apply what is new into their own SQLite database, which is their cached copy:
//! with the admin (or ClickHouse) down they keep serving with it. Salts are shared, so
//! one visitor is one visitor on every collector; the admin makes tomorrow's a day
//! ahead, so midnight needs no admin.
//!
//! Consent can also start on a collector (a recipient withdrawing from an email's
//! link): the collector records it, hands it on through `consent_changes`, the admin
//! takes it in (the newer choice wins) and publishes it to every collector.
//!
//! A change on the admin reaches every collector within two periods (about 4 s), plus
//! the collectors' own reloads (sites every second, keys and salts right after an
//! apply).

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::watch;

use crate::clock::Clock;
use crate::config::{Role, StoreConfig};
use crate::store::clickhouse::ClickHouse;
use crate::store::sqlite::{ConsentRow, SHARED_TABLES};
use crate::store::SqliteStore;

/// How often the admin publishes and collectors look.
pub const EVERY: Duration = Duration::from_secs(2);

/// How long a collector keeps putting back consent it handed on: the admin takes it in
/// within a round or two, so its snapshots hold it well before this.
const PENDING_CONSENT: Duration = Duration::from_secs(60);

/// The running replication; [`Replicator::stop`] ends it.
pub struct Replicator {
    stop: watch::Sender<bool>,
    thread: JoinHandle<()>,
}

/// One side's state between rounds.
struct Side {
    role: Role,
    ch: ClickHouse,
    store: Arc<SqliteStore>,
    clock: Clock,
    migrated: bool,
    /// Admin: the body last published per table.
    published: HashMap<&'static str, String>,
    /// The newest version per table: applied (collector) or published (admin).
    applied: HashMap<String, u64>,
    /// Admin: whether the versions already in ClickHouse were read (once, at start).
    versions_read: bool,
    /// Consent handed on (collector) or taken in (admin) up to this time.
    consent_mark: i64,
    /// Collector: consent handed on lately, put back after each snapshot until the
    /// admin's snapshots surely hold it (a snapshot made before the admin took it in
    /// would otherwise undo a withdrawal here for a round or two).
    pending: Vec<(std::time::Instant, ConsentRow)>,
    /// Called after a collector applied new shared state (reload keys and salts).
    on_apply: Box<dyn Fn() + Send>,
}

impl Replicator {
    /// Replicates for `role` (admin or collector). A collector first tries once to
    /// catch up (`first_sync`, done by the caller before it serves).
    pub fn start(
        role: Role,
        store: Arc<SqliteStore>,
        config: &StoreConfig,
        clock: Clock,
        on_apply: Box<dyn Fn() + Send>,
    ) -> std::io::Result<Replicator> {
        let (stop, mut stopped) = watch::channel(false);
        let mut side = Side::new(role, store, config, clock, on_apply);
        let thread = std::thread::Builder::new()
            .name("pixeltrack-replicate".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(error = %e, "replication cannot start");
                        return;
                    }
                };
                rt.block_on(async move {
                    let mut failing = false;
                    loop {
                        match side.round().await {
                            Ok(()) if failing => {
                                tracing::info!("replication through ClickHouse works again");
                                failing = false;
                            }
                            Ok(()) => {}
                            Err(e) if !failing => {
                                tracing::warn!(error = %e, "replication through ClickHouse failing; serving with the copy at hand");
                                failing = true;
                            }
                            Err(_) => {}
                        }
                        tokio::select! {
                            _ = tokio::time::sleep(EVERY) => {}
                            _ = stopped.changed() => return,
                        }
                    }
                });
            })?;
        Ok(Replicator { stop, thread })
    }

    pub fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.thread.join();
    }
}

/// A collector's first catch-up before it serves, bounded by `limit`: Ok(true) if it
/// applied the admin's state, Ok(false) if ClickHouse holds none yet. Runs on a thread
/// of its own, so it may be called from async code at start-up.
pub fn first_sync(
    store: Arc<SqliteStore>,
    config: &StoreConfig,
    clock: Clock,
    limit: Duration,
) -> anyhow::Result<bool> {
    let config = config.clone();
    std::thread::scope(|s| {
        s.spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let mut side = Side::new(Role::Collector, store, &config, clock, Box::new(|| {}));
            rt.block_on(async {
                tokio::time::timeout(limit, side.round())
                    .await
                    .map_err(|_| anyhow::anyhow!("ClickHouse did not answer within {limit:?}"))??;
                Ok(!side.applied.is_empty())
            })
        })
        .join()
        .map_err(|_| anyhow::anyhow!("the first sync panicked"))?
    })
}

#[derive(Debug, thiserror::Error)]
enum RoundError {
    #[error(transparent)]
    Remote(#[from] crate::store::clickhouse::ChError),
    #[error(transparent)]
    Local(#[from] crate::store::StoreError),
}

impl Side {
    fn new(
        role: Role,
        store: Arc<SqliteStore>,
        config: &StoreConfig,
        clock: Clock,
        on_apply: Box<dyn Fn() + Send>,
    ) -> Side {
        Side {
            role,
            ch: ClickHouse::new(config),
            store,
            clock,
            migrated: false,
            published: HashMap::new(),
            applied: HashMap::new(),
            versions_read: false,
            consent_mark: 0,
            pending: Vec::new(),
            on_apply,
        }
    }

    async fn round(&mut self) -> Result<(), RoundError> {
        if !self.migrated {
            self.ch.migrate().await?;
            self.migrated = true;
        }
        match self.role {
            Role::Admin => self.publish().await,
            Role::Collector => self.apply().await,
            Role::All => Ok(()),
        }
    }

    /// Admin: takes in consent from collectors, then publishes each table that changed.
    async fn publish(&mut self) -> Result<(), RoundError> {
        // Rows may arrive a little out of time order: look back a minute, as taking a
        // row in twice changes nothing.
        let pulled = self.ch.pull_consent(self.consent_mark - 60_000).await?;
        if let Some(last) = pulled.last() {
            self.consent_mark = self.consent_mark.max(last.updated_ms);
            let n = self.store.merge_consent(&pulled)?;
            if n > 0 {
                tracing::info!(changes = n, "consent recorded by collectors taken in");
            }
        }
        if !self.versions_read {
            // After a restart, publish past what is there (the clock may have gone back).
            for (kind, version, _) in self.ch.latest_shared().await? {
                self.applied.insert(kind, version);
            }
            self.versions_read = true;
        }
        for table in SHARED_TABLES {
            let body = self.store.dump_shared(table)?;
            if self.published.get(table) == Some(&body) {
                continue;
            }
            let last = self.applied.get(*table).copied().unwrap_or(0);
            let version = (self.clock.now_ms().max(0) as u64).max(last + 1);
            self.ch.publish_shared(table, version, &body).await?;
            if *table == "salts" && self.published.contains_key(table) {
                // A salt was made or destroyed: merge the old bodies away now.
                self.ch.compact_shared().await?;
            }
            self.applied.insert((*table).to_owned(), version);
            self.published.insert(table, body);
        }
        Ok(())
    }

    /// Collector: hands on consent recorded here, then applies every newer table.
    async fn apply(&mut self) -> Result<(), RoundError> {
        let mine = self.store.consent_since(self.consent_mark)?;
        if let Some(last) = mine.last() {
            self.ch.push_consent(&mine).await?;
            self.consent_mark = last.updated_ms;
            let now = std::time::Instant::now();
            self.pending.extend(mine.into_iter().map(|r| (now, r)));
        }
        self.pending
            .retain(|(at, _)| at.elapsed() < PENDING_CONSENT);
        let mut latest = self.ch.latest_shared().await?;
        latest.sort_by_key(|(kind, _, _)| SHARED_TABLES.iter().position(|t| t == kind));
        let mut changed = false;
        for (kind, version, body) in latest {
            if !SHARED_TABLES.contains(&kind.as_str())
                || self.applied.get(&kind).is_some_and(|v| *v >= version)
            {
                continue;
            }
            self.store.apply_shared(&kind, &body, version as i64)?;
            if kind == "consent" && !self.pending.is_empty() {
                let rows: Vec<ConsentRow> = self.pending.iter().map(|(_, r)| r.clone()).collect();
                self.store.merge_consent(&rows)?;
            }
            if kind == "consent" {
                // What this collector recorded is in the admin's copy now, or newer here.
                self.consent_mark = self
                    .consent_mark
                    .max(self.clock.now_ms().min(version as i64));
            }
            self.applied.insert(kind, version);
            changed = true;
        }
        if changed {
            (self.on_apply)();
        }
        Ok(())
    }
}
