//! `/api/v1/subjects/{id}`: one person's data (an email recipient, or a visitor id for
//! a token of all sites): every event as NDJSON (GDPR art. 15) or erased (art. 17).
//! Admin scope only.

use axum::extract::{Path, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::on;
use axum::Json;
use serde_json::{json, Value};

use super::params::Params;
use super::{blocking, ApiError, ApiRoute, ApiState, Auth, Op};
use crate::store::{PrivacyStore, Scope, Subject};

pub(super) const ROUTES: &[ApiRoute] = &[ApiRoute {
    path: "/api/v1/subjects/{id}",
    summary: "Export (GET, NDJSON) or erase (DELETE) every event of one person",
    methods: &[
        Op::get(Scope::Admin, |m| on(m, get))
            .returns(|| json!({"type": "string", "description": "one event per line, as the export writes it"}))
            .media("application/x-ndjson"),
        Op::delete(Scope::Admin, |m| on(m, delete)).returns(|| json!({"type": "object", "required": ["deleted"], "properties": {"deleted": {"type": "integer"}}})),
    ],
    parameters: Some(parameters),
}];

/// The query parameters, for the OpenAPI document (`{id}` comes from the path).
fn parameters() -> Value {
    json!([
        {"name": "type", "in": "query", "required": false, "schema": {"type": "string", "enum": ["recipient", "visitor"]}}
    ])
}

fn subject_of(auth: &Auth, id: String, parts: &Parts) -> Result<Subject, ApiError> {
    let p = Params::parse(parts, &["type"])?;
    match p.get("type").unwrap_or("recipient") {
        "recipient" => {
            if id.is_empty() || id.len() > crate::token::MAX_RECIPIENT {
                return Err(ApiError::BadRequest(
                    "recipient id must be 1 to 256 characters".into(),
                ));
            }
            Ok(Subject::Recipient {
                site_id: auth.0.site_id,
                recipient: id,
            })
        }
        "visitor" => {
            if auth.0.site_id.is_some() {
                return Err(ApiError::Forbidden(
                    "visitor subjects need a token for all sites".into(),
                ));
            }
            id.parse()
                .map(Subject::Visitor)
                .map_err(|_| ApiError::BadRequest("visitor id must be a number".into()))
        }
        _ => Err(ApiError::BadRequest(
            "'type' must be recipient or visitor".into(),
        )),
    }
}

/// `GET /api/v1/subjects/<id>`: every event of one person, as NDJSON (GDPR art. 15).
async fn get(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
    parts: Parts,
) -> Result<Response, ApiError> {
    let subject = subject_of(&auth, id, &parts)?;
    let store = state.store.clone();
    let events = blocking(move || store.subject_events(&subject)).await?;
    let mut body = String::new();
    for e in &events {
        body.push_str(&crate::report::export::json(e).to_string());
        body.push('\n');
    }
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}

/// `DELETE /api/v1/subjects/<id>`: erases one person (GDPR art. 17).
async fn delete(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
    parts: Parts,
) -> Result<Json<Value>, ApiError> {
    let subject = subject_of(&auth, id, &parts)?;
    let store = state.store.clone();
    let n = blocking(move || store.erase_subject(&subject)).await?;
    Ok(Json(json!({ "deleted": n })))
}
