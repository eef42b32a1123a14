//! Each connection as an MCP server (docs/design.md §16, `docs/agents.md`):
//! `/v1/connections/{id}/mcp`, Streamable HTTP, served by the official Rust
//! SDK (`rmcp`), and the connection's tool policy (`…/mcp-policy`).
//!
//! **Stateless.** Every POST is authenticated as any app route is (the
//! [`AppConnection`] extractor: no key → 401, another app's connection →
//! 404), then handed to an rmcp service built for that one request and that
//! connection, in rmcp's stateless mode with plain JSON answers. No MCP
//! session lives in a process, so any atlasgate process behind a load
//! balancer answers any request (the invariant "no state only in a
//! process"), and a tool call reads the connection's current policy.
//!
//! The tools ([`tools`] their schemas, [`calls`] and [`typed`] what they
//! do) call the same core operations as the REST routes. A failure is an
//! `isError` result with what a model needs ([`calls::ToolError`]); no
//! result carries a token.

pub mod calls;
pub mod tools;
pub mod typed;

use std::future::Future;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use atlasgate_core::mcp::policy::{self, Policy, Refusal};
use atlasgate_core::mcp::reads;
use atlasgate_core::mcp::{access, Access};

use crate::apps::{AppConnection, AuthenticatedApp};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::connections::ConnectionRow;
use calls::{args, Output, ToolError};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(mcp_endpoint))
        .routes(routes!(get_mcp_policy, put_mcp_policy))
}

/// What a tool runs with: the app, its connection, the shared handles.
pub struct ToolCtx<'a> {
    pub state: &'a AppState,
    pub app: &'a AuthenticatedApp,
    pub row: &'a ConnectionRow,
}

impl ToolCtx<'_> {
    pub fn ctx(&self) -> crate::jira::Ctx<'_> {
        crate::jira::ctx(self.state, self.app, self.row)
    }

    /// Run a write to `issue`: in a slot under Jira's per-issue write limits
    /// (held until the write's answer is back), then mark the issue written
    /// so its synced copy answers no read until the sync stores it again.
    pub async fn issue_write<T>(&self, issue: &str, write: impl Future<Output = T>) -> T {
        let site = self.row.site_cloud_id.as_deref().unwrap_or_default();
        let slot = self.state.mcp_pacer.admit(site, issue).await;
        let out = write.await;
        drop(slot);
        if let Err(e) = reads::issue_written(&self.state.store, &self.row.id, issue).await {
            // The write is done; failing the call now would invite a retry.
            tracing::warn!(error = %e, "could not mark an issue written by MCP");
        }
        out
    }

    /// Run a write to page `page`, then mark the page written (as [`Self::issue_write`]).
    pub async fn page_write<T>(&self, page: &str, write: impl Future<Output = T>) -> T {
        let out = write.await;
        if let Err(e) = reads::page_written(&self.state.store, &self.row.id, page).await {
            tracing::warn!(error = %e, "could not mark a page written by MCP");
        }
        out
    }
}

/// The MCP server of one connection, for one HTTP request.
#[derive(Clone)]
struct ConnectionServer {
    state: AppState,
    app: Arc<AuthenticatedApp>,
    row: Arc<ConnectionRow>,
    policy: Arc<Policy>,
}

fn tool_of(def: &tools::ToolDef) -> Tool {
    let schema = match &def.input_schema {
        Value::Object(m) => m.clone(),
        _ => serde_json::Map::new(),
    };
    let mut tool = Tool::new(def.name, def.description, Arc::new(schema));
    let read_only = access(def.name) == Some(Access::Read);
    tool.annotations = Some(
        rmcp::model::ToolAnnotations::new()
            .read_only(read_only)
            .destructive(false)
            .idempotent(read_only || def.name == "jira_create_issue")
            .open_world(true),
    );
    tool
}

fn result_of(outcome: Result<Output, ToolError>) -> CallToolResult {
    match outcome {
        Ok(out) => {
            let mut r = CallToolResult::success(vec![ContentBlock::text(out.text)]);
            r.structured_content = Some(out.structured);
            r
        }
        Err(e) => {
            let mut r = CallToolResult::error(vec![ContentBlock::text(e.message.clone())]);
            r.structured_content = Some(e.structured());
            r
        }
    }
}

impl ConnectionServer {
    async fn call(
        &self,
        name: &str,
        a: Option<serde_json::Map<String, Value>>,
    ) -> Result<Output, ToolError> {
        match self.policy.check(name) {
            Ok(()) => {}
            Err(Refusal::UnknownTool) => {
                return Err(ToolError::new("unknown_tool", format!("there is no tool `{name}`")))
            }
            Err(Refusal::ReadOnly) => {
                return Err(ToolError::new(
                    "refused_by_policy",
                    format!("`{name}` writes, and this connection's MCP policy is read-only; nothing was changed"),
                ))
            }
            Err(Refusal::NotListed) => {
                return Err(ToolError::new(
                    "refused_by_policy",
                    format!("`{name}` is not allowed by this connection's MCP policy; nothing was changed"),
                ))
            }
        }
        if self.row.site_cloud_id.is_none() || self.row.site_url.is_none() {
            return Err(atlasgate_core::Error::NoSite.into());
        }
        let t = ToolCtx {
            state: &self.state,
            app: &self.app,
            row: &self.row,
        };
        match name {
            "jira_search" => calls::jira_search(&t, args(a)?).await,
            "jira_get_issue" => typed::jira_get_issue(&t, args(a)?).await,
            "jira_create_issue" => typed::jira_create_issue(&t, args(a)?).await,
            "jira_update_issue" => typed::jira_update_issue(&t, args(a)?).await,
            "jira_transition_issue" => typed::jira_transition_issue(&t, args(a)?).await,
            "jira_assign_issue" => typed::jira_assign_issue(&t, args(a)?).await,
            "jira_add_comment" => typed::jira_add_comment(&t, args(a)?).await,
            "jira_list_projects" => calls::jira_list_projects(&t, args(a)?).await,
            "jira_list_boards" => calls::jira_list_boards(&t, args(a)?).await,
            "jira_list_sprints" => calls::jira_list_sprints(&t, args(a)?).await,
            "jira_sprint_issues" => calls::jira_sprint_issues(&t, args(a)?).await,
            "jira_set_estimate" => calls::jira_set_estimate(&t, args(a)?).await,
            "confluence_search" => typed::confluence_search(&t, args(a)?).await,
            "confluence_get_page" => typed::confluence_get_page(&t, args(a)?).await,
            "confluence_create_page" => typed::confluence_create_page(&t, args(a)?).await,
            "confluence_update_page" => typed::confluence_update_page(&t, args(a)?).await,
            other => Err(ToolError::new(
                "unknown_tool",
                format!("there is no tool `{other}`"),
            )),
        }
    }
}

impl ServerHandler for ConnectionServer {
    fn get_info(&self) -> ServerConfig {
        let mut info = ServerConfig::new(ServerCapabilities::builder().enable_tools().build());
        info.server_info = Implementation::new("atlasgate", env!("CARGO_PKG_VERSION"));
        info.instructions = Some(
            "Jira and Confluence of one Atlassian site, through atlasgate. Descriptions, comments and pages are Markdown. Tool errors say how to recover (reachable statuses, the page's current version, candidate users).".into(),
        );
        info
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tools = tools::catalog()
            .iter()
            .filter(|d| self.policy.check(d.name).is_ok())
            .map(tool_of)
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        Ok(result_of(self.call(&request.name, request.arguments).await).into())
    }
}

/// rmcp in stateless mode, JSON answers, no Host allowlist (atlasgate is
/// served under its public name; the bearer key, which a browser never
/// attaches by itself, is what keeps DNS rebinding out).
fn http_config() -> StreamableHttpServerConfig {
    StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .disable_allowed_hosts()
}

/// The connection's MCP server
///
/// MCP Streamable HTTP (protocol 2025-06-18 and later), stateless: each
/// POST carries one JSON-RPC message (`initialize`, `tools/list`,
/// `tools/call`, …) and is answered with JSON. Configure an MCP client with
/// this URL and `Authorization: Bearer agk_…`. See `docs/agents.md`.
#[utoipa::path(
    post,
    path = "/v1/connections/{id}/mcp",
    tag = "mcp",
    params(("id" = String, Path, description = "Connection id")),
    request_body(content = crate::schema::JsonRpcMessage, description = "One JSON-RPC 2.0 message of the Model Context Protocol", content_type = "application/json"),
    responses(
        (status = 200, description = "The JSON-RPC answer", body = Object, content_type = "application/json"),
        (status = 202, description = "A notification, accepted"),
        (status = 400, description = "A JSON-RPC message this stateless server does not take (a response): a JSON-RPC error", body = Object, content_type = "application/json"),
        (status = 406, description = "`Accept` names neither `application/json` nor `text/event-stream`", body = crate::error::Problem),
        (status = 415, description = "The body is not `Content-Type: application/json`, or not a JSON-RPC message rmcp can read", body = crate::error::Problem),
        (status = 401, description = "No or unknown app key", body = crate::error::Problem),
        (status = 404, description = "No such connection (for this app)", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn mcp_endpoint(
    State(state): State<AppState>,
    conn: AppConnection,
    mut req: Request,
) -> Result<Response, ApiError> {
    // No `Accept`, or `*/*`, accepts any answer (RFC 9110 §12.5.1); rmcp
    // wants both of its media types named, so name them for such a client
    // rather than answer it 406.
    let accepts_any = req
        .headers()
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|a| a.split(',').any(|m| m.trim().starts_with("*/*")));
    if accepts_any {
        req.headers_mut().insert(
            axum::http::header::ACCEPT,
            axum::http::HeaderValue::from_static("application/json, text/event-stream"),
        );
    }
    let policy = policy::get(&state.store, &conn.row.id).await?;
    let server = ConnectionServer {
        state,
        app: Arc::new(conn.app),
        row: conn.row,
        policy: Arc::new(policy),
    };
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        http_config(),
    );
    Ok(service.handle(req).await.map(Body::new).into_response())
}

/// The body of `PUT /v1/connections/{id}/mcp-policy`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct McpPolicy {
    /// Refuse every tool that writes.
    pub read_only: bool,
    /// The tools allowed, by name; `null` = every tool.
    #[schema(value_type = Option<Vec<crate::schema::McpToolName>>, inline)]
    pub tools: Option<Vec<String>>,
}

impl From<Policy> for McpPolicy {
    fn from(p: Policy) -> McpPolicy {
        McpPolicy {
            read_only: p.read_only,
            tools: p.tools,
        }
    }
}

/// Read the connection's MCP policy
#[utoipa::path(
    get,
    path = "/v1/connections/{id}/mcp-policy",
    tag = "mcp",
    params(("id" = String, Path, description = "Connection id")),
    responses(
        (status = 200, description = "The policy (the default: every tool, writes allowed)", body = McpPolicy),
        (status = 404, description = "No such connection (for this app)", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn get_mcp_policy(
    State(state): State<AppState>,
    conn: AppConnection,
) -> Result<Json<McpPolicy>, ApiError> {
    Ok(Json(policy::get(&state.store, &conn.row.id).await?.into()))
}

/// Set the connection's MCP policy
///
/// A refused tool is absent from `tools/list`, and a call to it is an
/// `isError` result that changes nothing.
#[utoipa::path(
    put,
    path = "/v1/connections/{id}/mcp-policy",
    tag = "mcp",
    params(("id" = String, Path, description = "Connection id")),
    request_body = McpPolicy,
    responses(
        (status = 200, description = "The policy now in force", body = McpPolicy),
        (status = 404, description = "No such connection (for this app)", body = crate::error::Problem),
        (status = 422, description = "An unknown tool name", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn put_mcp_policy(
    State(state): State<AppState>,
    conn: AppConnection,
    Json(req): Json<McpPolicy>,
) -> Result<Json<McpPolicy>, ApiError> {
    let stored = policy::put(
        &state.store,
        &conn.row.id,
        Policy {
            read_only: req.read_only,
            tools: req.tools,
        },
    )
    .await?;
    Ok(Json(stored.into()))
}
