//! Share links: `/share/<secret>` shows one site's dashboard, read-only, to anyone with
//! the link (and its password, when it has one). Only a SHA-256 of the secret is
//! stored. A share link reads reports and nothing else: it is no session, so every
//! change is refused (403), and the API refuses it too.
//!
//! A password, once given, is remembered by a cookie scoped to the link's path whose
//! value is derived from the link's stored hashes: it cannot be forged without them,
//! and it dies with the link or a new password.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use maud::html;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::accounts::{cookie, same_origin, verify_password, ClientIp, MAX_PASSWORD_BYTES};
use super::dashboard::{self, Frame, View};
use super::layout;
use super::{WebError, WebState};
use crate::clock::day_of;
use crate::store::sqlite::ShareLink;
use crate::store::SiteStore;

/// Prefix of share secrets (the API recognises and refuses them).
pub const PREFIX: &str = crate::secret::SHARE_PREFIX;
const COOKIE: &str = "pt_share";

pub fn new_secret() -> String {
    format!("{PREFIX}{}", crate::secret::random_token())
}

/// The cookie value that proves the password of `link` was given.
fn proof(secret_hash: &str, link: &ShareLink) -> String {
    let d = Sha256::new()
        .chain_update(b"pixeltrack share v1\0")
        .chain_update(secret_hash.as_bytes())
        .chain_update(b"\0")
        .chain_update(link.password_hash.as_deref().unwrap_or("").as_bytes())
        .finalize();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d)
}

async fn find(
    state: &WebState,
    secret: &str,
) -> Result<(ShareLink, crate::model::Site, String), WebError> {
    if !secret.starts_with(PREFIX) || secret.len() > 100 {
        return Err(WebError::NotFound);
    }
    let hash = crate::secret::sha256_hex(secret);
    let store = state.store.clone();
    let h2 = hash.clone();
    let found = tokio::task::spawn_blocking(move || -> crate::store::Result<_> {
        let Some(link) = store.share_link_by_hash(&h2)? else {
            return Ok(None);
        };
        let site = store.sites()?.into_iter().find(|s| s.id == link.site_id);
        Ok(site.map(|s| (link, s)))
    })
    .await
    .map_err(WebError::internal)?
    .map_err(WebError::internal)?;
    let (link, site) = found.ok_or(WebError::NotFound)?;
    Ok((link, site, hash))
}

fn unlocked(headers: &HeaderMap, link: &ShareLink, hash: &str) -> bool {
    link.password_hash.is_none() || cookie(headers, COOKIE).is_some_and(|c| c == proof(hash, link))
}

fn password_form(secret: &str, error: Option<&str>) -> Response {
    let body = html! {
        h1 { "This dashboard is protected" }
        @if let Some(e) = error { p.error { (e) } }
        form.stack method="post" action={"/share/" (secret)} {
            label { "Password" input type="password" name="password" autocomplete="current-password" autofocus; }
            button type="submit" { "Open" }
        }
    };
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    (
        status,
        layout::render(layout::page("Shared dashboard", None, body)),
    )
        .into_response()
}

/// `GET /share/<secret>`: the site page, read-only.
pub async fn show(
    State(state): State<WebState>,
    Path(secret): Path<String>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Result<Response, WebError> {
    let (link, site, hash) = find(&state, &secret).await?;
    if !unlocked(&headers, &link, &hash) {
        return Ok(password_form(&secret, None));
    }
    let now = state.clock.now_ms();
    let view = View::parse(uri.query().unwrap_or(""), day_of(now))?;
    let (store, s2, v2, model) = (state.store.clone(), site.clone(), view.clone(), state.ads);
    let data = tokio::task::spawn_blocking(move || {
        dashboard::load_site(store.as_ref(), &s2, &v2, model, now)
    })
    .await
    .map_err(WebError::internal)?
    .map_err(WebError::internal)?;
    let base = format!("/share/{secret}");
    let frame = Frame {
        base: &base,
        user: None,
        public_url: &state.public_url,
    };
    let body = dashboard::site_body(&frame, &site, &view, &data);
    Ok(layout::render(layout::page(&site.name, None, body)))
}

/// `GET /share/<secret>/details/<dimension>`: a breakdown beyond its top 10, read-only.
pub async fn details(
    State(state): State<WebState>,
    Path((secret, dim)): Path<(String, String)>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Result<Response, WebError> {
    let (link, site, hash) = find(&state, &secret).await?;
    if !unlocked(&headers, &link, &hash) {
        return Ok(password_form(&secret, None));
    }
    let base = format!("/share/{secret}");
    let (title, body) = super::details::page(&state, &site, &base, &dim, &uri).await?;
    Ok(layout::render(layout::page(&title, None, body)))
}

/// `GET /share/<secret>/realtime.json`.
pub async fn realtime(
    State(state): State<WebState>,
    Path(secret): Path<String>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Result<Response, WebError> {
    let (link, site, hash) = find(&state, &secret).await?;
    if !unlocked(&headers, &link, &hash) {
        return Err(WebError::Forbidden(
            "this share link needs its password".into(),
        ));
    }
    dashboard::realtime_of(&state, site, &uri).await
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    password: String,
}

/// `POST /share/<secret>`: the link's password. Throttled like sign-in.
pub async fn unlock(
    State(state): State<WebState>,
    Path(secret): Path<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    if !same_origin(&state, &headers) {
        return Err(WebError::Forbidden("cross-site form refused".into()));
    }
    let (link, _, hash) = find(&state, &secret).await?;
    let Some(pw_hash) = link.password_hash.clone() else {
        return Ok(see_other(&format!("/share/{secret}")));
    };
    let form: PasswordForm = serde_urlencoded::from_bytes(&body)
        .map_err(|e| WebError::BadRequest(format!("malformed form: {e}")))?;
    let now = state.clock.now_ms();
    let key = format!("share:{}", link.id);
    let ok = if state.throttle.locked(&key, ip, now) || form.password.len() > MAX_PASSWORD_BYTES {
        false
    } else {
        let _permit = state.hashing.acquire().await.map_err(WebError::internal)?;
        let pw = form.password;
        tokio::task::spawn_blocking(move || verify_password(&pw, &pw_hash))
            .await
            .map_err(WebError::internal)?
    };
    if !ok {
        state.throttle.failed(&key, ip, now);
        return Ok(password_form(
            &secret,
            Some("wrong password, or too many attempts — wait and retry"),
        ));
    }
    state.throttle.succeeded(&key, ip, now);
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let value = format!(
        "{COOKIE}={}; HttpOnly; SameSite=Lax; Path=/share/{secret}; Max-Age=604800{secure}",
        proof(&hash, &link)
    );
    let mut res = see_other(&format!("/share/{secret}"));
    if let Ok(v) = HeaderValue::from_str(&value) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(res)
}

fn see_other(location: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, location.to_owned())],
    )
        .into_response()
}
