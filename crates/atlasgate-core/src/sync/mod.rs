//! Syncs (docs/design.md §3, §6): standing orders to mirror the issues of a
//! JQL filter (and their projects) into the local store, kept fresh by
//! incremental passes and Jira webhooks.

pub mod confluence;
pub mod engine;
pub mod eta;
pub mod jql;
pub mod registration;
/// The synced rows: syncs, their partitions and the synced issues.
pub use crate::store::syncs as store;
pub mod worker;

use serde::{Deserialize, Serialize};

use store::IssueRow;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProjectRef {
    pub id: Option<String>,
    pub key: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
/// The sprint of a synced issue as stored (any part may be missing).
pub struct SyncedSprintRef {
    pub id: Option<i64>,
    pub name: Option<String>,
    pub state: Option<String>,
}

/// A synced issue, from the local store.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IssueView {
    pub id: String,
    pub key: String,
    pub project: ProjectRef,
    pub summary: Option<String>,
    pub status: Option<String>,
    #[serde(rename = "type")]
    pub issue_type: Option<String>,
    pub story_points: Option<f64>,
    /// The active sprint if the issue is in one, else its latest.
    pub sprint: Option<SyncedSprintRef>,
    /// Jira's `updated` (RFC 3339, milliseconds).
    pub updated: String,
    /// Browse link on the site.
    pub url: String,
    /// Deleted in Jira (kept so apps see the deletion).
    pub deleted: bool,
}

pub fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

impl IssueView {
    pub fn from_row(r: &IssueRow) -> IssueView {
        IssueView {
            id: r.issue_id.clone(),
            key: r.issue_key.clone(),
            project: ProjectRef {
                id: r.project_id.clone(),
                key: r.project_key.clone(),
            },
            summary: r.summary.clone(),
            status: r.status.clone(),
            issue_type: r.issue_type.clone(),
            story_points: r.story_points.as_deref().and_then(|s| s.parse().ok()),
            sprint: (r.sprint_id.is_some() || r.sprint_name.is_some()).then(|| SyncedSprintRef {
                id: r.sprint_id,
                name: r.sprint_name.clone(),
                state: r.sprint_state.clone(),
            }),
            updated: rfc3339_ms(r.updated_ms),
            url: r.url.clone(),
            deleted: r.deleted,
        }
    }
}
