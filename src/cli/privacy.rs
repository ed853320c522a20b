//! The privacy commands: `retention run`, `erase` and `subject-export` (GDPR art. 17
//! and 15), `consent set|withdraw` for email recipients, and `privacy report`, the
//! statement of what this installation collects, why and for how long.

use std::io::Write;

use anyhow::bail;
use serde_json::json;

use super::args::{pick_site, site_id, Ctx};
use super::campaign::campaign_by_id;
use crate::model::SiteId;
use crate::store::{PrivacyStore, SiteStore, Subject};

#[derive(clap::Subcommand, Debug)]
pub enum RetentionCommand {
    /// Apply retention now.
    Run,
}

impl RetentionCommand {
    pub fn run(&self, ctx: &Ctx) -> anyhow::Result<()> {
        let RetentionCommand::Run = self;
        let store = ctx.store()?;
        let n = crate::store::run_retention(&store, ctx.now())?;
        if ctx.json {
            println!("{}", json!({"deleted": n}));
        } else {
            println!("Deleted {n} events past their site's retention period.");
        }
        Ok(())
    }
}

/// Who `erase` and `subject-export` are about.
#[derive(clap::Args, Debug)]
pub struct SubjectArgs {
    /// An email recipient id.
    #[arg(long)]
    recipient: Option<String>,
    /// A visitor id, as shown in exports.
    #[arg(long)]
    visitor: Option<i64>,
    /// Only this site (recipients).
    #[arg(long)]
    site: Option<String>,
}

impl SubjectArgs {
    fn subject(&self, store: &dyn SiteStore) -> anyhow::Result<Subject> {
        match (&self.recipient, self.visitor) {
            (Some(r), None) => Ok(Subject::Recipient {
                site_id: site_id(store, self.site.as_deref())?,
                recipient: r.clone(),
            }),
            (None, Some(v)) => Ok(Subject::Visitor(v)),
            _ => bail!("give exactly one of --recipient ID or --visitor ID"),
        }
    }

    /// `erase`: every event and derived row of the subject.
    pub fn erase(&self, ctx: &Ctx) -> anyhow::Result<()> {
        let store = ctx.store()?;
        let n = store.erase_subject(&self.subject(&store)?)?;
        if ctx.json {
            println!("{}", json!({"deleted": n}));
        } else {
            println!("Erased {n} rows; the database's write-ahead log was checkpointed. Backups made earlier still hold them.");
        }
        Ok(())
    }

    /// `subject-export`: every event of the subject as NDJSON, then (recipients) the
    /// last-open days kept in deliverability mode.
    pub fn export(&self, ctx: &Ctx) -> anyhow::Result<()> {
        let store = ctx.store()?;
        let s = self.subject(&store)?;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        for e in store.subject_events(&s)? {
            serde_json::to_writer(&mut out, &crate::report::export::json(&e))?;
            out.write_all(b"\n")?;
        }
        if let Subject::Recipient { site_id, recipient } = &s {
            for (site, day) in store.last_opens(recipient)? {
                if site_id.is_none_or(|only| only == site) {
                    let date = crate::report::DateRange::date(day);
                    serde_json::to_writer(
                        &mut out,
                        &json!({"site_id": site, "recipient": recipient, "last_open_day": date}),
                    )?;
                    out.write_all(b"\n")?;
                }
            }
        }
        out.flush()?;
        Ok(())
    }
}

#[derive(clap::Subcommand, Debug)]
pub enum ConsentCommand {
    /// Record consent.
    Set(ConsentArgs),
    /// Withdraw consent: effective at once, also for emails already sent.
    Withdraw(ConsentArgs),
}

#[derive(clap::Args, Debug)]
pub struct ConsentArgs {
    /// The recipient's id, as in the tagged emails.
    #[arg(long)]
    recipient: String,
    /// Every campaign of this site (key or domain).
    #[arg(long)]
    site: Option<String>,
    /// Only this campaign.
    #[arg(long)]
    campaign: Option<i64>,
}

impl ConsentCommand {
    pub fn run(&self, ctx: &Ctx) -> anyhow::Result<()> {
        let store = ctx.store()?;
        let (a, granted) = match self {
            ConsentCommand::Set(a) => (a, true),
            ConsentCommand::Withdraw(a) => (a, false),
        };
        let (site_id, campaign_id) = match (&a.site, a.campaign) {
            (_, Some(c)) => {
                let c = campaign_by_id(&store, c)?;
                (SiteId(c.site_id), c.id)
            }
            (Some(s), None) => (pick_site(&store, Some(s))?.id, 0),
            (None, None) => bail!("give --site (every campaign of the site) or --campaign"),
        };
        store.set_consent(site_id, campaign_id, &a.recipient, granted, ctx.now())?;
        if ctx.json {
            println!("{}", json!({"recipient": a.recipient, "granted": granted}));
        } else if granted {
            println!("Consent recorded.");
        } else {
            println!("Consent withdrawn: from now on no open or click is recorded for this recipient (links keep working).");
        }
        Ok(())
    }
}

#[derive(clap::Subcommand, Debug)]
pub enum PrivacyCommand {
    /// Print the privacy statement: every site's settings, or one site's (what
    /// `GET /privacy?site=<domain>` shows that site's visitors).
    Report {
        /// Only this site (key or domain).
        #[arg(long)]
        site: Option<String>,
    },
}

impl PrivacyCommand {
    pub fn run(&self, ctx: &Ctx) -> anyhow::Result<()> {
        let PrivacyCommand::Report { site } = self;
        let (rt, store) = ctx.open()?;
        let sites = match site {
            Some(s) => vec![pick_site(&store, Some(s))?],
            None => store.sites()?,
        };
        print!(
            "{}",
            crate::report::privacy::statement(&rt.config, Some(&sites))
        );
        Ok(())
    }
}
