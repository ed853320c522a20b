//! What a request brings besides its path: query parameters, each checked against its
//! endpoint's allowlist (400 otherwise); the date range they name (whole UTC days, the
//! last 30 by default, counted from the API's clock); and JSON bodies (1 MiB at most,
//! only known fields).

use axum::http::request::Parts;

use super::ApiError;
use crate::clock::{day_of, Millis};
use crate::report::DateRange;

/// A request's query parameters, in order, every name on the endpoint's allowlist.
pub(super) struct Params(Vec<(String, String)>);

impl Params {
    /// The query of `parts`, checked against `allowed`.
    pub(super) fn parse(parts: &Parts, allowed: &[&str]) -> Result<Params, ApiError> {
        let q = parts.uri.query().unwrap_or("");
        let mut out = Vec::new();
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
            if !allowed.contains(&k.as_ref()) {
                return Err(ApiError::BadRequest(format!(
                    "unknown parameter '{}'; allowed: {}",
                    k.chars().take(40).collect::<String>(),
                    allowed.join(", ")
                )));
            }
            out.push((k.into_owned(), v.into_owned()));
        }
        Ok(Params(out))
    }

    /// The first value of `name`.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order (`step=/a&step=/b`).
    pub(super) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `from` and `to` (UTC days, both included); by default the 30 days up to `now`.
    pub(super) fn range(&self, now: Millis) -> Result<DateRange, ApiError> {
        let to = self.date("to", day_of(now))?;
        let from = self.date("from", to - 29)?;
        if from > to || to - from > 3_660 {
            return Err(ApiError::BadRequest(
                "'from' must be on or before 'to', at most 10 years apart".into(),
            ));
        }
        Ok(DateRange {
            from_day: from,
            to_day: to,
        })
    }

    fn date(&self, name: &str, default: i64) -> Result<i64, ApiError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => DateRange::parse_date(v).ok_or_else(|| {
                ApiError::BadRequest(format!("'{name}' must be a date like 2026-01-31"))
            }),
        }
    }
}

/// A JSON request body: at most 1 MiB, only known fields (400 otherwise).
pub struct Body<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, _: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::to_bytes(req.into_body(), 1 << 20)
            .await
            .map_err(|_| ApiError::BadRequest("request body too large (1 MiB at most)".into()))?;
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
    }
}
