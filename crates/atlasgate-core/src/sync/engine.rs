//! One sync pass (docs/design.md §6): a full pass partitioned by project (streams run
//! concurrently), then incremental passes from the last high-water mark
//! minus an overlap. Pages are keyset-paged on `ORDER BY updated ASC, key ASC`
//! and every page is stored in its own transaction together with the
//! partition's checkpoint, so a pass cut off anywhere resumes at the last
//! stored page: no duplicates (upsert by issue id) and no gaps (the
//! checkpoint never moves past what is stored). `nextPageToken` is used only
//! to step over a crowd of issues sharing the checkpoint's minute, never
//! across processes.

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};

use super::jql::{date_bound, key_order, parse_jira_time, split_order_by};
use super::store::{self as rows, IssueRow, PartitionRow, SyncRow};
use crate::atlassian::{ApiRequest, AtlassianError, PageGuard, Product};
use crate::ids::ConnectionId;
use crate::jira::ops::{self, Ctx, FieldRef, Project, SiteFields};
use crate::jobs::{Counters, Tuning};
use crate::state::Core;
use crate::store::{now, passes, StoreError};

/// How long a claim on a sync lasts unless renewed (`jobs.tuning.sync_lease_s`).
pub fn lease_secs(state: &Core) -> i64 {
    Tuning::get(&state.jobs.tuning.sync_lease_s).max(1) as i64
}
/// Cap of the ids checked one by one when reconciliation finds issues missing.
const RECONCILE_CHECK_CAP: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Atlassian(#[from] AtlassianError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("another process took over this sync")]
    LeaseLost,
    #[error("unexpected answer from Jira: {0}")]
    Shape(String),
}

impl From<sqlx::Error> for SyncError {
    fn from(e: sqlx::Error) -> Self {
        SyncError::Store(StoreError::Sqlx(e))
    }
}

impl SyncError {
    /// What `last_error` shows: Jira's own messages when it gave some.
    pub fn describe(&self) -> String {
        match self {
            SyncError::Atlassian(e) => match e.jira_messages() {
                Some(m) => format!("{e}: {m}"),
                None => e.to_string(),
            },
            other => other.to_string(),
        }
    }
}

// ---------------------------------------------------------------- Jira calls

/// The typed operations' context for a sync's connection: background work
/// (no app), so sync, webhooks and the typed operations read Jira through
/// the one read model of `jira::ops` and make their calls through the one
/// `Ctx::get` (docs/design.md §6).
pub fn ops_ctx<'a>(state: &'a Core, sync: &'a SyncRow) -> Ctx<'a> {
    Ctx {
        client: &state.atlassian,
        app_id: None,
        connection_id: &sync.connection_id,
        cloud_id: &sync.cloud_id,
        site_url: &sync.site_url,
    }
}

/// The fields a synced issue keeps beyond its columns, as Jira answers them
/// (`IssueRow::detail`): what `jira_get_issue` shows when the MCP server
/// reads the issue from the store (docs/agents.md, "Reads from the store").
pub const DETAIL_FIELDS: [&str; 5] = [
    "description",
    "assignee",
    "reporter",
    "resolution",
    "created",
];

/// Every project of the site (`jira::ops::list_projects`, the one lister).
pub async fn list_projects(state: &Core, sync: &SyncRow) -> Result<Vec<Project>, SyncError> {
    Ok(ops::list_projects(&ops_ctx(state, sync)).await?)
}

/// The field ids the sync discovered, as the typed operations hold them
/// (`""` stored = the site has no such field). Only the ids are read.
fn site_fields_of(sync: &SyncRow) -> SiteFields {
    let field = |id: &Option<String>| {
        id.as_deref().filter(|s| !s.is_empty()).map(|id| FieldRef {
            id: id.to_string(),
            name: String::new(),
        })
    };
    SiteFields {
        story_points: field(&sync.story_points_field),
        sprint: field(&sync.sprint_field),
    }
}

/// The fields a page (or a webhook's re-read) asks for: what the typed
/// reader needs, and the project.
pub fn field_list(sync: &SyncRow) -> String {
    format!(
        "{},project,{}",
        site_fields_of(sync).fields_param(),
        DETAIL_FIELDS.join(",")
    )
}

/// Learn the user's time zone (JQL dates) and the site's story points and
/// sprint field ids (they differ per site; `jira::ops::site_fields`, the
/// one discovery). Stored on the sync; `""` = none.
pub async fn discover(state: &Core, sync: &mut SyncRow) -> Result<(), SyncError> {
    if sync.time_zone.is_some() && sync.story_points_field.is_some() && sync.sprint_field.is_some()
    {
        return Ok(());
    }
    let (me, fields) = {
        let ctx = ops_ctx(state, sync);
        tokio::try_join!(ctx.get("rest/api/3/myself", &[]), ops::site_fields(&ctx),)?
    };
    let tz = me["timeZone"].as_str().unwrap_or("UTC").to_string();
    let sp = fields.story_points.map(|f| f.id).unwrap_or_default();
    let sprint = fields.sprint.map(|f| f.id).unwrap_or_default();
    passes::set_site_facts(state.store.pool(), &sync.id, &tz, &sp, &sprint).await?;
    sync.time_zone = Some(tz);
    sync.story_points_field = Some(sp);
    sync.sprint_field = Some(sprint);
    Ok(())
}

// ---------------------------------------------------------------- issues

/// An issue of a search page or a webhook's re-read → a row. The fields
/// the typed operations show are read by their reader
/// (`jira::ops::issue_from_json`, the one issue parser); a row also keeps
/// the project and needs an id, a key and `updated`.
pub fn parse_issue(v: &Value, sync: &SyncRow, now: i64) -> Option<IssueRow> {
    if !(v["id"].is_string() || v["id"].is_number()) {
        return None;
    }
    v["key"].as_str()?;
    let f = &v["fields"];
    let updated_ms = f["updated"].as_str().and_then(parse_jira_time)?;
    let issue = ops::issue_from_json(&sync.site_url, &site_fields_of(sync), v);
    Some(IssueRow {
        connection_id: sync.connection_id.clone(),
        issue_id: issue.id,
        url: issue.url,
        issue_key: issue.key,
        project_id: f["project"]["id"].as_str().map(String::from),
        project_key: f["project"]["key"].as_str().map(String::from),
        summary: issue.summary,
        status: issue.status,
        issue_type: issue.type_,
        story_points: issue.story_points.map(|x| x.to_string()),
        sprint_id: issue.sprint.as_ref().map(|s| s.id),
        sprint_name: issue.sprint.as_ref().map(|s| s.name.clone()),
        sprint_state: issue.sprint.map(|s| s.state),
        updated_ms,
        deleted: false,
        sync_id: Some(sync.id.clone()),
        synced_at: now,
        detail: Some(Value::Object(
            DETAIL_FIELDS
                .iter()
                .map(|k| (k.to_string(), f[*k].clone()))
                .collect(),
        )),
    })
}

/// The payload of `issue.*` events.
pub fn issue_event_payload(sync: &SyncRow, issue: &IssueRow) -> Value {
    json!({
        "sync_id": sync.id,
        "cloud_id": sync.cloud_id,
        "issue": super::IssueView::from_row(issue),
    })
}

/// What storing one changed issue did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    Unchanged,
    Created,
    Updated,
}

/// Upsert one issue unless the stored copy is as new; `emit` records the
/// matching `issue.*` event in the same transaction.
pub async fn store_issue(
    conn: &mut sqlx::AnyConnection,
    sync: &SyncRow,
    issue: &IssueRow,
    prev: Option<(i64, bool)>,
    emit: bool,
) -> Result<Stored, StoreError> {
    let what = match prev {
        Some((updated, false)) if updated >= issue.updated_ms => return Ok(Stored::Unchanged),
        Some((_, false)) => Stored::Updated,
        _ => Stored::Created,
    };
    rows::upsert_issue(conn, issue).await?;
    if emit {
        let t = if what == Stored::Created {
            "issue.created"
        } else {
            "issue.updated"
        };
        crate::events::record(
            conn,
            &sync.app_id,
            Some(&sync.connection_id),
            t,
            issue_event_payload(sync, issue),
        )
        .await?;
    }
    Ok(what)
}

/// Mark a connection's copy of an issue deleted (after Jira answered 404)
/// and record `issue.deleted` for the sync that stored it (else the first
/// of `syncs`, all of one connection). `None` when it was already deleted.
pub async fn mark_deleted_and_announce(
    conn: &mut sqlx::AnyConnection,
    syncs: &[SyncRow],
    issue_id: &str,
    now: i64,
) -> Result<Option<IssueRow>, StoreError> {
    let Some(first) = syncs.first() else {
        return Ok(None);
    };
    if !rows::mark_deleted(conn, &first.connection_id, issue_id, now).await? {
        return Ok(None);
    }
    let Some(row) = rows::get_issue(&mut *conn, &first.connection_id, issue_id).await? else {
        return Ok(None);
    };
    let sync = syncs
        .iter()
        .find(|s| row.sync_id.as_deref() == Some(s.id.as_str()))
        .unwrap_or(first);
    crate::events::record(
        conn,
        &sync.app_id,
        Some(&sync.connection_id),
        "issue.deleted",
        issue_event_payload(sync, &row),
    )
    .await?;
    Ok(Some(row))
}

// ---------------------------------------------------------------- the pass

pub use crate::store::syncs::PassKind;

/// Renew the claim (and fail fast if another process holds it now).
async fn renew(
    conn: &mut sqlx::AnyConnection,
    state: &Core,
    sync_id: &str,
) -> Result<(), SyncError> {
    let until = now() + lease_secs(state);
    if !passes::renew_lease(conn, sync_id, &state.jobs.worker_id, until).await? {
        return Err(SyncError::LeaseLost);
    }
    Ok(())
}

/// Begin a pass: its partitions with empty checkpoints.
async fn start_pass(state: &Core, sync: &mut SyncRow) -> Result<(), SyncError> {
    let (filter, _) = split_order_by(&sync.jql);
    let filter = filter.to_string();
    let now = now();
    let (kind, parts): (PassKind, Vec<(String, String, Option<i64>)>) = if !sync.full_done {
        // When the JQL matches at most one id page, only the projects that
        // hold matches get a partition (a site may have hundreds of projects).
        let probe_query = [
            ("jql", filter.clone()),
            ("maxResults", "5000".into()),
            ("fields", "key".into()),
        ];
        let (projects, probe) = tokio::try_join!(list_projects(state, sync), async {
            Ok::<_, SyncError>(
                ops_ctx(state, sync)
                    .get("rest/api/3/search/jql", &probe_query)
                    .await?,
            )
        },)?;
        let mut tx = state.store.begin_write().await?;
        for p in &projects {
            rows::upsert_project(&mut tx, &sync.connection_id, &p.id, &p.key, &p.name, now).await?;
        }
        tx.commit().await?;
        let complete = probe["nextPageToken"].as_str().is_none();
        let present: HashSet<String> = probe["issues"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|i| i["key"].as_str())
                    .map(|k| key_order(k).0)
                    .collect()
            })
            .unwrap_or_default();
        let wanted: Vec<&Project> = projects
            .iter()
            .filter(|p| !complete || present.contains(&p.key))
            .collect();
        let parts = if wanted.is_empty() {
            vec![("*".to_string(), filter.clone(), None)]
        } else {
            wanted
                .iter()
                .map(|p| {
                    let id = &p.id;
                    (id.clone(), format!("({filter}) AND project = {id}"), None)
                })
                .collect()
        };
        (PassKind::Full, parts)
    } else {
        let overlap_ms = Tuning::get(&state.jobs.tuning.sync_overlap_s) as i64 * 1000;
        let from = sync.cursor_updated_ms.map(|c| c - overlap_ms);
        (
            PassKind::Incremental,
            vec![("*".to_string(), filter.clone(), from)],
        )
    };
    let mut tx = state.store.begin_write().await?;
    renew(&mut tx, state, &sync.id).await?;
    passes::start_pass(&mut tx, &sync.id, kind, &parts, now).await?;
    tx.commit().await?;
    sync.pass_kind = Some(kind);
    sync.pass_started_at = Some(now);
    Ok(())
}

/// Stream one partition to the store, page by page, from its checkpoint.
async fn run_partition(
    state: &Core,
    sync: &SyncRow,
    kind: PassKind,
    mut p: PartitionRow,
) -> Result<(), SyncError> {
    let tz = sync.time_zone.clone().unwrap_or_else(|| "UTC".into());
    let fields = field_list(sync);
    let page_size = Tuning::get(&state.jobs.tuning.sync_page_size)
        .clamp(1, 100)
        .to_string();
    let mut token: Option<String> = None;
    // One chain of page tokens runs until a page is stored (the checkpoint
    // then moves strictly forward and the next query starts afresh).
    let mut chain = PageGuard::new("issue search");
    loop {
        // App calls go first: beside them, page cycles take turns (priority.rs).
        let turn = state.atlassian.priority().background_turn().await;
        let mut jql = format!("({})", p.jql);
        if let Some(ms) = p.cursor_updated_ms.or(p.from_ms) {
            jql.push_str(&format!(" AND updated >= \"{}\"", date_bound(ms, &tz)));
        }
        jql.push_str(" ORDER BY updated ASC, key ASC");
        let mut q = vec![
            ("jql", jql),
            ("maxResults", page_size.clone()),
            ("fields", fields.clone()),
        ];
        if let Some(t) = &token {
            q.push(("nextPageToken", t.clone()));
        }
        let v = ops_ctx(state, sync)
            .get("rest/api/3/search/jql", &q)
            .await?;
        Counters::bump(&state.jobs.counters.sync_pages);
        let issues = v["issues"]
            .as_array()
            .ok_or_else(|| SyncError::Shape("search without `issues`".into()))?;
        let next_token = v["nextPageToken"].as_str().map(String::from);
        let is_last = v["isLast"].as_bool().unwrap_or(next_token.is_none()) || next_token.is_none();
        let now = now();
        let cursor = p
            .cursor_updated_ms
            .map(|u| (u, key_order(p.cursor_key.as_deref().unwrap_or(""))));
        let fresh: Vec<IssueRow> = issues
            .iter()
            .filter_map(|i| parse_issue(i, sync, now))
            .filter(|i| {
                cursor
                    .as_ref()
                    .is_none_or(|c| (i.updated_ms, key_order(&i.issue_key)) > *c)
            })
            .collect();
        if fresh.is_empty() && !is_last {
            // The whole page is at or before the checkpoint: many issues share
            // its minute. Page on within this query until past them.
            if let Some(t) = &next_token {
                chain.follow(t)?;
            }
            token = next_token;
            continue;
        }
        let last = fresh
            .iter()
            .max_by(|a, b| {
                (a.updated_ms, key_order(&a.issue_key))
                    .cmp(&(b.updated_ms, key_order(&b.issue_key)))
            })
            .map(|i| (i.updated_ms, i.issue_key.clone()));
        let write_turn = state
            .jobs
            .sync_write_turn(state.store.backend() == crate::store::Backend::Sqlite)
            .await;
        let mut tx = state.store.begin_write().await?;
        renew(&mut tx, state, &sync.id).await?;
        let ids: Vec<String> = fresh.iter().map(|i| i.issue_id.clone()).collect();
        let prev = rows::existing(&mut tx, &sync.connection_id, &ids).await?;
        let mut emitted = false;
        let mut upserted = 0u64;
        for issue in &fresh {
            let s = store_issue(
                &mut tx,
                sync,
                issue,
                prev.get(&issue.issue_id).copied(),
                kind == PassKind::Incremental,
            )
            .await?;
            emitted |= s != Stored::Unchanged && kind == PassKind::Incremental;
            upserted += u64::from(s != Stored::Unchanged);
        }
        if let Some((ms, key)) = &last {
            p.cursor_updated_ms = Some(*ms);
            p.cursor_key = Some(key.clone());
            passes::raise_pass_max(&mut tx, &sync.id, *ms).await?;
        }
        p.stored += fresh.len() as i64;
        passes::save_checkpoint(&mut tx, &p, is_last).await?;
        tx.commit().await?;
        drop(write_turn);
        state.metrics.sync_issues_upserted(upserted);
        if emitted {
            crate::events::wake(state);
        }
        turn.finish().await;
        if is_last {
            return Ok(());
        }
        token = None;
        chain = PageGuard::new("issue search");
    }
}

/// Jira still has the issue, but no longer in the sync's JQL: the copy
/// keeps its last synced state, and answers no MCP store read until a sync
/// stores it again (`mcp::reads`).
pub async fn left_the_jql(
    state: &Core,
    connection_id: &ConnectionId,
    issue_id: &str,
) -> Result<(), StoreError> {
    let now_ms = chrono::Utc::now().timestamp_millis();
    rows::mark_issue_stale(state.store.pool(), connection_id, issue_id, now_ms).await
}

/// Find stored issues of this sync that Jira no longer has (deleted while
/// no webhook told us) and mark them `deleted`. Ids leave the JQL for other
/// reasons too, so each missing one is confirmed by `GET issue` → 404.
async fn reconcile(state: &Core, sync: &SyncRow) -> Result<usize, SyncError> {
    let (filter, _) = split_order_by(&sync.jql);
    let mut remote: HashSet<String> = HashSet::new();
    let mut token: Option<String> = None;
    let mut guard = PageGuard::new("reconciliation search");
    loop {
        let mut q = vec![
            ("jql", filter.to_string()),
            ("maxResults", "5000".into()),
            ("fields", "id".into()),
        ];
        if let Some(t) = &token {
            q.push(("nextPageToken", t.clone()));
        }
        let v = ops_ctx(state, sync)
            .get("rest/api/3/search/jql", &q)
            .await?;
        for i in v["issues"].as_array().cloned().unwrap_or_default() {
            if let Some(id) = i["id"].as_str() {
                remote.insert(id.to_string());
            }
        }
        token = v["nextPageToken"].as_str().map(String::from);
        match &token {
            Some(t) => guard.follow(t)?,
            None => break,
        }
    }
    let local = passes::live_issue_ids(state.store.pool(), &sync.connection_id, &sync.id).await?;
    let mut deleted = 0;
    for id in local
        .iter()
        .filter(|id| !remote.contains(*id))
        .take(RECONCILE_CHECK_CAP)
    {
        if !gone_in_jira(state, &sync.connection_id, id).await? {
            left_the_jql(state, &sync.connection_id, id).await?;
            continue;
        }
        let mut tx = state.store.begin_write().await?;
        if mark_deleted_and_announce(&mut tx, std::slice::from_ref(sync), id, now())
            .await?
            .is_some()
        {
            deleted += 1;
        }
        tx.commit().await?;
    }
    passes::set_reconciled(state.store.pool(), &sync.id, now()).await?;
    if deleted > 0 {
        crate::events::wake(state);
    }
    Ok(deleted)
}

/// Does Jira answer 404 for this issue to this connection? (Reconciliation
/// and webhook hints both ask it; only that answer marks a copy deleted.)
pub async fn gone_in_jira(
    state: &Core,
    connection_id: &ConnectionId,
    issue_id: &str,
) -> Result<bool, SyncError> {
    let req = ApiRequest::get(Product::Jira, format!("rest/api/3/issue/{issue_id}"))
        .query(&[("fields", "id")]);
    match state.atlassian.call(None, connection_id, req).await {
        Ok(_) => Ok(false),
        Err(AtlassianError::Status { status, .. }) if status.as_u16() == 404 => Ok(true),
        Err(e) => Err(e.into()),
    }
}

/// Run (or resume) one pass of a sync this process has claimed.
pub async fn run_pass(state: &Core, sync_id: &str) -> Result<PassKind, SyncError> {
    let mut sync = rows::get(state.store.pool(), sync_id)
        .await?
        .ok_or(SyncError::LeaseLost)?;
    discover(state, &mut sync).await?;
    if sync.webhooks {
        // A webhook problem does not stop polling; it shows as `webhook_error`.
        if let Err(e) = super::registration::upkeep(state, &mut sync).await {
            tracing::warn!(sync_id = %sync.id, error = %e.describe(), "webhook upkeep failed");
        }
    }
    if sync.pass_kind.is_none() {
        start_pass(state, &mut sync).await?;
        super::eta::record_expected(state, &sync).await;
    }
    let kind = sync.pass_kind.unwrap_or(PassKind::Incremental);
    let pending: Vec<PartitionRow> = rows::partitions(state.store.pool(), &sync.id)
        .await?
        .into_iter()
        .filter(|p| !p.done)
        .collect();
    let concurrency = Tuning::get(&state.jobs.tuning.sync_partition_concurrency).max(1) as usize;
    let results: Vec<Result<(), SyncError>> = futures::stream::iter(pending)
        .map(|p| run_partition(state, &sync, kind, p))
        .buffer_unordered(concurrency)
        .collect()
        .await;
    for r in results {
        r?;
    }
    let reconcile_every = Tuning::get(&state.jobs.tuning.sync_reconcile_s) as i64;
    if kind == PassKind::Incremental
        && sync
            .last_reconciled_at
            .is_none_or(|t| now() - t >= reconcile_every)
    {
        reconcile(state, &sync).await?;
    }
    finish_pass(state, &sync, kind).await?;
    Counters::bump(&state.jobs.counters.sync_passes);
    state.metrics.sync_pass(kind.as_str(), "ok");
    Ok(kind)
}

/// Issues of the connection stored by this sync and not deleted.
pub use crate::store::passes::issues_synced;

async fn finish_pass(state: &Core, sync: &SyncRow, kind: PassKind) -> Result<(), SyncError> {
    let now = now();
    let mut tx = state.store.begin_write().await?;
    renew(&mut tx, state, &sync.id).await?;
    let row = rows::get(&mut *tx, &sync.id)
        .await?
        .ok_or(SyncError::LeaseLost)?;
    let stored = passes::stored_in_pass(&mut tx, &sync.id).await.unwrap_or(0);
    let cursor = match (row.cursor_updated_ms, row.pass_max_updated_ms) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    passes::finish_pass(&mut tx, &sync.id, cursor, now).await?;
    let total = issues_synced(&mut *tx, &sync.id).await?;
    crate::events::record(
        &mut tx,
        &sync.app_id,
        Some(&sync.connection_id),
        "sync.completed",
        json!({"sync_id": sync.id, "pass": kind.as_str(), "issues_stored": stored, "issues_synced": total}),
    )
    .await?;
    tx.commit().await?;
    crate::events::wake(state);
    tracing::info!(sync_id = %sync.id, pass = kind.as_str(), stored, total, "sync pass completed");
    Ok(())
}

/// Record a failed pass: the checkpoints stay, the next run resumes.
pub async fn fail_pass(state: &Core, sync_id: &str, error: &SyncError) -> Result<(), SyncError> {
    if matches!(error, SyncError::LeaseLost) {
        return Ok(());
    }
    let now = now();
    let msg = error.describe();
    let mut tx = state.store.begin_write().await?;
    let Some(row) = rows::get(&mut *tx, sync_id).await? else {
        return Ok(());
    };
    if row.locked_by.as_deref() != Some(state.jobs.worker_id.as_str()) {
        return Ok(());
    }
    let backoff = (5i64 << row.failures.clamp(0, 10)).min(row.interval_s.max(1));
    passes::record_failure(&mut tx, sync_id, &msg, now, now + backoff).await?;
    // One `sync.failed` per streak of failures, not one per retry.
    if row.failures == 0 {
        crate::events::record(
            &mut tx,
            &row.app_id,
            Some(&row.connection_id),
            "sync.failed",
            json!({"sync_id": row.id, "error": msg}),
        )
        .await?;
    }
    tx.commit().await?;
    // The kind the pass had (or, failing before it started, would have had).
    let kind = match row.pass_kind {
        Some(k) => k,
        None if !row.full_done => PassKind::Full,
        None => PassKind::Incremental,
    };
    state.metrics.sync_pass(kind.as_str(), "error");
    crate::events::wake(state);
    tracing::warn!(sync_id, error = %msg, "sync pass failed; it resumes from its checkpoint");
    Ok(())
}

/// Renews a claim in the background; stops when dropped (so an aborted
/// pass stops renewing and its lease runs out).
pub struct Heartbeat(tokio::task::JoinHandle<()>);

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Keep the claim alive while a pass waits on Atlassian (rate limits).
pub fn heartbeat(state: Core, sync_id: String) -> Heartbeat {
    Heartbeat(tokio::spawn(async move {
        loop {
            let every = Duration::from_millis((lease_secs(&state) * 1000 / 4) as u64);
            tokio::time::sleep(every).await;
            if let Ok(mut conn) = state.store.pool().acquire().await {
                let _ = renew(&mut conn, &state, &sync_id).await;
            }
        }
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::jira::ops::{issue_from_json, FieldRef, SiteFields};

    /// The same Jira issue JSON read by the sync path (which webhooks share:
    /// `webhooks::apply_hint` re-reads with [`parse_issue`]) and the typed operations
    /// gives the same issue — whatever the case of the sprint state and
    /// whether the sprint field holds an array or one object.
    #[test]
    fn sync_webhook_and_typed_operation_read_an_issue_alike() {
        let sprint_active = json!({"id": 7, "name": "Sprint 7", "state": "ACTIVE"});
        let sprint_closed = json!({"id": 6, "name": "Sprint 6", "state": "closed"});
        for sprint_field in [
            json!([sprint_closed.clone(), sprint_active.clone()]),
            json!([sprint_active.clone(), sprint_closed.clone()]),
            sprint_active.clone(),
        ] {
            let issue = json!({
                "id": "10001",
                "key": "ACME-1",
                "fields": {
                    "summary": "Login page",
                    "status": {"name": "In Progress"},
                    "issuetype": {"name": "Story"},
                    "project": {"id": "10000", "key": "ACME"},
                    "updated": "2025-12-01T10:00:00.000+0000",
                    "customfield_10016": 5.0,
                    "customfield_10020": sprint_field,
                }
            });
            let sync = SyncRow {
                id: "syn_1".into(),
                connection_id: "con_1".into(),
                site_url: "https://acme.atlassian.net".into(),
                story_points_field: Some("customfield_10016".into()),
                sprint_field: Some("customfield_10020".into()),
                ..Default::default()
            };
            let fields = SiteFields {
                story_points: Some(FieldRef {
                    id: "customfield_10016".into(),
                    name: "Story Points".into(),
                }),
                sprint: Some(FieldRef {
                    id: "customfield_10020".into(),
                    name: "Sprint".into(),
                }),
            };
            let synced = parse_issue(&issue, &sync, 0).unwrap();
            let typed = issue_from_json("https://acme.atlassian.net", &fields, &issue);
            assert_eq!(synced.issue_id, typed.id);
            assert_eq!(synced.issue_key, typed.key);
            assert_eq!(synced.url, typed.url);
            assert_eq!(synced.summary, typed.summary);
            assert_eq!(synced.status, typed.status);
            assert_eq!(synced.issue_type, typed.type_);
            assert_eq!(
                synced
                    .story_points
                    .as_deref()
                    .map(|s| s.parse::<f64>().unwrap()),
                typed.story_points
            );
            let typed_sprint = typed.sprint.unwrap();
            assert_eq!(synced.sprint_id, Some(typed_sprint.id));
            assert_eq!(synced.sprint_id, Some(7), "the active sprint wins");
            assert_eq!(
                synced.sprint_name.as_deref(),
                Some(typed_sprint.name.as_str())
            );
            assert_eq!(synced.sprint_state, Some(typed_sprint.state));
            assert_eq!(synced.project_key.as_deref(), Some("ACME"));
        }
    }
}
