//! Claims due syncs (a lease in the row, taken under `FOR UPDATE SKIP
//! LOCKED` / `BEGIN IMMEDIATE`) and runs their passes, a few at a time per
//! process. A process that dies mid-pass loses its lease after
//! `jobs.tuning.sync_lease_s`; another resumes the pass from
//! its checkpoints.

use std::sync::Arc;

use tokio::sync::Semaphore;

use tokio::task::JoinSet;

use super::engine::{self, lease_secs};
use crate::jobs::{nap, Tuning};
use crate::state::Core;
use crate::store::{now, StoreError};

/// Passes one process runs at once (each may stream several partitions).
const MAX_PASSES: usize = 4;

pub async fn run(state: Core) {
    let slots = Arc::new(Semaphore::new(MAX_PASSES));
    // Owned by this loop: when the workers are stopped, running passes stop
    // too (their checkpoints stay; the lease runs out and anyone resumes).
    let mut running: JoinSet<()> = JoinSet::new();
    loop {
        while running.try_join_next().is_some() {}
        let free = slots.available_permits();
        if free > 0 {
            match claim(&state, free as i64).await {
                Ok(ids) => {
                    for id in ids {
                        let Ok(permit) = slots.clone().acquire_owned().await else {
                            return;
                        };
                        let st = state.clone();
                        running.spawn(async move {
                            run_claimed(&st, &id).await;
                            drop(permit);
                        });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "claiming syncs failed"),
            }
        }
        let poll = Tuning::get(&state.jobs.tuning.sync_poll_ms);
        nap(&state.jobs.sync_wakeup, poll).await;
    }
}

async fn run_claimed(state: &Core, id: &str) {
    let beat = engine::heartbeat(state.clone(), id.to_string());
    let outcome = engine::run_pass(state, id).await;
    drop(beat);
    if let Err(e) = outcome {
        if let Err(e2) = engine::fail_pass(state, id, &e).await {
            tracing::warn!(sync_id = id, error = %e2, "could not record a failed pass");
        }
    } else {
        // More work may be due already (`run` asked during the pass).
        state.jobs.sync_wakeup.notify_one();
    }
}

/// Take up to `limit` due syncs for this process.
pub async fn claim(state: &Core, limit: i64) -> Result<Vec<String>, StoreError> {
    let store = &state.store;
    let now = now();
    let mut tx = store.begin_write().await?;
    let ids: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT id FROM syncs WHERE state <> 'stopped' AND next_run_at <= $1 \
         AND (locked_until IS NULL OR locked_until < $1) ORDER BY next_run_at, id LIMIT $2{}",
        store.for_update_skip_locked()
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    for id in &ids {
        sqlx::query(
            "UPDATE syncs SET locked_by = $1, locked_until = $2, state = 'running', run_requested = 0, \
             updated_at = $3 WHERE id = $4",
        )
        .bind(&state.jobs.worker_id)
        .bind(now + lease_secs(state))
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(ids)
}
