//! Jira platform REST v3 (and the v2 forms client libraries use).

pub mod breadth;
pub mod catalog;
pub mod changelog;
pub mod comments;
pub mod links;
pub mod meta;
pub mod page_cache;
pub mod render;
pub mod search;
pub mod service;
pub mod transitions;
pub mod users;

use axum::extract::{Path, RawQuery};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

pub use comments::{add_comment, list_comments};
pub use search::{search_jql_get, search_jql_post, search_removed};

use crate::errors::{ApiError, ApiResult};
use crate::gateway::Ctx;
use crate::webhooks::{self, IssueEvent, IssueEventKind};
use render::{issue_bean, FieldSelection};
use service::EditMode;

impl Ctx {
    /// Called through `/rest/api/2/…` (or `/rest/api/latest/…`, which is v2).
    pub fn is_v2(&self, uri: &axum::http::Uri) -> bool {
        is_v2_path(uri.path())
    }
}

/// `/rest/api/latest/…` is served as v2 is (pycontribs `jira` calls it).
pub fn is_v2_path(path: &str) -> bool {
    path.contains("/rest/api/2/") || path.contains("/rest/api/latest/")
}

/// Query pairs in order, repeated keys kept (`fields=a&fields=b`).
pub fn query_pairs(raw: &Option<String>) -> Vec<(String, String)> {
    raw.as_deref()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

pub fn query_all(pairs: &[(String, String)], name: &str) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .collect()
}

pub fn query_one(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

pub fn query_int(pairs: &[(String, String)], name: &str) -> ApiResult<Option<i64>> {
    match query_one(pairs, name) {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
            ApiError::bad_request(format!(
                "The value '{v}' for the parameter '{name}' is invalid."
            ))
        }),
    }
}

pub async fn server_info(ctx: Ctx) -> ApiResult<Json<Value>> {
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    let now = ctx.state.clock.now();
    Ok(Json(json!({
        "baseUrl": site.url,
        "displayUrl": site.url,
        "version": "1001.0.0-SNAPSHOT",
        "versionNumbers": [1001, 0, 0],
        "deploymentType": "Cloud",
        "buildNumber": 100_285,
        "buildDate": "2026-01-01T00:00:00.000+0000",
        "serverTime": render::jira_time(now),
        "scmInfo": "atlassim",
        "serverTitle": "Jira",
        "serverTimeZone": "Etc/UTC",
    })))
}

pub async fn myself(ctx: Ctx) -> ApiResult<Json<Value>> {
    let world = ctx.state.world();
    let user = world
        .user(&ctx.access.account_id)
        .ok_or(ApiError::Unauthorized)?;
    // A user is an identity object: 2 points (docs/atlassian-behaviour.md §4).
    ctx.charge_identity(1);
    Ok(Json(render::user_full(&ctx.rest_base(), user)))
}

pub async fn list_projects(ctx: Ctx, uri: axum::http::Uri) -> ApiResult<Json<Value>> {
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    let base = rest_base_for(&ctx, &uri);
    let mut projects: Vec<&crate::model::Project> = site.projects.iter().collect();
    projects.sort_by(|a, b| a.key.cmp(&b.key));
    ctx.charge(projects.len());
    Ok(Json(Value::Array(
        projects
            .iter()
            .map(|p| render::project_full(&base, &world.users, site, p))
            .collect(),
    )))
}

pub(crate) fn rest_base_for(ctx: &Ctx, uri: &axum::http::Uri) -> String {
    if ctx.is_v2(uri) {
        format!("{}/rest/api/2", ctx.api_base)
    } else {
        ctx.rest_base()
    }
}

pub async fn search_projects(
    ctx: Ctx,
    uri: axum::http::Uri,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = query_pairs(&raw);
    let start_at = query_int(&q, "startAt")?.unwrap_or(0).max(0) as usize;
    // Above 100 falls back to 100 (docs/atlassian-behaviour.md §3).
    let max_results = match query_int(&q, "maxResults")?.unwrap_or(50) {
        n if n <= 0 || n > 100 => 100,
        n => n as usize,
    };
    let text = query_one(&q, "query").map(|s| s.to_lowercase());
    let keys: Vec<String> = query_all(&q, "keys")
        .into_iter()
        .flat_map(|k| k.split(',').map(str::to_string).collect::<Vec<_>>())
        .collect();
    let ids: Vec<String> = query_all(&q, "id")
        .into_iter()
        .flat_map(|k| k.split(',').map(str::to_string).collect::<Vec<_>>())
        .collect();
    let type_key = query_one(&q, "typeKey");
    let order_by = query_one(&q, "orderBy").unwrap_or_else(|| "key".into());

    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    let base = rest_base_for(&ctx, &uri);
    let mut projects: Vec<&crate::model::Project> = site
        .projects
        .iter()
        .filter(|p| p.visible_to(&ctx.access.account_id))
        .filter(|p| {
            text.as_ref().is_none_or(|t| {
                p.key.to_lowercase().contains(t) || p.name.to_lowercase().contains(t)
            })
        })
        .filter(|p| keys.is_empty() || keys.iter().any(|k| k.eq_ignore_ascii_case(&p.key)))
        .filter(|p| ids.is_empty() || ids.iter().any(|i| *i == p.id.to_string()))
        .filter(|p| {
            type_key
                .as_ref()
                .is_none_or(|t| t.split(',').any(|t| t == p.project_type_key))
        })
        .collect();
    let (field, desc) = match order_by.strip_prefix('-') {
        Some(f) => (f.to_string(), true),
        None => (order_by.trim_start_matches('+').to_string(), false),
    };
    projects.sort_by(|a, b| {
        let o = match field.as_str() {
            "name" => a.name.cmp(&b.name),
            "id" => a.id.cmp(&b.id),
            _ => a.key.cmp(&b.key),
        };
        if desc {
            o.reverse()
        } else {
            o
        }
    });
    let total = projects.len();
    let page: Vec<Value> = projects
        .iter()
        .skip(start_at)
        .take(max_results)
        .map(|p| render::project_full(&base, &world.users, site, p))
        .collect();
    let is_last = start_at + page.len() >= total;
    let self_url = format!("{base}/project/search?maxResults={max_results}&startAt={start_at}");
    let mut body = json!({
        "self": self_url,
        "maxResults": max_results,
        "startAt": start_at,
        "total": total,
        "isLast": is_last,
        "values": page,
    });
    if !is_last {
        if let Some(o) = body.as_object_mut() {
            o.insert(
                "nextPage".into(),
                json!(format!(
                    "{base}/project/search?maxResults={max_results}&startAt={}",
                    start_at + max_results
                )),
            );
        }
    }
    ctx.charge(total.min(max_results));
    Ok(Json(body))
}

#[derive(Deserialize)]
pub struct ProjectPath {
    #[serde(rename = "projectIdOrKey")]
    pub project: String,
}

pub async fn get_project(
    ctx: Ctx,
    uri: axum::http::Uri,
    Path(p): Path<ProjectPath>,
) -> ApiResult<Json<Value>> {
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    let project = site
        .project_by_key_or_id(&p.project)
        .filter(|pr| pr.visible_to(&ctx.access.account_id))
        .ok_or_else(|| {
            ApiError::jira(
                StatusCode::NOT_FOUND,
                format!("No project could be found with key '{}'.", p.project),
            )
        })?;
    ctx.charge(1);
    Ok(Json(render::project_full(
        &rest_base_for(&ctx, &uri),
        &world.users,
        site,
        project,
    )))
}

pub async fn list_fields(ctx: Ctx) -> ApiResult<Json<Value>> {
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    let fields = render::field_list(site);
    ctx.charge(fields.len());
    Ok(Json(Value::Array(fields)))
}

#[derive(Deserialize)]
pub struct IssuePath {
    #[serde(rename = "issueIdOrKey")]
    pub issue: String,
}

pub async fn get_issue(
    ctx: Ctx,
    uri: axum::http::Uri,
    Path(p): Path<IssuePath>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = query_pairs(&raw);
    let sel = FieldSelection::parse(&query_all(&q, "fields"), "*all");
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    // A case-mismatched key gets the issue back, no redirect (docs/atlassian-behaviour.md §3).
    let issue = site.issue(&p.issue).ok_or_else(ApiError::issue_not_found)?;
    ctx.charge(1);
    let mut bean = issue_bean(
        &rest_base_for(&ctx, &uri),
        &world.users,
        site,
        issue,
        &sel,
        ctx.is_v2(&uri),
    );
    let expand = query_all(&q, "expand");
    if let Some(o) = bean.as_object_mut() {
        if breadth::expands(&expand, "names") {
            o.insert("names".into(), render::field_names(site));
        }
        // GET issue embeds at most 100 histories, the latest (Jira's cap).
        if breadth::expands(&expand, "changelog") {
            o.insert(
                "changelog".into(),
                changelog::page_of_changelogs(&rest_base_for(&ctx, &uri), &world.users, issue, 100),
            );
        }
    }
    if breadth::expands(&expand, "renderedFields") {
        breadth::add_rendered(&mut bean, &rest_base_for(&ctx, &uri), &world.users, issue);
    }
    Ok(Json(bean))
}

fn object_of(body: &Value, key: &str) -> ApiResult<Map<String, Value>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(_) => Err(ApiError::bad_request(format!(
            "Can not deserialize '{key}': expected an object."
        ))),
    }
}

pub(crate) fn parse_body(body: &[u8]) -> ApiResult<Value> {
    if body.is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "Unexpected character in the request body: {}",
            e.to_string().split(" at ").next().unwrap_or("")
        ))
    })
}

/// Edit an issue, store it, fire `jira:issue_updated`. Shared by REST,
/// agile estimation and the control plane.
#[allow(clippy::too_many_arguments)]
pub fn edit_and_fire(
    ctx_state: &crate::model::AppState,
    runtime: &crate::gateway::Runtime,
    cloud_id: &str,
    id_or_key: &str,
    fields: &Map<String, Value>,
    update: &Map<String, Value>,
    mode: EditMode,
    user: &str,
) -> ApiResult<crate::model::Issue> {
    let now = ctx_state.clock.now();
    let (issue, changes) = {
        let mut world = ctx_state.world();
        let users = world.users.clone();
        let site = world.site_mut(cloud_id).ok_or(ApiError::SiteNotFound)?;
        let old = site
            .issue(id_or_key)
            .ok_or_else(ApiError::issue_not_found)?
            .clone();
        let (mut new, _) = service::apply_fields(site, &users, &old, fields, update, mode)?;
        let comments_changed = breadth::finish_comments(site, &old, &mut new, user, now);
        // A status set through the control plane has a transition's effects.
        transitions::status_effects(&old, &mut new, now, None);
        let changes = service::diff(site, &users, &old, &new);
        if changes.is_empty() {
            if comments_changed {
                new.updated = now.max(old.updated);
                site.put_issue(new.clone());
            }
            (new, changes)
        } else {
            let stored = changelog::store_change(site, &old, new, &changes, user, now);
            (stored, changes)
        }
    };
    if !changes.is_empty() {
        webhooks::fire(
            ctx_state,
            runtime,
            IssueEvent {
                cloud_id: cloud_id.to_string(),
                kind: IssueEventKind::Updated,
                issue: issue.clone(),
                changelog: changes,
                user: user.to_string(),
            },
        );
    }
    Ok(issue)
}

pub async fn edit_issue(
    ctx: Ctx,
    uri: axum::http::Uri,
    Path(p): Path<IssuePath>,
    RawQuery(raw): RawQuery,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let body = parse_body(&body)?;
    let fields = object_of(&body, "fields")?;
    let update = object_of(&body, "update")?;
    let mode = EditMode {
        v2: ctx.is_v2(&uri),
        sim: false,
    };
    let issue = edit_and_fire(
        &ctx.state,
        &ctx.runtime,
        &ctx.cloud_id,
        &p.issue,
        &fields,
        &update,
        mode,
        &ctx.access.account_id,
    )?;
    let q = query_pairs(&raw);
    if query_one(&q, "returnIssue").as_deref() == Some("true") {
        let world = ctx.state.world();
        let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
        let sel = FieldSelection::parse(&[] as &[String], "*all");
        let v = issue_bean(
            &rest_base_for(&ctx, &uri),
            &world.users,
            site,
            &issue,
            &sel,
            mode.v2,
        );
        return Ok((StatusCode::OK, Json(v)).into_response());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn create_issue(
    ctx: Ctx,
    uri: axum::http::Uri,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let body = parse_body(&body)?;
    let fields = object_of(&body, "fields")?;
    let mode = EditMode {
        v2: ctx.is_v2(&uri),
        sim: false,
    };
    let issue = {
        let mut world = ctx.state.world();
        let users = world.users.clone();
        let now = ctx.state.clock.now();
        let site = world
            .site_mut(&ctx.cloud_id)
            .ok_or(ApiError::SiteNotFound)?;
        service::create_issue(site, &users, &fields, &ctx.access.account_id, now, mode)?
    };
    webhooks::fire(
        &ctx.state,
        &ctx.runtime,
        IssueEvent {
            cloud_id: ctx.cloud_id.clone(),
            kind: IssueEventKind::Created,
            issue: issue.clone(),
            changelog: vec![],
            user: ctx.access.account_id.clone(),
        },
    );
    let base = rest_base_for(&ctx, &uri);
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": issue.id.to_string(), "key": issue.key, "self": format!("{base}/issue/{}", issue.id)})),
    )
        .into_response())
}

/// Remove an issue and fire `jira:issue_deleted` (filters see it as it was).
pub fn delete_and_fire(
    state: &crate::model::AppState,
    runtime: &crate::gateway::Runtime,
    cloud_id: &str,
    id_or_key: &str,
    user: &str,
) -> ApiResult<crate::model::Issue> {
    let issue = {
        let mut world = state.world();
        let site = world.site_mut(cloud_id).ok_or(ApiError::SiteNotFound)?;
        let id = site
            .resolve_issue_id(id_or_key)
            .ok_or_else(ApiError::issue_not_found)?;
        site.remove_issue(id)
            .ok_or_else(ApiError::issue_not_found)?
    };
    // Filters are matched against the issue as it was; its project and
    // sprint still exist on the site.
    webhooks::fire(
        state,
        runtime,
        IssueEvent {
            cloud_id: cloud_id.to_string(),
            kind: IssueEventKind::Deleted,
            issue: issue.clone(),
            changelog: vec![],
            user: user.to_string(),
        },
    );
    Ok(issue)
}

pub async fn delete_issue(ctx: Ctx, Path(p): Path<IssuePath>) -> ApiResult<StatusCode> {
    delete_and_fire(
        &ctx.state,
        &ctx.runtime,
        &ctx.cloud_id,
        &p.issue,
        &ctx.access.account_id,
    )?;
    Ok(StatusCode::NO_CONTENT)
}
