//! `/api/v1/links`: signed ad links, as `pixeltrack link create` makes them; a click
//! redirects to the landing page with a click id appended, for attribution.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::on;
use axum::Json;
use serde_json::json;

use super::campaigns::own_campaign;
use super::{keyring, ApiError, ApiRoute, ApiState, Auth, Body, Op};
use crate::store::Scope;

pub(super) const ROUTES: &[ApiRoute] = &[ApiRoute {
    path: "/api/v1/links",
    summary: "Make a signed ad link (POST {campaign, url, ad, placement}); clicks append a click id to the landing URL",
    methods: &[Op::post(Scope::Write, |m| on(m, create))
        .created()
        .body(|| json!({"type": "object", "additionalProperties": false, "required": ["campaign", "url"], "properties": {
            "campaign": {"type": "integer"},
            "url": {"type": "string", "description": "the landing page (http or https)"},
            "ad": {"type": "string"},
            "placement": {"type": "string"}
        }}))
        .returns(|| json!({"type": "object", "required": ["url", "destination", "campaign"], "properties": {
            "url": {"type": "string", "description": "the signed link to publish"},
            "destination": {"type": "string"},
            "campaign": {"type": "integer"},
            "ad": {"type": "string", "nullable": true},
            "placement": {"type": "string", "nullable": true}
        }}))],
    parameters: None,
}];

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NewLink {
    campaign: i64,
    url: String,
    ad: Option<String>,
    placement: Option<String>,
}

/// `POST /api/v1/links`: a signed ad link, as `pixeltrack link create` makes it.
async fn create(
    State(state): State<ApiState>,
    auth: Auth,
    Body(b): Body<NewLink>,
) -> Result<Response, ApiError> {
    let c = own_campaign(&state, &auth, &b.campaign.to_string()).await?;
    let ring = keyring(&state).await?;
    let (link, url) = crate::tag::ad_link(
        &ring,
        &state.public_url,
        c.site_id,
        c.id,
        b.ad.as_deref(),
        b.placement.as_deref(),
        &b.url,
    )
    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok((StatusCode::CREATED, Json(json!({"url": link, "destination": url, "campaign": c.id, "ad": b.ad, "placement": b.placement}))).into_response())
}
