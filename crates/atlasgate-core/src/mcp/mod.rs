//! What the MCP server of a connection (docs/design.md §16) needs beyond the
//! typed operations it calls: the tool catalogue's names and which of them
//! write ([`TOOLS`]), the per-connection [`policy`], per-issue write
//! [`pacing`], and `jira_create_issue`'s [`idempotency`]. The protocol itself
//! (rmcp, JSON Schemas, results) is the edge's `mcp/` module.

pub mod idempotency;
pub mod pacing;
pub mod policy;
pub mod reads;

/// Whether a tool only reads or also writes to Atlassian.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// Every tool of the MCP server, by its contract name (docs/design.md §16).
pub const TOOLS: [(&str, Access); 16] = [
    ("jira_search", Access::Read),
    ("jira_get_issue", Access::Read),
    ("jira_create_issue", Access::Write),
    ("jira_update_issue", Access::Write),
    ("jira_transition_issue", Access::Write),
    ("jira_assign_issue", Access::Write),
    ("jira_add_comment", Access::Write),
    ("jira_list_projects", Access::Read),
    ("jira_list_boards", Access::Read),
    ("jira_list_sprints", Access::Read),
    ("jira_sprint_issues", Access::Read),
    ("jira_set_estimate", Access::Write),
    ("confluence_search", Access::Read),
    ("confluence_get_page", Access::Read),
    ("confluence_create_page", Access::Write),
    ("confluence_update_page", Access::Write),
];

/// The access of a tool, `None` for a name that is not a tool.
pub fn access(name: &str) -> Option<Access> {
    TOOLS.iter().find(|(n, _)| *n == name).map(|(_, a)| *a)
}
