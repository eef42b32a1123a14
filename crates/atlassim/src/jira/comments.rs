//! Comments: add, list (default page 100, `orderBy=created|-created`), and
//! `GET|PUT|DELETE /issue/{key}/comment/{id}`, with the `comment_created`,
//! `comment_updated` and `comment_deleted` webhooks.

use axum::extract::{Path, RawQuery};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{parse_body, query_int, query_one, query_pairs, render, rest_base_for, service};
use crate::errors::{ApiError, ApiResult};
use crate::gateway::Ctx;
use crate::model::{Comment, Issue, Site, Timestamp};
use crate::webhooks::IssueEventKind;

/// A comment body as posted: ADF on v3, plain text on v2; empty is an error.
pub fn comment_body(body: Option<&Value>, v2: bool) -> ApiResult<Value> {
    let empty = || {
        ApiError::jira_field(
            StatusCode::BAD_REQUEST,
            "comment",
            "Comment body can not be empty!",
        )
    };
    match body {
        Some(Value::String(s)) if v2 && !s.trim().is_empty() => Ok(service::text_to_adf(s)),
        Some(d) if !v2 && service::is_adf_doc(d) => Ok(d.clone()),
        Some(Value::String(_)) if v2 => Err(empty()),
        None | Some(Value::Null) => Err(empty()),
        Some(_) => Err(ApiError::jira_field(
            StatusCode::BAD_REQUEST,
            "comment",
            service::NOT_ADF,
        )),
    }
}

/// Add a comment to `issue` (stored in `site`); a comment counts as an
/// update of the issue (JQL `updated`, sync cursors).
pub fn append(
    site: &mut Site,
    issue: &mut Issue,
    author: &str,
    body: Value,
    now: Timestamp,
) -> Comment {
    let comment = Comment {
        id: site.next_comment_id,
        author_account_id: author.to_string(),
        body,
        created: now,
        updated: now,
    };
    site.next_comment_id += 1;
    issue.comments.push(comment.clone());
    issue.updated = now.max(issue.updated);
    site.put_issue(issue.clone());
    comment
}

/// Change one issue of the caller's site under the world lock; `f` gets
/// the site and a copy of the issue (and stores it if it changes it).
fn with_issue<T>(
    ctx: &Ctx,
    id_or_key: &str,
    f: impl FnOnce(&mut Site, &mut Issue) -> ApiResult<T>,
) -> ApiResult<(Issue, T)> {
    let mut world = ctx.state.world();
    let site = world
        .site_mut(&ctx.cloud_id)
        .ok_or(ApiError::SiteNotFound)?;
    let mut issue = site
        .issue(id_or_key)
        .ok_or_else(ApiError::issue_not_found)?
        .clone();
    let out = f(site, &mut issue)?;
    Ok((issue, out))
}

/// The `Comment` bean answered by add and update.
fn comment_response(ctx: &Ctx, uri: &axum::http::Uri, issue: &Issue, c: &Comment) -> Value {
    let world = ctx.state.world();
    render::comment(
        &rest_base_for(ctx, uri),
        &world.users,
        issue,
        c,
        ctx.is_v2(uri),
    )
}

/// Fire a `comment_*` webhook for `comment` on `issue`.
pub fn fire(ctx: &Ctx, issue: &Issue, comment: &Comment, kind: IssueEventKind) {
    crate::webhooks::fire_comment(
        &ctx.state,
        &ctx.runtime,
        &ctx.cloud_id,
        issue,
        comment,
        kind,
        &ctx.access.account_id,
    );
}

pub async fn add_comment(
    ctx: Ctx,
    uri: axum::http::Uri,
    Path(p): Path<super::IssuePath>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let body = parse_body(&body)?;
    let v2 = ctx.is_v2(&uri);
    let adf = comment_body(body.get("body"), v2)?;
    let now = ctx.state.clock.now();
    let (issue, comment) = with_issue(&ctx, &p.issue, |site, issue| {
        Ok(append(site, issue, &ctx.access.account_id, adf, now))
    })?;
    fire(&ctx, &issue, &comment, IssueEventKind::CommentCreated);
    let v = comment_response(&ctx, &uri, &issue, &comment);
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

pub async fn list_comments(
    ctx: Ctx,
    uri: axum::http::Uri,
    Path(p): Path<super::IssuePath>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = query_pairs(&raw);
    let start_at = query_int(&q, "startAt")?.unwrap_or(0).max(0) as usize;
    // The spec's default page is 100; Jira allows no more (*guess*: the cap).
    let max_results = query_int(&q, "maxResults")?.unwrap_or(100).clamp(1, 100) as usize;
    let newest_first = match query_one(&q, "orderBy").as_deref() {
        None | Some("created" | "+created") => false,
        Some("-created") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid orderBy value '{other}'. Valid values are created, +created and -created."
            )))
        }
    };
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    let issue = site.issue(&p.issue).ok_or_else(ApiError::issue_not_found)?;
    let base = rest_base_for(&ctx, &uri);
    let mut ordered: Vec<&Comment> = issue.comments.iter().collect();
    if newest_first {
        ordered.reverse();
    }
    let comments: Vec<Value> = ordered
        .iter()
        .skip(start_at)
        .take(max_results)
        .map(|c| render::comment(&base, &world.users, issue, c, ctx.is_v2(&uri)))
        .collect();
    ctx.charge(comments.len());
    Ok(Json(json!({
        "startAt": start_at,
        "maxResults": max_results,
        "total": issue.comments.len(),
        "comments": comments,
    })))
}

#[derive(Deserialize)]
pub struct CommentPath {
    #[serde(rename = "issueIdOrKey")]
    issue: String,
    id: String,
}

fn comment_not_found(id: &str) -> ApiError {
    ApiError::jira(
        StatusCode::NOT_FOUND,
        format!("Can not find a comment for the id: {id}."),
    )
}

fn find<'a>(issue: &'a Issue, id: &str) -> ApiResult<&'a Comment> {
    issue
        .comments
        .iter()
        .find(|c| c.id.to_string() == id)
        .ok_or_else(|| comment_not_found(id))
}

/// The comment, if the caller wrote it (else 403: Jira's default permission
/// scheme lets people edit and delete only their own comments).
fn own_comment(ctx: &Ctx, issue: &Issue, id: &str, action: &str) -> ApiResult<Comment> {
    let c = find(issue, id)?;
    if c.author_account_id != ctx.access.account_id {
        return Err(ApiError::jira(
            StatusCode::FORBIDDEN,
            format!("You do not have the permission to {action} this comment."),
        ));
    }
    Ok(c.clone())
}

pub async fn get_comment(
    ctx: Ctx,
    uri: axum::http::Uri,
    Path(p): Path<CommentPath>,
) -> ApiResult<Json<Value>> {
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    let issue = site.issue(&p.issue).ok_or_else(ApiError::issue_not_found)?;
    let c = find(issue, &p.id)?;
    ctx.charge(1);
    Ok(Json(render::comment(
        &rest_base_for(&ctx, &uri),
        &world.users,
        issue,
        c,
        ctx.is_v2(&uri),
    )))
}

/// `PUT …/comment/{id}`: a new body; the author stays, `updated` and the
/// update author move. Only the author may edit (*guess*: Jira's default
/// "Edit own comments" permission; admins are not simulated).
pub async fn update_comment(
    ctx: Ctx,
    uri: axum::http::Uri,
    Path(p): Path<CommentPath>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let body = parse_body(&body)?;
    let v2 = ctx.is_v2(&uri);
    let adf = comment_body(body.get("body"), v2)?;
    let now = ctx.state.clock.now();
    let (issue, comment) = with_issue(&ctx, &p.issue, |site, issue| {
        own_comment(&ctx, issue, &p.id, "edit")?;
        let Some(c) = issue.comments.iter_mut().find(|c| c.id.to_string() == p.id) else {
            return Err(comment_not_found(&p.id));
        };
        c.body = adf;
        c.updated = now.max(c.updated);
        let comment = c.clone();
        issue.updated = now.max(issue.updated);
        site.put_issue(issue.clone());
        Ok(comment)
    })?;
    fire(&ctx, &issue, &comment, IssueEventKind::CommentUpdated);
    Ok(Json(comment_response(&ctx, &uri, &issue, &comment)))
}

pub async fn delete_comment(ctx: Ctx, Path(p): Path<CommentPath>) -> ApiResult<StatusCode> {
    let now = ctx.state.clock.now();
    let (issue, comment) = with_issue(&ctx, &p.issue, |site, issue| {
        let comment = own_comment(&ctx, issue, &p.id, "delete")?;
        issue.comments.retain(|c| c.id != comment.id);
        issue.updated = now.max(issue.updated);
        site.put_issue(issue.clone());
        Ok(comment)
    })?;
    fire(&ctx, &issue, &comment, IssueEventKind::CommentDeleted);
    Ok(StatusCode::NO_CONTENT)
}
