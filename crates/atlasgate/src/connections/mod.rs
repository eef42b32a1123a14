//! The connections API (DESIGN §3): list, inspect, disconnect, get a token,
//! force a refresh, choose the site. Every route runs as an
//! [`AuthenticatedApp`]; another app's connection answers 404 exactly like a
//! missing one.

use axum::extract::{Path, Query, State};
use axum::Json;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::apps::AuthenticatedApp;
use crate::atlassian::AccessibleSite;
use crate::connect::{create_session, NewConnectSession};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::connections::{self as rows, ConnectionRow, ConnectionStatus, ListFilter};
use crate::store::events::{self, NewEvent};
use crate::vault::refresh::{FreshToken, RefreshError};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_connections))
        .routes(routes!(get_connection, delete_connection))
        .routes(routes!(get_connection_token))
        .routes(routes!(refresh_connection))
        .routes(routes!(update_connection_site))
}

/// Unix seconds → RFC 3339 (UTC), the form every API timestamp takes.
pub fn rfc3339(ts: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp(ts, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

// ---- events -------------------------------------------------------------------

/// Record an event in the outbox, inside the caller's transaction.
pub async fn emit_event(
    conn: &mut sqlx::AnyConnection,
    app_id: &str,
    connection_id: &str,
    event_type: &str,
    payload: serde_json::Value,
    _now: i64,
) -> Result<(), sqlx::Error> {
    events::insert(
        conn,
        NewEvent {
            app_id,
            connection_id: Some(connection_id),
            event_type,
            payload,
        },
    )
    .await
    .map(|_| ())
    .map_err(|e| match e {
        crate::store::StoreError::Sqlx(e) => e,
        other => sqlx::Error::Protocol(other.to_string()),
    })
}

/// `connection.created`, once the connection is complete (its site chosen).
/// Every `connection.*` event's payload is the connection as
/// [`ConnectionView`] shows it (`connection.needs_reauth` adds `reason`).
pub async fn emit_created(
    conn: &mut sqlx::AnyConnection,
    connection_id: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    let Some(row) = rows::get(&mut *conn, connection_id).await? else {
        return Ok(());
    };
    let payload = serde_json::to_value(ConnectionView::from_row(&row)).unwrap_or_default();
    emit_event(
        conn,
        &row.app_id,
        connection_id,
        "connection.created",
        payload,
        now,
    )
    .await
}

// ---- wire types ---------------------------------------------------------------

/// The Atlassian account behind a connection.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Account {
    pub account_id: String,
    pub email: Option<String>,
    pub name: Option<String>,
}

/// A connection as the API shows it. Never a token.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConnectionView {
    pub id: String,
    pub owner: String,
    pub profile: String,
    /// `active` | `needs_reauth` | `disconnected`.
    pub status: ConnectionStatus,
    /// Whether atlasgate holds a usable grant (status `active`).
    pub authenticated: bool,
    /// When the current access token expires (RFC 3339).
    pub expires_at: Option<String>,
    pub scopes: Vec<String>,
    /// Every site the grant covers.
    pub sites: Vec<AccessibleSite>,
    /// The selected site, if chosen.
    pub site: Option<AccessibleSite>,
    pub account: Option<Account>,
    pub connected_at: String,
    pub last_refreshed_at: Option<String>,
    pub last_used_at: Option<String>,
}

impl ConnectionView {
    pub fn from_row(row: &ConnectionRow) -> ConnectionView {
        let status = row.status();
        ConnectionView {
            id: row.id.clone(),
            owner: row.owner.clone(),
            profile: row.profile.clone(),
            status,
            authenticated: status == ConnectionStatus::Active && row.access_token.is_some(),
            expires_at: row.access_expires_at.map(rfc3339),
            scopes: row.scope_list(),
            sites: row.site_list(),
            site: row.selected_site(),
            account: row.account_id.as_ref().map(|id| Account {
                account_id: id.clone(),
                email: row.account_email.clone(),
                name: row.account_name.clone(),
            }),
            connected_at: rfc3339(row.connected_at),
            last_refreshed_at: row.last_refreshed_at.map(rfc3339),
            last_used_at: row.last_used_at.map(rfc3339),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConnectionList {
    pub items: Vec<ConnectionView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListConnectionsQueryParams {
    pub owner: Option<String>,
    pub profile: Option<String>,
    /// `active` | `needs_reauth` | `disconnected`.
    pub status: Option<String>,
    /// 1–200, default 50.
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// A token ready to use against `api.atlassian.com`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    pub expires_at: String,
    pub cloud_id: Option<String>,
    pub site_url: Option<String>,
    pub account_id: Option<String>,
    pub email: Option<String>,
    pub scopes: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSiteRequest {
    pub cloud_id: String,
}

// ---- handlers -------------------------------------------------------------------

async fn load(
    state: &AppState,
    app: &AuthenticatedApp,
    id: &str,
) -> Result<ConnectionRow, ApiError> {
    rows::get_for_app(state.store.pool(), &app.id, id)
        .await?
        .ok_or(ApiError::NotFound)
}

/// Turn a refresh failure into the answer the app sees; `needs_reauth`
/// carries a fresh connect link for the same owner and profile.
pub async fn refresh_error(state: &AppState, row: &ConnectionRow, e: RefreshError) -> ApiError {
    match e {
        RefreshError::NotFound => ApiError::NotFound,
        RefreshError::NeedsReauth => {
            let new = NewConnectSession {
                app_id: row.app_id.clone(),
                owner: row.owner.clone(),
                profile: row.profile.clone(),
                return_to: None,
                scopes: state
                    .config
                    .profiles
                    .get(&row.profile)
                    .map(|p| p.scopes.clone())
                    .unwrap_or_else(|| row.scope_list()),
            };
            match create_session(state, &new).await {
                Ok(session) => ApiError::ReauthRequired {
                    connect_url: session.connect_url,
                },
                Err(e) => e,
            }
        }
        RefreshError::Disconnected => ApiError::Conflict("the connection is disconnected".into()),
        RefreshError::Unavailable { retry_after_secs } => ApiError::RetryLater {
            detail: "Atlassian could not refresh the token right now".into(),
            retry_after_secs,
        },
        RefreshError::Rejected { status } => ApiError::BadGateway(format!(
            "Atlassian rejected the token refresh (status {status})"
        )),
        RefreshError::Internal(msg) => ApiError::Internal(anyhow::anyhow!(msg)),
    }
}

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
    if let Some(s) = &q.status {
        if ConnectionStatus::parse(s).is_none() {
            return Err(ApiError::validation(
                "status",
                "must be active, needs_reauth or disconnected",
            ));
        }
    }
    let filter = ListFilter {
        owner: q.owner,
        profile: q.profile,
        status: q.status,
        after: q.cursor,
    };
    let mut found = rows::list_for_app(state.store.pool(), &app.id, &filter, limit + 1).await?;
    let next_cursor = if found.len() as i64 > limit {
        found.truncate(limit as usize);
        found.last().map(|r| r.id.clone())
    } else {
        None
    };
    Ok(Json(ConnectionList {
        items: found.iter().map(ConnectionView::from_row).collect(),
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
        (status = 200, description = "The connection", body = ConnectionView),
        (status = 404, description = "No such connection (for this app)", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn get_connection(
    State(state): State<AppState>,
    app: AuthenticatedApp,
    Path(id): Path<String>,
) -> Result<Json<ConnectionView>, ApiError> {
    let row = load(&state, &app, &id).await?;
    Ok(Json(ConnectionView::from_row(&row)))
}

/// Work to do on Atlassian's side before the tokens are wiped. The app's
/// Jira webhooks must be deleted while the token still works (DESIGN §3);
/// that arrives with webhook registration — hook it in here.
async fn before_disconnect(state: &AppState, row: &ConnectionRow) -> Result<(), ApiError> {
    crate::webhooks::registration::on_disconnect(state, row).await;
    Ok(())
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
        (status = 200, description = "Disconnected", body = ConnectionView),
        (status = 404, description = "No such connection (for this app)", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn delete_connection(
    State(state): State<AppState>,
    app: AuthenticatedApp,
    Path(id): Path<String>,
) -> Result<Json<ConnectionView>, ApiError> {
    let row = load(&state, &app, &id).await?;
    if row.status() != ConnectionStatus::Disconnected {
        before_disconnect(&state, &row).await?;
    }
    let now = crate::store::now();
    let mut tx = state.store.begin_write().await?;
    let changed = rows::disconnect(&mut tx, &id, now).await?;
    let after = rows::get(&mut *tx, &id).await?.ok_or(ApiError::NotFound)?;
    if changed {
        let payload =
            serde_json::to_value(ConnectionView::from_row(&after)).map_err(ApiError::internal)?;
        emit_event(
            &mut tx,
            &row.app_id,
            &id,
            "connection.deleted",
            payload,
            now,
        )
        .await?;
    }
    tx.commit().await?;
    // Visible to the next `/token` call at once (other processes: within a second).
    state.refresher.token_cache().invalidate(&id);
    tracing::info!(connection_id = %id, "connection disconnected");
    Ok(Json(ConnectionView::from_row(&after)))
}

fn token_response(fresh: &FreshToken) -> TokenResponse {
    let row = &fresh.connection;
    TokenResponse {
        access_token: fresh.access_token.expose_secret().to_string(),
        token_type: "Bearer".into(),
        expires_at: rfc3339(fresh.expires_at),
        cloud_id: row.site_cloud_id.clone(),
        site_url: row.site_url.clone(),
        account_id: row.account_id.clone(),
        email: row.account_email.clone(),
        scopes: row.scope_list(),
    }
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
    app: AuthenticatedApp,
    Path(id): Path<String>,
) -> Result<Json<TokenResponse>, ApiError> {
    let cache = state.refresher.token_cache();
    // The hot path: no database read, no decryption (see `vault::token_cache`
    // for why up to a second of staleness across processes is safe). Another
    // app's connection is not served from here: it falls through to `load`,
    // which answers 404 exactly as for a missing one.
    if let Some(fresh) = cache.get(&id).filter(|f| f.connection.app_id == app.id) {
        touch_used(&state, &fresh).await;
        return Ok(Json(token_response(&fresh)));
    }
    // Taken before the read: a disconnect committing meanwhile voids the fill.
    let ticket = cache.ticket();
    let row = load(&state, &app, &id).await?;
    let fresh = match state.refresher.access_token_from_row(row.clone()).await {
        Ok(f) => f,
        Err(e) => return Err(refresh_error(&state, &row, e).await),
    };
    cache.fill(ticket, &fresh);
    touch_used(&state, &fresh).await;
    Ok(Json(token_response(&fresh)))
}

/// At most one `last_used_at` write a minute per connection; a write is
/// copied into the cached row so cached reads keep that throttle.
async fn touch_used(state: &AppState, fresh: &FreshToken) {
    let now = crate::store::now();
    let due = fresh
        .connection
        .last_used_at
        .is_none_or(|t| now - t >= crate::proxy::TOUCH_EVERY_SECS);
    crate::proxy::touch_used(state, &fresh.connection).await;
    if due {
        state
            .refresher
            .token_cache()
            .note_used(&fresh.connection.id, now);
    }
}

/// Force a refresh
#[utoipa::path(
    post,
    path = "/v1/connections/{id}/refresh",
    tag = "connections",
    params(("id" = String, Path, description = "Connection id")),
    responses(
        (status = 200, description = "Refreshed; the connection", body = ConnectionView),
        (status = 404, description = "No such connection (for this app)", body = crate::error::Problem),
        (status = 409, description = "`reauth-required` (with `connect_url`) or disconnected", body = crate::error::Problem),
        (status = 503, description = "Atlassian unavailable; see Retry-After", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn refresh_connection(
    State(state): State<AppState>,
    app: AuthenticatedApp,
    Path(id): Path<String>,
) -> Result<Json<ConnectionView>, ApiError> {
    let row = load(&state, &app, &id).await?;
    let fresh = match state.refresher.force_refresh(&id).await {
        Ok(f) => f,
        Err(e) => return Err(refresh_error(&state, &row, e).await),
    };
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
        (status = 200, description = "The connection", body = ConnectionView),
        (status = 404, description = "No such connection (for this app)", body = crate::error::Problem),
        (status = 422, description = "Not one of the grant's sites", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn update_connection_site(
    State(state): State<AppState>,
    app: AuthenticatedApp,
    Path(id): Path<String>,
    Json(req): Json<UpdateSiteRequest>,
) -> Result<Json<ConnectionView>, ApiError> {
    let row = load(&state, &app, &id).await?;
    let Some(site) = row
        .site_list()
        .into_iter()
        .find(|s| s.cloud_id == req.cloud_id)
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
    let after = load(&state, &app, &id).await?;
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
