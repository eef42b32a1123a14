//! The simulated Atlassian world: clients, users, sites and everything on them.
//!
//! One `World` lives behind a `std::sync::Mutex` in [`SimState`]. Handlers lock
//! it, read or change it, and drop the guard before any `.await` (the lint
//! `await_holding_lock` is denied). Time comes only from [`SimClock`], so the
//! control plane can move it forward for expiry tests.
//!
//! Storage types here are not wire types: each API module renders its own
//! response shapes from these structs, named as in Atlassian's specs.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Duration, Utc};

use crate::config::SimConfig;

pub type Timestamp = DateTime<Utc>;

/// Real time plus an offset that only moves forward (`POST /__sim/clock/advance`).
#[derive(Debug, Default)]
pub struct SimClock {
    offset_seconds: std::sync::atomic::AtomicI64,
}

impl SimClock {
    pub fn now(&self) -> Timestamp {
        Utc::now()
            + Duration::seconds(
                self.offset_seconds
                    .load(std::sync::atomic::Ordering::SeqCst),
            )
    }

    pub fn advance(&self, seconds: i64) -> Timestamp {
        self.offset_seconds
            .fetch_add(seconds.max(0), std::sync::atomic::Ordering::SeqCst);
        self.now()
    }
}

/// Everything shared by all handlers of one running simulator.
pub struct SimState {
    pub config: SimConfig,
    pub clock: SimClock,
    pub world: Mutex<World>,
    /// Outgoing HTTP (webhook deliveries).
    pub http: reqwest::Client,
    /// Faults armed through `POST /__sim/faults`.
    pub faults: crate::faults::FaultSet,
}

pub type AppState = Arc<SimState>;

impl SimState {
    /// Lock the world. A poisoned lock means a handler panicked mid-change;
    /// the simulator keeps serving what it has rather than wedging every test.
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Clone)]
pub struct OAuthClient {
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uris: Vec<String>,
    /// Scopes registered for the app in the developer console.
    pub scopes: Vec<String>,
}

// Hand-written so the client secret never reaches a log line.
impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("redirect_uris", &self.redirect_uris)
            .field("scopes", &self.scopes)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct User {
    pub account_id: String,
    pub email: String,
    pub name: String,
    pub nickname: String,
    /// IANA zone; every seeded user is on "UTC" (JQL dates are read in it).
    pub zoneinfo: String,
    /// The profile's e-mail visibility is not "anyone": Jira's REST API
    /// leaves `emailAddress` out for everyone but the user themself.
    pub email_hidden: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Product {
    Jira,
    Confluence,
}

impl Product {
    pub fn as_str(self) -> &'static str {
        match self {
            Product::Jira => "jira",
            Product::Confluence => "confluence",
        }
    }
}

/// A custom or system field as `/rest/api/3/field` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDef {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct Site {
    pub cloud_id: String,
    /// Short name, e.g. "acme" (site URL `https://acme.atlassian.net`).
    pub name: String,
    pub url: String,
    pub avatar_url: String,
    pub products: Vec<Product>,
    /// Account ids of the users who can use this site.
    pub users: Vec<String>,
    /// The per-site story points custom field (id and name differ per site).
    pub story_points_field: FieldDef,
    pub sprint_field: FieldDef,
    pub rank_field: FieldDef,
    pub projects: Vec<Project>,
    pub boards: Vec<Board>,
    pub sprints: Vec<Sprint>,
    /// Issues by numeric id; `issue_keys` maps upper-case key → id.
    pub issues: BTreeMap<u64, Issue>,
    pub issue_keys: HashMap<String, u64>,
    pub spaces: Vec<Space>,
    pub pages: Vec<Page>,
    pub webhooks: Vec<WebhookRegistration>,
    pub next_issue_id: u64,
    pub next_comment_id: u64,
    pub next_webhook_id: u64,
    /// Ids of changelog entries (`History`), site-wide as in Jira.
    pub next_history_id: u64,
    /// Components, versions and issue links (`jira/catalog.rs`, `jira/links.rs`).
    pub catalog: SiteCatalog,
}

impl Site {
    pub fn has(&self, product: Product) -> bool {
        self.products.contains(&product)
    }

    /// Look an issue up by id or key (keys case-insensitively, as Jira does).
    pub fn issue(&self, id_or_key: &str) -> Option<&Issue> {
        let id = self.resolve_issue_id(id_or_key)?;
        self.issues.get(&id)
    }

    pub fn issue_mut(&mut self, id_or_key: &str) -> Option<&mut Issue> {
        let id = self.resolve_issue_id(id_or_key)?;
        self.issues.get_mut(&id)
    }

    pub fn resolve_issue_id(&self, id_or_key: &str) -> Option<u64> {
        match id_or_key.parse::<u64>() {
            Ok(id) => self.issues.contains_key(&id).then_some(id),
            Err(_) => self
                .issue_keys
                .get(&id_or_key.to_ascii_uppercase())
                .copied(),
        }
    }

    pub fn project_by_key_or_id(&self, key_or_id: &str) -> Option<&Project> {
        self.projects
            .iter()
            .find(|p| p.id.to_string() == key_or_id || p.key.eq_ignore_ascii_case(key_or_id))
    }

    pub fn project_by_id(&self, id: u64) -> Option<&Project> {
        self.projects.iter().find(|p| p.id == id)
    }

    pub fn board(&self, id: u64) -> Option<&Board> {
        self.boards.iter().find(|b| b.id == id)
    }

    pub fn sprint(&self, id: u64) -> Option<&Sprint> {
        self.sprints.iter().find(|s| s.id == id)
    }

    /// Insert (or replace) an issue and keep the key and child indexes in step.
    pub fn put_issue(&mut self, issue: Issue) {
        self.issue_keys
            .insert(issue.key.to_ascii_uppercase(), issue.id);
        let old_parent = self.issues.get(&issue.id).and_then(|i| i.extra.parent_id);
        self.catalog
            .reparent(issue.id, old_parent, issue.extra.parent_id);
        self.issues.insert(issue.id, issue);
    }

    pub fn remove_issue(&mut self, id: u64) -> Option<Issue> {
        let issue = self.issues.remove(&id)?;
        self.issue_keys.remove(&issue.key.to_ascii_uppercase());
        self.catalog.reparent(id, issue.extra.parent_id, None);
        Some(issue)
    }
}

#[derive(Debug, Clone)]
pub struct Project {
    pub id: u64,
    pub key: String,
    pub name: String,
    /// "software" for every seeded project.
    pub project_type_key: String,
    /// "classic" (company-managed) or "next-gen" (team-managed).
    pub style: String,
    pub lead_account_id: String,
    pub next_issue_number: u64,
    /// The workflow every issue of the project follows.
    pub workflow: Workflow,
}

/// A project's workflow: its statuses and the transitions between them.
#[derive(Debug, Clone)]
pub struct Workflow {
    pub statuses: Vec<Status>,
    pub transitions: Vec<Transition>,
}

#[derive(Debug, Clone)]
pub struct Transition {
    pub id: String,
    pub name: String,
    /// Status ids the transition starts from; empty = global (from any status).
    pub from: Vec<String>,
    pub to: String,
    /// The transition has a screen (with the resolution field).
    pub has_screen: bool,
}

impl Transition {
    /// Whether the transition is offered from `status_id`.
    pub fn starts_from(&self, status_id: &str) -> bool {
        self.from.is_empty() || self.from.iter().any(|f| f == status_id)
    }
}

impl Workflow {
    pub fn status(&self, id: &str) -> Option<&Status> {
        self.statuses.iter().find(|s| s.id == id)
    }

    /// Transitions available from `status_id`.
    pub fn from_status<'a>(&'a self, status_id: &'a str) -> impl Iterator<Item = &'a Transition> {
        self.transitions
            .iter()
            .filter(move |t| t.starts_from(status_id))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoardType {
    Scrum,
    Kanban,
}

impl BoardType {
    pub fn as_str(self) -> &'static str {
        match self {
            BoardType::Scrum => "scrum",
            BoardType::Kanban => "kanban",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Board {
    pub id: u64,
    pub name: String,
    pub board_type: BoardType,
    pub project_id: u64,
    /// The field the board estimates with (`estimation.field` in the board
    /// configuration); `None` means estimation type `issueCount`.
    pub estimation_field: Option<FieldDef>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SprintState {
    Closed,
    Active,
    Future,
}

impl SprintState {
    pub fn as_str(self) -> &'static str {
        match self {
            SprintState::Closed => "closed",
            SprintState::Active => "active",
            SprintState::Future => "future",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Sprint {
    pub id: u64,
    pub board_id: u64,
    pub name: String,
    pub state: SprintState,
    pub start_date: Option<Timestamp>,
    pub end_date: Option<Timestamp>,
    pub complete_date: Option<Timestamp>,
    pub goal: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub id: String,
    pub name: String,
    /// "new" | "indeterminate" | "done"
    pub category_key: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IssueType {
    pub id: String,
    pub name: String,
    pub subtask: bool,
}

#[derive(Debug, Clone)]
pub struct Comment {
    pub id: u64,
    pub author_account_id: String,
    /// Atlassian Document Format, as posted.
    pub body: serde_json::Value,
    pub created: Timestamp,
    pub updated: Timestamp,
}

#[derive(Debug, Clone)]
pub struct Issue {
    pub id: u64,
    pub key: String,
    pub project_id: u64,
    pub summary: String,
    /// ADF document, if any.
    pub description: Option<serde_json::Value>,
    pub issue_type: IssueType,
    pub status: Status,
    pub priority: String,
    pub assignee: Option<String>,
    pub reporter: String,
    pub labels: Vec<String>,
    pub created: Timestamp,
    pub updated: Timestamp,
    pub sprint_id: Option<u64>,
    /// Lexicographic rank (Jira's LexoRank looks like "0|i0001z:"); lower first.
    pub rank: String,
    /// Value of the site's story points field.
    pub story_points: Option<f64>,
    /// Any other custom field values set through the API, by field id.
    pub custom_fields: BTreeMap<String, serde_json::Value>,
    pub comments: Vec<Comment>,
    /// Resolution name (`None` = unresolved); set entering a done status,
    /// cleared leaving it.
    pub resolution: Option<String>,
    pub resolution_date: Option<Timestamp>,
    /// When the status category last changed (creation, if never).
    pub status_category_changed: Timestamp,
    /// Every change, oldest first (seeded issues have a history too).
    pub changelog: Vec<History>,
    /// Parent, due date, components, fix versions, remote links.
    pub extra: IssueExtra,
}

/// One changelog entry: who changed what, when.
#[derive(Debug, Clone)]
pub struct History {
    pub id: u64,
    pub author_account_id: String,
    pub created: Timestamp,
    pub items: Vec<crate::webhooks::ChangeItem>,
}

/// The issue fields beyond the first release's (parent, epics, sub-tasks,
/// due date, components, fix versions, remote links).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IssueExtra {
    /// The parent issue id: the epic of a story, the story of a sub-task.
    pub parent_id: Option<u64>,
    pub due_date: Option<chrono::NaiveDate>,
    /// Component ids (of the issue's project), in the order set.
    pub components: Vec<u64>,
    /// Version ids (of the issue's project), in the order set.
    pub fix_versions: Vec<u64>,
    pub remote_links: Vec<RemoteLink>,
}

/// `RemoteIssueLink`, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteLink {
    pub id: u64,
    pub global_id: Option<String>,
    pub relationship: Option<String>,
    /// `application` as posted.
    pub application: Option<serde_json::Value>,
    /// `object` as posted (`url` and `title` required).
    pub object: serde_json::Value,
}

/// A project component.
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    pub id: u64,
    pub project_id: u64,
    pub name: String,
    pub description: String,
    pub lead_account_id: Option<String>,
}

/// A project version (release).
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    pub id: u64,
    pub project_id: u64,
    pub name: String,
    pub description: String,
    pub released: bool,
    pub archived: bool,
    pub start_date: Option<chrono::NaiveDate>,
    pub release_date: Option<chrono::NaiveDate>,
}

/// A link between two issues (`IssueLink`): `outward` "blocks" `inward`.
#[derive(Debug, Clone, PartialEq)]
pub struct IssueLinkRecord {
    pub id: u64,
    pub type_id: String,
    pub inward_id: u64,
    pub outward_id: u64,
}

/// Site-wide records of the issue-model breadth.
#[derive(Debug, Clone, Default)]
pub struct SiteCatalog {
    pub components: Vec<Component>,
    pub versions: Vec<Version>,
    pub issue_links: Vec<IssueLinkRecord>,
    pub next_link_id: u64,
    pub next_remote_link_id: u64,
    /// parent id → child ids (kept by `Site::put_issue`/`remove_issue`), so
    /// rendering `subtasks` does not scan the site.
    pub children: HashMap<u64, std::collections::BTreeSet<u64>>,
}

impl SiteCatalog {
    /// Move `child` from `old`'s children to `new`'s.
    pub fn reparent(&mut self, child: u64, old: Option<u64>, new: Option<u64>) {
        if old == new {
            return;
        }
        if let Some(o) = old {
            if let Some(set) = self.children.get_mut(&o) {
                set.remove(&child);
                if set.is_empty() {
                    self.children.remove(&o);
                }
            }
        }
        if let Some(n) = new {
            self.children.entry(n).or_default().insert(child);
        }
    }
}

#[derive(Debug, Clone)]
pub struct Space {
    pub id: u64,
    pub key: String,
    pub name: String,
    /// "global" | "personal"
    pub space_type: String,
    pub status: String,
    pub created_at: Timestamp,
    pub homepage_id: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Page {
    pub id: u64,
    pub space_id: u64,
    pub title: String,
    pub status: String,
    pub parent_id: Option<u64>,
    pub author_account_id: String,
    pub created_at: Timestamp,
    pub version: u32,
    pub version_created_at: Timestamp,
    /// Storage-format body.
    pub body: String,
    /// The ADF document (JSON text) when the body was last written in
    /// `atlas_doc_format`: reads in that format answer it as written.
    pub adf: Option<String>,
    // simconf
    pub labels: Vec<PageLabel>,
    /// Who made the current version, and its message / minor flag.
    pub version_author: String,
    pub version_message: String,
    pub minor_edit: bool,
}

/// A label on a Confluence page (prefix `global` for every seeded one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageLabel {
    pub id: u64,
    pub name: String,
    pub prefix: String,
}

/// A dynamic webhook registered through `POST /rest/api/3/webhook`.
#[derive(Debug, Clone)]
pub struct WebhookRegistration {
    pub id: u64,
    pub client_id: String,
    pub account_id: String,
    pub url: String,
    pub events: Vec<String>,
    pub jql_filter: String,
    pub field_ids_filter: Option<Vec<String>>,
    pub expires_at: Timestamp,
}

/// The whole simulated world.
#[derive(Debug, Default)]
pub struct World {
    pub clients: Vec<OAuthClient>,
    pub users: Vec<User>,
    pub sites: Vec<Site>,
    pub stats: Stats,
    /// Codes, grants and token families of the auth server.
    pub auth: crate::auth::AuthState,
    /// Ordered ids of running `/search/jql` queries, keyed by page token.
    pub search_cache: crate::jira::page_cache::PageCache,
}

impl World {
    pub fn site(&self, cloud_id: &str) -> Option<&Site> {
        self.sites.iter().find(|s| s.cloud_id == cloud_id)
    }

    pub fn site_mut(&mut self, cloud_id: &str) -> Option<&mut Site> {
        self.sites.iter_mut().find(|s| s.cloud_id == cloud_id)
    }

    pub fn user(&self, account_id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.account_id == account_id)
    }

    pub fn client(&self, client_id: &str) -> Option<&OAuthClient> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }
}

/// Counters behind `GET /__sim/stats`.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub codes_issued: u64,
    pub code_exchanges: u64,
    pub refreshes: u64,
    pub reuse_in_window: u64,
    pub family_revocations: u64,
    /// (method, matched route, status) → count
    pub requests: BTreeMap<(String, String, u16), u64>,
    pub webhooks_registered: u64,
    pub webhook_deliveries: u64,
    pub webhook_failures: u64,
    /// `/search/jql` pages served from the page cache / computed afresh.
    pub search_cache_hits: u64,
    pub search_cache_misses: u64,
    // simconf
    /// Quota points charged since start, all pools (`--points-per-hour`).
    pub points_used: u64,
    /// Quota pool (app, or app/site) → (hour start, points used that hour).
    pub point_pools: BTreeMap<String, (Timestamp, u64)>,
}
