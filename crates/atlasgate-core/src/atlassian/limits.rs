//! What the client layer remembers about Atlassian's rate limits, per site.
//!
//! Atlassian has three independent limits (docs/atlassian-behaviour.md §4): an hourly
//! points quota per app (exhausted → *every* call is refused until the reset),
//! a burst token bucket per site, endpoint and method, and a per-issue write
//! limit. A 429 names which one in `RateLimit-Reason`; we remember the pause it
//! asks for at the matching granularity so that other callers wait instead of
//! spending requests on certain refusals. On top of that, [`Pacer`] keeps each
//! (site, method, endpoint) below the published burst rates so a 429 stays the
//! exception.
//!
//! This state lives in the process (docs/design.md §10 allows it: several atlasgate
//! processes each pace themselves, and a 429 seen by one is learnt by the
//! others on their own first 429).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use http::{HeaderMap, Method};
use tokio::time::Instant;

/// Which of Atlassian's limits a 429 reports (`RateLimit-Reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// `jira-quota-global-based` / `jira-quota-tenant-based`: the whole site
    /// (the app's hourly pool) is closed until the reset.
    Quota,
    /// `jira-burst-based`: this endpoint and method on this site.
    Burst,
    /// `jira-per-issue-on-write`: writes to this one issue.
    PerIssue,
}

impl LimitKind {
    /// Unknown or missing reasons are treated as burst: the narrowest pause.
    pub fn from_headers(headers: &HeaderMap) -> LimitKind {
        let reason = headers
            .get("ratelimit-reason")
            .or_else(|| headers.get("beta-ratelimit-reason"))
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if reason.starts_with("jira-quota") {
            LimitKind::Quota
        } else if reason.contains("per-issue") {
            LimitKind::PerIssue
        } else {
            LimitKind::Burst
        }
    }
}

/// How long a 429 (or a 503 with `Retry-After`) asks us to wait:
/// `Retry-After` seconds when present, else the time until
/// `X-RateLimit-Reset` (ISO-8601), else `None`.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(v) = header("retry-after").or_else(|| header("beta-retry-after")) {
        if let Ok(secs) = v.parse::<f64>() {
            if secs.is_finite() && secs >= 0.0 {
                return Some(Duration::from_secs_f64(secs.min(24.0 * 3600.0)));
            }
        }
        if let Ok(at) = chrono::DateTime::parse_from_rfc2822(v) {
            let ms = (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_milliseconds();
            return Some(Duration::from_millis(ms.max(0) as u64));
        }
    }
    if let Some(v) = header("x-ratelimit-reset") {
        if let Ok(at) = chrono::DateTime::parse_from_rfc3339(v) {
            let ms = (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_milliseconds();
            return Some(Duration::from_millis(ms.clamp(0, 3600 * 1000) as u64));
        }
    }
    None
}

/// The rate-limit family of a request: method plus the path with every
/// segment holding a digit (ids, keys, versions) folded to `{}`, so that
/// `GET rest/api/3/issue/ACME-1` and `…/ACME-2` share one bucket, as they do
/// at Atlassian.
pub fn endpoint_key(method: &Method, path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 8);
    out.push_str(method.as_str());
    out.push(' ');
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if seg.bytes().any(|b| b.is_ascii_digit()) {
            out.push_str("{}");
        } else {
            out.push_str(seg);
        }
    }
    out
}

/// The issue a write goes to (`…/issue/{key}…` in the platform or agile API).
pub fn written_issue(method: &Method, path: &str) -> Option<String> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return None;
    }
    let mut segs = path.split('/');
    while let Some(s) = segs.next() {
        if s == "issue" {
            return segs
                .next()
                .filter(|k| !k.is_empty())
                .map(|k| k.to_ascii_uppercase());
        }
    }
    None
}

/// Pauses learnt from 429s, per site, per endpoint, per issue.
#[derive(Debug, Default)]
pub struct RateState {
    sites: Mutex<HashMap<String, Instant>>,
    endpoints: Mutex<HashMap<(String, String), Instant>>,
    issues: Mutex<HashMap<(String, String), Instant>>,
}

fn bump<K: std::hash::Hash + Eq>(map: &Mutex<HashMap<K, Instant>>, key: K, until: Instant) {
    let mut m = map.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    // Forget pauses that are over, so the maps stay small.
    if m.len() > 256 {
        m.retain(|_, t| *t > now);
    }
    let slot = m.entry(key).or_insert(until);
    if *slot < until {
        *slot = until;
    }
}

fn get<K: std::hash::Hash + Eq>(map: &Mutex<HashMap<K, Instant>>, key: &K) -> Option<Instant> {
    let m = map.lock().unwrap_or_else(|e| e.into_inner());
    m.get(key).copied().filter(|t| *t > Instant::now())
}

impl RateState {
    /// The instant before which this request must not be sent, if any.
    pub fn blocked_until(
        &self,
        site: &str,
        endpoint: &str,
        issue: Option<&str>,
    ) -> Option<Instant> {
        let mut until = get(&self.sites, &site.to_string());
        let mut later = |t: Option<Instant>| {
            if let Some(t) = t {
                until = Some(until.map_or(t, |u| u.max(t)));
            }
        };
        later(get(
            &self.endpoints,
            &(site.to_string(), endpoint.to_string()),
        ));
        if let Some(issue) = issue {
            later(get(&self.issues, &(site.to_string(), issue.to_string())));
        }
        until
    }

    /// Remember a 429: pause the site, the endpoint or the issue.
    pub fn record(
        &self,
        kind: LimitKind,
        site: &str,
        endpoint: &str,
        issue: Option<&str>,
        wait: Duration,
    ) {
        let until = Instant::now() + wait;
        match (kind, issue) {
            (LimitKind::Quota, _) => bump(&self.sites, site.to_string(), until),
            (LimitKind::PerIssue, Some(issue)) => {
                bump(&self.issues, (site.to_string(), issue.to_string()), until)
            }
            _ => bump(
                &self.endpoints,
                (site.to_string(), endpoint.to_string()),
                until,
            ),
        }
    }
}

/// Steady rates per (site, endpoint), requests per second, by method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    pub get: u32,
    pub post: u32,
    pub put: u32,
    pub delete: u32,
}

impl Default for Pacing {
    /// 90% of Atlassian's published burst defaults (GET/POST 100 rps,
    /// PUT/DELETE 50 rps; docs/atlassian-behaviour.md §4): bulk work should meet the refill rate,
    /// not the wall.
    fn default() -> Self {
        Pacing {
            get: 90,
            post: 90,
            put: 45,
            delete: 45,
        }
    }
}

type Limiter = DefaultKeyedRateLimiter<(String, String)>;

/// Token buckets per (site, endpoint), one family per method class.
pub struct Pacer {
    get: Limiter,
    post: Limiter,
    put: Limiter,
    delete: Limiter,
}

impl std::fmt::Debug for Pacer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pacer").finish_non_exhaustive()
    }
}

fn limiter(rps: u32) -> Limiter {
    let rate = NonZeroU32::new(rps.max(1)).unwrap_or(NonZeroU32::MIN);
    // A tenth of a second's worth may go at once; the rest is spread out.
    let burst = NonZeroU32::new((rps / 10).max(1)).unwrap_or(NonZeroU32::MIN);
    RateLimiter::dashmap(Quota::per_second(rate).allow_burst(burst))
}

impl Pacer {
    pub fn new(p: Pacing) -> Pacer {
        Pacer {
            get: limiter(p.get),
            post: limiter(p.post),
            put: limiter(p.put),
            delete: limiter(p.delete),
        }
    }

    /// Wait for this request's turn.
    pub async fn ready(&self, method: &Method, site: &str, endpoint: &str) {
        let l = match *method {
            Method::POST | Method::PATCH => &self.post,
            Method::PUT => &self.put,
            Method::DELETE => &self.delete,
            _ => &self.get,
        };
        l.until_key_ready(&(site.to_string(), endpoint.to_string()))
            .await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_keys_fold_ids() {
        assert_eq!(
            endpoint_key(&Method::GET, "rest/api/3/issue/ACME-12"),
            "GET rest/api/{}/issue/{}"
        );
        assert_eq!(
            endpoint_key(&Method::GET, "rest/api/3/myself"),
            "GET rest/api/{}/myself"
        );
    }

    #[test]
    fn written_issue_is_found_for_writes_only() {
        assert_eq!(
            written_issue(&Method::PUT, "rest/api/3/issue/acme-1"),
            Some("ACME-1".into())
        );
        assert_eq!(
            written_issue(&Method::POST, "rest/api/3/issue/ACME-1/comment"),
            Some("ACME-1".into())
        );
        assert_eq!(written_issue(&Method::GET, "rest/api/3/issue/ACME-1"), None);
    }

    #[test]
    fn retry_after_prefers_the_header_then_the_reset() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        let mut h = HeaderMap::new();
        let at = chrono::Utc::now() + chrono::Duration::seconds(10);
        h.insert(
            "x-ratelimit-reset",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                .parse()
                .unwrap(),
        );
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(8) && d <= Duration::from_secs(10),
            "{d:?}"
        );
    }

    #[test]
    fn reasons_pick_the_granularity() {
        let mut h = HeaderMap::new();
        h.insert(
            "ratelimit-reason",
            "jira-quota-global-based".parse().unwrap(),
        );
        assert_eq!(LimitKind::from_headers(&h), LimitKind::Quota);
        h.insert(
            "ratelimit-reason",
            "jira-per-issue-on-write".parse().unwrap(),
        );
        assert_eq!(LimitKind::from_headers(&h), LimitKind::PerIssue);
        h.insert("ratelimit-reason", "jira-burst-based".parse().unwrap());
        assert_eq!(LimitKind::from_headers(&h), LimitKind::Burst);
    }

    #[tokio::test]
    async fn a_quota_pause_covers_every_endpoint_of_the_site_only() {
        let s = RateState::default();
        s.record(
            LimitKind::Quota,
            "site-a",
            "GET x",
            None,
            Duration::from_secs(5),
        );
        assert!(s.blocked_until("site-a", "GET y", None).is_some());
        assert!(s.blocked_until("site-b", "GET x", None).is_none());
        s.record(
            LimitKind::Burst,
            "site-b",
            "GET x",
            None,
            Duration::from_secs(5),
        );
        assert!(s.blocked_until("site-b", "GET x", None).is_some());
        assert!(s.blocked_until("site-b", "GET y", None).is_none());
    }
}
