//! Typed Jira writes (docs/design.md §16): create, update, read as Markdown,
//! transition by status name, assign. The logic is
//! [`atlasgate_core::jira::writes`]; this module only translates.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::{ctx, IssueKey};
use crate::apps::AppConnection;
use crate::error::{ApiError, FieldError};
use crate::state::AppState;
pub use atlasgate_core::jira::writes::*;

/// Comments `GET …/jira/issues/{key}` includes by default.
const DEFAULT_RECENT_COMMENTS: usize = 10;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIssueRequest {
    /// Project key (`ACME`) or id.
    #[schema(pattern = r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")]
    pub project: String,
    /// Issue type name (`Task`, `Bug`, `Story`…) or id.
    #[schema(pattern = r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")]
    pub issue_type: String,
    /// One line, at most 255 characters (Jira's limit).
    #[schema(
        max_length = 255,
        pattern = r"^[^\n]*[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\n]*$"
    )]
    pub summary: String,
    /// Markdown; stored in Jira as ADF.
    pub description_markdown: Option<String>,
    /// Further Jira fields as Jira's `fields` object takes them (e.g. `labels`, `priority`).
    #[schema(value_type = Option<Object>)]
    pub fields: Option<Map<String, Value>>,
}

/// Something to change (its schema: [`crate::schema::update_issue_request`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateIssueRequest {
    pub summary: Option<String>,
    /// An empty string clears the description.
    pub description_markdown: Option<String>,
    pub fields: Option<Map<String, Value>>,
}

impl utoipa::PartialSchema for UpdateIssueRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::schema::update_issue_request().into()
    }
}

impl ToSchema for UpdateIssueRequest {}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionRequest {
    /// A status name (`Done`), a transition name, or a transition id (`51`).
    #[schema(pattern = r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")]
    pub to: String,
}

/// Whom to assign: exactly one member, or the body `null` to unassign.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssigneeRequest {
    /// An Atlassian account id (`null` unassigns).
    pub account_id: Option<String>,
    /// An e-mail address, found with Jira's user search.
    pub email: Option<String>,
    /// A name or part of one; more than one match is a 409 listing them.
    pub query: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AssigneeResponse {
    /// Who is assigned now; `null` when unassigned. `display_name` is empty
    /// when the request named an account id.
    #[schema(value_type = Option<crate::schema::UserRef>)]
    pub assignee: Option<UserRef>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GetIssueQueryParams {
    /// How many of the most recent comments to include, 0–100 (default 10).
    #[param(maximum = 100)]
    pub comments: Option<usize>,
}

fn issue_key(key: &str) -> Result<IssueKey, FieldError> {
    IssueKey::parse(key)
        .ok_or_else(|| FieldError::new("key", "is not a Jira issue key (PROJECT-123)"))
}

/// Create an issue
///
/// The description is written in Markdown and stored in Jira as ADF.
#[utoipa::path(
    post,
    path = "/v1/connections/{id}/jira/issues",
    tag = "jira",
    params(("id" = String, Path, description = "Connection id")),
    request_body = CreateIssueRequest,
    responses(
        (status = 201, description = "Created", body = crate::schema::CreatedIssue),
        (status = 400, description = "Jira refused the fields (its messages in `detail`)", body = crate::error::Problem),
        (status = 404, description = "No such connection (for this app)", body = crate::error::Problem),
        (status = 422, description = "Missing project, type or summary", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn create_issue(
    State(state): State<AppState>,
    conn: AppConnection,
    Json(req): Json<CreateIssueRequest>,
) -> Result<(StatusCode, Json<CreatedIssue>), ApiError> {
    let new = NewIssue {
        project: req.project,
        issue_type: req.issue_type,
        summary: req.summary,
        description_markdown: req.description_markdown,
        fields: req.fields.unwrap_or_default(),
    };
    let row = conn.with_site()?;
    let created =
        atlasgate_core::jira::writes::create_issue(&ctx(&state, &conn.app, row), &new).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Read an issue as Markdown
///
/// The issue with its description (ADF) rendered as Markdown, assignee,
/// reporter, resolution and its most recent comments as Markdown.
#[utoipa::path(
    get,
    path = "/v1/connections/{id}/jira/issues/{key}",
    tag = "jira",
    params(("id" = String, Path, description = "Connection id"), ("key" = String, Path, description = "Issue key", pattern = r"^[A-Za-z][A-Za-z0-9_]*-[1-9][0-9]{0,9}$"), GetIssueQueryParams),
    responses(
        (status = 200, description = "The issue", body = crate::schema::IssueDetail),
        (status = 404, description = "No such connection or issue", body = crate::error::Problem),
        (status = 422, description = "Bad key or comment count", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn get_issue(
    State(state): State<AppState>,
    conn: AppConnection,
    Path((_id, key)): Path<(String, String)>,
    Query(q): Query<GetIssueQueryParams>,
) -> Result<Json<IssueDetail>, ApiError> {
    let key = issue_key(&key).map_err(|e| ApiError::Validation(vec![e]))?;
    let comments = q.comments.unwrap_or(DEFAULT_RECENT_COMMENTS);
    if comments > MAX_RECENT_COMMENTS {
        return Err(ApiError::validation(
            "comments",
            format!("must be between 0 and {MAX_RECENT_COMMENTS}"),
        ));
    }
    let row = conn.with_site()?;
    let detail = get_issue_markdown(&ctx(&state, &conn.app, row), key.as_str(), comments).await?;
    Ok(Json(detail))
}

/// Update an issue
///
/// Only the members given change; `description_markdown` is stored as ADF.
#[utoipa::path(
    patch,
    path = "/v1/connections/{id}/jira/issues/{key}",
    tag = "jira",
    params(("id" = String, Path, description = "Connection id"), ("key" = String, Path, description = "Issue key", pattern = r"^[A-Za-z][A-Za-z0-9_]*-[1-9][0-9]{0,9}$")),
    request_body = UpdateIssueRequest,
    responses(
        (status = 204, description = "Updated"),
        (status = 400, description = "Jira refused the fields", body = crate::error::Problem),
        (status = 404, description = "No such connection or issue", body = crate::error::Problem),
        (status = 422, description = "Bad key, or nothing to change", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn update_issue(
    State(state): State<AppState>,
    conn: AppConnection,
    Path((_id, key)): Path<(String, String)>,
    Json(req): Json<UpdateIssueRequest>,
) -> Result<StatusCode, ApiError> {
    let key = issue_key(&key).map_err(|e| ApiError::Validation(vec![e]))?;
    let edit = IssueEdit {
        summary: req.summary,
        description_markdown: req.description_markdown,
        fields: req.fields.unwrap_or_default(),
    };
    let row = conn.with_site()?;
    atlasgate_core::jira::writes::update_issue(&ctx(&state, &conn.app, row), key.as_str(), &edit)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Transition an issue
///
/// `to` names a status (or a transition, or a transition id); the
/// transition is found among the issue's transitions now. When none leads
/// there: 409 `no-transition` with `reachable` (status names) and
/// `transitions`.
#[utoipa::path(
    post,
    path = "/v1/connections/{id}/jira/issues/{key}/transition",
    tag = "jira",
    params(("id" = String, Path, description = "Connection id"), ("key" = String, Path, description = "Issue key", pattern = r"^[A-Za-z][A-Za-z0-9_]*-[1-9][0-9]{0,9}$")),
    request_body = TransitionRequest,
    responses(
        (status = 200, description = "Transitioned", body = crate::schema::TransitionDone),
        (status = 404, description = "No such connection or issue", body = crate::error::Problem),
        (status = 409, description = "`no-transition`: none leads to `to`; `reachable` lists where the issue can go", body = crate::error::Problem),
        (status = 422, description = "Bad key or empty `to`", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn transition_issue(
    State(state): State<AppState>,
    conn: AppConnection,
    Path((_id, key)): Path<(String, String)>,
    Json(req): Json<TransitionRequest>,
) -> Result<Json<TransitionDone>, ApiError> {
    let key = issue_key(&key).map_err(|e| ApiError::Validation(vec![e]))?;
    let row = conn.with_site()?;
    let done = atlasgate_core::jira::writes::transition_issue(
        &ctx(&state, &conn.app, row),
        key.as_str(),
        &req.to,
    )
    .await?;
    Ok(Json(done))
}

/// The one way the assignee body names a person.
fn assignee_of(body: Value) -> Result<Assignee, ApiError> {
    if body.is_null() {
        return Ok(Assignee::Unassigned);
    }
    let req: AssigneeRequest = serde_json::from_value(body).map_err(|e| {
        ApiError::validation(
            "body",
            format!("{e}; expected {{account_id}}, {{email}}, {{query}} or null"),
        )
    })?;
    match (req.account_id, req.email, req.query) {
        (Some(a), None, None) => Ok(Assignee::AccountId(a)),
        (None, Some(e), None) => Ok(Assignee::Email(e)),
        (None, None, Some(q)) => Ok(Assignee::Query(q)),
        // `{"account_id": null}` unassigns, like Jira's `{"accountId": null}`.
        (None, None, None) => Ok(Assignee::Unassigned),
        _ => Err(ApiError::validation(
            "body",
            "give exactly one of account_id, email, query (or null to unassign)",
        )),
    }
}

/// Assign an issue
///
/// The body is `{account_id}`, `{email}` or `{query}` (a name), or `null`
/// to unassign. E-mail addresses and names are found among the users
/// assignable to the issue: several matches are a 409 `ambiguous-user`
/// listing `candidates`; none is a 422 on that member.
#[utoipa::path(
    put,
    path = "/v1/connections/{id}/jira/issues/{key}/assignee",
    tag = "jira",
    params(("id" = String, Path, description = "Connection id"), ("key" = String, Path, description = "Issue key", pattern = r"^[A-Za-z][A-Za-z0-9_]*-[1-9][0-9]{0,9}$")),
    request_body(content = Option<AssigneeRequest>, description = "Exactly one member, or `null` to unassign"),
    responses(
        (status = 200, description = "Assigned (or unassigned)", body = AssigneeResponse),
        (status = 404, description = "No such connection or issue", body = crate::error::Problem),
        (status = 409, description = "`ambiguous-user`: the name matches several people (`candidates`)", body = crate::error::Problem),
        (status = 422, description = "Bad body, or nobody matches", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn update_assignee(
    State(state): State<AppState>,
    conn: AppConnection,
    Path((_id, key)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Result<Json<AssigneeResponse>, ApiError> {
    let key = issue_key(&key).map_err(|e| ApiError::Validation(vec![e]))?;
    let who = assignee_of(body)?;
    let row = conn.with_site()?;
    let assignee = assign_issue(&ctx(&state, &conn.app, row), key.as_str(), &who).await?;
    Ok(Json(AssigneeResponse { assignee }))
}
