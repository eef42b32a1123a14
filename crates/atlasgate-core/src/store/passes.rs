//! The bookkeeping of a sync's passes on `syncs` and `sync_partitions`
//! (the engine in `sync/engine.rs` decides; these statements record):
//! the lease, the discovered site facts, a pass's partitions and
//! checkpoints, its end, a failure, reconciliation.

use sqlx::{AnyConnection, AnyPool};

use crate::ids::ConnectionId;
use crate::store::StoreError;

/// Store what `discover` learnt: the user's time zone and the site's story
/// points and sprint field ids (`""` = none).
pub async fn set_site_facts(
    pool: &AnyPool,
    sync_id: &str,
    time_zone: &str,
    story_points_field: &str,
    sprint_field: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE syncs SET time_zone = $1, story_points_field = $2, sprint_field = $3 WHERE id = $4",
    )
    .bind(time_zone)
    .bind(story_points_field)
    .bind(sprint_field)
    .bind(sync_id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Renew the claim of worker `me` until `until`; `false` when another
/// process holds it now.
pub async fn renew_lease(
    conn: &mut AnyConnection,
    sync_id: &str,
    me: &str,
    until: i64,
) -> Result<bool, StoreError> {
    let r = sqlx::query("UPDATE syncs SET locked_until = $1 WHERE id = $2 AND locked_by = $3")
        .bind(until)
        .bind(sync_id)
        .bind(me)
        .execute(conn)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// One partition of a new pass: `(part, jql, from_ms)`.
pub type NewPartition = (String, String, Option<i64>);

/// Begin a pass of `kind` (`full` | `incremental`): its partitions with
/// empty checkpoints replace any left from before.
pub async fn start_pass(
    conn: &mut AnyConnection,
    sync_id: &str,
    kind: super::syncs::PassKind,
    parts: &[NewPartition],
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM sync_partitions WHERE sync_id = $1")
        .bind(sync_id)
        .execute(&mut *conn)
        .await?;
    for (part, jql, from) in parts {
        sqlx::query(
            "INSERT INTO sync_partitions (sync_id, part, jql, from_ms, stored, done) VALUES ($1,$2,$3,$4,0,0)",
        )
        .bind(sync_id)
        .bind(part)
        .bind(jql)
        .bind(*from)
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query(
        "UPDATE syncs SET pass_kind = $1, pass_started_at = $2, pass_max_updated_ms = NULL, updated_at = $2 WHERE id = $3",
    )
    .bind(kind)
    .bind(now)
    .bind(sync_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Raise the pass's highest `updated` seen to `ms` (never lower it).
pub async fn raise_pass_max(
    conn: &mut AnyConnection,
    sync_id: &str,
    ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE syncs SET pass_max_updated_ms = CASE WHEN pass_max_updated_ms IS NULL OR pass_max_updated_ms < $1 \
         THEN $1 ELSE pass_max_updated_ms END WHERE id = $2",
    )
    .bind(ms)
    .bind(sync_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Store a partition's checkpoint (and whether it is done).
pub async fn save_checkpoint(
    conn: &mut AnyConnection,
    p: &super::syncs::PartitionRow,
    done: bool,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE sync_partitions SET cursor_updated_ms = $1, cursor_key = $2, stored = $3, done = $4 \
         WHERE sync_id = $5 AND part = $6",
    )
    .bind(p.cursor_updated_ms)
    .bind(p.cursor_key.clone())
    .bind(p.stored)
    .bind(i64::from(done))
    .bind(&p.sync_id)
    .bind(&p.part)
    .execute(conn)
    .await?;
    Ok(())
}

/// Ids of the live (not deleted) issues this sync stored for its connection.
pub async fn live_issue_ids(
    pool: &AnyPool,
    connection_id: &ConnectionId,
    sync_id: &str,
) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT issue_id FROM synced_issues WHERE connection_id = $1 AND sync_id = $2 AND deleted = 0",
    )
    .bind(connection_id)
    .bind(sync_id)
    .fetch_all(pool)
    .await?)
}

pub async fn set_reconciled(pool: &AnyPool, sync_id: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE syncs SET last_reconciled_at = $1 WHERE id = $2")
        .bind(now)
        .bind(sync_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Issues of the connection stored by this sync and not deleted.
pub async fn issues_synced<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    e: E,
    sync_id: &str,
) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM synced_issues WHERE sync_id = $1 AND deleted = 0")
            .bind(sync_id)
            .fetch_one(e)
            .await?,
    )
}

/// Issues stored by the running pass, over its partitions.
pub async fn stored_in_pass(conn: &mut AnyConnection, sync_id: &str) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(stored), 0) AS BIGINT) FROM sync_partitions WHERE sync_id = $1",
    )
    .bind(sync_id)
    .fetch_one(conn)
    .await?)
}

/// End a pass: the checkpoint moves to `cursor`, the sync is `idle` and due
/// again after its interval (at once when a run was asked for meanwhile),
/// the lease is released and the partitions go.
pub async fn finish_pass(
    conn: &mut AnyConnection,
    sync_id: &str,
    cursor: Option<i64>,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE syncs SET full_done = 1, cursor_updated_ms = $1, pass_kind = NULL, pass_started_at = NULL, \
         pass_max_updated_ms = NULL, state = 'idle', last_run_at = $2, last_error = NULL, failures = 0, passes = passes + 1, \
         next_run_at = CASE WHEN run_requested = 1 THEN $2 ELSE $2 + interval_s END, run_requested = 0, \
         locked_by = NULL, locked_until = NULL, updated_at = $2 WHERE id = $3",
    )
    .bind(cursor)
    .bind(now)
    .bind(sync_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM sync_partitions WHERE sync_id = $1")
        .bind(sync_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Record a failed pass: `failed`, the error, one more failure, due again
/// at `retry_at` (at once when a run was asked for), the lease released.
/// The checkpoints stay.
pub async fn record_failure(
    conn: &mut AnyConnection,
    sync_id: &str,
    error: &str,
    now: i64,
    retry_at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE syncs SET state = 'failed', last_error = $1, failures = failures + 1, \
         next_run_at = CASE WHEN run_requested = 1 THEN $2 ELSE $3 END, run_requested = 0, \
         last_run_at = $2, locked_by = NULL, locked_until = NULL, updated_at = $2 WHERE id = $4",
    )
    .bind(error)
    .bind(now)
    .bind(retry_at)
    .bind(sync_id)
    .execute(conn)
    .await?;
    Ok(())
}

// ---------------------------------------------------------------- webhook registrations

/// A live registration `(webhook_id, expires_at)` of another sync of the
/// same connection with this filter (Jira allows few per user and site).
pub async fn shared_webhook(
    pool: &AnyPool,
    connection_id: &ConnectionId,
    sync_id: &str,
    filter: &str,
) -> Result<Option<(i64, Option<i64>)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT webhook_id, webhook_expires_at FROM syncs WHERE connection_id = $1 AND id <> $2 \
         AND webhook_id IS NOT NULL AND webhook_filter = $3 AND state <> 'stopped' ORDER BY created_at LIMIT 1",
    )
    .bind(connection_id)
    .bind(sync_id)
    .bind(filter)
    .fetch_optional(pool)
    .await?)
}

/// The sync's webhook as registered (or the error Jira gave instead).
#[derive(Debug, Clone, Default)]
pub struct WebhookState {
    pub id: Option<i64>,
    pub filter: Option<String>,
    pub local_filter: bool,
    pub expires_at: Option<i64>,
    pub error: Option<String>,
}

pub async fn save_webhook(
    pool: &AnyPool,
    sync_id: &str,
    w: &WebhookState,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE syncs SET webhook_id = $1, webhook_filter = $2, webhook_local_filter = $3, \
         webhook_expires_at = $4, webhook_error = $5 WHERE id = $6",
    )
    .bind(w.id)
    .bind(w.filter.clone())
    .bind(i64::from(w.local_filter))
    .bind(w.expires_at)
    .bind(w.error.clone())
    .bind(sync_id)
    .execute(pool)
    .await?;
    Ok(())
}

/// The running (not stopped) syncs of a connection that use webhook `id`.
pub async fn webhook_users(
    pool: &AnyPool,
    connection_id: &ConnectionId,
    webhook_id: i64,
) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM syncs WHERE connection_id = $1 AND webhook_id = $2 AND state <> 'stopped'",
    )
    .bind(connection_id)
    .bind(webhook_id)
    .fetch_all(pool)
    .await?)
}

/// The sync's webhook was deleted in Jira.
pub async fn forget_webhook(pool: &AnyPool, sync_id: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE syncs SET webhook_id = NULL, webhook_expires_at = NULL WHERE id = $1")
        .bind(sync_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Stop every sync of a disconnected connection.
pub async fn stop_all(
    pool: &AnyPool,
    connection_id: &ConnectionId,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE syncs SET state = 'stopped', updated_at = $1 WHERE connection_id = $2")
        .bind(now)
        .bind(connection_id)
        .execute(pool)
        .await?;
    Ok(())
}
