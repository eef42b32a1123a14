//! Reads the MCP server answers from the local store instead of Atlassian
//! (no request, no rate-limit points), when a sync covers them.
//!
//! The rule is deliberately narrow, so a store answer is never a wrong one:
//! `jira_search` is served from the store when the connection has a sync
//! whose JQL is the same query (compared with whitespace collapsed) and
//! whose first full pass has finished and that has not failed or stopped.
//! Its issues come newest update first. Anything else goes to Jira.

use crate::store::syncs::SyncState;
use crate::store::{mcp as rows, syncs, Store};
use crate::sync::IssueView;
use crate::Result;

fn normalised(jql: &str) -> String {
    jql.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The synced issues answering `jql`, or `None` when no sync covers it.
pub async fn search_from_store(
    store: &Store,
    connection_id: &str,
    jql: &str,
    limit: usize,
) -> Result<Option<Vec<IssueView>>> {
    let want = normalised(jql);
    let syncs = syncs::of_connection(store.pool(), connection_id).await?;
    let Some(sync) = syncs.iter().find(|s| {
        s.full_done
            && !matches!(s.state, SyncState::Failed | SyncState::Stopped)
            && normalised(&s.jql) == want
    }) else {
        return Ok(None);
    };
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let issues = rows::issues_of_sync(store.pool(), connection_id, &sync.id, limit).await?;
    Ok(Some(issues.iter().map(IssueView::from_row).collect()))
}
