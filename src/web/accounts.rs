//! Sign-in for the dashboard: argon2id passwords, server-side sessions, CSRF tokens,
//! login throttling, and the `CurrentUser` extractor every dashboard page starts from.
//!
//! - **Passwords** are argon2id PHC strings (RFC 9106 via RustCrypto `argon2`, default
//!   parameters m=19 MiB, t=2, p=1 as OWASP recommends); hashing runs off the async
//!   threads, at most four at a time.
//! - **Sessions**: a 256-bit random id in the `pt_session` cookie (`HttpOnly;
//!   SameSite=Lax; Path=/`, `Secure` when `public_url` is https); the database holds
//!   only its SHA-256. A session ends after [`IDLE_TIMEOUT_MS`] without a request
//!   (sliding) and at the latest [`ABSOLUTE_TIMEOUT_MS`] after sign-in; a password
//!   change or user removal ends all of a user's sessions.
//! - **CSRF**: a synchronizer token per session, sent as the hidden `csrf` field of
//!   every form, plus an `Origin` check when the browser sends one. The sign-in form,
//!   which has no session yet, uses a double-submit `pt_csrf` cookie instead.
//! - **Throttling** (see `throttle`): wrong password, unknown user and throttled
//!   attempt give the same status and page, and an unknown user still costs one
//!   argon2 verification, so neither text nor timing tells whether a name exists.
//!
//! Over 600 lines: sign-in, sessions, CSRF and throttling are one security boundary,
//! kept in one file so it can be reviewed in one reading.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::layout;
use super::{WebError, WebState};
use crate::clock::{Millis, DAY_MS, HOUR_MS};
use crate::model::SiteId;
use crate::secret::{constant_time_eq, fill_random, random_chars, random_token, sha256_hex};
use crate::store::sqlite::{Role, User};
use crate::store::{SqliteStore, StoreError};

pub const SESSION_COOKIE: &str = "pt_session";
/// Double-submit token for the sign-in form (there is no session to hold one yet).
pub const LOGIN_CSRF_COOKIE: &str = "pt_csrf";
/// A session unused for this long is over.
pub const IDLE_TIMEOUT_MS: Millis = 12 * HOUR_MS;
/// No session lives longer than this after sign-in, however busy.
pub const ABSOLUTE_TIMEOUT_MS: Millis = 7 * DAY_MS;
/// Activity is written back at most this often per session (not on every request).
const TOUCH_EVERY_MS: Millis = 60_000;
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longer "passwords" are refused before hashing (argon2 would take them, slowly).
pub const MAX_PASSWORD_BYTES: usize = 1024;
pub const GENERATED_PASSWORD_CHARS: usize = 20;
/// The one answer to every failed sign-in, whatever the reason.
pub const LOGIN_FAILED: &str = "wrong username or password, or too many attempts — wait and retry";
const CSRF_FAILED: &str = "this form was not sent from this dashboard page, or it is too old (CSRF check failed): reload the page and try again";

/// An argon2id hash with the default parameters, of a password nobody knows: unknown
/// users are verified against it so they take as long as known ones.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$iA6ebDT9E07t49ySkHB+DQ$33pp5gy8SKfLvGxvpZS3U9W4iXb5nPRVknhWi8TUIRU";

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("{0}")]
    Invalid(String),
}

/// Checks a username: 1–64 of `A-Z a-z 0-9 . _ @ -`.
pub fn validate_username(name: &str) -> Result<(), AccountError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(AccountError::Invalid(format!(
            "username {name:?}: use 1 to 64 letters, digits, '.', '_', '@' or '-'"
        )))
    }
}

/// Checks a new password: at least [`MIN_PASSWORD_CHARS`] characters.
pub fn validate_password(pw: &str) -> Result<(), AccountError> {
    if pw.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AccountError::Invalid(format!(
            "the password is too short: use at least {MIN_PASSWORD_CHARS} characters (or let pixeltrack generate one)"
        )));
    }
    if pw.len() > MAX_PASSWORD_BYTES {
        return Err(AccountError::Invalid(format!(
            "the password is too long: at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    Ok(())
}

/// A random password of [`GENERATED_PASSWORD_CHARS`] characters from an alphabet
/// without look-alikes (about 115 bits).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    random_chars(ALPHABET, GENERATED_PASSWORD_CHARS)
}

/// The argon2id PHC string of `password` (blocking: ~tens of ms of CPU and 19 MiB).
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    let mut salt = [0u8; 16];
    fill_random(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| AccountError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `hash` (blocking). A malformed stored hash
/// matches nothing.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// On first start (no users at all) creates `admin` with a random password and returns
/// the password, to be shown once; otherwise `None`.
pub fn ensure_first_admin(
    store: &SqliteStore,
    now: Millis,
) -> Result<Option<String>, AccountError> {
    if store.count_users()? > 0 {
        return Ok(None);
    }
    let password = generate_password();
    let hash = hash_password(&password)?;
    Ok(store
        .add_first_admin("admin", &hash, now)?
        .then_some(password))
}

fn session_hash(id: &str) -> String {
    sha256_hex(id)
}

/// The value of cookie `name`, if the request sent it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

fn set_cookie(state: &WebState, name: &str, value: &str, max_age_secs: i64) -> HeaderValue {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let v =
        format!("{name}={value}; HttpOnly; SameSite=Lax; Path=/; Max-Age={max_age_secs}{secure}");
    // Names are constants and values base64: always a valid header value.
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A token as we issue them: 43 URL-safe base64 characters. Anything else is ignored.
fn well_formed(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Which sites a user may see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    All,
    Sites(Vec<SiteId>),
}

impl Access {
    pub fn allows(&self, site: SiteId) -> bool {
        match self {
            Access::All => true,
            Access::Sites(s) => s.contains(&site),
        }
    }
}

/// The signed-in user of a dashboard request. As an extractor it answers requests
/// without a live session with a redirect to `/login?next=<path>` (GET/HEAD) or 401.
#[derive(Clone, Debug)]
pub struct CurrentUser {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub sites: Access,
    /// The session's CSRF token: put it in forms with `layout::csrf_field`.
    pub csrf: String,
    session_hash: String,
}

impl CurrentUser {
    pub fn can_view(&self, site: SiteId) -> bool {
        self.sites.allows(site)
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// `Err(Forbidden)` unless the user is an admin: for settings and other changes.
    pub fn require_admin(&self) -> Result<(), WebError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(WebError::Forbidden(
                "only admins can do this; ask an admin to change it".into(),
            ))
        }
    }

    fn from_session(user: User, csrf: String, session_hash: String) -> CurrentUser {
        let sites = match user.role {
            Role::Admin => Access::All,
            Role::Viewer => Access::Sites(user.sites),
        };
        CurrentUser {
            id: user.id,
            username: user.username,
            role: user.role,
            sites,
            csrf,
            session_hash,
        }
    }
}

/// The user of the session cookie in `headers`, if the session is live; moves the
/// idle expiry forward (at most once a minute).
async fn session_user(
    state: &WebState,
    headers: &HeaderMap,
) -> Result<Option<CurrentUser>, WebError> {
    let Some(id) = cookie(headers, SESSION_COOKIE).filter(|t| well_formed(t)) else {
        return Ok(None);
    };
    let hash = session_hash(id);
    let store = state.store.clone();
    let now = state.clock.now_ms();
    tokio::task::spawn_blocking(move || {
        let Some(s) = store.web_session(&hash, now)? else {
            return Ok(None);
        };
        if now - s.last_ms >= TOUCH_EVERY_MS {
            let expires = (now + IDLE_TIMEOUT_MS).min(s.created_ms + ABSOLUTE_TIMEOUT_MS);
            store.touch_web_session(&hash, now, expires)?;
        }
        Ok(Some(CurrentUser::from_session(s.user, s.csrf, hash)))
    })
    .await
    .map_err(WebError::internal)?
    .map_err(|e: StoreError| WebError::internal(e))
}

/// Where an unauthenticated request is sent: the sign-in page, remembering the page.
fn to_login(parts: &Parts, had_cookie: bool) -> Response {
    if parts.method != Method::GET && parts.method != Method::HEAD {
        // A change without a session (a share link, a stale tab, a forged form): refused.
        return WebError::Forbidden("sign in first: changes need a signed-in user".into())
            .into_response();
    }
    let location = if parts.method == Method::GET || parts.method == Method::HEAD {
        let target = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        if target == "/" {
            "/login".to_owned()
        } else {
            let next =
                percent_encoding::utf8_percent_encode(target, percent_encoding::NON_ALPHANUMERIC);
            format!("/login?next={next}")
        }
    } else {
        "/login".to_owned()
    };
    let mut res = (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
    if had_cookie {
        // A dead session cookie: drop it so the browser stops sending it.
        res.headers_mut()
            .append(header::SET_COOKIE, expire_cookie(SESSION_COOKIE));
    }
    res
}

fn expire_cookie(name: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

impl<S> FromRequestParts<S> for CurrentUser
where
    S: Send + Sync,
    WebState: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = WebState::from_ref(state);
        match session_user(&state, &parts.headers).await {
            Ok(Some(u)) => Ok(u),
            Ok(None) => Err(to_login(
                parts,
                cookie(&parts.headers, SESSION_COOKIE).is_some(),
            )),
            Err(e) => Err(e.into_response()),
        }
    }
}

/// Whether the request's `Origin` (when sent) is this server: the `Host` it was sent
/// to, or the configured public URL. `Origin: null` and other sites fail; so does a
/// browser that says `Sec-Fetch-Site: cross-site`.
pub(crate) fn same_origin(state: &WebState, headers: &HeaderMap) -> bool {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site")
    {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Some(origin) = origin
        .to_str()
        .ok()
        .and_then(|o| url::Url::parse(o).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
    else {
        return false;
    };
    let origin = origin.origin();
    let via_host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.contains(['/', '@', '?', '#']))
        .and_then(|h| {
            let scheme = match &origin {
                url::Origin::Tuple(s, ..) => s.as_str(),
                url::Origin::Opaque(_) => "http",
            };
            url::Url::parse(&format!("{scheme}://{h}")).ok()
        })
        .is_some_and(|u| u.origin() == origin);
    via_host || url::Url::parse(&state.public_url).is_ok_and(|u| u.origin() == origin)
}

/// The CSRF check for a state-changing request of a signed-in user: the form's `csrf`
/// field must equal the session's token, and the `Origin`, if sent, must be this
/// server. Dashboard handlers usually get this through [`CsrfForm`].
pub fn check_csrf(
    state: &WebState,
    user: &CurrentUser,
    form_token: &str,
    headers: &HeaderMap,
) -> Result<(), WebError> {
    if constant_time_eq(&user.csrf, form_token) && same_origin(state, headers) {
        Ok(())
    } else {
        Err(WebError::Forbidden(CSRF_FAILED.into()))
    }
}

/// A form posted by a signed-in user, CSRF-checked: `CsrfForm { user, form }`. The
/// body is `application/x-www-form-urlencoded` with a `csrf` field besides `T`'s
/// fields (T need not declare it). Use `NoFields` for forms that are only a button.
pub struct CsrfForm<T> {
    pub user: CurrentUser,
    pub form: T,
}

/// For [`CsrfForm`]s that carry nothing but the token.
#[derive(Debug, Deserialize)]
pub struct NoFields {}

/// The `csrf` field of a url-encoded body.
fn form_csrf(body: &[u8]) -> String {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

impl<S, T> FromRequest<S> for CsrfForm<T>
where
    S: Send + Sync,
    WebState: FromRef<S>,
    T: DeserializeOwned,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let web = WebState::from_ref(state);
        let (mut parts, body) = req.into_parts();
        let user = CurrentUser::from_request_parts(&mut parts, state).await?;
        let headers = parts.headers.clone();
        let body = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        check_csrf(&web, &user, &form_csrf(&body), &headers)
            .map_err(IntoResponse::into_response)?;
        let form = serde_urlencoded::from_bytes(&body)
            .map_err(|e| WebError::BadRequest(format!("malformed form: {e}")).into_response())?;
        Ok(CsrfForm { user, form })
    }
}

/// The client address for throttling (honours `trusted_proxies` via `WebState`).
pub struct ClientIp(pub IpAddr);

impl<S> FromRequestParts<S> for ClientIp
where
    S: Send + Sync,
    WebState: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        Ok(ClientIp((WebState::from_ref(state).client_ip)(
            peer,
            &parts.headers,
        )))
    }
}

/// `next` if it is a path on this site, else `/`: never `//host`, `/\host` or a URL.
pub fn safe_next(next: &str) -> &str {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && next.len() <= 2000
        && !next.contains('\\')
        && !next.chars().any(|c| c.is_control() || c.is_whitespace());
    if ok {
        next
    } else {
        "/"
    }
}

#[derive(Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    next: String,
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
}

fn login_markup(csrf: &str, next: &str, error: Option<&str>) -> Markup {
    html! {
        h1 { "Sign in" }
        @if let Some(e) = error {
            p.error role="alert" { (e) }
        }
        form.stack method="post" action="/login" {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="next" value=(safe_next(next));
            label { "Username"
                input type="text" name="username" autocomplete="username" autocapitalize="none" required maxlength="64" autofocus;
            }
            label { "Password"
                input type="password" name="password" autocomplete="current-password" required;
            }
            button type="submit" { "Sign in" }
        }
    }
}

/// The sign-in page. Reuses the `pt_csrf` cookie if the browser has one, so several
/// open tabs keep working.
fn login_response(
    state: &WebState,
    headers: &HeaderMap,
    next: &str,
    error: Option<&str>,
) -> Response {
    let existing = cookie(headers, LOGIN_CSRF_COOKIE).filter(|t| well_formed(t));
    let token = existing.map(str::to_owned).unwrap_or_else(random_token);
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let mut res = (
        status,
        layout::render(layout::page(
            "Sign in",
            None,
            login_markup(&token, next, error),
        )),
    )
        .into_response();
    if existing.is_none() {
        res.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(state, LOGIN_CSRF_COOKIE, &token, ABSOLUTE_TIMEOUT_MS / 1000),
        );
    }
    res
}

fn see_other(location: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, location.to_owned())],
    )
        .into_response()
}

/// `GET /login`: the form (or straight on, when already signed in).
pub async fn login_page(
    State(state): State<WebState>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Result<Response, WebError> {
    if session_user(&state, &headers).await?.is_some() {
        return Ok(see_other(safe_next(&q.next)));
    }
    Ok(login_response(&state, &headers, &q.next, None))
}

/// `POST /login`.
pub async fn login(
    State(state): State<WebState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let form: LoginForm = serde_urlencoded::from_bytes(&body)
        .map_err(|e| WebError::BadRequest(format!("malformed sign-in form: {e}")))?;
    let double_submit = cookie(&headers, LOGIN_CSRF_COOKIE)
        .filter(|t| well_formed(t))
        .is_some_and(|c| constant_time_eq(c, &form.csrf));
    if !double_submit || !same_origin(&state, &headers) {
        return Err(WebError::Forbidden(CSRF_FAILED.into()));
    }
    let now = state.clock.now_ms();
    let username = form.username.trim().to_owned();
    let user = if state.throttle.locked(&username, ip, now) {
        None
    } else {
        let _permit = state.hashing.acquire().await.map_err(WebError::internal)?;
        let store = state.store.clone();
        let (name, password) = (username.clone(), form.password);
        tokio::task::spawn_blocking(move || check_password(&store, &name, &password))
            .await
            .map_err(WebError::internal)?
            .map_err(WebError::internal)?
    };
    let Some(user) = user else {
        state.throttle.failed(&username, ip, now);
        // No address in the log: raw IPs never reach the disk (DESIGN §5).
        tracing::info!("dashboard sign-in refused");
        return Ok(login_response(
            &state,
            &headers,
            &form.next,
            Some(LOGIN_FAILED),
        ));
    };
    state.throttle.succeeded(&username, ip, now);
    let id = random_token();
    let hash = session_hash(&id);
    let csrf = random_token();
    let old = cookie(&headers, SESSION_COOKIE)
        .filter(|t| well_formed(t))
        .map(session_hash);
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
        if let Some(old) = old {
            store.remove_web_session(&old)?;
        }
        store.add_web_session(&hash, user.id, &csrf, now, now + IDLE_TIMEOUT_MS)
    })
    .await
    .map_err(WebError::internal)?
    .map_err(WebError::internal)?;
    let mut res = see_other(safe_next(&form.next));
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, &id, ABSOLUTE_TIMEOUT_MS / 1000),
    );
    Ok(res)
}

/// The user if `password` is theirs (blocking). Unknown or malformed names cost one
/// argon2 verification too, so timing does not reveal which names exist.
fn check_password(
    store: &SqliteStore,
    name: &str,
    password: &str,
) -> Result<Option<User>, StoreError> {
    let found = if validate_username(name).is_ok() && password.len() <= MAX_PASSWORD_BYTES {
        store.user_with_hash(name)?
    } else {
        None
    };
    // One verification on every path: an unknown name checks against the dummy hash.
    let hash = found.as_ref().map_or(DUMMY_HASH, |(_, h)| h.as_str());
    let ok = verify_password(password, hash);
    Ok(found.filter(|_| ok).map(|(user, _)| user))
}

/// `POST /logout`: ends the session (CSRF-checked, so no other site can sign you out).
pub async fn logout(
    State(state): State<WebState>,
    CsrfForm { user, .. }: CsrfForm<NoFields>,
) -> Result<Response, WebError> {
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || store.remove_web_session(&user.session_hash))
        .await
        .map_err(WebError::internal)?
        .map_err(WebError::internal)?;
    let mut res = see_other("/login");
    res.headers_mut()
        .append(header::SET_COOKIE, expire_cookie(SESSION_COOKIE));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterz", &h));
        assert!(!verify_password("x", "not a phc string"));
        assert_ne!(h, hash_password("correct horse battery").unwrap(), "salted");
    }

    #[test]
    fn dummy_hash_costs_what_a_real_one_does() {
        let real = hash_password("whatever123").unwrap();
        let params = |h: &str| h.split('$').nth(3).unwrap().to_owned();
        assert_eq!(params(DUMMY_HASH), params(&real));
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }

    #[test]
    fn generated_passwords_are_long_and_differ() {
        let a = generate_password();
        assert_eq!(a.chars().count(), GENERATED_PASSWORD_CHARS);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, generate_password());
        assert!(validate_password(&a).is_ok());
    }

    #[test]
    fn usernames_and_passwords_are_checked() {
        for good in ["admin", "a.b_c-d@example.com", &"x".repeat(64)] {
            assert!(validate_username(good).is_ok(), "{good}");
        }
        for bad in ["", "a b", "ä", "<script>", &"x".repeat(65), "a/b"] {
            assert!(validate_username(bad).is_err(), "{bad}");
        }
        assert!(validate_password("short").is_err());
        assert!(validate_password("ten chars!").is_ok());
        assert!(validate_password(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
    }

    #[test]
    fn next_is_only_a_local_path() {
        assert_eq!(
            safe_next("/sites/1?from=2024-01-01"),
            "/sites/1?from=2024-01-01"
        );
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example/",
            "javascript:alert(1)",
            "evil",
            "",
            "/\tx",
            "/ok\nSet-Cookie:x",
        ] {
            assert_eq!(safe_next(bad), "/", "{bad:?}");
        }
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; pt_session=abc ; b=2"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("pt_csrf=zz"));
        assert_eq!(cookie(&h, "pt_session"), Some("abc"));
        assert_eq!(cookie(&h, "pt_csrf"), Some("zz"));
        assert_eq!(cookie(&h, "pt"), None);
        assert!(well_formed(&random_token()));
        assert!(!well_formed("abc"));
    }

    fn state(public_url: &str) -> (tempfile::TempDir, WebState) {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(SqliteStore::open(dir.path()).unwrap());
        let ip: std::sync::Arc<super::super::ClientIpFn> = std::sync::Arc::new(|p, _| p);
        let s = WebState::new(store, crate::clock::Clock::fixed(0), public_url, ip);
        (dir, s)
    }

    #[test]
    fn origin_must_be_this_server() {
        let (_d, s) = state("https://t.example.com");
        assert!(s.secure_cookies);
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, HeaderValue::from_static(v));
            }
            m
        };
        assert!(
            same_origin(&s, &h(&[("host", "127.0.0.1:8080")])),
            "no Origin: token alone decides"
        );
        assert!(same_origin(
            &s,
            &h(&[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://127.0.0.1:8080")
            ])
        ));
        assert!(same_origin(
            &s,
            &h(&[
                ("host", "t.example.com"),
                ("origin", "https://t.example.com")
            ])
        ));
        assert!(same_origin(
            &s,
            &h(&[
                ("host", "t.example.com:443"),
                ("origin", "https://t.example.com")
            ])
        ));
        assert!(
            same_origin(
                &s,
                &h(&[
                    ("host", "10.0.0.5:8080"),
                    ("origin", "https://t.example.com")
                ])
            ),
            "behind a proxy"
        );
        assert!(!same_origin(
            &s,
            &h(&[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://127.0.0.1:9090")
            ])
        ));
        assert!(!same_origin(
            &s,
            &h(&[
                ("host", "127.0.0.1:8080"),
                ("origin", "https://evil.example")
            ])
        ));
        assert!(!same_origin(
            &s,
            &h(&[("host", "127.0.0.1:8080"), ("origin", "null")])
        ));
        assert!(!same_origin(
            &s,
            &h(&[
                ("host", "evil.example@127.0.0.1"),
                ("origin", "http://evil.example")
            ])
        ));
        assert!(!same_origin(
            &s,
            &h(&[("host", "127.0.0.1:8080"), ("sec-fetch-site", "cross-site")])
        ));
        let (_d2, plain) = state("http://127.0.0.1:8080/");
        assert!(!plain.secure_cookies);
        assert_eq!(plain.public_url, "http://127.0.0.1:8080");
    }

    #[test]
    fn first_admin_is_created_once() {
        let (_d, s) = state("http://x");
        let pw = ensure_first_admin(&s.store, 1).unwrap().expect("created");
        let (user, hash) = s.store.user_with_hash("admin").unwrap().unwrap();
        assert_eq!(user.role, Role::Admin);
        assert!(verify_password(&pw, &hash));
        assert!(!hash.contains(&pw));
        assert_eq!(ensure_first_admin(&s.store, 2).unwrap(), None);
    }
}
