//! Reading rollups back from ClickHouse behind the [`RollupStore`] trait, for code that
//! is not async (the CLI's `report --source clickhouse`): each call runs on a runtime
//! of the reader's own. Not for use inside the server's runtime.

use super::{ClickHouse, SumRow};
use crate::config::StoreConfig;
use crate::model::SiteId;
use crate::store::{Counts, Dim, Result, RollupStore, RollupSum, StoreError};

pub struct ClickHouseRollups {
    ch: ClickHouse,
    rt: tokio::runtime::Runtime,
}

impl ClickHouseRollups {
    pub fn new(c: &StoreConfig) -> std::io::Result<ClickHouseRollups> {
        Ok(ClickHouseRollups {
            ch: ClickHouse::new(c),
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
        })
    }
}

fn counts(s: &[i64; 9]) -> Counts {
    Counts::from_array(*s)
}

fn remote(e: super::ChError) -> StoreError {
    StoreError::Conflict(format!("reading rollups from ClickHouse: {e}"))
}

impl RollupStore for ClickHouseRollups {
    fn rollup_sums(
        &self,
        site_id: SiteId,
        dim: Dim,
        from_hour: i64,
        to_hour: i64,
        limit: usize,
    ) -> Result<Vec<RollupSum>> {
        let rows = self
            .rt
            .block_on(
                self.ch
                    .rollup_sums(site_id.0, dim as i64, from_hour, to_hour, limit),
            )
            .map_err(remote)?;
        Ok(rows
            .into_iter()
            .map(|r: SumRow| RollupSum {
                counts: counts(&r.sums),
                value: r.value,
            })
            .collect())
    }

    fn rollup_value(
        &self,
        site_id: SiteId,
        dim: Dim,
        value: &str,
        from_hour: i64,
        to_hour: i64,
    ) -> Result<Counts> {
        let row = self
            .rt
            .block_on(
                self.ch
                    .rollup_value(site_id.0, dim as i64, value, from_hour, to_hour),
            )
            .map_err(remote)?;
        Ok(row.map(|r| counts(&r.sums)).unwrap_or_default())
    }

    fn rollup_series(
        &self,
        site_id: SiteId,
        from_hour: i64,
        to_hour: i64,
        bucket_hours: i64,
    ) -> Result<Vec<(i64, Counts)>> {
        let rows = self
            .rt
            .block_on(
                self.ch
                    .rollup_series(site_id.0, from_hour, to_hour, bucket_hours),
            )
            .map_err(remote)?;
        rows.into_iter()
            .map(|r| {
                let bucket = r.value.parse::<i64>().map_err(|e| {
                    StoreError::Conflict(format!("ClickHouse bucket {:?}: {e}", r.value))
                })?;
                Ok((bucket, counts(&r.sums)))
            })
            .collect()
    }
}
