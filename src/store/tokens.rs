//! API tokens and the keys that sign email and ad tokens ([`TokenStore`]). They
//! belong to the installation that serves the API and signs links, like dashboard
//! accounts, so [`Store`](super::Store) — what an event backend serves — leaves them out.

use super::Result;
use crate::clock::Millis;

/// API tokens (stored as hashes) and token signing keys.
pub trait TokenStore: Send + Sync {
    /// Token master keys `(id, key)`; creates the first one if there is none.
    fn token_keys(&self, now: Millis) -> Result<Vec<(u8, [u8; 32])>>;
    /// Adds a new signing key; returns its id.
    fn rotate_token_key(&self, now: Millis) -> Result<u8>;
    /// Removes a key: tokens signed with it stop verifying.
    fn retire_token_key(&self, id: u8) -> Result<bool>;

    /// Stores a token's metadata under the SHA-256 `hash` of its secret; returns its id.
    fn add_api_token(&self, t: &ApiToken, hash: &str) -> Result<i64>;
    fn api_token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>>;
    fn api_tokens(&self) -> Result<Vec<ApiToken>>;
    fn revoke_api_token(&self, id: i64) -> Result<bool>;
}

/// What an API token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Read reports and settings.
    Read,
    /// Also create and change sites and campaigns.
    Write,
    /// Also subject access and erasure.
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<Scope> {
        [Scope::Read, Scope::Write, Scope::Admin]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// An API token's metadata (its secret is never stored).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    pub scope: Scope,
    /// Limited to one site, or all sites when `None`.
    pub site_id: Option<i64>,
    pub created_ms: Millis,
}
