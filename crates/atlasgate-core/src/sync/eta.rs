//! `eta_s` of a sync (docs/design.md §17): how long the pass in progress
//! still needs, from the issues it has left and the points budget.
//!
//! When a pass starts, the engine asks Jira how many issues the JQL matches
//! (`POST search/approximate-count`, 1 point; a background call) and keeps
//! it in `sync_estimates`. The remaining issues cost about one point each
//! plus a page's base point per [`PAGE`] issues; [`Budget::eta_secs`]
//! turns points into seconds from the background share left in this window
//! (later windows each give a full share) and the rate background points
//! are being spent at.

use http::Method;
use serde_json::{json, Value};

use crate::atlassian::ApiRequest;
use crate::state::Core;
use crate::store::{now, points};
use crate::sync::store::{PassKind, SyncRow};

/// Issues per `search/jql` page the estimate assumes.
pub const PAGE: i64 = 100;

/// Points an unknown background rate is assumed to spend per second: a
/// page of [`PAGE`] issues at a tenth of the published 100/s search rate.
const FALLBACK_POINTS_PER_S: f64 = 10.0 * (PAGE as f64 + 1.0);

/// Record how many issues the pass that just started expects. A failure
/// only leaves `eta_s` empty.
pub async fn record_expected(state: &Core, sync: &SyncRow) {
    if sync.pass_kind != Some(PassKind::Full) {
        return;
    }
    let (filter, _) = super::jql::split_order_by(&sync.jql);
    let req = ApiRequest::jira(Method::POST, "rest/api/3/search/approximate-count")
        .json(&json!({ "jql": filter }));
    let count = match state
        .atlassian
        .json::<Value>(None, &sync.connection_id, req)
        .await
    {
        Ok((v, _)) => v["count"].as_i64(),
        Err(e) => {
            tracing::debug!(sync_id = %sync.id, error = %e, "approximate count failed; no eta");
            None
        }
    };
    if let Some(n) = count {
        if let Err(e) = points::set_expected(state.store.pool(), &sync.id, n, now()).await {
            tracing::debug!(error = %e, "could not store the expected issue count");
        }
    }
}

/// Seconds the full pass in progress still needs; `None` when none runs
/// or its size is unknown. `stored` = issues the pass stored so far.
pub async fn eta_secs(state: &Core, sync: &SyncRow, stored: i64) -> Option<u64> {
    if sync.pass_kind != Some(PassKind::Full) {
        return None;
    }
    let expected = points::expected(state.store.pool(), &sync.id)
        .await
        .ok()
        .flatten()?;
    let left = (expected - stored).max(0);
    if left == 0 {
        return Some(0);
    }
    let cost = left + (left + PAGE - 1) / PAGE;
    Some(
        state
            .atlassian
            .budget()
            .eta_secs(&sync.cloud_id, cost, FALLBACK_POINTS_PER_S),
    )
}
