//! `pixeltrack link create`: a signed ad link to use as an ad's destination URL; a
//! click redirects to the landing page with a click id appended, for attribution.

use anyhow::bail;
use serde_json::json;

use super::args::{Ctx, SiteArg};
use super::campaign::with_keyring;
use super::output::term_cell;

#[derive(clap::Subcommand, Debug)]
pub enum LinkCommand {
    /// Print a tracked ad link to use as an ad's destination URL.
    Create {
        #[command(flatten)]
        site: SiteArg,
        /// Campaign id (from 'pixeltrack campaign create').
        #[arg(long)]
        campaign: i64,
        /// The ad's id, as you name it (1-64 of A-Z a-z 0-9 . _ ~ : -).
        #[arg(long)]
        ad: Option<String>,
        /// Where the ad runs (same characters).
        #[arg(long)]
        placement: Option<String>,
        /// The landing page (absolute http(s) URL).
        url: String,
    },
}

impl LinkCommand {
    /// A signed ad link: `<public_url>/c/<token>`.
    pub fn run(&self, ctx: &Ctx) -> anyhow::Result<()> {
        let LinkCommand::Create {
            site,
            campaign,
            ad,
            placement,
            url,
        } = self;
        let (rt, store) = ctx.open()?;
        let site = site.find(&store)?;
        let (campaign, ring) = with_keyring(&store, ctx, *campaign)?;
        if campaign.site_id != site.id.0 {
            bail!(
                "campaign {} belongs to another site: list this site's with 'pixeltrack campaign list --site {}'",
                campaign.id,
                site.key
            );
        }
        let (ad, placement) = (ad.as_deref(), placement.as_deref());
        let (link, url) = crate::tag::ad_link(
            &ring,
            &rt.public_url,
            site.id.0,
            campaign.id,
            ad,
            placement,
            url,
        )?;
        if ctx.json {
            println!(
                "{}",
                json!({ "url": link, "destination": url, "campaign": campaign.id, "ad": ad, "placement": placement })
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
}
