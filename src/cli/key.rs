//! `pixeltrack key`: the keys that sign email and ad links: list them, rotate (a new
//! key signs, old ones still verify), retire an old one (its links stop working).

use anyhow::bail;
use serde_json::json;

use super::args::Ctx;
use crate::store::TokenStore;

#[derive(clap::Subcommand, Debug)]
pub enum KeyCommand {
    /// List keys; the newest signs.
    List,
    /// Add a new signing key (old links keep working).
    Rotate,
    /// Remove an old key: links signed with it stop working.
    Retire { id: u8 },
}

impl KeyCommand {
    pub fn run(&self, ctx: &Ctx) -> anyhow::Result<()> {
        let store = ctx.store()?;
        let now = ctx.now();
        match self {
            KeyCommand::List => {
                let ids: Vec<u8> = store
                    .token_keys(now)?
                    .into_iter()
                    .map(|(id, _)| id)
                    .collect();
                if ctx.json {
                    println!("{}", json!({"keys": ids, "signing": ids.last()}));
                } else {
                    for id in &ids {
                        let role = if Some(id) == ids.last() {
                            "signs and verifies"
                        } else {
                            "verifies"
                        };
                        println!("key {id}: {role}");
                    }
                }
            }
            KeyCommand::Rotate => {
                store.token_keys(now)?;
                let id = store.rotate_token_key(now)?;
                if ctx.json {
                    println!("{}", json!({"signing": id}));
                } else {
                    println!("Key {id} now signs new links; older keys still verify. A running server picks it up within a minute.");
                }
            }
            KeyCommand::Retire { id } => {
                if !store.retire_token_key(*id)? {
                    bail!("no key {id}: see 'pixeltrack key list'");
                }
                if ctx.json {
                    println!("{}", json!({"retired": id}));
                } else {
                    println!("Key {id} retired: links signed with it no longer work.");
                }
            }
        }
        Ok(())
    }
}
