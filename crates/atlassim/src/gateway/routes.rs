//! The one list of operations the gateway serves. The router is built from
//! it, the scope table (`data/scopes.json`) is keyed by it, and the spec
//! conformance test walks it.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    /// Jira platform REST v3 (`jira-platform-v3.json`).
    Jira,
    /// Jira Software agile 1.0 (`jira-software.json`).
    Agile,
    /// Confluence v2 (`confluence-v2.json`); paths relative to `/wiki/api/v2`.
    Confluence,
    // simconf
    /// Confluence REST v1, paths relative to `/wiki/rest/api`. Not in the
    /// shared specs: shapes follow Atlassian's published v1 docs, scopes come
    /// from `data/scopes-confluence-v1.json`, and the client-library test
    /// checks it instead of the spec test.
    ConfluenceV1,
}

impl Api {
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Jira => "jira",
            Api::Agile => "agile",
            Api::Confluence => "confluence",
            Api::ConfluenceV1 => "confluence-v1",
        }
    }

    /// Whether the shared specs describe this API (the spec test walks only these).
    pub fn in_specs(self) -> bool {
        self != Api::ConfluenceV1
    }

    /// The Confluence product (site check, `/ex/confluence/…` links).
    pub fn is_confluence(self) -> bool {
        matches!(self, Api::Confluence | Api::ConfluenceV1)
    }

    /// The spec file under `shared/specs/`.
    pub fn spec_file(self) -> &'static str {
        match self {
            Api::Jira => "jira-platform-v3.json",
            Api::Agile => "jira-software.json",
            Api::Confluence => "confluence-v2.json",
            Api::ConfluenceV1 => "(none: Atlassian's published Confluence v1 docs)",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    ServerInfo,
    Myself,
    ProjectList,
    ProjectSearch,
    ProjectGet,
    Fields,
    SearchJqlGet,
    SearchJqlPost,
    SearchRemoved,
    IssueGet,
    IssueEdit,
    IssueDelete,
    IssueCreate,
    CommentList,
    CommentAdd,
    // simjira
    TransitionsGet,
    TransitionDo,
    UserSearch,
    UserAssignableSearch,
    UserGet,
    UsersSearch,
    UserBulk,
    IssueAssign,
    ChangelogGet,
    ChangelogBulk,
    CommentGet,
    CommentUpdate,
    CommentDelete,
    // end simjira
    WebhookList,
    WebhookRegister,
    WebhookDelete,
    WebhookRefresh,
    BoardList,
    BoardGet,
    BoardConfiguration,
    BoardSprints,
    BoardBacklog,
    SprintGet,
    SprintIssues,
    EstimationGet,
    EstimationSet,
    SpaceList,
    SpaceGet,
    SpacePages,
    PageList,
    PageGet,
    // simmeta: issue-model breadth, metadata, agile writes
    IssueLinkCreate,
    IssueLinkGet,
    IssueLinkDelete,
    IssueLinkTypes,
    RemoteLinkList,
    RemoteLinkCreate,
    RemoteLinkDeleteByGlobalId,
    RemoteLinkGet,
    RemoteLinkUpdate,
    RemoteLinkDelete,
    CreateMetaIssueTypes,
    CreateMetaFields,
    EditMeta,
    Priorities,
    Statuses,
    StatusCategories,
    ResolutionSearch,
    IssueTypes,
    ProjectStatuses,
    ProjectVersions,
    ProjectComponents,
    ApproximateCount,
    SprintCreate,
    SprintPartialUpdate,
    SprintUpdate,
    SprintMoveIssues,
    BacklogMoveIssues,
    IssueRank,
    BoardIssues,
    BoardEpics,
    EpicIssues,
    // simconf
    PageCreate,
    PageUpdate,
    PageDelete,
    PageChildren,
    PageLabels,
    CqlSearch,
    ContentSearch,
    ContentGet,
    ContentCreate,
    ContentUpdate,
    ContentDelete,
    ContentHistory,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub api: Api,
    /// The path template exactly as the spec writes it.
    pub path: &'static str,
    /// Also served as `/rest/api/2/…` (v2 shares v3's operations; the specs
    /// only describe v3, so scopes and schemas come from the v3 entry).
    pub v2: bool,
    pub op: Op,
}

const fn r(method: &'static str, api: Api, path: &'static str, v2: bool, op: Op) -> Route {
    Route {
        method,
        api,
        path,
        v2,
        op,
    }
}

pub const ROUTES: &[Route] = &[
    r(
        "GET",
        Api::Jira,
        "/rest/api/3/serverInfo",
        true,
        Op::ServerInfo,
    ),
    r("GET", Api::Jira, "/rest/api/3/myself", true, Op::Myself),
    r(
        "GET",
        Api::Jira,
        "/rest/api/3/project",
        true,
        Op::ProjectList,
    ),
    r(
        "GET",
        Api::Jira,
        "/rest/api/3/project/search",
        true,
        Op::ProjectSearch,
    ),
    r(
        "GET",
        Api::Jira,
        "/rest/api/3/project/{projectIdOrKey}",
        true,
        Op::ProjectGet,
    ),
    r("GET", Api::Jira, "/rest/api/3/field", true, Op::Fields),
    r(
        "GET",
        Api::Jira,
        "/rest/api/3/search/jql",
        true,
        Op::SearchJqlGet,
    ),
    r(
        "POST",
        Api::Jira,
        "/rest/api/3/search/jql",
        true,
        Op::SearchJqlPost,
    ),
    r(
        "GET",
        Api::Jira,
        "/rest/api/3/search",
        true,
        Op::SearchRemoved,
    ),
    r(
        "POST",
        Api::Jira,
        "/rest/api/3/search",
        true,
        Op::SearchRemoved,
    ),
    r(
        "GET",
        Api::Jira,
        "/rest/api/3/issue/{issueIdOrKey}",
        true,
        Op::IssueGet,
    ),
    r(
        "PUT",
        Api::Jira,
        "/rest/api/3/issue/{issueIdOrKey}",
        true,
        Op::IssueEdit,
    ),
    r(
        "DELETE",
        Api::Jira,
        "/rest/api/3/issue/{issueIdOrKey}",
        true,
        Op::IssueDelete,
    ),
    r(
        "POST",
        Api::Jira,
        "/rest/api/3/issue",
        true,
        Op::IssueCreate,
    ),
    r(
        "GET",
        Api::Jira,
        "/rest/api/3/issue/{issueIdOrKey}/comment",
        true,
        Op::CommentList,
    ),
    r(
        "POST",
        Api::Jira,
        "/rest/api/3/issue/{issueIdOrKey}/comment",
        true,
        Op::CommentAdd,
    ),
    // simjira
    r(
        "GET",
        Api::Jira,
        "/rest/api/3/issue/{issueIdOrKey}/transitions",
        true,
        Op::TransitionsGet,
    ),
    r(
        "POST",
        Api::Jira,
        "/rest/api/3/issue/{issueIdOrKey}/transitions",
        true,
        Op::TransitionDo,
    ),
    r(
        "GET",
        Api::Jira,
        "/rest/api/3/user/search",
        true,
        Op::UserSearch,
    ),
    r(
        "GET",
        Api::Jira,
        "/rest/api/3/user/assignable/search",
        true,
        Op::UserAssignableSearch,
    ),
    r("GET", Api::Jira, "/rest/api/3/user", true, Op::UserGet),
    r(
        "GET",
        Api::Jira,
        "/rest/api/3/users/search",
        true,
        Op::UsersSearch,
    ),
    r(
        "GET",
        Api::Jira,
        "/rest/api/3/user/bulk",
        true,
        Op::UserBulk,
    ),
    r(
        "PUT",
        Api::Jira,
        "/rest/api/3/issue/{issueIdOrKey}/assignee",
        true,
        Op::IssueAssign,
    ),
    r(
        "GET",
        Api::Jira,
        "/rest/api/3/issue/{issueIdOrKey}/changelog",
        true,
        Op::ChangelogGet,
    ),
    r(
        "POST",
        Api::Jira,
        "/rest/api/3/changelog/bulkfetch",
        true,
        Op::ChangelogBulk,
    ),
    r(
        "GET",
        Api::Jira,
        "/rest/api/3/issue/{issueIdOrKey}/comment/{id}",
        true,
        Op::CommentGet,
    ),
    r(
        "PUT",
        Api::Jira,
        "/rest/api/3/issue/{issueIdOrKey}/comment/{id}",
        true,
        Op::CommentUpdate,
    ),
    r(
        "DELETE",
        Api::Jira,
        "/rest/api/3/issue/{issueIdOrKey}/comment/{id}",
        true,
        Op::CommentDelete,
    ),
    // end simjira
    r(
        "GET",
        Api::Jira,
        "/rest/api/3/webhook",
        false,
        Op::WebhookList,
    ),
    r(
        "POST",
        Api::Jira,
        "/rest/api/3/webhook",
        false,
        Op::WebhookRegister,
    ),
    r(
        "DELETE",
        Api::Jira,
        "/rest/api/3/webhook",
        false,
        Op::WebhookDelete,
    ),
    r(
        "PUT",
        Api::Jira,
        "/rest/api/3/webhook/refresh",
        false,
        Op::WebhookRefresh,
    ),
    r(
        "GET",
        Api::Agile,
        "/rest/agile/1.0/board",
        false,
        Op::BoardList,
    ),
    r(
        "GET",
        Api::Agile,
        "/rest/agile/1.0/board/{boardId}",
        false,
        Op::BoardGet,
    ),
    r(
        "GET",
        Api::Agile,
        "/rest/agile/1.0/board/{boardId}/configuration",
        false,
        Op::BoardConfiguration,
    ),
    r(
        "GET",
        Api::Agile,
        "/rest/agile/1.0/board/{boardId}/sprint",
        false,
        Op::BoardSprints,
    ),
    r(
        "GET",
        Api::Agile,
        "/rest/agile/1.0/board/{boardId}/backlog",
        false,
        Op::BoardBacklog,
    ),
    r(
        "GET",
        Api::Agile,
        "/rest/agile/1.0/sprint/{sprintId}",
        false,
        Op::SprintGet,
    ),
    r(
        "GET",
        Api::Agile,
        "/rest/agile/1.0/sprint/{sprintId}/issue",
        false,
        Op::SprintIssues,
    ),
    r(
        "GET",
        Api::Agile,
        "/rest/agile/1.0/issue/{issueIdOrKey}/estimation",
        false,
        Op::EstimationGet,
    ),
    r(
        "PUT",
        Api::Agile,
        "/rest/agile/1.0/issue/{issueIdOrKey}/estimation",
        false,
        Op::EstimationSet,
    ),
    // simmeta: issue-model breadth, metadata, agile writes
    r(
        "POST",
        Api::Jira,
        "/rest/api/3/issueLink",
        true,
        Op::IssueLinkCreate,
    ),
    r(
        "GET",
        Api::Jira,
        "/rest/api/3/issueLink/{linkId}",
        true,
        Op::IssueLinkGet,
    ),
    r(
        "DELETE",
        Api::Jira,
        "/rest/api/3/issueLink/{linkId}",
        true,
        Op::IssueLinkDelete,
    ),
    r(
        "GET",
        Api::Jira,
        "/rest/api/3/issueLinkType",
        true,
        Op::IssueLinkTypes,
    ),
    r(
        "GET",
        Api::Jira,
        "/rest/api/3/issue/{issueIdOrKey}/remotelink",
        true,
        Op::RemoteLinkList,
    ),
    r(
        "POST",
        Api::Jira,
        "/rest/api/3/issue/{issueIdOrKey}/remotelink",
        true,
        Op::RemoteLinkCreate,
    ),
    r(
        "DELETE",
        Api::Jira,
        "/rest/api/3/issue/{issueIdOrKey}/remotelink",
        true,
        Op::RemoteLinkDeleteByGlobalId,
    ),
    r(
        "GET",
        Api::Jira,
        "/rest/api/3/issue/{issueIdOrKey}/remotelink/{linkId}",
        true,
        Op::RemoteLinkGet,
    ),
    r(
        "PUT",
        Api::Jira,
        "/rest/api/3/issue/{issueIdOrKey}/remotelink/{linkId}",
        true,
        Op::RemoteLinkUpdate,
    ),
    r(
        "DELETE",
        Api::Jira,
        "/rest/api/3/issue/{issueIdOrKey}/remotelink/{linkId}",
        true,
        Op::RemoteLinkDelete,
    ),
    r(
        "GET",
        Api::Jira,
        "/rest/api/3/issue/createmeta/{projectIdOrKey}/issuetypes",
        true,
        Op::CreateMetaIssueTypes,
    ),
    r(
        "GET",
        Api::Jira,
        "/rest/api/3/issue/createmeta/{projectIdOrKey}/issuetypes/{issueTypeId}",
        true,
        Op::CreateMetaFields,
    ),
    r(
        "GET",
        Api::Jira,
        "/rest/api/3/issue/{issueIdOrKey}/editmeta",
        true,
        Op::EditMeta,
    ),
    r(
        "GET",
        Api::Jira,
        "/rest/api/3/priority",
        true,
        Op::Priorities,
    ),
    r("GET", Api::Jira, "/rest/api/3/status", true, Op::Statuses),
    r(
        "GET",
        Api::Jira,
        "/rest/api/3/statuscategory",
        true,
        Op::StatusCategories,
    ),
    r(
        "GET",
        Api::Jira,
        "/rest/api/3/resolution/search",
        true,
        Op::ResolutionSearch,
    ),
    r(
        "GET",
        Api::Jira,
        "/rest/api/3/issuetype",
        true,
        Op::IssueTypes,
    ),
    r(
        "GET",
        Api::Jira,
        "/rest/api/3/project/{projectIdOrKey}/statuses",
        true,
        Op::ProjectStatuses,
    ),
    r(
        "GET",
        Api::Jira,
        "/rest/api/3/project/{projectIdOrKey}/versions",
        true,
        Op::ProjectVersions,
    ),
    r(
        "GET",
        Api::Jira,
        "/rest/api/3/project/{projectIdOrKey}/components",
        true,
        Op::ProjectComponents,
    ),
    r(
        "POST",
        Api::Jira,
        "/rest/api/3/search/approximate-count",
        true,
        Op::ApproximateCount,
    ),
    r(
        "POST",
        Api::Agile,
        "/rest/agile/1.0/sprint",
        false,
        Op::SprintCreate,
    ),
    r(
        "POST",
        Api::Agile,
        "/rest/agile/1.0/sprint/{sprintId}",
        false,
        Op::SprintPartialUpdate,
    ),
    r(
        "PUT",
        Api::Agile,
        "/rest/agile/1.0/sprint/{sprintId}",
        false,
        Op::SprintUpdate,
    ),
    r(
        "POST",
        Api::Agile,
        "/rest/agile/1.0/sprint/{sprintId}/issue",
        false,
        Op::SprintMoveIssues,
    ),
    r(
        "POST",
        Api::Agile,
        "/rest/agile/1.0/backlog/issue",
        false,
        Op::BacklogMoveIssues,
    ),
    r(
        "PUT",
        Api::Agile,
        "/rest/agile/1.0/issue/rank",
        false,
        Op::IssueRank,
    ),
    r(
        "GET",
        Api::Agile,
        "/rest/agile/1.0/board/{boardId}/issue",
        false,
        Op::BoardIssues,
    ),
    r(
        "GET",
        Api::Agile,
        "/rest/agile/1.0/board/{boardId}/epic",
        false,
        Op::BoardEpics,
    ),
    r(
        "GET",
        Api::Agile,
        "/rest/agile/1.0/epic/{epicIdOrKey}/issue",
        false,
        Op::EpicIssues,
    ),
    r("GET", Api::Confluence, "/spaces", false, Op::SpaceList),
    r("GET", Api::Confluence, "/spaces/{id}", false, Op::SpaceGet),
    r(
        "GET",
        Api::Confluence,
        "/spaces/{id}/pages",
        false,
        Op::SpacePages,
    ),
    r("GET", Api::Confluence, "/pages", false, Op::PageList),
    r("GET", Api::Confluence, "/pages/{id}", false, Op::PageGet),
    // simconf
    r("POST", Api::Confluence, "/pages", false, Op::PageCreate),
    r("PUT", Api::Confluence, "/pages/{id}", false, Op::PageUpdate),
    r(
        "DELETE",
        Api::Confluence,
        "/pages/{id}",
        false,
        Op::PageDelete,
    ),
    r(
        "GET",
        Api::Confluence,
        "/pages/{id}/children",
        false,
        Op::PageChildren,
    ),
    r(
        "GET",
        Api::Confluence,
        "/pages/{id}/labels",
        false,
        Op::PageLabels,
    ),
    r("GET", Api::ConfluenceV1, "/search", false, Op::CqlSearch),
    r(
        "GET",
        Api::ConfluenceV1,
        "/content/search",
        false,
        Op::ContentSearch,
    ),
    r(
        "GET",
        Api::ConfluenceV1,
        "/content/{id}",
        false,
        Op::ContentGet,
    ),
    r(
        "POST",
        Api::ConfluenceV1,
        "/content",
        false,
        Op::ContentCreate,
    ),
    r(
        "PUT",
        Api::ConfluenceV1,
        "/content/{id}",
        false,
        Op::ContentUpdate,
    ),
    r(
        "DELETE",
        Api::ConfluenceV1,
        "/content/{id}",
        false,
        Op::ContentDelete,
    ),
    r(
        "GET",
        Api::ConfluenceV1,
        "/content/{id}/history",
        false,
        Op::ContentHistory,
    ),
];

/// The gateway URL templates (axum syntax) a route is served under.
pub fn gateway_paths(route: &Route) -> Vec<String> {
    match route.api {
        Api::Jira | Api::Agile => {
            let mut v = vec![format!("/ex/jira/{{cloudId}}{}", route.path)];
            if route.v2 {
                // `/rest/api/latest/…` is v2 under another name (pycontribs
                // `jira` calls it, e.g. for `assign_issue`).
                for v2 in ["/rest/api/2/", "/rest/api/latest/"] {
                    v.push(format!(
                        "/ex/jira/{{cloudId}}{}",
                        route.path.replacen("/rest/api/3/", v2, 1)
                    ));
                }
            }
            v
        }
        // Both forms are emulated: the docs' `/wiki/api/v2` and the bare
        // `/api/v2` some clients build (docs/atlassian-behaviour.md §2: unverified which
        // one the gateway accepts, so both work).
        Api::Confluence => vec![
            format!("/ex/confluence/{{cloudId}}/wiki/api/v2{}", route.path),
            format!("/ex/confluence/{{cloudId}}/api/v2{}", route.path),
        ],
        Api::ConfluenceV1 => vec![format!(
            "/ex/confluence/{{cloudId}}/wiki/rest/api{}",
            route.path
        )],
    }
}
