//! pixeltrack: a self-hosted tracking-pixel and analytics server.
//!
//! The module tree is the data flow (see `docs/architecture.md`); a module uses only
//! the modules to its right and the shared ones.
//!
//! - The pipeline: `collect` (HTTP in: pixels, the tracker, email and ad links) →
//!   `enrich` (pure: user agent, bot, page, referrer, visitor id, money) → `ingest`
//!   (the queue and the one writer thread) → `store` (one trait per table family,
//!   `Store` for the event backend's; SQLite) → `report` (pure functions over rollups
//!   and raw events). `forward` ships the spool (the committed events) to ClickHouse,
//!   `replicate` shares sites, keys, salts and consent from an admin to its collectors,
//!   exactly once, when `store.backend = "clickhouse"`.
//! - The edges, side by side: `web` (the dashboard), `api` (JSON under `/api/v1`) and
//!   `cli` (the only place that prints errors and sets exit codes).
//! - `server` wires the stages and the edges into one process, with its periodic jobs.
//! - `scan` stands apart from the pipeline: it reads a page or an email (or fetches one
//!   page, refusing non-public addresses) and reports the trackers it carries, by the
//!   vendor patterns in `data/trackers.toml`; `cli` prints the report.
//! - Shared: `model` (ids, sites, `RawHit` → `Event`), `config`, `clock`, `metrics`,
//!   `secret` (random secrets, hashes, constant-time compares, issuing API tokens),
//!   `token` (signed email and ad link tokens), `tag` (tagging email HTML, ad links) and
//!   `refusals` (each site's refused hits of the last hour, for the dashboard).

// No `unsafe` anywhere (STYLE.md): the compiler holds it.
#![forbid(unsafe_code)]

pub mod api;
pub mod cli;
pub mod clock;
pub mod collect;
pub mod config;
pub mod enrich;
pub mod forward;
pub mod ingest;
pub mod metrics;
pub mod model;
pub mod refusals;
pub mod replicate;
pub mod report;
pub mod scan;
pub mod secret;
pub mod server;
pub mod store;
pub mod tag;
pub mod token;
pub mod web;
