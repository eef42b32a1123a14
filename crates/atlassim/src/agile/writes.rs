//! Jira Software writes: create and update sprints (future → active →
//! closed only), move issues to a sprint or the backlog, rank issues; and
//! the issue lists of a board, its epics, and an epic's issues.

use axum::extract::{Path, RawQuery};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{agile_base, find_board, issue_page, page_bean, paging, sprint_json, SprintPath};
use crate::errors::{ApiError, ApiResult};
use crate::gateway::Ctx;
use crate::jira::service::EditMode;
use crate::jira::{edit_and_fire, query_one, query_pairs};
use crate::model::{BoardType, Issue, Site, Sprint, SprintState, Timestamp};

fn body_json(body: &[u8]) -> ApiResult<Map<String, Value>> {
    if body.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(ApiError::bad_request("Invalid request payload.")),
    }
}

fn field_error(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::jira_field(StatusCode::BAD_REQUEST, field, message)
}

/// Sprint dates as clients send them: RFC 3339 or Jira's `…+0000` form.
fn parse_date(field: &str, v: &Value) -> ApiResult<Option<Timestamp>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .or_else(|_| chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
            .map(|d| Some(d.with_timezone(&chrono::Utc)))
            .map_err(|_| field_error(field, format!("Invalid date format: '{s}'."))),
        _ => Err(field_error(field, "Invalid date format.")),
    }
}

fn sprint_not_found() -> ApiError {
    ApiError::jira(
        StatusCode::NOT_FOUND,
        "Sprint does not exist or you do not have permission to view it.",
    )
}

fn sprint_index(site: &Site, raw: &str) -> ApiResult<usize> {
    raw.parse::<u64>()
        .ok()
        .and_then(|id| site.sprints.iter().position(|s| s.id == id))
        .ok_or_else(sprint_not_found)
}

fn check_dates(s: &Sprint) -> ApiResult<()> {
    if let (Some(a), Some(b)) = (s.start_date, s.end_date) {
        if a > b {
            return Err(field_error(
                "startDate",
                "The sprint start date must be before the end date.",
            ));
        }
    }
    Ok(())
}

/// `POST /sprint` `{name, originBoardId, startDate?, endDate?, goal?}` → 201,
/// a future sprint on a scrum board.
pub async fn create_sprint(ctx: Ctx, body: axum::body::Bytes) -> ApiResult<Response> {
    let body = body_json(&body)?;
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| field_error("name", "The sprint name must be specified."))?
        .to_string();
    if name.chars().count() > 30 {
        return Err(field_error(
            "name",
            "The sprint name must not exceed 30 characters.",
        ));
    }
    let board_id = body
        .get("originBoardId")
        .and_then(Value::as_u64)
        .ok_or_else(|| field_error("originBoardId", "The board id must be specified."))?;
    let start_date = parse_date("startDate", body.get("startDate").unwrap_or(&Value::Null))?;
    let end_date = parse_date("endDate", body.get("endDate").unwrap_or(&Value::Null))?;
    let goal = body
        .get("goal")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut world = ctx.state.world();
    let site = world
        .site_mut(&ctx.cloud_id)
        .ok_or(ApiError::SiteNotFound)?;
    let board = find_board(site, &board_id.to_string())?;
    if board.board_type != BoardType::Scrum {
        return Err(ApiError::bad_request("The board does not support sprints"));
    }
    let id = site.sprints.iter().map(|s| s.id).max().unwrap_or(0) + 1;
    let sprint = Sprint {
        id,
        board_id,
        name,
        state: SprintState::Future,
        start_date,
        end_date,
        complete_date: None,
        goal,
    };
    check_dates(&sprint)?;
    site.sprints.push(sprint.clone());
    Ok((StatusCode::CREATED, Json(sprint_json(&ctx, &sprint))).into_response())
}

fn parse_state(v: &Value) -> ApiResult<SprintState> {
    match v.as_str().map(str::to_ascii_lowercase).as_deref() {
        Some("future") => Ok(SprintState::Future),
        Some("active") => Ok(SprintState::Active),
        Some("closed") => Ok(SprintState::Closed),
        _ => Err(field_error(
            "state",
            "The sprint state must be one of: future, active, closed.",
        )),
    }
}

/// Apply an update to a sprint. `full` (PUT): fields left out are cleared
/// (goal, dates) as the spec says; `name` stays required. State changes go
/// future → active → closed only; starting needs both dates and no other
/// active sprint on the board (*guess*: parallel sprints are off, Jira's
/// default); closing stamps `completeDate` and returns the sprint's
/// unfinished issues to the backlog (*guess*: the REST close does what the
/// board's "Complete sprint" does with "move to backlog").
fn update_sprint_in(
    site: &mut Site,
    raw_id: &str,
    body: &Map<String, Value>,
    full: bool,
    now: Timestamp,
) -> ApiResult<(Sprint, Vec<u64>)> {
    let idx = sprint_index(site, raw_id)?;
    let old = site.sprints[idx].clone();
    let mut s = old.clone();
    if old.state == SprintState::Closed {
        return Err(ApiError::bad_request("A closed sprint cannot be updated."));
    }
    match body.get("name") {
        Some(Value::String(n)) if !n.trim().is_empty() => s.name = n.trim().to_string(),
        None if !full => {}
        _ => return Err(field_error("name", "The sprint name must be specified.")),
    }
    match body.get("goal") {
        Some(v) => s.goal = v.as_str().unwrap_or("").to_string(),
        None if full => s.goal = String::new(),
        None => {}
    }
    for (key, slot) in [("startDate", 0), ("endDate", 1)] {
        let value = match body.get(key) {
            Some(v) => parse_date(key, v)?,
            None if full => None,
            None => continue,
        };
        if slot == 0 {
            s.start_date = value;
        } else {
            s.end_date = value;
        }
    }
    if let Some(v) = body.get("state") {
        s.state = parse_state(v)?;
    }
    match (old.state, s.state) {
        (a, b) if a == b => {}
        (SprintState::Future, SprintState::Active) => {
            if s.start_date.is_none() || s.end_date.is_none() {
                return Err(ApiError::bad_request(
                    "The sprint must have a start date and an end date to be started.",
                ));
            }
            let busy = site
                .sprints
                .iter()
                .any(|x| x.board_id == s.board_id && x.state == SprintState::Active);
            if busy {
                return Err(ApiError::bad_request(
                    "The board already has an active sprint; complete it before starting another.",
                ));
            }
        }
        (SprintState::Active, SprintState::Closed) => s.complete_date = Some(now),
        (SprintState::Future, SprintState::Closed) => {
            return Err(ApiError::bad_request(
                "A sprint that has not been started cannot be closed.",
            ))
        }
        _ => {
            return Err(ApiError::bad_request(
                "The sprint state can only change from future to active and from active to closed.",
            ))
        }
    }
    check_dates(&s)?;
    let to_backlog: Vec<u64> = if old.state == SprintState::Active && s.state == SprintState::Closed
    {
        site.issues
            .values()
            .filter(|i| i.sprint_id == Some(s.id) && i.status.category_key != "done")
            .map(|i| i.id)
            .collect()
    } else {
        vec![]
    };
    site.sprints[idx] = s.clone();
    Ok((s, to_backlog))
}

async fn update_sprint_common(
    ctx: Ctx,
    p: SprintPath,
    body: axum::body::Bytes,
    full: bool,
) -> ApiResult<Json<Value>> {
    let body = body_json(&body)?;
    let now = ctx.state.clock.now();
    let (sprint, to_backlog) = {
        let mut world = ctx.state.world();
        let site = world
            .site_mut(&ctx.cloud_id)
            .ok_or(ApiError::SiteNotFound)?;
        update_sprint_in(site, &p.sprint, &body, full, now)?
    };
    for id in to_backlog {
        set_sprint(&ctx, &id.to_string(), None)?;
    }
    Ok(Json(sprint_json(&ctx, &sprint)))
}

/// `POST /sprint/{id}`: a partial update.
pub async fn partially_update_sprint(
    ctx: Ctx,
    Path(p): Path<SprintPath>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    update_sprint_common(ctx, p, body, false).await
}

/// `PUT /sprint/{id}`: a full update.
pub async fn update_sprint(
    ctx: Ctx,
    Path(p): Path<SprintPath>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    update_sprint_common(ctx, p, body, true).await
}

/// Set an issue's sprint through the one edit path (changelog, `updated`, webhook).
fn set_sprint(ctx: &Ctx, issue: &str, sprint: Option<u64>) -> ApiResult<Issue> {
    let field = ctx
        .state
        .world()
        .site(&ctx.cloud_id)
        .map(|s| s.sprint_field.id.clone())
        .ok_or(ApiError::SiteNotFound)?;
    let mut fields = Map::new();
    fields.insert(field, sprint.map(|s| json!(s)).unwrap_or(Value::Null));
    edit_and_fire(
        &ctx.state,
        &ctx.runtime,
        &ctx.cloud_id,
        issue,
        &fields,
        &Map::new(),
        EditMode::default(),
        &ctx.access.account_id,
    )
}

/// `issues` of a move or rank body: 1 to 50 keys or ids, all existing.
fn issue_list(site: &Site, body: &Map<String, Value>) -> ApiResult<Vec<u64>> {
    let items = body
        .get("issues")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| field_error("issues", "At least one issue must be given."))?;
    if items.len() > 50 {
        return Err(field_error(
            "issues",
            "At most 50 issues can be moved or ranked at once.",
        ));
    }
    items
        .iter()
        .map(|v| {
            let raw = v
                .as_str()
                .map(str::to_string)
                .or_else(|| v.as_u64().map(|n| n.to_string()))
                .unwrap_or_default();
            site.resolve_issue_id(&raw)
                .ok_or_else(|| ApiError::bad_request(format!("Issue '{raw}' does not exist.")))
        })
        .collect()
}

/// `POST /sprint/{id}/issue` `{issues, rankBeforeIssue?, rankAfterIssue?}` → 204.
pub async fn move_to_sprint(
    ctx: Ctx,
    Path(p): Path<SprintPath>,
    body: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    let body = body_json(&body)?;
    let (sprint_id, ids) = {
        let world = ctx.state.world();
        let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
        let sprint = &site.sprints[sprint_index(site, &p.sprint)?];
        if sprint.state == SprintState::Closed {
            return Err(ApiError::bad_request(
                "Issues cannot be moved to a closed sprint.",
            ));
        }
        (sprint.id, issue_list(site, &body)?)
    };
    if body.contains_key("rankBeforeIssue") || body.contains_key("rankAfterIssue") {
        let mut world = ctx.state.world();
        let site = world
            .site_mut(&ctx.cloud_id)
            .ok_or(ApiError::SiteNotFound)?;
        let anchor = rank_anchor(site, &body)?;
        rank_issues(site, &ids, anchor).map_err(|(_, e)| ApiError::bad_request(e))?;
    }
    for id in ids {
        set_sprint(&ctx, &id.to_string(), Some(sprint_id))?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /backlog/issue` `{issues}` → 204: out of any active or future
/// sprint (an issue of a closed sprint only is already in the backlog).
pub async fn move_to_backlog(ctx: Ctx, body: axum::body::Bytes) -> ApiResult<StatusCode> {
    let body = body_json(&body)?;
    let moves: Vec<u64> = {
        let world = ctx.state.world();
        let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
        let ids = issue_list(site, &body)?;
        ids.into_iter()
            .filter(|id| {
                site.issues
                    .get(id)
                    .and_then(|i| i.sprint_id)
                    .and_then(|s| site.sprint(s))
                    .is_some_and(|s| s.state != SprintState::Closed)
            })
            .collect()
    };
    for id in moves {
        set_sprint(&ctx, &id.to_string(), None)?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Where to rank: before (true) or after (false) which issue.
fn rank_anchor(site: &Site, body: &Map<String, Value>) -> ApiResult<(bool, u64)> {
    let get = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
    let (before, raw) = match (get("rankBeforeIssue"), get("rankAfterIssue")) {
        (Some(b), None) => (true, b),
        (None, Some(a)) => (false, a),
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "Only one of rankBeforeIssue and rankAfterIssue can be given.",
            ))
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "One of rankBeforeIssue and rankAfterIssue must be given.",
            ))
        }
    };
    let id = site
        .resolve_issue_id(&raw)
        .ok_or_else(|| ApiError::bad_request(format!("Issue '{raw}' does not exist.")))?;
    Ok((before, id))
}

fn rank_number(rank: &str) -> Option<u64> {
    let digits = rank.strip_prefix("0|i")?.strip_suffix(':')?;
    u64::from_str_radix(digits, 36).ok()
}

/// Move `ids` (in that order) right before or after the anchor in the
/// site-wide rank order. The moved issues take ranks strictly between their
/// new neighbours; when no room is left every issue of the site is
/// re-spaced `RANK_STEP` apart in its current order (*guess*: Jira's
/// LexoRank rebalancing, which also rewrites other issues' rank values but
/// never their relative order). Ranking changes neither `updated` nor the
/// changelog (*guess*). `Err((issue id, message))` names the issue at fault.
fn rank_issues(site: &mut Site, ids: &[u64], anchor: (bool, u64)) -> Result<(), (u64, String)> {
    let (before, anchor_id) = anchor;
    if let Some(bad) = ids.iter().find(|i| **i == anchor_id) {
        return Err((*bad, "An issue cannot be ranked relative to itself.".into()));
    }
    let mut order: Vec<(String, u64)> = site
        .issues
        .values()
        .filter(|i| !ids.contains(&i.id))
        .map(|i| (i.rank.clone(), i.id))
        .collect();
    order.sort();
    let pos = order
        .iter()
        .position(|(_, id)| *id == anchor_id)
        .ok_or((anchor_id, "The anchor issue does not exist.".to_string()))?;
    let at = if before { pos } else { pos + 1 };
    let lo = at
        .checked_sub(1)
        .and_then(|p| order.get(p))
        .and_then(|(r, _)| rank_number(r));
    let hi = order.get(at).and_then(|(r, _)| rank_number(r));
    let k = ids.len() as u64;
    let lo_v = lo.unwrap_or(0);
    let hi_v = hi.unwrap_or(lo_v + crate::seed::RANK_STEP * (k + 1));
    if hi_v > lo_v && hi_v - lo_v > k {
        for (j, id) in ids.iter().enumerate() {
            let v = lo_v + (hi_v - lo_v) * (j as u64 + 1) / (k + 1);
            if let Some(i) = site.issues.get_mut(id) {
                i.rank = crate::seed::rank_string(v);
            }
        }
        return Ok(());
    }
    let mut all: Vec<u64> = order.iter().map(|(_, id)| *id).collect();
    for (j, id) in ids.iter().enumerate() {
        all.insert(at + j, *id);
    }
    for (n, id) in all.iter().enumerate() {
        if let Some(i) = site.issues.get_mut(id) {
            i.rank = crate::seed::rank_string(
                crate::seed::RANK_STEP * 1000 + crate::seed::RANK_STEP * n as u64,
            );
        }
    }
    Ok(())
}

/// `PUT /issue/rank` `{issues, rankBeforeIssue | rankAfterIssue}` → 204,
/// or 207 with one entry per issue when some could not be ranked.
pub async fn rank(ctx: Ctx, body: axum::body::Bytes) -> ApiResult<Response> {
    let body = body_json(&body)?;
    let mut world = ctx.state.world();
    let site = world
        .site_mut(&ctx.cloud_id)
        .ok_or(ApiError::SiteNotFound)?;
    let ids = issue_list(site, &body)?;
    let anchor = rank_anchor(site, &body)?;
    match rank_issues(site, &ids, anchor) {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err((bad, message)) => {
            let entries: Vec<Value> = ids
                .iter()
                .map(|id| {
                    let key = site
                        .issues
                        .get(id)
                        .map(|i| i.key.clone())
                        .unwrap_or_default();
                    if *id == bad {
                        json!({"issueId": id, "issueKey": key, "status": 400, "errors": [message]})
                    } else {
                        json!({"issueId": id, "issueKey": key, "status": 200})
                    }
                })
                .collect();
            Ok((
                StatusCode::MULTI_STATUS,
                Json(json!({ "entries": entries })),
            )
                .into_response())
        }
    }
}

#[derive(Deserialize)]
pub struct BoardIdPath {
    #[serde(rename = "boardId")]
    board: String,
}

#[derive(Deserialize)]
pub struct EpicPath {
    #[serde(rename = "epicIdOrKey")]
    epic: String,
}

/// `GET /board/{id}/issue`: every issue of the board's filter (its
/// project), in rank order unless the `jql` orders them.
pub async fn board_issues(
    ctx: Ctx,
    Path(p): Path<BoardIdPath>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = query_pairs(&raw);
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    let board = find_board(site, &p.board)?;
    let candidates: Vec<&Issue> = site
        .issues
        .values()
        .filter(|i| i.project_id == board.project_id)
        .collect();
    Ok(Json(issue_page(&ctx, site, &world.users, candidates, &q)?))
}

/// `GET /board/{id}/epic`: the epics of the board's project (`done=true|false`
/// filters on the epic's status category).
pub async fn board_epics(
    ctx: Ctx,
    Path(p): Path<BoardIdPath>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = query_pairs(&raw);
    let page = paging(&q)?;
    let done = query_one(&q, "done");
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    let board = find_board(site, &p.board)?;
    let epics: Vec<&Issue> = site
        .issues
        .values()
        .filter(|i| i.project_id == board.project_id && i.issue_type.name == "Epic")
        .filter(|i| match done.as_deref() {
            Some("true") => i.status.category_key == "done",
            Some("false") => i.status.category_key != "done",
            _ => true,
        })
        .collect();
    let base = agile_base(&ctx);
    Ok(Json(page_bean(&ctx, &page, &epics, |e| {
        json!({
            "id": e.id,
            "key": e.key,
            "self": format!("{base}/epic/{}", e.id),
            "name": e.summary,
            "summary": e.summary,
            "color": {"key": format!("color_{}", e.id % 14 + 1)},
            "done": e.status.category_key == "done",
        })
    })))
}

/// `GET /epic/{idOrKey}/issue`: the issues whose parent is the epic.
pub async fn epic_issues(
    ctx: Ctx,
    Path(p): Path<EpicPath>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = query_pairs(&raw);
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    let epic = site
        .issue(&p.epic)
        .filter(|i| i.issue_type.name == "Epic")
        .ok_or_else(|| {
            ApiError::jira(
                StatusCode::NOT_FOUND,
                format!(
                    "Epic '{}' does not exist or you do not have permission to see it.",
                    p.epic
                ),
            )
        })?;
    let candidates: Vec<&Issue> = site
        .issues
        .values()
        .filter(|i| i.extra.parent_id == Some(epic.id))
        .collect();
    Ok(Json(issue_page(&ctx, site, &world.users, candidates, &q)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_numbers_round_trip() {
        assert_eq!(rank_number(&crate::seed::rank_string(12345)), Some(12345));
        assert_eq!(rank_number("garbage"), None);
    }
}
