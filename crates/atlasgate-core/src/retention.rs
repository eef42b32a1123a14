//! The retention pass (docs/design.md §15): finished rows older than
//! `ATLASGATE_RETENTION_DAYS` — delivered, skipped and failed events,
//! processed Jira webhook deliveries, finished connect sessions — and audit
//! records older than `ATLASGATE_AUDIT_RETENTION_DAYS` are deleted in
//! batches of [`BATCH`], each batch its own statement, so no lock is held
//! for long. Pending events and deliveries still waiting are never touched.
//! Counted by `atlasgate_retention_rows_removed_total{table}`.
//!
//! The same worker writes the finished minutes of `token.served` and the
//! connections' `last_used_at` notes every [`FLUSH_EVERY`] (see `audit`,
//! `last_used`).

use std::time::Duration;

use crate::state::Core;
use crate::store::retention::{self as rows, Trimmed};
use crate::store::StoreError;

/// Rows per DELETE statement (kept with the statements, `store/retention.rs`).
pub use crate::store::retention::BATCH;
/// How often the pass runs (and once at start).
pub const PASS_EVERY: Duration = Duration::from_secs(3600);
/// How often finished `token.served` minutes and `last_used_at` notes are written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(5);

const DAY: i64 = 86_400;

/// Rows removed by one pass, per table (tables with none are left out).
pub type Removed = Vec<(&'static str, u64)>;

/// One pass at `now`.
pub async fn run_once(core: &Core) -> Result<Removed, StoreError> {
    run_at(core, crate::store::now()).await
}

/// One pass as if it were `now` (tests age rows by moving the clock).
pub async fn run_at(core: &Core, now: i64) -> Result<Removed, StoreError> {
    let l = core.config.lifecycle;
    let mut plan: Vec<(Trimmed, i64)> = Vec::new();
    if l.retention_days > 0 {
        let cutoff = now - l.retention_days as i64 * DAY;
        for t in [
            rows::EVENTS,
            rows::JIRA_WEBHOOK_DELIVERIES,
            rows::CONNECT_SESSIONS,
        ] {
            plan.push((t, cutoff));
        }
    }
    if l.audit_retention_days > 0 {
        plan.push((rows::AUDIT, now - l.audit_retention_days as i64 * DAY));
    }
    let mut removed = Vec::new();
    for (t, cutoff) in plan {
        let mut total = 0u64;
        loop {
            let n = rows::delete_batch(core.store.pool(), t, cutoff, now, BATCH).await?;
            total += n;
            core.metrics.retention_removed(t.table, n);
            if n < BATCH as u64 {
                break;
            }
            // Let other writers in between batches.
            tokio::task::yield_now().await;
        }
        if total > 0 {
            tracing::info!(table = t.table, rows = total, "retention removed old rows");
            removed.push((t.table, total));
        }
    }
    Ok(removed)
}

/// The worker: the pass every [`PASS_EVERY`], `token.served` and
/// `last_used_at` flushes in between.
pub async fn run(core: Core) {
    let mut last_pass: Option<tokio::time::Instant> = None;
    loop {
        if last_pass.is_none_or(|t| t.elapsed() >= PASS_EVERY) {
            if let Err(e) = run_once(&core).await {
                tracing::warn!(error = %e, "retention pass failed");
            }
            last_pass = Some(tokio::time::Instant::now());
        }
        core.token_served.flush_due(&core.store).await;
        core.last_used.flush(&core.store).await;
        tokio::time::sleep(FLUSH_EVERY).await;
    }
}
