//! `site set`, `retention run`, `erase`, `subject-export`, `consent`, `privacy report`.

use std::io::Write;

use anyhow::{bail, Context};

use super::pick_site;
use crate::clock::Clock;
use crate::config::Runtime;
use crate::model::{PrivacyMode, WithoutConsent};
use crate::store::{SqliteStore, Store, Subject};

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

pub fn site_set(store: &SqliteStore, a: &SiteSettings, json: bool) -> anyhow::Result<()> {
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
    store.set_privacy(site.id.0, &p)?;
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
        store.set_hosts(site.id.0, &hosts)?;
    }
    let out = serde_json::json!({
        "site": site.domain, "privacy_mode": p.mode.as_str(), "gpc": p.honour_gpc, "dnt": p.honour_dnt,
        "without_consent": p.without_consent.as_str(), "retention_days": p.retention_days, "allow_emails": p.allow_emails,
        "email_mode": if p.deliverability_only { "deliverability" } else { "full" },
        "hosts": hosts,
    });
    if json {
        println!("{out}");
    } else {
        println!("{}: {}", site.domain, serde_json::to_string_pretty(&out)?);
        println!("A running server applies this within a minute.");
    }
    Ok(())
}

pub fn retention(store: &SqliteStore, json: bool) -> anyhow::Result<()> {
    let n = crate::store::run_retention(store, Clock::System.now_ms())?;
    if json {
        println!("{}", serde_json::json!({"deleted": n}));
    } else {
        println!("Deleted {n} events past their site's retention period.");
    }
    Ok(())
}

pub fn subject(
    store: &SqliteStore,
    recipient: Option<&str>,
    visitor: Option<i64>,
    site: Option<&str>,
) -> anyhow::Result<Subject> {
    match (recipient, visitor) {
        (Some(r), None) => {
            let site_id = match site {
                Some(s) => Some(pick_site(store, Some(s))?.id.0),
                None => None,
            };
            Ok(Subject::Recipient {
                site_id,
                recipient: r.to_owned(),
            })
        }
        (None, Some(v)) => Ok(Subject::Visitor(v)),
        _ => bail!("give exactly one of --recipient ID or --visitor ID"),
    }
}

pub fn erase(store: &SqliteStore, s: &Subject, json: bool) -> anyhow::Result<()> {
    let n = store.erase_subject(s)?;
    if json {
        println!("{}", serde_json::json!({"deleted": n}));
    } else {
        println!("Erased {n} rows; the database's write-ahead log was checkpointed. Backups made earlier still hold them.");
    }
    Ok(())
}

pub fn subject_export(store: &SqliteStore, s: &Subject) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for e in store.subject_events(s)? {
        serde_json::to_writer(&mut out, &crate::report::export::json(&e))?;
        out.write_all(b"\n")?;
    }
    if let Subject::Recipient { site_id, recipient } = s {
        for (site, day) in store.last_opens(recipient)? {
            if site_id.is_none_or(|only| only == site) {
                let date = crate::report::DateRange::date(day);
                serde_json::to_writer(
                    &mut out,
                    &serde_json::json!({"site_id": site, "recipient": recipient, "last_open_day": date}),
                )?;
                out.write_all(b"\n")?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

pub fn consent(
    store: &SqliteStore,
    granted: bool,
    recipient: &str,
    site: Option<&str>,
    campaign: Option<i64>,
    json: bool,
) -> anyhow::Result<()> {
    let (site_id, campaign_id) = match (site, campaign) {
        (_, Some(c)) => {
            let c = super::email::campaign_by_id(store, c)?;
            (c.site_id, c.id)
        }
        (Some(s), None) => (pick_site(store, Some(s))?.id.0, 0),
        (None, None) => bail!("give --site (every campaign of the site) or --campaign"),
    };
    store.set_consent(
        site_id,
        campaign_id,
        recipient,
        granted,
        Clock::System.now_ms(),
    )?;
    if json {
        println!(
            "{}",
            serde_json::json!({"recipient": recipient, "granted": granted})
        );
    } else if granted {
        println!("Consent recorded.");
    } else {
        println!("Consent withdrawn: from now on no open or click is recorded for this recipient (links keep working).");
    }
    Ok(())
}

pub fn report(rt: &Runtime, store: &SqliteStore) -> anyhow::Result<()> {
    print!(
        "{}",
        crate::report::privacy::statement(&rt.config, &store.sites()?)
    );
    Ok(())
}
