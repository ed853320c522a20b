//! `pixeltrack site`: add (printing the key and the pixel), list, change privacy
//! settings and allowed hosts, print the tracker snippet, remove with all data.

use anyhow::{bail, Context};
use serde_json::json;

use super::args::{pick_site, Ctx};
use super::output;
use crate::config::Runtime;
use crate::model::{PrivacyMode, Site, SiteKey, WithoutConsent};
use crate::store::{SiteStore, Store};

#[derive(clap::Subcommand, Debug)]
pub enum SiteCommand {
    /// Add a site and print its key and pixel snippet.
    Add {
        /// The site's domain, e.g. example.com.
        domain: String,
        /// A display name (default: the domain).
        #[arg(long)]
        name: Option<String>,
    },
    /// List sites.
    List,
    /// Change a site's privacy settings and allowed hosts.
    Set(SiteSettings),
    /// Print the tracker snippet (script plus <noscript> pixel) for a site's pages.
    Snippet {
        /// Site key or domain.
        site: String,
    },
    /// Remove a site and all of its data.
    Remove {
        /// Site key or domain.
        site: String,
    },
}

#[derive(clap::Args, Debug)]
pub struct SiteSettings {
    /// Site key or domain.
    pub site: String,
    /// anonymous (default), consented, or off.
    #[arg(long)]
    pub privacy_mode: Option<String>,
    /// Honour Global Privacy Control (Sec-GPC: 1): on (default) or off.
    #[arg(long)]
    pub gpc: Option<OnOff>,
    /// Honour Do Not Track (DNT: 1): on or off (default).
    #[arg(long)]
    pub dnt: Option<OnOff>,
    /// A hit without permission for identifiers: aggregate (count anonymously) or drop.
    #[arg(long)]
    pub without_consent: Option<String>,
    /// Delete raw events older than this many days (`none`: keep).
    #[arg(long)]
    pub retention_days: Option<String>,
    /// Keep values that look like email addresses in URLs, titles and props.
    #[arg(long)]
    pub allow_emails: Option<OnOff>,
    /// Email tracking: full (opens and clicks per recipient) or deliverability (only the
    /// day of each recipient's last open, overwritten; no events).
    #[arg(long)]
    pub email_mode: Option<EmailMode>,
    /// More hostnames whose pages may send this site's tracker events, comma-separated
    /// (the domain and its subdomains always may); `none` clears the list.
    #[arg(long)]
    pub hosts: Option<String>,
    /// The `idsite` this site's Matomo trackers send (`/matomo.php`, `/piwik.php`):
    /// a positive number, or `none` to unmap it. See README "Migrating from Matomo or
    /// Plausible".
    #[arg(long, value_name = "N")]
    pub matomo_id: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EmailMode {
    Full,
    Deliverability,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

impl OnOff {
    fn on(self) -> bool {
        self == OnOff::On
    }
}

impl SiteCommand {
    pub fn run(&self, ctx: &Ctx) -> anyhow::Result<()> {
        let (rt, store) = ctx.open()?;
        match self {
            SiteCommand::Add { domain, name } => add(&rt, &store, ctx, domain, name.as_deref()),
            SiteCommand::List => list(&store, ctx),
            SiteCommand::Set(a) => set(&store, a, ctx.json),
            SiteCommand::Snippet { site } => {
                let s = pick_site(&store, Some(site))?;
                let text = s.tracker_snippet(&rt.public_url);
                if ctx.json {
                    println!("{}", json!({"snippet": text}));
                } else {
                    println!("{text}");
                }
                Ok(())
            }
            SiteCommand::Remove { site } => {
                let s = pick_site(&store, Some(site))?;
                store.remove_site(&s.key)?;
                store.checkpoint()?;
                if ctx.json {
                    println!("{}", json!({"removed": s.key.as_str()}));
                } else {
                    println!("Removed {} ({}) and all of its data.", s.domain, s.key);
                }
                Ok(())
            }
        }
    }
}

/// The bare pixel, for pages without JavaScript and for emails and ads.
fn pixel(rt: &Runtime, site: &Site) -> String {
    format!(
        "<img src=\"{}/p.gif?s={}\" alt=\"\" width=\"1\" height=\"1\" style=\"position:absolute\" referrerpolicy=\"no-referrer-when-downgrade\">",
        rt.public_url,
        site.key
    )
}

fn add(
    rt: &Runtime,
    store: &dyn SiteStore,
    ctx: &Ctx,
    domain: &str,
    name: Option<&str>,
) -> anyhow::Result<()> {
    let (domain, name) =
        crate::model::new_site(domain, name).map_err(|e| anyhow::anyhow!("{domain:?}: {e}"))?;
    let site = store.add_site(&SiteKey::generate(), &domain, &name, ctx.now())?;
    if ctx.json {
        println!(
            "{}",
            json!({"key": site.key.as_str(), "domain": site.domain, "name": site.name, "snippet": pixel(rt, &site)})
        );
    } else {
        println!("Added {} — site key: {}", site.domain, site.key);
        println!();
        println!("Put this pixel on your pages (or use the URL in emails and ads):");
        println!("  {}", pixel(rt, &site));
    }
    Ok(())
}

fn list(store: &dyn Store, ctx: &Ctx) -> anyhow::Result<()> {
    let sites = store.sites()?;
    let events = |s: &Site| store.count_events(s.id).unwrap_or(0);
    output::print_list(
        ctx.json,
        &sites,
        |s| json!({"key": s.key.as_str(), "domain": s.domain, "name": s.name, "events": events(s), "matomo_id": s.matomo_id}),
        &["key", "domain", "name", "events", "matomo id"],
        |s| {
            vec![
                s.key.to_string(),
                output::term_cell(&s.domain, 60),
                output::term_cell(&s.name, 40),
                events(s).to_string(),
                s.matomo_id.map(|n| n.to_string()).unwrap_or_default(),
            ]
        },
        Some("No sites yet: add one with 'pixeltrack site add example.com'."),
    );
    Ok(())
}

/// `site set`: only the settings given change.
fn set(store: &dyn SiteStore, a: &SiteSettings, json: bool) -> anyhow::Result<()> {
    let site = pick_site(store, Some(&a.site))?;
    let mut p = site.privacy.clone();
    if let Some(m) = &a.privacy_mode {
        p.mode = PrivacyMode::parse(m)
            .with_context(|| format!("--privacy-mode {m:?}: use anonymous, consented or off"))?;
    }
    if let Some(v) = a.gpc {
        p.honour_gpc = v.on();
    }
    if let Some(v) = a.dnt {
        p.honour_dnt = v.on();
    }
    if let Some(w) = &a.without_consent {
        p.without_consent = WithoutConsent::parse(w)
            .with_context(|| format!("--without-consent {w:?}: use aggregate or drop"))?;
    }
    if let Some(r) = &a.retention_days {
        p.retention_days = match r.as_str() {
            "none" => None,
            n => match n.parse::<u32>() {
                Ok(d) if d >= 1 => Some(d),
                _ => bail!("--retention-days {n:?}: a number of days (1 or more) or none"),
            },
        };
    }
    if let Some(v) = a.allow_emails {
        p.allow_emails = v.on();
    }
    if let Some(m) = a.email_mode {
        p.deliverability_only = m == EmailMode::Deliverability;
    }
    // First: the one change that can conflict (another site's Matomo id).
    let mut matomo_id = site.matomo_id;
    if let Some(m) = &a.matomo_id {
        matomo_id = match m.as_str() {
            "none" => None,
            n => match n.parse::<i64>() {
                Ok(id) if id >= 1 => Some(id),
                _ => bail!("--matomo-id {n:?}: the site's Matomo idsite (1 or more), or none"),
            },
        };
        store.set_matomo_id(site.id, matomo_id)?;
    }
    store.set_privacy(site.id, &p)?;
    let mut hosts = site.hosts.clone();
    if let Some(h) = &a.hosts {
        hosts = Vec::new();
        for raw in h
            .split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty() && *x != "none")
        {
            hosts.push(
                crate::model::parse_domain(raw)
                    .with_context(|| format!("--hosts: {raw:?} is not a host name"))?,
            );
        }
        store.set_hosts(site.id, &hosts)?;
    }
    let out = json!({
        "site": site.domain, "privacy_mode": p.mode.as_str(), "gpc": p.honour_gpc, "dnt": p.honour_dnt,
        "without_consent": p.without_consent.as_str(), "retention_days": p.retention_days, "allow_emails": p.allow_emails,
        "email_mode": if p.deliverability_only { "deliverability" } else { "full" },
        "hosts": hosts, "matomo_id": matomo_id,
    });
    if json {
        println!("{out}");
    } else {
        println!("{}: {}", site.domain, serde_json::to_string_pretty(&out)?);
        println!("A running server applies this at once.");
    }
    Ok(())
}
