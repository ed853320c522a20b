//! Matomo's tracking API as a drop-in: `GET|POST /matomo.php` and `/piwik.php`, single
//! requests (query string or form body, as `matomo.js` sends them) and bulk ones
//! (`{"requests": ["?idsite=1&rec=1&…", …]}`). Each request becomes the [`HitParams`]
//! our own pixel would carry for the same visit and is recorded exactly as a pixel hit
//! is (`Collector::try_record`): same enrichment, host check, consent and GPC, rate
//! limits, bot verdicts, counted drops and durability. The site is the one mapped to
//! the request's `idsite` (`pixeltrack site set SITE --matomo-id N`).
//!
//! What maps to what (README "Migrating from Matomo or Plausible"): `url` → page,
//! `urlref` → referrer, `action_name` → title, `res` → screen width; `e_c`/`e_a`/`e_n`/
//! `e_v` → an event named by its action with `category`, `name` and `value` props;
//! `link`/`download` → our `outbound`/`download` events; `idgoal`, `ec_id`, `revenue` →
//! a `conversion` (order id `ec_id`; Matomo sends no currency, so the revenue is a prop).
//! Matomo's visitor ids (`_id`, `uid`, `cid`) are ignored: visitors are counted
//! cookieless. As in Matomo, the parameters that override the IP, the time or the
//! location (`cip`, `cdt`, `country`) and the user agent (`ua`) apply only with a write
//! API token (`token_auth`) that may write to the site; without one they are ignored.
//!
//! Answers as Matomo does: the 1×1 GIF (or `204` with `send_image=0`), a bulk request's
//! JSON summary, `400` for an `idsite` that is missing, not a number or not mapped.
//! A refused hit still gets its GIF, with the reason in `X-Pixel-Reason` (and counted).

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{image, Collector, Kind};
use crate::metrics::Route;
use crate::model::{DropReason, HitParams, RawHit};
use crate::store::{Scope, TokenStore};

/// Largest body (a bulk request of many hits).
pub const MAX_BODY: usize = 256 * 1024;
/// Most hits in one bulk request.
pub const MAX_BULK: usize = 500;

/// One tracking request, parsed: what the pixel would carry, and Matomo's own switches.
#[derive(Debug, Default, PartialEq)]
pub struct Request1 {
    pub idsite: Option<String>,
    /// `rec=1`: only such requests record anything (Matomo's rule).
    pub rec: bool,
    /// `send_image=0`: answer 204 instead of the GIF.
    pub no_image: bool,
    /// `ping=1`: a heartbeat, which extends a visit in Matomo; nothing to record here.
    pub ping: bool,
    pub token_auth: Option<String>,
    /// Overrides honoured only with a write token.
    pub cip: Option<String>,
    pub cdt: Option<String>,
    pub country: Option<String>,
    pub ua: Option<String>,
    pub params: HitParams,
}

/// Parses one request's parameters (`a=1&b=2`, a leading `?` allowed). Invalid
/// percent-encoding, invalid UTF-8 or a NUL refuse it, as the pixel's parser does.
pub fn parse(query: &str) -> Result<Request1, DropReason> {
    let mut r = Request1::default();
    let mut p = HitParams::default();
    let mut get = std::collections::HashMap::<String, String>::new();
    for pair in query
        .trim_start_matches('?')
        .split('&')
        .filter(|s| !s.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let key = super::query::decode(k)?;
        let value = super::query::decode(v)?;
        // The first value of a repeated key wins, as in the pixel.
        get.entry(key.into_owned())
            .or_insert_with(|| value.into_owned());
    }
    let mut take = |k: &str| get.remove(k).filter(|v| !v.is_empty());
    r.idsite = take("idsite");
    r.rec = take("rec").as_deref() == Some("1");
    r.no_image = take("send_image").as_deref() == Some("0");
    r.ping = take("ping").as_deref() == Some("1");
    r.token_auth = take("token_auth");
    r.cip = take("cip");
    r.cdt = take("cdt");
    r.country = take("country");
    r.ua = take("ua");
    p.url = take("url");
    p.referrer = take("urlref");
    p.title = take("action_name");
    p.screen_width =
        take("res").and_then(|res| res.split(['x', 'X']).next().and_then(|w| w.parse().ok()));
    let mut props = Vec::new();
    let (e_c, e_a, e_n, e_v) = (take("e_c"), take("e_a"), take("e_n"), take("e_v"));
    let (link, download) = (take("link"), take("download"));
    let (idgoal, ec_id, revenue) = (take("idgoal"), take("ec_id"), take("revenue"));
    if let Some(url) = link {
        p.event = Some("outbound".into());
        props.push(("url".to_owned(), url));
    } else if let Some(url) = download {
        p.event = Some("download".into());
        props.push(("url".to_owned(), url));
    } else if e_c.is_some() || e_a.is_some() {
        p.event = e_a.clone().or(e_c.clone());
        for (k, v) in [("category", e_c), ("name", e_n), ("value", e_v)] {
            if let Some(v) = v {
                props.push((k.to_owned(), v));
            }
        }
    } else if idgoal.is_some() || ec_id.is_some() {
        p.event = Some(crate::enrich::CONVERSION.into());
        if let Some(g) = idgoal.filter(|g| g != "0") {
            props.push(("goal".to_owned(), g));
        }
        p.id = ec_id;
        if let Some(r) = revenue {
            props.push(("revenue".to_owned(), r));
        }
    }
    p.props = props;
    r.params = p;
    Ok(r)
}

/// `cdt`: a Unix timestamp in seconds (or milliseconds), or `YYYY-MM-DD HH:MM:SS` UTC.
fn parse_cdt(s: &str) -> Option<i64> {
    if let Ok(n) = s.trim().parse::<i64>() {
        return Some(if n > 100_000_000_000 { n } else { n * 1000 });
    }
    chrono::NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|t| t.and_utc().timestamp_millis())
}

/// What became of one request.
enum Outcome {
    Stored,
    /// Not a tracking request (`rec` missing, a heartbeat): nothing recorded, no drop.
    Ignored,
    Dropped(DropReason),
    /// A `400`: the message says why.
    Refused(&'static str),
}

impl Collector {
    /// Whether `token` is an API token that may write to `site_id`.
    async fn may_write(&self, token: &str, site_id: i64) -> bool {
        if !token.starts_with(crate::secret::API_TOKEN_PREFIX) || token.len() > 100 {
            return false;
        }
        let hash = crate::secret::sha256_hex(token);
        let store = self.store.clone();
        let found = tokio::task::spawn_blocking(move || store.api_token_by_hash(&hash))
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
        found.is_some_and(|t| t.scope >= Scope::Write && t.site_id.is_none_or(|s| s == site_id))
    }

    async fn matomo_one(
        &self,
        headers: &HeaderMap,
        peer: std::net::IpAddr,
        req: Result<Request1, DropReason>,
        bulk_token: Option<&str>,
    ) -> Outcome {
        let req = match req {
            Ok(r) => r,
            Err(r) => {
                self.metrics.dropped(r);
                return Outcome::Refused("invalid request parameters");
            }
        };
        if !req.rec || req.ping {
            return Outcome::Ignored;
        }
        let Some(id) = req.idsite.as_deref() else {
            self.metrics.dropped(DropReason::MissingSite);
            return Outcome::Refused("idsite is missing");
        };
        let Some(id) = id.trim().parse::<i64>().ok().filter(|n| *n > 0) else {
            self.metrics.dropped(DropReason::UnknownSite);
            return Outcome::Refused("idsite must be a site id");
        };
        let Some(site) = self
            .sites
            .find(&format!("matomo:{id}"), |s| s.matomo_id == Some(id))
            .await
        else {
            self.metrics.dropped(DropReason::UnknownSite);
            return Outcome::Refused(
                "no site has this idsite (pixeltrack site set SITE --matomo-id N)",
            );
        };
        let mut params = req.params;
        params.site = Some(site.key.to_string());
        let mut hit: Box<RawHit> = match self.raw_hit(headers, peer, params) {
            Ok(h) => h,
            Err(r) => {
                self.metrics.dropped(r);
                return Outcome::Dropped(r);
            }
        };
        let token = req.token_auth.as_deref().or(bulk_token);
        let overrides =
            req.cip.is_some() || req.cdt.is_some() || req.country.is_some() || req.ua.is_some();
        let mut country = None;
        if overrides && token.is_some() && self.may_write(token.unwrap_or(""), site.id.0).await {
            if let Some(ip) = req
                .cip
                .as_deref()
                .and_then(|s| s.trim().parse::<IpAddr>().ok())
            {
                hit.ip = ip;
            }
            if let Some(ua) = req.ua.filter(|u| u.len() <= self.limits.max_ua_bytes) {
                hit.user_agent = ua;
            }
            if let Some(c) = req.country {
                let c = c.trim().to_ascii_uppercase();
                if c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()) {
                    country = Some(c);
                }
            }
            if let Some(t) = req.cdt.as_deref() {
                // Only days whose salt is still held can be recorded live; older
                // history is `pixeltrack import`'s.
                let now = self.clock.now_ms();
                match parse_cdt(t) {
                    Some(ms)
                        if ms <= now + 60_000
                            && self.salts.get(crate::clock::day_of(ms)).is_some() =>
                    {
                        hit.received_ms = ms.min(now);
                    }
                    _ => {
                        self.metrics.dropped(DropReason::InvalidInput);
                        return Outcome::Refused(
                            "cdt must be a time of today or yesterday (older history: pixeltrack import)",
                        );
                    }
                }
            }
        }
        match self.try_record_with(Ok(hit), country.as_deref()).await {
            Ok(()) => Outcome::Stored,
            Err(r) => Outcome::Dropped(r),
        }
    }
}

fn text(status: StatusCode, msg: &str) -> Response {
    let mut res = (status, msg.to_owned()).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

/// The bulk body: `{"requests": [...], "token_auth": "..."}`.
#[derive(serde::Deserialize)]
struct Bulk {
    requests: Vec<String>,
    token_auth: Option<String>,
}

/// `GET|POST /matomo.php`, `/piwik.php`.
pub async fn track(State(c): State<Arc<Collector>>, req: Request) -> Response {
    c.metrics.request(Route::Matomo);
    let (parts, body): (_, Body) = req.into_parts();
    let query = parts.uri.query().unwrap_or("").to_owned();
    if query.len() > c.limits.max_query_bytes {
        c.metrics.dropped(DropReason::Oversized);
        return text(StatusCode::URI_TOO_LONG, "query too long");
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        c.metrics.dropped(DropReason::Oversized);
        return text(StatusCode::PAYLOAD_TOO_LARGE, "body larger than 256 KiB");
    };
    let body = bytes.trim_ascii();
    if body.first() == Some(&b'{') {
        return bulk(&c, &parts, body).await;
    }
    // A form body (matomo.js POSTs the query string) joined with the URL's query.
    let Ok(form) = std::str::from_utf8(body) else {
        c.metrics.dropped(DropReason::InvalidInput);
        return text(StatusCode::BAD_REQUEST, "body is not UTF-8");
    };
    if form.len() > c.limits.max_query_bytes {
        c.metrics.dropped(DropReason::Oversized);
        return text(StatusCode::PAYLOAD_TOO_LARGE, "body too long");
    }
    let all = match (form.is_empty(), query.is_empty()) {
        (true, _) => query,
        (false, true) => form.to_owned(),
        (false, false) => format!("{form}&{query}"),
    };
    let req = parse(&all);
    let no_image = req.as_ref().is_ok_and(|r| r.no_image);
    let answer = |reason: Option<&'static str>| {
        if no_image {
            let mut res = StatusCode::NO_CONTENT.into_response();
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            if let Some(r) = reason {
                res.headers_mut()
                    .insert("x-pixel-reason", HeaderValue::from_static(r));
            }
            res
        } else {
            image::respond(Kind::Gif, reason, true)
        }
    };
    match c
        .matomo_one(&parts.headers, super::peer_ip(&parts.extensions), req, None)
        .await
    {
        Outcome::Stored => answer(None),
        Outcome::Ignored if all.is_empty() => text(
            StatusCode::OK,
            "This is pixeltrack's Matomo-compatible tracking endpoint.",
        ),
        Outcome::Ignored => answer(None),
        Outcome::Dropped(r) => answer(Some(r.as_str())),
        Outcome::Refused(msg) => text(StatusCode::BAD_REQUEST, msg),
    }
}

async fn bulk(c: &Collector, parts: &axum::http::request::Parts, body: &[u8]) -> Response {
    let bulk: Bulk = match serde_json::from_slice(body) {
        Ok(b) => b,
        Err(_) => {
            c.metrics.dropped(DropReason::InvalidInput);
            return text(
                StatusCode::BAD_REQUEST,
                "a bulk request is {\"requests\": [\"?idsite=1&rec=1&...\", ...]}",
            );
        }
    };
    if bulk.requests.len() > MAX_BULK {
        c.metrics.dropped(DropReason::Oversized);
        return text(
            StatusCode::PAYLOAD_TOO_LARGE,
            "at most 500 requests per bulk request",
        );
    }
    let (mut tracked, mut invalid) = (0u64, Vec::new());
    for (i, r) in bulk.requests.iter().enumerate() {
        // A request may be a bare query or a whole URL.
        let query = r.split_once('?').map_or(r.as_str(), |(_, q)| q);
        let req = if query.len() > c.limits.max_query_bytes {
            Err(DropReason::Oversized)
        } else {
            parse(query)
        };
        match c
            .matomo_one(
                &parts.headers,
                super::peer_ip(&parts.extensions),
                req,
                bulk.token_auth.as_deref(),
            )
            .await
        {
            Outcome::Stored => tracked += 1,
            Outcome::Ignored => {}
            Outcome::Dropped(_) | Outcome::Refused(_) => invalid.push(i),
        }
    }
    let mut res = (
        StatusCode::OK,
        axum::Json(json!({
            "status": "success", "tracked": tracked, "invalid": invalid.len(),
            "invalid_indices": invalid,
        })),
    )
        .into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pageview_maps_url_referrer_title_and_screen() {
        let r = parse("?idsite=3&rec=1&url=https%3A%2F%2Fexample.com%2Fa&urlref=https%3A%2F%2Fgoogle.com%2F&action_name=A%20page&res=1440x900&_id=0123456789abcdef&send_image=0").unwrap();
        assert_eq!(r.idsite.as_deref(), Some("3"));
        assert!(r.rec && r.no_image && !r.ping);
        assert_eq!(r.params.url.as_deref(), Some("https://example.com/a"));
        assert_eq!(r.params.referrer.as_deref(), Some("https://google.com/"));
        assert_eq!(r.params.title.as_deref(), Some("A page"));
        assert_eq!(r.params.screen_width, Some(1440));
        assert_eq!(r.params.event, None, "a pageview");
        assert!(r.params.props.is_empty(), "_id is not kept");
    }

    #[test]
    fn events_goals_orders_links_and_downloads_map_to_our_events() {
        let e = parse("idsite=1&rec=1&e_c=Videos&e_a=Play&e_n=Intro&e_v=3")
            .unwrap()
            .params;
        assert_eq!(e.event.as_deref(), Some("Play"));
        assert_eq!(
            e.props,
            [("category", "Videos"), ("name", "Intro"), ("value", "3")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        let g = parse("idsite=1&rec=1&idgoal=0&ec_id=A-1&revenue=49.90")
            .unwrap()
            .params;
        assert_eq!(g.event.as_deref(), Some("conversion"));
        assert_eq!(g.id.as_deref(), Some("A-1"));
        assert_eq!(g.props, vec![("revenue".to_owned(), "49.90".to_owned())]);
        let goal = parse("idsite=1&rec=1&idgoal=4").unwrap().params;
        assert_eq!(goal.props, vec![("goal".to_owned(), "4".to_owned())]);
        let l = parse("idsite=1&rec=1&link=https%3A%2F%2Fx.example%2F")
            .unwrap()
            .params;
        assert_eq!(l.event.as_deref(), Some("outbound"));
        let d = parse("idsite=1&rec=1&download=https%3A%2F%2Fexample.com%2Fa.pdf")
            .unwrap()
            .params;
        assert_eq!(d.event.as_deref(), Some("download"));
    }

    #[test]
    fn hostile_encodings_are_refused_and_cdt_reads_both_forms() {
        assert_eq!(
            parse("idsite=1&rec=1&url=%FF"),
            Err(DropReason::InvalidInput)
        );
        assert_eq!(
            parse("idsite=1&rec=1&url=%00"),
            Err(DropReason::InvalidInput)
        );
        assert_eq!(parse_cdt("1700000000"), Some(1_700_000_000_000));
        assert_eq!(parse_cdt("2023-11-14 22:13:20"), Some(1_700_000_000_000));
        assert_eq!(parse_cdt("yesterday"), None);
    }
}
