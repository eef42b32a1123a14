//! The MCP server's two tables (migration 0008): a connection's tool policy
//! and the `jira_create_issue` calls of the last minutes (idempotency); and
//! its reads of synced issues and pages (migration 0014: a copy marked
//! stale is not read until the sync stores it again).

use sqlx::{Any, Executor};

use super::{Store, StoreError};
use crate::ids::ConnectionId;

/// A connection's stored policy.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PolicyRow {
    pub connection_id: ConnectionId,
    #[sqlx(try_from = "super::Flag")]
    pub read_only: bool,
    /// Tool names (a JSON array in the column), `None` = every tool.
    #[sqlx(try_from = "super::JsonText")]
    pub tools: Option<Vec<String>>,
    pub updated_at: i64,
}

pub async fn get_policy<'e, E: Executor<'e, Database = Any>>(
    e: E,
    connection_id: &ConnectionId,
) -> Result<Option<PolicyRow>, StoreError> {
    Ok(sqlx::query_as::<_, PolicyRow>(
        "SELECT connection_id, read_only, tools, updated_at FROM mcp_policies WHERE connection_id = $1",
    )
    .bind(connection_id)
    .fetch_optional(e)
    .await?)
}

pub async fn put_policy<'e, E: Executor<'e, Database = Any>>(
    e: E,
    row: &PolicyRow,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO mcp_policies (connection_id, read_only, tools, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (connection_id) DO UPDATE SET read_only = excluded.read_only, \
         tools = excluded.tools, updated_at = excluded.updated_at",
    )
    .bind(&row.connection_id)
    .bind(i64::from(row.read_only))
    .bind(row.tools.as_deref().map(super::AsJson))
    .bind(row.updated_at)
    .execute(e)
    .await?;
    Ok(())
}

/// An issue created by an earlier `jira_create_issue` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedIssue {
    pub id: String,
    pub key: String,
    pub url: String,
}

/// What [`claim_create`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateClaim {
    /// No live record: this caller now holds the claim and must call
    /// [`finish_create`] or [`release_create`].
    Claimed,
    /// The same call already created this issue.
    Done(CreatedIssue),
    /// The same call is being made by another caller since `since`.
    InFlight { since: i64 },
}

#[derive(sqlx::FromRow)]
struct CreatedRow {
    issue_id: Option<String>,
    issue_key: Option<String>,
    url: Option<String>,
    created_at: i64,
}

/// Claim the right to create the issue of `request_hash`, under the write
/// lock so two processes cannot both claim it. Records older than
/// `window_s` are forgotten (and this connection's are pruned), as is a claim
/// still in flight after `stale_claim_s` (its caller died).
pub async fn claim_create(
    store: &Store,
    connection_id: &ConnectionId,
    request_hash: &str,
    now: i64,
    window_s: i64,
    stale_claim_s: i64,
) -> Result<CreateClaim, StoreError> {
    let mut tx = store.begin_write().await?;
    sqlx::query("DELETE FROM mcp_created_issues WHERE connection_id = $1 AND created_at < $2")
        .bind(connection_id)
        .bind(now - window_s)
        .execute(&mut *tx)
        .await?;
    let row: Option<CreatedRow> = sqlx::query_as(&format!(
        "SELECT issue_id, issue_key, url, created_at FROM mcp_created_issues \
         WHERE connection_id = $1 AND request_hash = $2{}",
        store.for_update()
    ))
    .bind(connection_id)
    .bind(request_hash)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(r) = row {
        if let (Some(id), Some(key), Some(url)) = (r.issue_id, r.issue_key, r.url) {
            tx.commit().await?;
            return Ok(CreateClaim::Done(CreatedIssue { id, key, url }));
        }
        if r.created_at >= now - stale_claim_s {
            tx.commit().await?;
            return Ok(CreateClaim::InFlight {
                since: r.created_at,
            });
        }
    }
    sqlx::query(
        "INSERT INTO mcp_created_issues (connection_id, request_hash, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (connection_id, request_hash) DO UPDATE SET issue_id = NULL, issue_key = NULL, \
         url = NULL, created_at = excluded.created_at",
    )
    .bind(connection_id)
    .bind(request_hash)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(CreateClaim::Claimed)
}

/// Record the issue a claimed call created.
pub async fn finish_create<'e, E: Executor<'e, Database = Any>>(
    e: E,
    connection_id: &ConnectionId,
    request_hash: &str,
    issue: &CreatedIssue,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE mcp_created_issues SET issue_id = $1, issue_key = $2, url = $3 \
         WHERE connection_id = $4 AND request_hash = $5",
    )
    .bind(&issue.id)
    .bind(&issue.key)
    .bind(&issue.url)
    .bind(connection_id)
    .bind(request_hash)
    .execute(e)
    .await?;
    Ok(())
}

/// Give a claim back (the creation failed: the same call may try again).
pub async fn release_create<'e, E: Executor<'e, Database = Any>>(
    e: E,
    connection_id: &ConnectionId,
    request_hash: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM mcp_created_issues WHERE connection_id = $1 AND request_hash = $2 AND issue_key IS NULL",
    )
    .bind(connection_id)
    .bind(request_hash)
    .execute(e)
    .await?;
    Ok(())
}

/// The live issues a sync stored, most recently updated first (the MCP
/// server's `jira_search` when that sync's JQL is the one asked for).
pub async fn issues_of_sync<'e, E: Executor<'e, Database = Any>>(
    e: E,
    connection_id: &ConnectionId,
    sync_id: &str,
    limit: i64,
) -> Result<Vec<super::syncs::IssueRow>, StoreError> {
    Ok(sqlx::query_as::<_, super::syncs::IssueRow>(&format!(
        "SELECT {} FROM synced_issues WHERE connection_id = $1 AND sync_id = $2 AND deleted = 0 \
         ORDER BY updated_ms DESC, issue_key LIMIT $3",
        super::syncs::ISSUE_COLUMNS
    ))
    .bind(connection_id)
    .bind(sync_id)
    .bind(limit)
    .fetch_all(e)
    .await?)
}

/// The live synced copy of the issue `key_or_id` (a key in upper case, or
/// an id) that a store read may show: with its `detail`, and not marked
/// stale since it was stored (`syncs::mark_issue_stale`).
pub async fn readable_issue<'e, E: Executor<'e, Database = Any>>(
    e: E,
    connection_id: &ConnectionId,
    key_or_id: &str,
) -> Result<Option<super::syncs::IssueRow>, StoreError> {
    Ok(sqlx::query_as::<_, super::syncs::IssueRow>(&format!(
        "SELECT {} FROM synced_issues WHERE connection_id = $1 AND (issue_key = $2 OR issue_id = $2) \
         AND deleted = 0 AND detail IS NOT NULL AND stale_since_ms IS NULL",
        super::syncs::ISSUE_COLUMNS
    ))
    .bind(connection_id)
    .bind(key_or_id)
    .fetch_optional(e)
    .await?)
}

/// The live synced copy of page `page_id` that a store read may show (not
/// marked stale since it was stored).
pub async fn readable_page<'e, E: Executor<'e, Database = Any>>(
    e: E,
    connection_id: &ConnectionId,
    page_id: &str,
) -> Result<Option<super::pages::PageRow>, StoreError> {
    Ok(sqlx::query_as::<_, super::pages::PageRow>(&format!(
        "SELECT {} FROM synced_pages WHERE connection_id = $1 AND page_id = $2 \
         AND deleted = 0 AND stale_since_ms IS NULL",
        super::pages::PAGE_COLUMNS
    ))
    .bind(connection_id)
    .bind(page_id)
    .fetch_optional(e)
    .await?)
}
