//! Keep idle connections alive (docs/design.md §4).
//!
//! An Atlassian refresh token dies after 90 days without use (docs/atlassian-behaviour.md §1). A
//! background pass refreshes every active connection whose current refresh
//! token is older than 83 days, i.e. would reach the limit within 7 days. The
//! same pass resumes refreshes whose process died mid-call (a stale refresh
//! mark), so a crash never leaves a rotated token unstored for long.

use std::sync::Arc;
use std::time::Duration;

use super::refresh::{unix_now, RefreshError, Refresher};
use crate::store::Store;

pub const INACTIVITY_LIMIT_SECS: i64 = 90 * 24 * 3600;
pub const HEADROOM_SECS: i64 = 7 * 24 * 3600;
/// How often the pass runs.
pub const INTERVAL: Duration = Duration::from_secs(15 * 60);
const BATCH: i64 = 200;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PassReport {
    pub refreshed: usize,
    pub failed: usize,
}

/// One pass over the candidates; `now` is unix seconds.
pub async fn run_once(
    store: &Store,
    refresher: &Arc<Refresher>,
    now: i64,
) -> Result<PassReport, sqlx::Error> {
    let mut report = PassReport::default();
    let mut ids = crate::store::connections::keepalive_candidates(
        store.pool(),
        now - (INACTIVITY_LIMIT_SECS - HEADROOM_SECS),
        BATCH,
    )
    .await?;
    ids.extend(crate::store::connections::stale_refresh_marks(store.pool(), now, BATCH).await?);
    ids.sort();
    ids.dedup();
    // Connect sessions and states are useless a day after they expired.
    crate::store::sessions::forget_expired(store.pool(), now - 24 * 3600).await?;
    for id in ids {
        match refresher.force_refresh(&id).await {
            Ok(_) => report.refreshed += 1,
            Err(
                RefreshError::NeedsReauth | RefreshError::Disconnected | RefreshError::NotFound,
            ) => {}
            Err(e) => {
                report.failed += 1;
                tracing::warn!(connection_id = %id, error = %e, "keep-alive refresh failed; will retry");
            }
        }
    }
    Ok(report)
}

/// Run passes forever (until the task is dropped with the server).
pub fn spawn(store: Store, refresher: Arc<Refresher>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match run_once(&store, &refresher, unix_now()).await {
                Ok(r) if r.refreshed + r.failed > 0 => {
                    tracing::info!(
                        refreshed = r.refreshed,
                        failed = r.failed,
                        "keep-alive pass"
                    )
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "keep-alive pass failed"),
            }
        }
    })
}
