//! Background jobs shared by sync passes, Jira webhook application and event
//! deliveries: the knobs tests turn, per-process counters.
//! The workers are started in `workers.rs`.
//!
//! Claiming is always "lease in the row": a job is taken by writing
//! `locked_by` / `locked_until` inside a write transaction that first selected
//! it `FOR UPDATE SKIP LOCKED` (PostgreSQL) or under `BEGIN IMMEDIATE`
//! (SQLite, one writer at a time). So any number of atlasgate processes can
//! share one database, and a crashed process's jobs come back when the lease
//! runs out.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, SemaphorePermit};

/// Knobs of the background workers. Atomics so a test can turn them on a
/// running application (`app.state.jobs.tuning…`).
#[derive(Debug)]
pub struct Tuning {
    /// How often the event worker looks for due deliveries (ms).
    pub events_poll_ms: AtomicU64,
    /// First retry delay of a failed delivery (ms); doubled per attempt.
    pub events_backoff_base_ms: AtomicU64,
    /// Longest delay between two attempts (ms).
    pub events_backoff_max_ms: AtomicU64,
    /// A delivery still failing this long after the event was created is
    /// marked `failed` (seconds; at least a day in production).
    pub events_give_up_after_s: AtomicU64,
    /// How often the sync worker looks for due syncs (ms).
    pub sync_poll_ms: AtomicU64,
    /// Issues per `/search/jql` page (Jira caps full issues at 100).
    pub sync_page_size: AtomicU64,
    /// How many project partitions of one full pass run at once.
    pub sync_partition_concurrency: AtomicU64,
    /// Overlap subtracted from the incremental cursor (seconds).
    pub sync_overlap_s: AtomicU64,
    /// How often an incremental pass also looks for deleted issues (seconds).
    pub sync_reconcile_s: AtomicU64,
    /// A claim on a sync lasts this long unless renewed (seconds); a process
    /// that dies mid-pass hands the pass over after it.
    pub sync_lease_s: AtomicU64,
    /// A Jira webhook delivery waits this long before its issue is re-read,
    /// so a burst of deliveries for one issue is answered by one read (ms).
    pub webhook_hint_delay_ms: AtomicU64,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            events_poll_ms: AtomicU64::new(1000),
            events_backoff_base_ms: AtomicU64::new(5_000),
            events_backoff_max_ms: AtomicU64::new(3_600_000),
            events_give_up_after_s: AtomicU64::new(26 * 3600),
            sync_poll_ms: AtomicU64::new(1000),
            sync_page_size: AtomicU64::new(100),
            sync_partition_concurrency: AtomicU64::new(16),
            sync_overlap_s: AtomicU64::new(120),
            sync_reconcile_s: AtomicU64::new(3600),
            sync_lease_s: AtomicU64::new(120),
            webhook_hint_delay_ms: AtomicU64::new(250),
        }
    }
}

impl Tuning {
    pub fn get(v: &AtomicU64) -> u64 {
        v.load(Ordering::Relaxed)
    }

    pub fn set(v: &AtomicU64, x: u64) {
        v.store(x, Ordering::Relaxed)
    }
}

/// What this process did (tests prove "no double work" with them).
#[derive(Debug, Default)]
pub struct Counters {
    pub sync_passes: AtomicU64,
    pub sync_pages: AtomicU64,
    pub events_delivered: AtomicU64,
    pub event_attempts: AtomicU64,
    pub jira_webhooks_applied: AtomicU64,
}

impl Counters {
    pub fn bump(v: &AtomicU64) {
        v.fetch_add(1, Ordering::Relaxed);
    }
    pub fn read(v: &AtomicU64) -> u64 {
        v.load(Ordering::Relaxed)
    }
}

/// Per-process job state, shared through `Core::jobs`.
#[derive(Debug)]
pub struct Jobs {
    /// Names this process in `locked_by` columns.
    pub worker_id: String,
    pub tuning: Tuning,
    pub counters: Counters,
    /// Wakes the event worker (an event was recorded).
    pub events_wakeup: Notify,
    /// Wakes the sync worker (a sync was created or asked to run).
    pub sync_wakeup: Notify,
    /// Sync page writes wait here rather than in the database pool: see
    /// [`Jobs::sync_write_turn`].
    sync_writes: Semaphore,
}

/// Sync page writes under way at once on PostgreSQL (SQLite: one).
pub const SYNC_WRITERS: u32 = 4;

impl Jobs {
    /// A turn to write a page of synced items. Concurrent partitions fetch
    /// pages in parallel but write them a few at a time: a transaction
    /// waiting for SQLite's write lock holds a pool connection, and sixteen
    /// waiting partitions would hold all of them, so an interactive call's
    /// read (or its budget lease) waited behind the whole backfill. SQLite
    /// has one writer anyway (`one_writer`: the store is SQLite); PostgreSQL
    /// gets [`SYNC_WRITERS`]. (The caller says which, so this module needs
    /// nothing of `store`.)
    pub async fn sync_write_turn(&self, one_writer: bool) -> Option<SemaphorePermit<'_>> {
        let permits = if one_writer { SYNC_WRITERS } else { 1 };
        // (Never closed; `None` would only mean no queueing.)
        self.sync_writes.acquire_many(permits).await.ok()
    }
}

impl Default for Jobs {
    fn default() -> Self {
        Jobs {
            worker_id: format!("w_{}", uuid::Uuid::new_v4().simple()),
            tuning: Tuning::default(),
            counters: Counters::default(),
            events_wakeup: Notify::new(),
            sync_wakeup: Notify::new(),
            sync_writes: Semaphore::new(SYNC_WRITERS as usize),
        }
    }
}

/// Sleep `ms`, or less if `notify` fires.
pub async fn nap(notify: &Notify, ms: u64) {
    let _ = tokio::time::timeout(Duration::from_millis(ms.max(10)), notify.notified()).await;
}

pub type SharedJobs = Arc<Jobs>;
