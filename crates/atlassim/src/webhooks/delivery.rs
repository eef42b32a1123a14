//! Delivering webhooks the way Jira does: POST with a bearer JWT (HS256,
//! signed with the registering app's client secret), Jira's headers,
//! retries on 408/409/425/429/5xx and connection errors, in order per
//! (site, app, URL).
//!
//! Guesses (Atlassian documents neither claims nor timing): claims are
//! `iss` = client id, `sub` = the account that registered the webhook,
//! `iat`, `exp` = `iat` + 5 minutes, on the wall clock (receivers check `exp`
//! against real time). Up to 5 retries, `webhook_retry_base_ms` doubled each
//! time (default 1 s, 2 s, 4 s, …; Atlassian waits minutes).

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::model::{AppState, SimState};

pub const MAX_RETRIES: u32 = 5;
pub const JWT_LIFETIME_SECS: i64 = 300;

#[derive(Clone)]
pub struct Delivery {
    /// Deliveries with the same queue go one at a time, in order.
    pub queue: String,
    pub url: String,
    pub client_id: String,
    pub client_secret: String,
    pub registered_by: String,
    pub triggered_by: String,
    /// `X-Atlassian-Webhook-Identifier`: the same on every retry.
    pub identifier: String,
    pub body: Value,
}

// The client secret never reaches a log line.
impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("url", &self.url)
            .field("client_id", &self.client_id)
            .field("identifier", &self.identifier)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
pub struct Dispatcher {
    queues: Mutex<HashMap<String, mpsc::UnboundedSender<Delivery>>>,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    iat: i64,
    exp: i64,
}

fn sign(d: &Delivery) -> Option<String> {
    let iat = chrono::Utc::now().timestamp();
    let claims = Claims {
        iss: &d.client_id,
        sub: &d.registered_by,
        iat,
        exp: iat + JWT_LIFETIME_SECS,
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(d.client_secret.as_bytes()),
    )
    .ok()
}

fn retryable(status: u16) -> bool {
    matches!(status, 408 | 409 | 425 | 429) || status >= 500
}

impl Dispatcher {
    pub fn send(&self, state: &AppState, delivery: Delivery) {
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        let key = delivery.queue.clone();
        let delivery = match queues.get(&key) {
            Some(tx) => match tx.send(delivery) {
                Ok(()) => return,
                Err(mpsc::error::SendError(d)) => d,
            },
            None => delivery,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(delivery);
        queues.insert(key, tx);
        tokio::spawn(worker(state.clone(), rx));
    }
}

async fn worker(state: AppState, mut rx: mpsc::UnboundedReceiver<Delivery>) {
    while let Some(d) = rx.recv().await {
        deliver(&state, &d).await;
    }
}

async fn deliver(state: &SimState, d: &Delivery) {
    let base = state.config.webhook_retry_base_ms;
    for attempt in 0..=MAX_RETRIES {
        let Some(jwt) = sign(d) else { return };
        let mut req = state
            .http
            .post(&d.url)
            .query(&[("triggeredByUser", d.triggered_by.as_str())])
            .bearer_auth(jwt)
            .header("X-Atlassian-Webhook-Identifier", &d.identifier)
            .header("X-Atlassian-Webhook-Flow", "Primary")
            .json(&d.body);
        if attempt > 0 {
            req = req.header("X-Atlassian-Webhook-Retry", attempt.to_string());
        }
        let outcome = req.send().await;
        let retry = match &outcome {
            Ok(resp) if resp.status().is_success() => {
                state.world().stats.webhook_deliveries += 1;
                return;
            }
            Ok(resp) => retryable(resp.status().as_u16()),
            Err(_) => true,
        };
        state.world().stats.webhook_failures += 1;
        if !retry || attempt == MAX_RETRIES {
            tracing::info!(url = %d.url, identifier = %d.identifier, attempt, "webhook delivery given up");
            return;
        }
        let delay = base.saturating_mul(1u64 << attempt.min(16));
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
}
