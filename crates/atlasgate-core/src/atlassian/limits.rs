//! What the client layer remembers about Atlassian's rate limits, per site.
//!
//! Atlassian has three independent limits (docs/atlassian-behaviour.md §4): an hourly
//! points quota per app (exhausted → *every* call is refused until the reset),
//! a burst token bucket per site, endpoint and method, and a per-issue write
//! limit. A 429 names which one in `RateLimit-Reason`; we remember the pause it
//! asks for at the matching granularity so that other callers wait instead of
//! spending requests on certain refusals. On top of that, [`Pacer`] keeps each
//! (site, method, endpoint template) below its published burst rate (the
//! templates come from Atlassian's specs, [`templates`]) so a 429 stays the
//! exception.
//!
//! This state lives in the process (docs/design.md §10 allows it): each
//! process paces at its share of every rate (1 / the live processes of the
//! heartbeat table, [`Pacer::set_share`]), and a burst 429 seen by one is
//! learnt by the others on their own first 429. A *quota* 429 is shared at
//! once through the database by the points budget ([`super::budget`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use http::{HeaderMap, Method};
use tokio::time::Instant;

use super::client::Product;
use super::templates::{self, Template};

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

/// What a request is paced and paused by: its endpoint template (`None` for
/// a path no spec documents) and the key its 429 pauses are remembered by.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub template: Option<&'static Template>,
    /// `GET /rest/api/3/issue/{issueIdOrKey}`; for a path without a template
    /// the [`endpoint_key`] fold, so a burst 429 there still pauses only
    /// that family of paths.
    pub key: String,
}

impl Endpoint {
    pub fn of(product: Product, method: &Method, path: &str) -> Endpoint {
        match templates::template_for(product, method, path) {
            Some(t) => Endpoint {
                template: Some(t),
                key: format!("{} {}", t.method, t.path),
            },
            None => Endpoint {
                template: None,
                key: endpoint_key(method, path),
            },
        }
    }
}

/// How the client paces its calls below Atlassian's burst limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pacing {
    /// The share of each template's published rate atlasgate uses
    /// (`ATLASGATE_PACING_FACTOR`): bulk work should meet the refill rate,
    /// not the wall.
    pub factor: f64,
    /// How many seconds' worth of the paced rate may go at once after a
    /// quiet spell, instead of queueing every request.
    pub burst: Duration,
}

pub const DEFAULT_PACING_FACTOR: f64 = 0.9;

impl Default for Pacing {
    /// 90% of the published rates (docs/atlassian-behaviour.md §4), half a
    /// second's worth at once: atlassim's bucket holds one second's worth,
    /// Atlassian publishes no capacity, so a burst of half of it leaves room
    /// for calls apps make with their own tokens.
    fn default() -> Self {
        Pacing {
            factor: DEFAULT_PACING_FACTOR,
            burst: Duration::from_millis(500),
        }
    }
}

/// At most this many buckets are kept; past it the least recently used go
/// (issue 9: one bucket per raw path grew without bound).
pub const MAX_BUCKETS: usize = 10_000;

/// How often buckets that have refilled completely are dropped.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// A bucket for every path no template covers, per (site, method).
const OTHER: u32 = u32::MAX;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct BucketKey {
    site: String,
    method: u8,
    template: u32,
}

/// A token bucket. `level` may go below zero: that is the queue of callers
/// already promised a later slot, each sleeping until its own.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    level: f64,
    at: Instant,
    rate: f64,
    cap: f64,
}

impl Bucket {
    fn level_at(&self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        (self.level + elapsed * self.rate).min(self.cap)
    }

    /// Full again: forgetting it changes nothing (a new bucket starts full).
    fn idle(&self, now: Instant) -> bool {
        self.level_at(now) >= self.cap
    }

    /// Take one token; how long the caller must wait for it.
    fn take(&mut self, now: Instant) -> Duration {
        self.level = self.level_at(now) - 1.0;
        self.at = now.max(self.at);
        if self.level >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.level / self.rate)
        }
    }
}

#[derive(Debug)]
struct Buckets {
    map: HashMap<BucketKey, Bucket>,
    swept: Instant,
}

/// Token buckets per (site, method, endpoint template), at each template's
/// published rate × [`Pacing::factor`], bounded by [`MAX_BUCKETS`], with
/// idle buckets dropped.
#[derive(Debug)]
pub struct Pacer {
    pacing: Pacing,
    max: usize,
    buckets: Mutex<Buckets>,
    /// This process's share of each rate (1 / live processes, from the
    /// heartbeat table), as `f64` bits.
    share: std::sync::atomic::AtomicU64,
}

fn method_class(method: &Method) -> u8 {
    match *method {
        Method::GET | Method::HEAD => 0,
        Method::POST => 1,
        Method::PUT => 2,
        Method::DELETE => 3,
        Method::PATCH => 4,
        _ => 5,
    }
}

impl Pacer {
    pub fn new(p: Pacing) -> Pacer {
        Pacer::with_max_buckets(p, MAX_BUCKETS)
    }

    pub fn with_max_buckets(p: Pacing, max: usize) -> Pacer {
        Pacer {
            pacing: p,
            max: max.max(1),
            buckets: Mutex::new(Buckets {
                map: HashMap::new(),
                swept: Instant::now(),
            }),
            share: std::sync::atomic::AtomicU64::new(1.0f64.to_bits()),
        }
    }

    /// Pace at `share` (0 < share ≤ 1) of every rate: each of N live
    /// processes takes 1/N, so together they stay below the published rate.
    pub fn set_share(&self, share: f64) {
        let share = if share.is_finite() {
            share.clamp(0.001, 1.0)
        } else {
            1.0
        };
        self.share
            .store(share.to_bits(), std::sync::atomic::Ordering::Relaxed);
    }

    pub fn share(&self) -> f64 {
        f64::from_bits(self.share.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Wait for this request's turn.
    pub async fn ready(&self, method: &Method, site: &str, endpoint: &Endpoint) {
        let wait = self.reserve(method, site, endpoint, Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Take a slot at `now`: how long to wait before sending.
    pub fn reserve(
        &self,
        method: &Method,
        site: &str,
        endpoint: &Endpoint,
        now: Instant,
    ) -> Duration {
        let rate = endpoint
            .template
            .map_or_else(|| templates::default_rate(method), |t| t.rate);
        let rate = (f64::from(rate) * self.pacing.factor * self.share()).max(0.01);
        let cap = (rate * self.pacing.burst.as_secs_f64()).max(1.0);
        let key = BucketKey {
            site: site.to_string(),
            method: method_class(method),
            template: endpoint.template.map_or(OTHER, |t| t.id),
        };
        let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if now.saturating_duration_since(b.swept) >= SWEEP_EVERY || b.map.len() >= self.max {
            self.sweep(&mut b, now);
        }
        let bucket = b.map.entry(key).or_insert(Bucket {
            level: cap,
            at: now,
            rate,
            cap,
        });
        if bucket.rate != rate {
            // The share changed (a process joined or left): refill at the new rate from now.
            bucket.level = bucket.level_at(now).min(cap);
            bucket.at = now.max(bucket.at);
            bucket.rate = rate;
            bucket.cap = cap;
        }
        bucket.take(now)
    }

    /// Drop the buckets that have refilled; if that is not enough, the
    /// least recently used down to 90% of the cap (they lose their queue,
    /// which only matters with more than [`MAX_BUCKETS`] busy endpoints).
    fn sweep(&self, b: &mut Buckets, now: Instant) {
        b.swept = now;
        b.map.retain(|_, bucket| !bucket.idle(now));
        if b.map.len() >= self.max {
            let keep = self.max * 9 / 10;
            if keep == 0 {
                b.map.clear();
                return;
            }
            let mut ats: Vec<Instant> = b.map.values().map(|x| x.at).collect();
            let cut = ats.len() - keep;
            ats.select_nth_unstable(cut);
            let oldest_kept = ats[cut];
            b.map.retain(|_, bucket| bucket.at >= oldest_kept);
            // Ties at the boundary may keep a few more than `keep`.
            while b.map.len() >= self.max {
                let Some(k) = b.map.keys().next().cloned() else {
                    break;
                };
                b.map.remove(&k);
            }
        }
    }

    /// Buckets held now.
    pub fn len(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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

    fn jira(method: Method, path: &str) -> Endpoint {
        Endpoint::of(Product::Jira, &method, path)
    }

    fn pacer() -> Pacer {
        Pacer::new(Pacing::default())
    }

    #[test]
    fn issues_of_one_template_share_a_bucket() {
        let p = pacer();
        let now = Instant::now();
        let (one, two) = (
            jira(Method::GET, "rest/api/3/issue/ABC-1"),
            jira(Method::GET, "rest/api/3/issue/ABC-2"),
        );
        assert_eq!(one.key, "GET /rest/api/3/issue/{issueIdOrKey}");
        assert_eq!(one.key, two.key);
        // GET issue is published at 150/s: ×0.9, half a second's worth = 67
        // go at once, the next waits; ABC-1 and ABC-2 draw on the same 67.
        for i in 0..67 {
            let e = if i % 2 == 0 { &one } else { &two };
            assert_eq!(p.reserve(&Method::GET, "site", e, now), Duration::ZERO);
        }
        let wait = p.reserve(&Method::GET, "site", &two, now);
        assert!(
            wait > Duration::ZERO && wait < Duration::from_millis(20),
            "{wait:?}"
        );
        assert_eq!(p.len(), 1);
        // Another method, template or site is another bucket, free to go.
        for (m, path, site) in [
            (Method::PUT, "rest/api/3/issue/ABC-1", "site"),
            (Method::GET, "rest/api/3/issue/ABC-1/comment", "site"),
            (Method::GET, "rest/api/3/issue/ABC-1", "other-site"),
        ] {
            assert_eq!(
                p.reserve(&m, site, &jira(m.clone(), path), now),
                Duration::ZERO
            );
        }
        assert_eq!(p.len(), 4);
    }

    #[test]
    fn a_burst_then_the_paced_rate() {
        // PUT issue: 50/s × 0.9 = 45/s; 22 at once, then one every 1/45 s.
        let p = pacer();
        let e = jira(Method::PUT, "rest/api/3/issue/ABC-1");
        let now = Instant::now();
        let waits: Vec<Duration> = (0..67)
            .map(|_| p.reserve(&Method::PUT, "s", &e, now))
            .collect();
        assert!(waits[..22].iter().all(|w| w.is_zero()));
        assert!(!waits[22].is_zero());
        // The 67th waits for the 44.5 tokens the bucket is short of.
        let last = waits[66].as_secs_f64();
        assert!((last - 44.5 / 45.0).abs() < 0.001, "{last}");
        // A second later 45 more tokens exist, all promised to the queue.
        let later = now + Duration::from_secs(1);
        assert!(p.reserve(&Method::PUT, "s", &e, later) > Duration::ZERO);
    }

    #[test]
    fn unknown_paths_share_one_bucket_per_site_and_method() {
        let p = pacer();
        let now = Instant::now();
        for i in 0..10_000 {
            let path = format!("rest/api/3/not-in-any-spec-{i}/x{i}");
            let e = jira(Method::GET, &path);
            assert!(e.template.is_none());
            p.reserve(&Method::GET, "site", &e, now);
            let issue = jira(Method::GET, &format!("rest/api/3/issue/P{i}-{i}"));
            p.reserve(&Method::GET, "site", &issue, now);
        }
        // 20,000 distinct paths, two buckets: "other" and the issue template.
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn buckets_stay_bounded_and_idle_ones_go() {
        let p = Pacer::with_max_buckets(Pacing::default(), 1_000);
        let e = jira(Method::GET, "rest/api/3/myself");
        let now = Instant::now();
        // 10,000 sites at once, none idle yet: never more than the cap.
        for i in 0..10_000 {
            p.reserve(&Method::GET, &format!("site-{i}"), &e, now);
            assert!(p.len() <= 1_000, "{} buckets", p.len());
        }
        assert!(p.len() >= 900);
        // Their buckets refill within half a second; the next sweep, one
        // second on, drops every one of them.
        let later = now + Duration::from_secs(2);
        p.reserve(&Method::GET, "site-new", &e, later);
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn an_idle_bucket_is_evicted_a_busy_one_kept() {
        let p = pacer();
        let now = Instant::now();
        let idle = jira(Method::GET, "rest/api/3/myself");
        let busy = jira(Method::POST, "rest/api/3/search/jql");
        p.reserve(&Method::GET, "s", &idle, now);
        // Enough queued that the bucket is still in debt two seconds on.
        for _ in 0..400 {
            p.reserve(&Method::POST, "s", &busy, now);
        }
        assert_eq!(p.len(), 2);
        p.reserve(&Method::POST, "s", &busy, now + Duration::from_secs(2));
        assert_eq!(p.len(), 1, "the refilled GET bucket is gone");
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
