//! Typed Jira operations (docs/design.md §3 `/v1/connections/{id}/jira/…`):
//! projects, boards, sprints, sprint issues, backlog, JQL search, estimates,
//! comments, and issue keys found in text. Answers use atlasgate's own
//! schemas ([`ops`]); Atlassian's pagination is followed here so apps never
//! see it.

pub mod issue_keys;
pub mod writes;

pub use atlasgate_core::jira::ops;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::apps::{AppConnection, AuthenticatedApp};
use crate::error::ApiError;
use crate::ids::{CloudId, Jql};
use crate::state::AppState;
use crate::store::connections::ConnectionRow;

pub use issue_keys::IssueKey;
pub use ops::{Board, Ctx, Issue, Project, Sprint, SprintRef};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_projects))
        .routes(routes!(list_boards))
        .routes(routes!(list_sprints))
        .routes(routes!(list_sprint_issues))
        .routes(routes!(list_backlog))
        .routes(routes!(search_issues))
        .routes(routes!(update_estimate))
        .routes(routes!(create_comment))
        .routes(routes!(writes::create_issue))
        .routes(routes!(writes::get_issue, writes::update_issue))
        .routes(routes!(writes::transition_issue))
        .routes(routes!(writes::update_assignee))
        .routes(routes!(issue_keys::find_issue_keys))
}

static NO_SITE: CloudId = CloudId::EMPTY;

pub(crate) fn ctx<'a>(
    state: &'a AppState,
    app: &'a AuthenticatedApp,
    row: &'a ConnectionRow,
) -> Ctx<'a> {
    Ctx {
        client: &state.atlassian,
        app_id: Some(&app.id),
        connection_id: &row.id,
        cloud_id: row.site_cloud_id.as_ref().unwrap_or(&NO_SITE),
        site_url: row.site_url.as_deref().unwrap_or_default(),
    }
}

// ---- wire types -------------------------------------------------------------------

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProjectList {
    #[schema(value_type = Vec<crate::schema::Project>)]
    pub items: Vec<Project>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BoardList {
    #[schema(value_type = Vec<crate::schema::Board>)]
    pub items: Vec<Board>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SprintList {
    #[schema(value_type = Vec<crate::schema::Sprint>)]
    pub items: Vec<Sprint>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IssueList {
    #[schema(value_type = Vec<crate::schema::Issue>)]
    pub items: Vec<Issue>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListBoardsQueryParams {
    /// Only boards of this project (key or id).
    pub project: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListSprintsQueryParams {
    /// Comma list of `active`, `future`, `closed`; all when absent.
    #[param(
        pattern = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(active|future|closed)[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(,[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(active|future|closed)[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*)*$"
    )]
    pub state: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchIssuesQueryParams {
    /// A bounded JQL query (Jira refuses unbounded ones).
    #[param(pattern = r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")]
    pub jql: String,
    /// Most issues to return, 1–5000; default 50.
    #[param(minimum = 1, maximum = 5000)]
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EstimateRequest {
    /// A non-negative number (or a numeric string), e.g. `5` or `"0.5"`.
    #[schema(schema_with = crate::schema::estimate_value)]
    pub value: serde_json::Value,
    /// Write through this board's estimation field (its configuration).
    pub board_id: Option<i64>,
    /// Also post this comment (plain text; one paragraph per line).
    pub comment: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EstimateResponse {
    /// The field written, e.g. `customfield_10016`.
    pub field_id: String,
    pub value: f64,
}

/// Exactly one of `text` and `markdown`, not blank (its schema:
/// [`crate::schema::comment_request`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommentRequest {
    /// Plain text; each non-empty line becomes an ADF paragraph.
    pub text: Option<String>,
    /// Markdown, converted to ADF (give `text` or `markdown`, not both).
    pub markdown: Option<String>,
}

impl utoipa::PartialSchema for CommentRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::schema::comment_request().into()
    }
}

impl ToSchema for CommentRequest {}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CommentResponse {
    /// Jira's comment id.
    pub id: String,
    pub created: Option<String>,
}

// ---- handlers ------------------------------------------------------------------------

/// List projects
///
/// Every project of the selected site (all pages of `/rest/api/3/project/search`).
#[utoipa::path(
    get,
    path = "/v1/connections/{id}/jira/projects",
    tag = "jira",
    params(("id" = String, Path, description = "Connection id")),
    responses(
        (status = 200, description = "All projects", body = ProjectList),
        (status = 404, description = "No such connection (for this app)", body = crate::error::Problem),
        (status = 409, description = "`reauth-required` or no site selected", body = crate::error::Problem),
        (status = 502, description = "Atlassian failed", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn list_projects(
    State(state): State<AppState>,
    conn: AppConnection,
) -> Result<Json<ProjectList>, ApiError> {
    let row = conn.with_site()?;
    match ops::list_projects(&ctx(&state, &conn.app, row)).await {
        Ok(items) => Ok(Json(ProjectList { items })),
        Err(e) => Err(e.into()),
    }
}

/// List boards
#[utoipa::path(
    get,
    path = "/v1/connections/{id}/jira/boards",
    tag = "jira",
    params(("id" = String, Path, description = "Connection id"), ListBoardsQueryParams),
    responses(
        (status = 200, description = "Boards (all pages)", body = BoardList),
        (status = 404, description = "No such connection (for this app)", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn list_boards(
    State(state): State<AppState>,
    conn: AppConnection,
    Query(q): Query<ListBoardsQueryParams>,
) -> Result<Json<BoardList>, ApiError> {
    let row = conn.with_site()?;
    match ops::list_boards(&ctx(&state, &conn.app, row), q.project.as_deref()).await {
        Ok(items) => Ok(Json(BoardList { items })),
        Err(e) => Err(e.into()),
    }
}

/// List a board's sprints
#[utoipa::path(
    get,
    path = "/v1/connections/{id}/jira/boards/{board}/sprints",
    tag = "jira",
    params(
        ("id" = String, Path, description = "Connection id"),
        ("board" = i64, Path, description = "Board id"),
        ListSprintsQueryParams
    ),
    responses(
        (status = 200, description = "Sprints (all pages)", body = SprintList),
        (status = 400, description = "A kanban board (Jira's message in `detail`)", body = crate::error::Problem),
        (status = 404, description = "No such connection or board", body = crate::error::Problem),
        (status = 422, description = "A bad state list", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn list_sprints(
    State(state): State<AppState>,
    conn: AppConnection,
    Path((_id, board)): Path<(String, i64)>,
    Query(q): Query<ListSprintsQueryParams>,
) -> Result<Json<SprintList>, ApiError> {
    if let Some(s) = &q.state {
        if s.split(',')
            .any(|x| !matches!(x.trim(), "active" | "future" | "closed"))
        {
            return Err(ApiError::validation(
                "state",
                "must be a comma list of active, future, closed",
            ));
        }
    }
    let row = conn.with_site()?;
    match ops::list_sprints(&ctx(&state, &conn.app, row), board, q.state.as_deref()).await {
        Ok(items) => Ok(Json(SprintList { items })),
        Err(e) => Err(e.into()),
    }
}

/// List a sprint's issues
///
/// In rank order, every page.
#[utoipa::path(
    get,
    path = "/v1/connections/{id}/jira/sprints/{sprint}/issues",
    tag = "jira",
    params(("id" = String, Path, description = "Connection id"), ("sprint" = i64, Path, description = "Sprint id")),
    responses(
        (status = 200, description = "Issues in rank order", body = IssueList),
        (status = 404, description = "No such connection or sprint", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn list_sprint_issues(
    State(state): State<AppState>,
    conn: AppConnection,
    Path((_id, sprint)): Path<(String, i64)>,
) -> Result<Json<IssueList>, ApiError> {
    let row = conn.with_site()?;
    let path = format!("rest/agile/1.0/sprint/{sprint}/issue");
    match ops::ranked_issues(&ctx(&state, &conn.app, row), &path).await {
        Ok(items) => Ok(Json(IssueList { items })),
        Err(e) => Err(e.into()),
    }
}

/// List a board's backlog
///
/// Issues not in an active or future sprint, in rank order, every page.
#[utoipa::path(
    get,
    path = "/v1/connections/{id}/jira/boards/{board}/backlog",
    tag = "jira",
    params(("id" = String, Path, description = "Connection id"), ("board" = i64, Path, description = "Board id")),
    responses(
        (status = 200, description = "Issues in rank order", body = IssueList),
        (status = 404, description = "No such connection or board", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn list_backlog(
    State(state): State<AppState>,
    conn: AppConnection,
    Path((_id, board)): Path<(String, i64)>,
) -> Result<Json<IssueList>, ApiError> {
    let row = conn.with_site()?;
    let path = format!("rest/agile/1.0/board/{board}/backlog");
    match ops::ranked_issues(&ctx(&state, &conn.app, row), &path).await {
        Ok(items) => Ok(Json(IssueList { items })),
        Err(e) => Err(e.into()),
    }
}

/// Search issues with JQL
///
/// Via `/rest/api/3/search/jql`, following `nextPageToken` up to `limit`.
#[utoipa::path(
    get,
    path = "/v1/connections/{id}/jira/search",
    tag = "jira",
    params(("id" = String, Path, description = "Connection id"), SearchIssuesQueryParams),
    responses(
        (status = 200, description = "Matching issues", body = IssueList),
        (status = 400, description = "Jira refused the JQL (its message in `detail`)", body = crate::error::Problem),
        (status = 422, description = "Empty JQL or bad limit", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn search_issues(
    State(state): State<AppState>,
    conn: AppConnection,
    Query(q): Query<SearchIssuesQueryParams>,
) -> Result<Json<IssueList>, ApiError> {
    let mut errors = Vec::new();
    if q.jql.trim().is_empty() {
        errors.push(crate::error::FieldError::new("jql", "must not be empty"));
    }
    let limit = q.limit.unwrap_or(50);
    if !(1..=5000).contains(&limit) {
        errors.push(crate::error::FieldError::new(
            "limit",
            "must be between 1 and 5000",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let row = conn.with_site()?;
    let jql = Jql::from(q.jql);
    match ops::search(&ctx(&state, &conn.app, row), &jql, limit).await {
        Ok(items) => Ok(Json(IssueList { items })),
        Err(e) => Err(e.into()),
    }
}

fn parse_estimate(v: &serde_json::Value) -> Option<f64> {
    let n = match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }?;
    (n.is_finite() && n >= 0.0).then_some(n)
}

/// Set an issue's estimate
///
/// With `board_id`, writes the field the board estimates with (its
/// configuration) through the agile API; without, the site's story-points
/// field found by name ("Story Points", "Story point estimate"). Optionally
/// posts `comment` (ADF).
#[utoipa::path(
    post,
    path = "/v1/connections/{id}/jira/issues/{key}/estimate",
    tag = "jira",
    params(("id" = String, Path, description = "Connection id"), ("key" = String, Path, description = "Issue key, e.g. `ACME-12`", pattern = r"^[A-Za-z][A-Za-z0-9_]*-[1-9][0-9]{0,9}$")),
    request_body = EstimateRequest,
    responses(
        (status = 200, description = "Written", body = EstimateResponse),
        (status = 404, description = "No such connection or issue", body = crate::error::Problem),
        (status = 422, description = "Not a number, bad key, no story-points field, or a board that does not estimate with a field", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn update_estimate(
    State(state): State<AppState>,
    conn: AppConnection,
    Path((_id, key)): Path<(String, String)>,
    Json(req): Json<EstimateRequest>,
) -> Result<Json<EstimateResponse>, ApiError> {
    let mut errors = Vec::new();
    let key = IssueKey::parse(&key);
    if key.is_none() {
        errors.push(crate::error::FieldError::new(
            "key",
            "is not a Jira issue key (PROJECT-123)",
        ));
    }
    let value = parse_estimate(&req.value);
    if value.is_none() {
        errors.push(crate::error::FieldError::new(
            "value",
            "must be a non-negative number",
        ));
    }
    let (Some(key), Some(value)) = (key, value) else {
        return Err(ApiError::Validation(errors));
    };
    let row = conn.with_site()?;
    let c = ctx(&state, &conn.app, row);
    let field_id = match ops::set_estimate(&c, key.as_str(), value, req.board_id).await {
        Ok(f) => f,
        Err(ops::EstimateError::Atlassian(e)) => return Err(e.into()),
        Err(e @ ops::EstimateError::NoField { .. }) => {
            return Err(ApiError::validation("value", e.to_string()))
        }
        Err(e @ ops::EstimateError::BoardNotByField { .. }) => {
            return Err(ApiError::validation("board_id", e.to_string()))
        }
    };
    if let Some(text) = req.comment.as_deref().filter(|t| !t.trim().is_empty()) {
        if let Err(e) = ops::add_comment(&c, key.as_str(), text).await {
            return Err(e.into());
        }
    }
    Ok(Json(EstimateResponse { field_id, value }))
}

/// Comment on an issue
///
/// `text` becomes an ADF document, one paragraph per non-empty line;
/// `markdown` is converted to ADF (headings, lists, code blocks, tables,
/// mentions as `@[Name](accountId)`…). Exactly one of the two.
#[utoipa::path(
    post,
    path = "/v1/connections/{id}/jira/issues/{key}/comments",
    tag = "jira",
    params(("id" = String, Path, description = "Connection id"), ("key" = String, Path, description = "Issue key", pattern = r"^[A-Za-z][A-Za-z0-9_]*-[1-9][0-9]{0,9}$")),
    request_body = CommentRequest,
    responses(
        (status = 201, description = "Posted", body = CommentResponse),
        (status = 404, description = "No such connection or issue", body = crate::error::Problem),
        (status = 422, description = "Empty text, both or neither of text and markdown, or bad key", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn create_comment(
    State(state): State<AppState>,
    conn: AppConnection,
    Path((_id, key)): Path<(String, String)>,
    Json(req): Json<CommentRequest>,
) -> Result<(StatusCode, Json<CommentResponse>), ApiError> {
    let mut errors = Vec::new();
    let key = IssueKey::parse(&key);
    if key.is_none() {
        errors.push(crate::error::FieldError::new(
            "key",
            "is not a Jira issue key (PROJECT-123)",
        ));
    }
    match (&req.text, &req.markdown) {
        (Some(t), None) if t.trim().is_empty() => {
            errors.push(crate::error::FieldError::new("text", "must not be empty"))
        }
        (None, Some(m)) if m.trim().is_empty() => errors.push(crate::error::FieldError::new(
            "markdown",
            "must not be empty",
        )),
        (Some(_), None) | (None, Some(_)) => {}
        _ => errors.push(crate::error::FieldError::new(
            "text",
            "give exactly one of text and markdown",
        )),
    }
    let Some(key) = key.filter(|_| errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let row = conn.with_site()?;
    let c = ctx(&state, &conn.app, row);
    let created = match (&req.text, &req.markdown) {
        (Some(text), _) => {
            let v = ops::add_comment(&c, key.as_str(), text).await?;
            writes::CommentCreated {
                id: v["id"]
                    .as_str()
                    .map(String::from)
                    .unwrap_or_else(|| v["id"].to_string()),
                created: v["created"].as_str().map(ops::jira_time),
            }
        }
        (None, Some(md)) => writes::add_comment_markdown(&c, key.as_str(), md).await?,
        (None, None) => return Err(ApiError::validation("text", "give text or markdown")),
    };
    Ok((
        StatusCode::CREATED,
        Json(CommentResponse {
            id: created.id,
            created: created.created,
        }),
    ))
}
