//! The ordered ids of running `/search/jql` queries, so that page N of a
//! query costs O(page size) instead of re-filtering and re-sorting the whole
//! site (`docs/design.md §17`: real Jira's cost per page does not grow with
//! the offset, and a baseline that did would flatter any comparison).
//!
//! The first page of a query that has more pages evaluates the JQL once,
//! orders only as far as its page needs (as before), and keeps every hit's
//! id here under a snapshot id carried in the page token: the served prefix
//! in order, the rest unordered. The second page orders that rest once;
//! later pages slice the kept ids. A client that never follows the token
//! (keyset paging, as atlasgate's sync does) pays only an O(n) copy.
//! *Guess*, as real Jira's paging behaves like a snapshot: a write during
//! paging does not change the membership of later pages, nor the order of
//! what was already ordered; an issue deleted meanwhile is skipped (its page
//! comes back shorter). A token whose snapshot was evicted falls back to
//! evaluating the query again (counted as a miss).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::model::Timestamp;

/// At most this many queries are kept…
pub const MAX_ENTRIES: usize = 256;
/// …holding at most this many ids in all (8 bytes each: 32 MB).
pub const MAX_IDS: usize = 4_000_000;
/// Page tokens expire after 7 days (docs/atlassian-behaviour.md §3); so do snapshots.
pub const MAX_AGE_SECS: i64 = 7 * 24 * 3600;

#[derive(Debug)]
struct Entry {
    /// The query and caller the snapshot belongs to (the token's fingerprint).
    fingerprint: String,
    ids: Arc<Vec<u64>>,
    /// `ids[..sorted]` is in the query's order; the rest is not yet.
    sorted: usize,
    created: Timestamp,
}

#[derive(Debug, Default)]
pub struct PageCache {
    entries: HashMap<u64, Entry>,
    /// Snapshot ids, oldest first (eviction order).
    order: VecDeque<u64>,
    total_ids: usize,
    next_id: u64,
}

impl PageCache {
    /// Keep `ids` (the first `sorted` in order) for the query `fingerprint`;
    /// returns the snapshot id.
    pub fn insert(
        &mut self,
        fingerprint: &str,
        ids: Vec<u64>,
        sorted: usize,
        now: Timestamp,
    ) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.total_ids += ids.len();
        self.entries.insert(
            id,
            Entry {
                fingerprint: fingerprint.to_string(),
                ids: Arc::new(ids),
                sorted,
                created: now,
            },
        );
        self.order.push_back(id);
        self.evict(now);
        id
    }

    /// The ids kept for snapshot `id` and how many of them are ordered, if
    /// it belongs to `fingerprint` and is still alive.
    pub fn get(
        &self,
        id: u64,
        fingerprint: &str,
        now: Timestamp,
    ) -> Option<(Arc<Vec<u64>>, usize)> {
        self.entries
            .get(&id)
            .filter(|e| e.fingerprint == fingerprint)
            .filter(|e| (now - e.created).num_seconds() <= MAX_AGE_SECS)
            .map(|e| (e.ids.clone(), e.sorted))
    }

    /// Replace a snapshot's ids with the fully ordered list (same ids).
    pub fn set_ordered(&mut self, id: u64, ids: Vec<u64>) {
        if let Some(e) = self.entries.get_mut(&id) {
            e.sorted = ids.len();
            e.ids = Arc::new(ids);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drop expired snapshots, then the oldest ones until within bounds (the
    /// newest is always kept, however large).
    fn evict(&mut self, now: Timestamp) {
        while let Some(&oldest) = self.order.front() {
            let expired = self
                .entries
                .get(&oldest)
                .is_none_or(|e| (now - e.created).num_seconds() > MAX_AGE_SECS);
            let over = self.order.len() > 1
                && (self.entries.len() > MAX_ENTRIES || self.total_ids > MAX_IDS);
            if !expired && !over {
                break;
            }
            self.order.pop_front();
            if let Some(e) = self.entries.remove(&oldest) {
                self.total_ids -= e.ids.len();
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bounded_by_entries_and_fingerprint_bound() {
        let now = chrono::Utc::now();
        let mut c = PageCache::default();
        let first = c.insert("q", vec![1, 2, 3], 1, now);
        let (ids, sorted) = c.get(first, "q", now).unwrap();
        assert_eq!((ids.as_slice(), sorted), (&[1, 2, 3][..], 1));
        c.set_ordered(first, vec![1, 3, 2]);
        assert_eq!(c.get(first, "q", now).unwrap().1, 3);
        assert!(c.get(first, "other", now).is_none());
        for _ in 0..MAX_ENTRIES {
            c.insert("q", vec![1], 1, now);
        }
        assert_eq!(c.len(), MAX_ENTRIES);
        assert!(c.get(first, "q", now).is_none(), "oldest evicted");
        let late = now + chrono::Duration::seconds(MAX_AGE_SECS + 1);
        let id = c.insert("q", vec![9], 1, now);
        assert!(c.get(id, "q", late).is_none(), "expired with the token");
    }
}
