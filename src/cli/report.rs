//! `pixeltrack report`: a site's traffic for a date range (totals, top lists, goals
//! and conversions) as text, CSV or JSON; with `--campaign`, a campaign's report
//! instead (`campaign_report`).

use std::fmt::Write as _;
use std::io::Write;

use super::args::{Ctx, Days, ReadFrom, SiteOrOnly};
use super::output::{self, money, pct, table_of, term_cell, write_csv_row};
use crate::report::ads::{ConversionSummary, GoalRow};
use crate::report::{self, fmt_duration};

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    site: SiteOrOnly,
    /// Report a campaign (email and ads) instead of a site.
    #[arg(long, conflicts_with = "site")]
    campaign: Option<i64>,
    /// With --campaign: per-recipient activity (first and last open, opens, clicks).
    #[arg(long, requires = "campaign")]
    recipients: bool,
    #[command(flatten)]
    days: Days,
    /// Rows per top list.
    #[arg(long, default_value_t = 10)]
    limit: usize,
    /// Only traffic matching this, e.g. page==/pricing, source!=Google, utm_campaign~spring
    /// (repeatable; all must match).
    #[arg(long = "filter", conflicts_with = "campaign")]
    filters: Vec<String>,
    /// Print CSV (one row per breakdown value).
    #[arg(long, conflicts_with = "json")]
    csv: bool,
    #[command(flatten)]
    source: ReadFrom,
}

impl ReportArgs {
    pub fn run(&self, ctx: &Ctx) -> anyhow::Result<()> {
        let (rt, store) = ctx.open()?;
        let store = self.source.apply(&rt, store)?;
        if let Some(id) = self.campaign {
            return super::campaign_report::show(&rt, &store, ctx, id, self.recipients, self.csv);
        }
        let site = self.site.find(&store)?;
        let range = self.days.range(ctx.now(), 29)?;
        let model = report::ads::Model::from_config(&rt.config.ads);
        let q = report::Query {
            range,
            filters: self
                .filters
                .iter()
                .map(|f| crate::store::Filter::parse(f).map_err(anyhow::Error::msg))
                .collect::<anyhow::Result<_>>()?,
        };
        let r = report::site_report(&store, &site, &q, self.limit, model, ctx.now())?;
        let mut out = std::io::stdout().lock();
        if ctx.json {
            serde_json::to_writer_pretty(&mut out, &r)?;
            writeln!(out)?;
        } else if self.csv {
            write_report_csv(&mut out, &r)?;
        } else {
            out.write_all(render_report(&r).as_bytes())?;
            out.write_all(render_site(&r.goals, &r.conversions).as_bytes())?;
        }
        Ok(())
    }
}

fn render_report(r: &report::SiteReport) -> String {
    let o = &r.overview;
    let mut out = format!(
        "{} — {} to {} (UTC)\n\nvisitors {}   visits {}   pageviews {}   bounce rate {:.1}%   visit duration {}\n",
        output::term_cell(&r.site, 80),
        r.from,
        r.to,
        o.visitors,
        o.visits,
        o.pageviews,
        o.bounce_rate,
        fmt_duration(o.visit_duration)
    );
    if o.events > 0 {
        out.push_str(&format!("custom events {}\n", o.events));
    }
    if let (Some(depth), Some(time)) = (o.scroll_depth, o.engagement_time) {
        out.push_str(&format!(
            "average scroll depth {depth:.0}%   engagement time {} per page view\n",
            fmt_duration(time)
        ));
    }
    if o.bot_events > 0 {
        out.push_str(&format!(
            "machine traffic (bots, crawlers, tools; not counted above): {} events\n",
            o.bot_events
        ));
    }
    for b in &r.breakdowns {
        if b.rows.is_empty() {
            continue;
        }
        let dim = crate::store::Dim::parse(b.dimension).unwrap_or(crate::store::Dim::Total);
        let title = dim.title();
        // Which counters a breakdown shows: visit-level dimensions count visits,
        // event-level ones events, pages visitors and pageviews.
        type Col = (&'static str, fn(&report::Row) -> i64);
        let cols: &[Col] = match b.dimension {
            "bot" | "bot_source" => &[("events", |r| r.events)],
            "event" | "event_prop" | "outbound" | "download" => {
                &[("visitors", |r| r.visitors), ("events", |r| r.events)]
            }
            // Page views by page or title: a view belongs to no visit of its own.
            "page" | "title" | "screen" => {
                &[("visitors", |r| r.visitors), ("pageviews", |r| r.pageviews)]
            }
            "entry_page" | "exit_page" => &[("visits", |r| r.visits)],
            _ => &[
                ("visitors", |r| r.visitors),
                ("visits", |r| r.visits),
                ("pageviews", |r| r.pageviews),
            ],
        };
        let mut header = vec![b.dimension];
        header.extend(cols.iter().map(|(name, _)| *name));
        // Pages measured by the JS tracker also show scroll depth and engagement time.
        let engagement = b.dimension == "page" && b.rows.iter().any(|r| r.scroll_depth.is_some());
        if engagement {
            header.extend(["scroll", "time"]);
        }
        let opt = |v: Option<f64>, unit: &str| {
            v.map(|v| format!("{v:.0}{unit}"))
                .unwrap_or_else(|| "-".into())
        };
        let rows: Vec<Vec<String>> = b
            .rows
            .iter()
            .map(|row| {
                let mut cells = vec![display_value(dim, &row.value, 60)];
                cells.extend(cols.iter().map(|(_, get)| get(row).to_string()));
                if engagement {
                    cells.push(opt(row.scroll_depth, "%"));
                    cells.push(opt(row.engagement_time, "s"));
                }
                cells
            })
            .collect();
        out.push_str(&format!("\n{title}\n"));
        out.push_str(&output::table(&header, &rows));
    }
    if r.breakdowns.iter().all(|b| b.rows.is_empty()) {
        out.push_str("\nNo traffic in this range yet.\n");
    }
    out
}

fn display_value(dim: crate::store::Dim, v: &str, max: usize) -> String {
    if v.is_empty() {
        dim.empty_label().into()
    } else {
        output::term_cell(v, max)
    }
}

fn write_report_csv(out: &mut impl Write, r: &report::SiteReport) -> std::io::Result<()> {
    write_csv_row(
        out,
        &[
            "dimension",
            "value",
            "visitors",
            "visits",
            "pageviews",
            "events",
        ]
        .map(String::from),
    )?;
    let o = &r.overview;
    write_csv_row(
        out,
        &[
            "total".into(),
            String::new(),
            o.visitors.to_string(),
            o.visits.to_string(),
            o.pageviews.to_string(),
            o.events.to_string(),
        ],
    )?;
    for b in &r.breakdowns {
        for row in &b.rows {
            write_csv_row(
                out,
                &[
                    b.dimension.to_string(),
                    row.value.clone(),
                    row.visitors.to_string(),
                    row.visits.to_string(),
                    row.pageviews.to_string(),
                    row.events.to_string(),
                ],
            )?;
        }
    }
    Ok(())
}

/// Goals and conversions of a site report, as text.
pub fn render_site(goals: &[GoalRow], c: &ConversionSummary) -> String {
    let mut s = String::new();
    if !goals.is_empty() {
        s.push_str("\nGoals\n");
        let header = ["goal", "pattern", "completions", "visitors", "conv. rate"];
        s.push_str(&table_of(&header, goals, |g| {
            vec![
                term_cell(&g.name, 40),
                term_cell(&g.pattern, 60),
                g.completions.to_string(),
                g.visitors.to_string(),
                pct(g.conversion_rate),
            ]
        }));
    }
    if c.conversions > 0 {
        let _ = writeln!(
            s,
            "\nConversions {}   revenue {}   average order {}   unattributed {}",
            c.conversions,
            money(&c.revenue),
            money(&c.average_order_value),
            c.unattributed
        );
        if !c.by_campaign.is_empty() {
            let header = ["campaign", "id", "channel", "conversions", "revenue"];
            s.push_str(&table_of(&header, &c.by_campaign, |k| {
                vec![
                    term_cell(&k.campaign_name, 40),
                    k.campaign_id.to_string(),
                    k.channel.into(),
                    k.conversions.to_string(),
                    money(&k.revenue),
                ]
            }));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Dim;

    /// An empty value says what it means for its dimension, the same words as the
    /// dashboard's (`Dim::empty_label`).
    #[test]
    fn an_empty_value_is_named_for_its_dimension() {
        assert_eq!(display_value(Dim::Source, "", 60), "(direct)");
        assert_eq!(display_value(Dim::Country, "", 60), "(unknown)");
        assert_eq!(display_value(Dim::Region, "", 60), "(unknown)");
        assert_eq!(display_value(Dim::City, "", 60), "(unknown)");
        // A city name from the database is shown inert like any value.
        assert_eq!(
            display_value(Dim::City, "Nice\u{1b}[2J", 60),
            "Nice\u{fffd}[2J"
        );
        assert_eq!(display_value(Dim::UtmCampaign, "", 60), "(none)");
        assert_eq!(display_value(Dim::Source, "news", 60), "news");
    }
}
