//! The `AuthenticatedApp` extractor: `Authorization: Bearer agk_…`.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use url::Url;

use super::types::API_KEY_PREFIX;
use super::ReturnOrigin;
use crate::error::ApiError;
use crate::state::AppState;


/// The app making the request. Every app-API handler takes one; queries then
/// filter by `id`, so one app never sees another's objects.
#[derive(Debug, Clone)]
pub struct AuthenticatedApp {
    pub id: String,
    pub name: String,
    pub return_origins: Vec<ReturnOrigin>,
    pub webhook_url: Option<Url>,
}

/// The bearer token of a request, if it has one.
pub fn bearer(parts: &Parts) -> Option<&str> {
    let v = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl FromRequestParts<AppState> for AuthenticatedApp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = bearer(parts)
            .ok_or(ApiError::Unauthorized("missing `Authorization: Bearer agk_…` header"))?;
        if !key.starts_with(API_KEY_PREFIX) {
            return Err(ApiError::Unauthorized("the bearer token is not an app API key"));
        }
        let app = super::authenticate(&state.store, key)
            .await?
            .ok_or(ApiError::Unauthorized("unknown API key"))?;
        Ok(AuthenticatedApp {
            id: app.id,
            name: app.name,
            return_origins: app.return_origins,
            webhook_url: app.webhook_url,
        })
    }
}
