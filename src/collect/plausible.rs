//! Plausible's events API as a drop-in: `POST /api/event`, the JSON body Plausible's
//! script sends (`text/plain`, short keys `n`, `u`, `d`, `r`, `p`, `$`) or its API
//! documents (`name`, `url`, `domain`, `referrer`, `props`, `revenue`). The site is the
//! one whose domain the event names (the first of a comma-separated list that is
//! ours); the user agent and the client IP come from the headers as for our own hits
//! (`X-Forwarded-For` only from `trusted_proxies`). The event is recorded exactly as
//! our pixel records one (`Collector::try_record`).
//!
//! Answers as Plausible does: `202` with `ok` when the event is stored; `400` with
//! `{"errors": …}` for a body that is not an event or names no site of ours. Like our
//! own `/e`: `403` for a page on a host the site does not own, `429` past the rate
//! limits, `503` when the store cannot take it; a hit the site's privacy settings
//! drop gets `202` and its reason in `X-Pixel-Reason` (counted, like every drop).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{peer_ip, Collector};
use crate::metrics::Route;
use crate::model::{DropReason, HitParams};

/// Largest event body (Plausible's own limit is far above what its script sends).
pub const MAX_BODY: usize = 8 * 1024;

#[derive(Deserialize)]
struct Incoming {
    #[serde(alias = "n")]
    name: String,
    #[serde(alias = "u")]
    url: String,
    #[serde(alias = "d")]
    domain: String,
    #[serde(alias = "r")]
    referrer: Option<String>,
    /// An object, or (older scripts, `m`) a JSON object as a string.
    #[serde(alias = "p", alias = "m", alias = "meta")]
    props: Option<Value>,
    #[serde(alias = "$")]
    revenue: Option<Revenue>,
    /// Screen width (older scripts).
    #[serde(alias = "w")]
    screen_width: Option<i64>,
}

#[derive(Deserialize)]
struct Revenue {
    currency: String,
    amount: Value,
}

/// A refused body: the drop reason, the status and the message.
type Refusal = (DropReason, StatusCode, &'static str);

/// The body as the pixel's parameters, and the domains it names. Pure.
pub fn event_params(bytes: &[u8]) -> Result<(HitParams, Vec<String>), Refusal> {
    let bad = |m| (DropReason::InvalidInput, StatusCode::BAD_REQUEST, m);
    let inc: Incoming = serde_json::from_slice(bytes)
        .map_err(|_| bad("body must be a JSON event with name, url and domain"))?;
    let props = match inc.props {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(o)) => o,
        Some(Value::String(s)) => match serde_json::from_str(&s) {
            Ok(Value::Object(o)) => o,
            _ => return Err(bad("props must be an object")),
        },
        Some(_) => return Err(bad("props must be an object")),
    };
    let mut out = Vec::new();
    for (k, v) in props {
        let text = match v {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => continue,
            _ => return Err(bad("props must be strings, numbers or booleans")),
        };
        out.push((k, text));
    }
    let (value, currency) = match inc.revenue {
        None => (None, None),
        Some(r) => {
            let amount = match r.amount {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                _ => {
                    return Err((
                        DropReason::InvalidAmount,
                        StatusCode::BAD_REQUEST,
                        "revenue.amount must be a number or a decimal string",
                    ))
                }
            };
            (Some(amount), Some(r.currency))
        }
    };
    // Plausible's names for what our tracker calls outbound and download.
    let name = match inc.name.as_str() {
        "Outbound Link: Click" => "outbound".to_owned(),
        "File Download" => "download".to_owned(),
        _ => inc.name,
    };
    let domains = inc
        .domain
        .split(',')
        .filter_map(crate::model::parse_domain)
        .collect::<Vec<_>>();
    if domains.is_empty() {
        return Err(bad("domain must name the site, e.g. example.com"));
    }
    Ok((
        HitParams {
            event: Some(name),
            url: Some(inc.url),
            referrer: inc.referrer.filter(|r| !r.is_empty()),
            value,
            currency,
            screen_width: inc.screen_width,
            props: out,
            ..HitParams::default()
        },
        domains,
    ))
}

fn answer(status: StatusCode, body: Value, reason: Option<&'static str>) -> Response {
    let mut res = if status == StatusCode::ACCEPTED {
        (status, "ok").into_response()
    } else {
        (status, axum::Json(body)).into_response()
    };
    let h = res.headers_mut();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    if let Some(r) = reason {
        h.insert("x-pixel-reason", HeaderValue::from_static(r));
    }
    res
}

fn error(status: StatusCode, msg: &str) -> Response {
    answer(status, json!({ "errors": { "request": msg } }), None)
}

/// `POST /api/event`.
pub async fn event(State(c): State<Arc<Collector>>, req: Request) -> Response {
    c.metrics.request(Route::Plausible);
    let (parts, body): (_, Body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        c.metrics.dropped(DropReason::Oversized);
        return error(StatusCode::PAYLOAD_TOO_LARGE, "body larger than 8 KiB");
    };
    let (mut params, domains) = match event_params(&bytes) {
        Ok(p) => p,
        Err((r, status, msg)) => {
            c.metrics.dropped(r);
            return error(status, msg);
        }
    };
    let mut site = None;
    for d in &domains {
        let bare = d.strip_prefix("www.").unwrap_or(d);
        site = c
            .sites
            .find(&format!("domain:{d}"), |s| {
                s.domain.eq_ignore_ascii_case(d) || s.domain.eq_ignore_ascii_case(bare)
            })
            .await;
        if site.is_some() {
            break;
        }
    }
    let Some(site) = site else {
        c.metrics.dropped(DropReason::UnknownSite);
        return error(
            StatusCode::BAD_REQUEST,
            "no site has this domain (pixeltrack site add DOMAIN)",
        );
    };
    params.site = Some(site.key.to_string());
    let hit = match c.raw_hit(&parts.headers, peer_ip(&parts.extensions), params) {
        Ok(h) => h,
        Err(r) => {
            c.metrics.dropped(r);
            return error(StatusCode::BAD_REQUEST, "invalid request headers");
        }
    };
    match c.try_record(Ok(hit)).await {
        Ok(()) => answer(StatusCode::ACCEPTED, Value::Null, None),
        Err(r) => {
            let status = match r {
                DropReason::HostNotAllowed => StatusCode::FORBIDDEN,
                DropReason::RateLimited => StatusCode::TOO_MANY_REQUESTS,
                DropReason::Overload
                | DropReason::Timeout
                | DropReason::StoreError
                | DropReason::SpoolFull
                | DropReason::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
                DropReason::InvalidInput
                | DropReason::InvalidAmount
                | DropReason::InvalidId
                | DropReason::Oversized
                | DropReason::UnknownCampaign => StatusCode::BAD_REQUEST,
                // Privacy settings, referrer spam, a repeated order: accepted, not stored.
                _ => StatusCode::ACCEPTED,
            };
            if status == StatusCode::ACCEPTED {
                answer(status, Value::Null, Some(r.as_str()))
            } else {
                answer(
                    status,
                    json!({ "errors": { "event": r.explain() } }),
                    Some(r.as_str()),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scripts_short_body_and_the_apis_long_one_give_the_same_hit() {
        let short = br#"{"n":"pageview","u":"https://example.com/a?utm_source=x","d":"example.com","r":"https://google.com/","p":{"plan":"pro","n":2,"ok":true},"$":{"currency":"EUR","amount":"9.9"}}"#;
        let long = br#"{"name":"pageview","url":"https://example.com/a?utm_source=x","domain":"example.com","referrer":"https://google.com/","props":{"plan":"pro","n":2,"ok":true},"revenue":{"currency":"EUR","amount":9.9}}"#;
        let (a, da) = event_params(short).unwrap();
        let (b, db) = event_params(long).unwrap();
        assert_eq!(a, b);
        assert_eq!(da, vec!["example.com".to_owned()]);
        assert_eq!(da, db);
        assert_eq!(a.value.as_deref(), Some("9.9"));
        assert_eq!(a.props.len(), 3);
    }

    #[test]
    fn bodies_that_are_not_events_are_refused() {
        for body in [
            &b"not json"[..],
            br#"{"n":"pageview","u":"https://example.com/"}"#,
            br#"{"n":"pageview","u":"https://example.com/","d":"  "}"#,
            br#"{"n":"x","u":"https://example.com/","d":"example.com","p":[1]}"#,
            br#"{"n":"x","u":"https://example.com/","d":"example.com","p":{"a":{"b":1}}}"#,
            br#"{"n":"x","u":"https://example.com/","d":"example.com","$":{"currency":"EUR","amount":[]}}"#,
        ] {
            assert!(event_params(body).is_err(), "{}", String::from_utf8_lossy(body));
        }
        let (p, d) = event_params(
            br#"{"n":"Outbound Link: Click","u":"https://example.com/","d":"rollup.example,example.com","m":"{\"url\":\"https://x.example/\"}"}"#,
        )
        .unwrap();
        assert_eq!(p.event.as_deref(), Some("outbound"));
        assert_eq!(d.len(), 2);
        assert_eq!(
            p.props,
            vec![("url".to_owned(), "https://x.example/".to_owned())]
        );
    }
}
