//! Typed Confluence operations (docs/design.md §3
//! `/v1/connections/{id}/confluence/…`); the logic is
//! [`atlasgate_core::confluence`].

use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::apps::AppConnection;
use crate::error::ApiError;
use crate::state::AppState;
pub use atlasgate_core::confluence::*;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_spaces))
        .routes(routes!(list_pages))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SpaceList {
    #[schema(value_type = Vec<crate::schema::Space>)]
    pub items: Vec<Space>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PageList {
    #[schema(value_type = Vec<crate::schema::Page>)]
    pub items: Vec<Page>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListPagesQueryParams {
    /// Space key (e.g. `ENG`).
    pub space: String,
}

/// List Confluence spaces
///
/// Every space of the selected site (cursor pagination followed).
#[utoipa::path(
    get,
    path = "/v1/connections/{id}/confluence/spaces",
    tag = "confluence",
    params(("id" = String, Path, description = "Connection id")),
    responses(
        (status = 200, description = "All spaces", body = SpaceList),
        (status = 403, description = "The grant lacks Confluence scopes", body = crate::error::Problem),
        (status = 404, description = "No such connection (for this app)", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn list_spaces(
    State(state): State<AppState>,
    conn: AppConnection,
) -> Result<Json<SpaceList>, ApiError> {
    let row = conn.with_site()?;
    match spaces(&state.atlassian, Some(&conn.app.id), &row.id, None).await {
        Ok(items) => Ok(Json(SpaceList { items })),
        Err(e) => Err(e.into()),
    }
}

/// List the pages of a space
///
/// id, title, status, version, updated and `url` of every page (cursor
/// pagination followed).
#[utoipa::path(
    get,
    path = "/v1/connections/{id}/confluence/pages",
    tag = "confluence",
    params(("id" = String, Path, description = "Connection id"), ListPagesQueryParams),
    responses(
        (status = 200, description = "All pages of the space", body = PageList),
        (status = 404, description = "No such connection or space", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn list_pages(
    State(state): State<AppState>,
    conn: AppConnection,
    Query(q): Query<ListPagesQueryParams>,
) -> Result<Json<PageList>, ApiError> {
    if q.space.trim().is_empty() || q.space.contains(',') {
        return Err(ApiError::validation("space", "must be one space key"));
    }
    let row = conn.with_site()?;
    let result = async {
        let found = spaces(
            &state.atlassian,
            Some(&conn.app.id),
            &row.id,
            Some(q.space.trim()),
        )
        .await?;
        let Some(space) = found
            .into_iter()
            .find(|s| s.key.eq_ignore_ascii_case(q.space.trim()))
        else {
            return Ok(None);
        };
        pages(&state.atlassian, Some(&conn.app.id), &row.id, &space.id)
            .await
            .map(Some)
    }
    .await;
    match result {
        Ok(Some(items)) => Ok(Json(PageList { items })),
        Ok(None) => Err(ApiError::NotFound),
        Err(e) => Err(e.into()),
    }
}
