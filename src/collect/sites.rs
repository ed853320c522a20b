//! Site lookups for the collector: a map in memory, refreshed from the store when an
//! unknown key shows up (the CLI may have added it while the server runs). Unknown
//! keys are remembered for a few seconds so garbage keys cannot hammer the database.
//!
//! Changes to a known site (hosts, privacy, removal), from this process or another
//! (the CLI), move the store's settings version (triggers on `sites`, schema 18). A job
//! reads that one row every second and reloads the sites when it moved; a hit about to
//! be refused for a reason a setting could lift (host not allowed, tracking off, no
//! consent) reads it at once ([`SiteCache::refresh_now`]), so `site set --hosts` works
//! on the very next hit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::model::{Site, SiteKey};
use crate::store::SiteStore;

const NEGATIVE_TTL: Duration = Duration::from_secs(5);
const NEGATIVE_MAX: usize = 10_000;

pub struct SiteCache {
    store: Arc<dyn SiteStore>,
    known: RwLock<HashMap<String, Arc<Site>>>,
    unknown: RwLock<HashMap<String, Instant>>,
    /// The settings version the held sites were read at (-1: not yet).
    version: AtomicI64,
    /// When the last check for refused hits started: one check at a time, and a hit
    /// waits only for a check that started after it arrived.
    last_check: tokio::sync::Mutex<Option<Instant>>,
}

impl SiteCache {
    pub fn new(store: Arc<dyn SiteStore>) -> Self {
        SiteCache {
            store,
            known: RwLock::new(HashMap::new()),
            unknown: RwLock::new(HashMap::new()),
            version: AtomicI64::new(-1),
            last_check: tokio::sync::Mutex::new(None),
        }
    }

    pub async fn get(&self, key: &SiteKey) -> Option<Arc<Site>> {
        if let Some(s) = self
            .known
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(key.as_str())
        {
            return Some(s.clone());
        }
        if let Some(at) = self
            .unknown
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(key.as_str())
        {
            if at.elapsed() < NEGATIVE_TTL {
                return None;
            }
        }
        let store = self.store.clone();
        let k = key.clone();
        let found = tokio::task::spawn_blocking(move || store.site_by_key(&k))
            .await
            .ok()
            .and_then(|r| {
                r.map_err(|e| tracing::warn!(error = %e, "site lookup failed"))
                    .ok()
            })
            .flatten();
        match found {
            Some(site) => {
                let site = Arc::new(site);
                self.known
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key.as_str().to_owned(), site.clone());
                Some(site)
            }
            None => {
                let mut unknown = self.unknown.write().unwrap_or_else(|p| p.into_inner());
                if unknown.len() >= NEGATIVE_MAX {
                    unknown.retain(|_, at| at.elapsed() < NEGATIVE_TTL);
                    if unknown.len() >= NEGATIVE_MAX {
                        unknown.clear();
                    }
                }
                unknown.insert(key.as_str().to_owned(), Instant::now());
                None
            }
        }
    }

    /// The site `pick` chooses among those held; on a miss, the sites are read again
    /// (at most once per `miss_key` every few seconds, so unknown ids or domains cannot
    /// hammer the database). For the drop-in endpoints, which name a site by its
    /// Matomo id or its domain.
    pub async fn find(&self, miss_key: &str, pick: impl Fn(&Site) -> bool) -> Option<Arc<Site>> {
        let held = || {
            let known = self.known.read().unwrap_or_else(|p| p.into_inner());
            known.values().find(|s| pick(s)).cloned()
        };
        if let Some(s) = held() {
            return Some(s);
        }
        {
            let unknown = self.unknown.read().unwrap_or_else(|p| p.into_inner());
            if unknown
                .get(miss_key)
                .is_some_and(|at| at.elapsed() < NEGATIVE_TTL)
            {
                return None;
            }
        }
        self.reload_async().await;
        let found = held();
        if found.is_none() {
            let mut unknown = self.unknown.write().unwrap_or_else(|p| p.into_inner());
            if unknown.len() >= NEGATIVE_MAX {
                unknown.clear();
            }
            unknown.insert(miss_key.to_owned(), Instant::now());
        }
        found
    }

    /// Whether a page on `host` belongs to any site held (for CORS preflights).
    pub fn any_owns_host(&self, host: &str) -> bool {
        let known = self.known.read().unwrap_or_else(|p| p.into_inner());
        known.values().any(|s| s.owns_host(host))
    }

    /// A known site by its numeric id.
    pub fn by_id(&self, id: i64) -> Option<Arc<Site>> {
        let known = self.known.read().unwrap_or_else(|p| p.into_inner());
        known.values().find(|s| s.id.0 == id).cloned()
    }

    /// Reads the sites again if any changed since they were read (called every second,
    /// and by [`refresh_now`](Self::refresh_now)); true when they were read again.
    pub fn reload(&self) -> bool {
        // The version is read before the sites: a change between the two reads is seen
        // again on the next call.
        let version = match self.store.settings_version() {
            Ok(v) if v == self.version.load(Ordering::Acquire) => return false,
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "reading the settings version failed");
                -1
            }
        };
        match self.store.sites() {
            Ok(sites) => {
                self.install(sites);
                self.version.store(version, Ordering::Release);
                true
            }
            Err(_) => false,
        }
    }

    /// For a hit about to be refused for a reason a setting could lift: reads the sites
    /// again if a setting changed since; true when they were read again (by this call
    /// or another since it was made), so the hit is worth checking once more. Checks run
    /// one at a time, and a hit is answered by the first check that starts after it
    /// arrived: a flood of hits that will never be allowed costs about two reads of
    /// the version per read's duration, and a change made before a hit is always seen
    /// by it.
    pub async fn refresh_now(self: &Arc<Self>) -> bool {
        let arrived = Instant::now();
        let seen = self.version.load(Ordering::Acquire);
        let mut last = self.last_check.lock().await;
        if self.version.load(Ordering::Acquire) != seen {
            return true;
        }
        if last.is_some_and(|started| started >= arrived) {
            return false;
        }
        *last = Some(Instant::now());
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.reload())
            .await
            .unwrap_or(false)
    }

    /// Like [`reload`](Self::reload), off the async threads (for request paths).
    pub async fn reload_async(&self) {
        let store = self.store.clone();
        if let Ok(Ok(sites)) = tokio::task::spawn_blocking(move || store.sites()).await {
            self.install(sites);
        }
    }

    fn install(&self, sites: Vec<Site>) {
        let map = sites
            .into_iter()
            .map(|s| (s.key.as_str().to_owned(), Arc::new(s)))
            .collect();
        *self.known.write().unwrap_or_else(|p| p.into_inner()) = map;
    }
}
