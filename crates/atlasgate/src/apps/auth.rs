//! The `AuthenticatedApp` extractor: `Authorization: Bearer agk_…`.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use url::Url;

use super::types::API_KEY_PREFIX;
use super::ReturnOrigin;
use crate::error::ApiError;
use crate::state::AppState;

/// The app making the request. Every app-API handler takes one; queries then
/// filter by `id`, so one app never sees another's objects. Shared with the
/// key cache (a cached key hands out the same `Arc`, no copy), read through
/// `Deref` (`app.id`, `app.key_id`, …).
#[derive(Debug, Clone)]
pub struct AuthenticatedApp(Arc<AppIdentity>);

/// What [`AuthenticatedApp`] holds.
#[derive(Debug)]
pub struct AppIdentity {
    pub id: String,
    /// Which of the app's keys (`app_keys.id`) made the request.
    pub key_id: String,
    pub name: String,
    pub return_origins: Vec<ReturnOrigin>,
    pub webhook_url: Option<Url>,
}

impl std::ops::Deref for AuthenticatedApp {
    type Target = AppIdentity;

    fn deref(&self) -> &AppIdentity {
        &self.0
    }
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
        let print = state.apps_cache.fingerprint(key);
        let now = crate::store::now();
        if let Some((app, last_used)) = state.apps_cache.get(print) {
            touch_key(state, print, &app.key_id, last_used, now).await;
            return Ok(app);
        }
        let ticket = state.apps_cache.ticket();
        let keyed = super::authenticate(&state.store, key)
            .await?
            .ok_or(ApiError::Unauthorized("unknown API key"))?;
        let app = AuthenticatedApp(Arc::new(AppIdentity {
            id: keyed.app.id,
            key_id: keyed.key_id,
            name: keyed.app.name,
            return_origins: keyed.app.return_origins,
            webhook_url: keyed.app.webhook_url,
        }));
        state
            .apps_cache
            .put(ticket, print, app.clone(), keyed.key_last_used_at);
        touch_key(state, print, &app.key_id, keyed.key_last_used_at, now).await;
        Ok(app)
    }
}

/// `app_keys.last_used_at` is written at most once a minute per key and
/// process: the cache remembers the last write.
const TOUCH_KEY_EVERY_SECS: i64 = 60;

async fn touch_key(
    state: &AppState,
    print: KeyPrint,
    key_id: &str,
    last_used: Option<i64>,
    now: i64,
) {
    if last_used.is_some_and(|t| now - t < TOUCH_KEY_EVERY_SECS) {
        return;
    }
    // Noted first, so concurrent requests of the same key do not all write.
    state.apps_cache.note_used(print, now);
    if let Err(e) = crate::store::app_keys::touch(state.store.pool(), key_id, now).await {
        tracing::warn!(error = %e, "could not record an app key's use");
    }
}

/// A presented key's fingerprint in the [`AppKeyCache`]: 128 bits of
/// SipHash under the cache's own random key, which nobody outside the
/// process knows. Not the SHA-256 the database stores: that costs ≈ 7,000
/// instructions a call, the largest single cost of a cached `/token`
/// (BENCHMARKS.md), this about 300. Keys themselves are 256-bit random,
/// so a fingerprint names one key as surely as its hash does, and a guessed
/// key matches a cached fingerprint no more often than it matches a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyPrint(u64, u64);

/// Proof that no invalidation happened since it was taken.
#[derive(Debug, Clone, Copy)]
pub struct KeyTicket(u64);

/// Keys that authenticated recently, by their [`KeyPrint`]: a database read
/// per request was most of the cost of hot routes (`/token`, the proxy).
///
/// One per [`AppState`] (field `apps_cache`), so two `Application`s in one
/// process (tests, embedding) never share entries. Holds no key, neither in
/// clear nor as the stored hash. Misses (unknown keys) are not cached, so a
/// new key works at once. Revoking a key ([`AppKeyCache::invalidate_key`]),
/// updating or deleting an app ([`AppKeyCache::invalidate_app`]) take effect
/// at once on the process that did it; every other process re-reads a key
/// after [`AppKeyCache::TTL`], so a revoked key answers 401 everywhere
/// within 10 s (docs/design.md §13). A fill carries a [`KeyTicket`] taken
/// before the database read, so a read that raced a revocation on this
/// process is not cached. Bounded: past
/// [`AppKeyCache::MAX_ENTRIES`] the expired entries are swept, and if none
/// is, the oldest half goes.
#[derive(Debug, Default)]
pub struct AppKeyCache {
    /// The SipHash key of [`KeyPrint`]s, drawn at random per cache.
    seed: RandomState,
    /// Bumped by every invalidation, under the lock.
    generation: AtomicU64,
    entries: Mutex<HashMap<KeyPrint, CacheEntry>>,
}

#[derive(Debug)]
struct CacheEntry {
    at: Instant,
    app: AuthenticatedApp,
    /// The key's `last_used_at` as last read or written here.
    last_used: Option<i64>,
}

impl AppKeyCache {
    pub const TTL: Duration = Duration::from_secs(10);
    /// At most this many keys are held.
    pub const MAX_ENTRIES: usize = 10_000;

    fn lock(&self) -> MutexGuard<'_, HashMap<KeyPrint, CacheEntry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The key's fingerprint: two SipHash values of the key, told apart by
    /// a trailing byte (one keyed function on two inputs, not two keys
    /// `RandomState` derives from each other).
    pub fn fingerprint(&self, key: &str) -> KeyPrint {
        KeyPrint(
            self.seed.hash_one((key, 0u8)),
            self.seed.hash_one((key, 1u8)),
        )
    }

    /// The app of a key and the key's last recorded use, while fresh.
    pub fn get(&self, print: KeyPrint) -> Option<(AuthenticatedApp, Option<i64>)> {
        self.lock()
            .get(&print)
            .filter(|e| e.at.elapsed() < Self::TTL)
            .map(|e| (e.app.clone(), e.last_used))
    }

    /// Take before reading the key that a later [`put`](Self::put) stores.
    pub fn ticket(&self) -> KeyTicket {
        KeyTicket(self.generation.load(Ordering::SeqCst))
    }

    /// Store a key read from the database, unless anything was invalidated
    /// since `ticket`.
    pub fn put(
        &self,
        ticket: KeyTicket,
        print: KeyPrint,
        app: AuthenticatedApp,
        last_used: Option<i64>,
    ) {
        let mut m = self.lock();
        if self.generation.load(Ordering::SeqCst) != ticket.0 {
            return;
        }
        if m.len() >= Self::MAX_ENTRIES && !m.contains_key(&print) {
            m.retain(|_, e| e.at.elapsed() < Self::TTL);
            if m.len() >= Self::MAX_ENTRIES {
                // All fresh (10,000 keys within 10 s): the older half goes,
                // to be read from the database again on next use.
                let mut ages: Vec<Instant> = m.values().map(|e| e.at).collect();
                let (_, median, _) = ages.select_nth_unstable(m.len() / 2);
                let median = *median;
                m.retain(|_, e| e.at > median);
            }
        }
        m.insert(
            print,
            CacheEntry {
                at: Instant::now(),
                app,
                last_used,
            },
        );
    }

    fn note_used(&self, print: KeyPrint, now: i64) {
        if let Some(e) = self.lock().get_mut(&print) {
            e.last_used = Some(now);
        }
    }

    /// Forget every key of an app (app update or deletion).
    pub fn invalidate_app(&self, app_id: &str) {
        let mut m = self.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        m.retain(|_, e| e.app.id != app_id);
    }

    /// Forget one key (revocation), by its `app_keys.id`.
    pub fn invalidate_key(&self, key_id: &str) {
        let mut m = self.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        m.retain(|_, e| e.app.key_id != key_id);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn app(id: &str, key_id: &str) -> AuthenticatedApp {
        AuthenticatedApp(Arc::new(AppIdentity {
            id: id.into(),
            key_id: key_id.into(),
            name: "test".into(),
            return_origins: Vec::new(),
            webhook_url: None,
        }))
    }

    #[test]
    fn fingerprints_tell_keys_apart_and_differ_per_cache() {
        let cache = AppKeyCache::default();
        let a = "agk_0000000000000000000000000000000000000000000000000000000000000000";
        let b = "agk_0000000000000000000000000000000000000000000000000000000000000001";
        assert_eq!(cache.fingerprint(a), cache.fingerprint(a));
        assert_ne!(cache.fingerprint(a), cache.fingerprint(b));
        let p = cache.fingerprint(a);
        assert_ne!(p.0, p.1, "the two halves are different functions");
        assert_ne!(AppKeyCache::default().fingerprint(a), p);
    }

    #[test]
    fn a_revoked_key_is_forgotten_at_once_and_others_stay() {
        let cache = AppKeyCache::default();
        let (one, two) = (cache.fingerprint("agk_one"), cache.fingerprint("agk_two"));
        cache.put(cache.ticket(), one, app("app_1", "key_1"), None);
        cache.put(cache.ticket(), two, app("app_1", "key_2"), None);
        assert_eq!(cache.get(one).unwrap().0.key_id, "key_1");
        cache.invalidate_key("key_1");
        assert!(cache.get(one).is_none());
        assert_eq!(cache.get(two).unwrap().0.key_id, "key_2");
        cache.invalidate_app("app_1");
        assert!(cache.get(two).is_none());
    }

    #[test]
    fn a_read_that_raced_a_revocation_is_not_cached() {
        let cache = AppKeyCache::default();
        let print = cache.fingerprint("agk_one");
        // The request read the key, then the key was revoked here.
        let ticket = cache.ticket();
        cache.invalidate_key("key_1");
        cache.put(ticket, print, app("app_1", "key_1"), None);
        assert!(cache.get(print).is_none());
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = AppKeyCache::default();
        for i in 0..AppKeyCache::MAX_ENTRIES + 10 {
            let key = format!("agk_{i}");
            cache.put(cache.ticket(), cache.fingerprint(&key), app("app_1", &key), None);
            assert!(cache.len() <= AppKeyCache::MAX_ENTRIES);
        }
        // The newest key is still there.
        let last = format!("agk_{}", AppKeyCache::MAX_ENTRIES + 9);
        assert!(cache.get(cache.fingerprint(&last)).is_some());
    }
}
