//! The app lifecycle of the admin API (docs/design.md §13): update, keys,
//! webhook-secret rotation, delete. `{app}` is an app's id or its name.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::api::{rfc3339, AppResponse};
use super::Admin;
use crate::apps::{self, parse_webhook_url, AppName, AppUpdate, ReturnOrigin};
use crate::audit::Actor;
use crate::client_addr::ClientAddr;
use crate::error::{ApiError, FieldError, Problem};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(update_app, delete_app))
        .routes(routes!(create_key, list_keys))
        .routes(routes!(revoke_key))
        .routes(routes!(rotate_webhook_secret))
}

/// `Some(None)` for an explicit `null`, `None` when the field is absent.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAppRequest {
    /// Unique, 1–100 characters.
    #[schema(
        pattern = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000-\u001f\u007f-\u009f]([^\u0000-\u001f\u007f-\u009f]{0,98}[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000-\u001f\u007f-\u009f])?[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub name: Option<String>,
    /// A new URL, or `null` to stop deliveries (events are then `skipped`).
    /// Setting one on an app without a signing secret creates the secret.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable, pattern = r"^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9.-]+(:[0-9]{1,4})?([/?#][^\t-\r ]*)?$")]
    pub webhook_url: Option<Option<String>>,
    /// Replaces the list.
    #[schema(value_type = Option<Vec<crate::schema::Origin>>, inline)]
    pub return_origins: Option<Vec<String>>,
}

impl UpdateAppRequest {
    /// Every invalid field at once.
    pub fn parse(&self) -> Result<AppUpdate, ApiError> {
        let mut errors = Vec::new();
        let mut change = AppUpdate::default();
        if let Some(n) = &self.name {
            match AppName::parse(n) {
                Ok(n) => change.name = Some(n),
                Err(m) => errors.push(FieldError::new("name", m)),
            }
        }
        match &self.webhook_url {
            Some(Some(u)) => match parse_webhook_url(u) {
                Ok(u) => change.webhook_url = Some(Some(u)),
                Err(m) => errors.push(FieldError::new("webhook_url", m)),
            },
            Some(None) => change.webhook_url = Some(None),
            None => {}
        }
        if let Some(list) = &self.return_origins {
            let mut origins = Vec::new();
            for (i, o) in list.iter().enumerate() {
                match ReturnOrigin::parse(o) {
                    Ok(o) => origins.push(o),
                    Err(m) => errors.push(FieldError::new(format!("return_origins[{i}]"), m)),
                }
            }
            change.return_origins = Some(origins);
        }
        if errors.is_empty() {
            Ok(change)
        } else {
            Err(ApiError::Validation(errors))
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UpdateAppResponse {
    #[serde(flatten)]
    pub app: AppResponse,
    /// `whsec_…`, only when this update created the signing secret (shown this once).
    pub webhook_secret: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedKeyResponse {
    /// `key_…`: what `DELETE …/keys/{key}` takes.
    pub id: String,
    /// `agk_…` — shown this once; only its hash is stored.
    pub key: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AppKeyResponse {
    pub id: String,
    /// The key's first characters (`agk_` + 8 digits; `agk_` alone for
    /// the key an app had before keys were listed).
    pub prefix: String,
    pub created_at: String,
    /// Updated at most once a minute.
    pub last_used_at: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookSecretResponse {
    /// `whsec_…` — shown this once. The previous secret keeps signing
    /// (a second `v1,` entry) for `ATLASGATE_WEBHOOK_SECRET_OVERLAP` seconds.
    pub secret: String,
}

/// Update an app
#[utoipa::path(patch, path = "/admin/api/apps/{app}", tag = "admin",
    security(("admin_token" = [])),
    params(("app" = String, Path, description = "App id or name")),
    request_body = UpdateAppRequest,
    responses(
        (status = 200, description = "The app", body = UpdateAppResponse),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such app (or admin routes are off)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Name taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update_app(
    _admin: Admin,
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    Path(app): Path<String>,
    Json(req): Json<UpdateAppRequest>,
) -> Result<Json<UpdateAppResponse>, ApiError> {
    let change = req.parse()?;
    let app = apps::lifecycle::resolve(&state.store, &app).await?;
    let updated = apps::lifecycle::update(
        &state.store,
        &state.cipher,
        &app.id,
        change,
        &Actor::api(ip),
    )
    .await?;
    state.apps_cache.invalidate_app(&app.id);
    Ok(Json(UpdateAppResponse {
        app: AppResponse::from(&updated.app),
        webhook_secret: updated.webhook_secret.map(|s| s.expose().to_string()),
    }))
}

/// Delete an app
///
/// Every connection of the app is disconnected (its Jira webhooks deleted
/// while its tokens still work), then the app goes with its keys,
/// connections, syncs, synced issues and pending events.
#[utoipa::path(delete, path = "/admin/api/apps/{app}", tag = "admin",
    security(("admin_token" = [])),
    params(("app" = String, Path, description = "App id or name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such app (or admin routes are off)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_app(
    _admin: Admin,
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    Path(app): Path<String>,
) -> Result<StatusCode, ApiError> {
    delete(&state, &app, Actor::api(ip)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete an app and drop its keys from this process's cache (the dashboard too).
pub async fn delete(state: &AppState, app: &str, actor: Actor) -> Result<(), ApiError> {
    let app = apps::lifecycle::resolve(&state.store, app).await?;
    apps::lifecycle::delete(&state.core, &app.id, &actor).await?;
    state.apps_cache.invalidate_app(&app.id);
    Ok(())
}

/// Create an additional API key
#[utoipa::path(post, path = "/admin/api/apps/{app}/keys", tag = "admin",
    security(("admin_token" = [])),
    params(("app" = String, Path, description = "App id or name")),
    responses(
        (status = 201, description = "The key, shown this once", body = CreatedKeyResponse),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such app (or admin routes are off)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_key(
    _admin: Admin,
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    Path(app): Path<String>,
) -> Result<(StatusCode, Json<CreatedKeyResponse>), ApiError> {
    let app = apps::lifecycle::resolve(&state.store, &app).await?;
    let created = apps::lifecycle::create_key(&state.store, &app.id, &Actor::api(ip)).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedKeyResponse {
            id: created.id,
            key: created.key.expose().to_string(),
        }),
    ))
}

/// List an app's API keys (never the keys)
#[utoipa::path(get, path = "/admin/api/apps/{app}/keys", tag = "admin",
    security(("admin_token" = [])),
    params(("app" = String, Path, description = "App id or name")),
    responses(
        (status = 200, description = "The keys, oldest first", body = Vec<AppKeyResponse>),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such app (or admin routes are off)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_keys(
    _admin: Admin,
    State(state): State<AppState>,
    Path(app): Path<String>,
) -> Result<Json<Vec<AppKeyResponse>>, ApiError> {
    let app = apps::lifecycle::resolve(&state.store, &app).await?;
    let keys = apps::lifecycle::list_keys(&state.store, &app.id).await?;
    Ok(Json(keys.into_iter().map(key_response).collect()))
}

pub fn key_response(k: apps::AppKey) -> AppKeyResponse {
    AppKeyResponse {
        id: k.id,
        prefix: k.prefix,
        created_at: rfc3339(k.created_at),
        last_used_at: k.last_used_at.map(rfc3339),
    }
}

/// Revoke an API key
///
/// The key answers 401 at once on this process and within 10 s on every other.
#[utoipa::path(delete, path = "/admin/api/apps/{app}/keys/{key}", tag = "admin",
    security(("admin_token" = [])),
    params(
        ("app" = String, Path, description = "App id or name"),
        ("key" = String, Path, description = "Key id (`key_…`)"),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such app or key (or admin routes are off)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn revoke_key(
    _admin: Admin,
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    Path((app, key)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    revoke(&state, &app, &key, Actor::api(ip)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revoke a key and drop it from this process's key cache (the dashboard too).
pub async fn revoke(state: &AppState, app: &str, key: &str, actor: Actor) -> Result<(), ApiError> {
    let app = apps::lifecycle::resolve(&state.store, app).await?;
    apps::lifecycle::revoke_key(&state.store, &app.id, key, &actor).await?;
    state.apps_cache.invalidate_key(key);
    Ok(())
}

/// Rotate the webhook signing secret
///
/// For `ATLASGATE_WEBHOOK_SECRET_OVERLAP` seconds (default 86400) every
/// delivery carries both signatures (`webhook-signature: v1,<new> v1,<old>`).
#[utoipa::path(post, path = "/admin/api/apps/{app}/webhook-secret", tag = "admin",
    security(("admin_token" = [])),
    params(("app" = String, Path, description = "App id or name")),
    responses(
        (status = 201, description = "The new secret, shown this once", body = WebhookSecretResponse),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such app (or admin routes are off)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn rotate_webhook_secret(
    _admin: Admin,
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    Path(app): Path<String>,
) -> Result<(StatusCode, Json<WebhookSecretResponse>), ApiError> {
    let secret = rotate(&state, &app, Actor::api(ip)).await?;
    Ok((StatusCode::CREATED, Json(WebhookSecretResponse { secret })))
}

/// Rotate an app's secret; the new one in clear (the dashboard too).
pub async fn rotate(state: &AppState, app: &str, actor: Actor) -> Result<String, ApiError> {
    let app = apps::lifecycle::resolve(&state.store, app).await?;
    let secret = apps::lifecycle::rotate_webhook_secret(
        &state.store,
        &state.cipher,
        &app.id,
        state.config.lifecycle.webhook_secret_overlap_secs,
        &actor,
    )
    .await?;
    Ok(secret.expose().to_string())
}
