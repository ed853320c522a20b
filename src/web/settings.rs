//! `/settings`: sites (allowed hostnames, consent and GPC options, retention), users,
//! API tokens and share links. Admins only; every change is a CSRF-checked POST that
//! answers with a redirect back (or, when it created a secret, with the page showing
//! the secret once; share links' URLs stay visible to admins). Tokens and share links
//! are listed with their site's name; their forms pick the site from a list.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;

use super::layout::{self, csrf_field};
use super::manage::{blocking, store_err};
use super::{CsrfForm, CurrentUser, NoFields, WebError, WebState};
use crate::model::{parse_domain, PrivacyMode, Site, SiteKey, WithoutConsent};
use crate::store::sqlite::Role;
use crate::store::{Scope, SiteStore, TokenStore};

/// What a POST created that must be shown exactly once.
enum Secret {
    Password { user: String, password: String },
    Token { id: i64, secret: String },
    Share { url: String },
}

fn site_by_key(store: &dyn SiteStore, key: &str) -> Result<Site, WebError> {
    store
        .sites()
        .map_err(WebError::internal)?
        .into_iter()
        .find(|s| s.key.as_str() == key)
        .ok_or(WebError::NotFound)
}

fn back() -> Response {
    Redirect::to("/settings").into_response()
}

fn checked(on: bool) -> Option<&'static str> {
    on.then_some("checked")
}

/// A one-button form that posts to `action` (with the CSRF field).
fn post_button(csrf: &Markup, action: &str, label: &str) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (csrf)
            button.danger type="submit" { (label) }
        }
    }
}

fn page(state: &WebState, user: &CurrentUser, secret: Option<Secret>) -> Result<Markup, WebError> {
    let store = state.store.as_ref();
    let sites = store.sites().map_err(WebError::internal)?;
    let users = store.users().map_err(WebError::internal)?;
    let tokens = store.api_tokens().map_err(WebError::internal)?;
    let shares = store.share_links().map_err(WebError::internal)?;
    let secrets = store.share_secrets().map_err(WebError::internal)?;
    let site_name = |id: i64| {
        sites
            .iter()
            .find(|s| s.id.0 == id)
            .map(|s| format!("{} ({})", s.name, s.domain))
            .unwrap_or_else(|| "(removed)".into())
    };
    let csrf = csrf_field(user);
    Ok(html! {
        h1 { "Settings" }
        @if let Some(s) = &secret {
            div.secret {
                @match s {
                    Secret::Password { user, password } => {
                        p { "Password of " strong { (user) } ", shown once — pass it on safely:" }
                        pre { code { (password) } }
                    }
                    Secret::Token { id, secret } => {
                        p { "API token " (id) ", shown once (only its hash is stored):" }
                        pre { code { (secret) } }
                    }
                    Secret::Share { url } => {
                        p { "Share link (admins see it again below):" }
                        pre { code { (url) } }
                    }
                }
            }
        }
        section.settings {
            h2 { "Sites" }
            @for s in &sites {
                form method="post" action={"/settings/sites/" (s.key)} {
                    (csrf)
                    h3 { (s.name) " " span.muted { (s.domain) " · key " code { (s.key) } } }
                    div.row {
                        label { "More hostnames (comma-separated)" input type="text" name="hosts" value=(s.hosts.join(", ")); }
                        label { "Privacy mode"
                            select name="privacy_mode" {
                                @for m in [PrivacyMode::Anonymous, PrivacyMode::Consented, PrivacyMode::Off] {
                                    option value=(m.as_str()) selected[s.privacy.mode == m] { (m.as_str()) }
                                }
                            }
                        }
                        label { "Without consent"
                            select name="without_consent" {
                                @for w in [WithoutConsent::Aggregate, WithoutConsent::Drop] {
                                    option value=(w.as_str()) selected[s.privacy.without_consent == w] { (w.as_str()) }
                                }
                            }
                        }
                        label.check { input type="checkbox" name="gpc" value="on" checked=[checked(s.privacy.honour_gpc)]; " Honour Global Privacy Control" }
                        label.check { input type="checkbox" name="dnt" value="on" checked=[checked(s.privacy.honour_dnt)]; " Honour Do Not Track" }
                        label { "Retention (days, empty: keep)" input type="number" name="retention_days" min="1" max="36500" value=[s.privacy.retention_days]; }
                        button type="submit" { "Save" }
                    }
                }
                form method="post" action={"/settings/sites/" (s.key) "/remove"} {
                    (csrf)
                    div.row {
                        label { span { "Type " code { (s.domain) } " to remove the site and all its data" } input type="text" name="confirm"; }
                        button.danger type="submit" { "Remove site" }
                    }
                }
            }
            h3 { "Add a site" }
            form method="post" action="/settings/sites" {
                (csrf)
                div.row {
                    label { "Domain" input type="text" name="domain" placeholder="example.com"; }
                    label { "Name (optional)" input type="text" name="name"; }
                    button type="submit" { "Add site" }
                }
            }
        }
        section.settings {
            h2 { "Users" }
            table {
                thead { tr { th { "user" } th { "role" } th { "sites" } th {} } }
                tbody {
                    @for u in &users {
                        tr {
                            td { (u.username) }
                            td { (u.role.as_str()) }
                            td { @if u.role == Role::Admin { "all" } @else { (u.sites.iter().map(|s| site_name(s.0)).collect::<Vec<_>>().join(", ")) } }
                            td {
                                (post_button(&csrf, &format!("/settings/users/{}/remove", u.id), "Remove"))
                            }
                        }
                    }
                }
            }
            form method="post" action="/settings/users" {
                (csrf)
                div.row {
                    label { "Username" input type="text" name="username"; }
                    label { "Role" select name="role" { option value="viewer" { "viewer" } option value="admin" { "admin" } } }
                }
                fieldset.sites {
                    legend { "Sites a viewer sees (admins see all)" }
                    @if sites.is_empty() { span.muted { "No sites yet." } }
                    @for s in &sites {
                        label.check { input type="checkbox" name="site" value=(s.key); " " (s.name) " " span.muted { "(" (s.domain) ")" } }
                    }
                }
                button type="submit" { "Add user" }
            }
        }
        section.settings {
            h2 { "API tokens" }
            table {
                thead { tr { th { "id" } th { "name" } th { "scope" } th { "site" } th {} } }
                tbody {
                    @for t in &tokens {
                        tr {
                            td { (t.id) }
                            td { (t.name) }
                            td { (t.scope.as_str()) }
                            td { (t.site_id.map(site_name).unwrap_or_else(|| "all".into())) }
                            td {
                                (post_button(&csrf, &format!("/settings/tokens/{}/revoke", t.id), "Revoke"))
                            }
                        }
                    }
                }
            }
            form method="post" action="/settings/tokens" {
                (csrf)
                div.row {
                    label { "Name" input type="text" name="name"; }
                    label { "Scope" select name="scope" { option value="read" { "read" } option value="write" { "write" } option value="admin" { "admin" } } }
                    label { "Only this site (optional)" (super::manage::site_picker("site", &sites, user, Some("all sites"))) }
                    button type="submit" { "Create token" }
                }
            }
        }
        section.settings {
            h2 { "Share links" }
            p.muted { "Read-only links to one site's dashboard, optionally with a password. They can read reports and nothing else." }
            table {
                thead { tr { th { "id" } th { "name" } th { "site" } th { "password" } th { "link" } th {} } }
                tbody {
                    @for l in &shares {
                        tr {
                            td { (l.id) }
                            td { (l.name) }
                            td { (site_name(l.site_id.0)) }
                            td { (if l.password_hash.is_some() { "yes" } else { "no" }) }
                            td {
                                @if let Some((_, secret)) = secrets.iter().find(|(id, _)| *id == l.id) {
                                    code.share-url { (state.public_url) "/share/" (secret) }
                                } @else {
                                    span.muted.small { "made before it was kept: revoke and make a new one to see it" }
                                }
                            }
                            td {
                                (post_button(&csrf, &format!("/settings/shares/{}/revoke", l.id), "Revoke"))
                            }
                        }
                    }
                }
            }
            form method="post" action="/settings/shares" {
                (csrf)
                div.row {
                    label { "Site" (super::manage::site_picker("site", &sites, user, None)) }
                    label { "Name" input type="text" name="name"; }
                    label { "Password (optional)" input type="password" name="password" autocomplete="new-password"; }
                    button type="submit" { "Create share link" }
                }
            }
        }
    })
}

async fn render(
    state: WebState,
    user: CurrentUser,
    secret: Option<Secret>,
) -> Result<Response, WebError> {
    let s2 = state.clone();
    let u2 = user.clone();
    let body = blocking(move || page(&s2, &u2, secret)).await?;
    Ok(layout::render(layout::page("Settings", Some(&user), body)))
}

/// `GET /settings`.
pub async fn show(State(state): State<WebState>, user: CurrentUser) -> Result<Response, WebError> {
    user.require_admin()?;
    render(state, user, None).await
}

#[derive(Deserialize)]
pub struct NewSite {
    domain: String,
    #[serde(default)]
    name: String,
}

pub async fn add_site(
    State(state): State<WebState>,
    f: CsrfForm<NewSite>,
) -> Result<Response, WebError> {
    f.user.require_admin()?;
    let (domain, name) = crate::model::new_site(&f.form.domain, Some(&f.form.name))
        .map_err(|e| WebError::BadRequest(e.into()))?;
    let now = state.clock.now_ms();
    let store = state.store.clone();
    blocking(move || {
        store
            .add_site(&SiteKey::generate(), &domain, &name, now)
            .map_err(store_err)
    })
    .await?;
    Ok(back())
}

#[derive(Deserialize)]
pub struct SiteSettings {
    #[serde(default)]
    hosts: String,
    privacy_mode: String,
    without_consent: String,
    #[serde(default)]
    gpc: Option<String>,
    #[serde(default)]
    dnt: Option<String>,
    #[serde(default)]
    retention_days: String,
}

pub async fn save_site(
    State(state): State<WebState>,
    Path(key): Path<String>,
    f: CsrfForm<SiteSettings>,
) -> Result<Response, WebError> {
    f.user.require_admin()?;
    let s = f.form;
    let mode = PrivacyMode::parse(&s.privacy_mode)
        .ok_or_else(|| WebError::BadRequest("unknown privacy mode".into()))?;
    let without = WithoutConsent::parse(&s.without_consent)
        .ok_or_else(|| WebError::BadRequest("unknown without-consent option".into()))?;
    let retention = match s.retention_days.trim() {
        "" => None,
        d => Some(
            d.parse::<u32>()
                .ok()
                .filter(|d| (1..=36_500).contains(d))
                .ok_or_else(|| {
                    WebError::BadRequest(
                        "retention is a number of days from 1 to 36500, or empty".into(),
                    )
                })?,
        ),
    };
    let hosts = s
        .hosts
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| {
            parse_domain(h).ok_or_else(|| {
                WebError::BadRequest(format!(
                    "{:?} is not a host name",
                    h.chars().take(80).collect::<String>()
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let store = state.store.clone();
    blocking(move || {
        let site = site_by_key(store.as_ref(), &key)?;
        let mut p = site.privacy.clone();
        p.mode = mode;
        p.without_consent = without;
        p.honour_gpc = s.gpc.is_some();
        p.honour_dnt = s.dnt.is_some();
        p.retention_days = retention;
        store.set_privacy(site.id, &p).map_err(store_err)?;
        store.set_hosts(site.id, &hosts).map_err(store_err)
    })
    .await?;
    Ok(back())
}

#[derive(Deserialize)]
pub struct Confirm {
    #[serde(default)]
    confirm: String,
}

pub async fn remove_site(
    State(state): State<WebState>,
    Path(key): Path<String>,
    f: CsrfForm<Confirm>,
) -> Result<Response, WebError> {
    f.user.require_admin()?;
    let store = state.store.clone();
    blocking(move || {
        let site = site_by_key(store.as_ref(), &key)?;
        if f.form.confirm.trim() != site.domain {
            return Err(WebError::BadRequest(
                "type the site's domain to confirm its removal".into(),
            ));
        }
        store.remove_site(&site.key).map_err(store_err)
    })
    .await?;
    Ok(back())
}

/// Site keys or domains, comma-separated, to site ids.
fn site_ids(store: &dyn SiteStore, list: &str) -> Result<Vec<crate::model::SiteId>, WebError> {
    site_ids_of(store, list.split(','))
}

/// Site keys or domains to site ids; an unknown one is a 400 that names it.
fn site_ids_of<'a>(
    store: &dyn SiteStore,
    list: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<crate::model::SiteId>, WebError> {
    let sites = store.sites().map_err(WebError::internal)?;
    list.into_iter()
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|w| {
            Site::find(&sites, w).map(|s| s.id).ok_or_else(|| {
                WebError::BadRequest(format!(
                    "no site {:?}",
                    w.chars().take(80).collect::<String>()
                ))
            })
        })
        .collect()
}

/// The add-user form: `username`, `role`, and a `site` field (a key) for each site
/// ticked in the picker; `sites`, keys or domains comma-separated, is still read for
/// forms and scripts made before the picker.
struct NewUser {
    username: String,
    role: String,
    sites: Vec<String>,
}

impl NewUser {
    fn from_fields(fields: Vec<(String, String)>) -> NewUser {
        let mut u = NewUser {
            username: String::new(),
            role: String::new(),
            sites: Vec::new(),
        };
        for (k, v) in fields {
            match k.as_str() {
                "username" => u.username = v,
                "role" => u.role = v,
                "site" => u.sites.push(v),
                "sites" => u.sites.extend(v.split(',').map(str::to_owned)),
                _ => {}
            }
        }
        u
    }
}

pub async fn add_user(
    State(state): State<WebState>,
    f: CsrfForm<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    f.user.require_admin()?;
    let u = NewUser::from_fields(f.form);
    let name = u.username.trim().to_owned();
    super::accounts::validate_username(&name).map_err(|e| WebError::BadRequest(e.to_string()))?;
    let role = Role::parse(&u.role)
        .ok_or_else(|| WebError::BadRequest("role is admin or viewer".into()))?;
    let password = super::accounts::generate_password();
    let hash = {
        let p = password.clone();
        blocking(move || super::accounts::hash_password(&p).map_err(WebError::internal)).await?
    };
    let (store, now) = (state.store.clone(), state.clock.now_ms());
    let n2 = name.clone();
    blocking(move || {
        let mut sites = site_ids_of(store.as_ref(), u.sites.iter().map(String::as_str))?;
        sites.sort_by_key(|s| s.0);
        sites.dedup();
        store
            .add_user(&n2, &hash, role, &sites, now)
            .map_err(store_err)
    })
    .await?;
    render(
        state,
        f.user,
        Some(Secret::Password {
            user: name,
            password,
        }),
    )
    .await
}

pub async fn remove_user(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    f: CsrfForm<NoFields>,
) -> Result<Response, WebError> {
    f.user.require_admin()?;
    let store = state.store.clone();
    blocking(move || {
        let u = store
            .users()
            .map_err(WebError::internal)?
            .into_iter()
            .find(|u| u.id == id)
            .ok_or(WebError::NotFound)?;
        store.remove_user(&u.username).map_err(store_err)
    })
    .await?;
    Ok(back())
}

#[derive(Deserialize)]
pub struct NewToken {
    #[serde(default)]
    name: String,
    scope: String,
    #[serde(default)]
    site: String,
}

pub async fn add_token(
    State(state): State<WebState>,
    f: CsrfForm<NewToken>,
) -> Result<Response, WebError> {
    f.user.require_admin()?;
    let t = f.form;
    let scope = Scope::parse(&t.scope)
        .ok_or_else(|| WebError::BadRequest("scope is read, write or admin".into()))?;
    let (store, now) = (state.store.clone(), state.clock.now_ms());
    let (id, secret) = blocking(move || {
        let site_id = site_ids(store.as_ref(), &t.site)?.first().map(|s| s.0);
        crate::secret::issue_api_token(store.as_ref(), &t.name, scope, site_id, now)
            .map_err(store_err)
    })
    .await?;
    render(state, f.user, Some(Secret::Token { id, secret })).await
}

pub async fn revoke_token(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    f: CsrfForm<NoFields>,
) -> Result<Response, WebError> {
    f.user.require_admin()?;
    let store = state.store.clone();
    blocking(move || store.revoke_api_token(id).map_err(store_err)).await?;
    Ok(back())
}

#[derive(Deserialize)]
pub struct NewShare {
    site: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

pub async fn add_share(
    State(state): State<WebState>,
    f: CsrfForm<NewShare>,
) -> Result<Response, WebError> {
    f.user.require_admin()?;
    let s = f.form;
    if s.name.len() > 200 || s.name.chars().any(char::is_control) {
        return Err(WebError::BadRequest(
            "a name is at most 200 characters without control characters".into(),
        ));
    }
    let password_hash = if s.password.is_empty() {
        None
    } else {
        super::accounts::validate_password(&s.password)
            .map_err(|e| WebError::BadRequest(e.to_string()))?;
        let p = s.password.clone();
        Some(
            blocking(move || super::accounts::hash_password(&p).map_err(WebError::internal))
                .await?,
        )
    };
    let secret = super::share::new_secret();
    let hash = crate::secret::sha256_hex(&secret);
    let (store, now) = (state.store.clone(), state.clock.now_ms());
    let kept = secret.clone();
    blocking(move || {
        let site = *site_ids(store.as_ref(), &s.site)?
            .first()
            .ok_or_else(|| WebError::BadRequest("pick the site to share".into()))?;
        let id = store
            .add_share_link(site, &hash, password_hash.as_deref(), s.name.trim(), now)
            .map_err(store_err)?;
        // Kept so admins can see the URL again (schema 18).
        store.set_share_secret(id, &kept).map_err(store_err)
    })
    .await?;
    let url = format!("{}/share/{secret}", state.public_url);
    render(state, f.user, Some(Secret::Share { url })).await
}

pub async fn revoke_share(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    f: CsrfForm<NoFields>,
) -> Result<Response, WebError> {
    f.user.require_admin()?;
    let store = state.store.clone();
    blocking(move || store.remove_share_link(id).map_err(store_err)).await?;
    Ok(back())
}
