//! Sites as collectors and reports need to know them: key and domain, name, privacy
//! settings, the extra hosts allowed to send events, and goals ([`SiteStore`]).

use super::{Pattern, Result};
use crate::clock::Millis;
use crate::model::{Privacy, Site, SiteId, SiteKey};

/// Sites and their settings.
pub trait SiteStore: Send + Sync {
    fn sites(&self) -> Result<Vec<Site>>;
    fn site_by_key(&self, key: &SiteKey) -> Result<Option<Site>>;
    fn add_site(&self, key: &SiteKey, domain: &str, name: &str, now: Millis) -> Result<Site>;
    fn rename_site(&self, site_id: SiteId, name: &str) -> Result<()>;
    /// Removes a site and every row that belongs to it; returns false if unknown.
    fn remove_site(&self, key: &SiteKey) -> Result<bool>;
    fn set_privacy(&self, site_id: SiteId, p: &Privacy) -> Result<()>;
    /// The extra hostnames whose pages may send a site's events.
    fn set_hosts(&self, site_id: SiteId, hosts: &[String]) -> Result<()>;
    /// Maps a site to the `idsite` its Matomo trackers send (`None` unmaps it); a
    /// `Conflict` when another site has that id.
    fn set_matomo_id(&self, site_id: SiteId, matomo_id: Option<i64>) -> Result<()>;
    fn site_by_matomo_id(&self, matomo_id: i64) -> Result<Option<Site>>;
    /// A counter every change to any site moves, whichever process makes it (one row
    /// to read): a cache of sites is stale when it moved.
    fn settings_version(&self) -> Result<i64>;

    fn goals(&self, site_id: SiteId) -> Result<Vec<Goal>>;
    fn add_goal(&self, site_id: SiteId, name: &str, pattern: &Pattern, now: Millis)
        -> Result<Goal>;
    fn remove_goal(&self, site_id: SiteId, name: &str) -> Result<bool>;
}

/// A goal of a site: what counts as converting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Goal {
    pub id: i64,
    pub site_id: i64,
    pub name: String,
    pub pattern: Pattern,
}
