//! `pixeltrack goal`: what counts as converting on a site, an event or a page pattern;
//! add (it counts past events too), list, remove.

use anyhow::{bail, Context};
use serde_json::json;

use super::args::{Ctx, SiteArg, SiteOrOnly};
use super::output::{print_list, term_cell};
use crate::store::{Pattern, PatternKind, SiteStore};

#[derive(clap::Subcommand, Debug)]
pub enum GoalCommand {
    /// Add a goal; it counts events already stored too.
    Add {
        #[command(flatten)]
        site: SiteArg,
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
        #[command(flatten)]
        site: SiteOrOnly,
    },
    /// Remove a goal by name.
    Remove {
        #[command(flatten)]
        site: SiteArg,
        name: String,
    },
}

impl GoalCommand {
    pub fn run(&self, ctx: &Ctx) -> anyhow::Result<()> {
        let store = ctx.store()?;
        match self {
            GoalCommand::Add {
                site,
                event,
                page,
                name,
            } => add(
                &store,
                ctx,
                site,
                event.as_deref(),
                page.as_deref(),
                name.as_deref(),
            ),
            GoalCommand::List { site } => list(&store, ctx, site),
            GoalCommand::Remove { site, name } => remove(&store, ctx, site, name),
        }
    }
}

fn add(
    store: &dyn SiteStore,
    ctx: &Ctx,
    site: &SiteArg,
    event: Option<&str>,
    page: Option<&str>,
    name: Option<&str>,
) -> anyhow::Result<()> {
    let site = site.find(store)?;
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
    let g = store.add_goal(site.id, &name, &pattern, ctx.now())?;
    if ctx.json {
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

fn list(store: &dyn SiteStore, ctx: &Ctx, site: &SiteOrOnly) -> anyhow::Result<()> {
    let site = site.find(store)?;
    let goals = store.goals(site.id)?;
    let none = format!("No goals for {}: add one with 'pixeltrack goal add --site {} --event signup' or '--page /thank-you*'.", site.domain, site.key);
    print_list(
        ctx.json,
        &goals,
        |g| json!({ "id": g.id, "name": g.name, "kind": g.pattern.kind.as_str(), "pattern": g.pattern.glob }),
        &["name", "kind", "pattern"],
        |g| {
            vec![
                term_cell(&g.name, 60),
                g.pattern.kind.as_str().into(),
                term_cell(&g.pattern.glob, 80),
            ]
        },
        Some(&none),
    );
    Ok(())
}

fn remove(store: &dyn SiteStore, ctx: &Ctx, site: &SiteArg, name: &str) -> anyhow::Result<()> {
    let site = site.find(store)?;
    if !store.remove_goal(site.id, name)? {
        bail!(
            "no goal {:?} on {}: see 'pixeltrack goal list --site {}'",
            term_cell(name, 80),
            site.domain,
            site.key
        );
    }
    if ctx.json {
        println!("{}", json!({ "removed": name }));
    } else {
        println!("Goal {:?} removed.", term_cell(name, 80));
    }
    Ok(())
}
