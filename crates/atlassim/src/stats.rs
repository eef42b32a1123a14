//! Request counting and the `GET /__sim/stats` answer.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use crate::model::{AppState, Stats};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenStats {
    pub codes_issued: u64,
    pub code_exchanges: u64,
    pub refreshes: u64,
    pub reuse_in_window: u64,
    pub family_revocations: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestStat {
    pub method: String,
    /// The matched route template (e.g. `/ex/jira/{cloud_id}/rest/api/3/issue/{key}`),
    /// or `<unmatched>` when no route matched.
    pub route: String,
    pub status: u16,
    pub count: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookStats {
    pub registered: u64,
    pub deliveries: u64,
    pub failures: u64,
}

/// The JSON of `GET /__sim/stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimStats {
    pub tokens: TokenStats,
    pub requests: Vec<RequestStat>,
    pub webhooks: WebhookStats,
    /// `/search/jql` page cache: pages served from a query's kept ids
    /// (`hits`) and queries evaluated afresh (`misses`).
    #[serde(default)]
    pub search_cache: SearchCacheStats,
    /// Quota points charged (added by simconf; absent in older answers).
    #[serde(default)]
    pub points: PointStats,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchCacheStats {
    pub hits: u64,
    pub misses: u64,
}

/// `points` of `GET /__sim/stats`: the hourly quota's pools.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointStats {
    /// Points charged since start, over all pools and hours.
    pub used: u64,
    /// Each pool (client id, or `client/cloud` per tenant) in its current hour.
    pub pools: Vec<PoolStat>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolStat {
    pub pool: String,
    /// Start of the UTC hour these points belong to (RFC 3339).
    pub hour: String,
    pub used: u64,
}

impl SimStats {
    pub fn from_stats(stats: &Stats) -> SimStats {
        SimStats {
            tokens: TokenStats {
                codes_issued: stats.codes_issued,
                code_exchanges: stats.code_exchanges,
                refreshes: stats.refreshes,
                reuse_in_window: stats.reuse_in_window,
                family_revocations: stats.family_revocations,
            },
            requests: stats
                .requests
                .iter()
                .map(|((method, route, status), count)| RequestStat {
                    method: method.clone(),
                    route: route.clone(),
                    status: *status,
                    count: *count,
                })
                .collect(),
            webhooks: WebhookStats {
                registered: stats.webhooks_registered,
                deliveries: stats.webhook_deliveries,
                failures: stats.webhook_failures,
            },
            search_cache: SearchCacheStats {
                hits: stats.search_cache_hits,
                misses: stats.search_cache_misses,
            },
            points: PointStats {
                used: stats.points_used,
                pools: stats
                    .point_pools
                    .iter()
                    .map(|(pool, (hour, used))| PoolStat {
                        pool: pool.clone(),
                        hour: hour.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        used: *used,
                    })
                    .collect(),
            },
        }
    }

    /// How many requests matched `method` and `route`, any status.
    pub fn count(&self, method: &str, route: &str) -> u64 {
        self.requests
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method) && r.route == route)
            .map(|r| r.count)
            .sum()
    }
}

pub const UNMATCHED_ROUTE: &str = "<unmatched>";

/// Count every request by (method, matched route template, status).
pub async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| UNMATCHED_ROUTE.to_string());
    let response = next.run(req).await;
    let status = response.status().as_u16();
    *state
        .world()
        .stats
        .requests
        .entry((method, route, status))
        .or_insert(0) += 1;
    response
}
