//! `POST /admin/api/apps`, `GET /admin/api/apps`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Admin;
use crate::apps::{self, parse_webhook_url, App, AppName, NewApp, ReturnOrigin};
use crate::error::{ApiError, FieldError, Problem};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_app, list_apps))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAppRequest {
    /// Unique, 1–100 characters.
    #[schema(
        pattern = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000-\u001f\u007f-\u009f]([^\u0000-\u001f\u007f-\u009f]{0,98}[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000-\u001f\u007f-\u009f])?[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub name: String,
    /// Where events are delivered (Standard Webhooks). A signing secret is
    /// generated when set.
    #[schema(
        pattern = r"^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9.-]+(:[0-9]{1,4})?([/?#][^\t-\r ]*)?$"
    )]
    pub webhook_url: Option<String>,
    /// Origins (`scheme://host[:port]`) a connect flow may return to.
    #[serde(default)]
    #[schema(value_type = Vec<crate::schema::Origin>, inline)]
    pub return_origins: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AppResponse {
    pub id: String,
    pub name: String,
    pub webhook_url: Option<String>,
    pub return_origins: Vec<String>,
    /// RFC 3339.
    pub created_at: String,
}

impl From<&App> for AppResponse {
    fn from(a: &App) -> Self {
        AppResponse {
            id: a.id.clone(),
            name: a.name.clone(),
            webhook_url: a.webhook_url.as_ref().map(|u| u.to_string()),
            return_origins: a.return_origins.iter().map(|o| o.to_string()).collect(),
            created_at: rfc3339(a.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreateAppResponse {
    #[serde(flatten)]
    pub app: AppResponse,
    /// `agk_…` — shown this once; only its hash is stored.
    pub api_key: String,
    /// `whsec_…` — present when `webhook_url` was given; shown this once.
    pub webhook_secret: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListAppsResponse {
    pub apps: Vec<AppResponse>,
}

pub fn rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

impl CreateAppRequest {
    /// Every invalid field at once.
    pub fn parse(&self) -> Result<NewApp, ApiError> {
        let mut errors = Vec::new();
        let name = AppName::parse(&self.name).map_err(|m| errors.push(FieldError::new("name", m)));
        let webhook_url = match &self.webhook_url {
            Some(u) => parse_webhook_url(u)
                .map(Some)
                .map_err(|m| errors.push(FieldError::new("webhook_url", m))),
            None => Ok(None),
        };
        let mut return_origins = Vec::new();
        for (i, o) in self.return_origins.iter().enumerate() {
            match ReturnOrigin::parse(o) {
                Ok(o) => return_origins.push(o),
                Err(m) => errors.push(FieldError::new(format!("return_origins[{i}]"), m)),
            }
        }
        match (name, webhook_url) {
            (Ok(name), Ok(webhook_url)) if errors.is_empty() => Ok(NewApp {
                name,
                webhook_url,
                return_origins,
            }),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

/// Create an app. The API key (and webhook secret) are in this response only.
#[utoipa::path(post, path = "/admin/api/apps", tag = "admin",
    security(("admin_token" = [])),
    request_body = CreateAppRequest,
    responses(
        (status = 201, description = "Created", body = CreateAppResponse),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Admin routes are off (no ATLASGATE_ADMIN_TOKEN)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Name taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_app(
    _admin: Admin,
    State(state): State<AppState>,
    crate::client_addr::ClientAddr(ip): crate::client_addr::ClientAddr,
    Json(req): Json<CreateAppRequest>,
) -> Result<(StatusCode, Json<CreateAppResponse>), ApiError> {
    let new = req.parse()?;
    let actor = crate::audit::Actor::api(ip);
    let created = apps::create_by(&state.store, &state.cipher, new, &actor).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreateAppResponse {
            app: AppResponse::from(&created.app),
            api_key: created.api_key.expose().to_string(),
            webhook_secret: created
                .webhook_secret
                .as_ref()
                .map(|s| s.expose().to_string()),
        }),
    ))
}

/// List apps (never their keys or secrets).
#[utoipa::path(get, path = "/admin/api/apps", tag = "admin",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Apps", body = ListAppsResponse),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Admin routes are off", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_apps(
    _admin: Admin,
    State(state): State<AppState>,
) -> Result<Json<ListAppsResponse>, ApiError> {
    let apps = apps::list(&state.store).await?;
    Ok(Json(ListAppsResponse {
        apps: apps.iter().map(AppResponse::from).collect(),
    }))
}
