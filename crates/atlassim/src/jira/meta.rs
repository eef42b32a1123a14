//! Create and edit metadata (`createmeta/{project}/issuetypes[/{id}]`,
//! `issue/{key}/editmeta`) and `search/approximate-count`.

use axum::extract::{Path, RawQuery};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::catalog::{component_ref, issue_types, priority_full, version_ref};
use super::render;
use super::{parse_body, query_int, query_pairs};
use crate::errors::{ApiError, ApiResult};
use crate::gateway::Ctx;
use crate::jql::{self, Compiled, EvalCtx, JqlError};
use crate::model::{IssueType, Project, Site};

/// One field of a create or edit screen.
struct FieldMeta {
    id: String,
    name: String,
    required: bool,
    schema: Value,
    operations: &'static [&'static str],
    allowed: Option<Vec<Value>>,
}

fn system(ty: &str, id: &str) -> Value {
    json!({"type": ty, "system": id})
}

/// The screen of `project` for `issue_type`: the fields `PUT`/`POST
/// /issue` accept there. *Guess*: every seeded project uses one screen for
/// create and edit, with the story points and sprint fields on it.
fn screen(
    rest_base: &str,
    site: &Site,
    project: &Project,
    t: &IssueType,
    create: bool,
) -> Vec<FieldMeta> {
    let set: &'static [&'static str] = &["set"];
    let multi: &'static [&'static str] = &["add", "set", "remove"];
    let f = |id: &str, name: &str, required: bool, schema: Value, ops, allowed| FieldMeta {
        id: id.into(),
        name: name.into(),
        required,
        schema,
        operations: ops,
        allowed,
    };
    let mut v = vec![
        f(
            "summary",
            "Summary",
            true,
            system("string", "summary"),
            set,
            None,
        ),
        f(
            "issuetype",
            "Issue Type",
            true,
            system("issuetype", "issuetype"),
            &[],
            Some(
                issue_types()
                    .iter()
                    .filter(|x| x.subtask == t.subtask)
                    .map(|x| render::issue_type(rest_base, x))
                    .collect(),
            ),
        ),
        f(
            "project",
            "Project",
            true,
            system("project", "project"),
            set,
            Some(vec![render::project_summary(rest_base, project)]),
        ),
        f(
            "description",
            "Description",
            false,
            system("string", "description"),
            set,
            None,
        ),
        f(
            "priority",
            "Priority",
            false,
            system("priority", "priority"),
            set,
            Some(
                (0..render::PRIORITIES.len())
                    .map(|i| priority_full(rest_base, i))
                    .collect(),
            ),
        ),
        f(
            "labels",
            "Labels",
            false,
            json!({"type": "array", "items": "string", "system": "labels"}),
            multi,
            None,
        ),
        f(
            "assignee",
            "Assignee",
            false,
            system("user", "assignee"),
            set,
            None,
        ),
        f(
            "reporter",
            "Reporter",
            !create,
            system("user", "reporter"),
            set,
            None,
        ),
        f(
            "duedate",
            "Due date",
            false,
            system("date", "duedate"),
            set,
            None,
        ),
        f(
            "components",
            "Components",
            false,
            json!({"type": "array", "items": "component", "system": "components"}),
            multi,
            Some(
                site.catalog
                    .components
                    .iter()
                    .filter(|c| c.project_id == project.id)
                    .map(|c| component_ref(rest_base, c))
                    .collect(),
            ),
        ),
        f(
            "fixVersions",
            "Fix versions",
            false,
            json!({"type": "array", "items": "version", "system": "fixVersions"}),
            multi,
            Some(
                site.catalog
                    .versions
                    .iter()
                    .filter(|x| x.project_id == project.id && !x.archived)
                    .map(|x| version_ref(rest_base, x))
                    .collect(),
            ),
        ),
    ];
    if t.name != "Epic" {
        v.push(f(
            "parent",
            "Parent",
            t.subtask,
            system("issuelink", "parent"),
            set,
            None,
        ));
    }
    if !t.subtask {
        let sp = &site.story_points_field;
        v.push(f(
            &sp.id,
            &sp.name,
            false,
            json!({"type": "number", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:float",
                   "customId": custom_id(&sp.id)}),
            set,
            None,
        ));
        let sprint = &site.sprint_field;
        v.push(f(
            &sprint.id,
            &sprint.name,
            false,
            json!({"type": "array", "items": "json", "custom": "com.pyxis.greenhopper.jira:gh-sprint",
                   "customId": custom_id(&sprint.id)}),
            set,
            None,
        ));
    }
    if !create {
        v.push(f(
            "comment",
            "Comment",
            false,
            system("comments-page", "comment"),
            &["add", "edit", "remove"],
            None,
        ));
    }
    v
}

fn custom_id(id: &str) -> i64 {
    id.trim_start_matches("customfield_").parse().unwrap_or(0)
}

fn meta_json(m: &FieldMeta, with_field_id: bool) -> Value {
    let mut v = json!({
        "key": m.id,
        "name": m.name,
        "required": m.required,
        "schema": m.schema,
        "operations": m.operations,
        "hasDefaultValue": m.id == "priority",
    });
    if let Some(o) = v.as_object_mut() {
        if with_field_id {
            o.insert("fieldId".into(), json!(m.id));
        }
        if let Some(a) = &m.allowed {
            o.insert("allowedValues".into(), json!(a));
        }
        if m.id == "priority" {
            o.insert("defaultValue".into(), json!({"id": "3", "name": "Medium"}));
        }
    }
    v
}

use super::rest_base_for as rest_base;

/// `startAt`/`maxResults` of the createmeta pages (default 50, at most 200).
fn meta_paging(q: &[(String, String)]) -> ApiResult<(usize, usize)> {
    let start_at = query_int(q, "startAt")?.unwrap_or(0).max(0) as usize;
    let max = query_int(q, "maxResults")?.unwrap_or(50);
    if max > 200 {
        return Err(ApiError::bad_request(
            "Parameter 'maxResults' must not exceed the limit '200'",
        ));
    }
    Ok((start_at, max.max(1) as usize))
}

/// An unknown project: 400, the only client error the spec lists here (*guess* at the wording).
fn createmeta_project<'a>(site: &'a Site, key: &str) -> ApiResult<&'a Project> {
    site.project_by_key_or_id(key).ok_or_else(|| {
        ApiError::bad_request(format!("No project could be found with key '{key}'."))
    })
}

#[derive(Deserialize)]
pub struct CreateMetaPath {
    #[serde(rename = "projectIdOrKey")]
    project: String,
}

#[derive(Deserialize)]
pub struct CreateMetaTypePath {
    #[serde(rename = "projectIdOrKey")]
    project: String,
    #[serde(rename = "issueTypeId")]
    issue_type: String,
}

pub async fn createmeta_issue_types(
    ctx: Ctx,
    uri: axum::http::Uri,
    Path(p): Path<CreateMetaPath>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = query_pairs(&raw);
    let (start_at, max_results) = meta_paging(&q)?;
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    createmeta_project(site, &p.project)?;
    let base = rest_base(&ctx, &uri);
    let types = issue_types();
    let page: Vec<Value> = types
        .iter()
        .skip(start_at)
        .take(max_results)
        .map(|t| render::issue_type(&base, t))
        .collect();
    ctx.charge(page.len());
    Ok(Json(json!({
        "issueTypes": page, "startAt": start_at, "maxResults": max_results, "total": types.len(),
    })))
}

pub async fn createmeta_fields(
    ctx: Ctx,
    uri: axum::http::Uri,
    Path(p): Path<CreateMetaTypePath>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = query_pairs(&raw);
    let (start_at, max_results) = meta_paging(&q)?;
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    let project = createmeta_project(site, &p.project)?;
    let t = issue_types()
        .into_iter()
        .find(|t| t.id == p.issue_type)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "The issue type with id '{}' does not exist or is not valid for this project.",
                p.issue_type
            ))
        })?;
    let base = rest_base(&ctx, &uri);
    let fields = screen(&base, site, project, &t, true);
    let page: Vec<Value> = fields
        .iter()
        .skip(start_at)
        .take(max_results)
        .map(|m| meta_json(m, true))
        .collect();
    ctx.charge(page.len());
    Ok(Json(json!({
        "fields": page, "startAt": start_at, "maxResults": max_results, "total": fields.len(),
    })))
}

pub async fn editmeta(
    ctx: Ctx,
    uri: axum::http::Uri,
    Path(p): Path<super::IssuePath>,
) -> ApiResult<Json<Value>> {
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    let issue = site.issue(&p.issue).ok_or_else(ApiError::issue_not_found)?;
    let project = site
        .project_by_id(issue.project_id)
        .ok_or_else(ApiError::issue_not_found)?;
    let base = rest_base(&ctx, &uri);
    let mut fields = serde_json::Map::new();
    for m in screen(&base, site, project, &issue.issue_type, false) {
        // The project cannot change through edit (that is a move).
        if m.id != "project" {
            fields.insert(m.id.clone(), meta_json(&m, false));
        }
    }
    ctx.charge(1);
    Ok(Json(json!({ "fields": fields })))
}

/// `POST /search/approximate-count` `{jql}` → `{count}`; the JQL must be
/// bounded as on `/search/jql` (*guess*: same validation). Costs 1 point.
pub async fn approximate_count(ctx: Ctx, body: axum::body::Bytes) -> ApiResult<Json<Value>> {
    let body = parse_body(&body)?;
    let text = match body.get("jql") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(ApiError::bad_request("Invalid request payload.")),
    };
    let query = jql::parse(&text)?;
    let now = ctx.state.clock.now();
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    let eval = EvalCtx {
        site,
        users: &world.users,
        now,
        current_user: Some(&ctx.access.account_id),
        strict: true,
    };
    let compiled = Compiled::new(&query, &eval)?;
    if compiled.is_unbounded() {
        return Err(ApiError::Jql(JqlError::validation(jql::UNBOUNDED_MESSAGE)));
    }
    let count = site
        .issues
        .values()
        .filter(|i| compiled.matches(i, site))
        .count();
    Ok(Json(json!({ "count": count })))
}
