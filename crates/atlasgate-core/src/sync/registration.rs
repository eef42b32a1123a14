//! Jira dynamic webhooks of syncs (docs/atlassian-behaviour.md §5): registered with the
//! sync's JQL when it is inside Jira's webhook subset, else with
//! `project IN (…)` and a check of each delivery against the JQL; refreshed
//! a week before their 30-day expiry; deleted with the sync or on disconnect.

use http::Method;
use serde_json::{json, Value};

use crate::atlassian::{ApiRequest, AtlassianError, PageGuard, Product};
use crate::ids::ConnectionId;
use crate::state::Core;
use crate::store::connections::ConnectionRow;
use crate::store::{now, passes};
use crate::sync::engine::{list_projects, SyncError};
use crate::sync::jql::{parse_jira_time, split_order_by};
use crate::sync::store::{self as sync_rows, SyncRow};

pub const EVENTS: &[&str] = &[
    "jira:issue_created",
    "jira:issue_updated",
    "jira:issue_deleted",
];
/// Refresh when less than this is left of the 30 days.
const RENEW_BEFORE_SECS: i64 = 7 * 24 * 3600;

/// Where Jira delivers: `{PUBLIC_URL}/webhooks/jira`.
pub fn callback_url(state: &Core) -> String {
    format!(
        "{}/webhooks/jira",
        state.config.public_url.as_str().trim_end_matches('/')
    )
}

fn expiry_secs(v: &Value) -> Option<i64> {
    // The schema says int64 epoch ms; the spec's examples show a string. Take both.
    match v {
        Value::Number(n) => n.as_i64().map(|ms| ms / 1000),
        Value::String(s) => parse_jira_time(s).map(|ms| ms / 1000),
        _ => None,
    }
}

async fn register(
    state: &Core,
    sync: &SyncRow,
    filter: &str,
) -> Result<Result<i64, String>, SyncError> {
    let body = json!({
        "url": callback_url(state),
        "webhooks": [{ "events": EVENTS, "jqlFilter": filter }],
    });
    let req = ApiRequest::jira(Method::POST, "rest/api/3/webhook").json(&body);
    let (v, _) = state
        .atlassian
        .json::<Value>(None, &sync.connection_id, req)
        .await?;
    let first = &v["webhookRegistrationResult"][0];
    if let Some(id) = first["createdWebhookId"].as_i64() {
        return Ok(Ok(id));
    }
    let errors: Vec<String> = first["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    Ok(Err(if errors.is_empty() {
        "Jira registered no webhook".into()
    } else {
        errors.join("; ")
    }))
}

/// The expiry (unix seconds) of the app's webhook `id` on the site, if it still exists.
async fn find(state: &Core, sync: &SyncRow, id: i64) -> Result<Option<Option<i64>>, SyncError> {
    let mut start = 0usize;
    let mut guard = PageGuard::new("webhook list");
    loop {
        let req = ApiRequest::get(Product::Jira, "rest/api/3/webhook")
            .query(&[("startAt", start.to_string()), ("maxResults", "100".into())]);
        let (v, _) = state
            .atlassian
            .json::<Value>(None, &sync.connection_id, req)
            .await?;
        guard.follow_start(&v, start)?;
        let values = v["values"].as_array().cloned().unwrap_or_default();
        if let Some(w) = values.iter().find(|w| w["id"].as_i64() == Some(id)) {
            return Ok(Some(expiry_secs(&w["expirationDate"])));
        }
        start += values.len();
        if values.is_empty() || v["isLast"].as_bool().unwrap_or(true) {
            return Ok(None);
        }
    }
}

/// Make sure the sync's webhook exists and is far from expiry. Problems end
/// up in `webhook_error` (the sync keeps polling either way).
pub async fn upkeep(state: &Core, sync: &mut SyncRow) -> Result<(), SyncError> {
    let now = now();
    if let Some(id) = sync.webhook_id {
        if sync
            .webhook_expires_at
            .is_some_and(|e| e - now > RENEW_BEFORE_SECS)
        {
            return Ok(());
        }
        let req = ApiRequest::jira(Method::PUT, "rest/api/3/webhook/refresh")
            .json(&json!({ "webhookIds": [id] }));
        let (v, _) = state
            .atlassian
            .json::<Value>(None, &sync.connection_id, req)
            .await?;
        // Unknown (expired, deleted) ids are ignored by Jira: confirm it is still there.
        if let Some(listed) = find(state, sync, id).await? {
            let expires = listed.or_else(|| expiry_secs(&v["expirationDate"]));
            save(
                state,
                sync,
                Some(id),
                sync.webhook_filter.clone(),
                sync.webhook_local_filter,
                expires,
                None,
            )
            .await?;
            return Ok(());
        }
        tracing::info!(sync_id = %sync.id, webhook_id = id, "the sync's Jira webhook is gone; registering again");
    }
    let (filter, _) = split_order_by(&sync.jql);
    let filter = filter.to_string();
    // Jira allows an OAuth app 5 webhooks per user and site: syncs of one
    // connection with the same filter share one registration.
    if let Some((id, expires)) = shared(state, sync, &filter).await? {
        return save(state, sync, Some(id), Some(filter), false, expires, None).await;
    }
    let outcome = match register(state, sync, &filter).await? {
        Ok(id) => Ok((id, filter, false)),
        Err(first_error) => {
            // Outside Jira's webhook JQL subset: listen to the projects, check each delivery.
            let projects = list_projects(state, sync).await?;
            if projects.is_empty() {
                Err(first_error)
            } else {
                let broad = format!(
                    "project IN ({})",
                    projects
                        .iter()
                        .map(|p| p.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                if let Some((id, expires)) = shared(state, sync, &broad).await? {
                    return save(state, sync, Some(id), Some(broad), true, expires, None).await;
                }
                match register(state, sync, &broad).await? {
                    Ok(id) => Ok((id, broad, true)),
                    Err(e) => Err(format!("{first_error}; with `{broad}`: {e}")),
                }
            }
        }
    };
    match outcome {
        Ok((id, filter, local)) => {
            let expires = find(state, sync, id)
                .await?
                .flatten()
                .or(Some(now + 30 * 24 * 3600));
            tracing::info!(sync_id = %sync.id, webhook_id = id, local_filter = local, "Jira webhook registered");
            save(state, sync, Some(id), Some(filter), local, expires, None).await
        }
        Err(e) => {
            tracing::warn!(sync_id = %sync.id, error = %e, "Jira refused the webhook");
            save(state, sync, None, None, false, None, Some(e)).await
        }
    }
}

/// A live registration of another sync of the same connection with this filter.
async fn shared(
    state: &Core,
    sync: &SyncRow,
    filter: &str,
) -> Result<Option<(i64, Option<i64>)>, SyncError> {
    Ok(passes::shared_webhook(state.store.pool(), &sync.connection_id, &sync.id, filter).await?)
}

async fn save(
    state: &Core,
    sync: &mut SyncRow,
    id: Option<i64>,
    filter: Option<String>,
    local: bool,
    expires: Option<i64>,
    error: Option<String>,
) -> Result<(), SyncError> {
    let w = passes::WebhookState {
        id,
        filter: filter.clone(),
        local_filter: local,
        expires_at: expires,
        error: error.clone(),
    };
    passes::save_webhook(state.store.pool(), &sync.id, &w).await?;
    sync.webhook_id = id;
    sync.webhook_filter = filter;
    sync.webhook_local_filter = local;
    sync.webhook_expires_at = expires;
    sync.webhook_error = error;
    Ok(())
}

/// Delete the Jira webhooks of these syncs (one call) and forget them.
pub async fn delete_for(
    state: &Core,
    connection_id: &ConnectionId,
    syncs: &[SyncRow],
) -> Result<(), SyncError> {
    // A registration another (staying) sync shares is kept.
    let leaving: Vec<&str> = syncs.iter().map(|s| s.id.as_str()).collect();
    let mut ids: Vec<i64> = Vec::new();
    for id in syncs.iter().filter_map(|s| s.webhook_id) {
        let users = passes::webhook_users(state.store.pool(), connection_id, id).await?;
        if users.iter().all(|u| leaving.contains(&u.as_str())) && !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.is_empty() {
        return Ok(());
    }
    let req =
        ApiRequest::jira(Method::DELETE, "rest/api/3/webhook").json(&json!({ "webhookIds": ids }));
    match state.atlassian.call(None, connection_id, req).await {
        Ok(_) => {}
        Err(AtlassianError::Status { status, .. }) if status.as_u16() == 404 => {}
        Err(e) => return Err(e.into()),
    }
    for s in syncs {
        passes::forget_webhook(state.store.pool(), &s.id).await?;
    }
    tracing::info!(connection_id = %connection_id, count = ids.len(), "Jira webhooks deleted");
    Ok(())
}

/// Called before a connection's tokens are wiped: delete its webhooks while
/// the token still works, and stop its syncs. Never blocks the disconnect.
pub async fn on_disconnect(state: &Core, row: &ConnectionRow) {
    let syncs = match sync_rows::of_connection(state.store.pool(), &row.id).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(connection_id = %row.id, error = %e, "could not read the connection's syncs");
            return;
        }
    };
    if let Err(e) = delete_for(state, &row.id, &syncs).await {
        tracing::warn!(connection_id = %row.id, error = %e.describe(), "could not delete Jira webhooks on disconnect");
    }
    if let Err(e) = passes::stop_all(state.store.pool(), &row.id, now()).await {
        tracing::warn!(connection_id = %row.id, error = %e, "could not stop the connection's syncs");
    }
}
