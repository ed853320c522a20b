//! The JSON API under `/api/v1`, for scripts and the dashboard. Bearer tokens with a
//! scope (read < write < admin) and optionally one site; only a SHA-256 of a token is
//! stored. Every parameter is checked against an allowlist (400 otherwise), values are
//! bound, never spliced, and internal errors never leak into a response.
//!
//! One file per resource (`sites`, `campaigns`, `email`, `stats`, `funnel`, `export`,
//! `links`, `subjects`), each listing its own [`ApiRoute`]s; [`routes`] joins them, and
//! both [`router`] and the OpenAPI document ([`openapi()`]) are built from that one
//! list, so a route cannot exist without being documented. Shared by the resources:
//! `auth` (the bearer-token extractor, scopes, the sites a token sees), `params` (query
//! allowlists, date ranges, JSON bodies) and `error` (`ApiError`: statuses, messages,
//! internal causes logged once).

mod auth;
mod campaigns;
mod email;
mod error;
mod export;
mod funnel;
mod links;
mod openapi;
mod params;
mod sites;
mod stats;
mod subjects;

use std::sync::Arc;

use axum::middleware::from_fn_with_state;
use axum::routing::{MethodFilter, MethodRouter};
use axum::Router;
use serde_json::Value;

use crate::clock::Clock;
use crate::report;
use crate::store::{Scope, SqliteStore, TokenStore};

pub use auth::Auth;
pub use error::ApiError;
pub use openapi::openapi;
pub use params::Body;
pub use stats::{EXTRA_DIMENSIONS, INTERVALS, METRICS};

#[derive(Clone)]
pub struct ApiState {
    /// SQLite itself, not `dyn Store`, for now: API tokens and signing keys
    /// (`TokenStore`) live beside the events, and removals checkpoint the WAL.
    pub store: Arc<SqliteStore>,
    /// Public base URL for tagged emails.
    pub public_url: String,
    /// How conversions are credited in campaign reports.
    pub ads: report::ads::Model,
    /// Every "now" of the API: default date ranges, creation and sending times, keys.
    pub clock: Clock,
}

/// One documented path: what the OpenAPI document says about it, and its operations.
/// The router and the document are both built from these.
pub struct ApiRoute {
    pub path: &'static str,
    pub summary: &'static str,
    pub methods: &'static [Op],
    /// Query parameters shared by every method of the path, in OpenAPI form (path
    /// parameters come from the path itself).
    pub parameters: Option<fn() -> Value>,
}

/// One method of a path: the scope the token needs, checked before the handler runs,
/// the handler, and what the OpenAPI document says about it (its query parameters,
/// request body, success status and response).
pub struct Op {
    pub verb: Verb,
    /// `None`: no token at all.
    pub scope: Option<Scope>,
    pub handler: Handler,
    /// The status of success: 200, or 201 where the operation creates something.
    pub status: u16,
    /// Query parameters in OpenAPI form (path parameters come from the path).
    pub query: Option<fn() -> Value>,
    /// The JSON schema of the request body (required when present).
    pub body: Option<fn() -> Value>,
    /// The schema of the successful response, and its media type.
    pub returns: Option<fn() -> Value>,
    pub media: &'static str,
}

impl Op {
    const fn new(verb: Verb, scope: Scope, handler: Handler) -> Op {
        Op {
            verb,
            scope: Some(scope),
            handler,
            status: 200,
            query: None,
            body: None,
            returns: None,
            media: "application/json",
        }
    }
    /// Answers 201 Created.
    const fn created(self) -> Op {
        Op {
            status: 201,
            ..self
        }
    }
    const fn query(self, f: fn() -> Value) -> Op {
        Op {
            query: Some(f),
            ..self
        }
    }
    const fn body(self, f: fn() -> Value) -> Op {
        Op {
            body: Some(f),
            ..self
        }
    }
    const fn returns(self, f: fn() -> Value) -> Op {
        Op {
            returns: Some(f),
            ..self
        }
    }
    /// A response that is not JSON (NDJSON, CSV).
    const fn media(self, media: &'static str) -> Op {
        Op { media, ..self }
    }
    const fn get(scope: Scope, handler: Handler) -> Op {
        Op::new(Verb::Get, scope, handler)
    }
    const fn post(scope: Scope, handler: Handler) -> Op {
        Op::new(Verb::Post, scope, handler)
    }
    const fn patch(scope: Scope, handler: Handler) -> Op {
        Op::new(Verb::Patch, scope, handler)
    }
    const fn delete(scope: Scope, handler: Handler) -> Op {
        Op::new(Verb::Delete, scope, handler)
    }
}

/// Puts a handler on one method: `|m| on(m, handler)`, so the method is named once,
/// in the [`Op`] around it.
pub type Handler = fn(MethodFilter) -> MethodRouter<ApiState>;

/// The HTTP methods the API serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
    Patch,
    Delete,
}

impl Verb {
    /// The name as the OpenAPI document spells it.
    pub fn name(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::Post => "post",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
            Verb::Patch => MethodFilter::PATCH,
            Verb::Delete => MethodFilter::DELETE,
        }
    }
}

/// Every API route, each resource contributing its own.
pub fn routes() -> impl Iterator<Item = &'static ApiRoute> {
    [
        sites::ROUTES,
        campaigns::ROUTES,
        email::ROUTES,
        stats::ROUTES,
        export::ROUTES,
        funnel::ROUTES,
        links::ROUTES,
        subjects::ROUTES,
        openapi::ROUTES,
    ]
    .into_iter()
    .flatten()
}

/// The API router, built from [`routes`]: a route cannot exist without being documented.
/// Around each operation: its scope, checked before the handler reads anything (a read
/// token or a share link gets its 403 whatever it sends); around each route: the log of
/// internal errors, with the route's pattern.
pub fn router(state: ApiState) -> Router {
    let mut r = Router::new();
    for route in routes() {
        let handlers = route
            .methods
            .iter()
            .fold(MethodRouter::new(), |m, op| {
                let h = (op.handler)(op.verb.filter());
                m.merge(match op.scope {
                    Some(scope) => {
                        h.route_layer(from_fn_with_state((state.clone(), scope), auth::require))
                    }
                    None => h,
                })
            })
            .route_layer(from_fn_with_state(route.path, error::log_internal));
        r = r.route(route.path, handlers);
    }
    r.with_state(state)
}

/// Runs store work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> crate::store::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    Ok(tokio::task::spawn_blocking(f).await??)
}

/// The keys that sign email and ad links, as of the API clock's now.
async fn keyring(state: &ApiState) -> Result<crate::token::Keyring, ApiError> {
    let (store, now) = (state.store.clone(), state.clock.now_ms());
    let keys = blocking(move || store.token_keys(now)).await?;
    Ok(crate::token::Keyring::from_masters(keys))
}
