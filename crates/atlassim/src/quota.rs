//! The 2026 hourly points quota (docs/atlassian-behaviour.md §4,
//! docs/design.md §17), on atlassim's own clock.
//!
//! On with `--points-per-hour N` (or `--rate-limits`, which keeps the
//! published 65,000). A pool is per app (Tier 1 "global pool") or, with
//! `--points-per-tenant`, per (app, site) (Tier 2). Each admitted request
//! costs 1 point; a read adds 1 per core object and 2 per identity object it
//! returns; a write costs its 1 point only. Once a pool is spent every
//! request is refused with 429 until the top of the next UTC hour ("no
//! gradual throttling"), and `POST /__sim/clock/advance` moves past it.
//!
//! Headers, each also sent with the `Beta-` prefix of the beta period where
//! Atlassian sends both: `RateLimit-Policy: "global-app-quota";q=Q;w=3600`
//! and `RateLimit: "global-app-quota";t=SECS` (`r=REMAINING` added only when
//! under 20 % is left, as observed), `X-RateLimit-Limit` (the hourly quota),
//! `X-RateLimit-Remaining`, `X-RateLimit-NearLimit: true` under 20 %. A 429
//! carries `Retry-After` / `Beta-Retry-After`, `X-RateLimit-Reset`
//! (ISO-8601), `RateLimit-Reason` and no policy header (observed: the policy
//! header is absent once r=0).

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{Duration, DurationRound, SecondsFormat};
use serde_json::json;

use crate::config::SimConfig;
use crate::gateway::Route;
use crate::model::{SimState, Timestamp};

/// The quota in force, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub limit: u64,
    pub per_tenant: bool,
}

impl Policy {
    pub fn of(config: &SimConfig) -> Option<Policy> {
        let limit = config.points_per_hour.or(config
            .rate_limits
            .then_some(config.rate_limit.hourly_points))?;
        Some(Policy {
            limit,
            per_tenant: config.points_per_tenant,
        })
    }

    fn name(self) -> &'static str {
        if self.per_tenant {
            "tenant-app-quota"
        } else {
            "global-app-quota"
        }
    }

    fn reason(self) -> &'static str {
        if self.per_tenant {
            "jira-quota-tenant-based"
        } else {
            "jira-quota-global-based"
        }
    }

    /// The pool a request draws from: the app, or the app on this site.
    pub fn pool(self, client_id: &str, cloud_id: &str) -> String {
        if self.per_tenant {
            format!("{client_id}/{cloud_id}")
        } else {
            client_id.to_string()
        }
    }
}

fn hour_start(t: Timestamp) -> Timestamp {
    t.duration_trunc(Duration::hours(1)).unwrap_or(t)
}

/// Whether a route is a write (1 point flat). POSTs that only read —
/// `search/jql`, bulk fetches — are charged as reads (*guess*: the facts
/// name "writes", not methods).
pub fn is_write(route: &Route) -> bool {
    match route.method {
        "GET" => false,
        "POST" => !(route.path.contains("search") || route.path.contains("bulk")),
        _ => true,
    }
}

/// A spent pool: the 429 to send.
#[derive(Debug)]
pub struct Exhausted {
    policy: Policy,
    reset: Timestamp,
    now: Timestamp,
}

fn header(headers: &mut HeaderMap, name: &str, value: String) {
    if let (Ok(n), Ok(v)) = (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(&value),
    ) {
        headers.insert(n, v);
    }
}

/// Set `name` and `Beta-name` to the same value.
fn both(headers: &mut HeaderMap, name: &str, value: String) {
    header(headers, &format!("beta-{name}"), value.clone());
    header(headers, name, value);
}

impl IntoResponse for Exhausted {
    fn into_response(self) -> Response {
        let mut h = HeaderMap::new();
        let secs = (self.reset - self.now).num_seconds().max(1);
        both(&mut h, "retry-after", secs.to_string());
        header(&mut h, "x-ratelimit-limit", self.policy.limit.to_string());
        header(&mut h, "x-ratelimit-remaining", "0".into());
        header(
            &mut h,
            "x-ratelimit-reset",
            self.reset.to_rfc3339_opts(SecondsFormat::Secs, true),
        );
        header(&mut h, "ratelimit-reason", self.policy.reason().into());
        both(
            &mut h,
            "ratelimit",
            format!("\"{}\";r=0;t={secs}", self.policy.name()),
        );
        (
            StatusCode::TOO_MANY_REQUESTS,
            h,
            Json(json!({"errorMessages": ["Rate limit exceeded."], "errors": {}})),
        )
            .into_response()
    }
}

/// Points used this hour in `pool`, resetting it when the hour turned.
fn used_now(state: &SimState, pool: &str, now: Timestamp) -> u64 {
    let hour = hour_start(now);
    let mut world = state.world();
    let entry = world
        .stats
        .point_pools
        .entry(pool.to_string())
        .or_insert((hour, 0));
    if entry.0 != hour {
        *entry = (hour, 0);
    }
    entry.1
}

/// Refuse the request if its pool is spent.
pub fn check(
    state: &SimState,
    policy: Policy,
    client_id: &str,
    cloud_id: &str,
) -> Result<(), Exhausted> {
    let now = state.clock.now();
    if used_now(state, &policy.pool(client_id, cloud_id), now) >= policy.limit {
        return Err(Exhausted {
            policy,
            reset: hour_start(now) + Duration::hours(1),
            now,
        });
    }
    Ok(())
}

/// Add `points` to the pool; answers the headers describing what is left.
pub fn charge(
    state: &SimState,
    policy: Policy,
    client_id: &str,
    cloud_id: &str,
    points: u64,
) -> HeaderMap {
    let now = state.clock.now();
    let pool = policy.pool(client_id, cloud_id);
    let used = used_now(state, &pool, now) + points;
    {
        let mut world = state.world();
        world.stats.points_used += points;
        if let Some(entry) = world.stats.point_pools.get_mut(&pool) {
            entry.1 = used;
        }
    }
    headers(policy, used, now)
}

fn headers(policy: Policy, used: u64, now: Timestamp) -> HeaderMap {
    let mut h = HeaderMap::new();
    let remaining = policy.limit.saturating_sub(used);
    let reset_in = (hour_start(now) + Duration::hours(1) - now)
        .num_seconds()
        .max(1);
    let near = (remaining as f64) < policy.limit as f64 * 0.2;
    header(&mut h, "x-ratelimit-limit", policy.limit.to_string());
    header(&mut h, "x-ratelimit-remaining", remaining.to_string());
    if near {
        header(&mut h, "x-ratelimit-nearlimit", "true".into());
    }
    both(
        &mut h,
        "ratelimit-policy",
        format!("\"{}\";q={};w=3600", policy.name(), policy.limit),
    );
    let r = if near {
        format!(";r={remaining}")
    } else {
        String::new()
    };
    both(
        &mut h,
        "ratelimit",
        format!("\"{}\"{r};t={reset_in}", policy.name()),
    );
    h
}
