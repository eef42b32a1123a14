//! Confluence syncs (docs/design.md §16): `POST …/syncs` with
//! `confluence_cql`, and the synced pages API (`GET …/pages`). The pass
//! itself is [`atlasgate_core::sync::confluence`].

use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::store::SyncRow;
use crate::apps::AppConnection;
use crate::atlassian::{ApiRequest, AtlassianError, Product};
use crate::error::{ApiError, FieldError};
use crate::state::AppState;
use atlasgate_core::store::pages as rows;
pub use atlasgate_core::sync::confluence::{pages_cql, PageView};

const MAX_CQL_LEN: usize = 4000;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SyncedPageList {
    #[schema(value_type = Vec<crate::schema::PageView>)]
    pub items: Vec<PageView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListPagesQueryParams {
    /// Space key or id.
    pub space: Option<String>,
    /// Only pages updated at or after this instant (RFC 3339).
    #[param(format = DateTime)]
    pub updated_since: Option<String>,
    /// Also pages deleted in Confluence (`deleted: true`); default false.
    pub include_deleted: Option<bool>,
    /// `next_cursor` of the previous page.
    #[param(pattern = r"^[+-]?[0-9]{1,18}_")]
    pub cursor: Option<String>,
    /// Page size, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// The checks of a `confluence_cql` that need no Confluence.
pub fn check_cql(cql: &str, webhooks: Option<bool>, errors: &mut Vec<FieldError>) {
    if cql.trim().is_empty() {
        errors.push(FieldError::new("confluence_cql", "must not be empty"));
    } else if cql.len() > MAX_CQL_LEN {
        errors.push(FieldError::new(
            "confluence_cql",
            format!("must be at most {MAX_CQL_LEN} characters"),
        ));
    }
    // Confluence Cloud has no dynamic webhooks for OAuth apps (docs/atlassian-behaviour.md).
    if webhooks == Some(true) {
        errors.push(FieldError::new(
            "webhooks",
            "Confluence syncs poll; Confluence has no webhooks for OAuth apps",
        ));
    }
}

/// Check the CQL with Confluence (a typo is a 422, not a failing sync),
/// then store the sync. `row` carries the ids, site and interval.
pub async fn create_confluence_sync(
    state: &AppState,
    mut row: SyncRow,
    cql: &str,
) -> Result<SyncRow, ApiError> {
    let probe = ApiRequest::get(Product::Confluence, "wiki/rest/api/search")
        .query(&[("cql", pages_cql(cql)), ("limit", "1".into())]);
    match state
        .atlassian
        .call(Some(&row.app_id), &row.connection_id, probe)
        .await
    {
        Ok(_) => {}
        Err(e @ AtlassianError::Status { status, .. }) if status.as_u16() == 400 => {
            return Err(ApiError::validation(
                "confluence_cql",
                e.jira_messages()
                    .unwrap_or_else(|| "Confluence refused the CQL".into()),
            ));
        }
        Err(e) => {
            tracing::info!(connection_id = %row.connection_id, error = %e, "could not check the CQL; the sync will report")
        }
    }
    let now = crate::store::now();
    row.state = super::store::SyncState::Pending;
    row.next_run_at = now;
    row.created_at = now;
    row.updated_at = now;
    let mut tx = state.store.begin_write().await?;
    super::store::insert(&mut tx, &row).await?;
    rows::set_confluence_cql(&mut tx, &row.id, cql).await?;
    tx.commit().await?;
    state.jobs.sync_wakeup.notify_one();
    tracing::info!(sync_id = %row.id, connection_id = %row.connection_id, "confluence sync created");
    Ok(row)
}

/// List synced pages
///
/// From the local store (Confluence syncs), ordered by `updated` then id,
/// each with its body as Markdown. Pages deleted in Confluence are left out
/// unless `include_deleted=true`.
#[utoipa::path(
    get,
    path = "/v1/connections/{id}/pages",
    tag = "syncs",
    params(("id" = String, Path, description = "Connection id"), ListPagesQueryParams),
    responses(
        (status = 200, description = "A page of synced pages", body = SyncedPageList),
        (status = 404, description = "No such connection (for this app)", body = crate::error::Problem),
        (status = 422, description = "Invalid filter", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn list_pages(
    State(state): State<AppState>,
    conn: AppConnection,
    Query(q): Query<ListPagesQueryParams>,
) -> Result<Json<SyncedPageList>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    let mut errors = Vec::new();
    if !(1..=1000).contains(&limit) {
        errors.push(FieldError::new("limit", "must be between 1 and 1000"));
    }
    let since = match &q.updated_since {
        Some(s) => match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(t) => Some(t.timestamp_millis()),
            Err(_) => {
                errors.push(FieldError::new(
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
                errors.push(FieldError::new("cursor", "not a cursor from this API"));
                None
            }
        },
        None => None,
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let filter = rows::PageFilter {
        space: q.space.clone(),
        updated_since_ms: since,
        include_deleted: q.include_deleted.unwrap_or(false),
        after,
    };
    let page = rows::list_pages(state.store.pool(), &conn.row.id, &filter, limit).await?;
    let next_cursor = page
        .more
        .then(|| {
            page.items
                .last()
                .map(|r| format!("{}_{}", r.updated_ms, r.page_id))
        })
        .flatten();
    Ok(Json(SyncedPageList {
        items: page.items.iter().map(PageView::from_row).collect(),
        next_cursor,
    }))
}
