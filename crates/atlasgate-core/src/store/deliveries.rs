//! The Jira webhook inbox (`jira_webhook_deliveries`): each delivery stored
//! once by its identifier, then claimed under a lease and applied.

use sqlx::AnyPool;

/// Store a delivery; `false` when its identifier was stored before.
pub async fn insert(
    pool: &AnyPool,
    identifier: &str,
    retry: i64,
    event: &str,
    payload_json: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO jira_webhook_deliveries (identifier, received_at, retry, event, payload, state, attempts) \
         VALUES ($1, $2, $3, $4, $5, 'received', 0) ON CONFLICT (identifier) DO NOTHING",
    )
    .bind(identifier)
    .bind(now)
    .bind(retry)
    .bind(event)
    .bind(payload_json)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Stored, not applied, not claimed, older than a second: the inbox worker's.
pub async fn due(pool: &AnyPool, now: i64) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT identifier FROM jira_webhook_deliveries WHERE state = 'received' \
         AND (locked_until IS NULL OR locked_until < $1) AND received_at < $2 ORDER BY received_at LIMIT 20",
    )
    .bind(now)
    .bind(now - 1)
    .fetch_all(pool)
    .await
}

/// Claim a delivery until `lease_until`; `false` when someone else holds it
/// or it is no longer waiting.
pub async fn claim(
    pool: &AnyPool,
    identifier: &str,
    now: i64,
    lease_until: i64,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE jira_webhook_deliveries SET locked_until = $1, attempts = attempts + 1 \
         WHERE identifier = $2 AND state = 'received' AND (locked_until IS NULL OR locked_until < $3)",
    )
    .bind(lease_until)
    .bind(identifier)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// The stored body (JSON text) and the attempts so far.
pub async fn payload(
    pool: &AnyPool,
    identifier: &str,
) -> Result<Option<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT payload, attempts FROM jira_webhook_deliveries WHERE identifier = $1")
        .bind(identifier)
        .fetch_optional(pool)
        .await
}

/// Applied to at least one synced issue (`applied`) or to none (`ignored`).
pub async fn mark_done(
    pool: &AnyPool,
    identifier: &str,
    applied: bool,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE jira_webhook_deliveries SET state = $1, applied_at = $2, locked_until = NULL, last_error = NULL \
         WHERE identifier = $3",
    )
    .bind(if applied { "applied" } else { "ignored" })
    .bind(now)
    .bind(identifier)
    .execute(pool)
    .await?;
    Ok(())
}

/// Applying failed: retried after `retry_at`, or set aside when giving up.
pub async fn mark_failed(
    pool: &AnyPool,
    identifier: &str,
    give_up: bool,
    error: &str,
    retry_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE jira_webhook_deliveries SET state = $1, last_error = $2, locked_until = $3 WHERE identifier = $4",
    )
    .bind(if give_up { "ignored" } else { "received" })
    .bind(error)
    .bind(retry_at)
    .bind(identifier)
    .execute(pool)
    .await?;
    Ok(())
}
