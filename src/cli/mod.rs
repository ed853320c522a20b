//! The command line. One place prints errors and sets the exit code; every command
//! takes `--data DIR` and `--json`. Commands open the same SQLite file the server
//! writes (WAL lets them read while it runs).

mod ads;
pub mod demo;
mod email;
mod export;
pub mod output;
mod privacy;
mod user;

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};

use crate::clock::{day_of, Clock};
use crate::config::{Config, LogFormat, Runtime};
use crate::model::{Site, SiteKey};
use crate::report::{self, fmt_duration, DateRange};
use crate::store::{SqliteStore, Store};

#[derive(Parser, Debug)]
#[command(
    name = "pixeltrack",
    version,
    about = "Self-hosted tracking pixels and privacy-first analytics"
)]
pub struct Cli {
    /// Data directory (overrides `data_dir` from the config file and PIXELTRACK_DATA_DIR).
    #[arg(long, global = true, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Configuration file (TOML). See README "Configuration".
    #[arg(long, global = true, value_name = "FILE", env = "PIXELTRACK_CONFIG")]
    config: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server (pixels, health and metrics endpoints).
    Serve {
        /// Address to listen on, e.g. 0.0.0.0:8080.
        #[arg(long)]
        listen: Option<String>,
        /// Log format.
        #[arg(long, value_enum)]
        log_format: Option<LogFormatArg>,
        /// Log filter, e.g. `info` or `pixeltrack=debug`.
        #[arg(long)]
        log_level: Option<String>,
    },
    /// Manage sites.
    #[command(subcommand)]
    Site(SiteCommand),
    /// Show a site's traffic: visitors, visits, pageviews, bounce rate and top lists.
    Report {
        /// Site key or domain (optional when there is one site).
        #[arg(long, conflicts_with = "campaign")]
        site: Option<String>,
        /// Report a campaign (email and ads) instead of a site.
        #[arg(long)]
        campaign: Option<i64>,
        /// With --campaign: per-recipient activity (first and last open, opens, clicks).
        #[arg(long, requires = "campaign")]
        recipients: bool,
        /// First day, YYYY-MM-DD (UTC). Default: 29 days before --to.
        #[arg(long)]
        from: Option<String>,
        /// Last day, YYYY-MM-DD (UTC), included. Default: today.
        #[arg(long)]
        to: Option<String>,
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
    },
    /// Campaigns (email and ads): create, list, mark as sent, record their cost.
    #[command(subcommand)]
    Campaign(CampaignCommand),
    /// Ad links: signed click links that mint a click id for attribution.
    #[command(subcommand)]
    Link(LinkCommand),
    /// Goals: what counts as converting on a site (an event or a page pattern).
    #[command(subcommand)]
    Goal(GoalCommand),
    /// How far visits (or visitors) get through ordered steps, with the drop-off.
    Funnel {
        /// Site key or domain (optional when there is one site).
        #[arg(long)]
        site: Option<String>,
        /// A step, in order: a path (/pricing), page:/blog/* or event:signup. `*` matches anything.
        #[arg(long = "step", required = true)]
        steps: Vec<String>,
        /// `visit` (all steps in one visit) or days from the first step, e.g. 7d.
        #[arg(long, default_value = "visit")]
        within: String,
        /// First day, YYYY-MM-DD (UTC). Default: 29 days before --to.
        #[arg(long)]
        from: Option<String>,
        /// Last day, YYYY-MM-DD (UTC), included. Default: today.
        #[arg(long)]
        to: Option<String>,
    },
    /// Tag email HTML: insert the open pixel and turn links into signed click links.
    #[command(subcommand)]
    Email(EmailCommand),
    /// API tokens: create (shown once), list, revoke.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Dashboard users: add, list, remove, passwd.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Token keys for email links: list, rotate, retire.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Delete raw events past each site's retention period now (the server does it hourly).
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// Erase every event and derived row of one person (GDPR art. 17).
    Erase(SubjectArgs),
    /// Export every event of one person as NDJSON (GDPR art. 15).
    SubjectExport(SubjectArgs),
    /// Record or withdraw an email recipient's consent to open and click tracking.
    #[command(subcommand)]
    Consent(ConsentCommand),
    /// What this installation collects, why and for how long (also at GET /privacy).
    #[command(subcommand)]
    Privacy(PrivacyCommand),
    /// Export raw events (streamed) to standard output.
    Export {
        /// Site key or domain.
        #[arg(long)]
        site: String,
        #[arg(long, value_enum, default_value_t = ExportFormat::Ndjson)]
        format: ExportFormat,
        /// First day, YYYY-MM-DD (UTC).
        #[arg(long)]
        from: Option<String>,
        /// Last day, YYYY-MM-DD (UTC), included.
        #[arg(long)]
        to: Option<String>,
    },
    /// Create a demo site with a realistic month of traffic.
    Demo {
        /// Days of traffic, ending today.
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// Average visitors per day.
        #[arg(long, default_value_t = 400)]
        visitors_per_day: u32,
    },
}

#[derive(Subcommand, Debug)]
enum SiteCommand {
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
    Set(privacy::SiteSettings),
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

#[derive(Subcommand, Debug)]
enum CampaignCommand {
    /// Create a campaign.
    Create {
        /// Site key or domain.
        #[arg(long)]
        site: String,
        #[arg(long)]
        name: String,
    },
    /// List campaigns.
    List {
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

#[derive(Subcommand, Debug)]
enum LinkCommand {
    /// Print a tracked ad link to use as an ad's destination URL.
    Create {
        /// Site key or domain.
        #[arg(long)]
        site: String,
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

#[derive(Subcommand, Debug)]
enum GoalCommand {
    /// Add a goal; it counts events already stored too.
    Add {
        /// Site key or domain.
        #[arg(long)]
        site: String,
        /// A custom event name, e.g. signup (`*` matches anything).
        #[arg(long, conflicts_with = "page")]
        event: Option<String>,
        /// A page path, e.g. /thank-you* (`*` matches anything).
        #[arg(long)]
        page: Option<String>,
        /// A display name (default: the pattern).
        #[arg(long)]
        name: Option<String>,
    },
    /// List a site's goals.
    List {
        #[arg(long)]
        site: Option<String>,
    },
    /// Remove a goal by name.
    Remove {
        #[arg(long)]
        site: String,
        name: String,
    },
}

#[derive(Subcommand, Debug)]
enum EmailCommand {
    /// Tag one email (stdin → stdout), a batch (--recipients), or a merge-tag template.
    Tag {
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
    },
}

/// Who `erase` and `subject-export` are about.
#[derive(clap::Args, Debug)]
struct SubjectArgs {
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

#[derive(Subcommand, Debug)]
enum RetentionCommand {
    /// Apply retention now.
    Run,
}

#[derive(Subcommand, Debug)]
enum PrivacyCommand {
    /// Print the privacy statement.
    Report,
}

#[derive(Subcommand, Debug)]
enum ConsentCommand {
    /// Record consent.
    Set {
        #[arg(long)]
        recipient: String,
        #[arg(long)]
        site: Option<String>,
        #[arg(long)]
        campaign: Option<i64>,
    },
    /// Withdraw consent: effective at once, also for emails already sent.
    Withdraw {
        #[arg(long)]
        recipient: String,
        #[arg(long)]
        site: Option<String>,
        #[arg(long)]
        campaign: Option<i64>,
    },
}

#[derive(Subcommand, Debug)]
enum TokenCommand {
    /// Create an API token; it is printed once and stored only as a hash.
    Create {
        /// read (reports), write (also sites and campaigns), admin (also subject export and erasure).
        #[arg(long)]
        scope: String,
        /// Limit the token to one site (key or domain).
        #[arg(long)]
        site: Option<String>,
        /// A name to recognise it by.
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token.
    Revoke { id: i64 },
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// List keys; the newest signs.
    List,
    /// Add a new signing key (old links keep working).
    Rotate,
    /// Remove an old key: links signed with it stop working.
    Retire { id: u8 },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Ndjson,
    Csv,
}

/// Runs the CLI; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => 0,
        Err(e) => {
            if is_broken_pipe(&e) {
                return 0;
            }
            eprintln!("pixeltrack: {e:#}");
            1
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn load_config(cli: &Cli, flags: &[(&str, toml::Value)]) -> anyhow::Result<Runtime> {
    let mut overrides: Vec<(&str, toml::Value)> = flags.to_vec();
    if let Some(d) = &cli.data {
        overrides.push(("data_dir", toml::Value::String(d.display().to_string())));
    }
    let env = std::env::vars().filter(|(k, _)| k != "PIXELTRACK_CONFIG");
    Ok(Config::load(cli.config.as_deref(), env, &overrides)?.validate()?)
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Serve {
            listen,
            log_format,
            log_level,
        } => {
            let mut flags: Vec<(&str, toml::Value)> = Vec::new();
            if let Some(l) = listen {
                flags.push(("listen", toml::Value::String(l.clone())));
            }
            if let Some(f) = log_format {
                let f = match f {
                    LogFormatArg::Text => "text",
                    LogFormatArg::Json => "json",
                };
                flags.push(("log_format", toml::Value::String(f.into())));
            }
            if let Some(l) = log_level {
                flags.push(("log_level", toml::Value::String(l.clone())));
            }
            let rt = load_config(&cli, &flags)?;
            init_logging(&rt);
            serve(rt)
        }
        Command::Site(cmd) => {
            let rt = load_config(&cli, &[])?;
            site_command(&rt, cmd, cli.json)
        }
        Command::Report {
            campaign: Some(id),
            recipients,
            csv,
            ..
        } => {
            let rt = load_config(&cli, &[])?;
            email::report(&rt, &open_store(&rt)?, *id, *recipients, *csv, cli.json)
        }
        Command::Campaign(cmd) => {
            let rt = load_config(&cli, &[])?;
            let store = open_store(&rt)?;
            match cmd {
                CampaignCommand::Create { site, name } => {
                    email::create(&store, site, name, cli.json)
                }
                CampaignCommand::List { site } => email::list(&store, site.as_deref(), cli.json),
                CampaignCommand::Show { id, recipients } => {
                    email::report(&rt, &store, *id, *recipients, false, cli.json)
                }
                CampaignCommand::Cost {
                    id,
                    amount,
                    currency,
                } => ads::campaign_cost(
                    &store,
                    *id,
                    amount.as_deref(),
                    currency.as_deref(),
                    cli.json,
                ),
                CampaignCommand::Sent { id, count, at } => {
                    email::sent(&store, *id, *count, at.as_deref(), cli.json)
                }
            }
        }
        Command::Link(LinkCommand::Create {
            site,
            campaign,
            ad,
            placement,
            url,
        }) => {
            let rt = load_config(&cli, &[])?;
            let args = ads::LinkArgs {
                site,
                campaign: *campaign,
                ad: ad.as_deref(),
                placement: placement.as_deref(),
                url,
            };
            ads::link_create(&rt, &open_store(&rt)?, args, cli.json)
        }
        Command::Goal(cmd) => {
            let rt = load_config(&cli, &[])?;
            let store = open_store(&rt)?;
            match cmd {
                GoalCommand::Add {
                    site,
                    event,
                    page,
                    name,
                } => ads::goal_add(
                    &store,
                    site,
                    event.as_deref(),
                    page.as_deref(),
                    name.as_deref(),
                    cli.json,
                ),
                GoalCommand::List { site } => ads::goal_list(&store, site.as_deref(), cli.json),
                GoalCommand::Remove { site, name } => {
                    ads::goal_remove(&store, site, name, cli.json)
                }
            }
        }
        Command::Funnel {
            site,
            steps,
            within,
            from,
            to,
        } => {
            let rt = load_config(&cli, &[])?;
            let args = ads::FunnelArgs {
                site: site.as_deref(),
                steps,
                within,
                from: from.as_deref(),
                to: to.as_deref(),
            };
            ads::funnel(&open_store(&rt)?, args, cli.json)
        }
        Command::Email(EmailCommand::Tag {
            campaign,
            recipient,
            recipients,
            out_dir,
            merge_tag,
            input,
        }) => {
            let rt = load_config(&cli, &[])?;
            let store = open_store(&rt)?;
            let args = email::TagArgs {
                campaign: *campaign,
                recipient: recipient.as_deref(),
                recipients: recipients.as_deref(),
                out_dir: out_dir.as_deref(),
                merge_tag: merge_tag.as_deref(),
                input: input.as_deref(),
            };
            email::tag(&rt, &store, args, cli.json)
        }
        Command::Retention(RetentionCommand::Run) => {
            let rt = load_config(&cli, &[])?;
            privacy::retention(&open_store(&rt)?, cli.json)
        }
        Command::Erase(a) | Command::SubjectExport(a) => {
            let rt = load_config(&cli, &[])?;
            let store = open_store(&rt)?;
            let s = privacy::subject(&store, a.recipient.as_deref(), a.visitor, a.site.as_deref())?;
            if matches!(cli.command, Command::Erase(_)) {
                privacy::erase(&store, &s, cli.json)
            } else {
                privacy::subject_export(&store, &s)
            }
        }
        Command::Consent(cmd) => {
            let rt = load_config(&cli, &[])?;
            let store = open_store(&rt)?;
            match cmd {
                ConsentCommand::Set {
                    recipient,
                    site,
                    campaign,
                } => privacy::consent(
                    &store,
                    true,
                    recipient,
                    site.as_deref(),
                    *campaign,
                    cli.json,
                ),
                ConsentCommand::Withdraw {
                    recipient,
                    site,
                    campaign,
                } => privacy::consent(
                    &store,
                    false,
                    recipient,
                    site.as_deref(),
                    *campaign,
                    cli.json,
                ),
            }
        }
        Command::Privacy(PrivacyCommand::Report) => {
            let rt = load_config(&cli, &[])?;
            privacy::report(&rt, &open_store(&rt)?)
        }
        Command::Token(cmd) => {
            let rt = load_config(&cli, &[])?;
            token_command(&open_store(&rt)?, cmd, cli.json)
        }
        Command::User(cmd) => {
            let rt = load_config(&cli, &[])?;
            user::run(&open_store(&rt)?, cmd, cli.json)
        }
        Command::Key(cmd) => {
            let rt = load_config(&cli, &[])?;
            email::keys(&open_store(&rt)?, cmd, cli.json)
        }
        Command::Report {
            site,
            from,
            to,
            limit,
            filters,
            csv,
            ..
        } => {
            let rt = load_config(&cli, &[])?;
            let store = open_store(&rt)?;
            let site = pick_site(&store, site.as_deref())?;
            let range = parse_range(from.as_deref(), to.as_deref(), 29)?;
            let model = report::ads::Model::from_config(&rt.config.ads);
            let q = report::Query {
                range,
                filters: filters
                    .iter()
                    .map(|f| crate::store::Filter::parse(f).map_err(anyhow::Error::msg))
                    .collect::<anyhow::Result<_>>()?,
            };
            let r = report::site_report(&store, &site, &q, *limit, model)?;
            let mut out = std::io::stdout().lock();
            if cli.json {
                serde_json::to_writer_pretty(&mut out, &r)?;
                writeln!(out)?;
            } else if *csv {
                write_report_csv(&mut out, &r)?;
            } else {
                out.write_all(render_report(&r).as_bytes())?;
                out.write_all(ads::render_site(&r.goals, &r.conversions).as_bytes())?;
            }
            Ok(())
        }
        Command::Export {
            site,
            format,
            from,
            to,
        } => {
            let rt = load_config(&cli, &[])?;
            let store = open_store(&rt)?;
            let site = pick_site(&store, Some(site))?;
            let (from_ms, to_ms) = match (from, to) {
                (None, None) => (i64::MIN, i64::MAX),
                _ => parse_range(from.as_deref(), to.as_deref(), 36_500)?.millis(),
            };
            let n = export::export(
                &store,
                &site,
                from_ms,
                to_ms,
                *format,
                &mut std::io::stdout().lock(),
            )?;
            eprintln!("exported {n} events");
            Ok(())
        }
        Command::Demo {
            days,
            visitors_per_day,
        } => {
            let rt = load_config(&cli, &[])?;
            let store = open_store(&rt)?;
            let (site, events) = demo::run(&store, &rt, *days, *visitors_per_day, &Clock::System)?;
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({"site": site.domain, "key": site.key.as_str(), "events": events})
                );
            } else {
                println!(
                    "Demo site {} (key {}) has {events} events.",
                    site.domain, site.key
                );
                println!("See it with: pixeltrack report --site {}", site.key);
            }
            Ok(())
        }
    }
}

fn serve(rt: Runtime) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(rt.listen)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {} (is another server running? try --listen 127.0.0.1:8081)",
                    rt.listen
                )
            })?;
        crate::server::serve(
            rt,
            Clock::System,
            listener,
            crate::server::shutdown_signal(),
        )
        .await
    })
}

fn init_logging(rt: &Runtime) {
    let filter = tracing_subscriber::EnvFilter::new(&rt.config.log_level);
    // Colours only for a terminal: a log file or journald gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = match rt.config.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

fn open_store(rt: &Runtime) -> anyhow::Result<SqliteStore> {
    SqliteStore::open(&rt.config.data_dir).with_context(|| {
        format!(
            "opening the data directory {}",
            rt.config.data_dir.display()
        )
    })
}

/// Finds a site by key or domain; with no argument, the only site.
fn pick_site(store: &SqliteStore, wanted: Option<&str>) -> anyhow::Result<Site> {
    let sites = store.sites()?;
    match wanted {
        Some(w) => Site::find(&sites, w)
            .cloned()
            .with_context(|| format!("no site '{w}': list sites with 'pixeltrack site list' or create it with 'pixeltrack site add {w}'")),
        None => match sites.len() {
            0 => bail!("no sites yet: create one with 'pixeltrack site add example.com'"),
            1 => Ok(sites.into_iter().next().expect("one site")),
            _ => bail!(
                "there are {} sites; pick one with --site ({})",
                sites.len(),
                sites.iter().map(|s| s.domain.as_str()).collect::<Vec<_>>().join(", ")
            ),
        },
    }
}

fn parse_range(
    from: Option<&str>,
    to: Option<&str>,
    default_days: i64,
) -> anyhow::Result<DateRange> {
    let day = |s: &str, flag: &str| {
        DateRange::parse_date(s)
            .with_context(|| format!("{flag} {s:?} is not a date like 2026-01-31"))
    };
    let to_day = match to {
        Some(t) => day(t, "--to")?,
        None => day_of(Clock::System.now_ms()),
    };
    let from_day = match from {
        Some(f) => day(f, "--from")?,
        None => to_day - default_days,
    };
    if from_day > to_day {
        bail!("--from is after --to");
    }
    Ok(DateRange { from_day, to_day })
}

fn snippet(rt: &Runtime, site: &Site) -> String {
    format!(
        "<img src=\"{}/p.gif?s={}\" alt=\"\" width=\"1\" height=\"1\" style=\"position:absolute\" referrerpolicy=\"no-referrer-when-downgrade\">",
        rt.public_url,
        site.key
    )
}

fn site_command(rt: &Runtime, cmd: &SiteCommand, json: bool) -> anyhow::Result<()> {
    let store = open_store(rt)?;
    match cmd {
        SiteCommand::Add { domain, name } => {
            let (domain, name) = crate::model::new_site(domain, name.as_deref())
                .map_err(|e| anyhow::anyhow!("{domain:?}: {e}"))?;
            let site =
                store.add_site(&SiteKey::generate(), &domain, &name, Clock::System.now_ms())?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"key": site.key.as_str(), "domain": site.domain, "name": site.name, "snippet": snippet(rt, &site)})
                );
            } else {
                println!("Added {} — site key: {}", site.domain, site.key);
                println!();
                println!("Put this pixel on your pages (or use the URL in emails and ads):");
                println!("  {}", snippet(rt, &site));
            }
        }
        SiteCommand::Set(a) => privacy::site_set(&store, a, json)?,
        SiteCommand::Snippet { site } => {
            let s = pick_site(&store, Some(site))?;
            let text = s.tracker_snippet(&rt.public_url);
            if json {
                println!("{}", serde_json::json!({"snippet": text}));
            } else {
                println!("{text}");
            }
        }
        SiteCommand::List => {
            let sites = store.sites()?;
            if json {
                let list: Vec<_> = sites
                    .iter()
                    .map(|s| serde_json::json!({"key": s.key.as_str(), "domain": s.domain, "name": s.name, "events": store.count_events(s.id.0).unwrap_or(0)}))
                    .collect();
                println!("{}", serde_json::Value::Array(list));
            } else if sites.is_empty() {
                println!("No sites yet: add one with 'pixeltrack site add example.com'.");
            } else {
                let rows: Vec<Vec<String>> = sites
                    .iter()
                    .map(|s| {
                        vec![
                            s.key.to_string(),
                            output::term_cell(&s.domain, 60),
                            output::term_cell(&s.name, 40),
                            store.count_events(s.id.0).unwrap_or(0).to_string(),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    output::table(&["key", "domain", "name", "events"], &rows)
                );
            }
        }
        SiteCommand::Remove { site } => {
            let s = pick_site(&store, Some(site))?;
            store.remove_site(&s.key)?;
            store.checkpoint()?;
            if json {
                println!("{}", serde_json::json!({"removed": s.key.as_str()}));
            } else {
                println!("Removed {} ({}) and all of its data.", s.domain, s.key);
            }
        }
    }
    Ok(())
}

fn token_command(store: &SqliteStore, cmd: &TokenCommand, json: bool) -> anyhow::Result<()> {
    use crate::store::Scope;
    match cmd {
        TokenCommand::Create { scope, site, name } => {
            let scope = Scope::parse(scope)
                .with_context(|| format!("--scope {scope:?}: use read, write or admin"))?;
            let site_id = match site {
                Some(s) => Some(pick_site(store, Some(s))?.id.0),
                None => None,
            };
            let (id, secret) = crate::secret::issue_api_token(
                store,
                name,
                scope,
                site_id,
                Clock::System.now_ms(),
            )?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"id": id, "token": secret, "scope": scope.as_str(), "site_id": site_id})
                );
            } else {
                println!(
                    "Token {id} ({} scope{}):",
                    scope.as_str(),
                    if site_id.is_some() { ", one site" } else { "" }
                );
                println!("  {secret}");
                println!("It is shown only now. Use it as: Authorization: Bearer {secret}");
            }
        }
        TokenCommand::List => {
            let list = store.api_tokens()?;
            if json {
                let v: Vec<_> = list
                    .iter()
                    .map(|t| serde_json::json!({"id": t.id, "name": t.name, "scope": t.scope.as_str(), "site_id": t.site_id}))
                    .collect();
                println!("{}", serde_json::Value::Array(v));
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|t| {
                        vec![
                            t.id.to_string(),
                            output::term_cell(&t.name, 40),
                            t.scope.as_str().to_owned(),
                            t.site_id
                                .map(|s| s.to_string())
                                .unwrap_or_else(|| "all".into()),
                        ]
                    })
                    .collect();
                print!("{}", output::table(&["id", "name", "scope", "site"], &rows));
            }
        }
        TokenCommand::Revoke { id } => {
            if !store.revoke_api_token(*id)? {
                bail!("no token {id}: see 'pixeltrack token list'");
            }
            println!("Token {id} revoked.");
        }
    }
    Ok(())
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
        let title = match b.dimension {
            "page" => "Top pages",
            "entry_page" => "Entry pages",
            "exit_page" => "Exit pages",
            "source" => "Sources",
            "medium" => "Media",
            "utm_source" => "UTM sources",
            "utm_medium" => "UTM media",
            "utm_campaign" => "UTM campaigns",
            "browser" => "Browsers",
            "os" => "Operating systems",
            "device" => "Devices",
            "event" => "Custom events",
            "event_prop" => "Custom event props",
            "outbound" => "Outbound links",
            "download" => "Downloads",
            "bot" => "Machine traffic by reason",
            "bot_source" => "Machine traffic by source",
            other => other,
        };
        // Which counters a breakdown shows: visit-level dimensions count visits,
        // event-level ones events, pages visitors and pageviews.
        type Col = (&'static str, fn(&report::Row) -> i64);
        let cols: &[Col] = match b.dimension {
            "bot" | "bot_source" => &[("events", |r| r.events)],
            "event" | "event_prop" | "outbound" | "download" => {
                &[("visitors", |r| r.visitors), ("events", |r| r.events)]
            }
            "page" => &[("visitors", |r| r.visitors), ("pageviews", |r| r.pageviews)],
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
                let mut cells = vec![display_value(&row.value, 60)];
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

fn display_value(v: &str, max: usize) -> String {
    if v.is_empty() {
        "(direct / none)".into()
    } else {
        output::term_cell(v, max)
    }
}

fn write_report_csv(out: &mut impl Write, r: &report::SiteReport) -> std::io::Result<()> {
    out.write_all(
        output::csv_line(
            &[
                "dimension",
                "value",
                "visitors",
                "visits",
                "pageviews",
                "events",
            ]
            .map(String::from),
        )
        .as_bytes(),
    )?;
    let o = &r.overview;
    out.write_all(
        output::csv_line(&[
            "total".into(),
            String::new(),
            o.visitors.to_string(),
            o.visits.to_string(),
            o.pageviews.to_string(),
            o.events.to_string(),
        ])
        .as_bytes(),
    )?;
    for b in &r.breakdowns {
        for row in &b.rows {
            out.write_all(
                output::csv_line(&[
                    b.dimension.to_string(),
                    row.value.clone(),
                    row.visitors.to_string(),
                    row.visits.to_string(),
                    row.pageviews.to_string(),
                    row.events.to_string(),
                ])
                .as_bytes(),
            )?;
        }
    }
    Ok(())
}
