//! Rows of `syncs`, `sync_partitions`, `synced_issues` and `synced_projects`.

use sqlx::{Any, AnyConnection, Executor};

use crate::ids::{CloudId, ConnectionId, Jql, Owner};
use crate::store::StoreError;

text_enum! {
    /// Where a sync is (docs/design.md §6): `pending` until its first pass,
    /// `running` while a worker holds it, then `idle` or `failed`;
    /// `stopped` once its connection is gone.
    #[derive(Default)]
    pub enum SyncState {
        #[default]
        Pending = "pending",
        Running = "running",
        Idle = "idle",
        Failed = "failed",
        Stopped = "stopped",
    }
}

text_enum! {
    /// The kind of a sync's pass: the first (full, partitioned by project)
    /// or the ones after it (incremental from the checkpoint).
    pub enum PassKind {
        Full = "full",
        Incremental = "incremental",
    }
}

/// One `syncs` row.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct SyncRow {
    pub id: String,
    pub app_id: String,
    pub connection_id: ConnectionId,
    pub cloud_id: CloudId,
    pub site_url: String,
    pub jql: Jql,
    #[sqlx(try_from = "super::Flag")]
    pub webhooks: bool,
    pub interval_s: i64,
    pub state: SyncState,
    #[sqlx(try_from = "super::Flag")]
    pub full_done: bool,
    pub cursor_updated_ms: Option<i64>,
    pub cursor_key: Option<String>,
    pub pass_kind: Option<PassKind>,
    pub pass_started_at: Option<i64>,
    pub pass_max_updated_ms: Option<i64>,
    #[sqlx(try_from = "super::Flag")]
    pub run_requested: bool,
    pub next_run_at: i64,
    pub last_run_at: Option<i64>,
    pub last_error: Option<String>,
    pub failures: i64,
    pub passes: i64,
    pub locked_by: Option<String>,
    pub locked_until: Option<i64>,
    pub time_zone: Option<String>,
    pub story_points_field: Option<String>,
    pub sprint_field: Option<String>,
    pub webhook_id: Option<i64>,
    pub webhook_filter: Option<String>,
    #[sqlx(try_from = "super::Flag")]
    pub webhook_local_filter: bool,
    pub webhook_expires_at: Option<i64>,
    pub webhook_error: Option<String>,
    pub last_reconciled_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub const SYNC_COLUMNS: &str = "id, app_id, connection_id, cloud_id, site_url, jql, webhooks, interval_s, \
state, full_done, cursor_updated_ms, cursor_key, pass_kind, pass_started_at, pass_max_updated_ms, \
run_requested, next_run_at, last_run_at, last_error, failures, passes, locked_by, locked_until, time_zone, \
story_points_field, sprint_field, webhook_id, webhook_filter, webhook_local_filter, webhook_expires_at, \
webhook_error, last_reconciled_at, created_at, updated_at";

pub async fn get<'e, E: Executor<'e, Database = Any>>(
    e: E,
    id: &str,
) -> Result<Option<SyncRow>, StoreError> {
    Ok(
        sqlx::query_as::<_, SyncRow>(&format!("SELECT {SYNC_COLUMNS} FROM syncs WHERE id = $1"))
            .bind(id)
            .fetch_optional(e)
            .await?,
    )
}

pub async fn of_connection<'e, E: Executor<'e, Database = Any>>(
    e: E,
    connection_id: &ConnectionId,
) -> Result<Vec<SyncRow>, StoreError> {
    Ok(sqlx::query_as::<_, SyncRow>(&format!(
        "SELECT {SYNC_COLUMNS} FROM syncs WHERE connection_id = $1 ORDER BY created_at, id"
    ))
    .bind(connection_id)
    .fetch_all(e)
    .await?)
}

pub async fn insert(conn: &mut AnyConnection, row: &SyncRow) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO syncs (id, app_id, connection_id, cloud_id, site_url, jql, webhooks, interval_s, \
         state, next_run_at, created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)",
    )
    .bind(&row.id)
    .bind(&row.app_id)
    .bind(&row.connection_id)
    .bind(&row.cloud_id)
    .bind(&row.site_url)
    .bind(&row.jql)
    .bind(i64::from(row.webhooks))
    .bind(row.interval_s)
    .bind(row.state.as_str())
    .bind(row.next_run_at)
    .bind(row.created_at)
    .bind(row.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// One `sync_partitions` row: the checkpoint of one stream of a pass.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PartitionRow {
    pub sync_id: String,
    pub part: String,
    pub jql: Jql,
    pub from_ms: Option<i64>,
    pub cursor_updated_ms: Option<i64>,
    pub cursor_key: Option<String>,
    pub stored: i64,
    #[sqlx(try_from = "super::Flag")]
    pub done: bool,
}

pub async fn partitions<'e, E: Executor<'e, Database = Any>>(
    e: E,
    sync_id: &str,
) -> Result<Vec<PartitionRow>, StoreError> {
    Ok(sqlx::query_as::<_, PartitionRow>(
        "SELECT sync_id, part, jql, from_ms, cursor_updated_ms, cursor_key, stored, done \
         FROM sync_partitions WHERE sync_id = $1 ORDER BY part",
    )
    .bind(sync_id)
    .fetch_all(e)
    .await?)
}

/// An issue as stored locally.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct IssueRow {
    pub connection_id: ConnectionId,
    pub issue_id: String,
    pub issue_key: String,
    pub project_id: Option<String>,
    pub project_key: Option<String>,
    pub summary: Option<String>,
    pub status: Option<String>,
    pub issue_type: Option<String>,
    /// The number as text (`f64` shortest round-trip form).
    pub story_points: Option<String>,
    pub sprint_id: Option<i64>,
    pub sprint_name: Option<String>,
    pub sprint_state: Option<String>,
    pub updated_ms: i64,
    pub url: String,
    #[sqlx(try_from = "super::Flag")]
    pub deleted: bool,
    pub sync_id: Option<String>,
    pub synced_at: i64,
    /// Jira's `description`, `assignee`, `reporter`, `resolution` and
    /// `created` as one JSON object (what `jira_get_issue` shows from the
    /// store); `None` for a copy stored before they were asked for.
    #[sqlx(try_from = "super::JsonText")]
    pub detail: Option<serde_json::Value>,
}

pub const ISSUE_COLUMNS: &str =
    "connection_id, issue_id, issue_key, project_id, project_key, summary, \
status, issue_type, story_points, sprint_id, sprint_name, sprint_state, updated_ms, url, deleted, \
sync_id, synced_at, detail";

/// `(updated_ms, deleted)` of the stored copies of `ids` (one query per page).
pub async fn existing(
    conn: &mut AnyConnection,
    connection_id: &ConnectionId,
    ids: &[String],
) -> Result<std::collections::HashMap<String, (i64, bool)>, StoreError> {
    let mut out = std::collections::HashMap::new();
    for chunk in ids.chunks(200) {
        let ph: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT issue_id, updated_ms, deleted FROM synced_issues WHERE connection_id = $1 AND issue_id IN ({})",
            ph.join(",")
        );
        let mut q = sqlx::query_as::<_, (String, i64, i64)>(&sql).bind(connection_id);
        for id in chunk {
            q = q.bind(id);
        }
        for (id, u, d) in q.fetch_all(&mut *conn).await? {
            out.insert(id, (u, d != 0));
        }
    }
    Ok(out)
}

pub async fn upsert_issue(conn: &mut AnyConnection, row: &IssueRow) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO synced_issues ({ISSUE_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18) \
         ON CONFLICT (connection_id, issue_id) DO UPDATE SET issue_key = excluded.issue_key, \
         project_id = excluded.project_id, project_key = excluded.project_key, summary = excluded.summary, \
         status = excluded.status, issue_type = excluded.issue_type, story_points = excluded.story_points, \
         sprint_id = excluded.sprint_id, sprint_name = excluded.sprint_name, sprint_state = excluded.sprint_state, \
         updated_ms = excluded.updated_ms, url = excluded.url, deleted = excluded.deleted, \
         sync_id = excluded.sync_id, synced_at = excluded.synced_at, detail = excluded.detail, \
         stale_since_ms = NULL"
    ))
    .bind(&row.connection_id)
    .bind(&row.issue_id)
    .bind(&row.issue_key)
    .bind(row.project_id.clone())
    .bind(row.project_key.clone())
    .bind(row.summary.clone())
    .bind(row.status.clone())
    .bind(row.issue_type.clone())
    .bind(row.story_points.clone())
    .bind(row.sprint_id)
    .bind(row.sprint_name.clone())
    .bind(row.sprint_state.clone())
    .bind(row.updated_ms)
    .bind(&row.url)
    .bind(i64::from(row.deleted))
    .bind(row.sync_id.clone())
    .bind(row.synced_at)
    .bind(row.detail.as_ref().map(super::AsJson))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_issue<'e, E: Executor<'e, Database = Any>>(
    e: E,
    connection_id: &ConnectionId,
    issue_id: &str,
) -> Result<Option<IssueRow>, StoreError> {
    Ok(sqlx::query_as::<_, IssueRow>(&format!(
        "SELECT {ISSUE_COLUMNS} FROM synced_issues WHERE connection_id = $1 AND issue_id = $2"
    ))
    .bind(connection_id)
    .bind(issue_id)
    .fetch_optional(e)
    .await?)
}

/// Mark an issue deleted; true when it was not already.
pub async fn mark_deleted(
    conn: &mut AnyConnection,
    connection_id: &ConnectionId,
    issue_id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "UPDATE synced_issues SET deleted = 1, synced_at = $1 WHERE connection_id = $2 AND issue_id = $3 AND deleted = 0",
    )
    .bind(now)
    .bind(connection_id)
    .bind(issue_id)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() > 0)
}

pub async fn upsert_project(
    conn: &mut AnyConnection,
    connection_id: &ConnectionId,
    id: &str,
    key: &str,
    name: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO synced_projects (connection_id, project_id, project_key, name, synced_at) \
         VALUES ($1,$2,$3,$4,$5) ON CONFLICT (connection_id, project_id) DO UPDATE SET \
         project_key = excluded.project_key, name = excluded.name, synced_at = excluded.synced_at",
    )
    .bind(connection_id)
    .bind(id)
    .bind(key)
    .bind(name)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// A sync as the admin dashboard lists it: the row's headline columns, who
/// it belongs to, and its progress (never a token or secret).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SyncOverview {
    pub id: String,
    pub app_name: String,
    pub connection_id: ConnectionId,
    pub owner: Owner,
    pub site_url: String,
    pub jql: Jql,
    pub state: SyncState,
    #[sqlx(try_from = "super::Flag")]
    pub webhooks: bool,
    pub webhook_id: Option<i64>,
    pub webhook_expires_at: Option<i64>,
    pub webhook_error: Option<String>,
    pub last_run_at: Option<i64>,
    pub last_error: Option<String>,
    pub next_run_at: i64,
    pub passes: i64,
    pub pass_kind: Option<PassKind>,
    /// Issues stored by this sync and not deleted.
    pub issues_synced: i64,
    /// Partitions of the pass in progress, how many are done, issues stored so far.
    pub partitions: i64,
    pub partitions_done: i64,
    pub pass_stored: i64,
}

/// Every sync (newest first, at most `limit`) with its app, owner and progress.
pub async fn overview<'e, E: Executor<'e, Database = Any>>(
    e: E,
    limit: i64,
) -> Result<Vec<SyncOverview>, StoreError> {
    Ok(sqlx::query_as::<_, SyncOverview>(
        "SELECT s.id, a.name AS app_name, s.connection_id, c.owner, s.site_url, s.jql, s.state, \
         s.webhooks, s.webhook_id, s.webhook_expires_at, s.webhook_error, s.last_run_at, s.last_error, \
         s.next_run_at, s.passes, s.pass_kind, \
         (SELECT COUNT(*) FROM synced_issues i WHERE i.sync_id = s.id AND i.deleted = 0) AS issues_synced, \
         (SELECT COUNT(*) FROM sync_partitions p WHERE p.sync_id = s.id) AS partitions, \
         (SELECT COUNT(*) FROM sync_partitions p WHERE p.sync_id = s.id AND p.done <> 0) AS partitions_done, \
         (SELECT CAST(COALESCE(SUM(p.stored), 0) AS BIGINT) FROM sync_partitions p WHERE p.sync_id = s.id) AS pass_stored \
         FROM syncs s JOIN apps a ON a.id = s.app_id JOIN connections c ON c.id = s.connection_id \
         ORDER BY s.created_at DESC, s.id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(e)
    .await?)
}

/// Filters of the synced-issues list.
#[derive(Debug, Default)]
pub struct IssueFilter {
    /// Project key or id.
    pub project: Option<String>,
    pub updated_since_ms: Option<i64>,
    /// Keyset cursor: after `(updated_ms, issue_id)`.
    pub after: Option<(i64, String)>,
}

/// One page of a connection's synced issues, by `updated` then issue id.
pub async fn list_issues(
    pool: &sqlx::AnyPool,
    connection_id: &ConnectionId,
    filter: &IssueFilter,
    limit: i64,
) -> Result<super::Page<IssueRow>, sqlx::Error> {
    let mut q = super::SqlBuilder::new(format!(
        "SELECT {ISSUE_COLUMNS} FROM synced_issues WHERE connection_id = "
    ));
    q.push_bind(connection_id.to_string());
    if let Some(p) = &filter.project {
        q.push_key_or_id("project_key", "project_id", p);
    }
    if let Some(ms) = filter.updated_since_ms {
        q.push(" AND updated_ms >= ").push_bind(ms);
    }
    if let Some((ms, issue_id)) = &filter.after {
        q.push_after_updated("issue_id", *ms, issue_id);
    }
    super::fetch_page(pool, q, "updated_ms, issue_id", limit).await
}

/// Every sync of every app (`atlasgate sync status`).
pub async fn list_all(pool: &sqlx::AnyPool) -> Result<Vec<SyncRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SYNC_COLUMNS} FROM syncs ORDER BY created_at, id"
    ))
    .fetch_all(pool)
    .await
}

/// Ask for a pass now (`POST …/syncs/{sync}/run`).
pub async fn request_run(pool: &sqlx::AnyPool, sync_id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE syncs SET run_requested = 1, next_run_at = $1, updated_at = $1 WHERE id = $2",
    )
    .bind(now)
    .bind(sync_id)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn delete(pool: &sqlx::AnyPool, sync_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM syncs WHERE id = $1")
        .bind(sync_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Claim up to `limit` due syncs for worker `me` until `lease_until`
/// (state `running`): `FOR UPDATE SKIP LOCKED` on PostgreSQL, under
/// `BEGIN IMMEDIATE` on SQLite, so no two processes take the same sync.
pub async fn claim_due(
    store: &super::Store,
    me: &str,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> Result<Vec<String>, StoreError> {
    let mut tx = store.begin_write().await?;
    let ids: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT id FROM syncs WHERE state <> 'stopped' AND next_run_at <= $1 \
         AND (locked_until IS NULL OR locked_until < $1) ORDER BY next_run_at, id LIMIT $2{}",
        store.for_update_skip_locked()
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    for id in &ids {
        sqlx::query(
            "UPDATE syncs SET locked_by = $1, locked_until = $2, state = 'running', run_requested = 0, \
             updated_at = $3 WHERE id = $4",
        )
        .bind(me)
        .bind(lease_until)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(ids)
}

/// Syncs with a registered Jira webhook (deliveries are matched to them).
pub async fn with_webhooks(pool: &sqlx::AnyPool) -> Result<Vec<SyncRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SYNC_COLUMNS} FROM syncs WHERE webhooks = 1 AND state <> 'stopped' AND webhook_id IS NOT NULL \
         ORDER BY webhook_local_filter, created_at, id"
    ))
    .fetch_all(pool)
    .await
}

/// The copy of issue `key_or_id` (upper-case key, or id) may be out of date
/// since `ms`: the MCP server wrote the issue, or it left the sync's JQL. It
/// answers no store read (`mcp::readable_issue`) until [`upsert_issue`]
/// stores it again.
pub async fn mark_issue_stale<'e, E: Executor<'e, Database = Any>>(
    e: E,
    connection_id: &ConnectionId,
    key_or_id: &str,
    ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE synced_issues SET stale_since_ms = $1 WHERE connection_id = $2 \
         AND (issue_key = $3 OR issue_id = $3)",
    )
    .bind(ms)
    .bind(connection_id)
    .bind(key_or_id)
    .execute(e)
    .await?;
    Ok(())
}
