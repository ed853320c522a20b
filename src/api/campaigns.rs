//! `/api/v1/campaigns`: a site's email and ad campaigns: listing, creating, renaming,
//! their cost, when they were sent and to how many, their report, and deleting one
//! with its events. A campaign of a site the token does not see is "not found".

use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::on;
use axum::Json;
use serde_json::{json, Value};

use super::params::Params;
use super::{blocking, openapi, ApiError, ApiRoute, ApiState, Auth, Body, Op};
use crate::model::{Campaign, Site};
use crate::report;
use crate::store::{CampaignStore, Scope, SiteStore};

pub(super) const ROUTES: &[ApiRoute] = &[
    ApiRoute {
        path: "/api/v1/campaigns",
        summary: "A site's email campaigns (GET ?site=); create one (POST {site, name}; write scope)",
        methods: &[
            Op::get(Scope::Read, |m| on(m, list))
                .query(|| json!([openapi::site_param()]))
                .returns(openapi::campaigns),
            Op::post(Scope::Write, |m| on(m, create))
                .created()
                .body(|| json!({"type": "object", "additionalProperties": false, "required": ["name"],
                                "properties": {"site": {"type": "string", "description": "site key or domain"}, "name": {"type": "string"}}}))
                .returns(openapi::campaign),
        ],
        parameters: None,
    },
    ApiRoute {
        path: "/api/v1/campaigns/{id}",
        summary: "Change a campaign (PATCH {name, cost: {amount, currency} or null}) or delete it with its events",
        methods: &[
            Op::patch(Scope::Write, |m| on(m, update))
                .body(|| json!({"type": "object", "additionalProperties": false, "properties": {
                    "name": {"type": "string"},
                    "cost": {"allOf": [openapi::schema_ref("Money")], "nullable": true}
                }}))
                .returns(openapi::campaign),
            Op::delete(Scope::Write, |m| on(m, delete)).returns(|| openapi::one("deleted", "integer")),
        ],
        parameters: None,
    },
    ApiRoute {
        path: "/api/v1/campaigns/{id}/sent",
        summary: "Record when a campaign was sent and to how many (POST {count, at})",
        methods: &[Op::post(Scope::Write, |m| on(m, sent))
            .body(|| json!({"type": "object", "additionalProperties": false, "properties": {
                "count": {"type": "integer", "minimum": 0, "description": "emails delivered"},
                "at": {"type": "string", "format": "date-time", "description": "default: now"}
            }}))
            .returns(openapi::campaign)],
        parameters: None,
    },
    ApiRoute {
        path: "/api/v1/campaigns/{id}/report",
        summary: "An email campaign's report, human and machine numbers side by side",
        methods: &[Op::get(Scope::Read, |m| on(m, campaign_report)).returns(openapi::any_object)],
        parameters: None,
    },
];

/// A campaign as JSON, with its site's key and name beside the id.
fn campaign_json(c: &Campaign, sites: &[Site]) -> Value {
    let site = sites.iter().find(|s| s.id.0 == c.site_id);
    let cost = c
        .cost
        .as_ref()
        .map(|(m, cur)| json!({"amount": crate::enrich::money::format(*m, cur), "currency": cur}));
    json!({"id": c.id, "site_id": c.site_id, "site_key": site.map(|s| s.key.as_str()), "site_name": site.map(|s| s.name.as_str()),
        "name": c.name, "sent_ms": c.sent_ms, "delivered": c.delivered, "cost": cost})
}

/// [`campaign_json`] for a campaign whose site is read from the store.
async fn campaign_value(state: &ApiState, c: &Campaign) -> Result<Value, ApiError> {
    let store = state.store.clone();
    let sites = blocking(move || store.sites()).await?;
    Ok(campaign_json(c, &sites))
}

/// Campaign `id` (as the path or body gives it), if the token sees its site.
pub(super) async fn own_campaign(
    state: &ApiState,
    auth: &Auth,
    id: &str,
) -> Result<Campaign, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::BadRequest("campaign id must be a number".into()))?;
    let store = state.store.clone();
    match blocking(move || store.campaign(id)).await? {
        Some(c) if auth.may_see(c.site_id) => Ok(c),
        _ => Err(not_found(id)),
    }
}

fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("no campaign {id} for this token"))
}

async fn list(
    State(state): State<ApiState>,
    auth: Auth,
    parts: Parts,
) -> Result<Json<Value>, ApiError> {
    let p = Params::parse(&parts, &["site"])?;
    let site = auth.site(&state, p.get("site")).await?;
    let store = state.store.clone();
    let list = blocking(move || store.campaigns(Some(site.id))).await?;
    let sites = [site];
    Ok(Json(Value::Array(
        list.iter().map(|c| campaign_json(c, &sites)).collect(),
    )))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCampaign {
    site: Option<String>,
    name: String,
}

async fn create(
    State(state): State<ApiState>,
    auth: Auth,
    Body(b): Body<NewCampaign>,
) -> Result<Response, ApiError> {
    let site = auth.site(&state, b.site.as_deref()).await?;
    if !crate::model::valid_name(&b.name) {
        return Err(ApiError::BadRequest(
            "'name' must be 1 to 200 characters".into(),
        ));
    }
    let store = state.store.clone();
    let now = state.clock.now_ms();
    let s2 = site.clone();
    let c = blocking(move || store.add_campaign(s2.id, b.name.trim(), now)).await?;
    Ok((StatusCode::CREATED, Json(campaign_json(&c, &[site]))).into_response())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CampaignChange {
    name: Option<String>,
    /// `{amount: "250.00", currency: "EUR"}`, or `null` to clear.
    #[serde(default, with = "serde_cost")]
    cost: Option<Option<Cost>>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Cost {
    amount: String,
    currency: String,
}

/// Tells an absent `cost` (`None`) from an explicit `null` (`Some(None)`).
mod serde_cost {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<super::Cost>>, D::Error> {
        Ok(Some(Option::<super::Cost>::deserialize(d)?))
    }
}

async fn update(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
    Body(b): Body<CampaignChange>,
) -> Result<Json<Value>, ApiError> {
    let c = own_campaign(&state, &auth, &id).await?;
    if b.name
        .as_deref()
        .is_some_and(|n| !crate::model::valid_name(n))
    {
        return Err(ApiError::BadRequest(
            "'name' must be 1 to 200 characters".into(),
        ));
    }
    let cost = match &b.cost {
        None => None,
        Some(None) => Some(None),
        Some(Some(k)) => {
            let (code, exp) = crate::enrich::money::currency(&k.currency).ok_or_else(|| {
                ApiError::BadRequest("'currency' must be an ISO 4217 code such as EUR".into())
            })?;
            let minor = crate::enrich::money::parse_amount(&k.amount, exp)
                .map_err(|e| ApiError::BadRequest(format!("'amount': {e}")))?;
            Some(Some((minor, code)))
        }
    };
    let store = state.store.clone();
    let name = b.name.clone();
    let updated = blocking(move || {
        if let Some(n) = name {
            store.rename_campaign(c.id, n.trim())?;
        }
        if let Some(k) = cost {
            store.set_campaign_cost(c.id, k)?;
        }
        store.campaign(c.id)
    })
    .await?;
    match updated {
        Some(c) => Ok(Json(campaign_value(&state, &c).await?)),
        None => Err(ApiError::NotFound(format!(
            "no campaign {id} for this token"
        ))),
    }
}

async fn delete(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let c = own_campaign(&state, &auth, &id).await?;
    let store = state.store.clone();
    blocking(move || {
        store.remove_campaign(c.id)?;
        store.checkpoint()
    })
    .await?;
    Ok(Json(json!({"deleted": c.id})))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Sent {
    /// Emails delivered.
    count: Option<i64>,
    /// RFC 3339 time; default now.
    at: Option<String>,
}

async fn sent(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
    Body(b): Body<Sent>,
) -> Result<Json<Value>, ApiError> {
    let c = own_campaign(&state, &auth, &id).await?;
    if b.count.is_some_and(|n| n < 0) {
        return Err(ApiError::BadRequest("'count' cannot be negative".into()));
    }
    let at = match b.at {
        None => state.clock.now_ms(),
        Some(t) => chrono::DateTime::parse_from_rfc3339(&t)
            .map(|t| t.timestamp_millis())
            .map_err(|_| {
                ApiError::BadRequest(
                    "'at' must be an RFC 3339 time such as 2026-11-29T10:00:00Z".into(),
                )
            })?,
    };
    let store = state.store.clone();
    let c = blocking(move || {
        store.set_campaign_sent(c.id, b.count, Some(at))?;
        Ok(store.campaign(c.id)?.unwrap_or(c))
    })
    .await?;
    Ok(Json(campaign_value(&state, &c).await?))
}

async fn campaign_report(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::BadRequest("campaign id must be a number".into()))?;
    let (store, model, now) = (state.store.clone(), state.ads, state.clock.now_ms());
    let visible = move |site_id| auth.may_see(site_id);
    let found = blocking(move || {
        let Some(c) = store.campaign(id)?.filter(|c| visible(c.site_id)) else {
            return Ok(None);
        };
        report::campaign(store.as_ref(), &c, model, now, true).map(Some)
    })
    .await?;
    match found {
        Some(r) => Ok(Json(serde_json::to_value(&r)?)),
        None => Err(not_found(id)),
    }
}
