//! Store: where events and their rollups live, behind traits so report, web, api and
//! cli never know which backend runs; SQLite (embedded, WAL, one writer) is the first
//! backend, ClickHouse the next (issue 13).
//!
//! One trait per table family: [`SiteStore`] (sites, their settings and goals),
//! [`CampaignStore`], [`EventStore`] (raw events), [`RollupStore`] and [`PrivacyStore`]
//! (consent, retention, subject requests). [`Store`] is all of them: what an event
//! backend must serve. [`TokenStore`] (API tokens, signing keys) and dashboard
//! accounts (`sqlite/accounts.rs`) belong to the installation, not to the event
//! backend, so `Store` leaves them out. `use crate::store::prelude::*` brings every
//! trait into scope for calls on a concrete store.
//!
//! The writer commits raw events first: they are the durable log (the spool) that
//! everything else derives from. Sessions, rollup deltas and unique-visitor candidates
//! ([`Derived`]) follow in the same transaction when the writer is idle, or a little
//! later under load, together with a high-water mark; after a crash the writer rebuilds
//! them exactly from the events past the mark (see `ingest`).

mod campaigns;
pub mod clickhouse;
mod derived;
mod dim;
pub(crate) mod events;
mod filter;
mod pattern;
mod privacy;
mod rollups;
pub mod segments;
mod sites;
pub mod sqlite;
mod tokens;
mod web_counts;

pub use campaigns::CampaignStore;
pub use derived::{Derived, Dims, SessionRow, UniqueCandidate};
pub use dim::{session_values, Dim, ScreenSize, SESSION_DIMS};
pub use events::{AdCount, EmailRow, EventStore, KeptDays, Reclassify, Touch, WebRow};
pub use filter::{Filter, FilterOp};
pub use pattern::{Pattern, PatternKind};
pub use privacy::{PrivacyStore, Subject};
pub use rollups::{Counts, RollupKey, RollupRef, RollupStore, RollupSum, Rollups};
pub use sites::{Goal, SiteStore};
pub use sqlite::{compact_rollups, run_retention, SqliteStore, HOURLY_ROLLUP_DAYS};
pub use tokens::{ApiToken, Scope, TokenStore};
pub use web_counts::{group_name, Group, Tally, WebCounts};

/// Every store trait, for `use crate::store::prelude::*`.
pub mod prelude {
    pub use super::{
        CampaignStore, EventStore, PrivacyStore, RollupStore, SiteStore, Store, TokenStore,
    };
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    File {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Conflict(String),
    #[error("the database was written by a newer pixeltrack (schema {found}, this binary knows {known})")]
    SchemaTooNew { found: i64, known: i64 },
    /// The database file cannot be opened or is not a sound pixeltrack database.
    #[error("{path}: {why}")]
    Unusable {
        path: std::path::PathBuf,
        why: String,
    },
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// What an event backend serves: every family but the installation's own (API tokens
/// and signing keys, [`TokenStore`]; dashboard accounts). Implemented for any type
/// that implements the families.
pub trait Store: SiteStore + CampaignStore + EventStore + RollupStore + PrivacyStore {}

impl<T> Store for T where
    T: SiteStore + CampaignStore + EventStore + RollupStore + PrivacyStore + ?Sized
{
}

/// What reports read of the event data: raw events and rollups. A store can take
/// these from another backend (the events and rollups forwarded to ClickHouse) while
/// sites, campaigns and privacy settings stay where it is
/// ([`SqliteStore::with_reads_from`]).
pub trait EventReads: EventStore + RollupStore {}

impl<T> EventReads for T where T: EventStore + RollupStore + ?Sized {}
