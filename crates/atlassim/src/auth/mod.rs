//! The auth server (`auth.atlassian.com`) and the identity endpoints of
//! `api.atlassian.com`: `/authorize` with its consent page, `/oauth/token`,
//! `/oauth/token/accessible-resources` and `/me`.

mod authorize;
pub(crate) mod consent_page;
mod resources;
pub mod store;
mod token;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::model::AppState;

pub use store::{check_access_token, AccessError, AccessInfo, AuthState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/authorize", get(authorize::show_authorize))
        .route("/authorize/decision", post(authorize::create_decision))
        .route("/oauth/token", post(token::create_token))
        .route(
            "/oauth/token/accessible-resources",
            get(resources::list_accessible_resources),
        )
        .route("/me", get(resources::get_me))
}

/// The next consent decision (`POST /__sim/consent`, [`crate::Sim::set_next_consent`]).
/// Unset fields fall back to the first user and every site of that user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsentDecision {
    pub account_id: Option<String>,
    pub sites: Option<Vec<String>>,
    pub deny: bool,
}

/// Body of `POST /__sim/tokens`: mint a token family without the browser flow.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MintTokenRequest {
    pub client_id: Option<String>,
    pub account_id: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub cloud_ids: Option<Vec<String>>,
}

/// Answer of `POST /__sim/tokens`, shaped like a token response.
#[derive(Clone, Serialize, Deserialize)]
pub struct MintedTokens {
    pub access_token: String,
    /// Present when the scopes include `offline_access` (the default scopes do).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub expires_in: i64,
    pub scope: String,
}

impl std::fmt::Debug for MintedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MintedTokens")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error("unknown client_id")]
    UnknownClient,
    #[error("unknown account_id")]
    UnknownAccount,
    #[error("scope {0} is not registered for the client")]
    ScopeNotAllowed(String),
    #[error("cloud id {0} is not a site of the user")]
    UnknownSite(String),
}

impl IntoResponse for MintError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": "invalid_request", "error_description": self.to_string() });
        (StatusCode::BAD_REQUEST, Json(body)).into_response()
    }
}

/// Mint a token family directly, as if the user had consented.
pub fn mint(
    state: &crate::model::SimState,
    req: MintTokenRequest,
) -> Result<MintedTokens, MintError> {
    let now = state.clock.now();
    let mut world = state.world();
    let world = &mut *world;
    let client = match &req.client_id {
        Some(id) => world.client(id),
        None => world.clients.first(),
    }
    .ok_or(MintError::UnknownClient)?
    .clone();
    let user = match &req.account_id {
        Some(id) => world.user(id),
        None => world.users.first(),
    }
    .ok_or(MintError::UnknownAccount)?
    .clone();
    let scopes = match req.scopes {
        Some(scopes) => {
            if let Some(bad) = scopes.iter().find(|s| !client.scopes.contains(s)) {
                return Err(MintError::ScopeNotAllowed(bad.clone()));
            }
            scopes
        }
        None => client.scopes.clone(),
    };
    let user_sites: Vec<String> = world
        .sites
        .iter()
        .filter(|s| s.users.contains(&user.account_id))
        .map(|s| s.cloud_id.clone())
        .collect();
    let cloud_ids = match req.cloud_ids {
        Some(ids) => {
            if let Some(bad) = ids.iter().find(|id| !user_sites.contains(id)) {
                return Err(MintError::UnknownSite(bad.clone()));
            }
            ids
        }
        None => user_sites,
    };
    let auth = &mut world.auth;
    auth.grant(&client.client_id, &user.account_id, &cloud_ids);
    let family = auth.new_family(now, &client.client_id, &user.account_id, scopes);
    let issued = auth.issue_pair(&state.config, now, family);
    Ok(MintedTokens {
        access_token: issued.access_token,
        refresh_token: issued.refresh_token,
        expires_in: issued.expires_in,
        scope: issued.scope,
    })
}

/// Errors of `/oauth/token`, in the shapes Atlassian's auth server uses.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// Missing or malformed parameters. The status and code are a guess
    /// (RFC 6749 §5.2); Atlassian documents no example.
    #[error("{0}")]
    InvalidRequest(String),
    #[error("unsupported grant_type")]
    UnsupportedGrantType,
    /// Unknown client or wrong/missing secret: 401 `access_denied` "Unauthorized".
    #[error("unauthorized")]
    Unauthorized,
    #[error(transparent)]
    InvalidGrant(#[from] store::GrantError),
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let (status, error, description) = match &self {
            OAuthError::InvalidRequest(d) => {
                (StatusCode::BAD_REQUEST, "invalid_request", d.clone())
            }
            OAuthError::UnsupportedGrantType => (
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Unsupported grant type".to_string(),
            ),
            OAuthError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "access_denied",
                "Unauthorized".to_string(),
            ),
            OAuthError::InvalidGrant(store::GrantError::InvalidRefreshToken) => (
                StatusCode::FORBIDDEN,
                "invalid_grant",
                "Unknown or invalid refresh token.".to_string(),
            ),
            OAuthError::InvalidGrant(store::GrantError::InvalidCode) => (
                StatusCode::FORBIDDEN,
                "invalid_grant",
                "Invalid authorization code".to_string(),
            ),
            OAuthError::InvalidGrant(store::GrantError::RedirectMismatch) => (
                StatusCode::FORBIDDEN,
                "invalid_grant",
                "redirect_uri does not match the one used to authorize".to_string(),
            ),
        };
        let body = serde_json::json!({ "error": error, "error_description": description });
        (status, Json(body)).into_response()
    }
}

/// Errors of the identity endpoints on `api.atlassian.com`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiAuthError {
    #[error("Unauthorized")]
    Unauthorized,
    #[error("Unauthorized; scope does not match")]
    ScopeMismatch,
}

impl IntoResponse for ApiAuthError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "code": 401, "message": self.to_string() });
        (StatusCode::UNAUTHORIZED, Json(body)).into_response()
    }
}
