//! `/api/v1/sites`: the sites a token sees; creating, changing (name, hosts, privacy,
//! retention) and deleting one with all of its data (write scope; a token limited to
//! one site cannot create sites).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::on;
use axum::Json;
use serde_json::{json, Value};

use super::{blocking, openapi, ApiError, ApiRoute, ApiState, Auth, Body, Op};
use crate::model::{PrivacyMode, SiteKey, WithoutConsent};
use crate::store::{Scope, SiteStore};

pub(super) const ROUTES: &[ApiRoute] = &[
    ApiRoute {
        path: "/api/v1/sites",
        summary: "Sites this token can see (GET); create one (POST {domain, name}; write scope)",
        methods: &[
            Op::get(Scope::Read, |m| on(m, list)).returns(openapi::sites),
            Op::post(Scope::Write, |m| on(m, create))
                .created()
                .body(new_site_schema)
                .returns(openapi::site),
        ],
        parameters: None,
    },
    ApiRoute {
        path: "/api/v1/sites/{id}",
        summary: "Change a site (PATCH {name, hosts, privacy_mode, gpc, dnt, without_consent, retention_days, matomo_id}) or delete it and all of its data",
        methods: &[
            Op::patch(Scope::Write, |m| on(m, update))
                .body(site_change_schema)
                .returns(|| openapi::one("updated", "string")),
            Op::delete(Scope::Write, |m| on(m, delete)).returns(|| openapi::one("deleted", "string")),
        ],
        parameters: None,
    },
];

fn new_site_schema() -> Value {
    json!({"type": "object", "additionalProperties": false, "required": ["domain"],
           "properties": {"domain": {"type": "string"}, "name": {"type": "string"}}})
}

fn site_change_schema() -> Value {
    json!({"type": "object", "additionalProperties": false, "properties": {
        "name": {"type": "string"},
        "hosts": {"type": "array", "items": {"type": "string"}},
        "privacy_mode": {"type": "string"},
        "gpc": {"type": "boolean"},
        "dnt": {"type": "boolean"},
        "without_consent": {"type": "string"},
        "retention_days": {"type": "integer", "minimum": 0, "nullable": true},
        "matomo_id": {"type": "integer", "minimum": 0, "nullable": true}
    }})
}

async fn list(State(state): State<ApiState>, auth: Auth) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    let sites = blocking(move || store.sites()).await?;
    let list: Vec<Value> = sites
        .iter()
        .filter(|s| auth.may_see(s.id.0))
        .map(|s| json!({"key": s.key.as_str(), "domain": s.domain, "name": s.name, "matomo_id": s.matomo_id}))
        .collect();
    Ok(Json(Value::Array(list)))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSite {
    domain: String,
    name: Option<String>,
}

async fn create(
    State(state): State<ApiState>,
    auth: Auth,
    Body(b): Body<NewSite>,
) -> Result<Response, ApiError> {
    if auth.0.site_id.is_some() {
        return Err(ApiError::Forbidden(
            "a token limited to one site cannot create sites".into(),
        ));
    }
    let (domain, name) = crate::model::new_site(&b.domain, b.name.as_deref())
        .map_err(|e| ApiError::BadRequest(e.into()))?;
    let store = state.store.clone();
    let now = state.clock.now_ms();
    let s =
        blocking(move || store.add_site(&SiteKey::generate(), &domain, name.trim(), now)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"key": s.key.as_str(), "domain": s.domain, "name": s.name})),
    )
        .into_response())
}

async fn delete(
    State(state): State<ApiState>,
    auth: Auth,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let site = auth.site(&state, Some(&key)).await?;
    let store = state.store.clone();
    blocking(move || {
        store.remove_site(&site.key)?;
        store.checkpoint()
    })
    .await?;
    Ok(Json(json!({"deleted": key})))
}

/// `PATCH /api/v1/sites/{id}`: only the fields given change.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteChange {
    name: Option<String>,
    hosts: Option<Vec<String>>,
    privacy_mode: Option<String>,
    gpc: Option<bool>,
    dnt: Option<bool>,
    without_consent: Option<String>,
    /// `null` keeps raw events forever.
    #[serde(default, with = "serde_with_null")]
    retention_days: Option<Option<u32>>,
    /// The Matomo `idsite` mapped to this site; `null` unmaps it.
    #[serde(default, with = "serde_with_null")]
    matomo_id: Option<Option<u32>>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
mod serde_with_null {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<u32>>, D::Error> {
        Ok(Some(Option::<u32>::deserialize(d)?))
    }
}

async fn update(
    State(state): State<ApiState>,
    auth: Auth,
    Path(key): Path<String>,
    Body(b): Body<SiteChange>,
) -> Result<Json<Value>, ApiError> {
    let site = auth.site(&state, Some(&key)).await?;
    let bad = |m: &str| ApiError::BadRequest(m.to_owned());
    if b.name
        .as_deref()
        .is_some_and(|n| !crate::model::valid_name(n))
    {
        return Err(bad("'name' must be 1 to 200 characters"));
    }
    let hosts = match &b.hosts {
        None => None,
        Some(list) => Some(
            list.iter()
                .map(|h| {
                    crate::model::parse_domain(h)
                        .ok_or_else(|| bad("'hosts' must be host names such as www.example.com"))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let mut p = site.privacy.clone();
    if let Some(m) = &b.privacy_mode {
        p.mode = PrivacyMode::parse(m)
            .ok_or_else(|| bad("'privacy_mode' is anonymous, consented or off"))?;
    }
    if let Some(w) = &b.without_consent {
        p.without_consent = WithoutConsent::parse(w)
            .ok_or_else(|| bad("'without_consent' is aggregate or drop"))?;
    }
    p.honour_gpc = b.gpc.unwrap_or(p.honour_gpc);
    p.honour_dnt = b.dnt.unwrap_or(p.honour_dnt);
    if let Some(r) = b.retention_days {
        if r == Some(0) {
            return Err(bad(
                "'retention_days' is at least 1, or null to keep events",
            ));
        }
        p.retention_days = r;
    }
    if b.matomo_id == Some(Some(0)) {
        return Err(bad("'matomo_id' is at least 1, or null to unmap it"));
    }
    let store = state.store.clone();
    let id = site.id;
    let name = b.name.clone();
    let matomo_id = b.matomo_id;
    blocking(move || {
        // First: the one change that can conflict (another site's Matomo id), so a 409
        // leaves the site as it was.
        if let Some(m) = matomo_id {
            store.set_matomo_id(id, m.map(i64::from))?;
        }
        if let Some(n) = name {
            store.rename_site(id, n.trim())?;
        }
        if let Some(h) = hosts {
            store.set_hosts(id, &h)?;
        }
        store.set_privacy(id, &p)
    })
    .await?;
    Ok(Json(json!({"updated": site.key.as_str()})))
}
