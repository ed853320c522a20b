//! `pixeltrack export`: raw events as NDJSON or CSV, streamed row by row.

use std::io::Write;

use super::ExportFormat;
use crate::model::Site;
use crate::report::export::{write, Format};
use crate::store::SqliteStore;

/// Writes every event of `site` in `[from_ms, to_ms)`; returns how many.
pub fn export(
    store: &SqliteStore,
    site: &Site,
    from_ms: i64,
    to_ms: i64,
    format: ExportFormat,
    out: &mut impl Write,
) -> anyhow::Result<u64> {
    let format = match format {
        ExportFormat::Ndjson => Format::Ndjson,
        ExportFormat::Csv => Format::Csv,
    };
    Ok(write(store, site, from_ms, to_ms, format, out)?)
}
