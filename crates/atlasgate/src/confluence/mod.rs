//! Typed Confluence operations (docs/design.md §3
//! `/v1/connections/{id}/confluence/…`); the logic is
//! [`atlasgate_core::confluence`].

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::apps::AppConnection;
use crate::error::ApiError;
use crate::state::AppState;
pub use atlasgate_core::confluence::*;

fn ctx<'a>(state: &'a AppState, conn: &'a AppConnection) -> Result<Ctx<'a>, ApiError> {
    let row = conn.with_site()?;
    Ok(crate::jira::ctx(state, &conn.app, row))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_spaces))
        .routes(routes!(list_pages, create_page))
        .routes(routes!(read_page, update_page))
        .routes(routes!(search_content))
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
#[into_params(parameter_in = Query)]
pub struct ListPagesQueryParams {
    /// Space key (e.g. `ENG`): one, so no comma.
    #[param(
        pattern = r"^[^,]*[^,\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^,]*$"
    )]
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
        (status = 422, description = "Not one space key", body = crate::error::Problem),
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

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchContentQueryParams {
    /// A CQL query, e.g. `space = ENG AND type = page AND text ~ "release"`.
    #[param(pattern = r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")]
    pub cql: String,
    /// Most results, 1–1000 (default 25).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SearchHitList {
    #[schema(value_type = Vec<crate::schema::SearchHit>)]
    pub items: Vec<SearchHit>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePageRequest {
    /// Space key (`ENG`) or id.
    pub space: String,
    /// Not blank, at most 255 characters (Confluence's limit).
    #[schema(
        max_length = 255,
        pattern = r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub title: String,
    /// The body in Markdown (stored as ADF).
    pub markdown: String,
    /// Create it under this page (same space); else under the space's homepage.
    #[schema(pattern = r"^[0-9]+$")]
    pub parent_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePageRequest {
    /// A new title; the current one is kept when absent. Not blank, at
    /// most 255 characters.
    #[schema(
        max_length = 255,
        pattern = r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub title: Option<String>,
    /// The new body in Markdown (stored as ADF).
    pub markdown: String,
    /// The version you read. atlasgate writes `version + 1`; a page that
    /// has moved on answers 409 `version-conflict` with `current_version`.
    #[schema(minimum = 1)]
    pub version: i64,
}

/// Search Confluence with CQL
///
/// `GET /wiki/rest/api/search`, following `_links.next` up to `limit`.
#[utoipa::path(
    get,
    path = "/v1/connections/{id}/confluence/search",
    tag = "confluence",
    params(("id" = String, Path, description = "Connection id"), SearchContentQueryParams),
    responses(
        (status = 200, description = "Matching content", body = SearchHitList),
        (status = 400, description = "Confluence refused the CQL (its message in `detail`)", body = crate::error::Problem),
        (status = 404, description = "No such connection (for this app)", body = crate::error::Problem),
        (status = 422, description = "Empty CQL or bad limit", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn search_content(
    State(state): State<AppState>,
    conn: AppConnection,
    Query(q): Query<SearchContentQueryParams>,
) -> Result<Json<SearchHitList>, ApiError> {
    let c = ctx(&state, &conn)?;
    let items = search(&c, &q.cql, q.limit.unwrap_or(25)).await?;
    Ok(Json(SearchHitList { items }))
}

/// Create a page
///
/// The body is written in Markdown and stored as ADF.
#[utoipa::path(
    post,
    path = "/v1/connections/{id}/confluence/pages",
    tag = "confluence",
    params(("id" = String, Path, description = "Connection id")),
    request_body = CreatePageRequest,
    responses(
        (status = 201, description = "Created", body = crate::schema::PageDetail),
        (status = 400, description = "Confluence refused it (e.g. the title is taken in the space)", body = crate::error::Problem),
        (status = 404, description = "No such connection (for this app)", body = crate::error::Problem),
        (status = 422, description = "Empty title, unknown space or bad parent id", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn create_page(
    State(state): State<AppState>,
    conn: AppConnection,
    Json(req): Json<CreatePageRequest>,
) -> Result<(StatusCode, Json<PageDetail>), ApiError> {
    let c = ctx(&state, &conn)?;
    let new = NewPage {
        space: req.space,
        title: req.title,
        markdown: req.markdown,
        parent_id: req.parent_id,
    };
    let page = atlasgate_core::confluence::create_page(&c, &new).await?;
    Ok((StatusCode::CREATED, Json(page)))
}

/// Read a page as Markdown
#[utoipa::path(
    get,
    path = "/v1/connections/{id}/confluence/pages/{page}",
    tag = "confluence",
    params(("id" = String, Path, description = "Connection id"), ("page" = String, Path, description = "Page id (digits)", pattern = r"^[0-9]+$")),
    responses(
        (status = 200, description = "The page, its body as Markdown", body = crate::schema::PageDetail),
        (status = 404, description = "No such connection or page", body = crate::error::Problem),
        (status = 422, description = "Not a page id", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn read_page(
    State(state): State<AppState>,
    conn: AppConnection,
    Path((_id, page)): Path<(String, String)>,
) -> Result<Json<PageDetail>, ApiError> {
    let c = ctx(&state, &conn)?;
    Ok(Json(get_page(&c, &page).await?))
}

/// Update a page
///
/// `version` is the version the caller read; atlasgate writes the next one.
/// A page that has moved on answers 409 `version-conflict` with
/// `current_version`, and nothing is written.
#[utoipa::path(
    put,
    path = "/v1/connections/{id}/confluence/pages/{page}",
    tag = "confluence",
    params(("id" = String, Path, description = "Connection id"), ("page" = String, Path, description = "Page id (digits)", pattern = r"^[0-9]+$")),
    request_body = UpdatePageRequest,
    responses(
        (status = 200, description = "The new version", body = crate::schema::PageDetail),
        (status = 404, description = "No such connection or page", body = crate::error::Problem),
        (status = 409, description = "`version-conflict`: the page is no longer at `version` (`current_version`)", body = crate::error::Problem),
        (status = 422, description = "Bad page id, version or title", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn update_page(
    State(state): State<AppState>,
    conn: AppConnection,
    Path((_id, page)): Path<(String, String)>,
    Json(req): Json<UpdatePageRequest>,
) -> Result<Json<PageDetail>, ApiError> {
    let c = ctx(&state, &conn)?;
    let upd = PageUpdate {
        title: req.title,
        markdown: req.markdown,
        version: req.version,
    };
    Ok(Json(
        atlasgate_core::confluence::update_page(&c, &page, &upd).await?,
    ))
}
