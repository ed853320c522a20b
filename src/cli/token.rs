//! `pixeltrack token`: API tokens: create (the secret is printed once and stored only as
//! a hash), list (never the secrets), revoke.

use anyhow::{bail, Context};
use serde_json::json;

use super::args::{site_id, Ctx};
use super::output;
use crate::store::{Scope, SiteStore, TokenStore};

#[derive(clap::Subcommand, Debug)]
pub enum TokenCommand {
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

impl TokenCommand {
    pub fn run(&self, ctx: &Ctx) -> anyhow::Result<()> {
        let store = ctx.store()?;
        match self {
            TokenCommand::Create { scope, site, name } => {
                let scope = Scope::parse(scope)
                    .with_context(|| format!("--scope {scope:?}: use read, write or admin"))?;
                let site_id = site_id(&store, site.as_deref())?;
                let (id, secret) =
                    crate::secret::issue_api_token(&store, name, scope, site_id, ctx.now())?;
                if ctx.json {
                    println!(
                        "{}",
                        json!({"id": id, "token": secret, "scope": scope.as_str(), "site_id": site_id})
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
                let sites = store.sites()?;
                let site_of = |t: &crate::store::ApiToken| {
                    t.site_id.and_then(|id| sites.iter().find(|s| s.id.0 == id))
                };
                output::print_list(
                    ctx.json,
                    &store.api_tokens()?,
                    |t| {
                        let site = site_of(t);
                        json!({"id": t.id, "name": t.name, "scope": t.scope.as_str(), "site_id": t.site_id,
                               "site_key": site.map(|s| s.key.as_str()), "site_name": site.map(|s| s.name.as_str())})
                    },
                    &["id", "name", "scope", "site"],
                    |t| {
                        vec![
                            t.id.to_string(),
                            output::term_cell(&t.name, 40),
                            t.scope.as_str().to_owned(),
                            match (t.site_id, site_of(t)) {
                                (None, _) => "all".into(),
                                (Some(_), Some(s)) => output::term_cell(&s.name, 40),
                                (Some(id), None) => format!("{id} (removed)"),
                            },
                        ]
                    },
                    None,
                );
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
}
