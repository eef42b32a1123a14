//! Confluence syncs' rows: the `confluence_cql` of a sync, `synced_pages`,
//! and the bookkeeping of a Confluence pass on its `syncs` row.

use std::collections::HashMap;

use sqlx::{Any, AnyConnection, Executor};

use crate::ids::ConnectionId;
use crate::store::StoreError;

/// A Confluence page as stored locally.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PageRow {
    pub connection_id: ConnectionId,
    pub page_id: String,
    pub space_id: String,
    pub space_key: Option<String>,
    pub title: String,
    pub version: i64,
    /// When the current version was made (unix ms).
    pub updated_ms: i64,
    pub url: Option<String>,
    pub body_markdown: String,
    #[sqlx(try_from = "super::Flag")]
    pub deleted: bool,
    pub sync_id: Option<String>,
    pub synced_at: i64,
}

pub const PAGE_COLUMNS: &str = "connection_id, page_id, space_id, space_key, title, version, \
updated_ms, url, body_markdown, deleted, sync_id, synced_at";

/// Make `sync_id` a Confluence sync of `cql` (in the transaction that inserts it).
pub async fn set_confluence_cql(
    conn: &mut AnyConnection,
    sync_id: &str,
    cql: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE syncs SET confluence_cql = $1 WHERE id = $2")
        .bind(cql)
        .bind(sync_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The CQL of a Confluence sync; `None` for a Jira sync (or no such sync).
pub async fn confluence_cql<'e, E: Executor<'e, Database = Any>>(
    e: E,
    sync_id: &str,
) -> Result<Option<String>, StoreError> {
    let v: Option<Option<String>> =
        sqlx::query_scalar("SELECT confluence_cql FROM syncs WHERE id = $1")
            .bind(sync_id)
            .fetch_optional(e)
            .await?;
    Ok(v.flatten())
}

/// Whether this worker still holds the sync's lease.
pub async fn holds_lease(
    conn: &mut AnyConnection,
    sync_id: &str,
    worker_id: &str,
) -> Result<bool, StoreError> {
    let by: Option<Option<String>> =
        sqlx::query_scalar("SELECT locked_by FROM syncs WHERE id = $1")
            .bind(sync_id)
            .fetch_optional(conn)
            .await?;
    Ok(by.flatten().as_deref() == Some(worker_id))
}

/// `(version, deleted)` of the stored copies of `ids`.
pub async fn versions(
    conn: &mut AnyConnection,
    connection_id: &ConnectionId,
    ids: &[String],
) -> Result<HashMap<String, (i64, i64)>, StoreError> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(200) {
        let ph: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT page_id, version, deleted FROM synced_pages WHERE connection_id = $1 AND page_id IN ({})",
            ph.join(",")
        );
        let mut q = sqlx::query_as::<_, (String, i64, i64)>(&sql).bind(connection_id);
        for id in chunk {
            q = q.bind(id);
        }
        for (id, v, d) in q.fetch_all(&mut *conn).await? {
            out.insert(id, (v, d));
        }
    }
    Ok(out)
}

pub async fn upsert_page(conn: &mut AnyConnection, row: &PageRow) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO synced_pages ({PAGE_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12) \
         ON CONFLICT (connection_id, page_id) DO UPDATE SET space_id = excluded.space_id, \
         space_key = excluded.space_key, title = excluded.title, version = excluded.version, \
         updated_ms = excluded.updated_ms, url = excluded.url, body_markdown = excluded.body_markdown, \
         deleted = excluded.deleted, sync_id = excluded.sync_id, synced_at = excluded.synced_at, \
         stale_since_ms = NULL"
    ))
    .bind(&row.connection_id)
    .bind(&row.page_id)
    .bind(&row.space_id)
    .bind(row.space_key.clone())
    .bind(&row.title)
    .bind(row.version)
    .bind(row.updated_ms)
    .bind(row.url.clone())
    .bind(&row.body_markdown)
    .bind(i64::from(row.deleted))
    .bind(row.sync_id.clone())
    .bind(row.synced_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Ids of the pages this sync stored that are not deleted.
pub async fn live_ids<'e, E: Executor<'e, Database = Any>>(
    e: E,
    sync_id: &str,
) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT page_id FROM synced_pages WHERE sync_id = $1 AND deleted = 0 ORDER BY page_id",
    )
    .bind(sync_id)
    .fetch_all(e)
    .await?)
}

/// Mark a page deleted (its `updated_ms` moves to `now_ms`, so readers that
/// page by `updated_since` see the deletion); true when it was not already.
pub async fn mark_deleted(
    conn: &mut AnyConnection,
    connection_id: &ConnectionId,
    page_id: &str,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "UPDATE synced_pages SET deleted = 1, updated_ms = $1, synced_at = $2 \
         WHERE connection_id = $3 AND page_id = $4 AND deleted = 0",
    )
    .bind(now_ms)
    .bind(now_ms / 1000)
    .bind(connection_id)
    .bind(page_id)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Pages stored by this sync and not deleted.
pub async fn pages_synced<'e, E: Executor<'e, Database = Any>>(
    e: E,
    sync_id: &str,
) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM synced_pages WHERE sync_id = $1 AND deleted = 0")
            .bind(sync_id)
            .fetch_one(e)
            .await?,
    )
}

pub async fn get_page<'e, E: Executor<'e, Database = Any>>(
    e: E,
    connection_id: &ConnectionId,
    page_id: &str,
) -> Result<Option<PageRow>, StoreError> {
    Ok(sqlx::query_as::<_, PageRow>(&format!(
        "SELECT {PAGE_COLUMNS} FROM synced_pages WHERE connection_id = $1 AND page_id = $2"
    ))
    .bind(connection_id)
    .bind(page_id)
    .fetch_optional(e)
    .await?)
}

/// Filters of the synced-pages list.
#[derive(Debug, Default)]
pub struct PageFilter {
    /// Space key or id.
    pub space: Option<String>,
    pub updated_since_ms: Option<i64>,
    pub include_deleted: bool,
    /// Keyset cursor: after `(updated_ms, page_id)`.
    pub after: Option<(i64, String)>,
}

/// One page of a connection's synced pages, by `updated` then page id.
pub async fn list_pages(
    pool: &sqlx::AnyPool,
    connection_id: &ConnectionId,
    filter: &PageFilter,
    limit: i64,
) -> Result<super::Page<PageRow>, sqlx::Error> {
    let mut q = super::SqlBuilder::new(format!(
        "SELECT {PAGE_COLUMNS} FROM synced_pages WHERE connection_id = "
    ));
    q.push_bind(connection_id.to_string());
    if !filter.include_deleted {
        q.push(" AND deleted = 0");
    }
    if let Some(s) = &filter.space {
        q.push_key_or_id("space_key", "space_id", s);
    }
    if let Some(ms) = filter.updated_since_ms {
        q.push(" AND updated_ms >= ").push_bind(ms);
    }
    if let Some((ms, page_id)) = &filter.after {
        q.push_after_updated("page_id", *ms, page_id);
    }
    super::fetch_page(pool, q, "updated_ms, page_id", limit).await
}

/// What a finished Confluence pass writes on its `syncs` row.
#[derive(Debug, Clone, Copy)]
pub struct PassDone {
    /// The high-water mark: the latest version time stored (ms).
    pub cursor_ms: Option<i64>,
    /// The pass listed every page (deletions checked).
    pub reconciled: bool,
    pub now: i64,
}

/// Close a pass held by `worker_id`: idle, cursor moved, unlocked, the next
/// run scheduled. False when the lease was lost (nothing written).
pub async fn finish_pass(
    conn: &mut AnyConnection,
    sync_id: &str,
    worker_id: &str,
    done: PassDone,
) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "UPDATE syncs SET full_done = 1, \
         cursor_updated_ms = CASE WHEN cursor_updated_ms IS NULL OR cursor_updated_ms < $1 THEN $1 ELSE cursor_updated_ms END, \
         last_reconciled_at = CASE WHEN $2 = 1 THEN $3 ELSE last_reconciled_at END, \
         pass_kind = NULL, pass_started_at = NULL, state = 'idle', last_run_at = $3, last_error = NULL, \
         failures = 0, passes = passes + 1, \
         next_run_at = CASE WHEN run_requested = 1 THEN $3 ELSE $3 + interval_s END, run_requested = 0, \
         locked_by = NULL, locked_until = NULL, updated_at = $3 WHERE id = $4 AND locked_by = $5",
    )
    .bind(done.cursor_ms)
    .bind(i64::from(done.reconciled))
    .bind(done.now)
    .bind(sync_id)
    .bind(worker_id)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// The copy of page `page_id` may be out of date since `ms` (the MCP server
/// wrote the page): it answers no store read until [`upsert_page`] stores
/// it again.
pub async fn mark_page_stale<'e, E: Executor<'e, Database = Any>>(
    e: E,
    connection_id: &ConnectionId,
    page_id: &str,
    ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE synced_pages SET stale_since_ms = $1 WHERE connection_id = $2 AND page_id = $3",
    )
    .bind(ms)
    .bind(connection_id)
    .bind(page_id)
    .execute(e)
    .await?;
    Ok(())
}
