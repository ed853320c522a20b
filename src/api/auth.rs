//! Who is calling: the bearer-token extractor ([`Auth`]: a SHA-256 lookup in
//! `api_tokens`), its scope checks, the sites a token may see, and the middleware that
//! asks for the write scope before any change reads its body.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, Method};
use axum::response::{IntoResponse, Response};

use super::{blocking, ApiError, ApiState};
use crate::model::Site;
use crate::secret::{sha256_hex, API_TOKEN_PREFIX, SHARE_PREFIX};
use crate::store::{ApiToken, Scope, Store};

/// The caller, authenticated by its bearer token.
pub struct Auth(pub ApiToken);

impl FromRequestParts<ApiState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if bearer.is_some_and(|t| t.starts_with(SHARE_PREFIX)) {
            return Err(ApiError::Forbidden(
                "a share link only opens its dashboard; the API needs a token ('pixeltrack token create')".into(),
            ));
        }
        let secret = bearer
            .filter(|t| t.starts_with(API_TOKEN_PREFIX) && t.len() <= 100)
            .ok_or(ApiError::Unauthorized)?;
        let hash = sha256_hex(secret);
        let store = state.store.clone();
        let token = blocking(move || store.api_token_by_hash(&hash)).await?;
        token.map(Auth).ok_or(ApiError::Unauthorized)
    }
}

impl Auth {
    pub(super) fn need(&self, scope: Scope) -> Result<(), ApiError> {
        if self.0.scope >= scope {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "this token's scope is '{}'; '{}' is needed",
                self.0.scope.as_str(),
                scope.as_str()
            )))
        }
    }

    pub(super) fn may_see(&self, site_id: i64) -> bool {
        self.0.site_id.is_none_or(|s| s == site_id)
    }

    /// The site `wanted` names (key or domain) among those this token sees; without a
    /// name, the token's only site.
    pub(super) async fn site(
        &self,
        state: &ApiState,
        wanted: Option<&str>,
    ) -> Result<Site, ApiError> {
        let store = state.store.clone();
        let sites = blocking(move || store.sites()).await?;
        let visible: Vec<Site> = sites.into_iter().filter(|s| self.may_see(s.id.0)).collect();
        match wanted {
            Some(w) => {
                // Not "forbidden": do not tell a token which other sites exist.
                Site::find(&visible, w).cloned().ok_or_else(|| {
                    ApiError::NotFound(format!(
                        "no site '{}' for this token",
                        w.chars().take(80).collect::<String>()
                    ))
                })
            }
            None if visible.len() == 1 => Ok(visible.into_iter().next().expect("one")),
            None => Err(ApiError::BadRequest(
                "parameter 'site' is required (a site key or domain)".into(),
            )),
        }
    }
}

/// Every change needs at least the write scope, checked before the handler reads the
/// body: a read token (or a share link) gets its 403 whatever it sends. Handlers still
/// check finer scopes (admin for erasure).
pub(super) async fn changes_need_write(
    State(state): State<ApiState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    match Auth::from_request_parts(&mut parts, &state).await {
        Ok(auth) => match auth.need(Scope::Write) {
            Ok(()) => {
                next.run(axum::extract::Request::from_parts(parts, body))
                    .await
            }
            Err(e) => e.into_response(),
        },
        Err(e) => e.into_response(),
    }
}
