//! The site's reference data — issue types, statuses, status categories,
//! priorities, resolutions, link types, project components and versions —
//! its seeding (epics, sub-tasks, components, versions, due dates, links),
//! and the read routes that list it.

use axum::extract::{Path, RawQuery};
use axum::http::StatusCode;
use axum::Json;
use chrono::NaiveDate;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use super::render::{self, user_details};
use super::{query_int, query_one, query_pairs, ProjectPath};
use crate::errors::{ApiError, ApiResult};
use crate::gateway::Ctx;
use crate::model::{
    Component, IssueLinkRecord, IssueType, Project, Site, Status, Timestamp, User, Version,
};

pub fn issue_type_epic() -> IssueType {
    IssueType {
        id: "10000".into(),
        name: "Epic".into(),
        subtask: false,
    }
}

pub fn issue_type_subtask() -> IssueType {
    IssueType {
        id: "10003".into(),
        name: "Subtask".into(),
        subtask: true,
    }
}

/// Every issue type a site offers (Jira Cloud's software defaults; the
/// sub-task type is called "Subtask" in Cloud).
pub fn issue_types() -> Vec<IssueType> {
    vec![
        issue_type_epic(),
        crate::seed::issue_type_story(),
        crate::seed::issue_type_bug(),
        crate::seed::issue_type_task(),
        issue_type_subtask(),
    ]
}

/// The site's statuses: the seeded workflow's, plus any other status an
/// issue carries (set through the control plane).
pub fn site_statuses(site: &Site) -> Vec<Status> {
    let mut v = vec![
        crate::seed::status_to_do(),
        crate::seed::status_in_progress(),
        crate::seed::status_done(),
    ];
    for i in site.issues.values() {
        if !v.iter().any(|s| s.id == i.status.id) {
            v.push(i.status.clone());
        }
    }
    v
}

/// (id, key, name, colour) of Jira's four status categories.
pub const STATUS_CATEGORIES: &[(u64, &str, &str, &str)] = &[
    (1, "undefined", "No Category", "medium-gray"),
    (2, "new", "To Do", "blue-gray"),
    (4, "indeterminate", "In Progress", "yellow"),
    (3, "done", "Done", "green"),
];

/// (id, name, description) of Jira Cloud's default resolutions; "Done" is the default.
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
        "This issue could not be reproduced.",
    ),
];

/// (id, name, inward, outward) of Jira Cloud's default issue link types.
pub const LINK_TYPES: &[(&str, &str, &str, &str)] = &[
    ("10000", "Blocks", "is blocked by", "blocks"),
    ("10001", "Cloners", "is cloned by", "clones"),
    ("10002", "Duplicate", "is duplicated by", "duplicates"),
    ("10003", "Relates", "relates to", "relates to"),
];

const PRIORITY_COLOURS: &[&str] = &["#d04437", "#f15C75", "#f79232", "#707070", "#999999"];

pub fn link_type_json(rest_base: &str, id: &str) -> Value {
    let (id, name, inward, outward) = LINK_TYPES
        .iter()
        .find(|t| t.0 == id)
        .copied()
        .unwrap_or(LINK_TYPES[3]);
    json!({"id": id, "name": name, "inward": inward, "outward": outward,
           "self": format!("{rest_base}/issueLinkType/{id}")})
}

pub fn component_json(rest_base: &str, users: &[User], site: &Site, c: &Component) -> Value {
    let mut v = json!({
        "self": format!("{rest_base}/component/{}", c.id),
        "id": c.id.to_string(),
        "name": c.name,
        "description": c.description,
        "assigneeType": "PROJECT_DEFAULT",
        "realAssigneeType": "PROJECT_DEFAULT",
        "isAssigneeTypeValid": false,
        "project": site.project_by_id(c.project_id).map(|p| p.key.clone()).unwrap_or_default(),
        "projectId": c.project_id,
    });
    if let (Some(lead), Some(o)) = (&c.lead_account_id, v.as_object_mut()) {
        o.insert("lead".into(), user_details(rest_base, users, lead));
        o.insert("leadAccountId".into(), json!(lead));
    }
    v
}

/// A component as an issue's `components` field shows it.
pub fn component_ref(rest_base: &str, c: &Component) -> Value {
    json!({"self": format!("{rest_base}/component/{}", c.id), "id": c.id.to_string(),
           "name": c.name, "description": c.description})
}

pub fn version_json(rest_base: &str, v: &Version, today: NaiveDate) -> Value {
    let mut out = json!({
        "self": format!("{rest_base}/version/{}", v.id),
        "id": v.id.to_string(),
        "name": v.name,
        "description": v.description,
        "archived": v.archived,
        "released": v.released,
        "projectId": v.project_id,
    });
    if let Some(o) = out.as_object_mut() {
        if let Some(d) = v.start_date {
            o.insert("startDate".into(), json!(d.to_string()));
            o.insert(
                "userStartDate".into(),
                json!(d.format("%d/%b/%y").to_string()),
            );
        }
        if let Some(d) = v.release_date {
            o.insert("releaseDate".into(), json!(d.to_string()));
            o.insert(
                "userReleaseDate".into(),
                json!(d.format("%d/%b/%y").to_string()),
            );
            if !v.released {
                o.insert("overdue".into(), json!(d < today));
            }
        }
    }
    out
}

/// A version as an issue's `fixVersions` field shows it.
pub fn version_ref(rest_base: &str, v: &Version) -> Value {
    let mut out = json!({"self": format!("{rest_base}/version/{}", v.id), "id": v.id.to_string(),
        "name": v.name, "description": v.description, "archived": v.archived, "released": v.released});
    if let (Some(d), Some(o)) = (v.release_date, out.as_object_mut()) {
        o.insert("releaseDate".into(), json!(d.to_string()));
    }
    out
}

pub fn priority_full(rest_base: &str, index: usize) -> Value {
    let (id, name) = render::PRIORITIES[index];
    let mut v = render::priority(rest_base, name);
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "statusColor".into(),
            json!(PRIORITY_COLOURS.get(index).copied().unwrap_or("#707070")),
        );
        o.insert(
            "description".into(),
            json!(format!("{name} priority ({id})")),
        );
        o.insert("isDefault".into(), json!(name == "Medium"));
    }
    v
}

fn category_json(rest_base: &str, c: &(u64, &str, &str, &str)) -> Value {
    json!({"self": format!("{rest_base}/statuscategory/{}", c.0), "id": c.0, "key": c.1,
           "name": c.2, "colorName": c.3})
}

use super::rest_base_for as rest_base;

fn project_or_404<'a>(site: &'a Site, key: &str) -> ApiResult<&'a Project> {
    site.project_by_key_or_id(key).ok_or_else(|| {
        ApiError::jira(
            StatusCode::NOT_FOUND,
            format!("No project could be found with key '{key}'."),
        )
    })
}

pub async fn list_priorities(ctx: Ctx, uri: axum::http::Uri) -> ApiResult<Json<Value>> {
    let base = rest_base(&ctx, &uri);
    ctx.charge(render::PRIORITIES.len());
    Ok(Json(Value::Array(
        (0..render::PRIORITIES.len())
            .map(|i| priority_full(&base, i))
            .collect(),
    )))
}

pub async fn list_statuses(ctx: Ctx, uri: axum::http::Uri) -> ApiResult<Json<Value>> {
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    let base = rest_base(&ctx, &uri);
    let statuses = site_statuses(site);
    ctx.charge(statuses.len());
    Ok(Json(Value::Array(
        statuses.iter().map(|s| render::status(&base, s)).collect(),
    )))
}

pub async fn list_status_categories(ctx: Ctx, uri: axum::http::Uri) -> ApiResult<Json<Value>> {
    let base = rest_base(&ctx, &uri);
    ctx.charge(STATUS_CATEGORIES.len());
    Ok(Json(Value::Array(
        STATUS_CATEGORIES
            .iter()
            .map(|c| category_json(&base, c))
            .collect(),
    )))
}

pub async fn search_resolutions(
    ctx: Ctx,
    uri: axum::http::Uri,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = query_pairs(&raw);
    let start_at = query_int(&q, "startAt")?.unwrap_or(0).max(0) as usize;
    let max_results = query_int(&q, "maxResults")?.unwrap_or(50).clamp(1, 50) as usize;
    let ids: Vec<String> = super::query_all(&q, "id")
        .iter()
        .flat_map(|v| v.split(',').map(str::to_string).collect::<Vec<_>>())
        .collect();
    let only_default = query_one(&q, "onlyDefault").as_deref() == Some("true");
    let base = rest_base(&ctx, &uri);
    let all: Vec<&(&str, &str, &str)> = RESOLUTIONS
        .iter()
        .filter(|r| ids.is_empty() || ids.iter().any(|i| i == r.0))
        .filter(|r| !only_default || r.1 == "Done")
        .collect();
    let values: Vec<Value> = all
        .iter()
        .skip(start_at)
        .take(max_results)
        .map(|(id, name, description)| {
            json!({"self": format!("{base}/resolution/{id}"), "id": id, "name": name,
                   "description": description, "default": *name == "Done"})
        })
        .collect();
    let is_last = start_at + values.len() >= all.len();
    ctx.charge(values.len());
    Ok(Json(json!({
        "self": format!("{base}/resolution/search?startAt={start_at}&maxResults={max_results}"),
        "startAt": start_at, "maxResults": max_results, "total": all.len(),
        "isLast": is_last, "values": values,
    })))
}

pub async fn list_issue_types(ctx: Ctx, uri: axum::http::Uri) -> ApiResult<Json<Value>> {
    let base = rest_base(&ctx, &uri);
    let types = issue_types();
    ctx.charge(types.len());
    Ok(Json(Value::Array(
        types.iter().map(|t| render::issue_type(&base, t)).collect(),
    )))
}

pub async fn list_link_types(ctx: Ctx, uri: axum::http::Uri) -> ApiResult<Json<Value>> {
    let base = rest_base(&ctx, &uri);
    ctx.charge(LINK_TYPES.len());
    Ok(Json(json!({"issueLinkTypes": LINK_TYPES
        .iter()
        .map(|t| link_type_json(&base, t.0))
        .collect::<Vec<_>>()})))
}

pub async fn project_statuses(
    ctx: Ctx,
    uri: axum::http::Uri,
    Path(p): Path<ProjectPath>,
) -> ApiResult<Json<Value>> {
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    project_or_404(site, &p.project)?;
    let base = rest_base(&ctx, &uri);
    let statuses: Vec<Value> = site_statuses(site)
        .iter()
        .map(|s| render::status(&base, s))
        .collect();
    // One workflow for every issue type (*guess*: the seeded projects share
    // the default simplified workflow).
    let types = issue_types();
    ctx.charge(types.len());
    Ok(Json(Value::Array(
        types
            .iter()
            .map(|t| {
                json!({"self": format!("{base}/issuetype/{}", t.id), "id": t.id, "name": t.name,
                       "subtask": t.subtask, "statuses": statuses})
            })
            .collect(),
    )))
}

pub async fn project_versions(
    ctx: Ctx,
    uri: axum::http::Uri,
    Path(p): Path<ProjectPath>,
) -> ApiResult<Json<Value>> {
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    let project = project_or_404(site, &p.project)?;
    let base = rest_base(&ctx, &uri);
    let today = ctx.state.clock.now().date_naive();
    let versions: Vec<Value> = site
        .catalog
        .versions
        .iter()
        .filter(|v| v.project_id == project.id)
        .map(|v| version_json(&base, v, today))
        .collect();
    ctx.charge(versions.len());
    Ok(Json(Value::Array(versions)))
}

pub async fn project_components(
    ctx: Ctx,
    uri: axum::http::Uri,
    Path(p): Path<ProjectPath>,
) -> ApiResult<Json<Value>> {
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    let project = project_or_404(site, &p.project)?;
    let base = rest_base(&ctx, &uri);
    let components: Vec<Value> = site
        .catalog
        .components
        .iter()
        .filter(|c| c.project_id == project.id)
        .map(|c| component_json(&base, &world.users, site, c))
        .collect();
    ctx.charge(components.len());
    Ok(Json(Value::Array(components)))
}

// ---- seeding ----

const COMPONENTS: &[(&str, &str)] = &[
    ("Backend", "Services and storage"),
    ("Frontend", "Web and mobile clients"),
    ("API", "The public REST API"),
    ("Infrastructure", "Deployments, CI, monitoring"),
];

/// Seed the issue-model breadth of one site after its issues exist. Drawn
/// from its own generator (seeded from the world seed and the site index)
/// so the first release's seeded data stays exactly what it was: per
/// project four components, three versions (two released); every 20th
/// issue (from the 10th) an Epic out of any sprint, every 10th (from the
/// 5th) a Subtask of the issue before it, in its parent's sprint; about
/// half of the other stories, bugs and tasks under an epic; components,
/// fix versions, due dates and "Blocks"/"Relates" links on some issues.
pub fn seed_breadth(seed: u64, site_index: usize, site: &mut Site, epoch: Timestamp) {
    let mut rng = ChaCha8Rng::seed_from_u64(
        seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (site_index as u64 + 1),
    );
    let today = epoch.date_naive();
    let mut next_component = 10000u64;
    let mut next_version = 10000u64;
    let mut next_link = 10000u64;
    let projects: Vec<(u64, String)> = site
        .projects
        .iter()
        .map(|p| (p.id, p.lead_account_id.clone()))
        .collect();
    for (project_id, lead) in projects {
        let mut component_ids = Vec::new();
        for (k, (name, description)) in COMPONENTS.iter().enumerate() {
            site.catalog.components.push(Component {
                id: next_component,
                project_id,
                name: name.to_string(),
                description: description.to_string(),
                lead_account_id: (k == 0).then(|| lead.clone()),
            });
            component_ids.push(next_component);
            next_component += 1;
        }
        let mut version_ids = Vec::new();
        for (k, (name, released, start_ago, release_in)) in [
            ("1.0", true, 120i64, -60i64),
            ("1.1", true, 60, -20),
            ("2.0", false, 20, 30),
        ]
        .into_iter()
        .enumerate()
        {
            site.catalog.versions.push(Version {
                id: next_version,
                project_id,
                name: name.to_string(),
                description: format!("Release {name}"),
                released,
                archived: false,
                start_date: Some(today - chrono::Duration::days(start_ago)),
                release_date: Some(today + chrono::Duration::days(release_in)),
            });
            version_ids.push((next_version, k < 2));
            next_version += 1;
        }
        let ids: Vec<u64> = site
            .issues
            .values()
            .filter(|i| i.project_id == project_id)
            .map(|i| i.id)
            .collect();
        let epics: Vec<u64> = ids.iter().skip(9).step_by(20).copied().collect();
        let epic_set: std::collections::HashSet<u64> = epics.iter().copied().collect();
        for (n, id) in ids.iter().enumerate() {
            let parent_sprint = n
                .checked_sub(1)
                .and_then(|p| ids.get(p))
                .and_then(|p| site.issues.get(p))
                .map(|p| p.sprint_id);
            let Some(issue) = site.issues.get_mut(id) else {
                continue;
            };
            if epic_set.contains(id) {
                issue.issue_type = issue_type_epic();
                issue.sprint_id = None;
                issue.story_points = None;
            } else if n % 10 == 4 && n > 0 {
                issue.issue_type = issue_type_subtask();
                issue.extra.parent_id = Some(ids[n - 1]);
                issue.sprint_id = parent_sprint.flatten();
                issue.story_points = None;
            } else if !epics.is_empty() && rng.random_range(0..100u32) < 50 {
                issue.extra.parent_id = Some(epics[rng.random_range(0..epics.len())]);
            }
            if let Some(parent) = issue.extra.parent_id {
                site.catalog.reparent(*id, None, Some(parent));
            }
            let roll = rng.random_range(0..100u32);
            if roll < 40 {
                issue.extra.components = vec![component_ids[rng.random_range(0..4usize)]];
            } else if roll < 50 {
                issue.extra.components = vec![component_ids[0], component_ids[1]];
            }
            let done = issue.status.category_key == "done";
            let roll = rng.random_range(0..100u32);
            if done && roll < 60 {
                issue.extra.fix_versions = vec![version_ids[rng.random_range(0..2usize)].0];
            } else if !done && roll < 20 {
                issue.extra.fix_versions = vec![version_ids[2].0];
            }
            if !done && rng.random_range(0..100u32) < 25 {
                issue.extra.due_date =
                    Some(today + chrono::Duration::days(rng.random_range(-10..30i64)));
            }
            if n % 8 == 3 && ids.len() > 1 {
                let other = ids[rng.random_range(0..ids.len())];
                if other != *id {
                    site.catalog.issue_links.push(IssueLinkRecord {
                        id: next_link,
                        type_id: if n % 16 == 3 { "10000" } else { "10003" }.into(),
                        inward_id: *id,
                        outward_id: other,
                    });
                    next_link += 1;
                }
            }
        }
    }
    site.catalog.next_link_id = next_link;
    site.catalog.next_remote_link_id = 10000;
}
