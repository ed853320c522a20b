//! The dashboard edge: server-rendered HTML for people, behind login sessions.
//!
//! Every string shown here may come from an attacker (user agents, referrers, titles),
//! so pages are built only with maud (escapes at compile time), served with a strict
//! Content-Security-Policy (no inline script or style), and every state-changing form
//! carries a per-session CSRF token. `accounts` holds sign-in, sessions, CSRF and the
//! `CurrentUser` extractor; `layout` the common page frame and security headers.

pub mod accounts;
pub mod chart;
pub mod dashboard;
pub mod details;
pub mod layout;
pub mod manage;
pub mod map;
pub mod settings;
pub mod share;
mod throttle;

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::html;

use crate::clock::Clock;
use crate::store::SqliteStore;

pub use accounts::{check_csrf, Access, CsrfForm, CurrentUser, NoFields};

/// Maps the socket peer and request headers to the client address (the server passes
/// one that honours `trusted_proxies`); used for login throttling only.
pub type ClientIpFn = dyn Fn(IpAddr, &HeaderMap) -> IpAddr + Send + Sync;

/// State of the dashboard routes. Dashboard pages can use it directly, or hold it in
/// their own state and implement `FromRef` so `CurrentUser` keeps working.
#[derive(Clone)]
pub struct WebState {
    /// SQLite itself, not `dyn Store`, for now: users, login sessions and share links
    /// (`store/sqlite/accounts.rs`) and API tokens live there.
    pub store: Arc<SqliteStore>,
    pub clock: Clock,
    /// `public_url` without a trailing slash.
    pub public_url: String,
    /// Cookies get `Secure` when the public URL is https.
    pub secure_cookies: bool,
    pub client_ip: Arc<ClientIpFn>,
    /// How conversions are credited in reports.
    pub ads: crate::report::ads::Model,
    /// Each site's refused hits of the last hour (the collector's, when serving).
    pub refusals: Arc<crate::refusals::Refusals>,
    throttle: Arc<throttle::Throttle>,
    /// Bounds concurrent argon2 runs (19 MiB each): a login flood queues, not swaps.
    hashing: Arc<tokio::sync::Semaphore>,
}

impl WebState {
    pub fn new(
        store: Arc<SqliteStore>,
        clock: Clock,
        public_url: &str,
        client_ip: Arc<ClientIpFn>,
    ) -> WebState {
        WebState {
            store,
            clock,
            public_url: public_url.trim_end_matches('/').to_owned(),
            secure_cookies: public_url.starts_with("https://"),
            client_ip,
            ads: crate::report::ads::Model::from_config(&crate::config::Config::default().ads),
            refusals: Arc::default(),
            throttle: Arc::default(),
            hashing: Arc::new(tokio::sync::Semaphore::new(4)),
        }
    }
}

/// Errors of dashboard requests: each becomes a small HTML page with a status code;
/// internals go to the log, never into the page.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    /// An upload or a batch past its bound (413): the message says the bound.
    #[error("{0}")]
    TooLarge(String),
    #[error("not found")]
    NotFound,
    #[error("internal error; see the server log")]
    Internal,
}

impl WebError {
    /// Logs `e` and hides it behind a generic 500.
    pub fn internal(e: impl std::fmt::Display) -> WebError {
        tracing::error!(error = %e, "dashboard request failed");
        WebError::Internal
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = match self {
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Forbidden(_) => StatusCode::FORBIDDEN,
            WebError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let title = status.canonical_reason().unwrap_or("Error");
        let body = html! {
            h1 { (title) }
            p.error { (self.to_string()) }
            p { a href="/" { "Back to the dashboard" } }
        };
        (status, layout::render(layout::page(title, None, body))).into_response()
    }
}

/// The dashboard's routes, with the security headers on every response.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(dashboard::home))
        .route("/sites/{key}", get(dashboard::site_page))
        .route("/sites/{key}/realtime.json", get(dashboard::realtime_json))
        .route("/sites/{key}/details/{dim}", get(details::show))
        .route("/campaigns/{id}", get(dashboard::campaign_page))
        .route("/settings", get(settings::show))
        .route("/settings/sites", post(settings::add_site))
        .route("/settings/sites/{key}", post(settings::save_site))
        .route("/settings/sites/{key}/remove", post(settings::remove_site))
        .route("/settings/users", post(settings::add_user))
        .route("/settings/users/{id}/remove", post(settings::remove_user))
        .route("/settings/tokens", post(settings::add_token))
        .route("/settings/tokens/{id}/revoke", post(settings::revoke_token))
        .route("/settings/shares", post(settings::add_share))
        .route("/settings/shares/{id}/revoke", post(settings::revoke_share))
        .route("/share/{secret}", get(share::show).post(share::unlock))
        .route("/share/{secret}/realtime.json", get(share::realtime))
        .route("/share/{secret}/details/{dim}", get(share::details))
        .route(layout::SCRIPT_PATH, get(layout::script))
        .route("/login", get(accounts::login_page).post(accounts::login))
        .route("/logout", post(accounts::logout))
        .route(layout::STYLESHEET_PATH, get(layout::stylesheet))
        .merge(manage::routes())
        .layer(axum::middleware::map_response(layout::security_headers))
        .with_state(state)
}
