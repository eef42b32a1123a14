//! Per-request facts shared by the server's layers and the error module
//! (kept apart from `server.rs` so that `error.rs` does not import the server).

use std::time::Duration;

use axum::http::HeaderName;

/// Request bodies above this are refused with a 413 problem (proxy excepted).
pub const BODY_LIMIT_BYTES: usize = 1024 * 1024;
/// Requests taking longer are answered 504 (proxy excepted: it streams).
/// 504 rather than 408: the slow party is nearly always Atlassian, not the client.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub static REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    pub static REQUEST_ID: String;
}

/// The id of the request being handled on this task, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(|id| id.clone()).ok()
}
