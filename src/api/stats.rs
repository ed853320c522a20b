//! `/api/v1/stats`: a site's totals, a time series and optionally one breakdown (a
//! rollup dimension, goals, or conversions by campaign) for a date range, with filters
//! and a comparison to the previous period. Every metric, dimension and interval name
//! is checked against the lists below, which the OpenAPI document also shows.

use axum::extract::State;
use axum::http::request::Parts;
use axum::routing::on;
use axum::Json;
use serde_json::{json, Value};

use super::params::Params;
use super::{blocking, ApiError, ApiRoute, ApiState, Auth, Op};
use crate::report::{self, DateRange};
use crate::store::{Dim, Filter, Scope};

pub(super) const ROUTES: &[ApiRoute] = &[ApiRoute {
    path: "/api/v1/stats",
    summary: "Totals, a time series and optionally one breakdown for a site and date range",
    methods: &[Op::get(Scope::Read, |m| on(m, stats)).returns(response_schema)],
    parameters: Some(parameters),
}];

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

/// Every breakdown name: the rollup dimensions but `total`, then the extra ones.
fn dimension_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = Dim::ALL.iter().skip(1).map(|d| d.name()).collect();
    names.extend(EXTRA_DIMENSIONS);
    names
}

/// The response, for the OpenAPI document: the metrics asked for, a series, and
/// optionally the period before, the change in percent and one breakdown.
fn response_schema() -> Value {
    let metrics = json!({"type": "object", "additionalProperties": true,
                         "description": "the metrics asked for: numbers, or a list of money amounts for revenue"});
    json!({"type": "object", "required": ["site", "from", "to", "interval", "filters", "results", "series"], "properties": {
        "site": {"type": "string"},
        "from": {"type": "string", "format": "date"},
        "to": {"type": "string", "format": "date"},
        "interval": {"type": "string", "enum": INTERVALS},
        "filters": {"type": "array", "items": {"type": "string"}},
        "results": metrics.clone(),
        "series": {"type": "array", "items": {"type": "object", "required": ["date", "visitors", "visits", "pageviews"], "properties": {
            "date": {"type": "string"}, "visitors": {"type": "integer"}, "visits": {"type": "integer"}, "pageviews": {"type": "integer"}
        }}},
        "previous": metrics,
        "change": {"type": "object", "additionalProperties": {"type": "number", "nullable": true}},
        "dimension": {"type": "string"},
        "breakdown": {"type": "array", "items": {"type": "object", "additionalProperties": true}}
    }})
}

/// The query parameters, for the OpenAPI document.
fn parameters() -> Value {
    let [from, to] = super::openapi::date_params();
    json!([
        super::openapi::site_param(),
        from,
        to,
        {"name": "metrics", "in": "query", "schema": {"type": "string"}, "description": format!("comma-separated: {}", METRICS.join(", "))},
        {"name": "dimension", "in": "query", "schema": {"type": "string", "enum": dimension_names()}},
        {"name": "interval", "in": "query", "schema": {"type": "string", "enum": INTERVALS}},
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
        {"name": "filters", "in": "query", "schema": {"type": "string"}, "description": format!("';'-separated dimension==value, dimension!=value or dimension~value (contains); dimensions: {}", Filter::DIMS.iter().map(|d| d.name()).collect::<Vec<_>>().join(", "))},
        {"name": "compare", "in": "query", "schema": {"type": "string", "enum": ["previous_period"]}}
    ])
}

/// The filters as given, split (for the response).
fn filters_json(p: &Params) -> Value {
    json!(p
        .get("filters")
        .map(|f| f.split(';').filter(|x| !x.is_empty()).collect::<Vec<_>>())
        .unwrap_or_default())
}

async fn stats(
    State(state): State<ApiState>,
    auth: Auth,
    parts: Parts,
) -> Result<Json<Value>, ApiError> {
    let p = Params::parse(&parts, STATS_PARAMS)?;
    let site = auth.site(&state, p.get("site")).await?;
    let range = p.range(state.clock.now_ms())?;
    let (from, to) = (range.from_day, range.to_day);
    let metrics: Vec<&str> = match p.get("metrics") {
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
    let dimension = match p.get("dimension") {
        None => None,
        Some(d) if EXTRA_DIMENSIONS.contains(&d) => Some(Err(d.to_owned())),
        Some(d) => match Dim::parse(d).filter(|d| *d != Dim::Total) {
            Some(d) => Some(Ok(d)),
            None => {
                return Err(ApiError::BadRequest(format!(
                    "unknown dimension '{}'; allowed: {}",
                    d.chars().take(40).collect::<String>(),
                    dimension_names().join(", ")
                )));
            }
        },
    };
    let interval_name = p.get("interval").unwrap_or("day");
    let interval = report::Interval::parse(interval_name).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "'interval' must be one of {}",
            INTERVALS.join(", ")
        ))
    })?;
    let limit = match p.get("limit") {
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
    let filters = match p.get("filters") {
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
    let compare = match p.get("compare") {
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
    let now = state.clock.now_ms();
    let (overview, previous, series, breakdown, conversions) = blocking(move || {
        let st = store.as_ref();
        let o = report::overview(st, &site2, &q)?;
        let prev_q = report::Query {
            range: q.range.previous(),
            filters: q.filters.clone(),
        };
        // A range that ends today is compared up to the same hour (as the dashboard).
        let prev = if compare {
            let (from, to) = q.range.previous_hours(now);
            Some(report::overview_hours(st, &site2, &q.filters, from, to)?)
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
        let v = serde_json::to_value(o)?;
        let mut out = serde_json::Map::new();
        for m in &metrics {
            let x = match (*m, c) {
                ("conversions", Some(c)) => json!(c.conversions),
                ("revenue", Some(c)) => serde_json::to_value(&c.revenue)?,
                _ => v.get(*m).cloned().unwrap_or(Value::Null),
            };
            out.insert((*m).to_owned(), x);
        }
        Ok(Value::Object(out))
    };
    let conv_now = conversions.as_ref().map(|c| &c.0);
    let conv_before = conversions.as_ref().and_then(|c| c.1.as_ref());
    let results = pick(&overview, conv_now)?;
    let series = serde_json::to_value(&series)?;
    let mut body = json!({
        "site": site.domain,
        "from": DateRange::date(from),
        "to": DateRange::date(to),
        "interval": interval_name,
        "filters": filters_json(&p),
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
        body["dimension"] = json!(p.get("dimension"));
        body["breakdown"] = b?;
    }
    Ok(Json(body))
}
