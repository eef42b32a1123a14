//! The stored changelog: one `History` per change of an issue (seeded
//! issues come with a plausible past), `GET /issue/{key}/changelog`,
//! `POST /changelog/bulkfetch` and `expand=changelog`.

use axum::extract::{Path, RawQuery};
use axum::Json;
use base64::Engine;
use chrono::Duration;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::render::{jira_time, user_details};
use super::{query_int, query_pairs, rest_base_for, IssuePath};
use crate::errors::{ApiError, ApiResult};
use crate::gateway::Ctx;
use crate::model::{History, Issue, Site, Status, Timestamp, User, Workflow};
use crate::webhooks::ChangeItem;

/// Store `new` (the changed `old`) with its history entry: `updated` moves
/// forward, the entry's id is the site's next. Returns the stored issue.
pub fn store_change(
    site: &mut Site,
    old: &Issue,
    mut new: Issue,
    items: &[ChangeItem],
    author: &str,
    now: Timestamp,
) -> Issue {
    new.updated = now.max(old.updated);
    new.changelog.push(History {
        id: site.next_history_id,
        author_account_id: author.to_string(),
        created: new.updated,
        items: items.to_vec(),
    });
    site.next_history_id += 1;
    site.put_issue(new.clone());
    new
}

/// A `ChangeDetails` object. Absent values are left out rather than `null`
/// (the spec types `from`/`to` as plain strings).
pub fn change_item_json(c: &ChangeItem) -> Value {
    let mut o = Map::new();
    o.insert("field".into(), json!(c.field));
    o.insert("fieldtype".into(), json!(c.fieldtype));
    o.insert("fieldId".into(), json!(c.field_id));
    for (k, v) in [
        ("from", &c.from),
        ("fromString", &c.from_string),
        ("to", &c.to),
        ("toString", &c.to_string),
    ] {
        if let Some(v) = v {
            o.insert(k.into(), json!(v));
        }
    }
    Value::Object(o)
}

/// A `Changelog` object, its items optionally limited to some field ids.
pub fn history_json(
    rest_base: &str,
    users: &[User],
    h: &History,
    field_ids: Option<&[String]>,
) -> Value {
    let items: Vec<Value> = h
        .items
        .iter()
        .filter(|i| field_ids.is_none_or(|f| f.contains(&i.field_id)))
        .map(change_item_json)
        .collect();
    json!({
        "id": h.id.to_string(),
        "author": user_details(rest_base, users, &h.author_account_id),
        "created": jira_time(h.created),
        "items": items,
    })
}

/// `expand=changelog` on an issue: `PageOfChangelogs` with every history
/// (Jira caps this at 100 on GET issue and at 20 on `/search/jql`).
pub fn page_of_changelogs(rest_base: &str, users: &[User], issue: &Issue, cap: usize) -> Value {
    let total = issue.changelog.len();
    let start = total.saturating_sub(cap);
    let histories: Vec<Value> = issue.changelog[start..]
        .iter()
        .map(|h| history_json(rest_base, users, h, None))
        .collect();
    json!({
        "startAt": start,
        "maxResults": histories.len(),
        "total": total,
        "histories": histories,
    })
}

pub async fn get_changelog(
    ctx: Ctx,
    uri: axum::http::Uri,
    Path(p): Path<IssuePath>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = query_pairs(&raw);
    let start_at = query_int(&q, "startAt")?.unwrap_or(0).max(0) as usize;
    let max_results = query_int(&q, "maxResults")?.unwrap_or(100).clamp(1, 100) as usize;
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    let issue = site.issue(&p.issue).ok_or_else(ApiError::issue_not_found)?;
    let base = rest_base_for(&ctx, &uri);
    let values: Vec<Value> = issue
        .changelog
        .iter()
        .skip(start_at)
        .take(max_results)
        .map(|h| history_json(&base, &world.users, h, None))
        .collect();
    let total = issue.changelog.len();
    let is_last = start_at + values.len() >= total;
    ctx.charge(values.len());
    let page = |start: usize| {
        format!(
            "{base}/issue/{}/changelog?startAt={start}&maxResults={max_results}",
            issue.key
        )
    };
    let mut body = json!({
        "self": page(start_at),
        "maxResults": max_results,
        "startAt": start_at,
        "total": total,
        "isLast": is_last,
        "values": values,
    });
    if !is_last {
        if let Some(o) = body.as_object_mut() {
            o.insert("nextPage".into(), json!(page(start_at + max_results)));
        }
    }
    Ok(Json(body))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkChangelogRequest {
    issue_ids_or_keys: Option<Vec<String>>,
    field_ids: Option<Vec<String>>,
    max_results: Option<i64>,
    next_page_token: Option<String>,
}

fn bulk_token(offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("changelog:{offset}"))
}

fn read_bulk_token(t: &str) -> ApiResult<usize> {
    let bad = || ApiError::bad_request("The provided next page token is invalid.");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t)
        .map_err(|_| bad())?;
    String::from_utf8(raw)
        .ok()
        .and_then(|s| s.strip_prefix("changelog:").and_then(|n| n.parse().ok()))
        .ok_or_else(bad)
}

/// `POST /changelog/bulkfetch`: histories of up to 1000 issues, paged over
/// histories (`maxResults` default 1000, at most 10000) with an opaque token.
pub async fn bulk_fetch(
    ctx: Ctx,
    uri: axum::http::Uri,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let req: BulkChangelogRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("Invalid request payload: {e}")))?;
    let wanted = req.issue_ids_or_keys.unwrap_or_default();
    if wanted.is_empty() {
        return Err(ApiError::bad_request(
            "issueIdsOrKeys must contain between 1 and 1000 items.",
        ));
    }
    if wanted.len() > 1000 {
        return Err(ApiError::bad_request(
            "issueIdsOrKeys must contain between 1 and 1000 items.",
        ));
    }
    let field_ids = req.field_ids.filter(|f| !f.is_empty());
    if field_ids.as_ref().is_some_and(|f| f.len() > 10) {
        return Err(ApiError::bad_request(
            "fieldIds must contain at most 10 items.",
        ));
    }
    let max_results = req.max_results.unwrap_or(1000).clamp(1, 10_000) as usize;
    let offset = match req.next_page_token.as_deref() {
        Some(t) if !t.is_empty() => read_bulk_token(t)?,
        _ => 0,
    };
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    let base = rest_base_for(&ctx, &uri);
    // Unknown or invisible issues are left out, as Jira does.
    let mut issues: Vec<&Issue> = wanted.iter().filter_map(|k| site.issue(k)).collect();
    issues.sort_by_key(|i| i.id);
    issues.dedup_by_key(|i| i.id);
    let mut out: Vec<Value> = Vec::new();
    let mut seen = 0usize;
    let mut taken = 0usize;
    let mut more = false;
    for issue in issues {
        let mut histories = Vec::new();
        for h in &issue.changelog {
            let relevant = field_ids
                .as_ref()
                .is_none_or(|f| h.items.iter().any(|i| f.contains(&i.field_id)));
            if !relevant {
                continue;
            }
            if seen < offset {
                seen += 1;
                continue;
            }
            if taken == max_results {
                more = true;
                break;
            }
            histories.push(history_json(&base, &world.users, h, field_ids.as_deref()));
            seen += 1;
            taken += 1;
        }
        if !histories.is_empty() {
            out.push(json!({"issueId": issue.id.to_string(), "changeHistories": histories}));
        }
        if more {
            break;
        }
    }
    ctx.charge(taken);
    let mut body = json!({ "issueChangeLogs": out });
    if more {
        if let Some(o) = body.as_object_mut() {
            o.insert("nextPageToken".into(), json!(bulk_token(offset + taken)));
        }
    }
    Ok(Json(body))
}

fn status_item(from: &Status, to: &Status) -> ChangeItem {
    ChangeItem {
        field: "status".into(),
        fieldtype: "jira".into(),
        field_id: "status".into(),
        from: Some(from.id.clone()),
        from_string: Some(from.name.clone()),
        to: Some(to.id.clone()),
        to_string: Some(to.name.clone()),
    }
}

/// A plausible past for a seeded issue, consistent with where it is now:
/// the walk through the workflow from "To Do" to its status (through "In
/// Review" half the time), resolution set on entering "Done", and for some
/// assigned issues the assignment. Drawn from its own generator (seed and
/// issue id), so the main seeded stream is untouched.
pub fn seed_history(seed: u64, site: &mut Site, workflow: &Workflow, issue: &mut Issue) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ issue.id.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let status = |id: &str| workflow.status(id).cloned();
    let (Some(to_do), Some(in_progress), Some(in_review), Some(done)) = (
        status(super::transitions::TO_DO),
        status(super::transitions::IN_PROGRESS),
        status(super::transitions::IN_REVIEW),
        status(super::transitions::DONE),
    ) else {
        return;
    };
    let mut path: Vec<Status> = Vec::new();
    if issue.status.category_key != "new" {
        path.push(in_progress.clone());
        if issue.status.id == done.id {
            if rng.random_range(0..2u32) == 0 {
                path.push(in_review);
            }
            path.push(done.clone());
        } else if issue.status.id != in_progress.id {
            path.push(issue.status.clone());
        }
    }
    let assigned_later = issue.assignee.is_some() && rng.random_range(0..2u32) == 0;
    let steps = path.len() + usize::from(assigned_later);
    if steps == 0 {
        return;
    }
    let span = (issue.updated - issue.created).num_seconds().max(0);
    let slot = span / (steps as i64 + 1);
    let created = issue.created;
    let at = move |k: usize| created + Duration::seconds(slot * k as i64);
    let author = issue
        .assignee
        .clone()
        .unwrap_or_else(|| issue.reporter.clone());
    let mut k = 1;
    let push = |site: &mut Site, issue: &mut Issue, when: Timestamp, items: Vec<ChangeItem>| {
        issue.changelog.push(History {
            id: site.next_history_id,
            author_account_id: author.clone(),
            created: when,
            items,
        });
        site.next_history_id += 1;
    };
    if assigned_later {
        let when = at(k);
        k += 1;
        // `toString` (the display name) is filled in by the seeder once
        // every user exists.
        let to = issue.assignee.clone();
        push(
            site,
            issue,
            when,
            vec![ChangeItem {
                field: "assignee".into(),
                fieldtype: "jira".into(),
                field_id: "assignee".into(),
                from: None,
                from_string: None,
                to,
                to_string: None,
            }],
        );
    }
    let mut from = to_do;
    for s in path {
        let when = at(k);
        k += 1;
        let mut items = Vec::new();
        if s.category_key == "done" {
            let name = if rng.random_range(0..10u32) == 0 {
                "Won't Do"
            } else {
                "Done"
            };
            issue.resolution = Some(name.to_string());
            issue.resolution_date = Some(when);
            items.push(super::transitions::resolution_item(None, Some(name)));
        }
        if s.category_key != from.category_key {
            issue.status_category_changed = when;
        }
        items.push(status_item(&from, &s));
        push(site, issue, when, items);
        from = s;
    }
}
