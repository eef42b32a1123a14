//! Per-client-IP rate limits on unauthenticated routes: the connect pages and
//! the callback (each callback costs calls to Atlassian) and the admin login
//! form (the admin token must not be guessable by trying).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// A person needs a handful of requests per connect; this leaves ample room
/// for retries and several people behind one NAT, and stops a flood.
const CONNECT_PER_MINUTE: u32 = 120;
const CONNECT_BURST: u32 = 40;
/// An administrator logs in rarely; a guesser tries often.
const LOGIN_PER_MINUTE: u32 = 10;
const LOGIN_BURST: u32 = 5;

#[derive(Clone)]
pub struct IpRateLimit {
    limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

impl IpRateLimit {
    /// For the connect pages and the OAuth callback.
    pub fn connect() -> Self {
        Self::with_quota(CONNECT_PER_MINUTE, CONNECT_BURST)
    }

    /// For the admin login form.
    pub fn login() -> Self {
        Self::with_quota(LOGIN_PER_MINUTE, LOGIN_BURST)
    }

    pub fn with_quota(per_minute: u32, burst: u32) -> Self {
        let quota = Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
        IpRateLimit {
            limiter: Arc::new(RateLimiter::keyed(quota)),
        }
    }

    /// `Some(seconds to wait)` when `ip` is over its quota.
    fn check(&self, ip: IpAddr) -> Option<u64> {
        if self.limiter.len() > 100_000 {
            self.limiter.retain_recent();
        }
        match self.limiter.check_key(&ip) {
            Ok(()) => None,
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Some(wait.as_secs().max(1))
            }
        }
    }
}

/// Middleware (`from_fn_with_state(limiter, limit)`), keyed by the TCP peer
/// address (a reverse proxy in front should rate limit on its own; forwarded
/// headers are not trusted).
pub async fn limit(State(limiter): State<IpRateLimit>, req: Request, next: Next) -> Response {
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ci| ci.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    if let Some(wait) = limiter.check(ip) {
        let page = crate::pages::error_page(
            "Too many requests",
            "Too many attempts from your network in a short time. Wait a minute and try again.",
        );
        let mut resp = (StatusCode::TOO_MANY_REQUESTS, Html(page)).into_response();
        if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return resp;
    }
    next.run(req).await
}
