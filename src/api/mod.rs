//! The JSON API under `/api/v1`, for scripts and the dashboard. Bearer tokens with a
//! scope (read < write < admin) and optionally one site; only a SHA-256 of a token is
//! stored. Every parameter is checked against an allowlist (400 otherwise), values are
//! bound, never spliced, and internal errors never leak into a response.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::model::Site;
use crate::report::{self, DateRange};
use crate::secret::{sha256_hex, API_TOKEN_PREFIX, SHARE_PREFIX};
use crate::store::{ApiToken, Dim, Filter, Scope, SqliteStore, Store, Subject};

#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<SqliteStore>,
    /// Public base URL for tagged emails.
    pub public_url: String,
    /// How conversions are credited in campaign reports.
    pub ads: report::ads::Model,
}

#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    Unauthorized,
    Forbidden(String),
    NotFound(String),
    Conflict(String),
    Internal,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, msg) = match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "missing or unknown API token: send 'Authorization: Bearer pt_…' (create one with 'pixeltrack token create')".into(),
            ),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, m),
            ApiError::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal error; see the server log".into()),
        };
        let mut res = (status, Json(json!({ "error": msg }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        res
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "api request failed");
    ApiError::Internal
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> crate::store::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(internal)?
        .map_err(internal)
}

/// The caller, authenticated by its bearer token.
pub struct Auth(pub ApiToken);

impl FromRequestParts<ApiState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if bearer.is_some_and(|t| t.starts_with(SHARE_PREFIX)) {
            return Err(ApiError::Forbidden(
                "a share link only opens its dashboard; the API needs a token ('pixeltrack token create')".into(),
            ));
        }
        let secret = bearer
            .filter(|t| t.starts_with(API_TOKEN_PREFIX) && t.len() <= 100)
            .ok_or(ApiError::Unauthorized)?;
        let hash = sha256_hex(secret);
        let store = state.store.clone();
        let token = blocking(move || store.api_token_by_hash(&hash)).await?;
        token.map(Auth).ok_or(ApiError::Unauthorized)
    }
}

impl Auth {
    fn need(&self, scope: Scope) -> Result<(), ApiError> {
        if self.0.scope >= scope {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "this token's scope is '{}'; '{}' is needed",
                self.0.scope.as_str(),
                scope.as_str()
            )))
        }
    }

    fn may_see(&self, site_id: i64) -> bool {
        self.0.site_id.is_none_or(|s| s == site_id)
    }
}

/// Query parameters, checked against the allowlist of the endpoint.
fn params(parts: &Parts, allowed: &[&str]) -> Result<Vec<(String, String)>, ApiError> {
    let q = parts.uri.query().unwrap_or("");
    let mut out = Vec::new();
    for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
        if !allowed.contains(&k.as_ref()) {
            return Err(ApiError::BadRequest(format!(
                "unknown parameter '{}'; allowed: {}",
                k.chars().take(40).collect::<String>(),
                allowed.join(", ")
            )));
        }
        out.push((k.into_owned(), v.into_owned()));
    }
    Ok(out)
}

fn get_param<'a>(p: &'a [(String, String)], name: &str) -> Option<&'a str> {
    p.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

async fn find_site(state: &ApiState, auth: &Auth, wanted: Option<&str>) -> Result<Site, ApiError> {
    let store = state.store.clone();
    let sites = blocking(move || store.sites()).await?;
    let visible: Vec<Site> = sites.into_iter().filter(|s| auth.may_see(s.id.0)).collect();
    match wanted {
        Some(w) => {
            // Not "forbidden": do not tell a token which other sites exist.
            Site::find(&visible, w).cloned().ok_or_else(|| {
                ApiError::NotFound(format!(
                    "no site '{}' for this token",
                    w.chars().take(80).collect::<String>()
                ))
            })
        }
        None if visible.len() == 1 => Ok(visible.into_iter().next().expect("one")),
        None => Err(ApiError::BadRequest(
            "parameter 'site' is required (a site key or domain)".into(),
        )),
    }
}

/// `from` and `to` (UTC days, both included); by default the last 30 days.
fn date_range(p: &[(String, String)]) -> Result<DateRange, ApiError> {
    let today = crate::clock::day_of(chrono::Utc::now().timestamp_millis());
    let to = date(p, "to", today)?;
    let from = date(p, "from", to - 29)?;
    if from > to || to - from > 3_660 {
        return Err(ApiError::BadRequest(
            "'from' must be on or before 'to', at most 10 years apart".into(),
        ));
    }
    Ok(DateRange {
        from_day: from,
        to_day: to,
    })
}

fn date(p: &[(String, String)], name: &str, default: i64) -> Result<i64, ApiError> {
    match get_param(p, name) {
        None => Ok(default),
        Some(v) => DateRange::parse_date(v).ok_or_else(|| {
            ApiError::BadRequest(format!("'{name}' must be a date like 2026-01-31"))
        }),
    }
}

pub const METRICS: &[&str] = &[
    "visitors",
    "visits",
    "pageviews",
    "events",
    "bounce_rate",
    "visit_duration",
    "bot_events",
    "conversions",
    "revenue",
];
pub const INTERVALS: &[&str] = &["hour", "day", "week", "month"];
/// Breakdowns that are not rollup dimensions: goals, and conversions by campaign.
pub const EXTRA_DIMENSIONS: &[&str] = &["goal", "campaign"];
const STATS_PARAMS: &[&str] = &[
    "site",
    "from",
    "to",
    "metrics",
    "dimension",
    "interval",
    "limit",
    "filters",
    "compare",
];

/// `GET /api/v1/funnel`.
async fn funnel(
    State(state): State<ApiState>,
    auth: Auth,
    parts: Parts,
) -> Result<Json<Value>, ApiError> {
    auth.need(Scope::Read)?;
    let p = params(&parts, &["site", "from", "to", "step", "within"])?;
    let site = find_site(&state, &auth, get_param(&p, "site")).await?;
    let steps = p
        .iter()
        .filter(|(k, _)| k == "step")
        .map(|(_, v)| {
            crate::store::Pattern::parse(v).ok_or_else(|| {
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
    let within = report::ads::Within::parse(get_param(&p, "within").unwrap_or("visit"))
        .ok_or_else(|| {
            ApiError::BadRequest("'within' is visit or a number of days such as 7d".into())
        })?;
    let range = date_range(&p)?;
    let (from, to) = (range.from_day, range.to_day);
    let store = state.store.clone();
    let r =
        blocking(move || report::ads::funnel(store.as_ref(), &site, range, &steps, within)).await?;
    Ok(Json(
        json!({"from": DateRange::date(from), "to": DateRange::date(to), "steps": r}),
    ))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NewLink {
    campaign: i64,
    url: String,
    ad: Option<String>,
    placement: Option<String>,
}

/// `POST /api/v1/links`: a signed ad link, as `pixeltrack link create` makes it.
async fn link_create(
    State(state): State<ApiState>,
    auth: Auth,
    Body(b): Body<NewLink>,
) -> Result<Response, ApiError> {
    auth.need(Scope::Write)?;
    let c = own_campaign(&state, &auth, &b.campaign.to_string()).await?;
    let store = state.store.clone();
    let keys = blocking(move || store.token_keys(chrono::Utc::now().timestamp_millis())).await?;
    let ring = crate::token::Keyring::from_masters(keys);
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

/// A `Write` that hands its bytes to an async response body, chunk by chunk; it
/// blocks when the client reads slowly (bounded channel), and fails when it is gone.
struct ChannelWriter(tokio::sync::mpsc::Sender<bytes::Bytes>);

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(bytes::Bytes::copy_from_slice(buf))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client gone"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `GET /api/v1/export`: raw events, streamed as they are read (NDJSON or CSV).
async fn export(
    State(state): State<ApiState>,
    auth: Auth,
    parts: Parts,
) -> Result<Response, ApiError> {
    auth.need(Scope::Read)?;
    let p = params(&parts, &["site", "from", "to", "format"])?;
    let site = find_site(&state, &auth, get_param(&p, "site")).await?;
    let range = date_range(&p)?;
    let (format, content_type) = match get_param(&p, "format").unwrap_or("ndjson") {
        "ndjson" => (report::export::Format::Ndjson, "application/x-ndjson"),
        "csv" => (report::export::Format::Csv, "text/csv; charset=utf-8"),
        _ => {
            return Err(ApiError::BadRequest(
                "'format' must be ndjson or csv".into(),
            ))
        }
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(16);
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || {
        let (a, b) = range.millis();
        if let Err(e) =
            report::export::write(store.as_ref(), &site, a, b, format, &mut ChannelWriter(tx))
        {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                tracing::error!(error = %e, "export failed midway");
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, std::io::Error>(chunk), rx))
    });
    Ok((
        [(header::CONTENT_TYPE, content_type)],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

/// The filters as given, split (for the response).
fn q_filters_json(p: &[(String, String)]) -> Value {
    json!(get_param(p, "filters")
        .map(|f| f.split(';').filter(|x| !x.is_empty()).collect::<Vec<_>>())
        .unwrap_or_default())
}

async fn sites(State(state): State<ApiState>, auth: Auth) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    let sites = blocking(move || store.sites()).await?;
    let list: Vec<Value> = sites
        .iter()
        .filter(|s| auth.may_see(s.id.0))
        .map(|s| json!({"key": s.key.as_str(), "domain": s.domain, "name": s.name}))
        .collect();
    Ok(Json(Value::Array(list)))
}

async fn stats(
    State(state): State<ApiState>,
    auth: Auth,
    parts: Parts,
) -> Result<Json<Value>, ApiError> {
    auth.need(Scope::Read)?;
    let p = params(&parts, STATS_PARAMS)?;
    let site = find_site(&state, &auth, get_param(&p, "site")).await?;
    let range = date_range(&p)?;
    let (from, to) = (range.from_day, range.to_day);
    let metrics: Vec<&str> = match get_param(&p, "metrics") {
        None => METRICS.to_vec(),
        Some(m) => m.split(',').map(str::trim).collect(),
    };
    if let Some(bad) = metrics.iter().find(|m| !METRICS.contains(m)) {
        return Err(ApiError::BadRequest(format!(
            "unknown metric '{}'; allowed: {}",
            bad.chars().take(40).collect::<String>(),
            METRICS.join(", ")
        )));
    }
    let dimension = match get_param(&p, "dimension") {
        None => None,
        Some(d) if EXTRA_DIMENSIONS.contains(&d) => Some(Err(d.to_owned())),
        Some(d) => match Dim::parse(d).filter(|d| *d != Dim::Total) {
            Some(d) => Some(Ok(d)),
            None => {
                let mut names: Vec<&str> = Dim::ALL.iter().skip(1).map(|d| d.name()).collect();
                names.extend(EXTRA_DIMENSIONS);
                return Err(ApiError::BadRequest(format!(
                    "unknown dimension '{}'; allowed: {}",
                    d.chars().take(40).collect::<String>(),
                    names.join(", ")
                )));
            }
        },
    };
    let interval_name = get_param(&p, "interval").unwrap_or("day");
    let interval = report::Interval::parse(interval_name).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "'interval' must be one of {}",
            INTERVALS.join(", ")
        ))
    })?;
    let limit = match get_param(&p, "limit") {
        None => 10,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                return Err(ApiError::BadRequest(
                    "'limit' must be a number from 1 to 1000".into(),
                ))
            }
        },
    };
    // `filters=page==/pricing;source!=Google;utm_campaign~spring`
    let filters = match get_param(&p, "filters") {
        None => Vec::new(),
        Some(f) => f
            .split(';')
            .filter(|x| !x.is_empty())
            .map(Filter::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(ApiError::BadRequest)?,
    };
    if filters.len() > 10 {
        return Err(ApiError::BadRequest("at most 10 filters".into()));
    }
    if !filters.is_empty() && matches!(dimension, Some(Ok(d)) if !Filter::DIMS.contains(&d)) {
        return Err(ApiError::BadRequest(
            "with filters, the dimension must be one of the filterable ones".into(),
        ));
    }
    let compare = match get_param(&p, "compare") {
        None => false,
        Some("previous_period") => true,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "'compare' can only be previous_period".into(),
            ))
        }
    };
    let q = report::Query { range, filters };
    let store = state.store.clone();
    let site2 = site.clone();
    let model = state.ads;
    let want_conversions = metrics
        .iter()
        .any(|m| *m == "conversions" || *m == "revenue");
    let (overview, previous, series, breakdown, conversions) = blocking(move || {
        let st = store.as_ref();
        let o = report::overview(st, &site2, &q)?;
        let prev_q = report::Query {
            range: q.range.previous(),
            filters: q.filters.clone(),
        };
        let prev = if compare {
            Some(report::overview(st, &site2, &prev_q)?)
        } else {
            None
        };
        let s = report::series(st, &site2, &q, interval)?;
        let b = match &dimension {
            None => None,
            Some(Ok(d)) => Some(serde_json::to_value(
                report::breakdown(st, &site2, &q, *d, limit)?.rows,
            )),
            Some(Err(extra)) if extra == "goal" => Some(serde_json::to_value(report::ads::goals(
                st, &site2, q.range,
            )?)),
            Some(Err(_)) => Some(serde_json::to_value(
                report::ads::conversions(st, &site2, q.range, model)?.by_campaign,
            )),
        };
        let conv = if want_conversions {
            let now = report::ads::conversions(st, &site2, q.range, model)?;
            let before = if compare {
                Some(report::ads::conversions(st, &site2, prev_q.range, model)?)
            } else {
                None
            };
            Some((now, before))
        } else {
            None
        };
        Ok((o, prev, s, b, conv))
    })
    .await?;
    let pick = |o: &report::Overview,
                c: Option<&report::ads::ConversionSummary>|
     -> Result<Value, ApiError> {
        let v = serde_json::to_value(o).map_err(internal)?;
        let mut out = serde_json::Map::new();
        for m in &metrics {
            let x = match (*m, c) {
                ("conversions", Some(c)) => json!(c.conversions),
                ("revenue", Some(c)) => serde_json::to_value(&c.revenue).map_err(internal)?,
                _ => v.get(*m).cloned().unwrap_or(Value::Null),
            };
            out.insert((*m).to_owned(), x);
        }
        Ok(Value::Object(out))
    };
    let conv_now = conversions.as_ref().map(|c| &c.0);
    let conv_before = conversions.as_ref().and_then(|c| c.1.as_ref());
    let results = pick(&overview, conv_now)?;
    let series = serde_json::to_value(&series).map_err(internal)?;
    let mut body = json!({
        "site": site.domain,
        "from": DateRange::date(from),
        "to": DateRange::date(to),
        "interval": interval_name,
        "filters": q_filters_json(&p),
        "results": results,
        "series": series,
    });
    if let Some(prev) = &previous {
        let before = pick(prev, conv_before)?;
        let mut change = serde_json::Map::new();
        for m in &metrics {
            let (a, b) = (results[*m].as_f64(), before[*m].as_f64());
            let pct = match (a, b) {
                (Some(a), Some(b)) if b != 0.0 => json!(((a - b) / b * 1000.0).round() / 10.0),
                _ => Value::Null,
            };
            change.insert((*m).to_owned(), pct);
        }
        body["previous"] = before;
        body["change"] = Value::Object(change);
    }
    if let Some(b) = breakdown {
        body["dimension"] = json!(get_param(&p, "dimension"));
        body["breakdown"] = b.map_err(internal)?;
    }
    Ok(Json(body))
}

async fn campaign_report(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.need(Scope::Read)?;
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::BadRequest("campaign id must be a number".into()))?;
    let (store, model) = (state.store.clone(), state.ads);
    let visible = move |site_id| auth.may_see(site_id);
    let found = blocking(move || {
        let Some(c) = store.campaign(id)?.filter(|c| visible(c.site_id)) else {
            return Ok(None);
        };
        let now = crate::clock::Clock::System.now_ms();
        report::campaign(store.as_ref(), &c, model, now, true).map(Some)
    })
    .await?;
    match found {
        Some(r) => Ok(Json(serde_json::to_value(&r).map_err(internal)?)),
        _ => Err(ApiError::NotFound(format!(
            "no campaign {id} for this token"
        ))),
    }
}

fn subject_of(auth: &Auth, id: String, parts: &Parts) -> Result<Subject, ApiError> {
    let p = params(parts, &["type"])?;
    match get_param(&p, "type").unwrap_or("recipient") {
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
async fn subject_get(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
    parts: Parts,
) -> Result<Response, ApiError> {
    auth.need(Scope::Admin)?;
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
async fn subject_delete(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
    parts: Parts,
) -> Result<Json<Value>, ApiError> {
    auth.need(Scope::Admin)?;
    let subject = subject_of(&auth, id, &parts)?;
    let store = state.store.clone();
    let n = blocking(move || store.erase_subject(&subject)).await?;
    Ok(Json(json!({ "deleted": n })))
}

/// A JSON request body: at most 1 MiB, only known fields (400 otherwise).
pub struct Body<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, _: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::to_bytes(req.into_body(), 1 << 20)
            .await
            .map_err(|_| ApiError::BadRequest("request body too large (1 MiB at most)".into()))?;
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSite {
    domain: String,
    name: Option<String>,
}

async fn site_create(
    State(state): State<ApiState>,
    auth: Auth,
    Body(b): Body<NewSite>,
) -> Result<Response, ApiError> {
    auth.need(Scope::Write)?;
    if auth.0.site_id.is_some() {
        return Err(ApiError::Forbidden(
            "a token limited to one site cannot create sites".into(),
        ));
    }
    let (domain, name) = crate::model::new_site(&b.domain, b.name.as_deref())
        .map_err(|e| ApiError::BadRequest(e.into()))?;
    let store = state.store.clone();
    let now = chrono::Utc::now().timestamp_millis();
    let created = tokio::task::spawn_blocking(move || {
        store.add_site(
            &crate::model::SiteKey::generate(),
            &domain,
            name.trim(),
            now,
        )
    })
    .await
    .map_err(internal)?;
    match created {
        Ok(s) => Ok((
            StatusCode::CREATED,
            Json(json!({"key": s.key.as_str(), "domain": s.domain, "name": s.name})),
        )
            .into_response()),
        Err(crate::store::StoreError::Conflict(m)) => Err(ApiError::Conflict(m)),
        Err(e) => Err(internal(e)),
    }
}

async fn site_delete(
    State(state): State<ApiState>,
    auth: Auth,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.need(Scope::Write)?;
    let site = find_site(&state, &auth, Some(&key)).await?;
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
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
mod serde_with_null {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<u32>>, D::Error> {
        Ok(Some(Option::<u32>::deserialize(d)?))
    }
}

async fn site_update(
    State(state): State<ApiState>,
    auth: Auth,
    Path(key): Path<String>,
    Body(b): Body<SiteChange>,
) -> Result<Json<Value>, ApiError> {
    auth.need(Scope::Write)?;
    let site = find_site(&state, &auth, Some(&key)).await?;
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
        p.mode = crate::model::PrivacyMode::parse(m)
            .ok_or_else(|| bad("'privacy_mode' is anonymous, consented or off"))?;
    }
    if let Some(w) = &b.without_consent {
        p.without_consent = crate::model::WithoutConsent::parse(w)
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
    let store = state.store.clone();
    let id = site.id.0;
    let name = b.name.clone();
    blocking(move || {
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

mod serde_cost {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<super::Cost>>, D::Error> {
        Ok(Some(Option::<super::Cost>::deserialize(d)?))
    }
}

async fn campaign_update(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
    Body(b): Body<CampaignChange>,
) -> Result<Json<Value>, ApiError> {
    auth.need(Scope::Write)?;
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
    updated
        .map(|c| Json(campaign_json(&c)))
        .ok_or_else(|| ApiError::NotFound(format!("no campaign {id} for this token")))
}

async fn campaign_delete(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.need(Scope::Write)?;
    let c = own_campaign(&state, &auth, &id).await?;
    let store = state.store.clone();
    blocking(move || {
        store.remove_campaign(c.id)?;
        store.checkpoint()
    })
    .await?;
    Ok(Json(json!({"deleted": c.id})))
}

fn campaign_json(c: &crate::model::Campaign) -> Value {
    let cost = c
        .cost
        .as_ref()
        .map(|(m, cur)| json!({"amount": crate::enrich::money::format(*m, cur), "currency": cur}));
    json!({"id": c.id, "site_id": c.site_id, "name": c.name, "sent_ms": c.sent_ms, "delivered": c.delivered, "cost": cost})
}

async fn campaigns(
    State(state): State<ApiState>,
    auth: Auth,
    parts: Parts,
) -> Result<Json<Value>, ApiError> {
    auth.need(Scope::Read)?;
    let p = params(&parts, &["site"])?;
    let site = find_site(&state, &auth, get_param(&p, "site")).await?;
    let store = state.store.clone();
    let list = blocking(move || store.campaigns(Some(site.id.0))).await?;
    Ok(Json(Value::Array(list.iter().map(campaign_json).collect())))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCampaign {
    site: Option<String>,
    name: String,
}

async fn campaign_create(
    State(state): State<ApiState>,
    auth: Auth,
    Body(b): Body<NewCampaign>,
) -> Result<Response, ApiError> {
    auth.need(Scope::Write)?;
    let site = find_site(&state, &auth, b.site.as_deref()).await?;
    if !crate::model::valid_name(&b.name) {
        return Err(ApiError::BadRequest(
            "'name' must be 1 to 200 characters".into(),
        ));
    }
    let store = state.store.clone();
    let now = chrono::Utc::now().timestamp_millis();
    let c = blocking(move || store.add_campaign(site.id.0, b.name.trim(), now)).await?;
    Ok((StatusCode::CREATED, Json(campaign_json(&c))).into_response())
}

async fn own_campaign(
    state: &ApiState,
    auth: &Auth,
    id: &str,
) -> Result<crate::model::Campaign, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::BadRequest("campaign id must be a number".into()))?;
    let store = state.store.clone();
    match blocking(move || store.campaign(id)).await? {
        Some(c) if auth.may_see(c.site_id) => Ok(c),
        _ => Err(ApiError::NotFound(format!(
            "no campaign {id} for this token"
        ))),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Sent {
    /// Emails delivered.
    count: Option<i64>,
    /// RFC 3339 time; default now.
    at: Option<String>,
}

async fn campaign_sent(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
    Body(b): Body<Sent>,
) -> Result<Json<Value>, ApiError> {
    auth.need(Scope::Write)?;
    let c = own_campaign(&state, &auth, &id).await?;
    if b.count.is_some_and(|n| n < 0) {
        return Err(ApiError::BadRequest("'count' cannot be negative".into()));
    }
    let at = match b.at {
        None => chrono::Utc::now().timestamp_millis(),
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
    Ok(Json(campaign_json(&c)))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TagRequest {
    campaign: i64,
    recipient: Option<String>,
    merge_tag: Option<String>,
    html: String,
}

/// `POST /api/v1/email/tag`: the HTML with the open pixel and signed click links.
async fn email_tag(
    State(state): State<ApiState>,
    auth: Auth,
    Body(b): Body<TagRequest>,
) -> Result<Json<Value>, ApiError> {
    auth.need(Scope::Write)?;
    let c = own_campaign(&state, &auth, &b.campaign.to_string()).await?;
    let store = state.store.clone();
    let now = chrono::Utc::now().timestamp_millis();
    let keys = blocking(move || store.token_keys(now)).await?;
    let ring = crate::token::Keyring::from_masters(keys);
    let tagger = crate::tag::Tagger {
        keyring: &ring,
        base: &state.public_url,
        site_id: c.site_id,
        campaign_id: c.id,
    };
    let recipient = match (&b.recipient, &b.merge_tag) {
        (Some(r), None) => crate::tag::Recipient::Id(r),
        (None, Some(t)) => crate::tag::Recipient::MergeTag(t),
        _ => {
            return Err(ApiError::BadRequest(
                "give exactly one of 'recipient' or 'merge_tag'".into(),
            ))
        }
    };
    let out = tagger
        .tag(&b.html, recipient)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok(Json(
        json!({"html": out.html, "links": out.links, "refused": out.refused}),
    ))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsentRequest {
    recipient: String,
    granted: bool,
    /// One campaign, or (without it) every campaign of `site`.
    campaign: Option<i64>,
    site: Option<String>,
}

/// `POST /api/v1/consent`: records or withdraws an email recipient's consent; a
/// withdrawal applies at once, also to emails already sent.
async fn consent(
    State(state): State<ApiState>,
    auth: Auth,
    Body(b): Body<ConsentRequest>,
) -> Result<Json<Value>, ApiError> {
    auth.need(Scope::Write)?;
    if b.recipient.is_empty()
        || b.recipient.len() > crate::token::MAX_RECIPIENT
        || b.recipient.chars().any(char::is_control)
    {
        return Err(ApiError::BadRequest(
            "'recipient' must be 1 to 256 characters".into(),
        ));
    }
    let (site_id, campaign_id) = match b.campaign {
        Some(id) => {
            let c = own_campaign(&state, &auth, &id.to_string()).await?;
            (c.site_id, c.id)
        }
        None => (find_site(&state, &auth, b.site.as_deref()).await?.id.0, 0),
    };
    let store = state.store.clone();
    let now = chrono::Utc::now().timestamp_millis();
    let (recipient, granted) = (b.recipient.clone(), b.granted);
    blocking(move || store.set_consent(site_id, campaign_id, &recipient, granted, now)).await?;
    Ok(Json(
        json!({"recipient": b.recipient, "granted": b.granted, "campaign": b.campaign}),
    ))
}

/// Every API route: (path, methods, scope, summary). The router and the OpenAPI
/// document are both built from this list, and a test checks them against each other.
pub const ROUTES: &[(&str, &[&str], &str, &str)] = &[
    (
        "/api/v1/sites",
        &["get", "post"],
        "read",
        "Sites this token can see (GET); create one (POST {domain, name}; write scope)",
    ),
    (
        "/api/v1/sites/{id}",
        &["patch", "delete"],
        "write",
        "Change a site (PATCH {name, hosts, privacy_mode, gpc, dnt, without_consent, retention_days}) or delete it and all of its data",
    ),
    (
        "/api/v1/campaigns",
        &["get", "post"],
        "read",
        "A site's email campaigns (GET ?site=); create one (POST {site, name}; write scope)",
    ),
    (
        "/api/v1/campaigns/{id}",
        &["patch", "delete"],
        "write",
        "Change a campaign (PATCH {name, cost: {amount, currency} or null}) or delete it with its events",
    ),
    (
        "/api/v1/campaigns/{id}/sent",
        &["post"],
        "write",
        "Record when a campaign was sent and to how many (POST {count, at})",
    ),
    (
        "/api/v1/campaigns/{id}/report",
        &["get"],
        "read",
        "An email campaign's report, human and machine numbers side by side",
    ),
    (
        "/api/v1/email/tag",
        &["post"],
        "write",
        "Tag email HTML (POST {campaign, recipient or merge_tag, html})",
    ),
    (
        "/api/v1/consent",
        &["post"],
        "write",
        "Record or withdraw an email recipient's consent (POST {recipient, granted, campaign or site})",
    ),
    (
        "/api/v1/stats",
        &["get"],
        "read",
        "Totals, a time series and optionally one breakdown for a site and date range",
    ),
    (
        "/api/v1/export",
        &["get"],
        "read",
        "Raw events of a site, streamed (?site=&from=&to=&format=ndjson|csv)",
    ),
    (
        "/api/v1/funnel",
        &["get"],
        "read",
        "How many visits (or visitors) went through ordered steps (?site=&from=&to=&step=/a&step=event:b&within=visit|7d)",
    ),
    (
        "/api/v1/links",
        &["post"],
        "write",
        "Make a signed ad link (POST {campaign, url, ad, placement}); clicks append a click id to the landing URL",
    ),
    (
        "/api/v1/subjects/{id}",
        &["get", "delete"],
        "admin",
        "Export (GET, NDJSON) or erase (DELETE) every event of one person",
    ),
    ("/api/v1/openapi.json", &["get"], "none", "This document"),
];

pub fn openapi() -> Value {
    let mut paths = serde_json::Map::new();
    for (path, methods, scope, summary) in ROUTES {
        let mut ops = serde_json::Map::new();
        for m in *methods {
            let mut op = json!({
                "summary": summary,
                "responses": {
                    "200": {"description": "OK"},
                    "400": {"description": "A parameter is not allowed or not valid"},
                    "401": {"description": "Missing or unknown token"},
                    "403": {"description": "The token's scope is too small"},
                    "404": {"description": "Not found for this token"}
                }
            });
            if *scope != "none" {
                op["security"] = json!([{"bearer": []}]);
                op["x-required-scope"] = json!(scope);
            }
            if path.contains("{id}") {
                op["parameters"] = json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}]);
            }
            if *path == "/api/v1/stats" {
                let mut dims: Vec<&str> = Dim::ALL.iter().skip(1).map(|d| d.name()).collect();
                dims.extend(EXTRA_DIMENSIONS);
                op["parameters"] = json!([
                    {"name": "site", "in": "query", "schema": {"type": "string"}, "description": "site key or domain"},
                    {"name": "from", "in": "query", "schema": {"type": "string", "format": "date"}},
                    {"name": "to", "in": "query", "schema": {"type": "string", "format": "date"}},
                    {"name": "metrics", "in": "query", "schema": {"type": "string"}, "description": format!("comma-separated: {}", METRICS.join(", "))},
                    {"name": "dimension", "in": "query", "schema": {"type": "string", "enum": dims}},
                    {"name": "interval", "in": "query", "schema": {"type": "string", "enum": INTERVALS}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
                    {"name": "filters", "in": "query", "schema": {"type": "string"}, "description": format!("';'-separated dimension==value, dimension!=value or dimension~value (contains); dimensions: {}", Filter::DIMS.iter().map(|d| d.name()).collect::<Vec<_>>().join(", "))},
                    {"name": "compare", "in": "query", "schema": {"type": "string", "enum": ["previous_period"]}}
                ]);
            }
            if *path == "/api/v1/export" {
                op["parameters"] = json!([
                    {"name": "site", "in": "query", "schema": {"type": "string"}},
                    {"name": "from", "in": "query", "schema": {"type": "string", "format": "date"}},
                    {"name": "to", "in": "query", "schema": {"type": "string", "format": "date"}},
                    {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["ndjson", "csv"]}}
                ]);
            }
            if *path == "/api/v1/subjects/{id}" {
                op["parameters"] = json!([
                    {"name": "id", "in": "path", "required": true, "schema": {"type": "string"}},
                    {"name": "type", "in": "query", "schema": {"type": "string", "enum": ["recipient", "visitor"]}}
                ]);
            }
            ops.insert((*m).to_owned(), op);
        }
        paths.insert((*path).to_owned(), Value::Object(ops));
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "pixeltrack API", "version": env!("CARGO_PKG_VERSION")},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": paths
    })
}

async fn openapi_json() -> Json<Value> {
    Json(openapi())
}

/// The API router, built from [`ROUTES`]: a route cannot exist without being documented.
pub fn router(state: ApiState) -> Router {
    let mut r = Router::new();
    for (path, _, _, _) in ROUTES {
        let handlers = match *path {
            "/api/v1/sites" => get(sites).post(site_create),
            "/api/v1/sites/{id}" => axum::routing::patch(site_update).delete(site_delete),
            "/api/v1/campaigns/{id}" => {
                axum::routing::patch(campaign_update).delete(campaign_delete)
            }
            "/api/v1/campaigns" => get(campaigns).post(campaign_create),
            "/api/v1/campaigns/{id}/sent" => post(campaign_sent),
            "/api/v1/campaigns/{id}/report" => get(campaign_report),
            "/api/v1/email/tag" => post(email_tag),
            "/api/v1/consent" => post(consent),
            "/api/v1/stats" => get(stats),
            "/api/v1/export" => get(export),
            "/api/v1/funnel" => get(funnel),
            "/api/v1/links" => post(link_create),
            "/api/v1/subjects/{id}" => get(subject_get).delete(subject_delete),
            "/api/v1/openapi.json" => get(openapi_json),
            other => unreachable!("documented route {other} has no handler"),
        };
        r = r.route(path, handlers);
    }
    r.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        changes_need_write,
    ))
    .with_state(state)
}

/// Every change needs at least the write scope, checked before the handler reads the
/// body: a read token (or a share link) gets its 403 whatever it sends. Handlers still
/// check finer scopes (admin for erasure).
async fn changes_need_write(
    State(state): State<ApiState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if matches!(
        *req.method(),
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    ) {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    match Auth::from_request_parts(&mut parts, &state).await {
        Ok(auth) => match auth.need(Scope::Write) {
            Ok(()) => {
                next.run(axum::extract::Request::from_parts(parts, body))
                    .await
            }
            Err(e) => e.into_response(),
        },
        Err(e) => e.into_response(),
    }
}
