//! `pixeltrack campaign`: email and ad campaigns: create, list, show the report, record
//! the cost (for cost per acquisition) and when a campaign was sent to how many (the
//! rates' denominator). Also the campaign lookups `email`, `link` and `consent` share.

use anyhow::{bail, Context};
use serde_json::json;

use super::args::{site_id, Ctx, SiteArg};
use super::output::{print_list, term_cell};
use crate::clock::Millis;
use crate::enrich::money;
use crate::model::{Campaign, SiteId};
use crate::report::ads::Money;
use crate::store::{CampaignStore, Store, TokenStore};

#[derive(clap::Subcommand, Debug)]
pub enum CampaignCommand {
    /// Create a campaign.
    Create {
        #[command(flatten)]
        site: SiteArg,
        #[arg(long)]
        name: String,
    },
    /// List campaigns.
    List {
        /// Only this site's campaigns (key or domain).
        #[arg(long)]
        site: Option<String>,
    },
    /// Show a campaign's report (same as `report --campaign ID`).
    Show {
        id: i64,
        /// Per-recipient activity.
        #[arg(long)]
        recipients: bool,
    },
    /// Record what a campaign cost, for cost per acquisition (no flags: clear it).
    Cost {
        id: i64,
        /// A decimal amount in the currency, e.g. 250.00.
        #[arg(long)]
        amount: Option<String>,
        /// An ISO 4217 code, e.g. EUR.
        #[arg(long)]
        currency: Option<String>,
    },
    /// Record that a campaign was sent: when, and to how many (the rates' denominator).
    Sent {
        id: i64,
        /// Emails delivered.
        #[arg(long)]
        count: Option<i64>,
        /// When: `now` (default), 2026-11-29 or 2026-11-29T10:00:00Z.
        #[arg(long)]
        at: Option<String>,
    },
}

impl CampaignCommand {
    pub fn run(&self, ctx: &Ctx) -> anyhow::Result<()> {
        let (rt, store) = ctx.open()?;
        match self {
            CampaignCommand::Create { site, name } => create(&store, ctx, site, name),
            CampaignCommand::List { site } => list(&store, ctx, site.as_deref()),
            CampaignCommand::Show { id, recipients } => {
                super::campaign_report::show(&rt, &store, ctx, *id, *recipients, false)
            }
            CampaignCommand::Cost {
                id,
                amount,
                currency,
            } => cost(&store, ctx, *id, amount.as_deref(), currency.as_deref()),
            CampaignCommand::Sent { id, count, at } => {
                sent(&store, ctx, *id, *count, at.as_deref())
            }
        }
    }
}

/// `now`, a day (midnight UTC) or an RFC 3339 time.
fn parse_time(s: &str, now: Millis) -> anyhow::Result<Millis> {
    if s == "now" {
        return Ok(now);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    if let Some(day) = crate::report::DateRange::parse_date(s) {
        return Ok(day * crate::clock::DAY_MS);
    }
    bail!("{s:?} is not a time: use 'now', 2026-11-29 or 2026-11-29T10:00:00Z")
}

pub fn fmt_time(ms: Option<Millis>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_else(|| "-".into())
}

pub fn campaign_by_id(store: &(impl CampaignStore + ?Sized), id: i64) -> anyhow::Result<Campaign> {
    store
        .campaign(id)?
        .with_context(|| format!("no campaign {id}: list them with 'pixeltrack campaign list'"))
}

/// A campaign and the keys that sign its links (email tagging, ad links).
pub fn with_keyring(
    store: &(impl CampaignStore + TokenStore),
    ctx: &Ctx,
    campaign: i64,
) -> anyhow::Result<(Campaign, crate::token::Keyring)> {
    let c = campaign_by_id(store, campaign)?;
    let ring = crate::token::Keyring::from_masters(store.token_keys(ctx.now())?);
    Ok((c, ring))
}

/// A campaign as JSON: ids, and beside them the names a person reads.
fn campaign_json(c: &Campaign, sites: &[crate::model::Site]) -> serde_json::Value {
    let site = sites.iter().find(|s| s.id.0 == c.site_id);
    json!({
        "id": c.id, "site_id": c.site_id, "name": c.name,
        "site_key": site.map(|s| s.key.as_str()), "site_name": site.map(|s| s.name.as_str()),
        "sent_at": c.sent_ms.map(|m| fmt_time(Some(m))), "delivered": c.delivered,
    })
}

fn create(store: &dyn Store, ctx: &Ctx, site: &SiteArg, name: &str) -> anyhow::Result<()> {
    let site = site.find(store)?;
    if !crate::model::valid_name(name) {
        bail!("a campaign name is 1 to 200 characters without control characters");
    }
    let name = name.trim();
    let c = store.add_campaign(site.id, name, ctx.now())?;
    if ctx.json {
        println!("{}", campaign_json(&c, std::slice::from_ref(&site)));
    } else {
        println!(
            "Created campaign {} ({}) for {}.",
            c.id,
            term_cell(&c.name, 80),
            site.domain
        );
        println!("Tag an email:  pixeltrack email tag --campaign {} --recipient <id> < email.html > tagged.html", c.id);
        println!(
            "When sent:     pixeltrack campaign sent {} --count <delivered>",
            c.id
        );
        println!(
            "For ads:       pixeltrack link create --site {} --campaign {} --ad <ad> <landing URL>",
            site.key, c.id
        );
    }
    Ok(())
}

fn list(store: &dyn Store, ctx: &Ctx, site: Option<&str>) -> anyhow::Result<()> {
    let list = store.campaigns(site_id(store, site)?.map(SiteId))?;
    let sites = store.sites()?;
    let site_name = |c: &Campaign| {
        sites
            .iter()
            .find(|s| s.id.0 == c.site_id)
            .map(|s| term_cell(&s.name, 30))
            .unwrap_or_else(|| c.site_id.to_string())
    };
    print_list(
        ctx.json,
        &list,
        |c| campaign_json(c, &sites),
        &["id", "name", "site", "sent", "delivered"],
        |c| {
            vec![
                c.id.to_string(),
                term_cell(&c.name, 50),
                site_name(c),
                fmt_time(c.sent_ms),
                c.delivered
                    .map(|d| d.to_string())
                    .unwrap_or_else(|| "-".into()),
            ]
        },
        Some("No campaigns yet: create one with 'pixeltrack campaign create --site <site> --name <name>'."),
    );
    Ok(())
}

fn sent(
    store: &dyn Store,
    ctx: &Ctx,
    id: i64,
    count: Option<i64>,
    at: Option<&str>,
) -> anyhow::Result<()> {
    campaign_by_id(store, id)?;
    if count.is_some_and(|c| c < 0) {
        bail!("--count cannot be negative");
    }
    let at = parse_time(at.unwrap_or("now"), ctx.now())?;
    store.set_campaign_sent(id, count, Some(at))?;
    let c = campaign_by_id(store, id)?;
    if ctx.json {
        println!("{}", campaign_json(&c, &store.sites()?));
    } else {
        println!(
            "Campaign {} sent at {} to {} recipients.",
            c.id,
            fmt_time(c.sent_ms),
            c.delivered
                .map(|d| d.to_string())
                .unwrap_or_else(|| "an unknown number of".into())
        );
    }
    Ok(())
}

/// `campaign cost <id> --amount 250.00 --currency EUR`.
fn cost(
    store: &dyn CampaignStore,
    ctx: &Ctx,
    id: i64,
    amount: Option<&str>,
    currency: Option<&str>,
) -> anyhow::Result<()> {
    let c = campaign_by_id(store, id)?;
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
    if ctx.json {
        println!("{}", json!({ "campaign": c.id, "cost": shown }));
    } else {
        match shown {
            Some(m) => println!("Campaign {} cost {} {}.", c.id, m.amount, m.currency),
            None => println!("Campaign {} has no cost recorded now.", c.id),
        }
    }
    Ok(())
}
