//! The OpenAPI schemas of the core's answer types.
//!
//! The core knows nothing about HTTP (no utoipa), so the shapes it
//! serialises — a connection, a Jira issue, a synced issue, … — are
//! documented here by schema-only twins with the same names, fields and
//! serde attributes. Handlers answer the core's types; `#[utoipa::path]`
//! bodies and list wrappers name these. `tests/api/schema_twins.rs` checks
//! that each twin's properties are exactly the keys its core type writes
//! (and that a new twin gets a check).

#![allow(dead_code)]

use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

/// Lifecycle of a connection (docs/design.md §2).
pub struct ConnectionStatus;

impl PartialSchema for ConnectionStatus {
    fn schema() -> RefOr<Schema> {
        // The variants come from the core's enum, so they cannot drift.
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .description(Some("Lifecycle of a connection (docs/design.md §2)."))
            .enum_values(Some(
                atlasgate_core::store::connections::ConnectionStatus::ALL
                    .iter()
                    .map(|s| s.as_str()),
            ))
            .into()
    }
}

impl ToSchema for ConnectionStatus {}

/// The Atlassian account behind a connection.
#[derive(ToSchema)]
pub struct Account {
    pub account_id: String,
    pub email: Option<String>,
    pub name: Option<String>,
}

/// A connection as the API shows it. Never a token.
#[derive(ToSchema)]
pub struct ConnectionView {
    pub id: String,
    pub owner: String,
    pub profile: String,
    /// `active` | `needs_reauth` | `disconnected`.
    pub status: ConnectionStatus,
    /// Whether atlasgate holds a usable grant (status `active`).
    pub authenticated: bool,
    /// When the current access token expires (RFC 3339).
    pub expires_at: Option<String>,
    pub scopes: Vec<String>,
    /// Every site the grant covers.
    pub sites: Vec<AccessibleSite>,
    /// The selected site, if chosen.
    pub site: Option<AccessibleSite>,
    pub account: Option<Account>,
    pub connected_at: String,
    pub last_refreshed_at: Option<String>,
    pub last_used_at: Option<String>,
}

/// The body of `POST /v1/connections/import` (the core's `import::ImportInput`).
#[derive(ToSchema)]
pub struct ImportConnectionRequest {
    /// The app's identifier for whoever connected (`team:42`), 1–200 characters.
    pub owner: String,
    /// A configured profile; default `jira`.
    pub profile: Option<String>,
    /// The grant's current refresh token, exactly as the old store holds it.
    pub refresh_token: String,
    /// The current access token, used instead of a refresh while it has
    /// more than `ATLASGATE_REFRESH_MARGIN` left (needs `expires_at`).
    pub access_token: Option<String>,
    /// When `access_token` expires (RFC 3339).
    pub expires_at: Option<String>,
    /// The site to select; must be one of the grant's. Required when the
    /// grant covers several.
    pub cloud_id: Option<String>,
}

/// One site the grant covers, entries of accessible-resources merged by cloud id.
#[derive(ToSchema)]
pub struct AccessibleSite {
    pub cloud_id: String,
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub avatar_url: Option<String>,
    /// `jira`, `confluence`: derived from the entries' scopes, since the
    /// endpoint lists one entry per product without naming it.
    pub products: Vec<String>,
    pub scopes: Vec<String>,
}

/// A Jira project.
#[derive(ToSchema)]
pub struct Project {
    pub id: String,
    pub key: String,
    pub name: String,
    /// `software`, `business`, `service_desk`.
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// `{site}/browse/{key}`.
    pub url: String,
}

/// A Jira Software board.
#[derive(ToSchema)]
pub struct Board {
    pub id: i64,
    pub name: String,
    /// `scrum`, `kanban` or `simple`.
    #[serde(rename = "type")]
    pub type_: String,
    pub project_key: Option<String>,
}

/// A sprint of a board.
#[derive(ToSchema)]
pub struct Sprint {
    pub id: i64,
    pub name: String,
    /// `active`, `future` or `closed`.
    pub state: String,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    pub complete_date: Option<String>,
    pub goal: Option<String>,
    pub board_id: Option<i64>,
}

/// The sprint an issue is in (the active one when it has been in several).
#[derive(ToSchema)]
pub struct SprintRef {
    pub id: i64,
    pub name: String,
    pub state: String,
}

/// An issue as atlasgate shows it.
#[derive(ToSchema)]
pub struct Issue {
    pub key: String,
    pub id: String,
    pub summary: Option<String>,
    /// Status name, e.g. `In Progress`.
    pub status: Option<String>,
    /// Issue type name, e.g. `Story`.
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// From the site's story-points field (whatever its id there).
    pub story_points: Option<f64>,
    pub sprint: Option<SprintRef>,
    /// RFC 3339.
    pub updated: Option<String>,
    /// `{site}/browse/{key}`.
    pub url: String,
}

/// A Confluence space.
#[derive(ToSchema)]
pub struct Space {
    pub id: String,
    pub key: String,
    pub name: String,
    /// `global` or `personal`.
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub status: Option<String>,
    pub url: Option<String>,
}

/// A Confluence page.
#[derive(ToSchema)]
pub struct Page {
    pub id: String,
    pub title: String,
    /// `current`, `draft`, `archived`…
    pub status: Option<String>,
    /// Version number.
    pub version: Option<i64>,
    /// When the current version was made (RFC 3339).
    pub updated: Option<String>,
    /// The page in the browser.
    pub url: Option<String>,
}

#[derive(ToSchema)]
pub struct ProjectRef {
    pub id: Option<String>,
    pub key: Option<String>,
}

/// The sprint of a synced issue as stored (any part may be missing).
#[derive(ToSchema)]
pub struct SyncedSprintRef {
    pub id: Option<i64>,
    pub name: Option<String>,
    pub state: Option<String>,
}

/// A synced issue, from the local store.
#[derive(ToSchema)]
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

// ---- typed writes (docs/design.md §16) ----------------------------------------------------

/// One transition an issue can take now.
#[derive(ToSchema)]
pub struct TransitionOption {
    /// Jira's transition id.
    pub id: String,
    pub name: String,
    /// The name of the status it leads to.
    pub to: String,
}

/// A Jira user.
#[derive(ToSchema)]
pub struct UserRef {
    pub account_id: String,
    pub display_name: String,
    /// Absent when the person keeps it private.
    pub email: Option<String>,
}

/// A created issue.
#[derive(ToSchema)]
pub struct CreatedIssue {
    pub key: String,
    pub id: String,
    /// `{site}/browse/{key}`.
    pub url: String,
}

/// A comment rendered as Markdown.
#[derive(ToSchema)]
pub struct CommentView {
    pub id: String,
    /// The author's display name.
    pub author: Option<String>,
    /// RFC 3339.
    pub created: Option<String>,
    pub markdown: String,
}

/// An issue with its description and recent comments as Markdown.
#[derive(ToSchema)]
pub struct IssueDetail {
    pub key: String,
    pub id: String,
    pub summary: Option<String>,
    pub status: Option<String>,
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub story_points: Option<f64>,
    pub sprint: Option<SprintRef>,
    /// RFC 3339.
    pub updated: Option<String>,
    /// `{site}/browse/{key}`.
    pub url: String,
    /// The description (ADF) rendered as Markdown; absent when empty.
    pub description_markdown: Option<String>,
    pub assignee: Option<UserRef>,
    pub reporter: Option<UserRef>,
    /// Resolution name, absent while unresolved.
    pub resolution: Option<String>,
    /// RFC 3339.
    pub created: Option<String>,
    /// The most recent comments, oldest first.
    pub comments: Vec<CommentView>,
}

/// What a transition did.
#[derive(ToSchema)]
pub struct TransitionDone {
    pub transition_id: String,
    pub transition_name: String,
    /// The status the issue is in now.
    pub status: String,
}

/// One CQL search result.
#[derive(ToSchema)]
pub struct SearchHit {
    pub id: String,
    /// `page`, `blogpost`, …
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub space_key: Option<String>,
    pub excerpt: Option<String>,
    pub url: Option<String>,
    /// RFC 3339.
    pub last_modified: Option<String>,
}

/// A Confluence page with its body as Markdown.
#[derive(ToSchema)]
pub struct PageDetail {
    pub id: String,
    pub space_id: String,
    pub space_key: Option<String>,
    pub title: String,
    pub status: Option<String>,
    /// The version number; an update names this one.
    pub version: i64,
    /// When the current version was made (RFC 3339).
    pub updated: Option<String>,
    pub url: Option<String>,
    pub parent_id: Option<String>,
    /// The body (ADF) rendered as Markdown.
    pub markdown: String,
}

/// A synced Confluence page, from the local store.
#[derive(ToSchema)]
pub struct PageView {
    pub id: String,
    pub space_id: String,
    pub space_key: Option<String>,
    pub title: String,
    pub version: i64,
    /// When the current version was made (RFC 3339, milliseconds); for a
    /// deleted page, when atlasgate noticed.
    pub updated: String,
    pub url: Option<String>,
    /// The body (ADF) rendered as Markdown.
    pub body_markdown: String,
    /// Gone from Confluence (or no longer matched by the CQL).
    pub deleted: bool,
}
