//! Per-client-address rate limits (docs/design.md §12): the connect pages and
//! the callback (each callback costs calls to Atlassian), the admin bearer API
//! (`/admin/api/*`), and failed admin authentications (the login form and a
//! wrong bearer token share one budget, so the admin token cannot be guessed
//! by trying).
//!
//! The address is the [`ClientAddr`] of the request (the TCP peer, or the
//! client behind a trusted proxy). IPv6 clients are counted by their /64: one
//! subscriber usually holds a whole /64, and counting single addresses would
//! hand each of them 2^64 budgets. Each limiter tracks at most a fixed number
//! of addresses ([`MAX_TRACKED`]) however many send requests.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

use crate::client_addr::ClientAddr;
use crate::config::mask_ip;
use crate::error::{problem_response, ApiError};

/// A person needs a handful of requests per connect; this leaves ample room
/// for retries and several people behind one NAT, and stops a flood.
const CONNECT_PER_MINUTE: u32 = 120;
const CONNECT_BURST: u32 = 40;
/// An administrator mistypes the token rarely; a guesser tries often.
const AUTH_FAILURES_PER_MINUTE: u32 = 10;
const AUTH_FAILURES_BURST: u32 = 5;
/// Scripts drive the admin API; this is far above what provisioning needs
/// and still bounds what one address can make atlasgate do.
const ADMIN_API_PER_MINUTE: u32 = 600;
const ADMIN_API_BURST: u32 = 120;
/// Addresses tracked per limiter. An entry is an address and an instant
/// (~50 bytes with the map's overhead), so a full limiter stays near 5 MB.
pub const MAX_TRACKED: usize = 100_000;

/// The key an address is counted under: an IPv4 address as is, an IPv6
/// address by its /64 (an IPv4-mapped IPv6 address is the IPv4 address).
pub fn rate_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        v4 @ IpAddr::V4(_) => v4,
        v6 @ IpAddr::V6(_) => mask_ip(v6, 64),
    }
}

/// A keyed GCRA limiter (the algorithm of `governor`, written out here so the
/// map can have a hard size cap). Per key it stores the "theoretical arrival
/// time": the instant at which the key's budget is full again.
#[derive(Clone)]
pub struct IpRateLimit {
    tats: Arc<Mutex<HashMap<IpAddr, Instant>>>,
    /// Time to earn one request back.
    interval: Duration,
    /// `interval * burst`: how far ahead of now a key may run.
    tolerance: Duration,
    cap: usize,
}

impl IpRateLimit {
    /// For the connect pages and the OAuth callback.
    pub fn connect() -> Self {
        Self::with_quota(CONNECT_PER_MINUTE, CONNECT_BURST)
    }

    /// For failed admin authentications (login form and bearer API).
    pub fn auth_failures() -> Self {
        Self::with_quota(AUTH_FAILURES_PER_MINUTE, AUTH_FAILURES_BURST)
    }

    /// For every request to the admin bearer API.
    pub fn admin_api() -> Self {
        Self::with_quota(ADMIN_API_PER_MINUTE, ADMIN_API_BURST)
    }

    pub fn with_quota(per_minute: u32, burst: u32) -> Self {
        Self::with_limits(per_minute, burst, MAX_TRACKED)
    }

    /// `per_minute` requests per minute sustained, `burst` at once, at most
    /// `cap` addresses tracked.
    pub fn with_limits(per_minute: u32, burst: u32, cap: usize) -> Self {
        let interval = Duration::from_secs(60) / per_minute.max(1);
        IpRateLimit {
            tats: Arc::new(Mutex::new(HashMap::new())),
            interval,
            tolerance: interval * burst.max(1),
            cap: cap.max(1),
        }
    }

    /// How many addresses are tracked now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Instant>> {
        // The map holds no invariant a panicking holder could break.
        self.tats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Count one request; `Some(seconds to wait)` (and nothing counted) when
    /// `ip` is over its quota.
    pub fn check(&self, ip: IpAddr) -> Option<u64> {
        self.decide(rate_key(ip), Instant::now(), Mode::Check)
    }

    /// `Some(seconds to wait)` when one more request from `ip` would be over
    /// the quota; counts nothing.
    pub fn blocked(&self, ip: IpAddr) -> Option<u64> {
        self.decide(rate_key(ip), Instant::now(), Mode::Peek)
    }

    /// Count one request whatever the budget says (a failure that already
    /// happened).
    pub fn charge(&self, ip: IpAddr) {
        self.decide(rate_key(ip), Instant::now(), Mode::Charge);
    }

    fn decide(&self, key: IpAddr, now: Instant, mode: Mode) -> Option<u64> {
        let mut tats = self.lock();
        let tat = tats.get(&key).copied().unwrap_or(now).max(now);
        let next = tat + self.interval;
        let ahead = next - now;
        let over = ahead > self.tolerance;
        let store = match mode {
            Mode::Peek => None,
            Mode::Check if over => None,
            Mode::Check => Some(next),
            // Never further ahead than an empty budget: a burst of failures
            // that raced past the check must not lock an address out for hours.
            Mode::Charge => Some(next.min(now + self.tolerance)),
        };
        if let Some(t) = store {
            if !tats.contains_key(&key) && tats.len() >= self.cap {
                self.evict(&mut tats, now);
            }
            tats.insert(key, t);
        }
        (over && mode != Mode::Charge).then(|| {
            let wait = ahead - self.tolerance;
            // Whole seconds for `Retry-After`, rounded up.
            (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
        })
    }

    /// Make room for new addresses. A key whose budget is full again is the
    /// same as an absent one, so those go first. If that is not enough, the
    /// fullest budgets go (the least limited addresses lose the least), down
    /// to nine tenths of the cap so that this scan is rare.
    fn evict(&self, tats: &mut HashMap<IpAddr, Instant>, now: Instant) {
        tats.retain(|_, t| *t > now);
        if tats.len() < self.cap {
            return;
        }
        let keep = (self.cap - self.cap / 10).min(self.cap - 1);
        let mut all: Vec<Instant> = tats.values().copied().collect();
        let drop = all.len() - keep;
        if drop == 0 {
            return;
        }
        let (_, threshold, _) = all.select_nth_unstable(drop - 1);
        let threshold = *threshold;
        tats.retain(|_, t| *t > threshold);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Check,
    Peek,
    Charge,
}

fn retry_after(resp: &mut Response, wait: u64) {
    if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
}

/// A 429 page for a person in a browser.
fn too_many_page(wait: u64) -> Response {
    let page = crate::pages::error_page(
        "Too many requests",
        "Too many attempts from your network in a short time. Wait a minute and try again.",
    );
    let mut resp = (StatusCode::TOO_MANY_REQUESTS, Html(page)).into_response();
    retry_after(&mut resp, wait);
    resp
}

/// A 429 problem for an API client.
fn too_many_problem(wait: u64) -> Response {
    let mut problem = ApiError::RateLimited {
        retry_after_secs: wait,
    }
    .to_problem();
    problem.detail = Some(format!(
        "too many requests from your address; retry after {wait} s"
    ));
    let mut resp = problem_response(StatusCode::TOO_MANY_REQUESTS, &problem);
    retry_after(&mut resp, wait);
    resp
}

/// Middleware (`from_fn_with_state(limiter, limit)`) for browser pages,
/// keyed by the client address.
pub async fn limit(State(limiter): State<IpRateLimit>, req: Request, next: Next) -> Response {
    if let Some(wait) = limiter.check(ClientAddr::of(req.extensions()).0) {
        return too_many_page(wait);
    }
    next.run(req).await
}

/// The limits of the admin surface: every `/admin/api/*` request, and failed
/// admin authentications wherever they happen.
#[derive(Clone)]
pub struct AdminLimits {
    pub api: IpRateLimit,
    pub auth_failures: IpRateLimit,
}

impl Default for AdminLimits {
    fn default() -> Self {
        AdminLimits {
            api: IpRateLimit::admin_api(),
            auth_failures: IpRateLimit::auth_failures(),
        }
    }
}

/// Middleware over the whole router (so admin routes added anywhere are
/// covered): an address with too many failed admin authentications gets 429
/// on the login form and the admin API until its budget refills; the admin
/// API also has an overall per-address budget. A 401 from either counts as a
/// failure; a successful login counts nothing.
pub async fn admin(State(limits): State<AdminLimits>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let api = path == "/admin/api" || path.starts_with("/admin/api/");
    let login = path == "/admin/login" && req.method() == Method::POST;
    if !api && !login {
        return next.run(req).await;
    }
    let ip = ClientAddr::of(req.extensions()).0;
    let refuse = |wait| {
        if api {
            too_many_problem(wait)
        } else {
            too_many_page(wait)
        }
    };
    if let Some(wait) = limits.auth_failures.blocked(ip) {
        return refuse(wait);
    }
    if api {
        if let Some(wait) = limits.api.check(ip) {
            return refuse(wait);
        }
    }
    let resp = next.run(req).await;
    if resp.status() == StatusCode::UNAUTHORIZED {
        limits.auth_failures.charge(ip);
    }
    resp
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let l = IpRateLimit::with_limits(60, 3, 100);
        let k = ip("192.0.2.1");
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.decide(k, t0, Mode::Check), None);
        }
        assert_eq!(l.decide(k, t0, Mode::Check), Some(1));
        // One request per second comes back.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(l.decide(k, t1, Mode::Check), None);
        assert_eq!(l.decide(k, t1, Mode::Check), Some(1));
        // Another address has its own budget.
        assert_eq!(l.decide(ip("192.0.2.2"), t1, Mode::Check), None);
    }

    #[test]
    fn peeking_counts_nothing_and_charges_are_capped() {
        let l = IpRateLimit::with_limits(60, 2, 100);
        let k = ip("192.0.2.1");
        let t0 = Instant::now();
        for _ in 0..10 {
            assert_eq!(l.decide(k, t0, Mode::Peek), None);
        }
        for _ in 0..50 {
            l.decide(k, t0, Mode::Charge);
        }
        assert_eq!(l.decide(k, t0, Mode::Peek), Some(1));
        // Fifty failures cost no more than an empty budget: two seconds later
        // the address may try again.
        let t2 = t0 + Duration::from_secs(2);
        assert_eq!(l.decide(k, t2, Mode::Peek), None);
    }

    #[test]
    fn ipv6_is_counted_by_its_64() {
        assert_eq!(rate_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(rate_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(rate_key(ip("192.0.2.7")), ip("192.0.2.7"));
        let l = IpRateLimit::with_limits(60, 2, 100);
        assert_eq!(l.check(ip("2001:db8:1:2::1")), None);
        assert_eq!(l.check(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")), None);
        assert!(
            l.check(ip("2001:db8:1:2:1234::9")).is_some(),
            "the third address of the same /64 shares its budget"
        );
        assert_eq!(
            l.check(ip("2001:db8:1:3::1")),
            None,
            "the next /64 does not"
        );
        assert_eq!(l.len(), 2);
    }

    #[test]
    fn the_map_never_holds_more_than_its_cap() {
        let cap = 1000;
        let l = IpRateLimit::with_limits(1, 5, cap);
        let victim = ip("198.51.100.7");
        let t0 = Instant::now();
        // The victim (say, a guesser) has used up its budget...
        for _ in 0..5 {
            l.decide(victim, t0, Mode::Check);
        }
        assert!(l.decide(victim, t0, Mode::Check).is_some());
        // ...and then 20 000 other addresses arrive, one request each.
        for i in 0..20_000u32 {
            let a = IpAddr::V4((0x0a00_0000 + i).into());
            let t = t0 + Duration::from_millis(u64::from(i));
            l.decide(a, t, Mode::Check);
            assert!(l.len() <= cap, "{} entries after {i}", l.len());
        }
        // The drained address is the last to be forgotten: flooding the map
        // does not buy it a fresh budget.
        let t = t0 + Duration::from_millis(20_000);
        assert!(l.decide(victim, t, Mode::Peek).is_some());
    }
}
