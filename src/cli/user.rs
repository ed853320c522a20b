//! `pixeltrack user`: dashboard accounts. Passwords are generated (and shown once) or
//! read from standard input, never from an argument, which `ps` and shell history see.

use std::io::Read;

use anyhow::{bail, Context};
use clap::{Subcommand, ValueEnum};

use super::args::{pick_site, Ctx};
use super::output;
use crate::store::sqlite::Role;
use crate::store::SiteStore;
use crate::web::accounts::{self as acc};

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add a user. Without --password-stdin a random password is generated and shown once.
    Add {
        name: String,
        /// admin: every site, settings, users. viewer: only the --site sites, read-only.
        #[arg(long, value_enum, default_value_t = RoleArg::Viewer)]
        role: RoleArg,
        /// A site a viewer may see (key or domain); repeat for more.
        #[arg(long = "site", value_name = "SITE")]
        sites: Vec<String>,
        /// Read the password from standard input (one line) instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users (never their passwords).
    List,
    /// Remove a user and end its sessions (the last admin cannot be removed).
    Remove { name: String },
    /// Set a new password and end the user's sessions. Without --password-stdin one is
    /// generated and shown once.
    Passwd {
        name: String,
        /// Read the password from standard input (one line).
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum RoleArg {
    Admin,
    Viewer,
}

/// The new password: one line of standard input, or a generated one (`true`: show it).
fn new_password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if !from_stdin {
        return Ok((acc::generate_password(), true));
    }
    let mut raw = String::new();
    std::io::stdin()
        .take(acc::MAX_PASSWORD_BYTES as u64 + 2)
        .read_to_string(&mut raw)
        .context("reading the password from standard input")?;
    let pw = raw.strip_suffix('\n').unwrap_or(&raw);
    let pw = pw.strip_suffix('\r').unwrap_or(pw);
    if pw.contains('\n') {
        bail!("--password-stdin takes one line; got several");
    }
    acc::validate_password(pw)?;
    Ok((pw.to_owned(), false))
}

fn created(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

impl UserCommand {
    pub fn run(&self, ctx: &Ctx) -> anyhow::Result<()> {
        let store = &ctx.store()?;
        let json = ctx.json;
        match self {
            UserCommand::Add {
                name,
                role,
                sites,
                password_stdin,
            } => {
                acc::validate_username(name)?;
                let role = match role {
                    RoleArg::Admin => Role::Admin,
                    RoleArg::Viewer => Role::Viewer,
                };
                if role == Role::Admin && !sites.is_empty() {
                    bail!(
                        "admins see every site: --site is for viewers (drop it, or use --role viewer)"
                    );
                }
                let site_ids = sites
                    .iter()
                    .map(|s| pick_site(store, Some(s)).map(|s| s.id))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let (password, show) = new_password(*password_stdin)?;
                let hash = acc::hash_password(&password)?;
                let user = store.add_user(name, &hash, role, &site_ids, ctx.now())?;
                if json {
                    let mut v = serde_json::json!({"id": user.id, "name": user.username, "role": role.as_str()});
                    if show {
                        v["password"] = password.into();
                    }
                    println!("{v}");
                } else {
                    println!("Added {} user '{}'.", role.as_str(), user.username);
                    if show {
                        println!("Password (shown only now): {password}");
                    }
                    if role == Role::Viewer && site_ids.is_empty() {
                        println!("Note: a viewer without --site sees no site yet.");
                    }
                }
            }
            UserCommand::List => {
                let users = store.users()?;
                let sites = store.sites()?;
                let keys = |u: &crate::store::sqlite::User| -> Vec<String> {
                    u.sites
                        .iter()
                        .map(|id| {
                            sites
                                .iter()
                                .find(|s| s.id == *id)
                                .map(|s| s.key.to_string())
                                .unwrap_or_else(|| id.0.to_string())
                        })
                        .collect()
                };
                output::print_list(
                    json,
                    &users,
                    |u| {
                        serde_json::json!({
                            "id": u.id,
                            "name": u.username,
                            "role": u.role.as_str(),
                            "all_sites": u.role == Role::Admin,
                            "sites": keys(u),
                            "created": created(u.created_ms),
                        })
                    },
                    &["id", "name", "role", "sites", "created"],
                    |u| {
                        let sites = if u.role == Role::Admin {
                            "all".to_owned()
                        } else if u.sites.is_empty() {
                            "none".to_owned()
                        } else {
                            keys(u).join(",")
                        };
                        vec![
                            u.id.to_string(),
                            output::term_cell(&u.username, 64),
                            u.role.as_str().to_owned(),
                            sites,
                            created(u.created_ms),
                        ]
                    },
                    None,
                );
            }
            UserCommand::Remove { name } => {
                if !store.remove_user(name)? {
                    bail!("no user '{name}': see 'pixeltrack user list'");
                }
                store.checkpoint()?;
                if json {
                    println!("{}", serde_json::json!({"removed": name}));
                } else {
                    println!("Removed user '{name}' and ended its sessions.");
                }
            }
            UserCommand::Passwd {
                name,
                password_stdin,
            } => {
                let (password, show) = new_password(*password_stdin)?;
                let hash = acc::hash_password(&password)?;
                let Some(ended) = store.set_password(name, &hash)? else {
                    bail!("no user '{name}': see 'pixeltrack user list'");
                };
                // The old hash must not linger in the WAL.
                store.checkpoint()?;
                if json {
                    let mut v = serde_json::json!({"name": name, "sessions_ended": ended});
                    if show {
                        v["password"] = password.into();
                    }
                    println!("{v}");
                } else {
                    println!("Password of '{name}' changed; {ended} session(s) ended.");
                    if show {
                        println!("New password (shown only now): {password}");
                    }
                }
            }
        }
        Ok(())
    }
}
