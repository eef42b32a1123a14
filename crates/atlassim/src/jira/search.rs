//! `/rest/api/3/search/jql` (token-paged, bounded JQL, ids by default) and
//! the removed `/rest/api/{2,3}/search` (410).

use axum::extract::RawQuery;
use axum::http::Uri;
use axum::Json;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::render::{issue_bean, FieldSelection};
use super::{query_all, query_int, query_one, query_pairs};
use crate::errors::{ApiError, ApiResult};
use crate::gateway::Ctx;
use crate::jql::{self, Compiled, EvalCtx, JqlError};

pub async fn search_removed(_ctx: Ctx) -> ApiError {
    ApiError::SearchRemoved
}

/// `SearchAndReconcileRequestBean`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchRequest {
    pub jql: Option<String>,
    pub next_page_token: Option<String>,
    pub max_results: Option<i64>,
    pub fields: Option<Vec<String>>,
    pub expand: Option<String>,
    pub properties: Option<Vec<String>>,
    pub fields_by_keys: Option<bool>,
    pub reconcile_issues: Option<Vec<i64>>,
}

pub async fn search_jql_get(ctx: Ctx, uri: Uri, RawQuery(raw): RawQuery) -> ApiResult<Json<Value>> {
    let q = query_pairs(&raw);
    let fields = query_all(&q, "fields");
    let req = SearchRequest {
        jql: query_one(&q, "jql"),
        next_page_token: query_one(&q, "nextPageToken"),
        max_results: query_int(&q, "maxResults")?,
        fields: (!fields.is_empty()).then_some(fields),
        expand: query_one(&q, "expand"),
        ..SearchRequest::default()
    };
    search(ctx, uri, req)
}

pub async fn search_jql_post(
    ctx: Ctx,
    uri: Uri,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let req: SearchRequest = if body.is_empty() {
        SearchRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("Invalid request payload: {e}")))?
    };
    search(ctx, uri, req)
}

/// The opaque page token: where the next page starts, bound to the query it
/// came from, when it was issued (tokens expire after 7 days) and which kept
/// id snapshot of `page_cache` it pages through.
fn make_token(offset: usize, fingerprint: &str, issued: i64, snapshot: u64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{offset}:{fingerprint}:{issued}:{snapshot}"))
}

/// (offset, snapshot id) of a valid token.
fn read_token(token: &str, fingerprint: &str, now: i64) -> ApiResult<(usize, u64)> {
    let bad = || ApiError::bad_request("The provided next page token is invalid or expired.");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let mut parts = text.splitn(4, ':');
    let offset: usize = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let fp = parts.next().ok_or_else(bad)?;
    let issued: i64 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let snapshot: u64 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    if fp != fingerprint || now - issued > 7 * 24 * 3600 {
        return Err(bad());
    }
    Ok((offset, snapshot))
}

fn search(ctx: Ctx, uri: Uri, req: SearchRequest) -> ApiResult<Json<Value>> {
    let jql_text = req.jql.clone().unwrap_or_default();
    let query = jql::parse(&jql_text)?;
    let sel = FieldSelection::parse(req.fields.as_deref().unwrap_or(&[]), "id");
    // Ids and keys page up to 5000; full issues up to 100 (docs/atlassian-behaviour.md §3).
    let cap = if sel.ids_only() { 5000 } else { 100 };
    let max_results = match req.max_results.unwrap_or(50) {
        n if n <= 0 => 50,
        n => (n as usize).min(cap),
    };
    let v2 = super::is_v2_path(uri.path());
    let now = ctx.state.clock.now();
    let mut guard = ctx.state.world();
    let world = &mut *guard;
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    let eval_ctx = EvalCtx {
        site,
        users: &world.users,
        now,
        current_user: Some(&ctx.access.account_id),
        strict: true,
    };
    let compiled = Compiled::new(&query, &eval_ctx)?;
    if compiled.is_unbounded() {
        return Err(ApiError::Jql(JqlError::validation(jql::UNBOUNDED_MESSAGE)));
    }
    if query.order_by.len() > 7 {
        return Err(ApiError::Jql(JqlError::validation(
            "The ORDER BY clause can't have more than 7 fields.",
        )));
    }
    let fingerprint = {
        let mut h = Sha256::new();
        h.update(jql_text.as_bytes());
        h.update(ctx.access.account_id.as_bytes());
        hex::encode(&h.finalize()[..8])
    };
    let (offset, snapshot) = match &req.next_page_token {
        Some(t) if !t.is_empty() => read_token(t, &fingerprint, now.timestamp())?,
        _ => (0, 0),
    };
    // A later page slices the ids kept by the first one (`page_cache`): its
    // cost does not grow with the offset.
    // Snapshots are bound to the site too: ids repeat across sites.
    let snapshot_key = format!("{}:{fingerprint}", ctx.cloud_id);
    let kept = (snapshot != 0)
        .then(|| world.search_cache.get(snapshot, &snapshot_key, now))
        .flatten();
    let end = offset.saturating_add(max_results);
    let (page_ids, total, snapshot): (Vec<u64>, usize, u64) = match kept {
        Some((ids, sorted)) => {
            world.stats.search_cache_hits += 1;
            let ids = if end > sorted {
                // The first page past the ordered prefix orders the rest once.
                let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
                let mut rest: Vec<&crate::model::Issue> = ids[sorted..]
                    .iter()
                    .filter_map(|id| site.issues.get(id))
                    .collect();
                compiled.sort(&mut rest, site);
                let mut ordered: Vec<u64> = ids[..sorted].to_vec();
                ordered.extend(rest.iter().map(|i| i.id));
                // Deleted meanwhile: kept at the end (skipped when rendered) so
                // the offsets of the list stay valid.
                let present: std::collections::HashSet<u64> = ordered.iter().copied().collect();
                ordered.extend(ids[sorted..].iter().filter(|id| !present.contains(id)));
                world.search_cache.set_ordered(snapshot, ordered.clone());
                std::sync::Arc::new(ordered)
            } else {
                ids
            };
            let page = ids.iter().skip(offset).take(max_results).copied().collect();
            (page, ids.len(), snapshot)
        }
        None => {
            world.stats.search_cache_misses += 1;
            let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
            let hits: Vec<&crate::model::Issue> = site
                .issues
                .values()
                .filter(|i| compiled.matches(i, site))
                .collect();
            let total = hits.len();
            let mut prefix = hits.clone();
            compiled.sort_prefix(&mut prefix, site, end);
            let page: Vec<u64> = prefix
                .iter()
                .skip(offset)
                .take(max_results)
                .map(|i| i.id)
                .collect();
            if end < total {
                // More pages follow: keep every hit, the served prefix in order.
                let mut ids: Vec<u64> = prefix.iter().map(|i| i.id).collect();
                let served: std::collections::HashSet<u64> = ids.iter().copied().collect();
                ids.extend(hits.iter().map(|i| i.id).filter(|id| !served.contains(id)));
                let snap = world.search_cache.insert(&snapshot_key, ids, end, now);
                (page, total, snap)
            } else {
                (page, total, 0)
            }
        }
    };
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    let base = if v2 {
        format!("{}/rest/api/2", ctx.api_base)
    } else {
        ctx.rest_base()
    };
    let expand = [req.expand.clone().unwrap_or_default()];
    let with_changelog = super::breadth::expands(&expand, "changelog");
    let rendered = super::breadth::expands(&expand, "renderedFields");
    // An issue deleted since the snapshot was taken is skipped.
    let page: Vec<Value> = page_ids
        .iter()
        .filter_map(|id| site.issues.get(id))
        .map(|i| {
            let mut bean = issue_bean(&base, &world.users, site, i, &sel, v2);
            if rendered && !sel.ids_only() {
                super::breadth::add_rendered(&mut bean, &base, &world.users, i);
            }
            // `/search/jql` embeds at most 20 histories per issue (docs/atlassian-behaviour.md §3).
            if with_changelog {
                if let Some(o) = bean.as_object_mut() {
                    o.insert(
                        "changelog".into(),
                        super::changelog::page_of_changelogs(&base, &world.users, i, 20),
                    );
                }
            }
            bean
        })
        .collect();
    let next = offset + page_ids.len();
    let is_last = next >= total;
    ctx.charge(page.len());
    let mut body = json!({"issues": page, "isLast": is_last});
    if req
        .expand
        .as_deref()
        .is_some_and(|e| e.split(',').any(|x| x.trim() == "names"))
    {
        if let Some(o) = body.as_object_mut() {
            o.insert("names".into(), super::render::field_names(site));
        }
    }
    if !is_last {
        if let Some(o) = body.as_object_mut() {
            o.insert(
                "nextPageToken".into(),
                json!(make_token(next, &fingerprint, now.timestamp(), snapshot)),
            );
        }
    }
    Ok(Json(body))
}
