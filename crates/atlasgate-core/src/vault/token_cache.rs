//! A tiny in-process cache of access tokens for `GET /v1/connections/{id}/token`.
//!
//! Without it every `/token` call reads the connection row (a database round
//! trip on sqlx's worker thread) and decrypts the token; the benchmark's
//! budget (≥ 50 % of `/healthz` throughput) does not allow that.
//!
//! Why serving a token from memory for up to a second is safe:
//! - Atlassian has **no token revocation endpoint**: an access token already
//!   handed out stays valid at Atlassian until it expires, whatever we do.
//! - So when *another process* disconnects a connection (or Atlassian refuses
//!   its refresh), this process notices within [`TokenCache::TTL`] at most —
//!   and what it serves meanwhile is a token the app already held and that
//!   still works anyway. Nothing leaks that the app did not have.
//! - Everything *this* process does is visible at once: a refresh stores the
//!   new token here, and disconnect, site change and `needs_reauth` drop the
//!   entry ([`TokenCache::invalidate`]).
//! - An entry is never served past `expires_at - refresh_margin`, so the cache
//!   never hands out a token the refresh rules would have replaced.
//! - Entries carry the row's `app_id`; the caller must check it against the
//!   authenticated app (another app's connection stays a 404).
//!
//! A fill races with an invalidation (a request read the row just before a
//! disconnect committed): fills carry a [`Ticket`] taken *before* the row was
//! read, and any invalidation in between voids it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::ids::ConnectionId;
use crate::vault::refresh::{unix_now, FreshToken};

/// Proof that no invalidation happened since it was taken.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

struct Entry {
    fresh: FreshToken,
    stored_at: Instant,
}

pub struct TokenCache {
    /// `refresh_margin` in seconds: entries stop being served this long
    /// before the token expires.
    margin_secs: i64,
    /// Bumped by every invalidation.
    epoch: AtomicU64,
    entries: Mutex<HashMap<ConnectionId, Entry>>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache").finish_non_exhaustive()
    }
}

impl TokenCache {
    /// How long an entry is served at most.
    pub const TTL: Duration = Duration::from_secs(1);
    /// Past this many entries, stale ones are swept on insert.
    const SWEEP_ABOVE: usize = 10_000;

    pub fn new(refresh_margin: Duration) -> TokenCache {
        TokenCache {
            margin_secs: refresh_margin.as_secs() as i64,
            epoch: AtomicU64::new(0),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ConnectionId, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn usable(&self, e: &Entry, now_unix: i64) -> bool {
        e.stored_at.elapsed() < Self::TTL && e.fresh.expires_at - self.margin_secs > now_unix
    }

    /// The cached token of a connection, if still good. The caller checks
    /// `fresh.connection.app_id`.
    pub fn get(&self, connection_id: &ConnectionId) -> Option<FreshToken> {
        let now = unix_now();
        let m = self.lock();
        m.get(connection_id)
            .filter(|e| self.usable(e, now))
            .map(|e| e.fresh.clone())
    }

    /// Take before reading the row that a later [`fill`](Self::fill) stores.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.epoch.load(Ordering::SeqCst))
    }

    /// Store a token read from the database, unless anything was invalidated
    /// since `ticket` or a newer token version is already here.
    pub fn fill(&self, ticket: Ticket, fresh: &FreshToken) {
        let mut m = self.lock();
        // Checked under the lock: `invalidate` bumps the epoch under it too.
        if self.epoch.load(Ordering::SeqCst) != ticket.0 {
            return;
        }
        self.insert(&mut m, fresh);
    }

    /// Store a token this process just obtained by refreshing (or re-read
    /// under the row lock): it replaces any older version at once.
    pub fn store_refreshed(&self, fresh: &FreshToken) {
        let mut m = self.lock();
        // Fills that read the row before this refresh must not land.
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.insert(&mut m, fresh);
    }

    fn insert(&self, m: &mut HashMap<ConnectionId, Entry>, fresh: &FreshToken) {
        if let Some(old) = m.get(&fresh.connection.id) {
            if old.fresh.token_version > fresh.token_version {
                return;
            }
        }
        if m.len() > Self::SWEEP_ABOVE {
            let now = unix_now();
            m.retain(|_, e| self.usable(e, now));
        }
        m.insert(
            fresh.connection.id.clone(),
            Entry {
                fresh: fresh.clone(),
                stored_at: Instant::now(),
            },
        );
    }

    /// Drop a connection's entry (disconnect, site change, `needs_reauth`).
    pub fn invalidate(&self, connection_id: &ConnectionId) {
        let mut m = self.lock();
        self.epoch.fetch_add(1, Ordering::SeqCst);
        m.remove(connection_id);
    }

    /// Keep the cached row's `last_used_at` current, so the once-a-minute
    /// `last_used_at` throttle keeps working for cached reads.
    pub fn note_used(&self, connection_id: &ConnectionId, at: i64) {
        if let Some(e) = self.lock().get_mut(connection_id) {
            std::sync::Arc::make_mut(&mut e.fresh.connection).last_used_at = Some(at);
        }
    }
}
