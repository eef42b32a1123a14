//! The `AuthenticatedApp` extractor: `Authorization: Bearer agk_…`.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use url::Url;

use super::types::API_KEY_PREFIX;
use super::ReturnOrigin;
use crate::error::ApiError;
use crate::state::AppState;

/// The app making the request. Every app-API handler takes one; queries then
/// filter by `id`, so one app never sees another's objects.
#[derive(Debug, Clone)]
pub struct AuthenticatedApp {
    pub id: String,
    /// Which of the app's keys (`app_keys.id`) made the request.
    pub key_id: String,
    pub name: String,
    pub return_origins: Vec<ReturnOrigin>,
    pub webhook_url: Option<Url>,
}

/// The bearer token of a request, if it has one.
pub fn bearer(parts: &Parts) -> Option<&str> {
    let v = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl FromRequestParts<AppState> for AuthenticatedApp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = bearer(parts).ok_or(ApiError::Unauthorized(
            "missing `Authorization: Bearer agk_…` header",
        ))?;
        if !key.starts_with(API_KEY_PREFIX) {
            return Err(ApiError::Unauthorized(
                "the bearer token is not an app API key",
            ));
        }
        let hash = super::types::hash_key(key);
        let now = crate::store::now();
        if let Some((app, last_used)) = state.apps_cache.get(&hash) {
            touch_key(state, &hash, &app.key_id, last_used, now).await;
            return Ok(app);
        }
        let keyed = super::authenticate(&state.store, key)
            .await?
            .ok_or(ApiError::Unauthorized("unknown API key"))?;
        let app = AuthenticatedApp {
            id: keyed.app.id,
            key_id: keyed.key_id,
            name: keyed.app.name,
            return_origins: keyed.app.return_origins,
            webhook_url: keyed.app.webhook_url,
        };
        state
            .apps_cache
            .put(hash.clone(), app.clone(), keyed.key_last_used_at);
        touch_key(state, &hash, &app.key_id, keyed.key_last_used_at, now).await;
        Ok(app)
    }
}

/// `app_keys.last_used_at` is written at most once a minute per key and
/// process: the cache remembers the last write.
const TOUCH_KEY_EVERY_SECS: i64 = 60;

async fn touch_key(state: &AppState, hash: &str, key_id: &str, last_used: Option<i64>, now: i64) {
    if last_used.is_some_and(|t| now - t < TOUCH_KEY_EVERY_SECS) {
        return;
    }
    // Noted first, so concurrent requests of the same key do not all write.
    state.apps_cache.note_used(hash, now);
    if let Err(e) = crate::store::app_keys::touch(state.store.pool(), key_id, now).await {
        tracing::warn!(error = %e, "could not record an app key's use");
    }
}

/// Keys that authenticated recently, by their SHA-256 hash: a database read
/// per request was most of the cost of hot routes (`/token`, the proxy).
///
/// One per [`AppState`] (field `apps_cache`), so two `Application`s in one
/// process (tests, embedding) never share entries. Misses (unknown keys)
/// are not cached, so a new key works at once. Revoking a key
/// ([`AppKeyCache::invalidate_key`]), updating or deleting an app
/// ([`AppKeyCache::invalidate_app`]) take effect at once on the process
/// that did it; every other process re-reads a key after
/// [`AppKeyCache::TTL`], so a revoked key answers 401 everywhere within
/// 10 s (docs/design.md §13).
#[derive(Debug, Default)]
pub struct AppKeyCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, CacheEntry>>,
}

#[derive(Debug)]
struct CacheEntry {
    at: std::time::Instant,
    app: AuthenticatedApp,
    /// The key's `last_used_at` as last read or written here.
    last_used: Option<i64>,
}

impl AppKeyCache {
    pub const TTL: std::time::Duration = std::time::Duration::from_secs(10);
    /// Past this many entries, expired ones are swept on insert.
    const SWEEP_ABOVE: usize = 10_000;

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, CacheEntry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The app of a key hash and the key's last recorded use, while fresh.
    pub fn get(&self, hash: &str) -> Option<(AuthenticatedApp, Option<i64>)> {
        self.lock()
            .get(hash)
            .filter(|e| e.at.elapsed() < Self::TTL)
            .map(|e| (e.app.clone(), e.last_used))
    }

    pub fn put(&self, hash: String, app: AuthenticatedApp, last_used: Option<i64>) {
        let mut m = self.lock();
        if m.len() > Self::SWEEP_ABOVE {
            m.retain(|_, e| e.at.elapsed() < Self::TTL);
        }
        m.insert(
            hash,
            CacheEntry {
                at: std::time::Instant::now(),
                app,
                last_used,
            },
        );
    }

    fn note_used(&self, hash: &str, now: i64) {
        if let Some(e) = self.lock().get_mut(hash) {
            e.last_used = Some(now);
        }
    }

    /// Forget every key of an app (app update or deletion).
    pub fn invalidate_app(&self, app_id: &str) {
        self.lock().retain(|_, e| e.app.id != app_id);
    }

    /// Forget one key (revocation).
    pub fn invalidate_key(&self, hash: &str) {
        self.lock().remove(hash);
    }
}
