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
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub owner: String,
    /// A configured profile; default `jira`.
    pub profile: Option<String>,
    /// The grant's current refresh token, exactly as the old store holds it.
    #[schema(
        max_length = 16384,
        pattern = r"^[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000-\u001f\u007f-\u009f]+$"
    )]
    pub refresh_token: String,
    /// The current access token, used instead of a refresh while it has
    /// more than `ATLASGATE_REFRESH_MARGIN` left (needs `expires_at`).
    #[schema(
        max_length = 16384,
        pattern = r"^[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000-\u001f\u007f-\u009f]+$"
    )]
    pub access_token: Option<String>,
    /// When `access_token` expires (RFC 3339).
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// The site to select; must be one of the grant's. Required when the
    /// grant covers several.
    #[schema(max_length = 100, pattern = r"^[^/\u0000-\u001f\u007f-\u009f]+$")]
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

// ---- request constraints the validators enforce (docs/design.md §3) -----------------------

/// Rust's `char::is_whitespace` (Unicode White_Space) as a regex class body:
/// what `str::trim` removes, so `[^WS]` is "not blank" exactly as the
/// validators judge it.
pub const WHITESPACE: &str = r"\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// A string with something besides whitespace (`trim()` is not empty).
pub fn not_blank() -> String {
    format!("[^{WHITESPACE}]")
}

/// A string enum of one of the core's own lists, so the document cannot
/// drift from what the validator accepts.
fn string_enum<'a>(description: &str, values: impl IntoIterator<Item = &'a str>) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .description(Some(description))
        .enum_values(Some(values))
        .into()
}

/// A schema written as JSON Schema, for the combinators utoipa's derive
/// cannot say ("exactly one of …"). Only the keywords used here are read
/// (utoipa's own `Deserialize` would drop `oneOf` beside `properties`).
fn from_json(v: serde_json::Value) -> Schema {
    use serde_json::Value;
    use utoipa::openapi::schema::{AdditionalProperties, AllOfBuilder, AnyOfBuilder, OneOfBuilder};
    let number = |v: &Value| -> Option<utoipa::Number> {
        v.as_i64()
            .map(|i| utoipa::Number::Int(i as isize))
            .or_else(|| v.as_f64().map(utoipa::Number::Float))
    };
    let ty = |t: &Value| match t.as_str() {
        Some("object") => Some(Type::Object),
        Some("string") => Some(Type::String),
        Some("integer") => Some(Type::Integer),
        Some("number") => Some(Type::Number),
        Some("boolean") => Some(Type::Boolean),
        Some("array") => Some(Type::Array),
        Some("null") => Some(Type::Null),
        _ => None,
    };
    let mut o = ObjectBuilder::new().schema_type(match &v["type"] {
        Value::Array(ts) => SchemaType::from_iter(ts.iter().filter_map(ty)),
        t => ty(t).map(SchemaType::Type).unwrap_or(SchemaType::AnyValue),
    });
    if let Some(d) = v["description"].as_str() {
        o = o.description(Some(d));
    }
    if let Some(p) = v["pattern"].as_str() {
        o = o.pattern(Some(p));
    }
    if let Some(n) = v["maxLength"].as_u64() {
        o = o.max_length(Some(n as usize));
    }
    if let Some(n) = v["minProperties"].as_u64() {
        o = o.min_properties(Some(n as usize));
    }
    o = o
        .minimum(number(&v["minimum"]))
        .maximum(number(&v["maximum"]));
    if let Some(values) = v["enum"].as_array() {
        o = o.enum_values(Some(values.clone()));
    }
    for (name, prop) in v["properties"].as_object().into_iter().flatten() {
        o = o.property(name, from_json(prop.clone()));
    }
    for name in v["required"].as_array().into_iter().flatten() {
        o = o.required(name.as_str().unwrap_or_default());
    }
    if let Some(b) = v["additionalProperties"].as_bool() {
        o = o.additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(b)));
    }
    let base = Schema::Object(o.build());
    let branches = |key: &str| -> Vec<Schema> {
        v[key]
            .as_array()
            .into_iter()
            .flatten()
            .map(|b| from_json(b.clone()))
            .collect()
    };
    let (one, any) = (branches("oneOf"), branches("anyOf"));
    if one.is_empty() && any.is_empty() {
        return base;
    }
    let combined = if one.is_empty() {
        Schema::AnyOf(
            any.into_iter()
                .fold(AnyOfBuilder::new(), |b, s| b.item(s))
                .build(),
        )
    } else {
        Schema::OneOf(
            one.into_iter()
                .fold(OneOfBuilder::new(), |b, s| b.item(s))
                .build(),
        )
    };
    let has_own = v
        .as_object()
        .is_some_and(|m| m.keys().any(|k| k != "oneOf" && k != "anyOf"));
    if !has_own {
        return combined;
    }
    Schema::AllOf(AllOfBuilder::new().item(base).item(combined).build())
}

/// An event type (`GET /v1/events?type=`).
pub struct EventType;

impl PartialSchema for EventType {
    fn schema() -> RefOr<Schema> {
        string_enum(
            "An event type (docs/design.md §7).",
            atlasgate_core::events::EVENT_TYPES.iter().copied(),
        )
    }
}

impl ToSchema for EventType {}

/// An audit record's kind (`GET /admin/api/audit?kind=`).
pub struct AuditKind;

impl PartialSchema for AuditKind {
    fn schema() -> RefOr<Schema> {
        string_enum(
            "An audit kind (docs/design.md §14).",
            atlasgate_core::audit::kind::ALL.iter().copied(),
        )
    }
}

impl ToSchema for AuditKind {}

/// The name of one of a connection's MCP tools.
pub struct McpToolName;

impl PartialSchema for McpToolName {
    fn schema() -> RefOr<Schema> {
        string_enum(
            "An MCP tool (docs/agents.md).",
            atlasgate_core::mcp::TOOLS.iter().map(|(name, _)| *name),
        )
    }
}

impl ToSchema for McpToolName {}

/// An OAuth scope: one non-empty word, no whitespace or control character.
pub struct Scope;

impl PartialSchema for Scope {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .pattern(Some(format!(
                r"^[^{WHITESPACE}\u0000-\u001f\u007f-\u009f]+$"
            )))
            .into()
    }
}

impl ToSchema for Scope {}

/// `value` of an estimate: a non-negative number, or a string holding one
/// (`"0.5"`, as Rust's `f64` parser reads it after `trim`).
pub fn estimate_value() -> Schema {
    let ws = WHITESPACE;
    from_json(serde_json::json!({
        "description": "A non-negative number, or a string holding one (`\"0.5\"`).",
        "oneOf": [
            {"type": "number", "minimum": 0},
            {"type": "string",
             "pattern": format!(r"^[{ws}]*\+?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{{1,2}})?[{ws}]*$")}
        ]
    }))
}

/// The `oneOf` of "exactly one of `a` and `b`, not blank": each branch
/// requires its member as a non-blank string and the other absent or null
/// (the validators match on which of the two is `Some`).
fn exactly_one_of(a: &str, b: &str) -> serde_json::Value {
    let branch = |this: &str, other: &str| {
        let mut properties = serde_json::Map::new();
        properties.insert(
            this.into(),
            serde_json::json!({"type": "string", "pattern": not_blank()}),
        );
        properties.insert(other.into(), serde_json::json!({"type": "null"}));
        serde_json::json!({"required": [this], "properties": properties})
    };
    serde_json::json!([branch(a, b), branch(b, a)])
}

/// `POST …/comments`: exactly one of `text` and `markdown`, not blank.
pub fn comment_request() -> Schema {
    from_json(serde_json::json!({
        "type": "object",
        "additionalProperties": false,
        "description": "Exactly one of `text` and `markdown`, not blank.",
        "properties": {
            "text": {"type": ["string", "null"],
                     "description": "Plain text; each non-empty line becomes an ADF paragraph."},
            "markdown": {"type": ["string", "null"],
                         "description": "Markdown, converted to ADF (headings, lists, code, tables, mentions)."}
        },
        "oneOf": exactly_one_of("text", "markdown")
    }))
}

/// `POST …/syncs`: exactly one of `jql` and `confluence_cql` (a Confluence
/// sync polls: `webhooks` may not be true).
pub fn create_sync_request() -> Schema {
    let mut one = exactly_one_of("jql", "confluence_cql");
    one[1]["properties"]["webhooks"] = serde_json::json!({"enum": [false, null]});
    from_json(serde_json::json!({
        "type": "object",
        "additionalProperties": false,
        "description": "Exactly one of `jql` and `confluence_cql`.",
        "properties": {
            "jql": {"type": ["string", "null"], "maxLength": 4000,
                    "description": "The JQL filter of the issues to mirror (any `ORDER BY` is ignored)."},
            "confluence_cql": {"type": ["string", "null"], "maxLength": 4000,
                               "description": "A CQL query: mirror the Confluence pages it finds instead (`GET …/pages`)."},
            "webhooks": {"type": ["boolean", "null"],
                         "description": "Register a Jira webhook so changes arrive within seconds (default false; Jira syncs only)."},
            "interval_s": {"type": ["integer", "null"], "minimum": 1, "maximum": 86400,
                           "description": "Seconds between incremental passes, 1–86400 (default 300)."}
        },
        "oneOf": one
    }))
}

/// `PATCH …/jira/issues/{key}`: something to change — a `summary` (one
/// line, not blank, at most 255 characters), a `description_markdown` (an
/// empty one clears it) or a non-empty `fields`.
pub fn update_issue_request() -> Schema {
    let summary = summary_pattern();
    from_json(serde_json::json!({
        "type": "object",
        "additionalProperties": false,
        "description": "At least one of `summary`, `description_markdown` and a non-empty `fields`.",
        "properties": {
            "summary": {"type": ["string", "null"], "maxLength": 255, "pattern": summary,
                        "description": "One line, at most 255 characters (Jira's limit)."},
            "description_markdown": {"type": ["string", "null"],
                                     "description": "Markdown; stored as ADF. An empty string clears the description."},
            "fields": {"type": ["object", "null"],
                       "description": "Further Jira fields as Jira's `fields` object takes them."}
        },
        "anyOf": [
            {"required": ["summary"], "properties": {"summary": {"type": "string"}}},
            {"required": ["description_markdown"], "properties": {"description_markdown": {"type": "string"}}},
            {"required": ["fields"], "properties": {"fields": {"type": "object", "minProperties": 1}}}
        ]
    }))
}

/// An issue summary as `check_summary` takes it: one line, not blank.
pub fn summary_pattern() -> String {
    format!(r"^[^\n]*[^{WHITESPACE}][^\n]*$")
}

/// An app's return origin, `scheme://host[:port]` (`ReturnOrigin::parse`).
pub struct Origin;

impl PartialSchema for Origin {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .pattern(Some(
                r"^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9.-]+(:[0-9]{1,4})?/?$",
            ))
            .into()
    }
}

impl ToSchema for Origin {}

/// One JSON-RPC 2.0 request (with `id`) or notification (without) of the
/// Model Context Protocol, as rmcp reads it (docs/agents.md).
pub struct JsonRpcMessage;

impl PartialSchema for JsonRpcMessage {
    fn schema() -> RefOr<Schema> {
        from_json(serde_json::json!({
            "type": "object",
            "description": "A JSON-RPC 2.0 request (`id` set: answered 200) or notification (no `id`: 202).",
            "required": ["jsonrpc", "method"],
            "properties": {
                "jsonrpc": {"type": "string", "enum": ["2.0"]},
                "id": {"type": ["string", "integer"]},
                "method": {"type": "string", "description": "`initialize`, `tools/list`, `tools/call`, …"},
                "params": {"type": ["object", "null"]}
            }
        }))
        .into()
    }
}

impl ToSchema for JsonRpcMessage {}
