//! Confluence sync (docs/design.md §16): a sync with `confluence_cql`
//! mirrors the pages that CQL finds — id, space, title, version, updated,
//! url and the body as Markdown — into `synced_pages`.
//!
//! A pass lists the matching pages with their versions through the v1 CQL
//! API (`/wiki/rest/api/content/search`, no bodies), then fetches bodies in
//! ADF through v2 (`GET /pages?id=…&body-format=atlas_doc_format`) only for
//! pages whose version differs from the stored one. The first pass lists
//! everything; later passes are incremental: `lastmodified >=` the day
//! before the high-water mark (CQL dates are in the user's time zone and
//! minute-precise; a day's overlap covers every zone, and the version
//! comparison makes the overlap cost nothing but the listing). Deletions —
//! and pages that left the CQL — are found by a full listing at most every
//! `jobs.tuning.sync_reconcile_s` (and on the first pass): stored pages it
//! no longer shows are marked deleted.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::engine::{self, PassKind, SyncError};
use super::store::{self as rows, SyncRow};
use crate::atlassian::{ApiRequest, Product};
use crate::confluence::{self, Ctx};
use crate::jobs::{Counters, Tuning};
use crate::state::Core;
use crate::store::now;
use crate::store::pages::{self, PageRow};

/// Pages listed per v1 call (Confluence's maximum is 250 with few expansions).
const LIST_PAGE: usize = 100;
/// Bodies fetched per v2 call (ids in one query string).
const BODY_BATCH: usize = 50;
/// More pages than this under one CQL is refused rather than half-mirrored.
const MAX_PAGES: usize = 200_000;
/// The incremental window reaches this far before the high-water mark.
const OVERLAP_MS: i64 = 24 * 3600 * 1000;

/// A synced page as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PageView {
    pub id: String,
    pub space_id: String,
    pub space_key: Option<String>,
    pub title: String,
    pub version: i64,
    /// When the current version was made (RFC 3339, milliseconds); for a
    /// deleted page, when atlasgate noticed.
    pub updated: String,
    /// The page in the browser.
    pub url: Option<String>,
    /// The body (ADF) rendered as Markdown.
    pub body_markdown: String,
    /// Gone from Confluence (or no longer matched by the CQL).
    pub deleted: bool,
}

impl PageView {
    pub fn from_row(r: &PageRow) -> PageView {
        PageView {
            id: r.page_id.clone(),
            space_id: r.space_id.clone(),
            space_key: r.space_key.clone(),
            title: r.title.clone(),
            version: r.version,
            updated: super::rfc3339_ms(r.updated_ms),
            url: r.url.clone(),
            body_markdown: r.body_markdown.clone(),
            deleted: r.deleted,
        }
    }
}

/// The CQL a Confluence sync lists: its pages only.
pub fn pages_cql(cql: &str) -> String {
    format!("type = page AND ({cql})")
}

/// Run (or resume) one pass of a claimed sync: Confluence or Jira.
pub async fn run_pass_any(state: &Core, sync_id: &str) -> Result<PassKind, SyncError> {
    match pages::confluence_cql(state.store.pool(), sync_id).await? {
        Some(cql) => run_pass(state, sync_id, &cql).await,
        None => engine::run_pass(state, sync_id).await,
    }
}

/// One page as the listing shows it.
#[derive(Debug, Clone)]
struct Listed {
    id: String,
    version: i64,
    space_key: Option<String>,
}

fn id_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn time_ms(s: Option<&str>) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s?)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// The pages `cql` matches, with their versions (no bodies).
async fn list(ctx: &Ctx<'_>, cql: &str) -> Result<Vec<Listed>, SyncError> {
    let first = ApiRequest::get(Product::Confluence, "wiki/rest/api/content/search").query(&[
        ("cql", cql.to_string()),
        ("limit", LIST_PAGE.to_string()),
        ("expand", "version,space".to_string()),
    ]);
    let (results, _) = confluence::v1_results(ctx, first, MAX_PAGES + 1).await?;
    if results.len() > MAX_PAGES {
        return Err(SyncError::Shape(format!(
            "the CQL matches more than {MAX_PAGES} pages; narrow it"
        )));
    }
    Ok(results
        .iter()
        .filter(|c| c["type"].as_str().is_none_or(|t| t == "page"))
        .map(|c| Listed {
            id: id_of(&c["id"]),
            version: c["version"]["number"].as_i64().unwrap_or(0),
            space_key: c["space"]["key"].as_str().map(String::from),
        })
        .filter(|l| !l.id.is_empty())
        .collect())
}

/// The v2 pages of `ids` with their ADF bodies, by id.
async fn bodies(
    ctx: &Ctx<'_>,
    ids: &[&str],
) -> Result<(HashMap<String, Value>, Option<String>), SyncError> {
    let first = ApiRequest::get(Product::Confluence, "wiki/api/v2/pages").query(&[
        ("id", ids.join(",")),
        ("body-format", "atlas_doc_format".to_string()),
        ("limit", "250".to_string()),
    ]);
    let (all, base) =
        confluence::all_results(ctx.client, ctx.app_id, ctx.connection_id, first).await?;
    Ok((
        all.into_iter().map(|v| (id_of(&v["id"]), v)).collect(),
        base,
    ))
}

async fn run_pass(state: &Core, sync_id: &str, cql: &str) -> Result<PassKind, SyncError> {
    let sync: SyncRow = rows::get(state.store.pool(), sync_id)
        .await?
        .ok_or(SyncError::LeaseLost)?;
    let worker = state.jobs.worker_id.as_str();
    let ctx = Ctx {
        client: &state.atlassian,
        app_id: None,
        connection_id: &sync.connection_id,
        cloud_id: &sync.cloud_id,
        site_url: &sync.site_url,
    };
    let kind = if !sync.full_done {
        PassKind::Full
    } else {
        PassKind::Incremental
    };
    let reconcile_every = Tuning::get(&state.jobs.tuning.sync_reconcile_s) as i64;
    let reconcile = kind == PassKind::Full
        || sync
            .last_reconciled_at
            .is_none_or(|t| now() - t >= reconcile_every);
    let all = pages_cql(cql);
    let listing_cql = match (reconcile, sync.cursor_updated_ms) {
        (false, Some(ms)) => {
            let day = chrono::DateTime::from_timestamp_millis(ms - OVERLAP_MS)
                .unwrap_or_default()
                .format("%Y-%m-%d");
            format!("{all} AND lastmodified >= \"{day}\"")
        }
        _ => all,
    };
    let listed = list(&ctx, &listing_cql).await?;

    let ids: Vec<String> = listed.iter().map(|l| l.id.clone()).collect();
    let stored = {
        let mut conn = state.store.pool().acquire().await?;
        pages::versions(&mut conn, &sync.connection_id, &ids).await?
    };
    let changed: Vec<&Listed> = listed
        .iter()
        .filter(|l| {
            stored
                .get(&l.id)
                .is_none_or(|(v, deleted)| *v != l.version || *deleted != 0)
        })
        .collect();
    let mut written = 0i64;
    let mut cursor_ms: Option<i64> = None;
    for batch in changed.chunks(BODY_BATCH) {
        let batch_ids: Vec<&str> = batch.iter().map(|l| l.id.as_str()).collect();
        let (found, base) = bodies(&ctx, &batch_ids).await?;
        let t = now();
        let _turn = state
            .jobs
            .sync_write_turn(state.store.backend() == crate::store::Backend::Sqlite)
            .await;
        let mut tx = state.store.begin_write().await?;
        if !pages::holds_lease(&mut tx, &sync.id, worker).await? {
            return Err(SyncError::LeaseLost);
        }
        for l in batch {
            // Gone between the listing and this read: the next reconcile sees it.
            let Some(v) = found.get(&l.id) else { continue };
            let detail = confluence::page_detail(base.as_deref(), v, l.space_key.clone());
            let updated_ms = time_ms(detail.updated.as_deref()).unwrap_or(t * 1000);
            cursor_ms = cursor_ms.max(Some(updated_ms));
            pages::upsert_page(
                &mut tx,
                &PageRow {
                    connection_id: sync.connection_id.clone(),
                    page_id: detail.id,
                    space_id: detail.space_id,
                    space_key: detail.space_key,
                    title: detail.title,
                    version: detail.version,
                    updated_ms,
                    url: detail.url,
                    body_markdown: detail.markdown,
                    deleted: false,
                    sync_id: Some(sync.id.clone()),
                    synced_at: t,
                },
            )
            .await?;
            written += 1;
        }
        tx.commit().await?;
    }

    let mut deleted = 0i64;
    if reconcile {
        let seen: HashSet<&str> = listed.iter().map(|l| l.id.as_str()).collect();
        let gone: Vec<String> = pages::live_ids(state.store.pool(), &sync.id)
            .await?
            .into_iter()
            .filter(|id| !seen.contains(id.as_str()))
            .collect();
        if !gone.is_empty() {
            let mut tx = state.store.begin_write().await?;
            if !pages::holds_lease(&mut tx, &sync.id, worker).await? {
                return Err(SyncError::LeaseLost);
            }
            let now_ms = chrono::Utc::now().timestamp_millis();
            for id in &gone {
                if pages::mark_deleted(&mut tx, &sync.connection_id, id, now_ms).await? {
                    deleted += 1;
                }
            }
            tx.commit().await?;
        }
    }

    let t = now();
    let mut tx = state.store.begin_write().await?;
    let done = pages::PassDone {
        cursor_ms,
        reconciled: reconcile,
        now: t,
    };
    if !pages::finish_pass(&mut tx, &sync.id, worker, done).await? {
        return Err(SyncError::LeaseLost);
    }
    let total = pages::pages_synced(&mut *tx, &sync.id).await?;
    crate::events::record(
        &mut tx,
        &sync.app_id,
        Some(&sync.connection_id),
        "sync.completed",
        json!({"sync_id": sync.id, "pass": kind.as_str(), "pages_stored": written,
               "pages_deleted": deleted, "pages_synced": total}),
    )
    .await?;
    tx.commit().await?;
    crate::events::wake(state);
    Counters::bump(&state.jobs.counters.sync_passes);
    state.metrics.sync_pass(kind.as_str(), "ok");
    tracing::info!(sync_id = %sync.id, pass = kind.as_str(), written, deleted, total, "confluence sync pass completed");
    Ok(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listing_is_limited_to_pages_and_keeps_the_cql_whole() {
        assert_eq!(
            pages_cql("space = ENG OR label = runbook"),
            "type = page AND (space = ENG OR label = runbook)"
        );
    }
}
