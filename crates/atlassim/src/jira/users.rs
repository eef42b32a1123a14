//! Users: `user/search`, `user/assignable/search`, `user`, `users/search`,
//! `user/bulk` and `PUT issue/{key}/assignee`.
//!
//! The five seeded people are on every site; each site also has members of
//! its own. Some keep their e-mail private: the REST API then leaves
//! `emailAddress` out (for everyone but themselves), and `query` does not
//! match it. Identity objects cost 2 points each (docs/atlassian-behaviour.md §4).

use axum::extract::{Path, RawQuery};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::render::avatar_urls;
use super::{parse_body, query_all, query_int, query_one, query_pairs, rest_base_for, IssuePath};
use crate::errors::{ApiError, ApiResult};
use crate::gateway::Ctx;
use crate::model::{Site, User};

const MEMBERS: &[(&str, &str)] = &[
    ("Olivia Chen", "olivia"),
    ("Ethan Brooks", "ethan"),
    ("Sofia Rossi", "sofia"),
    ("Lucas Meyer", "lucas"),
    ("Emma Novak", "emma"),
    ("Mateo Silva", "mateo"),
];

/// The members only site `index` has: three people, the first two with a
/// private e-mail. Ids are derived from (seed, site), not drawn from the
/// seeder's stream.
pub fn site_members(seed: u64, index: usize, site_name: &str) -> Vec<User> {
    (0..3)
        .map(|k| {
            let (name, first) = MEMBERS[(index * 3 + k) % MEMBERS.len()];
            let mut h = Sha256::new();
            h.update(format!("atlassim-member:{seed}:{index}:{k}"));
            let id = hex::encode(&h.finalize()[..12]);
            User {
                account_id: id,
                email: format!("{first}@{site_name}.example.com"),
                name: name.to_string(),
                nickname: first.to_string(),
                zoneinfo: "UTC".into(),
                email_hidden: k < 2,
            }
        })
        .collect()
}

/// A `User` bean as the user endpoints answer it, seen by `viewer`.
pub fn user_json(rest_base: &str, u: &User, viewer: &str, expand: &[String]) -> Value {
    let mut v = json!({
        "self": format!("{rest_base}/user?accountId={}", u.account_id),
        "accountId": u.account_id,
        "accountType": "atlassian",
        "avatarUrls": avatar_urls(&u.account_id),
        "displayName": u.name,
        "active": true,
        "timeZone": u.zoneinfo,
        "locale": "en_US",
    });
    if let Some(o) = v.as_object_mut() {
        if !u.email_hidden || u.account_id == viewer {
            o.insert("emailAddress".into(), json!(u.email));
        }
        let wants = |w: &str| super::breadth::expands(expand, w);
        if wants("groups") {
            o.insert(
                "groups".into(),
                json!({"size": 1, "items": [{"name": "jira-software-users"}]}),
            );
        }
        if wants("applicationRoles") {
            o.insert(
                "applicationRoles".into(),
                json!({"size": 1, "items": [{"key": "jira-software", "name": "Jira Software"}]}),
            );
        }
        o.insert("expand".into(), json!("groups,applicationRoles"));
    }
    v
}

/// Jira's user `query`: a prefix of any word of the display name, or of the
/// e-mail address when it is visible (case-insensitive).
fn query_matches(u: &User, query: &str) -> bool {
    let q = query.trim().to_lowercase();
    if q.is_empty() {
        return true;
    }
    let name = u.name.to_lowercase();
    name.starts_with(&q)
        || name.split_whitespace().any(|w| w.starts_with(&q))
        || (!u.email_hidden && u.email.to_lowercase().starts_with(&q))
}

fn site_users<'a>(site: &Site, users: &'a [User]) -> Vec<&'a User> {
    site.users
        .iter()
        .filter_map(|id| users.iter().find(|u| u.account_id == *id))
        .collect()
}

/// Site members with this account id and/or matching this `query`.
fn matching<'a>(
    site: &Site,
    users: &'a [User],
    account_id: Option<&str>,
    query: Option<&str>,
) -> Vec<&'a User> {
    site_users(site, users)
        .into_iter()
        .filter(|u| account_id.is_none_or(|a| a == u.account_id))
        .filter(|u| query.is_none_or(|t| query_matches(u, t)))
        .collect()
}

fn page_params(q: &[(String, String)], default_max: i64) -> ApiResult<(usize, usize)> {
    let start = query_int(q, "startAt")?.unwrap_or(0).max(0) as usize;
    let max = query_int(q, "maxResults")?
        .unwrap_or(default_max)
        .clamp(1, 1000) as usize;
    Ok((start, max))
}

fn user_list(
    ctx: &Ctx,
    uri: &axum::http::Uri,
    found: Vec<&User>,
    (start, max): (usize, usize),
    expand: &[String],
) -> Json<Value> {
    let base = rest_base_for(ctx, uri);
    let page: Vec<Value> = found
        .into_iter()
        .skip(start)
        .take(max)
        .map(|u| user_json(&base, u, &ctx.access.account_id, expand))
        .collect();
    ctx.charge_identity(page.len());
    Json(Value::Array(page))
}

/// `GET /user/search?query=|accountId=`.
pub async fn find_users(
    ctx: Ctx,
    uri: axum::http::Uri,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = query_pairs(&raw);
    let query = query_one(&q, "query");
    let account_id = query_one(&q, "accountId");
    if query.is_none() && account_id.is_none() && query_one(&q, "property").is_none() {
        return Err(ApiError::bad_request(
            "One of the following query parameters must be provided: query, accountId or property.",
        ));
    }
    let (start, max) = page_params(&q, 50)?;
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    let found = matching(site, &world.users, account_id.as_deref(), query.as_deref());
    Ok(user_list(&ctx, &uri, found, (start, max), &[]))
}

/// `GET /user/assignable/search?project=|issueKey=|issueId=[&query=]`: every
/// member of the site may be assigned (no permission schemes simulated).
pub async fn find_assignable_users(
    ctx: Ctx,
    uri: axum::http::Uri,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = query_pairs(&raw);
    let project = query_one(&q, "project");
    let issue = query_one(&q, "issueKey").or_else(|| query_one(&q, "issueId"));
    if project.is_none() && issue.is_none() {
        return Err(ApiError::bad_request(
            "The parameters 'project', 'issueKey' or 'issueId' are required.",
        ));
    }
    let query = query_one(&q, "query").or_else(|| query_one(&q, "username"));
    let account_id = query_one(&q, "accountId");
    let (start, max) = page_params(&q, 50)?;
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    if let Some(p) = &project {
        if site.project_by_key_or_id(p).is_none() {
            return Err(ApiError::jira(
                StatusCode::NOT_FOUND,
                format!("No project could be found with key '{p}'."),
            ));
        }
    }
    if let Some(i) = &issue {
        if site.issue(i).is_none() {
            return Err(ApiError::issue_not_found());
        }
    }
    let found = matching(site, &world.users, account_id.as_deref(), query.as_deref());
    Ok(user_list(&ctx, &uri, found, (start, max), &[]))
}

fn user_not_found() -> ApiError {
    ApiError::jira(
        StatusCode::NOT_FOUND,
        "Specified user does not exist or you do not have required permissions",
    )
}

/// `GET /user?accountId=`.
pub async fn get_user(
    ctx: Ctx,
    uri: axum::http::Uri,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = query_pairs(&raw);
    let account_id = query_one(&q, "accountId").ok_or_else(user_not_found)?;
    let expand = query_all(&q, "expand");
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    let user = site_users(site, &world.users)
        .into_iter()
        .find(|u| u.account_id == account_id)
        .ok_or_else(user_not_found)?;
    ctx.charge_identity(1);
    Ok(Json(user_json(
        &rest_base_for(&ctx, &uri),
        user,
        &ctx.access.account_id,
        &expand,
    )))
}

/// `GET /users/search`: every user of the site, paged.
pub async fn get_all_users(
    ctx: Ctx,
    uri: axum::http::Uri,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = query_pairs(&raw);
    let (start, max) = page_params(&q, 50)?;
    let expand = query_all(&q, "expand");
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    let found = site_users(site, &world.users);
    Ok(user_list(&ctx, &uri, found, (start, max), &expand))
}

/// `GET /user/bulk?accountId=…&accountId=…` → `PageBeanUser` (default page 10).
pub async fn bulk_get_users(
    ctx: Ctx,
    uri: axum::http::Uri,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = query_pairs(&raw);
    let ids: Vec<String> = query_all(&q, "accountId")
        .into_iter()
        .flat_map(|v| v.split(',').map(str::to_string).collect::<Vec<_>>())
        .filter(|v| !v.is_empty())
        .collect();
    if ids.is_empty() {
        return Err(ApiError::bad_request(
            "The accountId query parameter needs to be provided.",
        ));
    }
    let (start, max) = page_params(&q, 10)?;
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    let members = site_users(site, &world.users);
    let found: Vec<&User> = ids
        .iter()
        .filter_map(|id| members.iter().find(|u| u.account_id == *id).copied())
        .collect();
    let total = found.len();
    let base = rest_base_for(&ctx, &uri);
    let values: Vec<Value> = found
        .iter()
        .skip(start)
        .take(max)
        .map(|u| user_json(&base, u, &ctx.access.account_id, &[]))
        .collect();
    ctx.charge_identity(values.len());
    let is_last = start + values.len() >= total;
    let ids_q: String = ids.iter().map(|i| format!("&accountId={i}")).collect();
    let mut body = json!({
        "self": format!("{base}/user/bulk?startAt={start}&maxResults={max}{ids_q}"),
        "maxResults": max,
        "startAt": start,
        "total": total,
        "isLast": is_last,
        "values": values,
    });
    if !is_last {
        if let Some(o) = body.as_object_mut() {
            o.insert(
                "nextPage".into(),
                json!(format!(
                    "{base}/user/bulk?startAt={}&maxResults={max}{ids_q}",
                    start + max
                )),
            );
        }
    }
    Ok(Json(body))
}

/// `PUT /issue/{key}/assignee` with `{"accountId": id | null | "-1"}`:
/// `null` unassigns, `"-1"` picks the project's default assignee (every
/// seeded project's is "unassigned"). v2 also takes `{"name": …}` as
/// clients written for Server send it; on Cloud `name` must be an account id.
pub async fn assign_issue(
    ctx: Ctx,
    Path(p): Path<IssuePath>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let body = parse_body(&body)?;
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "Can not deserialize the user: expected an object.",
        ));
    }
    let target = match body.get("accountId").or_else(|| body.get("name")) {
        None | Some(Value::Null) => Value::Null,
        Some(Value::String(s)) if s == "-1" => Value::Null,
        Some(Value::String(s)) => {
            let known = {
                let world = ctx.state.world();
                world
                    .site(&ctx.cloud_id)
                    .is_some_and(|site| site.users.iter().any(|u| u == s))
            };
            if !known {
                return Err(ApiError::jira_field(
                    StatusCode::BAD_REQUEST,
                    "assignee",
                    format!("User '{s}' cannot be assigned issues."),
                ));
            }
            json!({"accountId": s})
        }
        Some(_) => {
            return Err(ApiError::jira_field(
                StatusCode::BAD_REQUEST,
                "assignee",
                "Specify a valid value for assignee",
            ))
        }
    };
    let mut fields = serde_json::Map::new();
    fields.insert("assignee".into(), target);
    super::edit_and_fire(
        &ctx.state,
        &ctx.runtime,
        &ctx.cloud_id,
        &p.issue,
        &fields,
        &serde_json::Map::new(),
        super::service::EditMode::default(),
        &ctx.access.account_id,
    )?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
