//! Atlassian's three independent rate limits (docs/atlassian-behaviour.md §4), on the
//! simulated clock, only when `SimConfig::rate_limits` is on:
//!
//! 1. burst: a token bucket per site per (method, endpoint template — the
//!    route table's spec path, so `…/issue/A-1` and `…/issue/A-2` share one),
//!    refilled at the method's rate (GET/POST 100 rps, PUT/DELETE 50 rps;
//!    `GET …/issue/{issueIdOrKey}` 150 rps, the documented override);
//! 2. per-issue writes: 20 per 2 s and 100 per 30 s per issue;
//! 3. the hourly points quota: `crate::quota`.
//!
//! A refusal is a 429 with `Retry-After`, `X-RateLimit-Limit`,
//! `X-RateLimit-Remaining: 0`, `X-RateLimit-Reset` (ISO-8601) and
//! `RateLimit-Reason`. The body is a guess (Atlassian documents none):
//! Jira's `ErrorCollection` with "Rate limit exceeded.".

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{Duration, SecondsFormat};
use serde_json::json;

use crate::gateway::Route;
use crate::model::{SimState, Timestamp};

/// The knobs; defaults are Atlassian's published numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimitSettings {
    /// Burst bucket refill rate (and capacity) per method, requests per second.
    pub get_rps: f64,
    pub post_rps: f64,
    pub put_rps: f64,
    pub delete_rps: f64,
    /// Writes per issue: (count, window seconds), both enforced.
    pub issue_writes_short: (usize, i64),
    pub issue_writes_long: (usize, i64),
    /// Points per app per UTC hour (`crate::quota`, when `--points-per-hour`
    /// is not given).
    pub hourly_points: u64,
    /// `GET /rest/api/{2,3}/issue/{issueIdOrKey}`'s own burst rate.
    pub get_issue_rps: f64,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings {
            get_rps: 100.0,
            post_rps: 100.0,
            put_rps: 50.0,
            delete_rps: 50.0,
            issue_writes_short: (20, 2),
            issue_writes_long: (100, 30),
            hourly_points: 65_000,
            get_issue_rps: 150.0,
        }
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Timestamp,
}

#[derive(Debug, Default)]
struct Inner {
    buckets: HashMap<(String, String, String), Bucket>,
    issue_writes: HashMap<(String, String), VecDeque<Timestamp>>,
}

#[derive(Debug, Default)]
pub struct Limiter {
    inner: Mutex<Inner>,
}

/// A 429 ready to send.
#[derive(Debug)]
pub struct Limited {
    reason: &'static str,
    limit: u64,
    retry_after_secs: i64,
    reset: Timestamp,
}

impl IntoResponse for Limited {
    fn into_response(self) -> Response {
        let mut headers = HeaderMap::new();
        let num =
            |n: i64| HeaderValue::from_str(&n.to_string()).unwrap_or(HeaderValue::from_static("1"));
        headers.insert("retry-after", num(self.retry_after_secs.max(1)));
        headers.insert("x-ratelimit-limit", num(self.limit as i64));
        headers.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        if let Ok(v) = HeaderValue::from_str(&self.reset.to_rfc3339_opts(SecondsFormat::Secs, true))
        {
            headers.insert("x-ratelimit-reset", v);
        }
        headers.insert("ratelimit-reason", HeaderValue::from_static(self.reason));
        (
            StatusCode::TOO_MANY_REQUESTS,
            headers,
            Json(json!({"errorMessages": ["Rate limit exceeded."], "errors": {}})),
        )
            .into_response()
    }
}

fn is_write(method: &str) -> bool {
    matches!(method, "POST" | "PUT" | "DELETE")
}

impl Limiter {
    /// Check the burst and per-issue limits for one request and take its
    /// burst token. Returns headers for a successful response (the near-limit
    /// warning when the bucket runs low).
    pub fn check(
        &self,
        state: &SimState,
        cloud_id: &str,
        route: &Route,
        issue: Option<&str>,
    ) -> Result<HeaderMap, Limited> {
        let settings = &state.config.rate_limit;
        let now = state.clock.now();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());

        // 1. Burst bucket per site per (method, endpoint template).
        let rate = match route.method {
            "GET" if route.path == "/rest/api/3/issue/{issueIdOrKey}" => settings.get_issue_rps,
            "POST" => settings.post_rps,
            "PUT" => settings.put_rps,
            "DELETE" => settings.delete_rps,
            _ => settings.get_rps,
        };
        let key = (
            cloud_id.to_string(),
            route.method.to_string(),
            route.path.to_string(),
        );
        let bucket = inner.buckets.entry(key).or_insert(Bucket {
            tokens: rate,
            last: now,
        });
        let elapsed = (now - bucket.last).num_milliseconds().max(0) as f64 / 1000.0;
        bucket.tokens = (bucket.tokens + elapsed * rate).min(rate);
        bucket.last = now;
        if bucket.tokens < 1.0 {
            let wait_ms = (((1.0 - bucket.tokens) / rate) * 1000.0).ceil() as i64;
            return Err(Limited {
                reason: "jira-burst-based",
                limit: rate.ceil() as u64,
                retry_after_secs: (wait_ms + 999) / 1000,
                reset: now + Duration::milliseconds(wait_ms),
            });
        }
        let burst_left = bucket.tokens - 1.0;

        // 2. Per-issue writes.
        if let (Some(issue), true) = (issue, is_write(route.method)) {
            let ikey = (cloud_id.to_string(), issue.to_ascii_uppercase());
            let writes = inner.issue_writes.entry(ikey).or_default();
            let (long_n, long_w) = settings.issue_writes_long;
            while writes
                .front()
                .is_some_and(|t| (now - *t).num_seconds() >= long_w)
            {
                writes.pop_front();
            }
            for (n, window) in [settings.issue_writes_short, settings.issue_writes_long] {
                let in_window: Vec<&Timestamp> = writes
                    .iter()
                    .filter(|t| now - **t < Duration::seconds(window))
                    .collect();
                if in_window.len() >= n {
                    let oldest = in_window.first().map(|t| **t).unwrap_or(now);
                    let reset = oldest + Duration::seconds(window);
                    return Err(Limited {
                        reason: "jira-per-issue-on-write",
                        limit: n as u64,
                        retry_after_secs: (reset - now).num_seconds().max(1),
                        reset,
                    });
                }
            }
            let _ = long_n;
            writes.push_back(now);
        }

        // Passed: take the token and the base point.
        if let Some(b) = inner.buckets.get_mut(&(
            cloud_id.to_string(),
            route.method.to_string(),
            route.path.to_string(),
        )) {
            b.tokens -= 1.0;
        }
        let mut headers = HeaderMap::new();
        if burst_left < rate * 0.2 {
            headers.insert("x-ratelimit-nearlimit", HeaderValue::from_static("true"));
        }
        Ok(headers)
    }
}
