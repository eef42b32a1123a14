//! The connections API (docs/design.md §3): list, inspect, disconnect, get a token,
//! force a refresh, choose the site. Every route runs as an
//! [`AuthenticatedApp`]; another app's connection answers 404 exactly like a
//! missing one.

mod import;

use axum::extract::{Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::apps::{AppConnection, AuthenticatedApp, CachedToken};
use crate::audit::Actor;
use crate::client_addr::ClientAddr;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::connections::{self as rows, ConnectionRow, ConnectionStatus, ListFilter};
use crate::vault::refresh::FreshToken;
pub use atlasgate_core::connections::{emit_created, emit_event, rfc3339, Account, ConnectionView};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_connections))
        .routes(routes!(get_connection, delete_connection))
        .routes(routes!(get_connection_token))
        .routes(routes!(refresh_connection))
        .routes(routes!(update_connection_site))
        .routes(routes!(import::import_connection))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConnectionList {
    #[schema(value_type = Vec<crate::schema::ConnectionView>)]
    pub items: Vec<ConnectionView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListConnectionsQueryParams {
    pub owner: Option<String>,
    pub profile: Option<String>,
    /// `active` | `needs_reauth` | `disconnected`.
    #[param(value_type = Option<crate::schema::ConnectionStatus>, inline)]
    pub status: Option<String>,
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

// Borrowed from the token and its row: the answer is written without
// copying any of it first (and once per token: `token_response`).
/// A token ready to use against `api.atlassian.com`.
#[derive(Serialize, ToSchema)]
pub struct TokenResponse<'a> {
    pub access_token: &'a str,
    /// Always `Bearer`.
    pub token_type: &'a str,
    pub expires_at: String,
    pub cloud_id: Option<&'a str>,
    pub site_url: Option<&'a str>,
    pub account_id: Option<&'a str>,
    pub email: Option<&'a str>,
    pub scopes: &'a [String],
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSiteRequest {
    pub cloud_id: String,
}

// ---- handlers -------------------------------------------------------------------

/// List connections
#[utoipa::path(
    get,
    path = "/v1/connections",
    tag = "connections",
    params(ListConnectionsQueryParams),
    responses(
        (status = 200, description = "A page of connections", body = ConnectionList),
        (status = 401, description = "Missing or wrong app key", body = crate::error::Problem),
        (status = 422, description = "Invalid filter", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn list_connections(
    State(state): State<AppState>,
    app: AuthenticatedApp,
    Query(q): Query<ListConnectionsQueryParams>,
) -> Result<Json<ConnectionList>, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::validation("limit", "must be between 1 and 200"));
    }
    let status = match &q.status {
        Some(s) => Some(s.parse::<ConnectionStatus>().map_err(|_| {
            ApiError::validation("status", "must be active, needs_reauth or disconnected")
        })?),
        None => None,
    };
    let filter = ListFilter {
        owner: q.owner.map(Into::into),
        profile: q.profile,
        status,
        after: q.cursor,
    };
    let page = rows::list_for_app(state.store.pool(), &app.id, &filter, limit).await?;
    let next_cursor = page
        .more
        .then(|| page.items.last().map(|r| r.id.to_string()))
        .flatten();
    Ok(Json(ConnectionList {
        items: page.items.iter().map(ConnectionView::from_row).collect(),
        next_cursor,
    }))
}

/// Get a connection
///
/// Status, expiry, scopes, sites, the selected site and the account. Never a token.
#[utoipa::path(
    get,
    path = "/v1/connections/{id}",
    tag = "connections",
    params(("id" = String, Path, description = "Connection id")),
    responses(
        (status = 200, description = "The connection", body = crate::schema::ConnectionView),
        (status = 404, description = "No such connection (for this app)", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn get_connection(conn: AppConnection) -> Result<Json<ConnectionView>, ApiError> {
    Ok(Json(ConnectionView::from_row(&conn.row)))
}

/// Disconnect
///
/// Deletes the app's Jira webhooks (while the token still works), wipes the
/// tokens, sets status `disconnected` and emits `connection.deleted`.
/// Atlassian has no revocation endpoint: the person can remove the app under
/// "Connected apps" in their Atlassian account.
#[utoipa::path(
    delete,
    path = "/v1/connections/{id}",
    tag = "connections",
    params(("id" = String, Path, description = "Connection id")),
    responses(
        (status = 200, description = "Disconnected", body = crate::schema::ConnectionView),
        (status = 404, description = "No such connection (for this app)", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn delete_connection(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    AppConnection { row, .. }: AppConnection,
) -> Result<Json<ConnectionView>, ApiError> {
    let after = atlasgate_core::connections::disconnect(&state.core, &row, &Actor::api(ip)).await?;
    Ok(Json(ConnectionView::from_row(&after)))
}

/// The answer of `/token`: written once per token (`FreshToken::answer`),
/// then the same bytes for every call the cache serves it to.
fn token_response(fresh: &FreshToken) -> Result<Response, ApiError> {
    let body = match fresh.answer.get() {
        Some(body) => body.clone(),
        None => {
            let row = &fresh.connection;
            let body = serde_json::to_vec(&TokenResponse {
                access_token: fresh.access_token.expose_secret(),
                token_type: "Bearer",
                expires_at: rfc3339(fresh.expires_at),
                cloud_id: row.site_cloud_id.as_deref(),
                site_url: row.site_url.as_deref(),
                account_id: row.account_id.as_deref(),
                email: row.account_email.as_deref(),
                scopes: &row.scopes,
            })
            .map_err(ApiError::internal)?;
            fresh.answer.get_or_init(|| body.into()).clone()
        }
    };
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

/// Get an access token
///
/// Refreshed first when less than `ATLASGATE_REFRESH_MARGIN` is left. Many
/// concurrent calls cause at most one refresh at Atlassian.
#[utoipa::path(
    get,
    path = "/v1/connections/{id}/token",
    tag = "connections",
    params(("id" = String, Path, description = "Connection id")),
    responses(
        (status = 200, description = "A usable access token", body = TokenResponse),
        (status = 404, description = "No such connection (for this app)", body = crate::error::Problem),
        (status = 409, description = "`reauth-required` (with `connect_url`) or disconnected", body = crate::error::Problem),
        (status = 503, description = "Atlassian unavailable; see Retry-After", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn get_connection_token(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    conn: AppConnection<CachedToken>,
) -> Result<Response, ApiError> {
    // Counted in memory; written as one audit record per minute (docs/design.md §14).
    let served = |row: &ConnectionRow| {
        state
            .token_served
            .note(&conn.app.id, &row.id, &conn.app.key_id, ip)
    };
    let cache = state.refresher.token_cache();
    // The hot path: the extractor found this app's token in the cache.
    if let Some(fresh) = &conn.cached {
        served(&fresh.connection);
        crate::proxy::touch_used_cached(&state, &fresh.connection);
        return token_response(fresh);
    }
    let fresh = state
        .refresher
        .access_token_for_app(ConnectionRow::clone(&conn.row))
        .await?;
    served(&fresh.connection);
    if let Some(ticket) = conn.ticket {
        cache.fill(ticket, &fresh);
    }
    crate::proxy::touch_used_cached(&state, &fresh.connection);
    token_response(&fresh)
}

/// Force a refresh
#[utoipa::path(
    post,
    path = "/v1/connections/{id}/refresh",
    tag = "connections",
    params(("id" = String, Path, description = "Connection id")),
    responses(
        (status = 200, description = "Refreshed; the connection", body = crate::schema::ConnectionView),
        (status = 404, description = "No such connection (for this app)", body = crate::error::Problem),
        (status = 409, description = "`reauth-required` (with `connect_url`) or disconnected", body = crate::error::Problem),
        (status = 503, description = "Atlassian unavailable; see Retry-After", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn refresh_connection(
    State(state): State<AppState>,
    conn: AppConnection,
) -> Result<Json<ConnectionView>, ApiError> {
    let fresh = state.refresher.force_refresh_for_app(&conn.row).await?;
    Ok(Json(ConnectionView::from_row(&fresh.connection)))
}

/// Choose the site
///
/// The cloud id must be one of the sites the grant covers.
#[utoipa::path(
    put,
    path = "/v1/connections/{id}/site",
    tag = "connections",
    params(("id" = String, Path, description = "Connection id")),
    request_body = UpdateSiteRequest,
    responses(
        (status = 200, description = "The connection", body = crate::schema::ConnectionView),
        (status = 404, description = "No such connection (for this app)", body = crate::error::Problem),
        (status = 422, description = "Not one of the grant's sites", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn update_connection_site(
    State(state): State<AppState>,
    AppConnection { app, row, .. }: AppConnection,
    Json(req): Json<UpdateSiteRequest>,
) -> Result<Json<ConnectionView>, ApiError> {
    let id = row.id.clone();
    let Some(site) = row
        .site_list()
        .into_iter()
        .find(|s| s.cloud_id.as_str() == req.cloud_id)
    else {
        return Err(ApiError::validation(
            "cloud_id",
            "is not one of the sites this connection's grant covers",
        ));
    };
    let now = crate::store::now();
    rows::set_site(state.store.pool(), &id, &site.cloud_id, &site.url, now).await?;
    // `/token` answers carry the site: drop the cached one.
    state.refresher.token_cache().invalidate(&id);
    let after = rows::get_for_app(state.store.pool(), &app.id, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(ConnectionView::from_row(&after)))
}

/// `atlasgate connections list`: one line per connection (no tokens).
pub async fn render_list(store: &crate::store::Store) -> Result<String, sqlx::Error> {
    let all = rows::list_all(store.pool()).await?;
    if all.is_empty() {
        return Ok(
            "no connections yet; create a connect session with POST /v1/connect-sessions\n".into(),
        );
    }
    let mut out = format!(
        "{:33}  {:36}  {:24}  {:10}  {:13}  {:30}  {}\n",
        "ID", "APP", "OWNER", "PROFILE", "STATUS", "SITE", "ACCOUNT"
    );
    for r in all {
        out.push_str(&format!(
            "{:33}  {:36}  {:24}  {:10}  {:13}  {:30}  {}\n",
            r.id,
            r.app_id,
            r.owner,
            r.profile,
            r.status,
            r.site_url.as_deref().unwrap_or("-"),
            r.account_email
                .as_deref()
                .or(r.account_id.as_deref())
                .unwrap_or("-"),
        ));
    }
    Ok(out)
}
