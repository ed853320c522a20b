//! Who is calling: the bearer token, looked up by its SHA-256 in `api_tokens` once per
//! request by [`require`], which also checks the scope the route list gives the
//! operation, before the handler reads anything; the [`Auth`] extractor handlers take;
//! and the sites a token may see.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{blocking, ApiError, ApiState};
use crate::model::Site;
use crate::secret::{sha256_hex, API_TOKEN_PREFIX, SHARE_PREFIX};
use crate::store::{ApiToken, Scope, SiteStore, TokenStore};

/// The caller, authenticated by its bearer token.
#[derive(Clone)]
pub struct Auth(pub ApiToken);

impl FromRequestParts<ApiState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Auth>() {
            Some(auth) => Ok(auth.clone()),
            None => authenticate(parts, state).await,
        }
    }
}

/// The token in the `Authorization: Bearer` header, looked up by its hash.
async fn authenticate(parts: &Parts, state: &ApiState) -> Result<Auth, ApiError> {
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

impl Auth {
    fn need(&self, scope: Scope) -> Result<(), ApiError> {
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

/// Authenticates the caller once and checks the scope its operation needs before the
/// handler runs; the handler's [`Auth`] is this one.
pub(super) async fn require(
    State((state, scope)): State<(ApiState, Scope)>,
    req: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = req.into_parts();
    let auth = match authenticate(&parts, &state).await {
        Ok(auth) => auth,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = auth.need(scope) {
        return e.into_response();
    }
    parts.extensions.insert(auth);
    next.run(Request::from_parts(parts, body)).await
}
