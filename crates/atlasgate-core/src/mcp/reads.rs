//! Reads the MCP server answers from the local store instead of Atlassian
//! (no request, no rate-limit points) when a sync covers them
//! (docs/design.md §16; the rules in docs/agents.md, "Reads from the store").
//!
//! A sync *covers* its copies while it keeps them current: its first full
//! pass has finished, it has not failed or stopped, and its last pass ended
//! no longer ago than twice its interval plus [`FRESH_SLACK_S`] (a sync
//! whose worker stopped running stops answering). Then:
//!
//! - `jira_search` is answered from a sync whose JQL is the same query
//!   (compared with whitespace collapsed), newest update first. atlasgate
//!   does not evaluate JQL, so any other query goes to Jira: a store answer
//!   is never a guess.
//! - `jira_get_issue` is answered from the synced copy of the issue (by key
//!   or id, not deleted) when the sync that stored it covers it, the copy
//!   holds the description and people (`IssueRow::detail`, synced since
//!   migration 0014), and it was stored after it was last marked stale: by
//!   the MCP server's own write to the issue (read your own writes), or by
//!   the sync finding it outside its JQL (a webhook's re-read, the
//!   reconciliation). Comments are not synced: a store answer has none.
//! - `confluence_get_page` likewise from `synced_pages` (marked stale by the
//!   MCP server's own update).
//!
//! Anything else goes to Atlassian, as does a call with `live: true`.

use serde::Serialize;

use crate::confluence::PageDetail;
use crate::ids::{ConnectionId, Jql};
use crate::jira::ops::{Issue, SprintRef};
use crate::jira::writes::{issue_detail, IssueDetail};
use crate::store::syncs::SyncState;
use crate::store::syncs::{IssueRow, SyncRow};
use crate::store::{mcp as rows, syncs, Store};
use crate::sync::{rfc3339_ms, IssueView};
use crate::Result;

/// How long past twice its interval a sync's last pass may lie before its
/// copies stop answering reads.
pub const FRESH_SLACK_S: i64 = 60;

/// Where a store answer came from: the sync and when it last finished a pass
/// (RFC 3339), or, for one issue or page, when its copy was stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FromStore {
    pub sync_id: String,
    pub synced_at: String,
}

/// Whether `sync` keeps its copies current enough to answer reads at `now`.
pub fn covers(sync: &SyncRow, now: i64) -> bool {
    sync.full_done
        && !matches!(sync.state, SyncState::Failed | SyncState::Stopped)
        && sync
            .last_run_at
            .is_some_and(|t| now - t <= 2 * sync.interval_s + FRESH_SLACK_S)
}

fn normalised(jql: &Jql) -> String {
    jql.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The synced issues answering `jql`, or `None` when no sync covers it.
pub async fn search_from_store(
    store: &Store,
    connection_id: &ConnectionId,
    jql: &Jql,
    limit: usize,
) -> Result<Option<(Vec<IssueView>, FromStore)>> {
    let want = normalised(jql);
    let now = crate::store::now();
    let syncs = syncs::of_connection(store.pool(), connection_id).await?;
    let Some(sync) = syncs
        .iter()
        .find(|s| covers(s, now) && normalised(&s.jql) == want)
    else {
        return Ok(None);
    };
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let issues = rows::issues_of_sync(store.pool(), connection_id, &sync.id, limit).await?;
    let from = FromStore {
        sync_id: sync.id.clone(),
        synced_at: crate::time::rfc3339(sync.last_run_at.unwrap_or_default()),
    };
    Ok(Some((
        issues.iter().map(IssueView::from_row).collect(),
        from,
    )))
}

/// The sync of the connection that stored a copy, when it covers it now.
async fn covering_sync(
    store: &Store,
    connection_id: &ConnectionId,
    sync_id: Option<&str>,
) -> Result<Option<SyncRow>> {
    let Some(sync_id) = sync_id else {
        return Ok(None);
    };
    let sync = syncs::get(store.pool(), sync_id).await?;
    Ok(sync.filter(|s| &s.connection_id == connection_id && covers(s, crate::store::now())))
}

/// A synced copy as the typed operations show an issue.
fn issue_of_row(r: &IssueRow) -> Issue {
    let sprint = match (r.sprint_id, &r.sprint_name, &r.sprint_state) {
        (Some(id), Some(name), Some(state)) => Some(SprintRef {
            id,
            name: name.clone(),
            state: state.to_ascii_lowercase(),
        }),
        _ => None,
    };
    Issue {
        key: r.issue_key.clone(),
        id: r.issue_id.clone(),
        summary: r.summary.clone(),
        status: r.status.clone(),
        type_: r.issue_type.clone(),
        story_points: r.story_points.as_deref().and_then(|s| s.parse().ok()),
        sprint,
        updated: Some(rfc3339_ms(r.updated_ms)),
        url: r.url.clone(),
    }
}

/// `jira_get_issue` from the store: the issue (no comments) and where it
/// came from, or `None` when no sync covers it.
pub async fn issue_from_store(
    store: &Store,
    connection_id: &ConnectionId,
    key_or_id: &str,
) -> Result<Option<(IssueDetail, FromStore)>> {
    let wanted = key_or_id.trim().to_ascii_uppercase();
    let Some(row) = rows::readable_issue(store.pool(), connection_id, &wanted).await? else {
        return Ok(None);
    };
    let Some(sync) = covering_sync(store, connection_id, row.sync_id.as_deref()).await? else {
        return Ok(None);
    };
    let Some(fields) = &row.detail else {
        return Ok(None);
    };
    let detail = issue_detail(issue_of_row(&row), fields, Vec::new());
    let from = FromStore {
        sync_id: sync.id,
        synced_at: crate::time::rfc3339(row.synced_at),
    };
    Ok(Some((detail, from)))
}

/// `confluence_get_page` from the store, or `None` when no sync covers it.
/// A synced page keeps no status or parent: both are `None`.
pub async fn page_from_store(
    store: &Store,
    connection_id: &ConnectionId,
    page_id: &str,
) -> Result<Option<(PageDetail, FromStore)>> {
    let Some(row) = rows::readable_page(store.pool(), connection_id, page_id.trim()).await? else {
        return Ok(None);
    };
    let Some(sync) = covering_sync(store, connection_id, row.sync_id.as_deref()).await? else {
        return Ok(None);
    };
    let page = PageDetail {
        id: row.page_id,
        space_id: row.space_id,
        space_key: row.space_key,
        title: row.title,
        status: None,
        version: row.version,
        updated: Some(rfc3339_ms(row.updated_ms)),
        url: row.url,
        parent_id: None,
        markdown: row.body_markdown,
    };
    let from = FromStore {
        sync_id: sync.id,
        synced_at: crate::time::rfc3339(row.synced_at),
    };
    Ok(Some((page, from)))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The MCP server wrote (or tried to write) the issue: its synced copy does
/// not answer reads until the sync stores it again.
pub async fn issue_written(
    store: &Store,
    connection_id: &ConnectionId,
    key_or_id: &str,
) -> Result<()> {
    let wanted = key_or_id.trim().to_ascii_uppercase();
    syncs::mark_issue_stale(store.pool(), connection_id, &wanted, now_ms()).await?;
    Ok(())
}

/// The MCP server wrote (or tried to write) the page.
pub async fn page_written(
    store: &Store,
    connection_id: &ConnectionId,
    page_id: &str,
) -> Result<()> {
    crate::store::pages::mark_page_stale(store.pool(), connection_id, page_id.trim(), now_ms())
        .await?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::jira::ops::{issue_from_json, SiteFields};

    #[test]
    fn a_sync_covers_only_while_it_keeps_up() {
        let now = 100_000;
        let fresh = SyncRow {
            full_done: true,
            state: SyncState::Idle,
            interval_s: 300,
            last_run_at: Some(now - 600),
            ..Default::default()
        };
        assert!(covers(&fresh, now));
        assert!(!covers(
            &SyncRow {
                last_run_at: Some(now - 600 - FRESH_SLACK_S - 1),
                ..fresh.clone()
            },
            now
        ));
        assert!(!covers(
            &SyncRow {
                full_done: false,
                ..fresh.clone()
            },
            now
        ));
        for state in [SyncState::Failed, SyncState::Stopped] {
            let s = SyncRow {
                state,
                ..fresh.clone()
            };
            assert!(!covers(&s, now), "{state:?}");
        }
        assert!(covers(
            &SyncRow {
                state: SyncState::Running,
                ..fresh
            },
            now
        ));
    }

    /// A synced copy's `detail` reads as the live answer of the same issue.
    #[test]
    fn a_stored_issue_reads_like_the_live_one() {
        let issue = json!({
            "id": "10001",
            "key": "ACME-1",
            "fields": {
                "summary": "Login page",
                "status": {"name": "Done"},
                "issuetype": {"name": "Story"},
                "project": {"id": "10000", "key": "ACME"},
                "updated": "2025-12-01T10:00:00.000+0000",
                "created": "2025-11-01T09:00:00.000+0000",
                "resolution": {"name": "Done"},
                "assignee": {"accountId": "a1", "displayName": "Ada", "emailAddress": "ada@example.com"},
                "reporter": null,
                "description": {"type": "doc", "version": 1, "content": [
                    {"type": "paragraph", "content": [
                        {"type": "text", "text": "bold", "marks": [{"type": "strong"}]}]}]},
            }
        });
        let sync = SyncRow {
            id: "syn_1".into(),
            connection_id: "con_1".into(),
            site_url: "https://acme.atlassian.net".into(),
            ..Default::default()
        };
        let row = crate::sync::engine::parse_issue(&issue, &sync, 0).unwrap();
        let fields = row.detail.clone().unwrap();
        let stored = issue_detail(issue_of_row(&row), &fields, Vec::new());
        let live = issue_detail(
            issue_from_json("https://acme.atlassian.net", &SiteFields::default(), &issue),
            &issue["fields"],
            Vec::new(),
        );
        assert_eq!(stored.description_markdown.as_deref(), Some("**bold**"));
        assert_eq!(
            (
                &stored.assignee,
                &stored.reporter,
                &stored.resolution,
                &stored.created
            ),
            (
                &live.assignee,
                &live.reporter,
                &live.resolution,
                &live.created
            )
        );
        assert_eq!(stored.description_markdown, live.description_markdown);
        let instant = |s: &Option<String>| {
            chrono::DateTime::parse_from_rfc3339(s.as_deref().unwrap()).unwrap()
        };
        assert_eq!(instant(&stored.issue.updated), instant(&live.issue.updated));
        let mut same = stored.issue.clone();
        same.updated = live.issue.updated.clone();
        assert_eq!(same, live.issue);
    }
}
