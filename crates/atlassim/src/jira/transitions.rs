//! Workflows and transitions: `GET|POST /rest/api/3/issue/{key}/transitions`.
//!
//! Every seeded project has the same company-managed workflow (*guess*: a
//! common shape of Jira's default software workflow; ids as Jira numbers
//! transitions, 11, 21, …):
//!
//! | id | name | from | to |
//! |---|---|---|---|
//! | 11 | Start progress | To Do | In Progress |
//! | 21 | Stop progress | In Progress | To Do |
//! | 31 | Request review | In Progress | In Review |
//! | 41 | Back to in progress | In Review | In Progress |
//! | 51 | Done | In Progress, In Review | Done (screen: resolution) |
//! | 61 | Reopen | Done | To Do |
//!
//! "Done" is one-way (only "Reopen" leaves it, and only to "To Do"). Entering
//! a done-category status sets `resolution` (default "Done") and
//! `resolutiondate`; leaving it clears both; a change of status category
//! moves `statuscategorychangedate`.

use axum::extract::{Path, RawQuery};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::render::status as status_json;
use super::{parse_body, query_one, query_pairs, rest_base_for, IssuePath};
use crate::errors::{ApiError, ApiResult};
use crate::gateway::Ctx;
use crate::model::{Issue, Status, Timestamp, Transition, Workflow};
use crate::webhooks::ChangeItem;

pub const TO_DO: &str = "10000";
pub const IN_PROGRESS: &str = "3";
pub const IN_REVIEW: &str = "10002";
pub const DONE: &str = "10001";

/// Jira Cloud's default resolutions (id, name, description).
pub const RESOLUTIONS: &[(&str, &str, &str)] = &[
    ("10000", "Done", "Work has been completed on this issue."),
    ("10001", "Won't Do", "This issue won't be actioned."),
    (
        "10002",
        "Duplicate",
        "The problem is a duplicate of an existing issue.",
    ),
    (
        "10003",
        "Cannot Reproduce",
        "All attempts at reproducing this issue failed.",
    ),
];

fn transition(id: &str, name: &str, from: &[&str], to: &str, has_screen: bool) -> Transition {
    Transition {
        id: id.into(),
        name: name.into(),
        from: from.iter().map(|s| s.to_string()).collect(),
        to: to.into(),
        has_screen,
    }
}

pub fn default_workflow() -> Workflow {
    Workflow {
        statuses: vec![
            crate::seed::status_to_do(),
            crate::seed::status_in_progress(),
            crate::seed::status_in_review(),
            crate::seed::status_done(),
        ],
        transitions: vec![
            transition("11", "Start progress", &[TO_DO], IN_PROGRESS, false),
            transition("21", "Stop progress", &[IN_PROGRESS], TO_DO, false),
            transition("31", "Request review", &[IN_PROGRESS], IN_REVIEW, false),
            transition(
                "41",
                "Back to in progress",
                &[IN_REVIEW],
                IN_PROGRESS,
                false,
            ),
            transition("51", "Done", &[IN_PROGRESS, IN_REVIEW], DONE, true),
            transition("61", "Reopen", &[DONE], TO_DO, false),
        ],
    }
}

pub fn resolution_by(name_or_id: &str) -> Option<(&'static str, &'static str)> {
    RESOLUTIONS
        .iter()
        .find(|(id, name, _)| *id == name_or_id || name.eq_ignore_ascii_case(name_or_id))
        .map(|(id, name, _)| (*id, *name))
}

/// The changelog item of a resolution change (names in, ids looked up).
pub fn resolution_item(from: Option<&str>, to: Option<&str>) -> ChangeItem {
    let id = |n: Option<&str>| n.and_then(resolution_by).map(|(i, _)| i.to_string());
    ChangeItem {
        field: "resolution".into(),
        fieldtype: "jira".into(),
        field_id: "resolution".into(),
        from: id(from),
        from_string: from.map(str::to_string),
        to: id(to),
        to_string: to.map(str::to_string),
    }
}

/// Apply what a status change implies to `new` (whose status is already
/// the target): resolution set or cleared, `resolutiondate`,
/// `statuscategorychangedate`. `resolution` is the one chosen on the
/// transition screen, if any.
pub fn status_effects(old: &Issue, new: &mut Issue, now: Timestamp, resolution: Option<&str>) {
    if old.status == new.status {
        return;
    }
    let was_done = old.status.category_key == "done";
    let is_done = new.status.category_key == "done";
    if is_done {
        if let Some(r) = resolution {
            new.resolution = Some(r.to_string());
        } else if new.resolution.is_none() {
            new.resolution = Some("Done".into());
        }
        if !was_done || new.resolution_date.is_none() {
            new.resolution_date = Some(now);
        }
    } else {
        new.resolution = None;
        new.resolution_date = None;
    }
    if old.status.category_key != new.status.category_key {
        new.status_category_changed = now;
    }
}

/// `resolution` as an issue field (`Resolution` bean), or `null`.
pub fn resolution_json(rest_base: &str, name: Option<&str>) -> Value {
    match name.and_then(resolution_by) {
        Some((id, name)) => {
            let description = RESOLUTIONS
                .iter()
                .find(|r| r.0 == id)
                .map(|r| r.2)
                .unwrap_or_default();
            json!({
                "self": format!("{rest_base}/resolution/{id}"),
                "id": id,
                "name": name,
                "description": description,
            })
        }
        None => Value::Null,
    }
}

fn transition_json(
    rest_base: &str,
    workflow: &Workflow,
    t: &Transition,
    available: bool,
    with_fields: bool,
) -> Value {
    let to = workflow
        .status(&t.to)
        .map(|s| status_json(rest_base, s))
        .unwrap_or(Value::Null);
    let mut v = json!({
        "id": t.id,
        "name": t.name,
        "to": to,
        "hasScreen": t.has_screen,
        "isGlobal": t.from.is_empty(),
        "isInitial": false,
        "isAvailable": available,
        "isConditional": false,
        "isLooped": false,
    });
    if with_fields {
        let mut fields = Map::new();
        if t.has_screen {
            let allowed: Vec<Value> = RESOLUTIONS
                .iter()
                .map(|(_, name, _)| resolution_json(rest_base, Some(name)))
                .collect();
            fields.insert(
                "resolution".into(),
                json!({
                    "required": true,
                    "schema": {"type": "resolution", "system": "resolution"},
                    "name": "Resolution",
                    "key": "resolution",
                    "hasDefaultValue": true,
                    "operations": ["set"],
                    "allowedValues": allowed,
                    "defaultValue": resolution_json(rest_base, Some("Done")),
                }),
            );
        }
        if let Some(o) = v.as_object_mut() {
            o.insert("fields".into(), Value::Object(fields));
        }
    }
    v
}

fn workflow_of<'a>(site: &'a crate::model::Site, issue: &Issue) -> ApiResult<&'a Workflow> {
    site.project_by_id(issue.project_id)
        .map(|p| &p.workflow)
        .ok_or_else(ApiError::issue_not_found)
}

pub async fn get_transitions(
    ctx: Ctx,
    uri: axum::http::Uri,
    Path(p): Path<IssuePath>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = query_pairs(&raw);
    let expand = super::query_all(&q, "expand");
    let with_fields = super::breadth::expands(&expand, "transitions.fields");
    let only = query_one(&q, "transitionId");
    let include_unavailable =
        query_one(&q, "includeUnavailableTransitions").as_deref() == Some("true");
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    let issue = site.issue(&p.issue).ok_or_else(ApiError::issue_not_found)?;
    let workflow = workflow_of(site, issue)?;
    let base = rest_base_for(&ctx, &uri);
    let list: Vec<Value> = workflow
        .transitions
        .iter()
        .filter(|t| only.as_deref().is_none_or(|id| id == t.id))
        .filter_map(|t| {
            let available = t.starts_from(&issue.status.id);
            (available || include_unavailable)
                .then(|| transition_json(&base, workflow, t, available, with_fields))
        })
        .collect();
    ctx.charge(list.len());
    Ok(Json(json!({"expand": "transitions", "transitions": list})))
}

fn bad(message: String) -> ApiError {
    ApiError::bad_request(message)
}

/// `POST …/transitions`: `{"transition":{"id"}, "fields"?:{"resolution"}, "update"?:{"comment":[{"add":{"body"}}]}}` → 204.
pub async fn do_transition(
    ctx: Ctx,
    uri: axum::http::Uri,
    Path(p): Path<IssuePath>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let body = parse_body(&body)?;
    let v2 = ctx.is_v2(&uri);
    let id = match body.get("transition").and_then(|t| t.get("id")) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(bad("Missing 'transition' identifier".into())),
    };
    let fields = match body.get("fields") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            return Err(bad(
                "Can not deserialize 'fields': expected an object.".into()
            ))
        }
    };
    let comment_body = transition_comment(&body, v2)?;
    let now = ctx.state.clock.now();
    let user = ctx.access.account_id.clone();
    let (issue, items, comment) = {
        let mut world = ctx.state.world();
        let site = world
            .site_mut(&ctx.cloud_id)
            .ok_or(ApiError::SiteNotFound)?;
        let old = site
            .issue(&p.issue)
            .ok_or_else(ApiError::issue_not_found)?
            .clone();
        let workflow = workflow_of(site, &old)?.clone();
        let t = workflow
            .from_status(&old.status.id)
            .find(|t| t.id == id)
            .cloned()
            .ok_or_else(|| bad(format!("Transition id '{id}' is not valid for this issue.")))?;
        let mut resolution: Option<&'static str> = None;
        let mut errors = std::collections::BTreeMap::new();
        for (f, v) in &fields {
            if f == "resolution" && t.has_screen {
                let key = v
                    .get("name")
                    .or_else(|| v.get("id"))
                    .and_then(Value::as_str)
                    .or_else(|| v.as_str())
                    .unwrap_or_default();
                match resolution_by(key) {
                    Some((_, name)) => resolution = Some(name),
                    None => {
                        errors.insert(f.clone(), "The resolution selected is invalid.".into());
                    }
                }
            } else {
                errors.insert(
                    f.clone(),
                    format!("Field '{f}' {}", super::service::NOT_ON_SCREEN),
                );
            }
        }
        if !errors.is_empty() {
            return Err(ApiError::Jira {
                status: StatusCode::BAD_REQUEST,
                messages: vec![],
                errors,
            });
        }
        let target: Status = workflow
            .status(&t.to)
            .cloned()
            .ok_or_else(|| bad(format!("Transition id '{id}' is not valid for this issue.")))?;
        let mut new = old.clone();
        new.status = target;
        status_effects(&old, &mut new, now, resolution);
        let users = Vec::new();
        let items = super::service::diff(site, &users, &old, &new);
        let mut stored = if items.is_empty() {
            new
        } else {
            super::changelog::store_change(site, &old, new, &items, &user, now)
        };
        let comment =
            comment_body.map(|b| super::comments::append(site, &mut stored, &user, b, now));
        (stored, items, comment)
    };
    if !items.is_empty() {
        crate::webhooks::fire(
            &ctx.state,
            &ctx.runtime,
            crate::webhooks::IssueEvent {
                cloud_id: ctx.cloud_id.clone(),
                kind: crate::webhooks::IssueEventKind::Updated,
                issue: issue.clone(),
                changelog: items,
                user: user.clone(),
            },
        );
    }
    if let Some(c) = comment {
        super::comments::fire(
            &ctx,
            &issue,
            &c,
            crate::webhooks::IssueEventKind::CommentCreated,
        );
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `update.comment[].add.body` of a transition, validated like a new comment.
fn transition_comment(body: &Value, v2: bool) -> ApiResult<Option<Value>> {
    let Some(ops) = body.get("update").and_then(|u| u.get("comment")) else {
        return Ok(None);
    };
    let add = ops
        .as_array()
        .and_then(|a| a.iter().find_map(|op| op.get("add")))
        .and_then(|a| a.get("body"));
    match add {
        None => Ok(None),
        Some(b) => super::comments::comment_body(Some(b), v2).map(Some),
    }
}
