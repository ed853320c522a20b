//! The integration tests, as one binary (`autotests = false` in Cargo.toml): one file
//! per area in `tests/integration/`, and the shared harness in `tests/common/`,
//! compiled once. Run one area with `cargo test --test integration app::`.
//!
//! The headless-Chromium suites (`tests/browser.rs`, `tests/dashboard_browser.rs`)
//! stay test targets of their own, which `.ci/run` runs by name with `--ignored`.

mod common;

mod integration {
    mod accounts;
    mod ads;
    mod api;
    mod app;
    mod binary;
    mod cli;
    mod dashboard;
    mod dropin;
    mod email;
    mod email_corpus;
    mod geo;
    mod import;
    mod manage;
    mod privacy;
    mod reports;
    mod scan;
    mod web;
}
