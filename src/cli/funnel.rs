//! `pixeltrack funnel`: how far visits (or visitors, within a number of days) get
//! through ordered steps, with the drop-off per step.

use anyhow::{bail, Context};

use super::args::{Ctx, Days, ReadFrom, SiteOrOnly};
use super::output::{pct, table_of, term_cell};
use crate::report::ads::{self, Within};
use crate::store::Pattern;

#[derive(clap::Args, Debug)]
pub struct FunnelArgs {
    #[command(flatten)]
    site: SiteOrOnly,
    /// A step, in order: a path (/pricing), page:/blog/* or event:signup. `*` matches anything.
    #[arg(long = "step", required = true)]
    steps: Vec<String>,
    /// `visit` (all steps in one visit) or days from the first step, e.g. 7d.
    #[arg(long, default_value = "visit")]
    within: String,
    #[command(flatten)]
    days: Days,
    #[command(flatten)]
    source: ReadFrom,
}

impl FunnelArgs {
    pub fn run(&self, ctx: &Ctx) -> anyhow::Result<()> {
        let (rt, store) = ctx.open()?;
        let store = self.source.apply(&rt, store)?;
        let site = self.site.find(&store)?;
        if self.steps.len() < 2 || self.steps.len() > 32 {
            bail!(
                "a funnel has 2 to 32 --step (a path such as /pricing, page:/blog/*, or event:signup)"
            );
        }
        let steps = self
            .steps
            .iter()
            .map(|s| {
                Pattern::parse(s).with_context(|| {
                    format!(
                        "step {:?}: use a path such as /pricing, page:/blog/*, or event:signup",
                        term_cell(s, 80)
                    )
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let within = Within::parse(&self.within)
            .context("--within is 'visit' or a number of days such as 7d (1-365)")?;
        let range = self.days.range(ctx.now(), 29)?;
        let r = ads::funnel(&store, &site, range, &steps, within)?;
        if ctx.json {
            println!("{}", serde_json::to_string_pretty(&r)?);
            return Ok(());
        }
        let unit = if within == Within::Visit {
            "visits"
        } else {
            "visitors"
        };
        let header = ["step", unit, "dropped", "from previous", "from start"];
        print!(
            "{}",
            table_of(&header, &r, |s| {
                vec![
                    term_cell(&s.step, 60),
                    s.reached.to_string(),
                    s.dropped.to_string(),
                    pct(s.from_previous),
                    pct(s.from_start),
                ]
            })
        );
        Ok(())
    }
}
