//! Events out (docs/design.md §6): the outbox (`events`, written in the same
//! transaction as the change it announces), its delivery worker and Standard
//! Webhooks signing. `GET /v1/events` is the edge's.

pub mod signing;
pub mod worker;

use crate::ids::ConnectionId;
use crate::state::Core;
use crate::store::events::{self as rows, NewEvent};
use crate::store::StoreError;

pub use signing::{sign, verify, SigningError};

/// Every event type atlasgate emits.
pub const EVENT_TYPES: &[&str] = &[
    "connection.created",
    "connection.needs_reauth",
    "connection.deleted",
    "issue.created",
    "issue.updated",
    "issue.deleted",
    "sync.completed",
    "sync.failed",
];

/// Record an event inside the caller's transaction. Wake the worker with
/// [`wake`] after committing.
pub async fn record(
    conn: &mut sqlx::AnyConnection,
    app_id: &str,
    connection_id: Option<&ConnectionId>,
    event_type: &str,
    payload: serde_json::Value,
) -> Result<String, StoreError> {
    rows::insert(
        conn,
        NewEvent {
            app_id,
            connection_id,
            event_type,
            payload,
        },
    )
    .await
}

/// Tell this process's delivery worker that events are waiting.
pub fn wake(state: &Core) {
    state.jobs.events_wakeup.notify_one();
}
