//! Managing from the dashboard, not only reading: a site's refused and machine hits
//! (with a form to allow a refused host), goals and funnels, campaigns (create, mark
//! sent, cost, tag an email for one recipient or, as a zip, for a list of them, ad
//! links, each recipient's opens and clicks with the reason in words), exports, and
//! your own password.
//!
//! The same rules as `settings`: every change is a CSRF-checked POST (`CsrfForm`, or
//! `check_csrf` for the one multipart upload) that
//! only admins may make (`CurrentUser::require_admin`), validated here with a message
//! that says what to type; a viewer sees the pages of the sites shared with them
//! without the forms; someone else's site or campaign is "not found". Pages are maud
//! (escaped), with no inline script or style, so pasted HTML, names, recipient ids and
//! URLs stay text. The logic is the CLI's and the API's (`tag::Tagger`,
//! `Tagger::tag_batch`, `report::export::write`, `report::ads::funnel`), not a copy of it.

pub mod account;
pub mod campaigns;
pub mod goals;
pub mod site;

use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};

use super::{CurrentUser, WebError, WebState};
use crate::model::Site;
use crate::store::SiteStore;

/// The routes of this module, merged into the dashboard's router.
pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/sites/{key}/allow-host", post(site::allow_host))
        .route("/sites/{key}/export", get(site::export))
        .route("/sites/{key}/goals", get(goals::show).post(goals::add_goal))
        .route("/sites/{key}/goals/{id}/remove", post(goals::remove_goal))
        .route("/sites/{key}/funnels", post(goals::add_funnel))
        .route(
            "/sites/{key}/funnels/{id}/remove",
            post(goals::remove_funnel),
        )
        .route(
            "/sites/{key}/campaigns",
            get(campaigns::list).post(campaigns::create),
        )
        .route("/campaigns/{id}/manage", get(campaigns::show))
        .route("/campaigns/{id}/sent", post(campaigns::sent))
        .route("/campaigns/{id}/cost", post(campaigns::cost))
        .route("/campaigns/{id}/tag", post(campaigns::tag))
        .route(
            "/campaigns/{id}/tag-batch",
            post(campaigns::tag_batch).layer(axum::extract::DefaultBodyLimit::max(
                campaigns::MAX_BATCH_UPLOAD,
            )),
        )
        .route("/campaigns/{id}/links", post(campaigns::ad_link))
        .route(
            crate::web::layout::MANAGE_STYLESHEET_PATH,
            get(crate::web::layout::manage_stylesheet),
        )
        .route(
            "/account",
            get(account::show).post(account::change_password),
        )
}

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, WebError> + Send + 'static,
) -> Result<T, WebError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(WebError::internal)?
}

/// Store errors a user can act on (a conflict) are shown; others are logged.
pub(crate) fn store_err(e: crate::store::StoreError) -> WebError {
    match e {
        crate::store::StoreError::Conflict(m) => WebError::BadRequest(m),
        e => WebError::internal(e),
    }
}

/// The site `key` if `user` may see it; someone else's site is "not found".
pub(crate) async fn site_for(
    state: &WebState,
    user: &CurrentUser,
    key: &str,
) -> Result<Site, WebError> {
    let store = state.store.clone();
    let sites = blocking(move || store.sites().map_err(WebError::internal)).await?;
    sites
        .into_iter()
        .find(|s| s.key.as_str() == key && user.can_view(s.id))
        .ok_or(WebError::NotFound)
}

/// At most `max` characters, no control characters: a name, a label.
pub(crate) fn checked_name(what: &str, s: &str, max: usize) -> Result<String, WebError> {
    let s = s.trim();
    if s.is_empty() || s.chars().count() > max || s.chars().any(char::is_control) {
        return Err(WebError::BadRequest(format!(
            "{what} is 1 to {max} characters without control characters"
        )));
    }
    Ok(s.to_owned())
}

/// The links between a site's pages (reading and managing).
pub(crate) fn site_nav(site: &Site, here: &str) -> Markup {
    let base = format!("/sites/{}", site.key);
    let links = [
        (base.clone(), "Dashboard"),
        (format!("{base}/goals"), "Goals and funnels"),
        (format!("{base}/campaigns"), "Campaigns"),
    ];
    html! {
        nav.manage {
            @for (href, label) in &links {
                @if *label == here { strong { (label) } } @else { a href=(href) { (label) } }
            }
        }
    }
}

/// A `<select name=...>` of the sites `user` may see (a picker, not a typed key);
/// `none` adds a first option with an empty value.
pub fn site_picker(name: &str, sites: &[Site], user: &CurrentUser, none: Option<&str>) -> Markup {
    html! {
        select name=(name) {
            @if let Some(label) = none { option value="" { (label) } }
            @for s in sites.iter().filter(|s| user.can_view(s.id)) {
                option value=(s.key) { (s.name) " (" (s.domain) ")" }
            }
        }
    }
}

/// A one-button form that posts to `action` (with the CSRF field).
pub(crate) fn post_button(user: &CurrentUser, action: &str, label: &str) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (super::layout::csrf_field(user))
            button.danger type="submit" { (label) }
        }
    }
}
