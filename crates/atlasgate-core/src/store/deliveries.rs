//! The Jira webhook inbox (`jira_webhook_deliveries`): each delivery stored
//! once by its identifier with the hint it carries (site, issue id), then
//! claimed under a lease — together with every other waiting delivery of
//! the same hint — and answered by one re-read from Jira.

use sqlx::AnyPool;

/// What a delivery names: the site its issue's `self` link points to and the
/// issue id. Only a hint: Jira is asked what is true.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    pub site: String,
    pub issue_id: String,
}

text_enum! {
    /// Where a stored Jira webhook delivery is (docs/design.md §6): waiting
    /// (`received`), then `applied` (it changed a synced issue) or `ignored`.
    pub enum InboxState {
        Received = "received",
        Applied = "applied",
        Ignored = "ignored",
    }
}

/// Store a delivery; `false` when its identifier was stored before.
pub async fn insert(
    pool: &AnyPool,
    identifier: &str,
    retry: i64,
    event: &str,
    payload: &serde_json::Value,
    hint: Option<&Hint>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO jira_webhook_deliveries (identifier, received_at, retry, event, payload, state, attempts, \
         hint_site, hint_issue_id) VALUES ($1, $2, $3, $4, $5, 'received', 0, $6, $7) ON CONFLICT (identifier) DO NOTHING",
    )
    .bind(identifier)
    .bind(now)
    .bind(retry)
    .bind(event)
    .bind(super::AsJson(payload))
    .bind(hint.map(|h| h.site.clone()))
    .bind(hint.map(|h| h.issue_id.clone()))
    .execute(pool)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Stored, not applied, not claimed, received before `received_before`: the
/// inbox worker's.
pub async fn due(
    pool: &AnyPool,
    now: i64,
    received_before: i64,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT identifier FROM jira_webhook_deliveries WHERE state = 'received' \
         AND (locked_until IS NULL OR locked_until < $1) AND received_at < $2 ORDER BY received_at LIMIT 20",
    )
    .bind(now)
    .bind(received_before)
    .fetch_all(pool)
    .await
}

/// One delivery of a claimed batch: its identifier, body and attempts so far.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub identifier: String,
    /// The delivery's body (JSON in the column).
    #[sqlx(try_from = "super::JsonText")]
    pub payload: serde_json::Value,
    pub attempts: i64,
}

/// Claim a waiting delivery until `lease_until`, together with every other
/// waiting, unclaimed delivery of the same hint (one re-read answers them
/// all). Empty when someone else holds it or it is no longer waiting.
pub async fn claim_batch(
    pool: &AnyPool,
    identifier: &str,
    claim: &str,
    now: i64,
    lease_until: i64,
) -> Result<(Option<Hint>, Vec<Claimed>), sqlx::Error> {
    let hint: Option<(Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT hint_site, hint_issue_id FROM jira_webhook_deliveries WHERE identifier = $1",
    )
    .bind(identifier)
    .fetch_optional(pool)
    .await?;
    let hint = match hint {
        Some((Some(site), Some(issue_id))) => Some(Hint { site, issue_id }),
        _ => None,
    };
    // A NULL hint matches nothing but the identifier itself.
    sqlx::query(
        "UPDATE jira_webhook_deliveries SET locked_until = $1, attempts = attempts + 1, claim = $2 \
         WHERE (identifier = $3 OR (hint_site = $4 AND hint_issue_id = $5)) AND state = 'received' \
         AND (locked_until IS NULL OR locked_until < $6)",
    )
    .bind(lease_until)
    .bind(claim)
    .bind(identifier)
    .bind(hint.as_ref().map(|h| h.site.clone()))
    .bind(hint.as_ref().map(|h| h.issue_id.clone()))
    .bind(now)
    .execute(pool)
    .await?;
    let claimed = sqlx::query_as::<_, Claimed>(
        "SELECT identifier, payload, attempts FROM jira_webhook_deliveries WHERE claim = $1 \
         AND state = 'received' ORDER BY received_at, identifier",
    )
    .bind(claim)
    .fetch_all(pool)
    .await?;
    Ok((hint, claimed))
}

/// The batch changed at least one synced issue (`applied`) or none (`ignored`).
pub async fn mark_done(
    pool: &AnyPool,
    claim: &str,
    applied: bool,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE jira_webhook_deliveries SET state = $1, applied_at = $2, locked_until = NULL, last_error = NULL \
         WHERE claim = $3 AND state = 'received'",
    )
    .bind(if applied {
        InboxState::Applied
    } else {
        InboxState::Ignored
    })
    .bind(now)
    .bind(claim)
    .execute(pool)
    .await?;
    Ok(())
}

/// Answering the batch failed: retried after `retry_at`, or set aside when giving up.
pub async fn mark_failed(
    pool: &AnyPool,
    claim: &str,
    give_up: bool,
    error: &str,
    retry_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE jira_webhook_deliveries SET state = $1, last_error = $2, locked_until = $3 \
         WHERE claim = $4 AND state = 'received'",
    )
    .bind(if give_up {
        InboxState::Ignored
    } else {
        InboxState::Received
    })
    .bind(error)
    .bind(retry_at)
    .bind(claim)
    .execute(pool)
    .await?;
    Ok(())
}
