//! The JS tracker's side: `GET /t.js` (the script) and `POST /e` (its events, JSON in a
//! `text/plain` body so `navigator.sendBeacon` needs no CORS preflight). Same
//! enrichment, privacy rules and durability as the pixel; unlike the pixel, the
//! answer is JSON with a real status, because a script can act on it: 400 for a
//! malformed body, 403 for a page on a host the site does not own, 503 (retryable)
//! when the store cannot take the event.

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{peer_ip, Collector};
use crate::enrich::Outcome;
use crate::ingest::Submitted;
use crate::metrics::Route;
use crate::model::{DropReason, HitParams, SiteKey};

/// The tracker, written by hand, no build step (see assets/t.js).
pub const SCRIPT: &str = include_str!("../../assets/t.js");
/// Largest event body accepted.
pub const MAX_BODY: usize = 8 * 1024;

fn etag() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        let d = Sha256::digest(SCRIPT.as_bytes());
        format!(
            "\"{}\"",
            d.iter()
                .take(8)
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        )
    })
}

/// The tracker gzipped, once per process (best compression: it is sent many times).
fn gzipped() -> &'static [u8] {
    static GZ: OnceLock<Vec<u8>> = OnceLock::new();
    GZ.get_or_init(|| {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        // Writing to a Vec cannot fail; should it, the plain script is served.
        gz.write_all(SCRIPT.as_bytes())
            .and_then(|()| gz.finish())
            .unwrap_or_default()
    })
}

/// The gzipped variant's ETag: another representation, so another strong tag.
fn etag_gz() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| format!("{}-gz\"", etag().trim_end_matches('"')))
}

/// Whether `Accept-Encoding` takes gzip (`gzip` or `*`, unless with `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    let Some(v) = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mut gzip = None;
    let mut star = None;
    for part in v.split(',') {
        let mut it = part.split(';');
        let coding = it.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = it
            .filter_map(|p| p.trim().strip_prefix("q="))
            .next()
            .map(|q| q.trim().parse::<f32>().unwrap_or(0.0))
            .unwrap_or(1.0);
        match coding.as_str() {
            "gzip" | "x-gzip" => gzip = Some(q > 0.0),
            "*" => star = Some(q > 0.0),
            _ => {}
        }
    }
    gzip.or(star).unwrap_or(false)
}

/// `GET /t.js`: the tracker, gzipped when the client takes it (compressed once, at
/// the first request), with an ETag per variant and `Vary: Accept-Encoding` so caches
/// keep them apart.
pub async fn script(headers: HeaderMap) -> Response {
    let gzip = accepts_gzip(&headers) && !gzipped().is_empty();
    let tag = if gzip { etag_gz() } else { etag() };
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let mut res = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else if gzip {
        (StatusCode::OK, gzipped()).into_response()
    } else {
        (StatusCode::OK, SCRIPT).into_response()
    };
    let h = res.headers_mut();
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if gzip && !fresh {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/javascript; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    if let Ok(v) = HeaderValue::from_str(tag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    res
}

/// What the tracker sends. Short names keep the script small; `pixeltrack(name,
/// options)` passes its options through, so their long names are aliases.
#[derive(Deserialize)]
struct Incoming {
    /// Site key.
    s: String,
    /// Event name (default pageview).
    n: Option<String>,
    /// Page URL, referrer, title.
    u: Option<String>,
    r: Option<String>,
    t: Option<String>,
    /// Deepest scroll (percent) and visible milliseconds (`engagement` events).
    sd: Option<i64>,
    em: Option<i64>,
    /// Screen width in CSS pixels.
    w: Option<i64>,
    /// Custom props: strings, numbers or booleans.
    #[serde(alias = "props")]
    p: Option<serde_json::Map<String, Value>>,
    /// Value and currency.
    #[serde(alias = "value")]
    v: Option<Value>,
    #[serde(alias = "currency")]
    c: Option<String>,
    /// Order id (conversions), our click id, and an impression's campaign, ad, placement.
    id: Option<String>,
    clid: Option<String>,
    cmp: Option<Value>,
    ad: Option<String>,
    pl: Option<String>,
    /// Consent from the page (`pixeltrack.consent(true|false)`).
    cs: Option<bool>,
}

fn cors(res: &mut Response, origin: Option<&HeaderValue>) {
    if let Some(o) = origin {
        res.headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o.clone());
        res.headers_mut()
            .insert(header::VARY, HeaderValue::from_static("Origin"));
    }
}

fn answer(status: StatusCode, body: Value, origin: Option<&HeaderValue>) -> Response {
    let mut res = (status, axum::Json(body)).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    cors(&mut res, origin);
    res
}

/// `OPTIONS /e`: scripts that send `application/json` get a preflight answer — with
/// CORS headers only for an origin on one of the sites' hosts (a preflight names no
/// site; the event itself is checked against its own site's hosts).
pub async fn preflight(State(c): State<Arc<Collector>>, headers: HeaderMap) -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    let known = headers.get(header::ORIGIN).filter(|o| {
        o.to_str()
            .ok()
            .and_then(|o| url::Url::parse(o).ok())
            .and_then(|u| u.host_str().map(|h| c.sites.any_owns_host(h)))
            .unwrap_or(false)
    });
    cors(&mut res, known);
    let h = res.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    res
}

fn prop_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A JSON number or string as text (`Err` for anything else); absent or null is `None`.
fn number_or_text(v: Option<Value>) -> Result<Option<String>, ()> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(()),
    }
}

/// A refused event body: the drop reason, the status and the message for the script.
pub type Refusal = (DropReason, StatusCode, &'static str);

/// The hit parameters of an event body (JSON), or why it is refused. Pure: the
/// fuzzer feeds it arbitrary bytes (`fuzz/`).
pub fn event_params(bytes: &[u8]) -> Result<HitParams, Refusal> {
    let inc: Incoming = match serde_json::from_slice(bytes) {
        Ok(i) => i,
        Err(_) => {
            return Err((
                DropReason::InvalidInput,
                StatusCode::BAD_REQUEST,
                "body is not a valid event (JSON with at least \"s\")",
            ))
        }
    };
    let mut props = Vec::new();
    for (k, v) in inc.p.unwrap_or_default() {
        match prop_text(&v) {
            Some(t) => props.push((k, t)),
            None => {
                return Err((
                    DropReason::InvalidInput,
                    StatusCode::BAD_REQUEST,
                    "props must be strings, numbers or booleans",
                ))
            }
        }
    }
    let Ok(value) = number_or_text(inc.v) else {
        return Err((
            DropReason::InvalidAmount,
            StatusCode::BAD_REQUEST,
            "value must be a number or a decimal string",
        ));
    };
    let Ok(campaign) = number_or_text(inc.cmp) else {
        return Err((
            DropReason::InvalidId,
            StatusCode::BAD_REQUEST,
            DropReason::InvalidId.explain(),
        ));
    };
    Ok(HitParams {
        site: Some(inc.s),
        campaign,
        ad: inc.ad,
        placement: inc.pl,
        click: inc.clid,
        id: inc.id,
        event: inc.n,
        url: inc.u,
        referrer: inc.r,
        title: inc.t,
        value,
        currency: inc.c,
        consent: inc.cs.map(|b| if b { "1" } else { "0" }.to_owned()),
        scroll_pct: inc.sd,
        engaged_ms: inc.em,
        screen_width: inc.w,
        props,
    })
}

pub async fn event(State(c): State<Arc<Collector>>, req: Request) -> Response {
    c.metrics.request(Route::Event);
    let (parts, body): (_, Body) = req.into_parts();
    let origin = parts.headers.get(header::ORIGIN).cloned();
    // Refusals carry no CORS header: an origin is only ever echoed once it is known to
    // be one of the site's hosts (a page's script does not need to read a refusal).
    let bad = |c: &Collector, r: DropReason, status: StatusCode, msg: &str| {
        c.metrics.dropped(r);
        answer(status, json!({ "error": msg }), None)
    };
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return bad(
            &c,
            DropReason::Oversized,
            StatusCode::PAYLOAD_TOO_LARGE,
            "body larger than 8 KiB",
        );
    };
    let params = match event_params(&bytes) {
        Ok(p) => p,
        Err((r, status, msg)) => return bad(&c, r, status, msg),
    };
    let site_param = params.site.clone().unwrap_or_default();
    let hit = match c.raw_hit(&parts.headers, peer_ip(&parts.extensions), params) {
        Ok(h) => h,
        Err(r) => return bad(&c, r, StatusCode::BAD_REQUEST, "invalid request headers"),
    };
    let Some(key) = SiteKey::parse(&site_param) else {
        return bad(
            &c,
            DropReason::UnknownSite,
            StatusCode::BAD_REQUEST,
            "unknown site",
        );
    };
    let Some(mut site) = c.sites.get(&key).await else {
        return bad(
            &c,
            DropReason::UnknownSite,
            StatusCode::BAD_REQUEST,
            "unknown site",
        );
    };
    // Only pages of the site's own hosts may send its events (and only their origin
    // gets a CORS answer): no one else can write into its numbers.
    let page_host = crate::enrich::page::parse(hit.params.url.as_deref().unwrap_or(""), "").host;
    let allowed = |site: &crate::model::Site| {
        let origin_ok = origin.as_ref().is_none_or(|o| {
            o.to_str()
                .ok()
                .and_then(|o| url::Url::parse(o).ok())
                .and_then(|u| u.host_str().map(|h| site.owns_host(h)))
                .unwrap_or(false)
        });
        !page_host.is_empty() && site.owns_host(&page_host) && origin_ok
    };
    if !allowed(&site) && c.sites.refresh_now().await {
        // The hosts may have changed a moment ago (`site set --hosts` in another
        // process): judged again with the sites read again.
        if let Some(s) = c.sites.get(&key).await {
            site = s;
        }
    }
    if !allowed(&site) {
        c.refused(site.id.0, DropReason::HostNotAllowed, &hit);
        c.metrics.dropped(DropReason::HostNotAllowed);
        return answer(
            StatusCode::FORBIDDEN,
            json!({ "error": "this page's host is not one of the site's hosts (pixeltrack site set --hosts)" }),
            None,
        );
    }
    if let Err(r) = c.rate_limits.check(hit.ip, site.id.0) {
        c.refused(site.id.0, r, &hit);
        c.metrics.dropped(r);
        return answer(
            StatusCode::TOO_MANY_REQUESTS,
            json!({ "error": "too many events from this client or for this site; slow down" }),
            origin.as_ref(),
        );
    }
    let Some(salt) = c.salt(crate::clock::day_of(hit.received_ms)).await else {
        return bad(
            &c,
            DropReason::StoreError,
            StatusCode::SERVICE_UNAVAILABLE,
            "try again",
        );
    };
    let event = match c.enricher.enrich(&hit, &site, &salt) {
        Outcome::Keep(e) => e,
        Outcome::Drop(r @ (DropReason::NoConsent | DropReason::TrackingOff)) => {
            c.refused(site.id.0, r, &hit);
            c.metrics.dropped(r);
            return answer(
                StatusCode::ACCEPTED,
                json!({ "ok": true, "stored": false }),
                origin.as_ref(),
            );
        }
        Outcome::Drop(r) => {
            c.refused(site.id.0, r, &hit);
            return bad(&c, r, StatusCode::BAD_REQUEST, r.explain());
        }
    };
    if let Err(r) = c.check_campaign(&event).await {
        // Counted by the check.
        return answer(
            StatusCode::BAD_REQUEST,
            json!({ "error": r.explain() }),
            origin.as_ref(),
        );
    }
    match c.ingest.submit(event).await {
        Submitted::Stored => answer(StatusCode::ACCEPTED, json!({ "ok": true }), origin.as_ref()),
        Submitted::Dropped(_) => answer(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "error": "busy, retry" }),
            origin.as_ref(),
        ),
    }
}
