//! `pixeltrack export`: raw events as NDJSON or CSV, streamed row by row.

use std::io::Write;

use super::output::csv_line;
use super::ExportFormat;
use crate::model::Site;
use crate::report::export::{cells, columns, json};
use crate::store::{SqliteStore, Store};

/// Writes every event of `site` in `[from_ms, to_ms)`; returns how many.
pub fn export(
    store: &SqliteStore,
    site: &Site,
    from_ms: i64,
    to_ms: i64,
    format: ExportFormat,
    out: &mut impl Write,
) -> anyhow::Result<u64> {
    let mut out = std::io::BufWriter::new(out);
    if format == ExportFormat::Csv {
        out.write_all(csv_line(&columns()).as_bytes())?;
    }
    let mut write_err = None;
    let n = store.for_each_event(site.id.0, from_ms, to_ms, &mut |e| {
        let r = match format {
            ExportFormat::Ndjson => serde_json::to_writer(&mut out, &json(&e))
                .map_err(std::io::Error::from)
                .and_then(|_| out.write_all(b"\n")),
            ExportFormat::Csv => out.write_all(csv_line(&cells(&e)).as_bytes()),
        };
        if let Err(e) = &r {
            write_err = Some(std::io::Error::new(e.kind(), e.to_string()));
        }
        r
    })?;
    if let Some(e) = write_err {
        return Err(e.into());
    }
    out.flush()?;
    Ok(n)
}
