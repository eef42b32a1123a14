//! Jira Software agile 1.0: boards, their configuration (how story points
//! are estimated), sprints, sprint issues, backlog, issue estimation.
//! Writes (sprints, moves, rank) and the board/epic issue lists: `writes`.

pub mod writes;
pub use writes::*;

use axum::extract::{Path, RawQuery};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::errors::{ApiError, ApiResult};
use crate::gateway::Ctx;
use crate::jira::render::{issue_bean, FieldSelection};
use crate::jira::service::EditMode;
use crate::jira::{edit_and_fire, query_all, query_int, query_one, query_pairs};
use crate::jql::{self, Compiled, Direction, EvalCtx, OrderField};
use crate::model::{Board, BoardType, Issue, Site, Sprint, SprintState};

pub(crate) fn agile_base(ctx: &Ctx) -> String {
    format!("{}/rest/agile/1.0", ctx.api_base)
}

pub(crate) struct Paging {
    start_at: usize,
    max_results: usize,
}

pub(crate) fn paging(q: &[(String, String)]) -> ApiResult<Paging> {
    Ok(Paging {
        start_at: query_int(q, "startAt")?.unwrap_or(0).max(0) as usize,
        max_results: query_int(q, "maxResults")?.unwrap_or(50).clamp(1, 50) as usize,
    })
}

/// The agile API's offset page (`{maxResults, startAt, total, isLast, values}`),
/// charging the quota one point per object returned.
pub(crate) fn page_bean<T>(
    ctx: &Ctx,
    page: &Paging,
    items: &[T],
    render: impl Fn(&T) -> Value,
) -> Value {
    let values: Vec<Value> = items
        .iter()
        .skip(page.start_at)
        .take(page.max_results)
        .map(render)
        .collect();
    let is_last = page.start_at + values.len() >= items.len();
    ctx.charge(values.len());
    json!({
        "maxResults": page.max_results,
        "startAt": page.start_at,
        "total": items.len(),
        "isLast": is_last,
        "values": values,
    })
}

fn board_json(ctx: &Ctx, site: &Site, b: &Board) -> Value {
    let project = site.project_by_id(b.project_id);
    json!({
        "id": b.id,
        "self": format!("{}/board/{}", agile_base(ctx), b.id),
        "name": b.name,
        "type": b.board_type.as_str(),
        "isPrivate": false,
        "location": {
            "projectId": b.project_id,
            "displayName": project.map(|p| format!("{} ({})", p.name, p.key)).unwrap_or_default(),
            "projectName": project.map(|p| p.name.clone()).unwrap_or_default(),
            "projectKey": project.map(|p| p.key.clone()).unwrap_or_default(),
            "projectTypeKey": project.map(|p| p.project_type_key.clone()).unwrap_or_default(),
            "avatarURI": format!("{}/secure/projectavatar?size=small&pid={}", site.url, b.project_id),
            "name": project.map(|p| format!("{} ({})", p.name, p.key)).unwrap_or_default(),
        }
    })
}

pub(crate) fn sprint_json(ctx: &Ctx, s: &Sprint) -> Value {
    let mut v = json!({
        "id": s.id,
        "self": format!("{}/sprint/{}", agile_base(ctx), s.id),
        "state": s.state.as_str(),
        "name": s.name,
        "originBoardId": s.board_id,
        "goal": s.goal,
    });
    let t =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    if let Some(o) = v.as_object_mut() {
        if let Some(d) = s.start_date {
            o.insert("startDate".into(), json!(t(d)));
        }
        if let Some(d) = s.end_date {
            o.insert("endDate".into(), json!(t(d)));
        }
        if let Some(d) = s.complete_date {
            o.insert("completeDate".into(), json!(t(d)));
        }
    }
    v
}

pub(crate) fn board_not_found(id: &str) -> ApiError {
    ApiError::jira(
        StatusCode::NOT_FOUND,
        format!("Board does not exist or you do not have permission to see it. (board id: {id})"),
    )
}

pub(crate) fn find_board<'a>(site: &'a Site, raw: &str) -> ApiResult<&'a Board> {
    raw.parse::<u64>()
        .ok()
        .and_then(|id| site.board(id))
        .ok_or_else(|| board_not_found(raw))
}

pub async fn list_boards(ctx: Ctx, RawQuery(raw): RawQuery) -> ApiResult<Json<Value>> {
    let q = query_pairs(&raw);
    let page = paging(&q)?;
    let project = query_one(&q, "projectKeyOrId");
    let kind = query_one(&q, "type");
    let name = query_one(&q, "name").map(|n| n.to_lowercase());
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    let project_id = match &project {
        Some(p) => Some(site.project_by_key_or_id(p).map(|p| p.id).ok_or_else(|| {
            ApiError::bad_request(format!("No project could be found with key or id '{p}'."))
        })?),
        None => None,
    };
    let boards: Vec<&Board> = site
        .boards
        .iter()
        .filter(|b| project_id.is_none_or(|p| b.project_id == p))
        .filter(|b| {
            kind.as_ref()
                .is_none_or(|k| k.split(',').any(|k| k == b.board_type.as_str()))
        })
        .filter(|b| {
            name.as_ref()
                .is_none_or(|n| b.name.to_lowercase().contains(n))
        })
        .collect();
    Ok(Json(page_bean(&ctx, &page, &boards, |b| {
        board_json(&ctx, site, b)
    })))
}

#[derive(Deserialize)]
pub struct BoardPath {
    #[serde(rename = "boardId")]
    board: String,
}

#[derive(Deserialize)]
pub struct SprintPath {
    #[serde(rename = "sprintId")]
    sprint: String,
}

pub async fn get_board(ctx: Ctx, Path(p): Path<BoardPath>) -> ApiResult<Json<Value>> {
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    let board = find_board(site, &p.board)?;
    ctx.charge(1);
    Ok(Json(board_json(&ctx, site, board)))
}

pub async fn get_board_configuration(ctx: Ctx, Path(p): Path<BoardPath>) -> ApiResult<Json<Value>> {
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    let board = find_board(site, &p.board)?;
    let project = site.project_by_id(board.project_id);
    let estimation = match &board.estimation_field {
        Some(f) => json!({"type": "field", "field": {"fieldId": f.id, "displayName": f.name}}),
        None => json!({"type": "issueCount"}),
    };
    let rank_id: i64 = site
        .rank_field
        .id
        .trim_start_matches("customfield_")
        .parse()
        .unwrap_or(0);
    let status_ref =
        |id: &str| json!({"id": id, "self": format!("{}/rest/api/3/status/{id}", ctx.api_base)});
    let mut columns = vec![
        json!({"name": "To Do", "statuses": [status_ref("10000")]}),
        json!({"name": "In Progress", "statuses": [status_ref("3")]}),
        json!({"name": "Done", "statuses": [status_ref("10001")]}),
    ];
    if board.board_type == BoardType::Kanban {
        columns.insert(0, json!({"name": "Backlog", "statuses": []}));
    }
    ctx.charge(1);
    Ok(Json(json!({
        "id": board.id,
        "name": board.name,
        "type": board.board_type.as_str(),
        "self": format!("{}/board/{}/configuration", agile_base(&ctx), board.id),
        "location": {"type": "project", "projectKeyOrId": project.map(|p| p.key.clone()).unwrap_or_default()},
        "filter": {"id": (10000 + board.id).to_string(), "self": format!("{}/rest/api/3/filter/{}", ctx.api_base, 10000 + board.id)},
        "columnConfig": {"columns": columns, "constraintType": "issueCount"},
        "estimation": estimation,
        "ranking": {"rankCustomFieldId": rank_id},
    })))
}

pub async fn list_board_sprints(
    ctx: Ctx,
    Path(p): Path<BoardPath>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = query_pairs(&raw);
    let page = paging(&q)?;
    let states: Vec<String> = query_all(&q, "state")
        .into_iter()
        .flat_map(|s| {
            s.split(',')
                .map(|x| x.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .filter(|s| !s.is_empty())
        .collect();
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    let board = find_board(site, &p.board)?;
    if board.board_type != BoardType::Scrum {
        return Err(ApiError::bad_request("The board does not support sprints"));
    }
    let order = |s: &Sprint| match s.state {
        SprintState::Closed => 0,
        SprintState::Active => 1,
        SprintState::Future => 2,
    };
    // Ordered by state (closed, active, future), then position (id).
    let mut sprints: Vec<&Sprint> = site
        .sprints
        .iter()
        .filter(|s| s.board_id == board.id)
        .filter(|s| states.is_empty() || states.iter().any(|x| x == s.state.as_str()))
        .collect();
    sprints.sort_by_key(|s| (order(s), s.id));
    Ok(Json(page_bean(&ctx, &page, &sprints, |s| {
        sprint_json(&ctx, s)
    })))
}

pub async fn get_sprint(ctx: Ctx, Path(p): Path<SprintPath>) -> ApiResult<Json<Value>> {
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    let sprint = p
        .sprint
        .parse::<u64>()
        .ok()
        .and_then(|id| site.sprint(id))
        .ok_or_else(|| {
            ApiError::jira(
                StatusCode::NOT_FOUND,
                "Sprint does not exist or you do not have permission to view it.",
            )
        })?;
    ctx.charge(1);
    Ok(Json(sprint_json(&ctx, sprint)))
}

/// Issues in rank order, optionally narrowed by `jql`, as agile `SearchResults`.
pub(crate) fn issue_page(
    ctx: &Ctx,
    site: &Site,
    users: &[crate::model::User],
    candidates: Vec<&Issue>,
    q: &[(String, String)],
) -> ApiResult<Value> {
    let page = paging(q)?;
    let filter = match query_one(q, "jql").filter(|j| !j.trim().is_empty()) {
        Some(text) => {
            let query = jql::parse(&text)?;
            let eval = EvalCtx {
                site,
                users,
                now: ctx.state.clock.now(),
                current_user: Some(&ctx.access.account_id),
                strict: true,
            };
            Some(Compiled::new(&query, &eval)?)
        }
        None => None,
    };
    let mut hits: Vec<&Issue> = candidates
        .into_iter()
        .filter(|i| filter.as_ref().is_none_or(|f| f.matches(i, site)))
        .collect();
    let total = hits.len();
    let end = page.start_at.saturating_add(page.max_results);
    // The query's ORDER BY wins; otherwise rank order.
    match &filter {
        Some(f) if f.has_order() => f.sort_prefix(&mut hits, site, end),
        _ => crate::jql::sort_prefix(
            &mut hits,
            site,
            &[(OrderField::rank(), Direction::Asc)],
            end,
        ),
    }
    let sel = FieldSelection::parse(&query_all(q, "fields"), "*navigable");
    let base = ctx.rest_base();
    let issues: Vec<Value> = hits
        .iter()
        .skip(page.start_at)
        .take(page.max_results)
        .map(|i| {
            let mut v = issue_bean(&base, users, site, i, &sel, false);
            // Agile answers carry `self` under the platform API as well.
            if let Some(o) = v.as_object_mut() {
                o.entry("key").or_insert(json!(i.key));
                o.entry("self")
                    .or_insert(json!(format!("{base}/issue/{}", i.id)));
            }
            v
        })
        .collect();
    ctx.charge(issues.len());
    Ok(json!({
        "expand": "schema,names",
        "startAt": page.start_at,
        "maxResults": page.max_results,
        "total": total,
        "issues": issues,
    }))
}

pub async fn get_sprint_issues(
    ctx: Ctx,
    Path(p): Path<SprintPath>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = query_pairs(&raw);
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    let sprint_id = p
        .sprint
        .parse::<u64>()
        .ok()
        .filter(|id| site.sprint(*id).is_some())
        .ok_or_else(|| {
            ApiError::jira(
                StatusCode::NOT_FOUND,
                "Sprint does not exist or you do not have permission to view it.",
            )
        })?;
    let candidates: Vec<&Issue> = site
        .issues
        .values()
        .filter(|i| i.sprint_id == Some(sprint_id))
        .collect();
    Ok(Json(issue_page(&ctx, site, &world.users, candidates, &q)?))
}

pub async fn get_backlog(
    ctx: Ctx,
    Path(p): Path<BoardPath>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = query_pairs(&raw);
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    let board = find_board(site, &p.board)?;
    // The backlog: incomplete issues of the board's project in no active or future sprint.
    let open_sprint = |id: Option<u64>| {
        id.and_then(|s| site.sprint(s))
            .is_some_and(|s| s.state != SprintState::Closed)
    };
    let candidates: Vec<&Issue> = site
        .issues
        .values()
        .filter(|i| {
            i.project_id == board.project_id
                && i.status.category_key != "done"
                && !open_sprint(i.sprint_id)
        })
        .collect();
    Ok(Json(issue_page(&ctx, site, &world.users, candidates, &q)?))
}

fn board_for_estimation<'a>(site: &'a Site, q: &[(String, String)]) -> ApiResult<&'a Board> {
    let raw = query_one(q, "boardId")
        .ok_or_else(|| ApiError::bad_request("The boardId parameter is required."))?;
    find_board(site, &raw)
}

fn estimation_value(issue: &Issue, field_id: &str, sp_id: &str) -> Value {
    if field_id == sp_id {
        json!(issue.story_points)
    } else {
        issue
            .custom_fields
            .get(field_id)
            .cloned()
            .unwrap_or(Value::Null)
    }
}

pub async fn get_estimation(
    ctx: Ctx,
    Path(p): Path<crate::jira::IssuePath>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = query_pairs(&raw);
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    let board = board_for_estimation(site, &q)?;
    let issue = site.issue(&p.issue).ok_or_else(ApiError::issue_not_found)?;
    let field = board
        .estimation_field
        .as_ref()
        .ok_or_else(|| ApiError::bad_request("The board does not estimate with a field."))?;
    ctx.charge(1);
    Ok(Json(
        json!({"fieldId": field.id, "value": estimation_value(issue, &field.id, &site.story_points_field.id)}),
    ))
}

pub async fn set_estimation(
    ctx: Ctx,
    Path(p): Path<crate::jira::IssuePath>,
    RawQuery(raw): RawQuery,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let q = query_pairs(&raw);
    let body: Value = serde_json::from_slice(&body)
        .map_err(|_| ApiError::bad_request("Invalid request payload."))?;
    // The spec types `value` as a string ("8.0"); numbers are accepted too.
    let value = match body.get("value") {
        Some(Value::String(s)) if s.trim().is_empty() => Value::Null,
        Some(Value::String(s)) => match s.trim().parse::<f64>() {
            Ok(n) => json!(n),
            Err(_) => {
                return Err(ApiError::bad_request(format!(
                    "The estimation value '{s}' is not a valid number."
                )))
            }
        },
        Some(Value::Number(n)) => Value::Number(n.clone()),
        Some(Value::Null) | None => Value::Null,
        Some(_) => {
            return Err(ApiError::bad_request(
                "The estimation value is not a valid number.",
            ))
        }
    };
    let field_id = {
        let world = ctx.state.world();
        let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
        let board = board_for_estimation(site, &q)?;
        site.issue(&p.issue).ok_or_else(ApiError::issue_not_found)?;
        board
            .estimation_field
            .as_ref()
            .map(|f| f.id.clone())
            .ok_or_else(|| ApiError::bad_request("The board does not estimate with a field."))?
    };
    let mut fields = Map::new();
    fields.insert(field_id.clone(), value);
    // Works even when the field is not on the edit screen (docs/atlassian-behaviour.md §3).
    let issue = edit_and_fire(
        &ctx.state,
        &ctx.runtime,
        &ctx.cloud_id,
        &p.issue,
        &fields,
        &Map::new(),
        EditMode::default(),
        &ctx.access.account_id,
    )?;
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    Ok(Json(
        json!({"fieldId": field_id, "value": estimation_value(&issue, &field_id, &site.story_points_field.id)}),
    ))
}
