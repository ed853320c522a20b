//! Privacy records and duties ([`PrivacyStore`]): email consent, the last-open day of
//! deliverability-only mode, retention, and subject access and erasure.

use super::Result;
use crate::clock::Millis;
use crate::model::{Event, SiteId};

/// Consent, retention and data-subject requests.
pub trait PrivacyStore: Send + Sync {
    /// Records an email recipient's consent (`campaign_id` 0: every campaign of the site).
    fn set_consent(
        &self,
        site_id: SiteId,
        campaign_id: i64,
        recipient: &str,
        granted: bool,
        now: Millis,
    ) -> Result<()>;
    /// `Some(false)` if consent is withdrawn for this campaign or the site, `Some(true)`
    /// if granted (and not withdrawn), `None` if never recorded.
    fn consent(&self, site_id: SiteId, campaign_id: i64, recipient: &str) -> Result<Option<bool>>;
    /// Whether the recipient certainly has no consent recorded on the site (then
    /// [`consent`](Self::consent) is `None`), known without a read: cheap enough for an
    /// async thread. `false` when unsure.
    fn consent_unrecorded(&self, _site_id: SiteId, _recipient: &str) -> bool {
        false
    }
    /// Deliverability-only mode: remembers the day of a recipient's last open.
    fn touch_last_open(&self, site_id: SiteId, recipient: &str, day: i64) -> Result<()>;
    /// `(site_id, day)` of the recipient's last open, per site, in deliverability-only mode.
    fn last_opens(&self, recipient: &str) -> Result<Vec<(i64, i64)>>;

    /// Deletes raw events (and ended sessions) of a site older than `before_ms`; with
    /// `rollups`, also the hourly rollups before it. Returns the events deleted.
    fn apply_retention(&self, site_id: SiteId, before_ms: Millis, rollups: bool) -> Result<u64>;
    /// Every stored event of one person, for export (subject access).
    fn subject_events(&self, subject: &Subject) -> Result<Vec<Event>>;
    /// Deletes every event and derived row of one person, then checkpoints the WAL.
    /// Returns the rows deleted.
    fn erase_subject(&self, subject: &Subject) -> Result<u64>;
}

/// A person whose data is exported or erased.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// An email recipient id (optionally only on one site).
    Recipient {
        site_id: Option<i64>,
        recipient: String,
    },
    /// A (daily) visitor id, as shown in exports.
    Visitor(i64),
}
