//! `link`, `goal`, `funnel`, `campaign cost` and the ads part of the reports: the
//! advertiser's side of the CLI.

use std::fmt::Write as _;

use anyhow::{bail, Context};
use serde_json::json;

use super::output::{table, term_cell};
use super::{parse_range, pick_site};
use crate::clock::Clock;
use crate::config::Runtime;
use crate::enrich::money;
use crate::report::ads::{self, AdLine, AdReport, ConversionSummary, GoalRow, Money, Within};
use crate::store::{Pattern, PatternKind, SqliteStore, Store};

pub struct LinkArgs<'a> {
    pub site: &'a str,
    pub campaign: i64,
    pub ad: Option<&'a str>,
    pub placement: Option<&'a str>,
    pub url: &'a str,
}

/// A signed ad link: `<public_url>/c/<token>`.
pub fn link_create(
    rt: &Runtime,
    store: &SqliteStore,
    a: LinkArgs<'_>,
    json: bool,
) -> anyhow::Result<()> {
    let site = pick_site(store, Some(a.site))?;
    let (campaign, ring) = super::email::tagger_parts(store, a.campaign)?;
    if campaign.site_id != site.id.0 {
        bail!(
            "campaign {} belongs to another site: list this site's with 'pixeltrack campaign list --site {}'",
            campaign.id,
            site.key
        );
    }
    let (link, url) = crate::tag::ad_link(
        &ring,
        &rt.public_url,
        site.id.0,
        campaign.id,
        a.ad,
        a.placement,
        a.url,
    )?;
    if json {
        println!(
            "{}",
            json!({ "url": link, "destination": url, "campaign": campaign.id, "ad": a.ad, "placement": a.placement })
        );
    } else {
        println!("{link}");
        eprintln!(
            "Clicks redirect to {} with ?{}=<click id> appended; put the conversion pixel on the thank-you page.",
            term_cell(&url, 100),
            rt.config.ads.click_param
        );
    }
    Ok(())
}

/// `campaign cost <id> --amount 250.00 --currency EUR`.
pub fn campaign_cost(
    store: &SqliteStore,
    id: i64,
    amount: Option<&str>,
    currency: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let c = super::email::campaign_by_id(store, id)?;
    let cost = match (amount, currency) {
        (None, None) => None,
        (Some(a), Some(cur)) => {
            let (code, exp) = money::currency(cur).with_context(|| {
                format!(
                    "{:?} is not an ISO 4217 currency such as EUR or USD",
                    term_cell(cur, 20)
                )
            })?;
            let minor = money::parse_amount(a, exp)
                .map_err(|e| anyhow::anyhow!("--amount {:?}: {e}", term_cell(a, 40)))?;
            Some((minor, code))
        }
        _ => bail!("give both --amount and --currency (or neither, to clear the cost)"),
    };
    store.set_campaign_cost(c.id, cost)?;
    let shown = cost.map(|(m, cur)| Money::new(m, cur));
    if json {
        println!("{}", json!({ "campaign": c.id, "cost": shown }));
    } else {
        match shown {
            Some(m) => println!("Campaign {} cost {} {}.", c.id, m.amount, m.currency),
            None => println!("Campaign {} has no cost recorded now.", c.id),
        }
    }
    Ok(())
}

pub fn goal_add(
    store: &SqliteStore,
    site: &str,
    event: Option<&str>,
    page: Option<&str>,
    name: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let site = pick_site(store, Some(site))?;
    let pattern = match (event, page) {
        (Some(e), None) => Pattern::new(PatternKind::Event, e),
        (None, Some(p)) => Pattern::new(PatternKind::Page, p),
        _ => bail!("give either --event NAME or --page PATH (`*` matches anything)"),
    }
    .context("a goal pattern is 1-256 characters without control characters; a page starts with / (or *)")?;
    let name = name.map(str::trim).unwrap_or(&pattern.glob).to_owned();
    if !crate::model::valid_name(&name) {
        bail!("a goal name is 1 to 200 characters without control characters");
    }
    let g = store.add_goal(site.id.0, &name, &pattern, Clock::System.now_ms())?;
    if json {
        println!(
            "{}",
            json!({ "id": g.id, "site": site.key.as_str(), "name": g.name, "pattern": g.pattern.to_string() })
        );
    } else {
        println!(
            "Goal {:?} ({}) added to {}; it counts past events too.",
            term_cell(&g.name, 80),
            g.pattern,
            site.domain
        );
    }
    Ok(())
}

pub fn goal_list(store: &SqliteStore, site: Option<&str>, json: bool) -> anyhow::Result<()> {
    let site = pick_site(store, site)?;
    let goals = store.goals(site.id.0)?;
    if json {
        let v: Vec<_> = goals
            .iter()
            .map(|g| json!({ "id": g.id, "name": g.name, "kind": g.pattern.kind.as_str(), "pattern": g.pattern.glob }))
            .collect();
        println!("{}", serde_json::Value::Array(v));
    } else if goals.is_empty() {
        println!("No goals for {}: add one with 'pixeltrack goal add --site {} --event signup' or '--page /thank-you*'.", site.domain, site.key);
    } else {
        let rows: Vec<Vec<String>> = goals
            .iter()
            .map(|g| {
                vec![
                    term_cell(&g.name, 60),
                    g.pattern.kind.as_str().into(),
                    term_cell(&g.pattern.glob, 80),
                ]
            })
            .collect();
        print!("{}", table(&["name", "kind", "pattern"], &rows));
    }
    Ok(())
}

pub fn goal_remove(store: &SqliteStore, site: &str, name: &str, json: bool) -> anyhow::Result<()> {
    let site = pick_site(store, Some(site))?;
    if !store.remove_goal(site.id.0, name)? {
        bail!(
            "no goal {:?} on {}: see 'pixeltrack goal list --site {}'",
            term_cell(name, 80),
            site.domain,
            site.key
        );
    }
    if json {
        println!("{}", json!({ "removed": name }));
    } else {
        println!("Goal {:?} removed.", term_cell(name, 80));
    }
    Ok(())
}

pub struct FunnelArgs<'a> {
    pub site: Option<&'a str>,
    pub steps: &'a [String],
    pub within: &'a str,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
}

pub fn funnel(store: &SqliteStore, a: FunnelArgs<'_>, json: bool) -> anyhow::Result<()> {
    let site = pick_site(store, a.site)?;
    if a.steps.len() < 2 || a.steps.len() > 32 {
        bail!(
            "a funnel has 2 to 32 --step (a path such as /pricing, page:/blog/*, or event:signup)"
        );
    }
    let steps = a
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
    let within = Within::parse(a.within)
        .context("--within is 'visit' or a number of days such as 7d (1-365)")?;
    let range = parse_range(a.from, a.to, 29)?;
    let r = ads::funnel(store, &site, range, &steps, within)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    let unit = if within == Within::Visit {
        "visits"
    } else {
        "visitors"
    };
    let rows: Vec<Vec<String>> = r
        .iter()
        .map(|s| {
            vec![
                term_cell(&s.step, 60),
                s.reached.to_string(),
                s.dropped.to_string(),
                pct(s.from_previous),
                pct(s.from_start),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &["step", unit, "dropped", "from previous", "from start"],
            &rows
        )
    );
    Ok(())
}

fn pct(p: Option<f64>) -> String {
    p.map(|p| format!("{p:.1}%")).unwrap_or_else(|| "-".into())
}

fn amounts(m: &[Money]) -> String {
    Money::list(m, ", ", "-")
}

fn ad_row(label: &str, l: &AdLine) -> Vec<String> {
    vec![
        term_cell(label, 40),
        l.impressions.to_string(),
        l.clicks.to_string(),
        pct(l.ctr),
        l.conversions.to_string(),
        pct(l.conversion_rate),
        amounts(&l.revenue),
        amounts(&l.average_order_value),
    ]
}

/// The ads section of a campaign report, as text.
pub fn render_ads(r: &AdReport) -> String {
    let t = &r.total;
    if t.impressions + t.bot_impressions + t.clicks + t.bot_clicks + t.conversions == 0
        && r.cost.is_none()
    {
        return String::new();
    }
    let mut s = format!(
        "\nAds ({} attribution, {}-day lookback; bots not counted: {} impressions, {} clicks)\n",
        r.attribution.replace('_', "-"),
        r.lookback_days,
        t.bot_impressions,
        t.bot_clicks
    );
    let mut rows = vec![ad_row("all ads", t)];
    for l in &r.ads {
        rows.push(ad_row(
            if l.ad.is_empty() { "(no ad id)" } else { &l.ad },
            l,
        ));
    }
    s.push_str(&table(
        &[
            "ad",
            "impressions",
            "clicks",
            "CTR",
            "conversions",
            "conv. rate",
            "revenue",
            "avg order",
        ],
        &rows,
    ));
    if r.email_conversions > 0 {
        let _ = writeln!(
            s,
            "conversions credited to this campaign's email clicks: {}",
            r.email_conversions
        );
    }
    if let Some(c) = &r.cost {
        let _ = writeln!(
            s,
            "cost {} {}   cost per acquisition {}",
            c.amount,
            c.currency,
            r.cost_per_acquisition
                .as_ref()
                .map(|m| format!("{} {}", m.amount, m.currency))
                .unwrap_or_else(|| "- (no conversions yet)".into())
        );
    }
    s
}

/// Goals and conversions of a site report, as text.
pub fn render_site(goals: &[GoalRow], c: &ConversionSummary) -> String {
    let mut s = String::new();
    if !goals.is_empty() {
        s.push_str("\nGoals\n");
        let rows: Vec<Vec<String>> = goals
            .iter()
            .map(|g| {
                vec![
                    term_cell(&g.name, 40),
                    term_cell(&g.pattern, 60),
                    g.completions.to_string(),
                    g.visitors.to_string(),
                    pct(g.conversion_rate),
                ]
            })
            .collect();
        s.push_str(&table(
            &["goal", "pattern", "completions", "visitors", "conv. rate"],
            &rows,
        ));
    }
    if c.conversions > 0 {
        let _ = writeln!(
            s,
            "\nConversions {}   revenue {}   average order {}   unattributed {}",
            c.conversions,
            amounts(&c.revenue),
            amounts(&c.average_order_value),
            c.unattributed
        );
        let rows: Vec<Vec<String>> = c
            .by_campaign
            .iter()
            .map(|k| {
                vec![
                    k.campaign_id.to_string(),
                    k.channel.into(),
                    k.conversions.to_string(),
                    amounts(&k.revenue),
                ]
            })
            .collect();
        if !rows.is_empty() {
            s.push_str(&table(
                &["campaign", "channel", "conversions", "revenue"],
                &rows,
            ));
        }
    }
    s
}
