//! Syncs (docs/design.md §3, §6): standing orders to mirror the issues of a JQL
//! filter (and their projects) into the local store, kept fresh by
//! incremental passes and Jira webhooks; and the synced issues API.

pub use atlasgate_core::sync::{
    engine, jql, registration, rfc3339_ms, store, worker, IssueView, ProjectRef, SyncedSprintRef,
};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::apps::AppConnection;
use crate::atlassian::{ApiRequest, AtlassianError, Product};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::connections::ConnectionStatus;
use crate::store::StoreError;
use atlasgate_core::time::rfc3339;
use store::{SyncRow, SyncState};

pub mod pages;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(pages::list_pages))
        .routes(routes!(create_sync, list_syncs))
        .routes(routes!(get_sync, delete_sync))
        .routes(routes!(run_sync))
        .routes(routes!(list_issues))
}

/// Default and bounds of `interval_s`.
pub const DEFAULT_INTERVAL_S: i64 = 300;
const MAX_INTERVAL_S: i64 = 86_400;
const MAX_JQL_LEN: usize = 4000;

// ---------------------------------------------------------------- wire types

/// Exactly one of `jql` and `confluence_cql` (its schema:
/// [`crate::schema::create_sync_request`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSyncRequest {
    /// The JQL filter of the issues to mirror (any `ORDER BY` is ignored).
    /// Exactly one of `jql` and `confluence_cql`.
    pub jql: Option<String>,
    /// A CQL query: mirror the Confluence pages it finds instead (`GET …/pages`).
    pub confluence_cql: Option<String>,
    /// Register a Jira webhook so changes arrive within seconds (default
    /// false; Jira syncs only).
    pub webhooks: Option<bool>,
    /// Seconds between incremental passes, 1–86400 (default 300).
    pub interval_s: Option<i64>,
}

impl utoipa::PartialSchema for CreateSyncRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::schema::create_sync_request().into()
    }
}

impl utoipa::ToSchema for CreateSyncRequest {}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PassView {
    /// `full` | `incremental`.
    pub kind: String,
    pub started_at: Option<String>,
    pub partitions: i64,
    pub partitions_done: i64,
    /// Issues stored by this pass so far.
    pub stored: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookView {
    /// Jira's webhook id, once registered.
    pub id: Option<i64>,
    /// The JQL filter registered with Jira.
    pub filter: Option<String>,
    /// True when the filter is broader than the sync's JQL (each delivery is checked).
    pub local_filter: bool,
    pub expires_at: Option<String>,
    pub error: Option<String>,
}

/// A sync as the API shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SyncView {
    pub id: String,
    pub connection_id: String,
    pub cloud_id: String,
    /// Empty for a Confluence sync.
    pub jql: String,
    /// The CQL of a Confluence sync.
    pub confluence_cql: Option<String>,
    pub webhooks: bool,
    pub interval_s: i64,
    /// `pending` (never ran) | `running` | `idle` | `failed` (retried; see `last_error`).
    pub state: String,
    /// Issues stored by this sync and not deleted.
    pub issues_synced: i64,
    /// Confluence syncs: pages stored by this sync and not deleted.
    pub pages_synced: Option<i64>,
    pub last_run_at: Option<String>,
    pub last_error: Option<String>,
    /// Passes finished so far.
    pub passes: i64,
    /// High-water mark: the latest Jira `updated` stored by a finished pass.
    pub cursor: Option<String>,
    /// The pass in progress (or cut off and waiting to resume).
    pub pass: Option<PassView>,
    /// Seconds the full pass in progress still needs, from the issues it has
    /// left and the points budget (docs/design.md §17); `null` when no full
    /// pass runs or its size is not known yet.
    pub eta_s: Option<u64>,
    pub next_run_at: String,
    pub webhook: Option<WebhookView>,
    pub created_at: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SyncList {
    pub items: Vec<SyncView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SyncedIssueList {
    #[schema(value_type = Vec<crate::schema::IssueView>)]
    pub items: Vec<IssueView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListIssuesQueryParams {
    /// Project key or id.
    pub project: Option<String>,
    /// Only issues updated at or after this instant (RFC 3339).
    #[param(format = DateTime)]
    pub updated_since: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(pattern = r"^[+-]?[0-9]{1,18}_")]
    pub cursor: Option<String>,
    /// Page size, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

// ---------------------------------------------------------------- views

pub async fn view(state: &AppState, row: &SyncRow) -> Result<SyncView, ApiError> {
    let pool = state.store.pool();
    let issues_synced = engine::issues_synced(pool, &row.id).await?;
    let confluence_cql = crate::store::pages::confluence_cql(pool, &row.id).await?;
    let pages_synced = match &confluence_cql {
        Some(_) => Some(crate::store::pages::pages_synced(pool, &row.id).await?),
        None => None,
    };
    let pass = match row.pass_kind {
        Some(kind) => {
            let parts = store::partitions(pool, &row.id).await?;
            Some(PassView {
                kind: kind.as_str().to_string(),
                started_at: row.pass_started_at.map(rfc3339),
                partitions: parts.len() as i64,
                partitions_done: parts.iter().filter(|p| p.done).count() as i64,
                stored: parts.iter().map(|p| p.stored).sum(),
            })
        }
        None => None,
    };
    let stored = pass.as_ref().map_or(0, |p| p.stored);
    let eta_s = atlasgate_core::sync::eta::eta_secs(state, row, stored).await;
    Ok(SyncView {
        eta_s,
        id: row.id.clone(),
        connection_id: row.connection_id.to_string(),
        cloud_id: row.cloud_id.to_string(),
        jql: row.jql.to_string(),
        confluence_cql,
        webhooks: row.webhooks,
        interval_s: row.interval_s,
        state: row.state.as_str().to_string(),
        issues_synced,
        pages_synced,
        last_run_at: row.last_run_at.map(rfc3339),
        last_error: row.last_error.clone(),
        passes: row.passes,
        cursor: row.cursor_updated_ms.map(rfc3339_ms),
        pass,
        next_run_at: rfc3339(row.next_run_at),
        webhook: row.webhooks.then(|| WebhookView {
            id: row.webhook_id,
            filter: row.webhook_filter.clone(),
            local_filter: row.webhook_local_filter,
            expires_at: row.webhook_expires_at.map(rfc3339),
            error: row.webhook_error.clone(),
        }),
        created_at: rfc3339(row.created_at),
    })
}

/// One of the connection's syncs (404 for another connection's, like a missing one).
async fn load_sync(
    state: &AppState,
    conn: &AppConnection,
    sync: &str,
) -> Result<SyncRow, ApiError> {
    match store::get(state.store.pool(), sync).await? {
        Some(s) if s.connection_id == conn.row.id && s.app_id == conn.app.id => Ok(s),
        _ => Err(ApiError::NotFound),
    }
}

// ---------------------------------------------------------------- handlers

/// Create a sync
///
/// Starts with a full pass at once, then incremental passes every
/// `interval_s`. The JQL is checked with Jira first (422 with Jira's message
/// when it refuses it).
#[utoipa::path(
    post,
    path = "/v1/connections/{id}/syncs",
    tag = "syncs",
    params(("id" = String, Path, description = "Connection id")),
    request_body = CreateSyncRequest,
    responses(
        (status = 201, description = "The new sync", body = SyncView),
        (status = 404, description = "No such connection (for this app)", body = crate::error::Problem),
        (status = 409, description = "The connection is not active or has no site", body = crate::error::Problem),
        (status = 422, description = "Invalid request (or JQL Jira refuses)", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn create_sync(
    State(state): State<AppState>,
    AppConnection { app, row: conn, .. }: AppConnection,
    Json(req): Json<CreateSyncRequest>,
) -> Result<(StatusCode, Json<SyncView>), ApiError> {
    let id = conn.id.clone();
    let mut errors = Vec::new();
    let jql = match (&req.jql, &req.confluence_cql) {
        (Some(j), None) => j.clone(),
        (None, Some(cql)) => {
            pages::check_cql(cql, req.webhooks, &mut errors);
            String::new()
        }
        _ => {
            return Err(ApiError::validation(
                "jql",
                "give exactly one of jql and confluence_cql",
            ))
        }
    };
    let (filter, _) = jql::split_order_by(&jql);
    if req.confluence_cql.is_some() {
        // Checked above.
    } else if filter.is_empty() {
        errors.push(crate::error::FieldError::new(
            "jql",
            "must have a filter (Jira refuses unbounded searches)",
        ));
    } else if jql.len() > MAX_JQL_LEN {
        errors.push(crate::error::FieldError::new(
            "jql",
            format!("must be at most {MAX_JQL_LEN} characters"),
        ));
    }
    let interval = req.interval_s.unwrap_or(DEFAULT_INTERVAL_S);
    if !(1..=MAX_INTERVAL_S).contains(&interval) {
        errors.push(crate::error::FieldError::new(
            "interval_s",
            format!("must be between 1 and {MAX_INTERVAL_S}"),
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    if conn.status() != ConnectionStatus::Active {
        return Err(ApiError::Conflict(format!(
            "the connection is {}",
            conn.status().as_str()
        )));
    }
    let (Some(cloud_id), Some(site_url)) = (conn.site_cloud_id.clone(), conn.site_url.clone())
    else {
        return Err(ApiError::Conflict(
            "the connection has no selected site".into(),
        ));
    };
    if let Some(cql) = &req.confluence_cql {
        let row = SyncRow {
            id: format!("syn_{}", uuid::Uuid::new_v4().simple()),
            app_id: app.id.clone(),
            connection_id: id.clone(),
            cloud_id,
            site_url,
            interval_s: interval,
            ..Default::default()
        };
        let row = pages::create_confluence_sync(&state, row, cql).await?;
        return Ok((StatusCode::CREATED, Json(view(&state, &row).await?)));
    }
    // Let Jira judge the JQL now, so a typo is a 422 and not a failing sync.
    let probe = ApiRequest::get(Product::Jira, "rest/api/3/search/jql").query(&[
        ("jql", filter),
        ("maxResults", "1"),
        ("fields", "id"),
    ]);
    match state.atlassian.call(Some(&app.id), &id, probe).await {
        Ok(_) => {}
        Err(e @ AtlassianError::Status { .. }) if matches!(&e, AtlassianError::Status { status, .. } if status.as_u16() == 400) =>
        {
            return Err(ApiError::validation(
                "jql",
                e.jira_messages()
                    .unwrap_or_else(|| "Jira refused the JQL".into()),
            ));
        }
        Err(e) => {
            tracing::info!(connection_id = %id, error = %e, "could not check the JQL; the sync will report")
        }
    }
    let now = crate::store::now();
    let row = SyncRow {
        id: format!("syn_{}", uuid::Uuid::new_v4().simple()),
        app_id: app.id.clone(),
        connection_id: id.clone(),
        cloud_id,
        site_url,
        jql: jql.clone().into(),
        webhooks: req.webhooks.unwrap_or(false),
        interval_s: interval,
        state: SyncState::Pending,
        full_done: false,
        cursor_updated_ms: None,
        cursor_key: None,
        pass_kind: None,
        pass_started_at: None,
        pass_max_updated_ms: None,
        run_requested: false,
        next_run_at: now,
        last_run_at: None,
        last_error: None,
        failures: 0,
        passes: 0,
        locked_by: None,
        locked_until: None,
        time_zone: None,
        story_points_field: None,
        sprint_field: None,
        webhook_id: None,
        webhook_filter: None,
        webhook_local_filter: false,
        webhook_expires_at: None,
        webhook_error: None,
        last_reconciled_at: None,
        created_at: now,
        updated_at: now,
    };
    let mut tx = state.store.begin_write().await?;
    store::insert(&mut tx, &row).await?;
    tx.commit().await?;
    state.jobs.sync_wakeup.notify_one();
    tracing::info!(sync_id = %row.id, connection_id = %id, "sync created");
    Ok((StatusCode::CREATED, Json(view(&state, &row).await?)))
}

/// List a connection's syncs
#[utoipa::path(
    get,
    path = "/v1/connections/{id}/syncs",
    tag = "syncs",
    params(("id" = String, Path, description = "Connection id")),
    responses(
        (status = 200, description = "The connection's syncs", body = SyncList),
        (status = 404, description = "No such connection (for this app)", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn list_syncs(
    State(state): State<AppState>,
    conn: AppConnection,
) -> Result<Json<SyncList>, ApiError> {
    let mut items = Vec::new();
    for row in store::of_connection(state.store.pool(), &conn.row.id).await? {
        items.push(view(&state, &row).await?);
    }
    Ok(Json(SyncList { items }))
}

/// Get a sync
///
/// State, issues synced, last run, last error and the cursor (high-water mark).
#[utoipa::path(
    get,
    path = "/v1/connections/{id}/syncs/{sync}",
    tag = "syncs",
    params(
        ("id" = String, Path, description = "Connection id"),
        ("sync" = String, Path, description = "Sync id"),
    ),
    responses(
        (status = 200, description = "The sync", body = SyncView),
        (status = 404, description = "No such sync (for this app)", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn get_sync(
    State(state): State<AppState>,
    conn: AppConnection,
    Path((_id, sync)): Path<(String, String)>,
) -> Result<Json<SyncView>, ApiError> {
    let row = load_sync(&state, &conn, &sync).await?;
    Ok(Json(view(&state, &row).await?))
}

/// Run a sync now
///
/// Schedules an incremental pass at once (or resumes a pass that was cut
/// off). If a pass is running, another follows it.
#[utoipa::path(
    post,
    path = "/v1/connections/{id}/syncs/{sync}/run",
    tag = "syncs",
    params(
        ("id" = String, Path, description = "Connection id"),
        ("sync" = String, Path, description = "Sync id"),
    ),
    responses(
        (status = 202, description = "Scheduled", body = SyncView),
        (status = 404, description = "No such sync (for this app)", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn run_sync(
    State(state): State<AppState>,
    conn: AppConnection,
    Path((_id, sync)): Path<(String, String)>,
) -> Result<(StatusCode, Json<SyncView>), ApiError> {
    load_sync(&state, &conn, &sync).await?;
    let now = crate::store::now();
    store::request_run(state.store.pool(), &sync, now).await?;
    state.jobs.sync_wakeup.notify_one();
    let row = load_sync(&state, &conn, &sync).await?;
    Ok((StatusCode::ACCEPTED, Json(view(&state, &row).await?)))
}

/// Delete a sync
///
/// Deletes its Jira webhook (best effort) and stops it. Issues already
/// synced stay in the store.
#[utoipa::path(
    delete,
    path = "/v1/connections/{id}/syncs/{sync}",
    tag = "syncs",
    params(
        ("id" = String, Path, description = "Connection id"),
        ("sync" = String, Path, description = "Sync id"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such sync (for this app)", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn delete_sync(
    State(state): State<AppState>,
    conn: AppConnection,
    Path((_id, sync)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let row = load_sync(&state, &conn, &sync).await?;
    if let Err(e) =
        crate::sync::registration::delete_for(&state, &conn.row.id, std::slice::from_ref(&row))
            .await
    {
        tracing::warn!(sync_id = %sync, error = %e.describe(), "could not delete the sync's Jira webhook");
    }
    store::delete(state.store.pool(), &sync).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List synced issues
///
/// From the local store, ordered by `updated` then id. Deleted issues are
/// included with `deleted: true`.
#[utoipa::path(
    get,
    path = "/v1/connections/{id}/issues",
    tag = "syncs",
    params(("id" = String, Path, description = "Connection id"), ListIssuesQueryParams),
    responses(
        (status = 200, description = "A page of issues", body = SyncedIssueList),
        (status = 404, description = "No such connection (for this app)", body = crate::error::Problem),
        (status = 422, description = "Invalid filter", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn list_issues(
    State(state): State<AppState>,
    conn: AppConnection,
    Query(q): Query<ListIssuesQueryParams>,
) -> Result<Json<SyncedIssueList>, ApiError> {
    let id = conn.row.id.clone();
    let limit = q.limit.unwrap_or(100);
    let mut errors = Vec::new();
    if !(1..=1000).contains(&limit) {
        errors.push(crate::error::FieldError::new(
            "limit",
            "must be between 1 and 1000",
        ));
    }
    let since = match &q.updated_since {
        Some(s) => match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(t) => Some(t.timestamp_millis()),
            Err(_) => {
                errors.push(crate::error::FieldError::new(
                    "updated_since",
                    "must be an RFC 3339 timestamp",
                ));
                None
            }
        },
        None => None,
    };
    let after = match &q.cursor {
        Some(c) => match c
            .split_once('_')
            .and_then(|(a, b)| Some((a.parse::<i64>().ok()?, b.to_string())))
        {
            Some(x) => Some(x),
            None => {
                errors.push(crate::error::FieldError::new(
                    "cursor",
                    "not a cursor from this API",
                ));
                None
            }
        },
        None => None,
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let filter = store::IssueFilter {
        project: q.project.clone(),
        updated_since_ms: since,
        after,
    };
    let page = store::list_issues(state.store.pool(), &id, &filter, limit).await?;
    let next_cursor = page
        .more
        .then(|| {
            page.items
                .last()
                .map(|r| format!("{}_{}", r.updated_ms, r.issue_id))
        })
        .flatten();
    let found = page.items;
    Ok(Json(SyncedIssueList {
        items: found.iter().map(IssueView::from_row).collect(),
        next_cursor,
    }))
}

/// `atlasgate sync status`: one line per sync with its progress.
pub async fn render_status(store: &crate::store::Store) -> Result<String, StoreError> {
    let all: Vec<SyncRow> = crate::sync::store::list_all(store.pool()).await?;
    if all.is_empty() {
        return Ok("no syncs yet; create one with POST /v1/connections/{id}/syncs\n".into());
    }
    let mut out = format!(
        "{:36}  {:33}  {:8}  {:>8}  {:>6}  {:20}  {:24}  {}\n",
        "ID",
        "CONNECTION",
        "STATE",
        "ISSUES",
        "PASSES",
        "LAST RUN",
        "PASS IN PROGRESS",
        "LAST ERROR / JQL"
    );
    for r in all {
        let issues = engine::issues_synced(store.pool(), &r.id).await?;
        let pass = match r.pass_kind {
            Some(kind) => {
                let parts = store::partitions(store.pool(), &r.id).await?;
                format!(
                    "{kind} {}/{} parts, {} stored",
                    parts.iter().filter(|p| p.done).count(),
                    parts.len(),
                    parts.iter().map(|p| p.stored).sum::<i64>()
                )
            }
            None => "-".into(),
        };
        out.push_str(&format!(
            "{:36}  {:33}  {:8}  {:>8}  {:>6}  {:20}  {:24}  {}\n",
            r.id,
            r.connection_id,
            r.state,
            issues,
            r.passes,
            r.last_run_at.map(rfc3339).unwrap_or_else(|| "-".into()),
            pass,
            r.last_error.as_deref().unwrap_or(&r.jql),
        ));
    }
    Ok(out)
}
