//! What each tool does: its arguments parsed, the core operation called,
//! the answer as `structuredContent` plus a text a model reads. A failure is
//! a [`ToolError`] (an `isError: true` result), never a transport error, and
//! carries what a model needs to recover.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use atlasgate_core::ids::Jql;
use atlasgate_core::jira::ops;
use atlasgate_core::mcp::reads;

use super::ToolCtx;

/// A tool's successful answer.
#[derive(Debug)]
pub struct Output {
    /// `structuredContent` (always an object).
    pub structured: Value,
    /// The text content: Markdown where the answer is a document, else the
    /// structured answer as JSON.
    pub text: String,
}

impl Output {
    fn json(structured: Value) -> Output {
        let text = serde_json::to_string_pretty(&structured).unwrap_or_default();
        Output { structured, text }
    }
}

/// A tool's failure, shown to the model as an `isError` result:
/// `message` as its text, and `{"error": {"kind", "message", …details}}` as
/// its structured content.
#[derive(Debug)]
pub struct ToolError {
    pub kind: &'static str,
    pub message: String,
    pub details: serde_json::Map<String, Value>,
}

impl ToolError {
    pub fn new(kind: &'static str, message: impl Into<String>) -> ToolError {
        ToolError {
            kind,
            message: message.into(),
            details: serde_json::Map::new(),
        }
    }

    fn with(mut self, key: &str, value: Value) -> ToolError {
        self.details.insert(key.to_string(), value);
        self
    }

    pub fn structured(&self) -> Value {
        let mut error = self.details.clone();
        error.insert("kind".into(), json!(self.kind));
        error.insert("message".into(), json!(self.message));
        json!({ "error": error })
    }
}

impl From<atlasgate_core::Error> for ToolError {
    fn from(e: atlasgate_core::Error) -> ToolError {
        use atlasgate_core::Error as E;
        match e {
            E::NotFound => ToolError::new("not_found", "not found: check the key or id (it may not exist, or this connection cannot see it)"),
            E::Invalid { field, message } => {
                ToolError::new("invalid", format!("{field}: {message}")).with("field", json!(field))
            }
            E::Conflict(m) => ToolError::new("conflict", m),
            E::ReauthRequired { .. } => ToolError::new(
                "reauth_required",
                "the person behind this connection must consent again; ask the app's operator to reconnect it",
            ),
            E::Disconnected => ToolError::new("disconnected", "the connection is disconnected"),
            E::NoSite => ToolError::new("no_site", "the connection has no Atlassian site selected yet"),
            E::RateLimited { retry_after_secs } | E::RefreshUnavailable { retry_after_secs } => {
                ToolError::new(
                    "retry_later",
                    format!("Atlassian asks to wait; retry in {retry_after_secs} s"),
                )
                .with("retry_after_secs", json!(retry_after_secs))
            }
            E::Upstream { status, messages } => ToolError::new(
                "atlassian",
                match messages {
                    Some(m) => format!("Atlassian answered {}: {m}", status.as_u16()),
                    None => format!("Atlassian answered {}", status.as_u16()),
                },
            )
            .with("status", json!(status.as_u16())),
            E::OutcomeUnknown => ToolError::new(
                "outcome_unknown",
                "the answer from Atlassian was lost; the write may or may not have happened: read before retrying",
            ),
            E::Internal(e) => {
                tracing::error!(error = %e, "MCP tool failed");
                ToolError::new("internal", "atlasgate failed internally; see its logs")
            }
            other => ToolError::new("unavailable", other.to_string()),
        }
    }
}

impl From<atlasgate_core::atlassian::AtlassianError> for ToolError {
    fn from(e: atlasgate_core::atlassian::AtlassianError) -> ToolError {
        atlasgate_core::Error::from(e).into()
    }
}

pub type ToolResult = Result<Output, ToolError>;

/// Parse a tool's arguments (an absent object is an empty one).
pub fn args<T: DeserializeOwned>(
    v: Option<serde_json::Map<String, Value>>,
) -> Result<T, ToolError> {
    serde_json::from_value(Value::Object(v.unwrap_or_default()))
        .map_err(|e| ToolError::new("invalid_arguments", format!("invalid arguments: {e}")))
}

fn bounded(limit: Option<i64>, max: i64, default: i64) -> Result<usize, ToolError> {
    let n = limit.unwrap_or(default);
    if !(1..=max).contains(&n) {
        return Err(
            ToolError::new("invalid_arguments", format!("limit must be 1–{max}"))
                .with("field", json!("limit")),
        );
    }
    Ok(n as usize)
}

/// Issues as Markdown lines: `- KEY [status] summary — url`.
pub fn issue_lines<'a>(
    issues: impl Iterator<Item = (&'a str, Option<&'a str>, Option<&'a str>, &'a str)>,
) -> String {
    let mut out = String::new();
    for (key, status, summary, url) in issues {
        out.push_str(&format!(
            "- {key} [{}] {} — {url}\n",
            status.unwrap_or("?"),
            summary.unwrap_or("")
        ));
    }
    if out.is_empty() {
        out.push_str("No issues.\n");
    }
    out
}

// ---- read tools -------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    jql: String,
    limit: Option<i64>,
}

pub async fn jira_search(t: &ToolCtx<'_>, a: SearchArgs) -> ToolResult {
    let limit = bounded(a.limit, 100, 20)?;
    if a.jql.trim().is_empty() {
        return Err(ToolError::new("invalid_arguments", "jql must not be empty"));
    }
    let jql = Jql::from(a.jql);
    if let Some((issues, from)) =
        reads::search_from_store(&t.state.store, &t.row.id, &jql, limit).await?
    {
        let text = format!(
            "From atlasgate's store (sync {} has this JQL, last pass {}; no Jira call):\n{}",
            from.sync_id,
            from.synced_at,
            issue_lines(issues.iter().map(|i| (
                i.key.as_str(),
                i.status.as_deref(),
                i.summary.as_deref(),
                i.url.as_str()
            )))
        );
        return Ok(Output {
            structured: json!({
                "source": "store",
                "sync_id": from.sync_id,
                "synced_at": from.synced_at,
                "issues": issues,
            }),
            text,
        });
    }
    let issues = ops::search(&t.ctx(), &jql, limit).await?;
    let text = issue_lines(issues.iter().map(|i| {
        (
            i.key.as_str(),
            i.status.as_deref(),
            i.summary.as_deref(),
            i.url.as_str(),
        )
    }));
    Ok(Output {
        structured: json!({ "source": "jira", "issues": issues }),
        text,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

pub async fn jira_list_projects(t: &ToolCtx<'_>, _: NoArgs) -> ToolResult {
    let projects = ops::list_projects(&t.ctx()).await?;
    Ok(Output::json(
        json!({ "source": "jira", "projects": projects }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardsArgs {
    project: Option<String>,
}

pub async fn jira_list_boards(t: &ToolCtx<'_>, a: BoardsArgs) -> ToolResult {
    let boards = ops::list_boards(&t.ctx(), a.project.as_deref()).await?;
    Ok(Output::json(json!({ "source": "jira", "boards": boards })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SprintsArgs {
    board: i64,
    state: Option<String>,
}

pub async fn jira_list_sprints(t: &ToolCtx<'_>, a: SprintsArgs) -> ToolResult {
    if let Some(s) = &a.state {
        if s.split(',')
            .any(|x| !matches!(x.trim(), "active" | "future" | "closed"))
        {
            return Err(ToolError::new(
                "invalid_arguments",
                "state must be a comma list of active, future, closed",
            ));
        }
    }
    let sprints = ops::list_sprints(&t.ctx(), a.board, a.state.as_deref()).await?;
    Ok(Output::json(
        json!({ "source": "jira", "sprints": sprints }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SprintIssuesArgs {
    sprint: i64,
}

pub async fn jira_sprint_issues(t: &ToolCtx<'_>, a: SprintIssuesArgs) -> ToolResult {
    let issues = ops::ranked_issues(
        &t.ctx(),
        &format!("rest/agile/1.0/sprint/{}/issue", a.sprint),
    )
    .await?;
    let text = issue_lines(issues.iter().map(|i| {
        (
            i.key.as_str(),
            i.status.as_deref(),
            i.summary.as_deref(),
            i.url.as_str(),
        )
    }));
    Ok(Output {
        structured: json!({ "source": "jira", "issues": issues }),
        text,
    })
}

// ---- writes available without the typed-write module ---------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EstimateArgs {
    key: String,
    value: f64,
    board: Option<i64>,
}

pub async fn jira_set_estimate(t: &ToolCtx<'_>, a: EstimateArgs) -> ToolResult {
    if !a.value.is_finite() || a.value < 0.0 {
        return Err(ToolError::new(
            "invalid_arguments",
            "value must be a number ≥ 0",
        ));
    }
    let ctx = t.ctx();
    let set = ops::set_estimate(&ctx, &a.key, a.value, a.board);
    match t.issue_write(&a.key, set).await {
        Ok(field_id) => Ok(Output::json(
            json!({ "key": a.key, "field_id": field_id, "value": a.value }),
        )),
        Err(ops::EstimateError::Atlassian(e)) => Err(e.into()),
        Err(e) => Err(ToolError::new("cannot_estimate", e.to_string())),
    }
}
