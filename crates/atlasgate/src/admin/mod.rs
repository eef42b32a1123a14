//! Administration: the JSON API under `/admin/api` and the HTML dashboard at
//! `/admin`, both behind `ATLASGATE_ADMIN_TOKEN`. Without a token configured
//! every admin route answers 404, as if it did not exist.

mod api;
pub mod audit;
mod dashboard;
pub mod lifecycle;
mod points_chart;
mod session;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::Router;
use utoipa_axum::router::OpenApiRouter;

pub use api::{rfc3339, AppResponse, CreateAppRequest, CreateAppResponse, ListAppsResponse};

use crate::apps::auth_bearer;
use crate::error::ApiError;
use crate::state::AppState;

/// Documented JSON routes.
pub fn api_router() -> OpenApiRouter<AppState> {
    api::router()
        .merge(lifecycle::router())
        .merge(audit::router())
}

/// HTML pages (not part of the OpenAPI document).
pub fn pages_router() -> Router<AppState> {
    dashboard::router()
}

/// Proof that the request carries the admin token (`Authorization: Bearer`).
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if state.config.admin_token.is_none() {
            return Err(ApiError::NotFound);
        }
        let token = auth_bearer(parts).ok_or(ApiError::Unauthorized(
            "missing `Authorization: Bearer` admin token",
        ))?;
        if state.config.admin_token_matches(token) {
            Ok(Admin)
        } else {
            // Bounded by the failed-authentication rate limit (`ratelimit::admin`).
            let ip = crate::client_addr::ClientAddr::of(&parts.extensions).0;
            login_failed(state, ip, "api").await;
            Err(ApiError::Unauthorized("wrong admin token"))
        }
    }
}

/// Record `admin.login_failed` (never the token that was tried).
pub(crate) async fn login_failed(state: &AppState, ip: std::net::IpAddr, via: &'static str) {
    crate::audit::record_after(
        &state.store,
        crate::audit::kind::ADMIN_LOGIN_FAILED,
        crate::audit::Subject::default(),
        &crate::audit::Actor {
            client_ip: Some(ip),
            via,
        },
        serde_json::json!({}),
    )
    .await;
}
