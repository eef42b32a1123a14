//! A connection's `last_used_at` (docs/design.md §2), written off the
//! request path.
//!
//! `/token` and the proxy *note* a use here, at most once a minute per
//! connection (the row's `last_used_at`, or the token cache's copy of it,
//! says when it was last noted). The retention worker writes the notes every
//! [`crate::retention::FLUSH_EVERY`] (5 s), one batched `UPDATE` per second
//! of use and per [`connections::TOUCH_USED_CHUNK`] ids; the server writes
//! what is left at shutdown. Before this, a connection's first request of
//! the minute committed its own `UPDATE` while the caller waited: a WAL flush
//! on PostgreSQL, SQLite's one write lock (and its busy wait) shared by every
//! concurrent first request — the `/token` first-request cost that grew with
//! the table in `atlasgate-bench scale` (BENCHMARKS.md, "Scale").
//!
//! What this costs: `last_used_at` lags a use by up to one flush interval,
//! and a process that crashes loses the notes of its last interval. Nothing
//! decides anything by `last_used_at` (the keep-alive pass goes by
//! `refresh_issued_at`, the age of the refresh token, docs/design.md §4); it
//! is shown by the API, the CLI and the dashboard.
//!
//! Bound: one entry per connection noted since the last flush (at most the
//! number of connections, and only those used in the last 5 s while the
//! database answers).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use crate::ids::ConnectionId;
use crate::store::{connections, Store};

#[derive(Debug, Default)]
pub struct LastUsed {
    /// Connection id → the latest use noted (unix seconds).
    pending: Mutex<HashMap<ConnectionId, i64>>,
}

impl LastUsed {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ConnectionId, i64>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Note that `connection_id` was used at `at`.
    pub fn note(&self, connection_id: &ConnectionId, at: i64) {
        let mut pending = self.lock();
        match pending.get_mut(connection_id) {
            Some(t) => *t = (*t).max(at),
            None => {
                pending.insert(connection_id.clone(), at);
            }
        }
    }

    /// Notes not yet written.
    pub fn pending(&self) -> usize {
        self.lock().len()
    }

    /// Write every note; how many rows changed. On a database error the
    /// notes not written are kept for the next flush (logged).
    pub async fn flush(&self, store: &Store) -> u64 {
        let taken = std::mem::take(&mut *self.lock());
        let mut by_second: BTreeMap<i64, Vec<ConnectionId>> = BTreeMap::new();
        for (id, at) in taken {
            by_second.entry(at).or_default().push(id);
        }
        let mut changed = 0;
        let mut seconds = by_second.into_iter();
        while let Some((at, ids)) = seconds.next() {
            match connections::touch_used(store.pool(), &ids, at).await {
                Ok(n) => changed += n,
                Err(e) => {
                    tracing::warn!(error = %e, "could not record connection use; will retry");
                    for (at, ids) in std::iter::once((at, ids)).chain(seconds.by_ref()) {
                        for id in &ids {
                            self.note(id, at);
                        }
                    }
                }
            }
        }
        changed
    }
}
