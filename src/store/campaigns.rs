//! Campaigns (email and ad) of a site: what collectors check tokens and impressions
//! against, and what campaign reports count from ([`CampaignStore`]).

use super::Result;
use crate::clock::Millis;
use crate::model::{Campaign, SiteId};

/// Campaigns and their delivery and cost figures.
pub trait CampaignStore: Send + Sync {
    /// Every campaign, or those of one site.
    fn campaigns(&self, site_id: Option<SiteId>) -> Result<Vec<Campaign>>;
    fn campaign(&self, id: i64) -> Result<Option<Campaign>>;
    fn add_campaign(&self, site_id: SiteId, name: &str, now: Millis) -> Result<Campaign>;
    fn rename_campaign(&self, id: i64, name: &str) -> Result<()>;
    fn set_campaign_sent(
        &self,
        id: i64,
        delivered: Option<i64>,
        sent_ms: Option<Millis>,
    ) -> Result<bool>;
    /// Records what a campaign cost (`None` clears it).
    fn set_campaign_cost(&self, id: i64, cost: Option<(i64, &str)>) -> Result<bool>;
    /// Removes a campaign with its events and consent records; returns false if unknown.
    fn remove_campaign(&self, id: i64) -> Result<bool>;
}
