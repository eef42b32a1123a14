//! Jira webhooks in (docs/design.md §6, §12): `POST /webhooks/jira` verifies
//! the bearer JWT (HS256 with the OAuth client secret, `iss` = the client id,
//! `exp` checked), deduplicates by `X-Atlassian-Webhook-Identifier`, stores
//! the delivery durably and answers.
//!
//! A delivery is a **hint, never a source of truth**: its JWT proves only
//! that *some* delivery for this OAuth client was signed, and any app can
//! harvest such JWTs from a webhook of its own. So nothing of the body is
//! stored as an issue or sent in an event. What a delivery names — the site
//! of its issue's `self` link and the issue id — is re-read from Jira with
//! the token of each connection whose sync is registered for it; what Jira
//! answers is stored and announced, and an issue is marked deleted only when
//! Jira answers 404 to that connection. Every waiting delivery for one issue
//! is claimed together after a short delay
//! (`jobs.tuning.webhook_hint_delay_ms`), so a burst is one read per owning
//! sync. A batch that could not be answered stays `received` and the inbox
//! worker retries it.

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::atlassian::AtlassianError;
use crate::jobs::{Counters, Tuning};
use crate::state::Core;
use crate::store::deliveries::{self, Hint};
use crate::store::now;
use crate::sync::engine::{self, SyncError};
use crate::sync::jql::split_order_by;
use crate::sync::store::{self as sync_rows, IssueRow, SyncRow};

pub const IDENTIFIER_HEADER: &str = "x-atlassian-webhook-identifier";
pub const RETRY_HEADER: &str = "x-atlassian-webhook-retry";
/// A claim on one batch of deliveries while it is answered.
const APPLY_LEASE_SECS: i64 = 60;
/// After this many failed attempts a delivery is set aside.
const MAX_APPLY_ATTEMPTS: i64 = 10;

#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("missing `Authorization: Bearer` JWT")]
    Missing,
    #[error("the JWT does not verify or has expired")]
    Invalid,
}

/// Verify a Jira webhook JWT: HS256 keyed by the OAuth client secret, `iss`
/// equal to the OAuth client id, `exp` required and checked (30 s leeway for
/// clock skew).
pub fn verify_jwt(
    token: &str,
    client_id: &str,
    client_secret: &SecretString,
) -> Result<Value, JwtError> {
    use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
    let mut v = Validation::new(Algorithm::HS256);
    v.validate_aud = false;
    v.leeway = 30;
    v.set_required_spec_claims(&["exp", "iss"]);
    v.set_issuer(&[client_id]);
    let key = DecodingKey::from_secret(client_secret.expose_secret().as_bytes());
    decode::<Value>(token, &key, &v)
        .map(|d| d.claims)
        .map_err(|_| JwtError::Invalid)
}

/// What a delivery names: the site of `issue.self` (the part before
/// `/rest/`) and the issue id.
pub fn hint_of(payload: &Value) -> Option<Hint> {
    let issue = &payload["issue"];
    let issue_id = match &issue["id"] {
        Value::String(s) if !s.is_empty() => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let self_url = issue["self"].as_str()?;
    let site = self_url.split_once("/rest/")?.0.trim_end_matches('/');
    if site.is_empty() {
        return None;
    }
    Some(Hint {
        site: site.to_string(),
        issue_id,
    })
}

/// Store a verified delivery once; `false` when its identifier was seen
/// before (Jira retries with the same identifier). Answering it is spawned.
pub async fn receive(
    state: &Core,
    identifier: &str,
    retry: i64,
    payload: &Value,
) -> Result<bool, crate::store::StoreError> {
    let event = payload["webhookEvent"].as_str().unwrap_or("").to_string();
    let hint = hint_of(payload);
    let inserted = deliveries::insert(
        state.store.pool(),
        identifier,
        retry,
        &event,
        payload,
        hint.as_ref(),
        now(),
    )
    .await?;
    if !inserted {
        state.metrics.jira_webhook("duplicate");
        tracing::info!(identifier = %identifier, retry, "duplicate Jira webhook delivery ignored");
        return Ok(false);
    }
    // Stored: answering it now or by the inbox worker is only a matter of time.
    state.metrics.jira_webhook("applied");
    tracing::info!(identifier = %identifier, event = %event, retry, "Jira webhook stored");
    let st = state.clone();
    let identifier = identifier.to_string();
    tokio::spawn(async move {
        hint_delay(&st).await;
        apply_delivery(&st, &identifier).await
    });
    Ok(true)
}

/// Wait `webhook_hint_delay_ms` (re-read while waiting, so lowering it
/// releases waiting deliveries) so that a burst for one issue gathers.
async fn hint_delay(state: &Core) {
    let start = tokio::time::Instant::now();
    loop {
        let delay =
            std::time::Duration::from_millis(Tuning::get(&state.jobs.tuning.webhook_hint_delay_ms));
        let Some(left) = delay.checked_sub(start.elapsed()).filter(|d| !d.is_zero()) else {
            return;
        };
        tokio::time::sleep(left.min(std::time::Duration::from_millis(50))).await;
    }
}

/// Retries deliveries that were stored but not answered (crash, Jira or
/// database trouble while answering).
pub async fn inbox_worker(state: Core) {
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let now = now();
        // Leave fresh deliveries to the task waiting out their delay.
        let delay_s = Tuning::get(&state.jobs.tuning.webhook_hint_delay_ms).div_ceil(1000) as i64;
        let due = match deliveries::due(state.store.pool(), now, now - 1 - delay_s).await {
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

/// Claim one stored delivery with every waiting delivery of the same hint
/// and answer them with one re-read (at most one process at a time).
pub async fn apply_delivery(state: &Core, identifier: &str) {
    let now = now();
    let claim = uuid::Uuid::new_v4().to_string();
    let claimed = deliveries::claim_batch(
        state.store.pool(),
        identifier,
        &claim,
        now,
        now + APPLY_LEASE_SECS,
    )
    .await;
    let (hint, batch) = match claimed {
        Ok((hint, batch)) if !batch.is_empty() => (hint, batch),
        Ok(_) => return,
        Err(e) => {
            tracing::warn!(identifier, error = %e, "claiming a Jira webhook delivery failed");
            return;
        }
    };
    let result = match &hint {
        Some(hint) => apply_hint(state, hint, &batch).await,
        None => Ok(0),
    };
    let now = crate::store::now();
    let update = match &result {
        Ok(n) => deliveries::mark_done(state.store.pool(), &claim, *n > 0, now).await,
        Err(e) => {
            tracing::warn!(identifier, deliveries = batch.len(), error = %e.describe(), "re-reading a webhook's issue failed; will retry");
            let attempts = batch.iter().map(|d| d.attempts).max().unwrap_or(0);
            deliveries::mark_failed(
                state.store.pool(),
                &claim,
                attempts >= MAX_APPLY_ATTEMPTS,
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

/// The syncs a batch may concern, grouped by connection (issues are stored
/// per connection): on the hint's site, with a registered webhook among the
/// deliveries' `matchedWebhookIds` (ids are per site; a forged list only
/// costs reads). In each group, syncs whose filter is exactly their JQL come
/// first.
async fn matching_syncs(
    state: &Core,
    hint: &Hint,
    matched: &[i64],
) -> Result<Vec<Vec<SyncRow>>, SyncError> {
    let all: Vec<SyncRow> = sync_rows::with_webhooks(state.store.pool()).await?;
    let mut groups: Vec<Vec<SyncRow>> = Vec::new();
    for s in all {
        let on_site = s.site_url.trim_end_matches('/') == hint.site;
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

/// Ask Jira, with the sync's connection, for the issue as this sync would
/// store it: `None` when Jira has no such issue in the sync's JQL.
async fn reread(
    state: &Core,
    sync: &SyncRow,
    issue_id: &str,
    now: i64,
) -> Result<Option<IssueRow>, SyncError> {
    let (filter, _) = split_order_by(&sync.jql);
    let query = [
        ("jql", format!("({filter}) AND id = {issue_id}")),
        ("fields", engine::field_list(sync)),
    ];
    match engine::ops_ctx(state, sync)
        .get("rest/api/3/search/jql", &query)
        .await
    {
        Ok(v) => Ok(v["issues"]
            .as_array()
            .and_then(|a| a.first())
            .and_then(|i| engine::parse_issue(i, sync, now))
            .filter(|row| row.issue_id == issue_id)),
        // Jira refuses `id = N` for an id it does not know (or may not show).
        Err(AtlassianError::Status { status, .. }) if status.as_u16() == 400 => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Answer a batch of deliveries for one issue: returns how many
/// connections' copies changed.
pub async fn apply_hint(
    state: &Core,
    hint: &Hint,
    batch: &[deliveries::Claimed],
) -> Result<usize, SyncError> {
    let mut matched: Vec<i64> = Vec::new();
    let mut any_issue_event = false;
    for d in batch {
        let payload = &d.payload;
        let event = payload["webhookEvent"].as_str().unwrap_or("");
        any_issue_event |= crate::sync::registration::EVENTS.contains(&event);
        for id in payload["matchedWebhookIds"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_i64)
        {
            if !matched.contains(&id) {
                matched.push(id);
            }
        }
    }
    if !any_issue_event {
        return Ok(0);
    }
    let issue_id = hint.issue_id.as_str();
    // Jira ids are numbers; anything else cannot name an issue (and must not reach JQL).
    if issue_id.is_empty() || !issue_id.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(0);
    }
    let mut touched = 0;
    for group in matching_syncs(state, hint, &matched).await? {
        let now = now();
        // The first sync of the connection that Jira says holds the issue stores it.
        let mut found = None;
        for sync in &group {
            if let Some(row) = reread(state, sync, issue_id, now).await? {
                found = Some((sync, row));
                break;
            }
        }
        let first = &group[0];
        let Some((sync, row)) = found else {
            // Not in any of the syncs: deleted only if Jira says 404 to this connection.
            let live = sync_rows::get_issue(state.store.pool(), &first.connection_id, issue_id)
                .await?
                .is_some_and(|r| !r.deleted);
            let gone = live && engine::gone_in_jira(state, &first.connection_id, issue_id).await?;
            if live && !gone {
                engine::left_the_jql(state, &first.connection_id, issue_id).await?;
            }
            if gone {
                let mut tx = state.store.begin_write().await?;
                if let Some(row) =
                    engine::mark_deleted_and_announce(&mut tx, &group, issue_id, now).await?
                {
                    tracing::info!(connection_id = %first.connection_id, issue_id, key = %row.issue_key, "Jira answered 404: issue marked deleted");
                    touched += 1;
                }
                tx.commit().await?;
            }
            continue;
        };
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
        token_from("c", secret, exp_in)
    }

    fn token_from(iss: &str, secret: &str, exp_in: i64) -> String {
        let now = chrono::Utc::now().timestamp();
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &serde_json::json!({ "iss": iss, "iat": now, "exp": now + exp_in }),
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn the_client_secret_and_a_live_exp_verify() {
        let secret = SecretString::from("s3cret");
        assert!(verify_jwt(&token("s3cret", 60), "c", &secret).is_ok());
        assert!(verify_jwt(&token("other", 60), "c", &secret).is_err());
        assert!(verify_jwt(&token("s3cret", -120), "c", &secret).is_err());
        // Signed with our secret but issued for another client id.
        assert!(verify_jwt(&token_from("other-client", "s3cret", 60), "c", &secret).is_err());
        let no_iss = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &serde_json::json!({ "exp": chrono::Utc::now().timestamp() + 60 }),
            &jsonwebtoken::EncodingKey::from_secret(b"s3cret"),
        )
        .unwrap();
        assert!(
            verify_jwt(&no_iss, "c", &secret).is_err(),
            "iss is required"
        );
        let none = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &serde_json::json!({ "iss": "c" }),
            &jsonwebtoken::EncodingKey::from_secret(b"s3cret"),
        )
        .unwrap();
        assert!(verify_jwt(&none, "c", &secret).is_err(), "exp is required");
    }

    #[test]
    fn the_hint_is_the_site_of_self_and_the_issue_id() {
        let p = serde_json::json!({"issue": {"id": "10001", "self": "https://acme.atlassian.net/rest/api/2/issue/10001"}});
        assert_eq!(
            hint_of(&p),
            Some(Hint {
                site: "https://acme.atlassian.net".into(),
                issue_id: "10001".into()
            })
        );
        let n = serde_json::json!({"issue": {"id": 7, "self": "http://127.0.0.1:9/site/rest/api/3/issue/7"}});
        assert_eq!(hint_of(&n).unwrap().site, "http://127.0.0.1:9/site");
        for bad in [
            serde_json::json!({"issue": {"self": "https://a/rest/api/2/issue/1"}}),
            serde_json::json!({"issue": {"id": "1", "self": "https://a/browse/1"}}),
            serde_json::json!({"issue": {"id": "1"}}),
            serde_json::json!({}),
        ] {
            assert_eq!(hint_of(&bad), None, "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_verifies(s in "\\PC{0,200}") {
            proptest::prop_assert!(verify_jwt(&s, "c", &SecretString::from("s3cret")).is_err());
        }

        #[test]
        fn another_secret_never_verifies(other in "[a-zA-Z0-9]{1,40}") {
            proptest::prop_assume!(other != "s3cret");
            proptest::prop_assert!(verify_jwt(&token(&other, 60), "c", &SecretString::from("s3cret")).is_err());
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
            let r = verify_jwt(&tampered, "c", &SecretString::from("s3cret"));
            if let Ok(claims) = &r {
                // Only possible when the change hit padding bits of a segment.
                proptest::prop_assert!(claims["iss"] == "c");
            }
        }
    }
}
