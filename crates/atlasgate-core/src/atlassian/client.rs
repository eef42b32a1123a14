//! The one HTTP client layer for Atlassian's REST APIs (docs/design.md §5), used by
//! the proxy, the typed Jira/Confluence operations and sync.
//!
//! For every request it: waits out any pause learnt from a 429 (site quota,
//! endpoint burst, issue writes — see [`limits`](super::limits)) and the
//! pacing per (site, method, endpoint template); takes a fresh access token from the refresh
//! engine; sends to `{ATLASSIAN_API_URL}/ex/{product}/{cloud_id}/{path}`; and
//! then decides:
//!
//! - **401** → one forced refresh and one retry (the token may have died
//!   before its stated expiry: revoked, rotated elsewhere, clock skew).
//! - **429** → remember the pause, wait `Retry-After` (when that is short
//!   enough to wait inline) and retry — for every method, because a refused
//!   request was not executed.
//! - **5xx / connection errors** → retry idempotent methods (GET, HEAD,
//!   OPTIONS, PUT, DELETE) with jittered exponential backoff. A POST is
//!   retried only when it provably never left (connect error); a POST whose
//!   outcome is unknown is never repeated blindly.
//!
//! A request whose body is a stream cannot be replayed, so it is sent once.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde::Serialize;
use url::Url;

use super::budget::{self, Budget, CallClass, Charge};
use super::limits::{self, LimitKind, Pacer, Pacing, RateState};
use super::priority::Priority;
use crate::ids::{CloudId, ConnectionId};
use crate::store::connections::ConnectionRow;
use crate::vault::refresh::{FreshToken, RefreshError, Refresher};

/// Which gateway a request goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    Jira,
    Confluence,
}

impl Product {
    pub fn as_str(self) -> &'static str {
        match self {
            Product::Jira => "jira",
            Product::Confluence => "confluence",
        }
    }
}

/// A request body: replayable bytes, or a stream sent at most once.
pub enum RequestBody {
    Empty,
    Bytes(Bytes),
    Stream(reqwest::Body),
}

impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestBody::Empty => f.write_str("Empty"),
            RequestBody::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            RequestBody::Stream(_) => f.write_str("Stream"),
        }
    }
}

/// One call to a site's API.
#[derive(Debug)]
pub struct ApiRequest {
    pub product: Product,
    pub method: Method,
    /// Below the site base, no leading slash: `rest/api/3/myself`. Must be
    /// safe already (the proxy checks app-supplied paths; typed operations
    /// build theirs from validated parts).
    pub path: String,
    /// Raw, already encoded query string without `?`.
    pub query: Option<String>,
    /// Extra headers (never `Authorization`: the client sets it).
    pub headers: HeaderMap,
    pub body: RequestBody,
    /// Wait for the response headers at most this long; `None` = the policy's.
    pub timeout: Option<Duration>,
}

impl ApiRequest {
    pub fn new(product: Product, method: Method, path: impl Into<String>) -> ApiRequest {
        ApiRequest {
            product,
            method,
            path: path.into(),
            query: None,
            headers: HeaderMap::new(),
            body: RequestBody::Empty,
            timeout: None,
        }
    }

    pub fn get(product: Product, path: impl Into<String>) -> ApiRequest {
        ApiRequest::new(product, Method::GET, path)
    }

    pub fn jira(method: Method, path: impl Into<String>) -> ApiRequest {
        ApiRequest::new(Product::Jira, method, path)
    }

    /// Append query parameters (encoded here).
    pub fn query<K: AsRef<str>, V: AsRef<str>>(mut self, pairs: &[(K, V)]) -> ApiRequest {
        let mut ser = url::form_urlencoded::Serializer::new(self.query.take().unwrap_or_default());
        for (k, v) in pairs {
            ser.append_pair(k.as_ref(), v.as_ref());
        }
        let q = ser.finish();
        self.query = (!q.is_empty()).then_some(q);
        self
    }

    /// A JSON body (replayable).
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> ApiRequest {
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        self.headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        self.body = RequestBody::Bytes(Bytes::from(bytes));
        self
    }
}

/// Atlassian's answer (any status), with the connection it was made for.
#[derive(Debug)]
pub struct ApiResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub response: reqwest::Response,
    /// The connection row as read when the token was taken (site, account).
    pub connection: Arc<ConnectionRow>,
    /// The points reservation of a successful read, for the reader of the
    /// body to settle ([`Charge::settle_body`], or an [`ObjectCounter`](budget::ObjectCounter)
    /// over a stream); dropped unsettled it costs its estimate.
    pub charge: Option<Charge>,
}

#[derive(Debug, thiserror::Error)]
pub enum AtlassianError {
    /// No usable token (needs re-consent, disconnected, refresh failing).
    #[error(transparent)]
    Refresh(#[from] RefreshError),
    /// The connection belongs to another app.
    #[error("connection not found")]
    NotFound,
    #[error("the connection has no selected site")]
    NoSite,
    /// Nothing (or no complete answer) came back, after any retries allowed.
    #[error("Atlassian could not be reached: {0}")]
    Unreachable(String),
    /// A non-idempotent request was sent and its answer was lost: it may or
    /// may not have been applied, so it is not repeated.
    #[error("the answer from Atlassian was lost; the request may or may not have been applied")]
    OutcomeUnknown,
    #[error("Atlassian did not answer in time")]
    Timeout,
    /// Rate limited beyond what we wait inline.
    #[error("Atlassian rate limit: retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// A non-success answer to a typed call (body cut to 2 KiB).
    #[error("Atlassian answered {status}")]
    Status { status: StatusCode, body: String },
    /// A success answer that did not have the expected shape.
    #[error("unexpected answer from Atlassian: {0}")]
    Decode(String),
}

impl AtlassianError {
    /// Jira's `ErrorCollection` messages of a [`Status`](Self::Status) error, joined.
    pub fn jira_messages(&self) -> Option<String> {
        let AtlassianError::Status { body, .. } = self else {
            return None;
        };
        let v: serde_json::Value = serde_json::from_str(body).ok()?;
        let mut msgs: Vec<String> = v["errorMessages"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|m| m.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(o) = v["errors"].as_object() {
            for (k, m) in o {
                msgs.push(format!("{k}: {}", m.as_str().unwrap_or_default()));
            }
        }
        if let Some(m) = v["message"].as_str() {
            msgs.push(m.to_string());
        }
        (!msgs.is_empty()).then(|| msgs.join("; "))
    }
}

/// Retries, timeouts, pacing. Tests shorten the delays.
#[derive(Debug, Clone)]
pub struct ClientPolicy {
    /// First backoff delay; doubles per retry (×0.7–1.3 jitter).
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// Retries after the first attempt (5xx, connection errors, 429).
    pub max_retries: u32,
    /// A 429 asking for a longer wait is handed back to the caller instead.
    pub max_inline_wait: Duration,
    /// Time allowed until the response headers arrive.
    pub response_timeout: Duration,
    /// Time allowed for a whole buffered (typed) call, body included.
    pub request_timeout: Duration,
    /// `None` turns pacing off.
    pub pacing: Option<Pacing>,
}

impl Default for ClientPolicy {
    /// Atlassian's recommended backoff (docs/atlassian-behaviour.md §4): 2 s doubling up to ~30 s,
    /// at most 4 retries; we start at 1 s since most 5xx are momentary.
    fn default() -> Self {
        ClientPolicy {
            retry_base: Duration::from_secs(1),
            retry_cap: Duration::from_secs(30),
            max_retries: 4,
            max_inline_wait: Duration::from_secs(30),
            response_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(60),
            pacing: Some(Pacing::default()),
        }
    }
}

struct Policy {
    policy: ClientPolicy,
    pacer: Option<Arc<Pacer>>,
}

/// See the module docs. Cheap to share (`Arc` in `Core`).
pub struct AtlassianClient {
    http: reqwest::Client,
    api_base: String,
    /// `ATLASSIAN_API_URL` parsed once: a request's URL is this with its
    /// path and query set (parsing the whole URL, host included, per
    /// request was a tenth of a proxied call's instructions).
    api_url: Url,
    refresher: Arc<Refresher>,
    limits: RateState,
    policy: RwLock<Policy>,
    /// The hourly points budget, shared through the database.
    budget: Arc<Budget>,
    /// Per-site facts the typed operations look up (fields, project keys).
    pub cache: SiteCache,
    /// When each connection was last force-refreshed after a 401. A 401 can
    /// also mean "scope does not match", which no refresh cures; refreshing
    /// on every such call would rotate the token at Atlassian each time.
    forced: std::sync::Mutex<std::collections::HashMap<ConnectionId, tokio::time::Instant>>,
    /// App calls in flight, which background page cycles yield to.
    priority: Priority,
}

/// At most one 401-triggered refresh per connection this often.
const FORCED_REFRESH_EVERY: Duration = Duration::from_secs(30);

impl std::fmt::Debug for AtlassianClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtlassianClient")
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

fn is_idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE
    )
}

fn backoff(policy: &ClientPolicy, retry: u32) -> Duration {
    let exp = policy
        .retry_base
        .saturating_mul(1u32.checked_shl(retry.min(16)).unwrap_or(u32::MAX))
        .min(policy.retry_cap);
    exp.mul_f64(0.7 + rand::random::<f64>() * 0.6)
}

enum Attempt {
    Done(Box<ApiResponse>),
    /// 401: refresh the token, then go again.
    Refresh,
    Retry(Duration),
}

impl AtlassianClient {
    pub fn new(http: reqwest::Client, api_url: &Url, refresher: Arc<Refresher>) -> AtlassianClient {
        let policy = ClientPolicy::default();
        let pacer = policy.pacing.map(|p| Arc::new(Pacer::new(p)));
        let budget = Arc::new(Budget::new(refresher.store().clone()));
        AtlassianClient {
            budget,
            http,
            api_base: api_url.as_str().trim_end_matches('/').to_string(),
            api_url: api_url.clone(),
            refresher,
            limits: RateState::default(),
            policy: RwLock::new(Policy { policy, pacer }),
            cache: SiteCache::default(),
            forced: Default::default(),
            priority: Priority::default(),
        }
    }

    /// App calls before background work, in this process (`priority.rs`).
    pub fn priority(&self) -> &Priority {
        &self.priority
    }

    pub fn policy(&self) -> ClientPolicy {
        self.policy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .policy
            .clone()
    }

    /// The points budget (docs/design.md §17).
    pub fn budget(&self) -> &Arc<Budget> {
        &self.budget
    }

    /// The pacer in force, if pacing is on.
    pub fn pacer(&self) -> Option<Arc<Pacer>> {
        self.current().1
    }

    /// Replace the policy (tests shorten delays; the benchmark turns pacing off).
    pub fn set_policy(&self, policy: ClientPolicy) {
        let share = self.current().1.map_or(1.0, |p| p.share());
        let pacer = policy.pacing.map(|p| {
            let pacer = Pacer::new(p);
            pacer.set_share(share);
            Arc::new(pacer)
        });
        *self.policy.write().unwrap_or_else(|e| e.into_inner()) = Policy { policy, pacer };
    }

    fn current(&self) -> (ClientPolicy, Option<Arc<Pacer>>) {
        let p = self.policy.read().unwrap_or_else(|e| e.into_inner());
        (p.policy.clone(), p.pacer.clone())
    }

    /// `{ATLASSIAN_API_URL}/ex/{product}/{cloud_id}/` — the only prefix any
    /// request of this connection may go to.
    pub fn site_base(&self, product: Product, cloud_id: &CloudId) -> String {
        format!("{}/ex/{}/{}/", self.api_base, product.as_str(), cloud_id)
    }

    /// `{site_base}{path}?{query}` as a [`Url`], the same as parsing that
    /// string (the path and query are parsed the same way), without
    /// parsing the scheme and host again.
    fn request_url(
        &self,
        product: Product,
        cloud_id: &CloudId,
        path: &str,
        query: Option<&str>,
    ) -> Url {
        let mut url = self.api_url.clone();
        let prefix = self.api_url.path().trim_end_matches('/');
        url.set_path(&format!(
            "{prefix}/ex/{}/{cloud_id}/{path}",
            product.as_str()
        ));
        url.set_query(query);
        url
    }

    /// Send `req` for connection `connection_id`; when `app_id` is given the
    /// connection must belong to that app (else [`AtlassianError::NotFound`]).
    /// Any status is `Ok`; errors are only for what produced no answer.
    pub async fn send(
        &self,
        app_id: Option<&str>,
        connection_id: &ConnectionId,
        req: ApiRequest,
    ) -> Result<ApiResponse, AtlassianError> {
        match app_id {
            Some(app) => {
                let row = crate::store::connections::get_for_app(
                    self.refresher.store().pool(),
                    app,
                    connection_id,
                )
                .await
                .map_err(RefreshError::from)?
                .ok_or(AtlassianError::NotFound)?;
                self.send_for_row(row, req).await
            }
            None => {
                let fresh = self.refresher.access_token(connection_id).await?;
                self.send_with(fresh, req, false).await
            }
        }
    }

    /// [`send`](Self::send) for a connection row the caller has just read
    /// and checked belongs to the calling app: saves a database read. A dead
    /// grant answers [`RefreshError::ReauthRequired`] with a reconnect link.
    pub async fn send_for_row(
        &self,
        row: ConnectionRow,
        req: ApiRequest,
    ) -> Result<ApiResponse, AtlassianError> {
        let fresh = self.refresher.access_token_for_app(row).await?;
        self.send_with(fresh, req, true).await
    }

    /// [`send_for_row`](Self::send_for_row) with a token the caller already
    /// holds for the calling app (the proxy's token-cache hit: no database
    /// read, no decryption).
    pub async fn send_with_token(
        &self,
        fresh: FreshToken,
        req: ApiRequest,
    ) -> Result<ApiResponse, AtlassianError> {
        self.send_with(fresh, req, true).await
    }

    async fn send_with(
        &self,
        mut fresh: FreshToken,
        mut req: ApiRequest,
        for_app: bool,
    ) -> Result<ApiResponse, AtlassianError> {
        let (policy, pacer) = self.current();
        let connection_id = fresh.connection.id.clone();
        let cloud_id = fresh
            .connection
            .site_cloud_id
            .clone()
            .ok_or(AtlassianError::NoSite)?;
        let url = self.request_url(req.product, &cloud_id, &req.path, req.query.as_deref());
        let endpoint = limits::Endpoint::of(req.product, &req.method, &req.path);
        let issue = limits::written_issue(&req.method, &req.path);
        // Calls made for an app are interactive; the rest (sync passes,
        // reconciliation, webhook upkeep) are background work.
        let class = if for_app {
            CallClass::Interactive
        } else {
            CallClass::Background
        };
        let _in_flight = for_app.then(|| self.priority.interactive());
        let estimate = budget::estimate(
            &req.method,
            &req.path,
            req.query.as_deref(),
            match &req.body {
                RequestBody::Bytes(b) if req.method == Method::POST => Some(&b[..]),
                _ => None,
            },
        );
        let mut body = std::mem::replace(&mut req.body, RequestBody::Empty);
        let replayable = !matches!(body, RequestBody::Stream(_));
        let timeout = req.timeout.unwrap_or(policy.response_timeout);
        let mut refreshed = false;
        let mut retries = 0u32;
        loop {
            // Pauses learnt from 429s (ours or other callers').
            if let Some(until) =
                self.limits
                    .blocked_until(&cloud_id, &endpoint.key, issue.as_deref())
            {
                let wait = until.saturating_duration_since(tokio::time::Instant::now());
                if wait > policy.max_inline_wait {
                    return Err(AtlassianError::RateLimited {
                        retry_after_secs: wait.as_secs_f64().ceil() as u64,
                    });
                }
                tracing::debug!(wait_ms = wait.as_millis() as u64, site = %cloud_id, "waiting for an Atlassian rate-limit pause");
                admission_sleep(wait).await;
            }
            // The points this call may cost, leased before it leaves.
            let mut waited = Duration::ZERO;
            let charge = loop {
                match self.budget.reserve(&cloud_id, class, estimate).await {
                    Ok(c) => break c,
                    Err(spent) => {
                        // A short pause is waited out, as a 429's would be.
                        let wait = Duration::from_secs(spent.retry_after_secs());
                        waited += wait;
                        if waited > policy.max_inline_wait {
                            return Err(AtlassianError::RateLimited {
                                retry_after_secs: wait.as_secs(),
                            });
                        }
                        admission_sleep(wait).await;
                    }
                }
            };
            if let Some(p) = &pacer {
                p.ready(&req.method, &cloud_id, &endpoint).await;
            }
            let this_body = match &mut body {
                RequestBody::Empty => None,
                RequestBody::Bytes(b) => Some(reqwest::Body::from(b.clone())),
                RequestBody::Stream(_) => match std::mem::replace(&mut body, RequestBody::Empty) {
                    RequestBody::Stream(s) => Some(s),
                    _ => None,
                },
            };
            let mut rb = self
                .http
                .request(req.method.clone(), url.clone())
                .headers(req.headers.clone())
                .bearer_auth(fresh.access_token.expose_secret());
            if let Some(b) = this_body {
                rb = rb.body(b);
            }
            let sent = tokio::time::timeout(timeout, rb.send()).await;
            let can_retry = replayable && retries < policy.max_retries;
            let mut quota_pause = None;
            let step = match sent {
                Err(_) => {
                    if is_idempotent(&req.method) && can_retry {
                        Attempt::Retry(backoff(&policy, retries))
                    } else {
                        return Err(AtlassianError::Timeout);
                    }
                }
                Ok(Err(e)) => {
                    // A connect error means nothing was sent: safe for any method.
                    let never_sent = e.is_connect();
                    charge.settle(if never_sent { 0 } else { 1 });
                    tracing::debug!(error = %e, never_sent, "request to Atlassian failed");
                    if (never_sent || is_idempotent(&req.method)) && can_retry {
                        Attempt::Retry(backoff(&policy, retries))
                    } else if never_sent || is_idempotent(&req.method) {
                        return Err(AtlassianError::Unreachable(
                            if never_sent {
                                "connection refused or failed"
                            } else {
                                "connection lost"
                            }
                            .to_string(),
                        ));
                    } else {
                        return Err(AtlassianError::OutcomeUnknown);
                    }
                }
                Ok(Ok(resp)) => self.classify(
                    resp,
                    charge,
                    &fresh,
                    &policy,
                    &cloud_id,
                    &endpoint.key,
                    issue.as_deref(),
                    &req.method,
                    retries,
                    can_retry,
                    refreshed,
                    replayable,
                    &mut quota_pause,
                ),
            };
            if let Some(secs) = quota_pause.take() {
                self.budget.pause(&cloud_id, secs).await;
            }
            match step {
                Attempt::Done(r) => return Ok(*r),
                Attempt::Refresh => {
                    // One forced refresh, then one retry (not counted as a backoff).
                    refreshed = true;
                    let again = self.refresher.force_refresh(&connection_id).await;
                    fresh = if for_app {
                        self.refresher.for_app(again, &fresh.connection).await?
                    } else {
                        again?
                    };
                }
                Attempt::Retry(wait) => {
                    retries += 1;
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    fn may_force_refresh(&self, connection_id: &ConnectionId) -> bool {
        let mut m = self.forced.lock().unwrap_or_else(|e| e.into_inner());
        let now = tokio::time::Instant::now();
        if m.len() > 1024 {
            m.retain(|_, t| now.duration_since(*t) < FORCED_REFRESH_EVERY);
        }
        match m.get(connection_id) {
            Some(t) if now.duration_since(*t) < FORCED_REFRESH_EVERY => false,
            _ => {
                m.insert(connection_id.clone(), now);
                true
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn classify(
        &self,
        resp: reqwest::Response,
        charge: Charge,
        fresh: &FreshToken,
        policy: &ClientPolicy,
        cloud_id: &CloudId,
        endpoint: &str,
        issue: Option<&str>,
        method: &Method,
        retries: u32,
        can_retry: bool,
        refreshed: bool,
        replayable: bool,
        quota_pause: &mut Option<u64>,
    ) -> Attempt {
        let status = resp.status();
        let headers = resp.headers().clone();
        self.budget.observe(cloud_id, &headers);
        // A refused call cost nothing; any other failure its base point; a
        // write its 1 point; a successful read what its body holds.
        let charge = if status == StatusCode::TOO_MANY_REQUESTS {
            charge.settle(0);
            None
        } else if !status.is_success() || !charge.counts_objects() {
            charge.settle(1);
            None
        } else {
            Some(charge)
        };
        let done = |resp: reqwest::Response, charge: Option<Charge>| {
            Attempt::Done(Box::new(ApiResponse {
                status,
                headers: headers.clone(),
                response: resp,
                connection: fresh.connection.clone(),
                charge,
            }))
        };
        // Refreshed moments ago: this 401 is not about expiry; relay it.
        if status == StatusCode::UNAUTHORIZED
            && !refreshed
            && replayable
            && self.may_force_refresh(&fresh.connection.id)
        {
            drop(charge);
            return Attempt::Refresh;
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            let kind = LimitKind::from_headers(&headers);
            let wait = limits::retry_after(&headers).unwrap_or_else(|| backoff(policy, retries));
            tracing::info!(
                site = %cloud_id,
                ?kind,
                wait_ms = wait.as_millis() as u64,
                "Atlassian rate limit (429)"
            );
            self.limits.record(kind, cloud_id, endpoint, issue, wait);
            if kind == LimitKind::Quota {
                *quota_pause = Some(wait.as_secs_f64().ceil() as u64);
            }
            // A 429 was not executed, so even a POST may go again.
            if can_retry && wait <= policy.max_inline_wait {
                // The pause is recorded; the loop sleeps until it is over.
                return Attempt::Retry(Duration::from_millis(1));
            }
            return done(resp, charge);
        }
        if status.is_server_error() && is_idempotent(method) && can_retry {
            let wait = match (status, limits::retry_after(&headers)) {
                (StatusCode::SERVICE_UNAVAILABLE, Some(w)) if w <= policy.max_inline_wait => w,
                _ => backoff(policy, retries),
            };
            tracing::debug!(
                status = status.as_u16(),
                "retrying after an Atlassian server error"
            );
            return Attempt::Retry(wait);
        }
        done(resp, charge)
    }

    /// Send and decode a 2xx JSON answer; any other status becomes
    /// [`AtlassianError::Status`] (429 beyond the inline wait: `RateLimited`).
    pub async fn json<T: DeserializeOwned>(
        &self,
        app_id: Option<&str>,
        connection_id: &ConnectionId,
        req: ApiRequest,
    ) -> Result<(T, ConnectionRow), AtlassianError> {
        let (resp, row) = self.call(app_id, connection_id, req).await?;
        let value =
            serde_json::from_slice(&resp).map_err(|e| AtlassianError::Decode(e.to_string()))?;
        Ok((value, row))
    }

    /// Send and return a 2xx answer's body bytes; errors as for [`json`](Self::json).
    ///
    /// The whole call, retries and body included, has `request_timeout`;
    /// time spent waiting to be admitted (a points-budget wait, a learnt
    /// rate-limit pause) does not count against it, so a background pass
    /// that yields to interactive calls is not failed for yielding.
    pub async fn call(
        &self,
        app_id: Option<&str>,
        connection_id: &ConnectionId,
        req: ApiRequest,
    ) -> Result<(Bytes, ConnectionRow), AtlassianError> {
        let total = self.policy().request_timeout;
        let work = async {
            let resp = self.send(app_id, connection_id, req).await?;
            let status = resp.status;
            if status == StatusCode::TOO_MANY_REQUESTS {
                let secs = limits::retry_after(&resp.headers)
                    .map(|d| d.as_secs_f64().ceil() as u64)
                    .unwrap_or(60);
                return Err(AtlassianError::RateLimited {
                    retry_after_secs: secs,
                });
            }
            let bytes = resp
                .response
                .bytes()
                .await
                .map_err(|e| AtlassianError::Unreachable(format!("reading the answer: {e}")))?;
            if let Some(charge) = resp.charge {
                charge.settle_body(&bytes);
            }
            if !status.is_success() {
                let cut = bytes.len().min(2048);
                return Err(AtlassianError::Status {
                    status,
                    body: String::from_utf8_lossy(&bytes[..cut]).into_owned(),
                });
            }
            Ok((bytes, Arc::unwrap_or_clone(resp.connection)))
        };
        let admission = AdmissionWait::default();
        let started = tokio::time::Instant::now();
        let work = ADMISSION_WAIT.scope(admission.clone(), work);
        tokio::pin!(work);
        loop {
            let deadline = started + total + admission.waited();
            tokio::select! {
                done = &mut work => return done,
                _ = tokio::time::sleep_until(deadline) => {
                    // The deadline may have moved while we slept.
                    if started + total + admission.waited() <= tokio::time::Instant::now() {
                        return Err(AtlassianError::Timeout);
                    }
                }
            }
        }
    }
}

/// Time a buffered call has spent waiting to be admitted (budget waits and
/// learnt pauses), which [`AtlassianClient::call`] adds to its deadline.
#[derive(Debug, Clone, Default)]
struct AdmissionWait(Arc<std::sync::atomic::AtomicU64>);

impl AdmissionWait {
    fn waited(&self) -> Duration {
        Duration::from_micros(self.0.load(std::sync::atomic::Ordering::Relaxed))
    }
}

tokio::task_local! {
    static ADMISSION_WAIT: AdmissionWait;
}

/// Sleep `wait` before a call is admitted; inside [`AtlassianClient::call`]
/// the call's deadline moves by as much first.
async fn admission_sleep(wait: Duration) {
    let _ = ADMISSION_WAIT.try_with(|a| {
        a.0.fetch_add(
            wait.as_micros().min(u64::MAX as u128) as u64,
            std::sync::atomic::Ordering::Relaxed,
        )
    });
    tokio::time::sleep(wait).await;
}

/// Small facts of a site worth remembering for a while (the story-points
/// field id, the project keys): `(connection_id, kind) → (when, value)`.
/// At most [`SiteCache::MAX_ENTRIES`]: a put past that drops what no `get`
/// would serve any more (older than [`SiteCache::MAX_TTL`]), then the oldest
/// entries down to three quarters of the cap (100,000 connections using the
/// typed operations would otherwise hold an entry each forever).
/// Keyed by the connection, never by the site alone: what Jira shows
/// depends on whose token asked, and no app's answer may depend on another
/// app's token (docs/design.md §12).
#[derive(Debug, Default)]
pub struct SiteCache {
    entries: std::sync::Mutex<
        std::collections::HashMap<CacheKey, (tokio::time::Instant, serde_json::Value)>,
    >,
}

type CacheKey = (String, &'static str);

impl SiteCache {
    /// Entries kept at most.
    pub const MAX_ENTRIES: usize = 10_000;
    /// The longest `ttl` any caller passes to [`SiteCache::get`].
    pub const MAX_TTL: Duration = Duration::from_secs(3600);

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cached value if it is younger than `ttl` (at most [`SiteCache::MAX_TTL`]).
    pub fn get(
        &self,
        connection_id: &ConnectionId,
        kind: &'static str,
        ttl: Duration,
    ) -> Option<serde_json::Value> {
        let m = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        m.get(&(connection_id.to_string(), kind))
            .filter(|(at, _)| at.elapsed() < ttl)
            .map(|(_, v)| v.clone())
    }

    pub fn put(&self, connection_id: &ConnectionId, kind: &'static str, value: serde_json::Value) {
        let key = (connection_id.to_string(), kind);
        let mut m = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= Self::MAX_ENTRIES && !m.contains_key(&key) {
            m.retain(|_, (at, _)| at.elapsed() < Self::MAX_TTL);
            if m.len() >= Self::MAX_ENTRIES {
                // Oldest first, down to three quarters of the cap: the sort
                // is paid once per quarter of the cap's inserts at most.
                let mut by_age: Vec<(tokio::time::Instant, CacheKey)> =
                    m.iter().map(|(k, (at, _))| (*at, k.clone())).collect();
                by_age.sort_by_key(|(at, _)| *at);
                let excess = m.len() - Self::MAX_ENTRIES * 3 / 4;
                for (_, k) in by_age.into_iter().take(excess) {
                    m.remove(&k);
                }
            }
        }
        m.insert(key, (tokio::time::Instant::now(), value));
    }
}

#[cfg(test)]
mod tests {
    use super::SiteCache;
    use crate::ids::ConnectionId;
    use std::time::Duration;

    #[test]
    fn the_site_cache_stays_under_its_cap_and_keeps_the_newest() {
        let cache = SiteCache::default();
        let n = SiteCache::MAX_ENTRIES * 2 + 7;
        for i in 0..n {
            cache.put(
                &format!("con_{i}").into(),
                "jira-fields",
                serde_json::json!(i),
            );
            assert!(
                cache.len() <= SiteCache::MAX_ENTRIES,
                "{} at {i}",
                cache.len()
            );
        }
        let ttl = Duration::from_secs(60);
        let last = ConnectionId::new(format!("con_{}", n - 1));
        assert_eq!(
            cache.get(&last, "jira-fields", ttl),
            Some(serde_json::json!(n - 1))
        );
        assert_eq!(
            cache.get(&"con_0".into(), "jira-fields", ttl),
            None,
            "the oldest went"
        );
        // Replacing an entry never evicts.
        let before = cache.len();
        cache.put(&last, "jira-fields", serde_json::json!("again"));
        assert_eq!(cache.len(), before);
    }
}
