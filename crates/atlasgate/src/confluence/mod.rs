//! Typed Confluence operations (DESIGN §3 `/v1/connections/{id}/confluence/…`):
//! spaces and the pages of a space, over the v2 API, following its cursor
//! pagination (`_links.next`) to the end.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::apps::AuthenticatedApp;
use crate::atlassian::{ApiRequest, AtlassianClient, AtlassianError, Product};
use crate::error::ApiError;
use crate::proxy::ProxyPath;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_spaces))
        .routes(routes!(list_pages))
}

/// A Confluence space.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Space {
    pub id: String,
    pub key: String,
    pub name: String,
    /// `global` or `personal`.
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub status: Option<String>,
    pub url: Option<String>,
}

/// A Confluence page.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Page {
    pub id: String,
    pub title: String,
    /// `current`, `draft`, `archived`…
    pub status: Option<String>,
    /// Version number.
    pub version: Option<i64>,
    /// When the current version was made (RFC 3339).
    pub updated: Option<String>,
    /// The page in the browser.
    pub url: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SpaceList {
    pub items: Vec<Space>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PageList {
    pub items: Vec<Page>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListPagesQueryParams {
    /// Space key (e.g. `ENG`).
    pub space: String,
}

/// Follow `_links.next` from `first` until the end; returns every result
/// and the `_links.base` (site wiki URL) of the first page.
pub async fn all_results(
    client: &AtlassianClient,
    app_id: Option<&str>,
    connection_id: &str,
    first: ApiRequest,
) -> Result<(Vec<Value>, Option<String>), AtlassianError> {
    let mut out = Vec::new();
    let mut base = None;
    let mut req = first;
    // Bounded: 1000 pages of 250 is more than any space holds.
    for _ in 0..1000 {
        let (page, _): (Value, _) = client.json(app_id, connection_id, req).await?;
        if base.is_none() {
            base = page["_links"]["base"].as_str().map(String::from);
        }
        out.extend(page["results"].as_array().cloned().unwrap_or_default());
        let Some(next) = page["_links"]["next"].as_str() else {
            break;
        };
        // The next link is relative to the site (`/wiki/api/v2/…?cursor=…`);
        // it must stay below the site's base like any proxied path.
        let next = next.trim_start_matches('/');
        let (path, query) = next.split_once('?').unwrap_or((next, ""));
        let path = ProxyPath::parse(path)
            .map_err(|e| AtlassianError::Decode(format!("unusable next link: {e}")))?;
        let mut r = ApiRequest::get(Product::Confluence, path.as_str());
        r.query = (!query.is_empty()).then(|| query.to_string());
        req = r;
    }
    Ok((out, base))
}

fn link(base: &Option<String>, v: &Value) -> Option<String> {
    let webui = v["_links"]["webui"].as_str()?;
    Some(format!(
        "{}{}",
        base.as_deref().unwrap_or("").trim_end_matches('/'),
        webui
    ))
}

fn id_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn space_from(base: &Option<String>, v: &Value) -> Space {
    Space {
        id: id_of(&v["id"]),
        key: v["key"].as_str().unwrap_or_default().to_string(),
        name: v["name"].as_str().unwrap_or_default().to_string(),
        type_: v["type"].as_str().map(String::from),
        status: v["status"].as_str().map(String::from),
        url: link(base, v),
    }
}

pub async fn spaces(
    client: &AtlassianClient,
    app_id: Option<&str>,
    connection_id: &str,
    keys: Option<&str>,
) -> Result<Vec<Space>, AtlassianError> {
    let mut q = vec![("limit", "250".to_string())];
    if let Some(k) = keys {
        q.push(("keys", k.to_string()));
    }
    let first = ApiRequest::get(Product::Confluence, "wiki/api/v2/spaces").query(&q);
    let (all, base) = all_results(client, app_id, connection_id, first).await?;
    Ok(all.iter().map(|v| space_from(&base, v)).collect())
}

pub async fn pages(
    client: &AtlassianClient,
    app_id: Option<&str>,
    connection_id: &str,
    space_id: &str,
) -> Result<Vec<Page>, AtlassianError> {
    let first = ApiRequest::get(
        Product::Confluence,
        format!("wiki/api/v2/spaces/{space_id}/pages"),
    )
    .query(&[("limit", "250")]);
    let (all, base) = all_results(client, app_id, connection_id, first).await?;
    Ok(all
        .iter()
        .map(|v| Page {
            id: id_of(&v["id"]),
            title: v["title"].as_str().unwrap_or_default().to_string(),
            status: v["status"].as_str().map(String::from),
            version: v["version"]["number"].as_i64(),
            updated: v["version"]["createdAt"]
                .as_str()
                .or_else(|| v["createdAt"].as_str())
                .map(String::from),
            url: link(&base, v),
        })
        .collect())
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
    app: AuthenticatedApp,
    Path(id): Path<String>,
) -> Result<Json<SpaceList>, ApiError> {
    let row = crate::jira::site_connection(&state, &app, &id).await?;
    match spaces(&state.atlassian, Some(&app.id), &row.id, None).await {
        Ok(items) => Ok(Json(SpaceList { items })),
        Err(e) => Err(crate::proxy::upstream_error(&state, &row.id, e).await),
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
    app: AuthenticatedApp,
    Path(id): Path<String>,
    Query(q): Query<ListPagesQueryParams>,
) -> Result<Json<PageList>, ApiError> {
    if q.space.trim().is_empty() || q.space.contains(',') {
        return Err(ApiError::validation("space", "must be one space key"));
    }
    let row = crate::jira::site_connection(&state, &app, &id).await?;
    let result = async {
        let found = spaces(
            &state.atlassian,
            Some(&app.id),
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
        pages(&state.atlassian, Some(&app.id), &row.id, &space.id)
            .await
            .map(Some)
    }
    .await;
    match result {
        Ok(Some(items)) => Ok(Json(PageList { items })),
        Ok(None) => Err(ApiError::NotFound),
        Err(e) => Err(crate::proxy::upstream_error(&state, &row.id, e).await),
    }
}
