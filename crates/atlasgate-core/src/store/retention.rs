//! The retention pass's deletes (docs/design.md §15): old finished rows, in
//! batches, so no statement holds a lock for long.

use sqlx::AnyPool;

/// Rows per DELETE statement of the retention pass.
pub const BATCH: i64 = 1000;

/// One table the pass trims: which rows are finished and old.
#[derive(Debug, Clone, Copy)]
pub struct Trimmed {
    /// The `table` label of `atlasgate_retention_rows_removed_total`.
    pub table: &'static str,
    key: &'static str,
    /// Rows older than `$1`; `$2` is now (for expiry checks).
    condition: &'static str,
}

pub const EVENTS: Trimmed = Trimmed {
    table: "events",
    key: "seq",
    condition:
        "delivery_state IN ('delivered', 'skipped', 'failed') AND created_at < $1 AND $2 >= 0",
};

pub const JIRA_WEBHOOK_DELIVERIES: Trimmed = Trimmed {
    table: "jira_webhook_deliveries",
    key: "identifier",
    condition: "state IN ('applied', 'ignored') AND received_at < $1 AND $2 >= 0",
};

/// Finished: completed, or past its expiry (a pending link that was never
/// followed). Their `connect_states` go by `ON DELETE CASCADE`.
pub const CONNECT_SESSIONS: Trimmed = Trimmed {
    table: "connect_sessions",
    key: "id",
    condition: "created_at < $1 AND (status = 'completed' OR expires_at < $2)",
};

pub const AUDIT: Trimmed = Trimmed {
    table: "audit",
    key: "seq",
    condition: "at < $1 AND $2 >= 0",
};

/// The tables the pass trims, in its order.
pub const ALL: [Trimmed; 4] = [EVENTS, JIRA_WEBHOOK_DELIVERIES, CONNECT_SESSIONS, AUDIT];

/// One batch's statement for `t`: `$1` cutoff, `$2` now, `$3` batch size.
pub(crate) fn delete_sql(t: Trimmed) -> String {
    format!(
        "DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} WHERE {cond} LIMIT $3)",
        table = t.table,
        key = t.key,
        cond = t.condition
    )
}

/// Delete up to `batch` rows of `t` older than `cutoff`; how many went.
pub async fn delete_batch(
    pool: &AnyPool,
    t: Trimmed,
    cutoff: i64,
    now: i64,
    batch: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(&delete_sql(t))
        .bind(cutoff)
        .bind(now)
        .bind(batch)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}
