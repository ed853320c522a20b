//! Collect: the unauthenticated HTTP edge. Parses and validates a hit, finds its
//! site, hands it to enrichment and then to ingest, and always answers with the
//! image — a drop is counted by reason and named in `X-Pixel-Reason`, never an error
//! a mail client or a page would show.

pub mod ads;
pub mod email;
pub mod image;
pub mod ip;
pub mod limits;
pub mod logs;
pub mod matomo;
pub mod plausible;
pub mod query;
pub mod sites;
pub mod web;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::http::{header, Extensions, HeaderMap, Uri};
use axum::response::Response;
use ipnet::IpNet;

use crate::clock::{day_of, Clock};
use crate::config::LimitsConfig;
use crate::enrich::salts::SaltKeeper;
use crate::enrich::{Enricher, Outcome};
use crate::ingest::{IngestHandle, Submitted};
use crate::metrics::{Metrics, Route};
use crate::model::{DropReason, HitParams, RawHit, SiteKey};
use crate::store::SqliteStore;

pub use image::Kind;
use sites::SiteCache;

/// Everything the collector needs, shared by all requests.
pub struct Collector {
    pub sites: Arc<SiteCache>,
    /// Each site's refused hits of the last hour, for the dashboard.
    pub refusals: Arc<crate::refusals::Refusals>,
    pub salts: Arc<SaltKeeper>,
    /// SQLite itself, not `dyn Store`, for now: salts (`SaltKeeper::rotate`), token
    /// keys, and the server's jobs (checkpoints, web sessions) reach it through here.
    pub store: Arc<SqliteStore>,
    pub enricher: Enricher,
    pub ingest: IngestHandle,
    pub metrics: Arc<Metrics>,
    pub clock: Clock,
    pub limits: LimitsConfig,
    pub trusted_proxies: Vec<IpNet>,
    /// CDN country headers (`geo.country_headers`), believed from trusted proxies only.
    pub country_headers: Vec<header::HeaderName>,
    pub email: email::EmailState,
    pub rate_limits: limits::RateLimits,
}

pub async fn pixel_gif(State(c): State<Arc<Collector>>, req: Request) -> Response {
    routed_pixel(c, Kind::Gif, req).await
}

pub async fn pixel_png(State(c): State<Arc<Collector>>, req: Request) -> Response {
    routed_pixel(c, Kind::Png, req).await
}

/// A pixel through the router (tests, and any embedding of [`crate::server::router`]);
/// the server itself calls the same two halves without it.
async fn routed_pixel(c: Arc<Collector>, kind: Kind, req: Request) -> Response {
    let hit = c.pixel_hit(kind, req.uri(), req.headers(), peer_ip(req.extensions()));
    drop(req);
    c.pixel(kind, hit).await
}

/// The client's address as the server accepted it (unspecified where none is known:
/// a router called without a connection, as in tests).
pub fn peer_ip(ext: &Extensions) -> IpAddr {
    ext.get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

/// `HEAD` answers like `GET` but records nothing: link checkers and mail scanners
/// send it, people never do.
pub async fn pixel_head(req: Parts) -> Response {
    let kind = if req.uri.path().ends_with(".png") {
        Kind::Png
    } else {
        Kind::Gif
    };
    image::respond(kind, None, false)
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Result<Option<String>, DropReason> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => std::str::from_utf8(v.as_bytes())
            .map(|s| Some(s.to_owned()))
            .map_err(|_| DropReason::InvalidInput),
    }
}

/// Refusals a site setting could lift (hosts, privacy mode, consent options).
pub(crate) fn settings_may_lift(r: DropReason) -> bool {
    matches!(
        r,
        DropReason::HostNotAllowed | DropReason::TrackingOff | DropReason::NoConsent
    )
}

impl Collector {
    /// Records one hit; returns the drop reason if it was not stored.
    async fn record(&self, hit: Result<Box<RawHit>, DropReason>) -> Option<&'static str> {
        match self.try_record(hit).await {
            Ok(()) => None,
            Err(reason) => Some(reason.as_str()),
        }
    }

    async fn try_record(&self, hit: Result<Box<RawHit>, DropReason>) -> Result<(), DropReason> {
        self.try_record_with(hit, None).await
    }

    /// [`try_record`](Self::try_record), with the country an authenticated caller set
    /// (Matomo's `country` with a write token) in place of the IP's.
    async fn try_record_with(
        &self,
        hit: Result<Box<RawHit>, DropReason>,
        country: Option<&str>,
    ) -> Result<(), DropReason> {
        let hit = hit.map_err(|r| self.count(r))?;
        let key = hit.params.site.as_deref().unwrap_or("");
        if key.is_empty() {
            return Err(self.count(DropReason::MissingSite));
        }
        let key = SiteKey::parse(key).ok_or_else(|| self.count(DropReason::UnknownSite))?;
        let site = self
            .sites
            .get(&key)
            .await
            .ok_or_else(|| self.count(DropReason::UnknownSite))?;
        self.rate_limits.check(hit.ip, site.id.0).map_err(|r| {
            self.refused(site.id.0, r, &hit);
            self.count(r)
        })?;
        let salt = self
            .salt(day_of(hit.received_ms))
            .await
            .ok_or_else(|| self.count(DropReason::StoreError))?;
        let mut event = match self.enricher.enrich(&hit, &site, &salt) {
            Outcome::Keep(e) => e,
            Outcome::Drop(r) => {
                // A setting changed a moment ago (the CLI, in another process) may
                // allow this hit now: check once more with the sites read again.
                let again = if settings_may_lift(r) && self.sites.refresh_now().await {
                    self.sites.get(&key).await
                } else {
                    None
                };
                match again.map(|s| self.enricher.enrich(&hit, &s, &salt)) {
                    Some(Outcome::Keep(e)) => e,
                    _ => {
                        self.refused(site.id.0, r, &hit);
                        return Err(self.count(r));
                    }
                }
            }
        };
        if let Some(c) = country {
            event.country = crate::model::Short::from(c);
        }
        self.check_campaign(&event).await?;
        match self.ingest.submit(event).await {
            Submitted::Stored => Ok(()),
            // Ingest counted these itself.
            Submitted::Dropped(r) => Err(r),
        }
    }

    /// Notes a refused hit of a known site for its dashboard (with the page's host when
    /// the host was the reason).
    pub(crate) fn refused(&self, site_id: i64, r: DropReason, hit: &RawHit) {
        let host = if r == DropReason::HostNotAllowed {
            let url = hit
                .params
                .url
                .as_deref()
                .or(hit.referer_header.as_deref())
                .unwrap_or("");
            crate::enrich::page::parse(url, "").host
        } else {
            String::new()
        };
        self.refusals.record(site_id, r, &host, self.clock.now_ms());
    }

    fn count(&self, r: DropReason) -> DropReason {
        self.metrics.dropped(r);
        r
    }

    pub(crate) async fn salt(&self, day: i64) -> Option<crate::enrich::Salt> {
        if let Some(s) = self.salts.get(day) {
            return Some(s);
        }
        // Only reachable if the minute tick has not run yet for a new day.
        let (keeper, store, now) = (self.salts.clone(), self.store.clone(), self.clock.now_ms());
        tokio::task::spawn_blocking(move || keeper.rotate(&store, now))
            .await
            .ok()?
            .ok()?;
        self.salts.get(day)
    }

    fn parse(
        &self,
        uri: &Uri,
        headers: &HeaderMap,
        peer: IpAddr,
    ) -> Result<Box<RawHit>, DropReason> {
        let query = uri.query().unwrap_or("");
        if query.len() > self.limits.max_query_bytes {
            return Err(DropReason::Oversized);
        }
        let params = query::parse(query)?;
        self.raw_hit(headers, peer, params)
    }

    /// A `GET` of the pixel, parsed: the first half of [`Collector::pixel`]'s work, done
    /// before its future exists so that the request is not kept (nor moved) while the
    /// hit waits for its answer. The server calls both halves itself for `/p.gif` and
    /// `/p.png`, the hottest routes by far, without the router (`server::connection_service`).
    pub fn pixel_hit(
        &self,
        kind: Kind,
        uri: &Uri,
        headers: &HeaderMap,
        peer: IpAddr,
    ) -> Result<Box<RawHit>, DropReason> {
        self.metrics.request(match kind {
            Kind::Gif => Route::PixelGif,
            Kind::Png => Route::PixelPng,
        });
        self.parse(uri, headers, peer)
    }

    /// Records a pixel's hit and answers with the image.
    pub async fn pixel(&self, kind: Kind, hit: Result<Box<RawHit>, DropReason>) -> Response {
        let reason = self.record(hit).await;
        image::respond(kind, reason, true)
    }

    /// The request's headers and peer, checked, around already-parsed parameters. Boxed:
    /// the handlers' futures hold it across their awaits, and every future that holds it
    /// is moved whole (into axum's box, into each enclosing future).
    pub(crate) fn raw_hit(
        &self,
        headers: &HeaderMap,
        peer: IpAddr,
        params: HitParams,
    ) -> Result<Box<RawHit>, DropReason> {
        let ua = header_str(headers, header::USER_AGENT)?.unwrap_or_default();
        if ua.len() > self.limits.max_ua_bytes {
            return Err(DropReason::Oversized);
        }
        let referer = header_str(headers, header::REFERER)?;
        if referer
            .as_ref()
            .is_some_and(|r| r.len() > self.limits.max_query_bytes)
        {
            return Err(DropReason::Oversized);
        }
        // Names made once: a `&str` name is parsed and checked at every lookup.
        static XFF: header::HeaderName = header::HeaderName::from_static("x-forwarded-for");
        static SEC_GPC: header::HeaderName = header::HeaderName::from_static("sec-gpc");
        let xff = headers.get_all(&XFF).iter().filter_map(|v| v.to_str().ok());
        let flag = |name: &header::HeaderName| {
            headers
                .get(name)
                .is_some_and(|v| v.as_bytes().trim_ascii() == b"1")
        };
        let cdn_country = ip::cdn_country(
            peer,
            self.country_headers
                .iter()
                .filter_map(|h| headers.get(h))
                .map(|v| v.as_bytes()),
            &self.trusted_proxies,
        );
        Ok(Box::new(RawHit {
            cdn_country,
            gpc: flag(&SEC_GPC),
            dnt: flag(&header::DNT),
            received_ms: self.clock.now_ms(),
            ip: ip::client_ip(peer, xff, &self.trusted_proxies),
            user_agent: ua,
            referer_header: referer,
            params,
        }))
    }
}
