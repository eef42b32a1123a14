//! How a simulator is set up: the `atlassim serve` flags and `Sim::start`'s argument.

use std::net::SocketAddr;

use crate::model::OAuthClient;

/// Every default matches `DESIGN.md` §9 and Atlassian's published numbers.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub listen: SocketAddr,
    pub seed: u64,
    pub sites: usize,
    pub projects: usize,
    /// Issues per project.
    pub issues: usize,
    pub clients: Vec<OAuthClient>,
    /// Consent is granted without a person (first user, every site).
    pub auto_consent: bool,
    pub rate_limits: bool,
    pub access_token_ttl_secs: i64,
    pub reuse_window_secs: i64,
    pub refresh_inactivity_secs: i64,
    pub refresh_absolute_secs: Option<i64>,
    /// Added to every gateway request (realistic benchmarks).
    pub latency_ms: u64,
    /// Seeded dates lie before this instant; `None` = the start of today (UTC).
    pub epoch: Option<chrono::DateTime<chrono::Utc>>,
    /// Capacities of the rate limits (used when `rate_limits` is on).
    pub rate_limit: crate::ratelimit::RateLimitSettings,
    /// First webhook retry delay; each further retry doubles it. Atlassian
    /// retries minutes apart; the default keeps tests and demos quick.
    pub webhook_retry_base_ms: u64,
    // simconf
    /// The hourly points quota (`--points-per-hour`); `None` = off unless
    /// `rate_limits` is on (then `rate_limit.hourly_points`).
    pub points_per_hour: Option<u64>,
    /// One pool per (app, site) instead of one per app (`--points-per-tenant`).
    pub points_per_tenant: bool,
}

pub const DEFAULT_CLIENT_ID: &str = "atlasgate-dev";
pub const DEFAULT_CLIENT_SECRET: &str = "atlasgate-dev-secret";

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9000)),
            seed: 1,
            sites: 2,
            projects: 3,
            issues: 60,
            clients: vec![OAuthClient {
                client_id: DEFAULT_CLIENT_ID.into(),
                client_secret: DEFAULT_CLIENT_SECRET.into(),
                redirect_uris: vec![
                    "http://127.0.0.1:8080/oauth/callback".into(),
                    "http://localhost:8080/oauth/callback".into(),
                ],
                scopes: crate::scopes::registered_scopes(),
            }],
            auto_consent: false,
            rate_limits: false,
            access_token_ttl_secs: 3600,
            reuse_window_secs: 600,
            refresh_inactivity_secs: 90 * 24 * 3600,
            refresh_absolute_secs: None,
            latency_ms: 0,
            epoch: None,
            rate_limit: crate::ratelimit::RateLimitSettings::default(),
            webhook_retry_base_ms: 1000,
            points_per_hour: None,
            points_per_tenant: false,
        }
    }
}
