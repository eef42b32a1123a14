//! `jira_create_issue` is safe to retry: the same call within
//! [`WINDOW_S`] — the same `idempotency_key`, or, without one, the same
//! arguments — returns the issue the first call created instead of
//! creating a second. The record is in the database (migration 0008), so it
//! holds across processes and restarts.
//!
//! A call claims its record before Jira is asked (under the write lock, so
//! two processes cannot both create); a second call arriving while the first
//! is in flight waits for it, up to [`WAIT_FOR_FIRST`]. A claim whose caller
//! died is taken over after [`STALE_CLAIM_S`]. When the creation fails, the
//! claim is given back and the same call may try again.

use std::future::Future;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::ids::ConnectionId;
use crate::store::mcp::{self as rows, CreateClaim, CreatedIssue};
use crate::store::Store;
use crate::{Error, Result};

/// How long a call is remembered (the issue's "within 10 minutes").
pub const WINDOW_S: i64 = 600;
/// A claim older than this without an issue is abandoned.
pub const STALE_CLAIM_S: i64 = 60;
/// How long a repeated call waits for the first one to finish.
pub const WAIT_FOR_FIRST: Duration = Duration::from_secs(15);

/// The arguments that make two calls "the same call".
#[derive(Debug, Clone, Copy)]
pub struct CreateCall<'a> {
    pub project: &'a str,
    pub issue_type: &'a str,
    pub summary: &'a str,
    pub description: Option<&'a str>,
    pub idempotency_key: Option<&'a str>,
}

impl CreateCall<'_> {
    /// SHA-256 of the key, or of the canonical arguments (JSON, so no
    /// separator inside a value can make two calls collide).
    pub fn request_hash(&self) -> String {
        let canonical = match self.idempotency_key {
            Some(key) => serde_json::json!(["key", key]),
            None => serde_json::json!([
                "args",
                self.project.trim().to_ascii_uppercase(),
                self.issue_type.trim().to_lowercase(),
                self.summary,
                self.description.unwrap_or(""),
            ]),
        };
        hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
    }
}

/// The issue of this call: the one created within the window, or the one
/// `create` makes now. The flag is true when an earlier call's issue is
/// returned.
pub async fn create_once<F, Fut>(
    store: &Store,
    connection_id: &ConnectionId,
    call: &CreateCall<'_>,
    create: F,
) -> Result<(CreatedIssue, bool)>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<CreatedIssue>>,
{
    let hash = call.request_hash();
    let waited_since = tokio::time::Instant::now();
    loop {
        let claim = rows::claim_create(
            store,
            connection_id,
            &hash,
            crate::store::now(),
            WINDOW_S,
            STALE_CLAIM_S,
        )
        .await?;
        match claim {
            CreateClaim::Done(issue) => return Ok((issue, true)),
            CreateClaim::Claimed => break,
            CreateClaim::InFlight { .. } if waited_since.elapsed() < WAIT_FOR_FIRST => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            CreateClaim::InFlight { since } => {
                return Err(Error::Conflict(format!(
                    "the same jira_create_issue call has been in progress since {}; \
                     retry it in a minute to get its issue",
                    crate::time::rfc3339(since)
                )))
            }
        }
    }
    match create().await {
        Ok(issue) => {
            rows::finish_create(store.pool(), connection_id, &hash, &issue).await?;
            Ok((issue, false))
        }
        Err(e) => {
            // `OutcomeUnknown`: the issue may exist, yet a retry must be able
            // to try again; the claim is given back as for any failure.
            rows::release_create(store.pool(), connection_id, &hash).await?;
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call<'a>(summary: &'a str, key: Option<&'a str>) -> CreateCall<'a> {
        CreateCall {
            project: "ACME",
            issue_type: "Task",
            summary,
            description: Some("**bold**"),
            idempotency_key: key,
        }
    }

    #[test]
    fn the_same_call_hashes_the_same_and_a_key_decides_alone() {
        assert_eq!(
            call("a", None).request_hash(),
            call("a", None).request_hash()
        );
        assert_ne!(
            call("a", None).request_hash(),
            call("b", None).request_hash()
        );
        // Project keys and type names are case-insensitive at Jira.
        let mut lower = call("a", None);
        lower.project = "acme";
        lower.issue_type = "task";
        assert_eq!(lower.request_hash(), call("a", None).request_hash());
        // With a key, the key alone names the call.
        assert_eq!(
            call("a", Some("k1")).request_hash(),
            call("b", Some("k1")).request_hash()
        );
        assert_ne!(
            call("a", Some("k1")).request_hash(),
            call("a", Some("k2")).request_hash()
        );
        assert_ne!(
            call("a", Some("k1")).request_hash(),
            call("a", None).request_hash()
        );
    }
}
