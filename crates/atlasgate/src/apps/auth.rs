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
        if let Some(app) = state.apps_cache.get(&hash) {
            return Ok(app);
        }
        let app = super::authenticate(&state.store, key)
            .await?
            .ok_or(ApiError::Unauthorized("unknown API key"))?;
        let app = AuthenticatedApp {
            id: app.id,
            name: app.name,
            return_origins: app.return_origins,
            webhook_url: app.webhook_url,
        };
        state.apps_cache.put(hash, app.clone());
        Ok(app)
    }
}

/// Keys that authenticated recently, by their SHA-256 hash: a database read
/// per request was most of the cost of hot routes (`/token`, the proxy).
///
/// One per [`AppState`] (field `apps_cache`), so two `Application`s in one
/// process (tests, embedding) never share entries. Apps are not changed or
/// deleted once created today, and a hash names one random 256-bit key, so a
/// short-lived entry is never wrong; misses (unknown keys) are not cached, so
/// a new key works at once. **If app deletion or key rotation is ever added,
/// it must call [`AppKeyCache::invalidate_app`]** (and other processes then
/// see the change within [`AppKeyCache::TTL`]).
#[derive(Debug, Default)]
pub struct AppKeyCache {
    entries:
        std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, AuthenticatedApp)>>,
}

impl AppKeyCache {
    pub const TTL: std::time::Duration = std::time::Duration::from_secs(10);
    /// Past this many entries, expired ones are swept on insert.
    const SWEEP_ABOVE: usize = 10_000;

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<
        '_,
        std::collections::HashMap<String, (std::time::Instant, AuthenticatedApp)>,
    > {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, hash: &str) -> Option<AuthenticatedApp> {
        self.lock()
            .get(hash)
            .filter(|(at, _)| at.elapsed() < Self::TTL)
            .map(|(_, app)| app.clone())
    }

    pub fn put(&self, hash: String, app: AuthenticatedApp) {
        let mut m = self.lock();
        if m.len() > Self::SWEEP_ABOVE {
            m.retain(|_, (at, _)| at.elapsed() < Self::TTL);
        }
        m.insert(hash, (std::time::Instant::now(), app));
    }

    /// Forget every key of an app (for app deletion / key rotation).
    pub fn invalidate_app(&self, app_id: &str) {
        self.lock().retain(|_, (_, app)| app.id != app_id);
    }
}
