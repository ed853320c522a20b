//! pixeltrack: a self-hosted tracking-pixel and analytics server.
//!
//! The module tree is the data flow (see `docs/architecture.md`):
//! `collect → enrich → ingest → store → report → cli`, plus the shared
//! `model`, `config`, `clock` and `metrics`. A stage only uses stages to its right.

pub mod api;
pub mod cli;
pub mod clock;
pub mod collect;
pub mod config;
pub mod enrich;
pub mod ingest;
pub mod metrics;
pub mod model;
pub mod report;
pub mod secret;
pub mod server;
pub mod store;
pub mod tag;
pub mod token;
pub mod web;
