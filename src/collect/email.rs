//! Email opens (`/o/<token>.gif`) and clicks (`/c/<token>`). The token says which
//! site, campaign, recipient and destination; this module verifies it, gathers the
//! signals the classifier needs from what it saw of this email (its first request —
//! the delivery time as far as anyone can know it —, HEAD probes, click bursts and
//! their timing, opens by a person), of this address across recipients, and of the
//! network lists, and hands the hit to enrichment and ingest like any other. When a
//! verdict shows that earlier events were a machine's (a burst, one gateway clicking
//! for many recipients), it sends the writer a `Reclassify`.
//!
//! A bad token never redirects: the open pixel still answers with the image (counted
//! drop), the click answers a plain 404.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{image, Collector, Kind};
use crate::clock::Millis;
use crate::config::EmailConfig;
use crate::enrich::email::{Burst, Signals, MACHINE_GAP_MS};
use crate::enrich::networks::NetworkLists;
use crate::enrich::{EmailContext, Outcome};
use crate::ingest::Submitted;
use crate::metrics::Route;
use crate::model::{Campaign, DropReason, HitParams, Site, SiteId, Verdict};
use crate::store::{CampaignStore, EventStore, PrivacyStore, Reclassify, TokenStore};
use crate::token::{Action, EmailToken, Keyring, TokenRoute, MAX_RECIPIENT};

const HEAD_PROBE_WINDOW_MS: Millis = 60_000;
const CAMPAIGN_TTL: Duration = Duration::from_secs(10);
/// How long the store's "no open by a person" for a recipient is believed.
const STORE_NO_TTL_MS: Millis = 10_000;
const KEY_RELOAD_EVERY: Duration = Duration::from_secs(5);
/// Recent-activity maps are pruned when they grow past this many entries.
const ACTIVITY_MAX: usize = 100_000;

/// Recent activity, in memory only, for the stateful signals.
#[derive(Default)]
struct Activity {
    /// Hash of a token → when it was last probed with HEAD.
    heads: HashMap<u64, Millis>,
    /// (campaign, recipient) → what this process saw of that email.
    emails: HashMap<(i64, String), Seen>,
    /// (campaign, hashed IP) → recent clicks.
    by_ip: HashMap<(i64, u64), Vec<IpClick>>,
}

/// A click from one address: when, for whom, and whether that recipient had an open
/// by a person then.
type IpClick = (Millis, String, bool);

/// One recipient's email as seen by this process.
#[derive(Default)]
struct Seen {
    /// The first request of any kind (open, click, HEAD): the best known delivery time.
    first_ms: Option<Millis>,
    /// An open a person caused (verdict human or a mail provider's proxy).
    human_open: bool,
    /// When the store last said it holds no such open (see `prior_open`).
    store_said_no_ms: Option<Millis>,
    /// Recent clicks (time, link).
    clicks: Vec<(Millis, String)>,
}

pub struct EmailState {
    keyring: RwLock<(Keyring, Instant)>,
    campaigns: RwLock<HashMap<i64, (Campaign, Instant)>>,
    activity: Mutex<Activity>,
    hasher: RandomState,
    /// The network lists (shipped, the operator's file, `email.scanner_networks`).
    pub networks: NetworkLists,
    config: EmailConfig,
}

impl EmailState {
    pub fn new(keyring: Keyring, networks: NetworkLists, config: EmailConfig) -> Self {
        EmailState {
            keyring: RwLock::new((keyring, Instant::now())),
            campaigns: RwLock::new(HashMap::new()),
            activity: Mutex::new(Activity::default()),
            hasher: RandomState::new(),
            networks,
            config,
        }
    }

    fn hash<T: std::hash::Hash>(&self, v: T) -> u64 {
        self.hasher.hash_one(v)
    }

    fn activity(&self) -> std::sync::MutexGuard<'_, Activity> {
        self.activity.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Re-reads the keys (after `pixeltrack key rotate`).
    pub fn reload_keys(&self, store: &dyn TokenStore, now: Millis) {
        if let Ok(keys) = store.token_keys(now) {
            *self.keyring.write().unwrap_or_else(|p| p.into_inner()) =
                (Keyring::from_masters(keys), Instant::now());
        }
    }
}

fn parse_token(c: &Collector, raw: &str, route: TokenRoute) -> Result<EmailToken, DropReason> {
    let open = |c: &Collector| {
        let ring = c.email.keyring.read().unwrap_or_else(|p| p.into_inner());
        ring.0.open_email(raw, route)
    };
    match open(c) {
        Ok(t) => Ok(t),
        Err(crate::token::TokenError::UnknownKey) => {
            // A key rotated by the CLI while we run: reload, at most every few seconds.
            let stale = c
                .email
                .keyring
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .1
                .elapsed()
                > KEY_RELOAD_EVERY;
            if stale {
                c.email.reload_keys(c.store.as_ref(), c.clock.now_ms());
                return open(c).map_err(|_| DropReason::BadToken);
            }
            Err(DropReason::BadToken)
        }
        Err(_) => Err(DropReason::BadToken),
    }
}

/// The recipient: from the token, or — for a merge-tag token — from the `r` query
/// parameter the sending platform filled in (forgeable by design; see README).
fn recipient(token: &EmailToken, parts: &Parts) -> Result<String, DropReason> {
    if let Some(r) = &token.recipient {
        return Ok(r.clone());
    }
    let r = super::query::param(parts.uri.query().unwrap_or(""), "r")?.unwrap_or_default();
    let r = r.trim();
    if r.len() > MAX_RECIPIENT || r.chars().any(char::is_control) {
        return Err(DropReason::InvalidInput);
    }
    Ok(r.to_owned())
}

impl Collector {
    pub(super) async fn campaign(&self, id: i64) -> Option<Campaign> {
        if let Some((c, at)) = self
            .email
            .campaigns
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
        {
            if at.elapsed() < CAMPAIGN_TTL {
                return Some(c.clone());
            }
        }
        let store = self.store.clone();
        let found = tokio::task::spawn_blocking(move || store.campaign(id))
            .await
            .ok()?
            .ok()??;
        self.email
            .campaigns
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, (found.clone(), Instant::now()));
        Some(found)
    }

    /// Whether the recipient has an open a person caused: this process's memory, then
    /// the store (after a restart, or for an open another collector recorded). A "no"
    /// from the store is believed for [`STORE_NO_TTL_MS`]: this process's own opens
    /// set the memory at once, and another collector's reach it within that time, as
    /// every shared setting does — where a store read per click cost a thread hand-off
    /// and a scan of the recipient's opens (Apple's prefetches add one per send).
    async fn prior_open(&self, campaign: i64, recipient: &str, now: Millis) -> bool {
        let key = (campaign, recipient.to_owned());
        if let Some(s) = self.email.activity().emails.get(&key) {
            if s.human_open
                || s.store_said_no_ms
                    .is_some_and(|t| now - t < STORE_NO_TTL_MS)
            {
                return s.human_open;
            }
        }
        let (store, r) = (self.store.clone(), recipient.to_owned());
        let found = tokio::task::spawn_blocking(move || store.has_human_open(campaign, &r))
            .await
            .ok()
            .and_then(Result::ok);
        if found == Some(false) {
            if let Some(s) = self.email.activity().emails.get_mut(&key) {
                s.store_said_no_ms = Some(now);
            }
        }
        found.unwrap_or(false)
    }

    /// Records an email hit; returns the token (if valid) and the drop reason, if any.
    async fn record_email(
        &self,
        parts: &Parts,
        parsed: Result<EmailToken, DropReason>,
        raw_token: &str,
        click: bool,
    ) -> (Option<EmailToken>, Option<DropReason>) {
        // `parse_token` took only a token of this route (`TokenRoute`).
        let token = match parsed {
            Ok(t) => t,
            Err(r) => return (None, Some(self.count(r))),
        };
        let result = self.record_token(parts, &token, raw_token, click).await;
        (Some(token), result.err())
    }

    async fn record_token(
        &self,
        parts: &Parts,
        token: &EmailToken,
        raw_token: &str,
        click: bool,
    ) -> Result<(), DropReason> {
        let recipient = recipient(token, parts).map_err(|r| self.count(r))?;
        let campaign = self
            .campaign(token.campaign_id)
            .await
            .filter(|c| c.site_id == token.site_id)
            .ok_or_else(|| self.count(DropReason::UnknownCampaign))?;
        let site = self
            .site_by_id(token.site_id)
            .await
            .ok_or_else(|| self.count(DropReason::UnknownSite))?;
        self.check_consent(&site, campaign.id, &recipient)
            .await
            .map_err(|r| self.count(r))?;
        if site.privacy.deliverability_only {
            // Only the day of the last open, overwritten; clicks just redirect.
            if !click && !recipient.is_empty() {
                let (store, site_id) = (self.store.clone(), site.id);
                let day = crate::clock::day_of(self.clock.now_ms());
                let r = recipient.clone();
                let saved =
                    tokio::task::spawn_blocking(move || store.touch_last_open(site_id, &r, day))
                        .await;
                if !matches!(saved, Ok(Ok(()))) {
                    return Err(self.count(DropReason::StoreError));
                }
            }
            return Ok(());
        }
        let link = token.action.destination().map(str::to_owned);
        let mut hit = self.raw_hit(
            &parts.headers,
            super::peer_ip(&parts.extensions),
            HitParams {
                site: Some(site.key.to_string()),
                event: Some(if click { "email_click" } else { "email_open" }.into()),
                url: link.clone(),
                ..HitParams::default()
            },
        )?;
        hit.referer_header = None;
        let now = hit.received_ms;
        let cfg = &self.email.config;
        let mut signals = Signals {
            secs_since_send: campaign.sent_ms.map(|s| (now - s) / 1000),
            network: self.email.networks.lookup(hit.ip).map(|n| n.class),
            ..Signals::default()
        };
        let key = (campaign.id, recipient.clone());
        let ip_key = (campaign.id, self.email.hash(hit.ip));
        let burst_ms = i64::from(cfg.burst_seconds) * 1000;
        let ip_ms = i64::from(cfg.shared_ip_seconds) * 1000;
        // The clicks of a burst, if this click makes one: (time, link).
        let mut burst_clicks: Vec<(Millis, String)> = Vec::new();
        {
            let mut a = self.email.activity();
            let tok = self.email.hash(raw_token);
            signals.head_probe = a
                .heads
                .get(&tok)
                .is_some_and(|t| now - t <= HEAD_PROBE_WINDOW_MS);
            let seen = a.emails.entry(key.clone()).or_default();
            let first_ms = *seen.first_ms.get_or_insert(now);
            signals.secs_since_first_request = (first_ms < now).then(|| (now - first_ms) / 1000);
            signals.prior_open = seen.human_open;
            if click {
                seen.clicks.retain(|(t, _)| now - t <= burst_ms);
                seen.clicks.push((now, link.clone().unwrap_or_default()));
                let links: HashSet<&String> = seen.clicks.iter().map(|(_, l)| l).collect();
                if links.len() as u32 >= cfg.burst_links {
                    burst_clicks = seen.clicks.clone();
                }
            }
            prune(&mut a, now);
        }
        if click && !signals.prior_open {
            signals.prior_open = self.prior_open(campaign.id, &recipient, now).await;
        }
        if let Some((start, _)) = burst_clicks.first() {
            let machine_timing = burst_clicks
                .windows(2)
                .any(|w| w[1].0 - w[0].0 < MACHINE_GAP_MS);
            let first_ms = self
                .email
                .activity()
                .emails
                .get(&key)
                .and_then(|s| s.first_ms)
                .unwrap_or(*start);
            signals.burst = Some(Burst {
                machine_timing,
                secs_after_first_request: (start - first_ms) / 1000,
            });
        }
        // Recipients this address clicked for recently, and whether each had opened.
        let mut same_ip: Vec<(String, bool)> = Vec::new();
        if click {
            let mut a = self.email.activity();
            let by_ip = a.by_ip.entry(ip_key).or_default();
            by_ip.retain(|(t, _, _)| now - t <= ip_ms);
            by_ip.push((now, recipient.clone(), signals.prior_open));
            let mut seen_r: HashMap<&String, bool> = HashMap::new();
            for (_, r, opened) in by_ip.iter() {
                *seen_r.entry(r).or_default() |= *opened;
            }
            if seen_r.len() as u32 >= cfg.shared_ip_recipients {
                signals.shared_ip = true;
                same_ip = seen_r.into_iter().map(|(r, o)| (r.clone(), o)).collect();
            }
        }
        let salt = self
            .salt(crate::clock::day_of(now))
            .await
            .ok_or_else(|| self.count(DropReason::StoreError))?;
        let cx = EmailContext {
            campaign_id: campaign.id,
            recipient: recipient.clone(),
            link,
            signals,
        };
        let event = match self.enricher.enrich_email(&hit, &site, &salt, cx) {
            Outcome::Keep(e) => e,
            Outcome::Drop(r) => return Err(self.count(r)),
        };
        let (verdict, reason) = event
            .email
            .as_ref()
            .map_or((Verdict::Human, ""), |e| (e.verdict, e.reason));
        if !click && verdict.is_human_triggered() {
            if let Some(s) = self.email.activity().emails.get_mut(&key) {
                s.human_open = true;
            }
        }
        // What this verdict says about earlier events: a scanner's burst makes its
        // earlier clicks, and the open it fetched just before them, the scanner's; a
        // gateway clicking for many recipients makes their unopened clicks its own.
        // (recipient, kind, since, new reason, the verdict and reason it replaces)
        type Fix = (
            String,
            &'static str,
            Millis,
            &'static str,
            &'static str,
            &'static str,
        );
        let mut fixes: Vec<Fix> = Vec::new();
        if verdict == Verdict::Scanner && signals.burst.is_some() {
            let start = burst_clicks.first().map_or(now, |(t, _)| *t);
            let r = &recipient;
            fixes.push((r.clone(), "email_click", start, "burst", "human", ""));
            // "Probably a scanner" clicks of the burst are now certainly one.
            for probable in ["too_soon_after_delivery", "cloud_network"] {
                fixes.push((
                    r.clone(),
                    "email_click",
                    start,
                    "burst",
                    "scanner",
                    probable,
                ));
            }
            let lead = i64::from(cfg.min_human_seconds) * 1000;
            fixes.push((r.clone(), "email_open", start - lead, "burst", "human", ""));
        }
        if reason == "one_ip_many_recipients" {
            for (r, _) in same_ip.into_iter().filter(|(_, opened)| !opened) {
                let reason = "one_ip_many_recipients";
                fixes.push((r, "email_click", now - ip_ms, reason, "human", ""));
            }
        }
        let submitted = self.ingest.submit(event).await;
        for (r, name, from_ms, reason, from_verdict, from_reason) in fixes {
            self.ingest.reclassify(Reclassify {
                campaign_id: campaign.id,
                recipient: r,
                name: name.into(),
                from_ms,
                verdict: "scanner",
                reason,
                from_verdict,
                from_reason,
            });
        }
        match submitted {
            Submitted::Stored => Ok(()),
            Submitted::Dropped(r) => Err(r),
        }
    }

    /// Per-recipient consent, read at request time so a withdrawal applies at once,
    /// also to emails sent before it. A recipient the store knows has no consent
    /// recorded (most, on a site that records none) needs no read.
    async fn check_consent(
        &self,
        site: &Site,
        campaign: i64,
        recipient: &str,
    ) -> Result<(), DropReason> {
        let consent = if self.store.consent_unrecorded(site.id, recipient) {
            None
        } else {
            let (store, site_id, r) = (self.store.clone(), site.id, recipient.to_owned());
            tokio::task::spawn_blocking(move || store.consent(site_id, campaign, &r))
                .await
                .map_err(|_| DropReason::StoreError)?
                .map_err(|_| DropReason::StoreError)?
        };
        match (consent, site.privacy.mode) {
            (Some(false), _) => Err(DropReason::ConsentWithdrawn),
            (Some(true), _) => Ok(()),
            (None, crate::model::PrivacyMode::Consented) => Err(DropReason::NoConsent),
            (None, _) => Ok(()),
        }
    }

    fn remember_head(&self, raw_token: &str) {
        let now = self.clock.now_ms();
        let mut a = self.email.activity();
        let h = self.email.hash(raw_token);
        a.heads.insert(h, now);
        prune(&mut a, now);
    }

    pub(super) async fn site_by_id(&self, id: i64) -> Option<Arc<Site>> {
        if let Some(s) = self.sites.by_id(id) {
            return Some(s);
        }
        // Rare (a site added since the last reload): one small read, off the async threads.
        self.sites.reload_async().await;
        self.sites.by_id(id)
    }
}

fn prune(a: &mut Activity, now: Millis) {
    let window = 10 * 60_000;
    if a.heads.len() > ACTIVITY_MAX {
        a.heads.retain(|_, t| now - *t <= HEAD_PROBE_WINDOW_MS);
    }
    if a.emails.len() > ACTIVITY_MAX {
        // The oldest emails go; an email seen again starts over (its anchor then is
        // the send time, its opens the store's).
        a.emails
            .retain(|_, s| s.first_ms.is_some_and(|t| now - t <= 24 * 3_600_000));
        if a.emails.len() > ACTIVITY_MAX {
            a.emails.clear();
        }
    }
    if a.by_ip.len() > ACTIVITY_MAX {
        a.by_ip
            .retain(|_, v| v.iter().any(|(t, _, _)| now - t <= window));
    }
}

fn token_of_file(file: &str) -> &str {
    file.strip_suffix(".gif").unwrap_or(file)
}

pub async fn open_get(
    State(c): State<Arc<Collector>>,
    Path(file): Path<String>,
    parts: Parts,
) -> Response {
    c.open(&file, &parts).await
}

/// `HEAD` records nothing, but a GET of the same token right after it is a scanner.
pub async fn open_head(State(c): State<Arc<Collector>>, Path(file): Path<String>) -> Response {
    c.metrics.request(Route::EmailOpen);
    c.remember_head(token_of_file(&file));
    image::respond(Kind::Gif, None, false)
}

fn not_found() -> Response {
    let mut res = (
        StatusCode::NOT_FOUND,
        "This link is not valid. It may have been mistyped, cut short or changed.\n",
    )
        .into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    no_store(res)
}

fn no_store(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, private"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    res
}

/// Adds `X-Pixel-Reason` to a redirect whose click was not recorded.
fn with_reason(mut res: Response, dropped: Option<&DropReason>) -> Response {
    if let (Some(r), true) = (dropped, res.status() == StatusCode::FOUND) {
        res.headers_mut()
            .insert("x-pixel-reason", HeaderValue::from_static(r.as_str()));
    }
    res
}

/// A 302 to exactly the signed destination (plus, for an ad click, the click id under
/// `param`), or a 404 if it cannot be sent as-is.
fn redirect(token: &EmailToken, click_id: Option<(&str, &str)>) -> Response {
    let Some(url) = token.action.destination() else {
        return not_found();
    };
    let url = match click_id {
        Some((param, id)) => super::ads::with_click_id(url, param, id),
        None => url.to_owned(),
    };
    // Validated when signed; checked again so a header can never be split.
    let Ok(location) = crate::token::destination(&url).and_then(|u| {
        HeaderValue::from_str(&u).map_err(|_| crate::token::BadDestination(u, "not a header value"))
    }) else {
        return not_found();
    };
    let mut res = StatusCode::FOUND.into_response();
    res.headers_mut().insert(header::LOCATION, location);
    no_store(res)
}

pub async fn click_get(
    State(c): State<Arc<Collector>>,
    Path(raw): Path<String>,
    parts: Parts,
) -> Response {
    c.click(&raw, &parts).await
}

impl Collector {
    /// `GET /o/<token>.gif`, the path segment decoded: records the open, answers the
    /// image. The server calls it without the router (see `server::direct_route`).
    pub async fn open(&self, file: &str, parts: &Parts) -> Response {
        self.metrics.request(Route::EmailOpen);
        let raw = token_of_file(file);
        let (_, dropped) = self
            .record_email(parts, parse_token(self, raw, TokenRoute::Open), raw, false)
            .await;
        image::respond(Kind::Gif, dropped.map(DropReason::as_str), true)
    }

    /// `GET /c/<token>`, the path segment decoded: records the click, redirects.
    pub async fn click(&self, raw: &str, parts: &Parts) -> Response {
        self.metrics.request(Route::EmailClick);
        let parsed = parse_token(self, raw, TokenRoute::Click);
        // The visitor always reaches the destination; a click that was not recorded says
        // why in `X-Pixel-Reason`, as a pixel does: a 302 without it means stored.
        if let Ok(token) = &parsed {
            if matches!(token.action, Action::AdClick { .. }) {
                let recorded = self.record_ad_click(parts, token).await;
                let param = self.enricher.click_param();
                let click_id = recorded.as_ref().ok().and_then(|id| id.as_deref());
                return with_reason(
                    redirect(token, click_id.map(|id| (param, id))),
                    recorded.as_ref().err(),
                );
            }
        }
        match self.record_email(parts, parsed, raw, true).await {
            (Some(token), dropped) => with_reason(redirect(&token, None), dropped.as_ref()),
            (None, _) => not_found(),
        }
    }
}

pub async fn click_head(State(c): State<Arc<Collector>>, Path(raw): Path<String>) -> Response {
    c.metrics.request(Route::EmailClick);
    match parse_token(&c, &raw, TokenRoute::Click) {
        Ok(token) if token.action.destination().is_some() => {
            c.remember_head(&raw);
            redirect(&token, None)
        }
        _ => not_found(),
    }
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(status: StatusCode, title: &str, body_html: &str) -> Response {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{t}</title></head><body style=\"font-family:sans-serif;max-width:34em;margin:3em auto;padding:0 1em\">\
         <h1>{t}</h1>{body_html}</body></html>",
        t = escape_html(title)
    );
    let mut res = (status, html).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"),
    );
    no_store(res)
}

fn withdraw_token(c: &Collector, raw: &str) -> Option<(EmailToken, String)> {
    let t = parse_token(c, raw, TokenRoute::Withdraw).ok()?;
    let r = t.recipient.clone()?;
    (t.action == Action::Withdraw).then_some((t, r))
}

/// `GET /u/<token>`: a confirmation page only. Scanners GET every link; acting on a GET
/// would let them withdraw consent for people (RFC 8058 makes the same point).
pub async fn withdraw_get(State(c): State<Arc<Collector>>, Path(raw): Path<String>) -> Response {
    c.metrics.request(Route::Other);
    if withdraw_token(&c, &raw).is_none() {
        return not_found();
    }
    page(
        StatusCode::OK,
        "Stop tracking of these emails?",
        "<p>If you confirm, we stop recording when you open these emails or click their links. \
         Links keep working.</p><form method=\"post\"><button type=\"submit\">Stop tracking</button></form>",
    )
}

/// `POST /u/<token>`: withdraws the recipient's consent for every campaign of the site.
pub async fn withdraw_post(State(c): State<Arc<Collector>>, Path(raw): Path<String>) -> Response {
    c.metrics.request(Route::Other);
    let Some((t, recipient)) = withdraw_token(&c, &raw) else {
        return not_found();
    };
    let (store, now) = (c.store.clone(), c.clock.now_ms());
    let done = tokio::task::spawn_blocking(move || {
        store.set_consent(SiteId(t.site_id), 0, &recipient, false, now)
    })
    .await;
    match done {
        Ok(Ok(())) => page(
            StatusCode::OK,
            "Tracking stopped",
            "<p>Done. Opens and clicks of these emails are no longer recorded for you.</p>",
        ),
        _ => page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Please try again",
            "<p>We could not save your choice just now. Please try again in a minute.</p>",
        ),
    }
}
