//! The common page frame and the headers every dashboard response carries.
//!
//! The CSP allows scripts, styles and connections only from this origin and no inline
//! code, so even an escaping bug cannot run injected script; `frame-ancestors 'none'`
//! (and the legacy `X-Frame-Options`) stop clickjacking of the forms.

use std::sync::LazyLock;

use axum::http::{header, HeaderValue};
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use super::accounts::CurrentUser;

pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

pub const STYLESHEET_PATH: &str = "/static/app.css";
const STYLESHEET: &str = include_str!("static/app.css");
pub const MANAGE_STYLESHEET_PATH: &str = "/static/manage.css";
const MANAGE_STYLESHEET: &str = include_str!("static/manage.css");
pub const SCRIPT_PATH: &str = "/static/app.js";
const SCRIPT: &str = include_str!("static/app.js");

/// `path?v=` and the start of the content's SHA-256: a URL that can be cached for a year
/// and still changes with the binary.
fn versioned(path: &str, content: &str) -> String {
    format!("{path}?v={}", &crate::secret::sha256_hex(content)[..12])
}

/// The script URL with a content hash (like the stylesheet's).
pub fn script_href() -> &'static str {
    static HREF: LazyLock<String> = LazyLock::new(|| versioned(SCRIPT_PATH, SCRIPT));
    &HREF
}

pub async fn script() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                "application/javascript; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        SCRIPT,
    )
        .into_response()
}

/// The stylesheet URL with a content hash, so it can be cached for a year and still
/// change with the binary.
pub fn stylesheet_href() -> &'static str {
    static HREF: LazyLock<String> = LazyLock::new(|| versioned(STYLESHEET_PATH, STYLESHEET));
    &HREF
}

/// The management pages' stylesheet URL (`web/manage`), versioned like the main one.
pub fn manage_stylesheet_href() -> &'static str {
    static HREF: LazyLock<String> =
        LazyLock::new(|| versioned(MANAGE_STYLESHEET_PATH, MANAGE_STYLESHEET));
    &HREF
}

pub async fn manage_stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        MANAGE_STYLESHEET,
    )
        .into_response()
}

pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// A hidden `csrf` field for a form that posts as `user` (see `check_csrf`).
pub fn csrf_field(user: &CurrentUser) -> Markup {
    html! { input type="hidden" name="csrf" value=(user.csrf); }
}

/// A full page: head, header (with the signed-in user and a sign-out button), `body`.
pub fn page(title: &str, user: Option<&CurrentUser>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="same-origin";
                title { (title) " · pixeltrack" }
                link rel="stylesheet" href=(stylesheet_href());
                link rel="stylesheet" href=(manage_stylesheet_href());
            }
            body {
                header.top {
                    a.brand href="/" { "pixeltrack" }
                    @if let Some(u) = user {
                        a href="/" { "Sites" }
                        @if u.is_admin() {
                            a href="/settings" { "Settings" }
                        }
                        a href="/account" { "Account" }
                        span.who { "Signed in as " strong { (u.username) } span.long { " (" (u.role.as_str()) ")" } }
                        form.inline method="post" action="/logout" {
                            (csrf_field(u))
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// An HTML response from rendered markup.
pub fn render(markup: Markup) -> Response {
    Html(markup.into_string()).into_response()
}

/// Adds the security headers to a dashboard response (`Cache-Control: no-store`
/// unless the handler chose its own, as the stylesheet does).
pub async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}
