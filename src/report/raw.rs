//! Filtered reports: one read of the matching raw events builds every number of the
//! page at once — totals, each breakdown, the time series — counted where the data is
//! (`store::web_counts` has the rules). `tests/integration/reports.rs` checks that,
//! without filters, this agrees with the rollups dimension by dimension.

use crate::clock::Millis;
use crate::model::SiteId;
pub use crate::store::Group;
use crate::store::{Counts, Filter, Result, RollupSum, Store, WebCounts};

/// Counts of the requested groups, from the backend's [`web_counts`](crate::store::EventStore::web_counts).
pub struct Aggregate {
    groups: WebCounts,
}

impl Aggregate {
    pub fn new(
        store: &dyn Store,
        site_id: SiteId,
        from_ms: Millis,
        to_ms: Millis,
        filters: &[Filter],
        groups: &[Group],
    ) -> Result<Aggregate> {
        Ok(Aggregate {
            groups: store.web_counts(site_id, from_ms, to_ms, filters, groups)?,
        })
    }

    /// The rows of one group, largest first (as the rollups order them).
    pub fn sums(&self, group: Group, limit: usize) -> Vec<RollupSum> {
        let mut rows: Vec<RollupSum> = self
            .groups
            .0
            .get(&group)
            .into_iter()
            .flatten()
            .map(|(v, c)| RollupSum {
                value: v.clone(),
                counts: *c,
            })
            .collect();
        rows.sort_by(|a, b| {
            let (x, y) = (&a.counts, &b.counts);
            (y.visitors, y.pageviews, y.events, y.visits)
                .cmp(&(x.visitors, x.pageviews, x.events, x.visits))
                .then(a.value.cmp(&b.value))
        });
        rows.truncate(limit);
        rows
    }

    pub fn total(&self) -> Counts {
        self.sums(Group::Total, 1)
            .into_iter()
            .next()
            .map(|r| r.counts)
            .unwrap_or_default()
    }
}
