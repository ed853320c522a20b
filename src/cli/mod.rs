//! The command line. One place prints errors and sets the exit code; every command
//! takes `--data DIR` and `--json`. Commands open the same SQLite file the server
//! writes (WAL lets them read while it runs).
//!
//! This file is the top-level [`Cli`] and the dispatch. Each command owns its arguments
//! and its `run` in a file of its own (`site.rs`, `report.rs`, `campaign.rs`, …); what
//! they share (the global flags and the configuration they load, `--from`/`--to`,
//! `--site`) is declared once in `args.rs` and flattened in.

mod args;
mod campaign;
mod campaign_report;
pub mod demo;
mod email;
mod export;
mod funnel;
mod goal;
mod import;
mod key;
mod link;
pub mod output;
mod privacy;
mod report;
mod scan;
mod serve;
mod site;
mod token;
mod user;

use clap::{Parser, Subcommand};

use crate::clock::Clock;

#[derive(Parser, Debug)]
#[command(
    name = "pixeltrack",
    version,
    about = "Self-hosted tracking pixels and privacy-first analytics"
)]
pub struct Cli {
    #[command(flatten)]
    global: args::Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server (pixels, health and metrics endpoints).
    Serve(serve::ServeArgs),
    /// Manage sites.
    #[command(subcommand)]
    Site(site::SiteCommand),
    /// Show a site's traffic: visitors, visits, pageviews, bounce rate and top lists.
    Report(report::ReportArgs),
    /// Campaigns (email and ads): create, list, mark as sent, record their cost.
    #[command(subcommand)]
    Campaign(campaign::CampaignCommand),
    /// Ad links: signed click links that mint a click id for attribution.
    #[command(subcommand)]
    Link(link::LinkCommand),
    /// Goals: what counts as converting on a site (an event or a page pattern).
    #[command(subcommand)]
    Goal(goal::GoalCommand),
    /// How far visits (or visitors) get through ordered steps, with the drop-off.
    Funnel(funnel::FunnelArgs),
    /// Tag email HTML: insert the open pixel and turn links into signed click links.
    #[command(subcommand)]
    Email(email::EmailCommand),
    /// API tokens: create (shown once), list, revoke.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Dashboard users: add, list, remove, passwd.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Token keys for email links: list, rotate, retire.
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// Delete raw events past each site's retention period now (the server does it hourly).
    #[command(subcommand)]
    Retention(privacy::RetentionCommand),
    /// Erase every event and derived row of one person (GDPR art. 17).
    Erase(privacy::SubjectArgs),
    /// Export every event of one person as NDJSON (GDPR art. 15).
    SubjectExport(privacy::SubjectArgs),
    /// Record or withdraw an email recipient's consent to open and click tracking.
    #[command(subcommand)]
    Consent(privacy::ConsentCommand),
    /// What this installation collects, why and for how long (also at GET /privacy).
    #[command(subcommand)]
    Privacy(privacy::PrivacyCommand),
    /// Export raw events (streamed) to standard output.
    Export(export::ExportArgs),
    /// Import pixel hits from access logs (nginx, Apache, Caddy) or a pixeltrack NDJSON
    /// export, with their own times; importing the same lines again adds nothing.
    Import(import::ImportArgs),
    /// Create a demo site with a realistic month of traffic, and the month before to compare.
    Demo(demo::DemoArgs),
    /// Find the tracking pixels, tracker scripts and personal data in URLs of a page or an
    /// email (a file, stdin or --url); exit 0 none found, 1 found, 2 error.
    Scan(scan::ScanArgs),
}

/// Runs the CLI; returns the process exit code: 0, or 1 on an error — except `scan`,
/// whose codes are for CI: 0 nothing found, 1 found, 2 an error (as clap's usage errors).
pub fn main() -> i32 {
    let cli = Cli::parse();
    let failed = if matches!(cli.command, Command::Scan(_)) {
        2
    } else {
        1
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return 0;
            }
            eprintln!("pixeltrack: {e:#}");
            failed
        }
    }
}

/// The reader of standard output went away (`pixeltrack report … | head`): not an
/// error to report. JSON is written through serde_json, whose error wraps the I/O one.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        let kind = c
            .downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind)
            .or_else(|| c.downcast_ref::<serde_json::Error>()?.io_error_kind());
        kind == Some(std::io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    let ctx = args::Ctx::new(cli.global, Clock::System);
    let done = match &cli.command {
        Command::Scan(a) => return a.run(&ctx),
        Command::Serve(a) => a.run(&ctx),
        Command::Site(c) => c.run(&ctx),
        Command::Report(a) => a.run(&ctx),
        Command::Campaign(c) => c.run(&ctx),
        Command::Link(c) => c.run(&ctx),
        Command::Goal(c) => c.run(&ctx),
        Command::Funnel(a) => a.run(&ctx),
        Command::Email(c) => c.run(&ctx),
        Command::Token(c) => c.run(&ctx),
        Command::User(c) => c.run(&ctx),
        Command::Key(c) => c.run(&ctx),
        Command::Retention(c) => c.run(&ctx),
        Command::Erase(a) => a.erase(&ctx),
        Command::SubjectExport(a) => a.export(&ctx),
        Command::Consent(c) => c.run(&ctx),
        Command::Privacy(c) => c.run(&ctx),
        Command::Export(a) => a.run(&ctx),
        Command::Import(a) => a.run(&ctx),
        Command::Demo(a) => a.run(&ctx),
    };
    done.map(|()| 0)
}
