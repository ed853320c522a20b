//! `ApiError`: the one place an API failure gets its status and its JSON message. A
//! caller's mistake says what to change; an internal failure says only "see the server
//! log", and its cause travels beside the response to [`log_internal`], which logs it
//! once, with the method and route. Store, task and serialisation errors convert with
//! `?` (a store `Conflict` is the caller's to resolve: 409 with its message).

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::store::StoreError;

#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    Unauthorized,
    Forbidden(String),
    NotFound(String),
    Conflict(String),
    /// A limit on concurrent work (429, with `Retry-After`).
    TooMany(String),
    /// A failure of ours; the cause goes to the log, never into the response.
    Internal(String),
}

/// The cause of a 500, for [`log_internal`].
#[derive(Clone)]
struct InternalCause(String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut cause = None;
        let (status, msg) = match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "missing or unknown API token: send 'Authorization: Bearer pt_…' (create one with 'pixeltrack token create')".into(),
            ),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, m),
            ApiError::TooMany(m) => (StatusCode::TOO_MANY_REQUESTS, m),
            ApiError::Internal(e) => {
                cause = Some(InternalCause(e));
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; see the server log".into(),
                )
            }
        };
        let mut res = (status, Json(json!({ "error": msg }))).into_response();
        if status == StatusCode::TOO_MANY_REQUESTS {
            res.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("10"));
        }
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        if let Some(c) = cause {
            res.extensions_mut().insert(c);
        }
        res
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => ApiError::Conflict(m),
            e => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(e: serde_json::Error) -> Self {
        ApiError::Internal(e.to_string())
    }
}

/// Logs the cause of every internal error once, with the method and the route's
/// pattern (not the path: a path can carry a recipient id).
pub(super) async fn log_internal(
    State(route): State<&'static str>,
    req: Request,
    next: Next,
) -> Response {
    let method = req.method().clone();
    let res = next.run(req).await;
    if let Some(InternalCause(e)) = res.extensions().get::<InternalCause>() {
        tracing::error!(%method, route, error = %e, "api request failed");
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(res: Response) -> String {
        let b = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        String::from_utf8(b.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn an_internal_cause_reaches_the_log_side_never_the_body() {
        let e = ApiError::from(StoreError::Sqlite(rusqlite::Error::InvalidQuery));
        let res = e.into_response();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let cause = res.extensions().get::<InternalCause>().map(|c| c.0.clone());
        assert!(cause.is_some_and(|c| c.contains("database error")));
        let text = body(res).await;
        assert_eq!(text, r#"{"error":"internal error; see the server log"}"#);
    }

    #[tokio::test]
    async fn a_store_conflict_is_the_callers_to_resolve() {
        let res = ApiError::from(StoreError::Conflict("domain taken".into())).into_response();
        assert_eq!(res.status(), StatusCode::CONFLICT);
        assert!(res.extensions().get::<InternalCause>().is_none());
        assert_eq!(body(res).await, r#"{"error":"domain taken"}"#);
    }
}
