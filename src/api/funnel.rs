//! `/api/v1/funnel`: how many visits (or visitors, within a number of days) went
//! through ordered steps, each a page or event pattern, with the drop-off per step.

use axum::extract::State;
use axum::http::request::Parts;
use axum::routing::on;
use axum::Json;
use serde_json::{json, Value};

use super::params::Params;
use super::{blocking, ApiError, ApiRoute, ApiState, Auth, Op};
use crate::report::{self, DateRange};
use crate::store::{Pattern, Scope};

pub(super) const ROUTES: &[ApiRoute] = &[ApiRoute {
    path: "/api/v1/funnel",
    summary: "How many visits (or visitors) went through ordered steps (?site=&from=&to=&step=/a&step=event:b&within=visit|7d)",
    methods: &[Op::get(Scope::Read, |m| on(m, funnel))
        .query(|| {
            let [from, to] = super::openapi::date_params();
            json!([
                super::openapi::site_param(), from, to,
                {"name": "step", "in": "query", "required": true, "style": "form", "explode": true,
                 "schema": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 32},
                 "description": "2 to 32 steps, in order: a path (/pricing), page:/blog/* or event:signup"},
                {"name": "within", "in": "query", "required": false, "schema": {"type": "string"},
                 "description": "visit (default), or a number of days such as 7d"}
            ])
        })
        .returns(|| json!({"type": "object", "required": ["from", "to", "steps"], "properties": {
            "from": {"type": "string", "format": "date"},
            "to": {"type": "string", "format": "date"},
            "steps": {"type": "array", "items": {"type": "object", "additionalProperties": true}}
        }}))],
    parameters: None,
}];

/// `GET /api/v1/funnel`.
async fn funnel(
    State(state): State<ApiState>,
    auth: Auth,
    parts: Parts,
) -> Result<Json<Value>, ApiError> {
    let p = Params::parse(&parts, &["site", "from", "to", "step", "within"])?;
    let site = auth.site(&state, p.get("site")).await?;
    let steps = p
        .all("step")
        .map(|v| {
            Pattern::parse(v).ok_or_else(|| {
                ApiError::BadRequest(
                    "a step is a path (/pricing), page:/blog/* or event:signup".into(),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if !(2..=32).contains(&steps.len()) {
        return Err(ApiError::BadRequest(
            "a funnel has 2 to 32 'step' parameters".into(),
        ));
    }
    let within =
        report::ads::Within::parse(p.get("within").unwrap_or("visit")).ok_or_else(|| {
            ApiError::BadRequest("'within' is visit or a number of days such as 7d".into())
        })?;
    let range = p.range(state.clock.now_ms())?;
    let (from, to) = (range.from_day, range.to_day);
    let store = state.store.clone();
    let r =
        blocking(move || report::ads::funnel(store.as_ref(), &site, range, &steps, within)).await?;
    Ok(Json(
        json!({"from": DateRange::date(from), "to": DateRange::date(to), "steps": r}),
    ))
}
