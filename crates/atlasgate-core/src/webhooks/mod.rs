//! Jira webhooks in (docs/design.md §6): `POST /webhooks/jira` verifies the bearer
//! JWT (HS256 with the OAuth client secret, `exp` checked), deduplicates by
//! `X-Atlassian-Webhook-Identifier`, stores the delivery durably, answers,
//! and then applies it to the synced issues of every matching sync. A
//! delivery that could not be applied stays `received` and the inbox worker
//! retries it.

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::jobs::Counters;
use crate::state::Core;
use crate::store::deliveries;
use crate::store::now;
use crate::sync::engine::{self, SyncError};
use crate::sync::jql::split_order_by;
use crate::sync::store::{self as sync_rows, SyncRow};

pub const IDENTIFIER_HEADER: &str = "x-atlassian-webhook-identifier";
pub const RETRY_HEADER: &str = "x-atlassian-webhook-retry";
/// A claim on one delivery while it is applied.
const APPLY_LEASE_SECS: i64 = 60;
/// After this many failed applications a delivery is set aside.
const MAX_APPLY_ATTEMPTS: i64 = 10;

#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("missing `Authorization: Bearer` JWT")]
    Missing,
    #[error("the JWT does not verify or has expired")]
    Invalid,
}

/// Verify a Jira webhook JWT: HS256 keyed by the OAuth client secret,
/// `exp` required and checked (30 s leeway for clock skew).
pub fn verify_jwt(token: &str, client_secret: &SecretString) -> Result<Value, JwtError> {
    use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
    let mut v = Validation::new(Algorithm::HS256);
    v.validate_aud = false;
    v.leeway = 30;
    v.set_required_spec_claims(&["exp"]);
    let key = DecodingKey::from_secret(client_secret.expose_secret().as_bytes());
    decode::<Value>(token, &key, &v)
        .map(|d| d.claims)
        .map_err(|_| JwtError::Invalid)
}

/// Store a verified delivery once; `false` when its identifier was seen
/// before (Jira retries with the same identifier). Applying it is spawned.
pub async fn receive(
    state: &Core,
    identifier: &str,
    retry: i64,
    payload: &Value,
) -> Result<bool, crate::store::StoreError> {
    let event = payload["webhookEvent"].as_str().unwrap_or("").to_string();
    let inserted = deliveries::insert(
        state.store.pool(),
        identifier,
        retry,
        &event,
        &payload.to_string(),
        now(),
    )
    .await?;
    if !inserted {
        state.metrics.jira_webhook("duplicate");
        tracing::info!(identifier = %identifier, retry, "duplicate Jira webhook delivery ignored");
        return Ok(false);
    }
    // Stored: applying it now or by the inbox worker is only a matter of time.
    state.metrics.jira_webhook("applied");
    tracing::info!(identifier = %identifier, event = %event, retry, "Jira webhook stored");
    let st = state.clone();
    let identifier = identifier.to_string();
    tokio::spawn(async move { apply_delivery(&st, &identifier).await });
    Ok(true)
}

/// Retries deliveries that were stored but not applied (crash, Jira or
/// database trouble while applying).
pub async fn inbox_worker(state: Core) {
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let now = now();
        let due = match deliveries::due(state.store.pool(), now).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "reading the webhook inbox failed");
                continue;
            }
        };
        for id in due {
            apply_delivery(&state, &id).await;
        }
    }
}

/// Claim one stored delivery and apply it (at most one process at a time).
pub async fn apply_delivery(state: &Core, identifier: &str) {
    let now = now();
    let claimed =
        deliveries::claim(state.store.pool(), identifier, now, now + APPLY_LEASE_SECS).await;
    if !matches!(claimed, Ok(true)) {
        return;
    }
    let row = deliveries::payload(state.store.pool(), identifier)
        .await
        .ok()
        .flatten();
    let Some((payload, attempts)) = row else {
        return;
    };
    let payload: Value = serde_json::from_str(&payload).unwrap_or(Value::Null);
    let result = apply(state, &payload).await;
    let now = crate::store::now();
    let update = match &result {
        Ok(n) => deliveries::mark_done(state.store.pool(), identifier, *n > 0, now).await,
        Err(e) => {
            tracing::warn!(identifier, error = %e.describe(), "applying a Jira webhook failed; will retry");
            let give_up = attempts >= MAX_APPLY_ATTEMPTS;
            deliveries::mark_failed(
                state.store.pool(),
                identifier,
                give_up,
                &e.describe(),
                now + (5i64 << attempts.clamp(0, 8)),
            )
            .await
        }
    };
    if let Err(e) = update {
        tracing::warn!(identifier, error = %e, "could not record a webhook's outcome");
    }
}

/// The syncs a delivery is for, grouped by connection (issues are stored
/// per connection): their registered webhook is among `matchedWebhookIds`
/// (ids are per site) on the site the issue's `self` link points to. In each
/// group, syncs whose filter is exactly their JQL come first.
async fn matching_syncs(state: &Core, payload: &Value) -> Result<Vec<Vec<SyncRow>>, SyncError> {
    let self_url = payload["issue"]["self"].as_str().unwrap_or("");
    let matched: Vec<i64> = payload["matchedWebhookIds"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    let all: Vec<SyncRow> = sync_rows::with_webhooks(state.store.pool()).await?;
    let mut groups: Vec<Vec<SyncRow>> = Vec::new();
    for s in all {
        let site = format!("{}/", s.site_url.trim_end_matches('/'));
        let on_site = self_url.starts_with(&site);
        let registered = s.webhook_id.is_some_and(|id| matched.contains(&id));
        if !(on_site && registered) {
            continue;
        }
        match groups
            .iter_mut()
            .find(|g| g[0].connection_id == s.connection_id)
        {
            Some(g) => g.push(s),
            None => groups.push(vec![s]),
        }
    }
    Ok(groups)
}

/// The issue as this sync would store it, if it belongs to the sync. With a
/// filter broader than the JQL, Jira is asked (and its current fields taken).
async fn member(
    state: &Core,
    sync: &SyncRow,
    issue: &Value,
    issue_id: &str,
    now: i64,
) -> Result<Option<crate::sync::store::IssueRow>, SyncError> {
    if sync.webhook_local_filter == 0 {
        return Ok(engine::parse_issue(issue, sync, now));
    }
    let (filter, _) = split_order_by(&sync.jql);
    let fields = "summary,status,issuetype,project,updated".to_string()
        + &[
            sync.story_points_field.as_deref(),
            sync.sprint_field.as_deref(),
        ]
        .iter()
        .flatten()
        .filter(|f| !f.is_empty())
        .map(|f| format!(",{f}"))
        .collect::<String>();
    let v = engine::jira_get(
        state,
        &sync.connection_id,
        "rest/api/3/search/jql",
        &[
            ("jql", format!("({filter}) AND id = {issue_id}")),
            ("fields", fields),
        ],
    )
    .await?;
    Ok(v["issues"]
        .as_array()
        .and_then(|a| a.first())
        .and_then(|i| engine::parse_issue(i, sync, now)))
}

/// Apply a delivery; returns how many connections' copies it touched.
pub async fn apply(state: &Core, payload: &Value) -> Result<usize, SyncError> {
    let event = payload["webhookEvent"].as_str().unwrap_or("");
    if !crate::sync::registration::EVENTS.contains(&event) {
        return Ok(0);
    }
    let issue = &payload["issue"];
    let Some(issue_id) = issue["id"]
        .as_str()
        .map(String::from)
        .or_else(|| issue["id"].as_i64().map(|n| n.to_string()))
    else {
        return Ok(0);
    };
    let mut touched = 0;
    for group in matching_syncs(state, payload).await? {
        let now = now();
        let first = &group[0];
        if event == "jira:issue_deleted" {
            let mut tx = state.store.begin_write().await?;
            if sync_rows::mark_deleted(&mut tx, &first.connection_id, &issue_id, now).await? {
                if let Some(row) =
                    sync_rows::get_issue(&mut *tx, &first.connection_id, &issue_id).await?
                {
                    let sync = group
                        .iter()
                        .find(|s| row.sync_id.as_deref() == Some(s.id.as_str()))
                        .unwrap_or(first);
                    crate::events::record(
                        &mut tx,
                        &sync.app_id,
                        Some(&sync.connection_id),
                        "issue.deleted",
                        engine::issue_event_payload(sync, &row),
                    )
                    .await?;
                }
                touched += 1;
            }
            tx.commit().await?;
            continue;
        }
        // The first sync of the connection the issue belongs to stores it.
        let mut found = None;
        for sync in &group {
            if let Some(row) = member(state, sync, issue, &issue_id, now).await? {
                found = Some((sync, row));
                break;
            }
        }
        let Some((sync, row)) = found else { continue };
        let mut tx = state.store.begin_write().await?;
        let prev = sync_rows::existing(
            &mut tx,
            &sync.connection_id,
            std::slice::from_ref(&row.issue_id),
        )
        .await?;
        let stored =
            engine::store_issue(&mut tx, sync, &row, prev.get(&row.issue_id).copied(), true)
                .await?;
        tx.commit().await?;
        if stored != engine::Stored::Unchanged {
            touched += 1;
        }
    }
    if touched > 0 {
        Counters::bump(&state.jobs.counters.jira_webhooks_applied);
        crate::events::wake(state);
    }
    Ok(touched)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn token(secret: &str, exp_in: i64) -> String {
        let now = chrono::Utc::now().timestamp();
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &serde_json::json!({ "iss": "c", "iat": now, "exp": now + exp_in }),
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn the_client_secret_and_a_live_exp_verify() {
        let secret = SecretString::from("s3cret");
        assert!(verify_jwt(&token("s3cret", 60), &secret).is_ok());
        assert!(verify_jwt(&token("other", 60), &secret).is_err());
        assert!(verify_jwt(&token("s3cret", -120), &secret).is_err());
        let none = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &serde_json::json!({ "iss": "c" }),
            &jsonwebtoken::EncodingKey::from_secret(b"s3cret"),
        )
        .unwrap();
        assert!(verify_jwt(&none, &secret).is_err(), "exp is required");
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_verifies(s in "\\PC{0,200}") {
            proptest::prop_assert!(verify_jwt(&s, &SecretString::from("s3cret")).is_err());
        }

        #[test]
        fn another_secret_never_verifies(other in "[a-zA-Z0-9]{1,40}") {
            proptest::prop_assume!(other != "s3cret");
            proptest::prop_assert!(verify_jwt(&token(&other, 60), &SecretString::from("s3cret")).is_err());
        }

        #[test]
        fn a_tampered_token_never_verifies(pos in 0usize..200, c in proptest::char::range('a', 'z')) {
            let t = token("s3cret", 60);
            let pos = pos % t.len();
            let mut chars: Vec<char> = t.chars().collect();
            proptest::prop_assume!(chars[pos] != c && chars[pos] != '.');
            chars[pos] = c;
            let tampered: String = chars.into_iter().collect();
            // Base64url's last character can carry unused bits; only a changed decoding matters.
            proptest::prop_assume!(tampered != t);
            let r = verify_jwt(&tampered, &SecretString::from("s3cret"));
            if let Ok(claims) = &r {
                // Only possible when the change hit padding bits of a segment.
                proptest::prop_assert!(claims["iss"] == "c");
            }
        }
    }
}
