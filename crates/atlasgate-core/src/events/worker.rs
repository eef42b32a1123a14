//! The outbox delivery worker: claims due events (the oldest undelivered one
//! of each connection only, so event N+1 never overtakes N), POSTs them to
//! the app's `webhook_url` signed per Standard Webhooks, and on failure
//! retries with exponential backoff until its first attempt is older than
//! the give-up age (over a day), then marks it `failed`.

use std::time::Duration;

use secrecy::ExposeSecret;
use serde_json::json;

use crate::jobs::{nap, Counters, Tuning};
use crate::state::Core;
use crate::store::events::{self as rows, DeliveryState};
use crate::store::StoreError;
use crate::time::rfc3339;

/// How long a claim holds an event (a crashed worker's events return after it).
const LEASE_SECS: i64 = 60;
/// One delivery attempt may take this long.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);
/// Events claimed per round (at most one per connection).
const BATCH: i64 = 32;

pub use crate::store::events::DueEvent;

pub async fn run(state: Core) {
    loop {
        let n = match deliver_due(&state).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "event delivery round failed");
                0
            }
        };
        if n == 0 {
            let poll = Tuning::get(&state.jobs.tuning.events_poll_ms);
            nap(&state.jobs.events_wakeup, poll).await;
        }
    }
}

/// One round: claim, deliver concurrently, record outcomes. Returns how many
/// events were attempted.
pub async fn deliver_due(state: &Core) -> Result<usize, StoreError> {
    let due = claim(state).await?;
    let n = due.len();
    futures::future::join_all(due.iter().map(|e| deliver_one(state, e))).await;
    Ok(n)
}

async fn claim(state: &Core) -> Result<Vec<DueEvent>, StoreError> {
    let store = &state.store;
    let now = crate::store::now();
    crate::store::events::claim_due(store, &state.jobs.worker_id, now, now + LEASE_SECS, BATCH)
        .await
}

/// The body POSTed for an event (Standard Webhooks' recommended shape).
pub fn body_of(e: &DueEvent) -> serde_json::Value {
    json!({
        "id": e.id,
        "type": e.event_type,
        "timestamp": rfc3339(e.created_at),
        "connection_id": e.connection_id,
        "data": &e.payload,
    })
}

enum Outcome {
    Delivered(u16),
    Failed { status: Option<u16>, error: String },
    Skipped(&'static str),
}

async fn attempt(state: &Core, e: &DueEvent) -> Outcome {
    let app = match crate::apps::get(&state.store, &e.app_id).await {
        Ok(Some(a)) => a,
        Ok(None) => return Outcome::Skipped("the app no longer exists"),
        Err(err) => {
            return Outcome::Failed {
                status: None,
                error: format!("store: {err}"),
            }
        }
    };
    let Some(url) = app.webhook_url else {
        return Outcome::Skipped("the app has no webhook_url");
    };
    let ts = crate::store::now();
    // During a rotation's overlap the old secret signs too (docs/design.md §13).
    let secrets =
        match crate::apps::signing_secrets(&state.store, &state.cipher, &e.app_id, ts).await {
            Ok(s) if s.is_empty() => return Outcome::Skipped("the app has no webhook secret"),
            Ok(s) => s,
            Err(err) => {
                return Outcome::Failed {
                    status: None,
                    error: format!("secret: {err}"),
                }
            }
        };
    let body = serde_json::to_vec(&body_of(e)).unwrap_or_default();
    let mut signatures = Vec::with_capacity(secrets.len());
    for secret in &secrets {
        match super::sign(secret.expose_secret(), &e.id, ts, &body) {
            Ok(s) => signatures.push(s),
            Err(err) => {
                return Outcome::Failed {
                    status: None,
                    error: err.to_string(),
                }
            }
        }
    }
    let signature = signatures.join(" ");
    Counters::bump(&state.jobs.counters.event_attempts);
    let sent = state
        .http
        .post(url)
        .timeout(ATTEMPT_TIMEOUT)
        .header("content-type", "application/json")
        .header("webhook-id", &e.id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => Outcome::Delivered(r.status().as_u16()),
        Ok(r) => Outcome::Failed {
            status: Some(r.status().as_u16()),
            error: format!("the webhook URL answered {}", r.status()),
        },
        // The error names the URL, never a secret.
        Err(err) => Outcome::Failed {
            status: None,
            error: format!("request failed: {err}"),
        },
    }
}

/// Delay before attempt `attempts + 1`: base × 2^attempts, capped, with ±20 % jitter.
pub fn backoff_ms(base: u64, max: u64, attempts: i64) -> u64 {
    let exp = base.saturating_mul(1u64 << attempts.clamp(0, 30));
    let capped = exp.min(max).max(1);
    let jitter = rand::random_range(0.8..1.2);
    (capped as f64 * jitter) as u64
}

async fn deliver_one(state: &Core, e: &DueEvent) {
    let outcome = attempt(state, e).await;
    let now = crate::store::now();
    let me = &state.jobs.worker_id;
    let t = &state.jobs.tuning;
    let res = match outcome {
        Outcome::Delivered(status) => {
            Counters::bump(&state.jobs.counters.events_delivered);
            state
                .metrics
                .event_delivery(DeliveryState::Delivered.as_str());
            rows::mark_delivered(state.store.pool(), e.seq, me, status, now).await
        }
        Outcome::Skipped(why) => rows::mark_skipped(state.store.pool(), e.seq, me, why).await,
        Outcome::Failed { status, error } => {
            let first = e.first_attempt_at.unwrap_or(now);
            let give_up = now - first >= Tuning::get(&t.events_give_up_after_s) as i64;
            let delay_ms = backoff_ms(
                Tuning::get(&t.events_backoff_base_ms),
                Tuning::get(&t.events_backoff_max_ms),
                e.attempts,
            );
            let next = now + (delay_ms as i64 + 999) / 1000;
            state.metrics.event_delivery(if give_up {
                DeliveryState::Failed.as_str()
            } else {
                "retry"
            });
            tracing::info!(event_id = %e.id, attempts = e.attempts + 1, give_up, error = %error, "event delivery failed");
            rows::mark_failed(
                state.store.pool(),
                rows::FailedAttempt {
                    seq: e.seq,
                    me,
                    give_up,
                    status,
                    error: &error,
                    next_attempt_at: next,
                    now,
                },
            )
            .await
        }
    };
    if let Err(err) = res {
        tracing::warn!(event_id = %e.id, error = %err, "could not record a delivery outcome");
    }
}
