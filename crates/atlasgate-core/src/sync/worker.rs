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
    // A Confluence sync (`confluence_cql`) runs its own pass; a Jira sync the engine's.
    let outcome = super::confluence::run_pass_any(state, id).await;
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
    let ids = crate::store::syncs::claim_due(
        store,
        &state.jobs.worker_id,
        now,
        now + lease_secs(state),
        limit,
    )
    .await?;
    Ok(ids)
}
