//! `pixeltrack email tag`: insert the open pixel and turn links into signed click links,
//! for one email (stdin to stdout), a batch (one file per recipient, plus index.csv) or
//! a merge-tag template for a sending platform.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{bail, Context};

use super::args::Ctx;
use super::campaign::with_keyring;
use super::output::term_cell;
use crate::config::Runtime;
use crate::store::{CampaignStore, TokenStore};
use crate::tag::{read_recipients, Recipient, Tagger, BATCH_INDEX};

#[derive(clap::Subcommand, Debug)]
pub enum EmailCommand {
    /// Tag one email (stdin → stdout), a batch (--recipients), or a merge-tag template.
    Tag(TagArgs),
}

#[derive(clap::Args, Debug)]
pub struct TagArgs {
    #[arg(long)]
    campaign: i64,
    /// The recipient's id in your sending tool (never visible in the links).
    #[arg(long)]
    recipient: Option<String>,
    /// CSV of recipients (a `recipient`/`id`/`email` column, or the first column).
    #[arg(long, requires = "out_dir")]
    recipients: Option<PathBuf>,
    /// Where batch mode writes one HTML file per recipient, plus index.csv.
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Merge-tag mode: one template for a sending platform, the recipient left as this
    /// placeholder (e.g. '{{subscriber_id}}'). Forgeable: see README "Email tracking".
    #[arg(long)]
    merge_tag: Option<String>,
    /// Read the HTML from this file instead of standard input.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Tag even though `public_url` is a loopback, private or link-local address (for
    /// local tests: recipients' mail clients cannot reach such links). Without it,
    /// tagging refuses and says how to set `public_url`.
    #[arg(long)]
    allow_local: bool,
}

impl EmailCommand {
    pub fn run(&self, ctx: &Ctx) -> anyhow::Result<()> {
        let (rt, store) = ctx.open()?;
        match self {
            EmailCommand::Tag(a) => tag(&rt, &store, ctx, a),
        }
    }
}

/// Tags one email, a batch, or a merge-tag template.
fn tag(
    rt: &Runtime,
    store: &(impl CampaignStore + TokenStore),
    ctx: &Ctx,
    a: &TagArgs,
) -> anyhow::Result<()> {
    if let Some(why) = crate::tag::local_base(&rt.public_url) {
        if !a.allow_local {
            bail!(
                "not tagging: {why}.\nSet the URL this server is reached at from the internet: \
                 public_url = \"https://t.example.com\" in pixeltrack.toml, or \
                 PIXELTRACK_PUBLIC_URL=https://t.example.com (see README \"Configuration\").\n\
                 For a local test only, add --allow-local."
            );
        }
        eprintln!("warning: {why} (--allow-local: for local tests only)");
    }
    let (campaign, ring) = with_keyring(store, ctx, a.campaign)?;
    let tagger = Tagger {
        keyring: &ring,
        base: &rt.public_url,
        site_id: campaign.site_id,
        campaign_id: campaign.id,
    };
    let mut html = String::new();
    match &a.input {
        Some(p) => {
            html = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
        }
        None => {
            std::io::stdin()
                .read_to_string(&mut html)
                .context("reading the email HTML from standard input")?;
        }
    }
    let warn = |refused: &[String]| {
        for r in refused {
            eprintln!(
                "warning: left a link untracked, it is not safe to redirect to: {}",
                term_cell(r, 120)
            );
        }
    };
    match (a.recipient.as_deref(), a.recipients.as_deref(), a.merge_tag.as_deref()) {
        (Some(r), None, None) => {
            let out = tagger.tag(&html, Recipient::Id(r))?;
            warn(&out.refused);
            std::io::stdout().lock().write_all(out.html.as_bytes())?;
        }
        (None, None, Some(tag)) => {
            let out = tagger.tag(&html, Recipient::MergeTag(tag))?;
            warn(&out.refused);
            std::io::stdout().lock().write_all(out.html.as_bytes())?;
        }
        (None, Some(file), None) => {
            let dir = a.out_dir.as_deref().context("--recipients needs --out-dir DIR")?;
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let reading = || format!("reading {}", file.display());
            let list = read_recipients(std::fs::File::open(file).with_context(reading)?)
                .with_context(reading)?;
            if list.is_empty() {
                bail!("no recipients in {}", file.display());
            }
            let bar = indicatif::ProgressBar::new(list.len() as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template("tagging [{bar:30}] {pos}/{len} {msg}")
                    .context("progress bar template")?,
            );
            let batch = tagger.tag_batch(&html, &list, |name, body| {
                std::fs::write(dir.join(name), body).map_err(|e| {
                    std::io::Error::new(e.kind(), format!("writing {}: {e}", dir.join(name).display()))
                })?;
                if name != BATCH_INDEX {
                    bar.inc(1);
                }
                Ok(())
            });
            bar.finish_and_clear();
            let batch = batch.map_err(|e| anyhow::anyhow!("{}", term_cell(&e.to_string(), 200)))?;
            warn(&batch.refused);
            let links = batch.links;
            if ctx.json {
                println!("{}", serde_json::json!({"emails": list.len(), "links_per_email": links, "out_dir": dir.display().to_string()}));
            } else {
                println!("Tagged {} emails ({links} links each) into {} (see index.csv).", list.len(), dir.display());
            }
        }
        _ => bail!("give exactly one of --recipient ID, --recipients FILE --out-dir DIR, or --merge-tag PLACEHOLDER"),
    }
    Ok(())
}
