//! The refresh engine — docs/design.md §4, the heart of the vault.
//!
//! Atlassian rotates the refresh token on every use; the old one keeps working
//! for a 10-minute reuse window, and reuse after that revokes the whole family
//! (docs/atlassian-behaviour.md §1). So:
//!
//! - **Single flight in the process.** One refresh per connection runs as a
//!   spawned task; every caller awaits the same shared result (a caller that
//!   goes away does not cancel it).
//! - **Single flight across processes.** The task claims the *refresh mark* in
//!   a short write transaction (PostgreSQL: `SELECT … FOR UPDATE`; SQLite:
//!   `BEGIN IMMEDIATE`). Under the lock it re-reads the row: if the token
//!   version moved since the caller looked, someone else refreshed — use that.
//!   If another live mark exists, wait and re-read.
//! - **The mark is written before calling Atlassian**: the old refresh token
//!   (encrypted), when the first attempt started, and a lease. The new pair is
//!   stored in the statement that clears the mark.
//! - **A lost answer** (reset, timeout, a process killed mid-call) leaves the
//!   mark. Whoever finds it — this task a moment later, or any process once
//!   the lease lapsed — retries with the *same* old token, which Atlassian
//!   accepts inside the reuse window. Attempts are bounded and back off with
//!   jitter; transient failures never mark a connection dead.
//! - **`invalid_grant` / `access_denied`** flip `active` → `needs_reauth` with
//!   one conditional UPDATE (so the event is emitted exactly once), no retry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt, Shared};
use secrecy::SecretString;

use crate::atlassian::{OAuthClient, OAuthError, TokenResponse};
use crate::config::Config;
use crate::ids::ConnectionId;
use crate::metrics::Metrics;
use crate::store::connections::{self as rows, ConnectionRow, ConnectionStatus};
use crate::store::{Store, StoreError};
use crate::vault::token::{self, ACCESS_TOKEN, INFLIGHT_REFRESH_TOKEN, REFRESH_TOKEN};
use crate::vault::token_cache::TokenCache;
use crate::vault::{Cipher, VaultError};

/// How long a claim on the mark is good for before others may take over.
const LEASE_SECS: i64 = 30;
/// Retries of one Atlassian call inside one claim (lost answers, 5xx).
const CALL_ATTEMPTS: u32 = 3;
/// How long a caller waits for another process's in-flight refresh.
const WAIT_FOR_OTHERS: Duration = Duration::from_secs(20);
/// Atlassian's reuse window is 10 minutes; stay well inside it when retrying
/// an old token in the same task (after that, see `claim`).
const REUSE_WINDOW_SAFE_SECS: i64 = 8 * 60;

/// A usable access token for one connection.
#[derive(Clone)]
pub struct FreshToken {
    pub access_token: SecretString,
    pub expires_at: i64,
    pub token_version: i64,
    /// The row as it was when the token was read (account, site, scopes);
    /// shared, so a cached token is handed out without copying the row.
    pub connection: Arc<ConnectionRow>,
    /// The edge's `/token` answer for this token, written by the first call
    /// that serves it and shared by every clone (the token cache's entry
    /// included): the answer cannot change while the token does not, and
    /// writing it was a fifth of a cached `/token` call (BENCHMARKS.md). It
    /// holds the token in clear, as every answer does, and goes with the
    /// entry (at most [`TokenCache::TTL`]).
    pub answer: Arc<OnceLock<bytes::Bytes>>,
}

impl std::fmt::Debug for FreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FreshToken")
            .field("expires_at", &self.expires_at)
            .field("token_version", &self.token_version)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum RefreshError {
    #[error("connection not found")]
    NotFound,
    /// The grant is dead (background callers see this one).
    #[error("the connection needs a new consent")]
    NeedsReauth,
    /// The grant is dead, answered to an app: a fresh connect session for
    /// the same app, owner and profile is waiting at `connect_url`.
    #[error("the connection needs a new consent: send the person to connect_url")]
    ReauthRequired { connect_url: String },
    #[error("the connection is disconnected")]
    Disconnected,
    #[error("Atlassian could not refresh the token right now")]
    Unavailable { retry_after_secs: u64 },
    #[error("Atlassian rejected the refresh request (status {status})")]
    Rejected { status: u16 },
    /// The database is away right now (see `store::is_unavailable`).
    #[error("the database is unavailable right now")]
    StoreUnavailable,
    #[error("internal error during refresh: {0}")]
    Internal(String),
}

impl From<sqlx::Error> for RefreshError {
    fn from(e: sqlx::Error) -> Self {
        if crate::store::is_unavailable(&e) {
            RefreshError::StoreUnavailable
        } else {
            RefreshError::Internal(format!("database: {e}"))
        }
    }
}

impl From<StoreError> for RefreshError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            RefreshError::StoreUnavailable
        } else {
            RefreshError::Internal(format!("database: {e}"))
        }
    }
}

impl From<VaultError> for RefreshError {
    fn from(e: VaultError) -> Self {
        RefreshError::Internal(format!("vault: {e}"))
    }
}

type SharedRefresh = Shared<BoxFuture<'static, Arc<Result<FreshToken, RefreshError>>>>;

/// The one refresh coordinator of a process (a field of `Core`).
pub struct Refresher {
    store: Store,
    cipher: Arc<Cipher>,
    oauth: OAuthClient,
    margin: Duration,
    metrics: Arc<Metrics>,
    inflight: Mutex<HashMap<ConnectionId, SharedRefresh>>,
    /// Public URL and profiles, for the reconnect link of a dead grant.
    config: Arc<Config>,
    /// Tokens served by `/token` without a database read (see `token_cache`).
    tokens: TokenCache,
}

impl std::fmt::Debug for Refresher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refresher")
            .field("margin", &self.margin)
            .finish_non_exhaustive()
    }
}

enum Claim {
    /// Nothing to do: here is a good token.
    Done(Box<FreshToken>),
    /// Another process holds a live mark.
    Wait,
    /// We hold the mark: call Atlassian with this old refresh token.
    Call {
        old: SecretString,
        started_at: i64,
        app_id: String,
    },
}

pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn jitter(base: Duration) -> Duration {
    // ×0.7–1.3, as Atlassian recommends for backoff (docs/atlassian-behaviour.md §4).
    let factor = 0.7 + rand::random::<f64>() * 0.6;
    base.mul_f64(factor)
}

impl Refresher {
    pub fn new(
        store: Store,
        cipher: Arc<Cipher>,
        oauth: OAuthClient,
        margin: Duration,
        metrics: Arc<Metrics>,
        config: Arc<Config>,
    ) -> Refresher {
        Refresher {
            config,
            store,
            cipher,
            oauth,
            margin,
            metrics,
            inflight: Mutex::new(HashMap::new()),
            tokens: TokenCache::new(margin),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn oauth(&self) -> &OAuthClient {
        &self.oauth
    }

    /// The process's short-lived token cache (`/token` reads it first).
    pub fn token_cache(&self) -> &TokenCache {
        &self.tokens
    }

    /// `refreshes_total{outcome}`: `success`, `needs_reauth`, `rejected`, `transient_error`.
    fn count(&self, outcome: &str) {
        self.metrics.refresh(outcome)
    }

    /// A token with at least `refresh_margin` left, refreshing first if needed.
    pub async fn access_token(
        self: &Arc<Self>,
        id: &ConnectionId,
    ) -> Result<FreshToken, RefreshError> {
        let row = rows::get(self.store.pool(), id)
            .await?
            .ok_or(RefreshError::NotFound)?;
        self.access_token_from_row(row).await
    }

    /// Like [`access_token`](Self::access_token) for a row the caller has
    /// just read (hot paths — `/token`, the proxy — save a database read).
    pub async fn access_token_from_row(
        self: &Arc<Self>,
        row: ConnectionRow,
    ) -> Result<FreshToken, RefreshError> {
        let id = row.id.clone();
        let id = &id;
        if let Err(e) = check_status(&row) {
            self.tokens.invalidate(id);
            return Err(e);
        }
        if let Some(expires_at) = row.access_expires_at {
            if expires_at > unix_now() + self.margin.as_secs() as i64
                && row.refresh_inflight_token.is_none()
            {
                return self.open_row(row);
            }
        }
        self.single_flight(id, row.token_version, false).await
    }

    /// [`access_token_from_row`](Self::access_token_from_row) for an app:
    /// a dead grant answers [`RefreshError::ReauthRequired`] with a fresh
    /// reconnect link, so the edge only translates.
    pub async fn access_token_for_app(
        self: &Arc<Self>,
        row: ConnectionRow,
    ) -> Result<FreshToken, RefreshError> {
        let result = self.access_token_from_row(row.clone()).await;
        self.for_app(result, &row).await
    }

    /// [`force_refresh`](Self::force_refresh) for an app (see
    /// [`access_token_for_app`](Self::access_token_for_app)).
    pub async fn force_refresh_for_app(
        self: &Arc<Self>,
        row: &ConnectionRow,
    ) -> Result<FreshToken, RefreshError> {
        let result = self.force_refresh(&row.id).await;
        self.for_app(result, row).await
    }

    /// Turn `NeedsReauth` into `ReauthRequired` with a new connect session
    /// for the row's app, owner and profile (the profile's scopes as
    /// configured now, else the grant's).
    pub async fn for_app(
        &self,
        result: Result<FreshToken, RefreshError>,
        row: &ConnectionRow,
    ) -> Result<FreshToken, RefreshError> {
        match result {
            Err(RefreshError::NeedsReauth) => {
                let new = crate::connect::NewConnectSession {
                    app_id: row.app_id.clone(),
                    owner: row.owner.clone(),
                    profile: row.profile.clone(),
                    return_to: None,
                    scopes: self
                        .config
                        .profiles
                        .get(&row.profile)
                        .map(|p| p.scopes.clone())
                        .unwrap_or_else(|| row.scope_list()),
                };
                let session =
                    crate::connect::create_session(&self.store, &self.config, &new).await?;
                Err(RefreshError::ReauthRequired {
                    connect_url: session.connect_url,
                })
            }
            other => other,
        }
    }

    /// Refresh now, whatever the expiry (joins a refresh already in flight).
    pub async fn force_refresh(
        self: &Arc<Self>,
        id: &ConnectionId,
    ) -> Result<FreshToken, RefreshError> {
        let row = rows::get(self.store.pool(), id)
            .await?
            .ok_or(RefreshError::NotFound)?;
        if let Err(e) = check_status(&row) {
            self.tokens.invalidate(id);
            return Err(e);
        }
        self.single_flight(id, row.token_version, true).await
    }

    fn open_row(&self, row: ConnectionRow) -> Result<FreshToken, RefreshError> {
        let ct = row
            .access_token
            .as_deref()
            .ok_or(RefreshError::NeedsReauth)?;
        let access_token = token::open(&self.cipher, &row.id, ACCESS_TOKEN, ct)?;
        Ok(FreshToken {
            access_token,
            expires_at: row.access_expires_at.unwrap_or(0),
            token_version: row.token_version,
            connection: Arc::new(row),
            answer: Arc::default(),
        })
    }

    async fn single_flight(
        self: &Arc<Self>,
        id: &ConnectionId,
        seen_version: i64,
        force: bool,
    ) -> Result<FreshToken, RefreshError> {
        let shared = {
            let mut map = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
            match map.get(id) {
                Some(running) => running.clone(),
                None => {
                    let this = Arc::clone(self);
                    let key = id.clone();
                    let task = tokio::spawn(async move {
                        let result = this.run(&key, seen_version, force).await;
                        // Before the in-flight entry goes: whoever asks next
                        // finds the new token (or no entry) in the cache.
                        match &result {
                            Ok(fresh) => this.tokens.store_refreshed(fresh),
                            Err(
                                RefreshError::NeedsReauth
                                | RefreshError::Disconnected
                                | RefreshError::NotFound,
                            ) => this.tokens.invalidate(&key),
                            Err(_) => {}
                        }
                        this.inflight
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&key);
                        Arc::new(result)
                    });
                    let fut: SharedRefresh = async move {
                        task.await.unwrap_or_else(|e| {
                            Arc::new(Err(RefreshError::Internal(format!(
                                "refresh task failed: {e}"
                            ))))
                        })
                    }
                    .boxed()
                    .shared();
                    map.insert(id.clone(), fut.clone());
                    fut
                }
            }
        };
        (*shared.await).clone()
    }

    async fn run(
        &self,
        id: &ConnectionId,
        seen_version: i64,
        force: bool,
    ) -> Result<FreshToken, RefreshError> {
        let waiting_since = tokio::time::Instant::now();
        loop {
            match self.claim(id, seen_version, force).await? {
                Claim::Done(fresh) => return Ok(*fresh),
                Claim::Wait => {
                    if waiting_since.elapsed() > WAIT_FOR_OTHERS {
                        return Err(RefreshError::Unavailable {
                            retry_after_secs: 5,
                        });
                    }
                    tokio::time::sleep(jitter(Duration::from_millis(150))).await;
                }
                Claim::Call {
                    old,
                    started_at,
                    app_id,
                } => {
                    match self.call(id, &app_id, old, started_at).await? {
                        Some(fresh) => return Ok(fresh),
                        // The mark was taken over meanwhile: re-read.
                        None => continue,
                    }
                }
            }
        }
    }

    /// Under the row lock: decide whether to refresh, wait, or use what is there.
    async fn claim(
        &self,
        id: &ConnectionId,
        seen_version: i64,
        force: bool,
    ) -> Result<Claim, RefreshError> {
        let now = unix_now();
        let mut tx = self.store.begin_write().await?;
        let row = rows::get_locked(&mut tx, self.store.backend(), id)
            .await?
            .ok_or(RefreshError::NotFound)?;
        if let Err(e) = check_status(&row) {
            tx.commit().await?;
            return Err(e);
        }
        let fresh_enough = row
            .access_expires_at
            .is_some_and(|at| at > now + self.margin.as_secs() as i64);
        if row.refresh_inflight_token.is_none()
            && (row.token_version != seen_version || (!force && fresh_enough))
        {
            tx.commit().await?;
            return Ok(Claim::Done(Box::new(self.open_row(row)?)));
        }
        // Transient failures back off; meanwhile a still-valid token is served.
        if !force && row.next_attempt_at.is_some_and(|at| at > now) {
            tx.commit().await?;
            if row.access_expires_at.is_some_and(|at| at > now) {
                return Ok(Claim::Done(Box::new(self.open_row(row)?)));
            }
            let wait = row.next_attempt_at.unwrap_or(now) - now;
            return Err(RefreshError::Unavailable {
                retry_after_secs: wait.max(1) as u64,
            });
        }
        if let Some(mark) = row.refresh_inflight_token.as_deref() {
            if row.refresh_lease_until.is_some_and(|until| until > now) {
                tx.commit().await?;
                // Someone else is refreshing; a token that still works needs no wait.
                if !force && row.access_expires_at.is_some_and(|at| at > now) {
                    return Ok(Claim::Done(Box::new(self.open_row(row)?)));
                }
                return Ok(Claim::Wait);
            }
            // A stale mark: its owner lost the answer or died. Retry with the
            // same old token. Inside the reuse window Atlassian accepts it; past
            // it, nobody holds the rotated token anyway, so trying is never worse.
            let old = token::open(&self.cipher, &row.id, INFLIGHT_REFRESH_TOKEN, mark)?;
            let started_at = row.refresh_started_at.unwrap_or(now);
            rows::renew_refresh_lease(&mut tx, id, now + LEASE_SECS).await?;
            tx.commit().await?;
            tracing::info!(connection_id = %id, "resuming an interrupted refresh with the same refresh token");
            return Ok(Claim::Call {
                old,
                started_at,
                app_id: row.app_id,
            });
        }
        let Some(rt) = row.refresh_token.as_deref() else {
            // No `offline_access` in the grant: only a new consent helps.
            let flipped = rows::mark_needs_reauth(&mut tx, id, "no refresh token", now).await?;
            if flipped {
                emit_needs_reauth(&mut tx, &row.app_id, id, "no refresh token", now).await?;
            }
            tx.commit().await?;
            return Err(RefreshError::NeedsReauth);
        };
        let old = token::open(&self.cipher, &row.id, REFRESH_TOKEN, rt)?;
        let mark = token::seal(&self.cipher, &row.id, INFLIGHT_REFRESH_TOKEN, &old)?;
        rows::set_refresh_mark(&mut tx, id, &mark, now, now + LEASE_SECS).await?;
        tx.commit().await?;
        Ok(Claim::Call {
            old,
            started_at: now,
            app_id: row.app_id,
        })
    }

    /// We hold the mark. Returns `None` when the mark was taken over by someone
    /// else (our lease ran out) and the caller should re-read.
    async fn call(
        &self,
        id: &ConnectionId,
        app_id: &str,
        old: SecretString,
        started_at: i64,
    ) -> Result<Option<FreshToken>, RefreshError> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match self.oauth.refresh(&old).await {
                Ok(answer) => {
                    return self.store_success(id, started_at, &old, answer).await;
                }
                Err(OAuthError::GrantRevoked { error }) => {
                    let now = unix_now();
                    let mut tx = self.store.begin_write().await?;
                    let flipped = rows::mark_needs_reauth(&mut tx, id, &error, now).await?;
                    if flipped {
                        emit_needs_reauth(&mut tx, app_id, id, &error, now).await?;
                    }
                    tx.commit().await?;
                    tracing::warn!(connection_id = %id, %error, "refresh refused by Atlassian; connection needs a new consent");
                    self.count(ConnectionStatus::NeedsReauth.as_str());
                    return Err(RefreshError::NeedsReauth);
                }
                Err(OAuthError::Rejected { status, error }) => {
                    // Our request is wrong (client registration?): retrying
                    // will not help soon, but the grant itself may be fine.
                    tracing::error!(connection_id = %id, status, %error, "refresh rejected by Atlassian");
                    self.back_off(
                        id,
                        started_at,
                        attempt,
                        &format!("rejected: {status} {error}"),
                    )
                    .await?;
                    self.count("rejected");
                    return Err(RefreshError::Rejected { status });
                }
                Err(e) => {
                    let within_window = unix_now() - started_at < REUSE_WINDOW_SAFE_SECS;
                    tracing::warn!(connection_id = %id, attempt, error = %e, "refresh attempt failed; will retry with the same refresh token");
                    if attempt >= CALL_ATTEMPTS || !within_window {
                        let wait = self
                            .back_off(id, started_at, attempt, &e.to_string())
                            .await?;
                        self.count("transient_error");
                        return Err(RefreshError::Unavailable {
                            retry_after_secs: wait,
                        });
                    }
                    tokio::time::sleep(jitter(Duration::from_millis(250 * (1 << attempt)))).await;
                    let mut tx = self.store.begin_write().await?;
                    let still_ours = rows::get_locked(&mut tx, self.store.backend(), id)
                        .await?
                        .is_some_and(|r| {
                            r.refresh_started_at == Some(started_at)
                                && r.status() == ConnectionStatus::Active
                        });
                    if still_ours {
                        rows::renew_refresh_lease(&mut tx, id, unix_now() + LEASE_SECS).await?;
                    }
                    tx.commit().await?;
                    if !still_ours {
                        return Ok(None);
                    }
                }
            }
        }
    }

    async fn store_success(
        &self,
        id: &ConnectionId,
        started_at: i64,
        old: &SecretString,
        answer: TokenResponse,
    ) -> Result<Option<FreshToken>, RefreshError> {
        let now = unix_now();
        let access_ct = token::seal(&self.cipher, id, ACCESS_TOKEN, &answer.access_token)?;
        // Atlassian sometimes omits `refresh_token` on a refresh (docs/atlassian-behaviour.md §1):
        // the old one then stays the current one.
        let (refresh_plain, rotated) = match &answer.refresh_token {
            Some(new) => (new, true),
            None => (old, false),
        };
        let refresh_ct = token::seal(&self.cipher, id, REFRESH_TOKEN, refresh_plain)?;
        let expires_at = now + answer.expires_in.max(0);
        let scopes = (!answer.scope.trim().is_empty()).then(|| {
            answer
                .scope
                .split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>()
        });
        let mut tx = self.store.begin_write().await?;
        let before = rows::get_locked(&mut tx, self.store.backend(), id).await?;
        let issued_at = match (&before, rotated) {
            (_, true) => now,
            (Some(r), false) => r.refresh_issued_at.unwrap_or(now),
            (None, false) => now,
        };
        let stored = rows::store_refreshed(
            &mut tx,
            id,
            started_at,
            &access_ct,
            &refresh_ct,
            expires_at,
            issued_at,
            scopes.as_deref(),
            now,
        )
        .await?;
        let row = rows::get(&mut *tx, id).await?;
        if stored {
            if let Some(r) = &row {
                crate::audit::record(
                    &mut *tx,
                    crate::audit::kind::TOKEN_REFRESHED,
                    crate::audit::Subject::connection(&r.app_id, id),
                    &crate::audit::Actor::system(),
                    serde_json::json!({ "rotated": rotated }),
                )
                .await?;
            }
        }
        tx.commit().await?;
        if !stored {
            tracing::info!(connection_id = %id, "refresh result arrived after the mark was taken over; re-reading");
            return Ok(None);
        }
        self.count("success");
        tracing::info!(connection_id = %id, rotated, "refreshed access token");
        let row = row.ok_or(RefreshError::NotFound)?;
        Ok(Some(FreshToken {
            access_token: answer.access_token,
            expires_at,
            token_version: row.token_version,
            connection: Arc::new(row),
            answer: Arc::default(),
        }))
    }

    /// Release the lease (the mark stays, so the next attempt reuses the same
    /// old token) and set `next_attempt_at`. Returns the wait in seconds.
    async fn back_off(
        &self,
        id: &ConnectionId,
        started_at: i64,
        attempt: u32,
        error: &str,
    ) -> Result<u64, RefreshError> {
        let now = unix_now();
        let row = rows::get(self.store.pool(), id).await?;
        let failures = row
            .map(|r| r.refresh_attempts)
            .unwrap_or(attempt as i64)
            .clamp(1, 10) as u32;
        let wait = jitter(Duration::from_secs((2u64 << failures.min(7)).min(300)))
            .as_secs()
            .max(1);
        let mut tx = self.store.begin_write().await?;
        rows::release_after_failure(&mut tx, id, started_at, now + wait as i64, error, now).await?;
        tx.commit().await?;
        Ok(wait)
    }
}

impl Refresher {
    /// Exchange a refresh token that no row holds yet (an import,
    /// `crate::import`): the same client, retries and metrics as a marked
    /// refresh. A lost answer or a 5xx is retried with the *same* old token
    /// (inside Atlassian's reuse window), at most [`CALL_ATTEMPTS`] times; a
    /// refused grant is not retried. Nothing is stored here: the caller
    /// stores the new pair in the transaction that creates the row, and until
    /// then the caller's copy of the old token still works for the reuse
    /// window, so a crash in between loses nothing the caller cannot redo.
    pub async fn exchange_unstored(
        &self,
        refresh_token: &SecretString,
    ) -> Result<TokenResponse, OAuthError> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match self.oauth.refresh(refresh_token).await {
                Ok(answer) => {
                    self.count("success");
                    return Ok(answer);
                }
                Err(e) if e.is_transient() && attempt < CALL_ATTEMPTS => {
                    tracing::warn!(attempt, error = %e, "import refresh attempt failed; retrying with the same refresh token");
                    tokio::time::sleep(jitter(Duration::from_millis(250 * (1 << attempt)))).await;
                }
                Err(e) => {
                    self.count(match &e {
                        OAuthError::GrantRevoked { .. } => ConnectionStatus::NeedsReauth.as_str(),
                        OAuthError::Rejected { .. } => "rejected",
                        _ => "transient_error",
                    });
                    return Err(e);
                }
            }
        }
    }
}

fn check_status(row: &ConnectionRow) -> Result<(), RefreshError> {
    match row.status() {
        ConnectionStatus::Active => Ok(()),
        ConnectionStatus::NeedsReauth => Err(RefreshError::NeedsReauth),
        ConnectionStatus::Disconnected => Err(RefreshError::Disconnected),
    }
}

async fn emit_needs_reauth(
    conn: &mut sqlx::AnyConnection,
    app_id: &str,
    connection_id: &ConnectionId,
    reason: &str,
    now: i64,
) -> Result<(), RefreshError> {
    let mut payload = match rows::get(&mut *conn, connection_id).await? {
        Some(row) => serde_json::to_value(crate::connections::ConnectionView::from_row(&row))
            .unwrap_or_default(),
        None => serde_json::json!({ "id": connection_id }),
    };
    payload["reason"] = serde_json::Value::from(reason);
    crate::connections::emit_event(
        &mut *conn,
        app_id,
        connection_id,
        "connection.needs_reauth",
        payload,
        now,
    )
    .await?;
    crate::audit::record(
        conn,
        crate::audit::kind::CONNECTION_NEEDS_REAUTH,
        crate::audit::Subject::connection(app_id, connection_id),
        &crate::audit::Actor::system(),
        serde_json::json!({ "reason": reason }),
    )
    .await
    .map_err(RefreshError::from)
}
