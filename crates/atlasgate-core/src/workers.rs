//! The one place the background workers are started: event delivery, sync
//! passes and the Jira webhook inbox. (Kept out of `jobs.rs`, whose knobs and
//! counters every worker reads, so that no worker module imports its starter.)

use tokio::task::JoinHandle;

use crate::state::Core;

/// The background workers of one process; aborted on drop.
pub struct Workers(Vec<JoinHandle<()>>);

impl Drop for Workers {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

/// Start the event delivery, sync and webhook-inbox workers.
pub fn spawn_workers(state: Core) -> Workers {
    Workers(vec![
        tokio::spawn(crate::events::worker::run(state.clone())),
        tokio::spawn(crate::sync::worker::run(state.clone())),
        tokio::spawn(crate::webhooks::inbox_worker(state.clone())),
        tokio::spawn(crate::atlassian::budget::run(state.clone())),
        // Retention, and the audit trail's `token.served` flushes.
        tokio::spawn(crate::retention::run(state)),
    ])
}
