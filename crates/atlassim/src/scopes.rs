//! OAuth scopes atlassim knows. The per-operation requirements come from the
//! specs (see `gateway`); this list is what the default client is registered for.

/// Classic and granular scopes used by the operations atlassim serves, plus
/// the identity and refresh scopes.
pub const ALL_SCOPES: &[&str] = &[
    "offline_access",
    "read:me",
    "read:account",
    "read:jira-work",
    "write:jira-work",
    "read:jira-user",
    "manage:jira-project",
    "manage:jira-configuration",
    "manage:jira-webhook",
    "read:board-scope:jira-software",
    "write:board-scope:jira-software",
    "read:board-scope.admin:jira-software",
    "read:sprint:jira-software",
    "write:sprint:jira-software",
    "read:epic:jira-software",
    "read:issue-details:jira",
    "read:jql:jira",
    "read:issue:jira-software",
    "write:issue:jira-software",
    "read:project:jira",
    "read:issue:jira",
    "write:issue:jira",
    "read:field:jira",
    "read:confluence-space.summary",
    "read:confluence-content.all",
    "read:confluence-content.summary",
    "write:confluence-content",
    "read:page:confluence",
    "read:space:confluence",
];
