//! Issue links (`/issueLink`) and remote links (`/issue/{key}/remotelink`).

use axum::extract::{Path, RawQuery};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::breadth::issue_ref;
use super::catalog::{link_type_json, LINK_TYPES};
use super::{parse_body, query_one, query_pairs};
use crate::errors::{ApiError, ApiResult};
use crate::gateway::Ctx;
use crate::model::{Issue, IssueLinkRecord, RemoteLink, Site, World};

use super::rest_base_for as rest_base;

#[derive(Deserialize)]
pub struct LinkPath {
    #[serde(rename = "linkId")]
    link: String,
}

#[derive(Deserialize)]
pub struct RemoteLinkPath {
    #[serde(rename = "issueIdOrKey")]
    issue: String,
    #[serde(rename = "linkId")]
    link: String,
}

fn link_not_found(id: &str) -> ApiError {
    ApiError::jira(
        StatusCode::NOT_FOUND,
        format!("No issue link with id '{id}' exists."),
    )
}

fn find_link<'a>(site: &'a Site, raw: &str) -> ApiResult<&'a IssueLinkRecord> {
    raw.parse::<u64>()
        .ok()
        .and_then(|id| site.catalog.issue_links.iter().find(|l| l.id == id))
        // A link whose issue was deleted is gone with it.
        .filter(|l| {
            site.issues.contains_key(&l.inward_id) && site.issues.contains_key(&l.outward_id)
        })
        .ok_or_else(|| link_not_found(raw))
}

fn issue_of(site: &Site, v: Option<&Value>, slot: &str) -> ApiResult<u64> {
    let key = v.and_then(|v| {
        v.get("key")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| v.get("id").and_then(Value::as_str).map(str::to_string))
    });
    match key {
        None => Err(ApiError::jira_field(
            StatusCode::BAD_REQUEST,
            slot,
            format!("The {slot} is required."),
        )),
        Some(k) => site.resolve_issue_id(&k).ok_or_else(|| {
            ApiError::jira(StatusCode::NOT_FOUND, format!("Issue Does Not Exist: {k}"))
        }),
    }
}

/// `POST /issueLink`: `inwardIssue` is the link's source, `outwardIssue` its
/// destination, so `{type: Blocks, inwardIssue: A, outwardIssue: B}` reads
/// "A blocks B" (*guess* at the notoriously inverted naming). A `comment`
/// in the body is accepted and ignored. Answers 201 with an empty body and
/// the new link in `Location`.
pub async fn create_link(
    ctx: Ctx,
    uri: axum::http::Uri,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let body = parse_body(&body)?;
    let ty = body.get("type");
    let type_id = ty
        .and_then(|t| {
            let id = t.get("id").and_then(Value::as_str);
            let name = t.get("name").and_then(Value::as_str);
            LINK_TYPES.iter().find(|(tid, tname, _, _)| {
                Some(*tid) == id || name.is_some_and(|n| n.eq_ignore_ascii_case(tname))
            })
        })
        .map(|t| t.0.to_string())
        .ok_or_else(|| {
            let name = ty
                .and_then(|t| t.get("name").or_else(|| t.get("id")))
                .map(|v| v.as_str().unwrap_or("").to_string())
                .unwrap_or_default();
            ApiError::jira(
                StatusCode::NOT_FOUND,
                format!("No issue link type with name '{name}' found."),
            )
        })?;
    let base = rest_base(&ctx, &uri);
    let mut world = ctx.state.world();
    let site = world
        .site_mut(&ctx.cloud_id)
        .ok_or(ApiError::SiteNotFound)?;
    let inward = issue_of(site, body.get("inwardIssue"), "inwardIssue")?;
    let outward = issue_of(site, body.get("outwardIssue"), "outwardIssue")?;
    if inward == outward {
        return Err(ApiError::bad_request("You cannot link an issue to itself."));
    }
    // Linking the same pair with the same type twice keeps one link (as Jira).
    let existing = site
        .catalog
        .issue_links
        .iter()
        .find(|l| l.type_id == type_id && l.inward_id == inward && l.outward_id == outward)
        .map(|l| l.id);
    let id = match existing {
        Some(id) => id,
        None => {
            let id = site.catalog.next_link_id.max(10000);
            site.catalog.next_link_id = id + 1;
            site.catalog.issue_links.push(IssueLinkRecord {
                id,
                type_id,
                inward_id: inward,
                outward_id: outward,
            });
            id
        }
    };
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("{base}/issueLink/{id}"))],
    )
        .into_response())
}

pub async fn get_link(
    ctx: Ctx,
    uri: axum::http::Uri,
    Path(p): Path<LinkPath>,
) -> ApiResult<Json<Value>> {
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    let link = find_link(site, &p.link)?;
    let base = rest_base(&ctx, &uri);
    let (Some(inward), Some(outward)) = (
        site.issues.get(&link.inward_id),
        site.issues.get(&link.outward_id),
    ) else {
        return Err(link_not_found(&p.link));
    };
    ctx.charge(1);
    Ok(Json(json!({
        "id": link.id.to_string(),
        "self": format!("{base}/issueLink/{}", link.id),
        "type": link_type_json(&base, &link.type_id),
        "inwardIssue": issue_ref(&base, inward),
        "outwardIssue": issue_ref(&base, outward),
    })))
}

pub async fn delete_link(ctx: Ctx, Path(p): Path<LinkPath>) -> ApiResult<StatusCode> {
    let mut world = ctx.state.world();
    let site = world
        .site_mut(&ctx.cloud_id)
        .ok_or(ApiError::SiteNotFound)?;
    let id = find_link(site, &p.link)?.id;
    site.catalog.issue_links.retain(|l| l.id != id);
    Ok(StatusCode::NO_CONTENT)
}

// ---- remote links ----

fn remote_json(rest_base: &str, issue_key: &str, l: &RemoteLink) -> Value {
    let mut v = json!({
        "id": l.id,
        "self": format!("{rest_base}/issue/{issue_key}/remotelink/{}", l.id),
        "object": l.object,
    });
    if let Some(o) = v.as_object_mut() {
        if let Some(g) = &l.global_id {
            o.insert("globalId".into(), json!(g));
        }
        if let Some(r) = &l.relationship {
            o.insert("relationship".into(), json!(r));
        }
        if let Some(a) = &l.application {
            o.insert("application".into(), a.clone());
        }
    }
    v
}

/// Validate a `RemoteIssueLinkRequest` into a link (id 0 until stored).
fn remote_from_body(body: &Value) -> ApiResult<RemoteLink> {
    let object = body.get("object").filter(|o| o.is_object());
    let mut errors = std::collections::BTreeMap::new();
    let field = |k: &str| {
        object
            .and_then(|o| o.get(k))
            .and_then(Value::as_str)
            .is_some_and(|s| !s.trim().is_empty())
    };
    if !field("title") {
        errors.insert("title".to_string(), "'title' is required.".to_string());
    }
    if !field("url") {
        errors.insert("url".to_string(), "'url' is required.".to_string());
    }
    if !errors.is_empty() {
        return Err(ApiError::Jira {
            status: StatusCode::BAD_REQUEST,
            messages: vec![],
            errors,
        });
    }
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
    Ok(RemoteLink {
        id: 0,
        global_id: text("globalId"),
        relationship: text("relationship"),
        application: body.get("application").filter(|a| a.is_object()).cloned(),
        object: object.cloned().unwrap_or(Value::Null),
    })
}

pub async fn list_remote_links(
    ctx: Ctx,
    uri: axum::http::Uri,
    Path(p): Path<super::IssuePath>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let q = query_pairs(&raw);
    let global = query_one(&q, "globalId");
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    let issue = site.issue(&p.issue).ok_or_else(ApiError::issue_not_found)?;
    let base = rest_base(&ctx, &uri);
    // With `globalId` the answer is the one link (the spec's oneOf), else a list.
    if let Some(g) = global {
        let link = issue
            .extra
            .remote_links
            .iter()
            .find(|l| l.global_id.as_deref() == Some(g.as_str()))
            .ok_or_else(|| {
                ApiError::jira(
                    StatusCode::NOT_FOUND,
                    format!("No remote link with global id '{g}' exists on this issue."),
                )
            })?;
        ctx.charge(1);
        return Ok(Json(remote_json(&base, &issue.key, link)).into_response());
    }
    let links: Vec<Value> = issue
        .extra
        .remote_links
        .iter()
        .map(|l| remote_json(&base, &issue.key, l))
        .collect();
    ctx.charge(links.len());
    Ok(Json(Value::Array(links)).into_response())
}

/// Create, or update the link with the same `globalId` (200 then, 201 when new).
pub async fn create_remote_link(
    ctx: Ctx,
    uri: axum::http::Uri,
    Path(p): Path<super::IssuePath>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let body = parse_body(&body)?;
    let mut link = remote_from_body(&body)?;
    let base = rest_base(&ctx, &uri);
    let mut world = ctx.state.world();
    let site = world
        .site_mut(&ctx.cloud_id)
        .ok_or(ApiError::SiteNotFound)?;
    let next = site.catalog.next_remote_link_id.max(10000);
    let issue = site
        .issue_mut(&p.issue)
        .ok_or_else(ApiError::issue_not_found)?;
    let key = issue.key.clone();
    let existing = link.global_id.as_ref().and_then(|g| {
        issue
            .extra
            .remote_links
            .iter_mut()
            .find(|l| l.global_id.as_ref() == Some(g))
    });
    let (status, id) = match existing {
        Some(old) => {
            link.id = old.id;
            *old = link;
            (StatusCode::OK, old.id)
        }
        None => {
            link.id = next;
            issue.extra.remote_links.push(link);
            site.catalog.next_remote_link_id = next + 1;
            (StatusCode::CREATED, next)
        }
    };
    Ok((
        status,
        Json(json!({"id": id, "self": format!("{base}/issue/{key}/remotelink/{id}")})),
    )
        .into_response())
}

fn issue_mut<'a>(world: &'a mut World, cloud_id: &str, issue: &str) -> ApiResult<&'a mut Issue> {
    world
        .site_mut(cloud_id)
        .ok_or(ApiError::SiteNotFound)?
        .issue_mut(issue)
        .ok_or_else(ApiError::issue_not_found)
}

fn remote_not_found(id: &str) -> ApiError {
    ApiError::jira(
        StatusCode::NOT_FOUND,
        format!("No remote link with id '{id}' exists on this issue."),
    )
}

pub async fn get_remote_link(
    ctx: Ctx,
    uri: axum::http::Uri,
    Path(p): Path<RemoteLinkPath>,
) -> ApiResult<Json<Value>> {
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    let issue = site.issue(&p.issue).ok_or_else(ApiError::issue_not_found)?;
    let link = issue
        .extra
        .remote_links
        .iter()
        .find(|l| l.id.to_string() == p.link)
        .ok_or_else(|| remote_not_found(&p.link))?;
    ctx.charge(1);
    Ok(Json(remote_json(&rest_base(&ctx, &uri), &issue.key, link)))
}

pub async fn update_remote_link(
    ctx: Ctx,
    Path(p): Path<RemoteLinkPath>,
    body: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    let body = parse_body(&body)?;
    let mut link = remote_from_body(&body)?;
    let mut world = ctx.state.world();
    let issue = issue_mut(&mut world, &ctx.cloud_id, &p.issue)?;
    let old = issue
        .extra
        .remote_links
        .iter_mut()
        .find(|l| l.id.to_string() == p.link)
        .ok_or_else(|| remote_not_found(&p.link))?;
    link.id = old.id;
    *old = link;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete_remote_link(ctx: Ctx, Path(p): Path<RemoteLinkPath>) -> ApiResult<StatusCode> {
    let mut world = ctx.state.world();
    let issue = issue_mut(&mut world, &ctx.cloud_id, &p.issue)?;
    let before = issue.extra.remote_links.len();
    issue
        .extra
        .remote_links
        .retain(|l| l.id.to_string() != p.link);
    if issue.extra.remote_links.len() == before {
        return Err(remote_not_found(&p.link));
    }
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete_remote_link_by_global_id(
    ctx: Ctx,
    Path(p): Path<super::IssuePath>,
    RawQuery(raw): RawQuery,
) -> ApiResult<StatusCode> {
    let q = query_pairs(&raw);
    let global = query_one(&q, "globalId")
        .ok_or_else(|| ApiError::bad_request("The globalId parameter is required."))?;
    let mut world = ctx.state.world();
    let issue = issue_mut(&mut world, &ctx.cloud_id, &p.issue)?;
    let before = issue.extra.remote_links.len();
    issue
        .extra
        .remote_links
        .retain(|l| l.global_id.as_deref() != Some(global.as_str()));
    if issue.extra.remote_links.len() == before {
        return Err(ApiError::jira(
            StatusCode::NOT_FOUND,
            format!("No remote link with global id '{global}' exists on this issue."),
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}
