//! `pixeltrack export`: a site's raw events as NDJSON or CSV on standard output,
//! streamed row by row; all of them unless `--from`/`--to` narrow it.

use clap::ValueEnum;

use super::args::{Ctx, Days, ReadFrom, SiteArg};
use crate::report::export::{write, Format};

#[derive(clap::Args, Debug)]
#[command(
    mut_arg("from", |a| a.help("First day, YYYY-MM-DD (UTC)")),
    mut_arg("to", |a| a.help("Last day, YYYY-MM-DD (UTC), included"))
)]
pub struct ExportArgs {
    #[command(flatten)]
    site: SiteArg,
    #[arg(long, value_enum, default_value_t = ExportFormat::Ndjson)]
    format: ExportFormat,
    #[command(flatten)]
    days: Days,
    #[command(flatten)]
    source: ReadFrom,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Ndjson,
    Csv,
}

impl ExportArgs {
    pub fn run(&self, ctx: &Ctx) -> anyhow::Result<()> {
        let (rt, store) = ctx.open()?;
        let store = self.source.apply(&rt, store)?;
        let site = self.site.find(&store)?;
        let (from_ms, to_ms) = match (&self.days.from, &self.days.to) {
            (None, None) => (i64::MIN, i64::MAX),
            _ => self.days.range(ctx.now(), 36_500)?.millis(),
        };
        let format = match self.format {
            ExportFormat::Ndjson => Format::Ndjson,
            ExportFormat::Csv => Format::Csv,
        };
        let n = write(
            &store,
            &site,
            from_ms,
            to_ms,
            format,
            &mut std::io::stdout().lock(),
        )?;
        eprintln!("exported {n} events");
        Ok(())
    }
}
