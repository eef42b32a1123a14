//! `POST|GET|DELETE /rest/api/3/webhook` and `PUT /rest/api/3/webhook/refresh`.
//!
//! Guesses (undocumented by Atlassian): a second URL for the same app on a
//! site is a 400 `ErrorCollection` ("Only a single URL per app is allowed to
//! be registered."); the 6th webhook of an app for one user on one site gets
//! the per-item error "Webhook limit exceeded: an OAuth 2.0 app can register
//! at most 5 webhooks per user on a site.".

use axum::extract::RawQuery;
use axum::http::StatusCode;
use axum::Json;
use chrono::Duration;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::errors::{ApiError, ApiResult};
use crate::gateway::Ctx;
use crate::jira::{query_int, query_pairs};
use crate::jql::{self, webhook::subset_errors, Compiled, EvalCtx};
use crate::model::WebhookRegistration;

pub const EXPIRY_DAYS: i64 = 30;
pub const MAX_PER_USER: usize = 5;
pub const EVENTS: &[&str] = &[
    "jira:issue_created",
    "jira:issue_updated",
    "jira:issue_deleted",
    "comment_created",
    "comment_updated",
    "comment_deleted",
    "issue_property_set",
    "issue_property_deleted",
];

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDetails {
    #[serde(default)]
    events: Vec<String>,
    jql_filter: Option<String>,
    field_ids_filter: Option<Vec<String>>,
    #[allow(dead_code)]
    issue_property_keys_filter: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
pub struct WebhookRegistrationDetails {
    url: Option<String>,
    webhooks: Option<Vec<WebhookDetails>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerForWebhookIds {
    webhook_ids: Option<Vec<u64>>,
}

fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Invalid request payload: {e}")))
}

pub async fn register_webhooks(ctx: Ctx, body: axum::body::Bytes) -> ApiResult<Json<Value>> {
    let req: WebhookRegistrationDetails = json_body(&body)?;
    let url = req.url.filter(|u| !u.trim().is_empty()).ok_or_else(|| {
        ApiError::jira_field(
            StatusCode::BAD_REQUEST,
            "url",
            "The webhook URL must not be empty.",
        )
    })?;
    if url::Url::parse(&url).is_err() {
        return Err(ApiError::jira_field(
            StatusCode::BAD_REQUEST,
            "url",
            "The webhook URL is invalid.",
        ));
    }
    let items = req.webhooks.filter(|w| !w.is_empty()).ok_or_else(|| {
        ApiError::jira_field(
            StatusCode::BAD_REQUEST,
            "webhooks",
            "At least one webhook is required.",
        )
    })?;
    let now = ctx.state.clock.now();
    let mut world = ctx.state.world();
    let users = world.users.clone();
    let site = world
        .site_mut(&ctx.cloud_id)
        .ok_or(ApiError::SiteNotFound)?;
    site.webhooks.retain(|w| w.expires_at > now);
    let client = ctx.access.client_id.clone();
    if site
        .webhooks
        .iter()
        .any(|w| w.client_id == client && w.url != url)
    {
        return Err(ApiError::bad_request(
            "Only a single URL per app is allowed to be registered.",
        ));
    }
    let mut results = Vec::new();
    let mut created = 0u64;
    for item in items {
        let mut errors: Vec<String> = Vec::new();
        if item.events.is_empty() {
            errors.push("The list of events must not be empty.".into());
        }
        for e in &item.events {
            if !EVENTS.contains(&e.as_str()) {
                errors.push(format!("The event {e} is unsupported."));
            }
        }
        let jql_text = item.jql_filter.clone().unwrap_or_default();
        if jql_text.trim().is_empty() {
            errors.push("The JQL filter must not be empty.".into());
        } else {
            match jql::parse(&jql_text) {
                Err(e) => errors.extend(e.messages),
                Ok(q) => {
                    let subset = subset_errors(&q);
                    if subset.is_empty() {
                        let eval = EvalCtx {
                            site,
                            users: &users,
                            now,
                            current_user: Some(&ctx.access.account_id),
                            strict: true,
                        };
                        if let Err(e) = Compiled::new(&q, &eval) {
                            errors.extend(e.messages);
                        }
                    }
                    errors.extend(subset);
                }
            }
        }
        let mine = site
            .webhooks
            .iter()
            .filter(|w| w.client_id == client && w.account_id == ctx.access.account_id)
            .count();
        if errors.is_empty() && mine >= MAX_PER_USER {
            errors.push(format!(
                "Webhook limit exceeded: an OAuth 2.0 app can register at most {MAX_PER_USER} webhooks per user on a site."
            ));
        }
        if !errors.is_empty() {
            results.push(json!({"errors": errors}));
            continue;
        }
        let id = site.next_webhook_id;
        site.next_webhook_id += 1;
        site.webhooks.push(WebhookRegistration {
            id,
            client_id: client.clone(),
            account_id: ctx.access.account_id.clone(),
            url: url.clone(),
            events: item.events.clone(),
            jql_filter: jql_text,
            field_ids_filter: item.field_ids_filter.clone(),
            expires_at: now + Duration::days(EXPIRY_DAYS),
        });
        created += 1;
        results.push(json!({"createdWebhookId": id}));
    }
    world.stats.webhooks_registered += created;
    Ok(Json(json!({"webhookRegistrationResult": results})))
}

pub async fn list_webhooks(ctx: Ctx, RawQuery(raw): RawQuery) -> ApiResult<Json<Value>> {
    let q = query_pairs(&raw);
    let start_at = query_int(&q, "startAt")?.unwrap_or(0).max(0) as usize;
    let max_results = query_int(&q, "maxResults")?.unwrap_or(100).clamp(1, 100) as usize;
    let now = ctx.state.clock.now();
    let mut world = ctx.state.world();
    let site = world
        .site_mut(&ctx.cloud_id)
        .ok_or(ApiError::SiteNotFound)?;
    site.webhooks.retain(|w| w.expires_at > now);
    let mine: Vec<&WebhookRegistration> = site
        .webhooks
        .iter()
        .filter(|w| w.client_id == ctx.access.client_id)
        .collect();
    let total = mine.len();
    let values: Vec<Value> = mine
        .iter()
        .skip(start_at)
        .take(max_results)
        .map(|w| {
            let mut v = json!({
                "id": w.id,
                "jqlFilter": w.jql_filter,
                "events": w.events,
                "url": w.url,
                // `Webhook.expirationDate` is int64 epoch ms in the schema.
                "expirationDate": w.expires_at.timestamp_millis(),
            });
            if let (Some(f), Some(o)) = (&w.field_ids_filter, v.as_object_mut()) {
                o.insert("fieldIdsFilter".into(), json!(f));
            }
            v
        })
        .collect();
    let is_last = start_at + values.len() >= total;
    ctx.charge(values.len());
    Ok(Json(json!({
        "self": format!("{}/webhook?maxResults={max_results}&startAt={start_at}", ctx.rest_base()),
        "maxResults": max_results,
        "startAt": start_at,
        "total": total,
        "isLast": is_last,
        "values": values,
    })))
}

fn ids_of(body: &[u8]) -> ApiResult<Vec<u64>> {
    let req: ContainerForWebhookIds = json_body(body)?;
    req.webhook_ids.ok_or_else(|| {
        ApiError::jira_field(
            StatusCode::BAD_REQUEST,
            "webhookIds",
            "The list of webhook IDs must not be empty.",
        )
    })
}

pub async fn delete_webhooks(ctx: Ctx, body: axum::body::Bytes) -> ApiResult<StatusCode> {
    let ids = ids_of(&body)?;
    let mut world = ctx.state.world();
    let site = world
        .site_mut(&ctx.cloud_id)
        .ok_or(ApiError::SiteNotFound)?;
    // Ids of other apps are ignored (docs/atlassian-behaviour.md §5).
    site.webhooks
        .retain(|w| !(w.client_id == ctx.access.client_id && ids.contains(&w.id)));
    Ok(StatusCode::ACCEPTED)
}

pub async fn refresh_webhooks(ctx: Ctx, body: axum::body::Bytes) -> ApiResult<Json<Value>> {
    let ids = ids_of(&body)?;
    let now = ctx.state.clock.now();
    let expires = now + Duration::days(EXPIRY_DAYS);
    let mut world = ctx.state.world();
    let site = world
        .site_mut(&ctx.cloud_id)
        .ok_or(ApiError::SiteNotFound)?;
    for w in site.webhooks.iter_mut() {
        if w.client_id == ctx.access.client_id && ids.contains(&w.id) && w.expires_at > now {
            w.expires_at = expires;
        }
    }
    Ok(Json(json!({"expirationDate": expires.timestamp_millis()})))
}
