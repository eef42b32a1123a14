//! The tools over the core's typed writes and Markdown reads
//! (`atlasgate_core::jira::writes`, `atlasgate_core::confluence`).

use serde::Deserialize;
use serde_json::{json, Value};

use atlasgate_core::confluence;
use atlasgate_core::jira::writes;
use atlasgate_core::mcp::idempotency::{self, CreateCall};
use atlasgate_core::mcp::reads;
use atlasgate_core::store::mcp::CreatedIssue;

use super::calls::{Output, ToolError, ToolResult};
use super::ToolCtx;

/// How many recent comments `jira_get_issue` shows.
const COMMENTS: usize = 10;

/// The core's recoverable conflicts, with what a model needs to act on them.
pub fn conflict(e: atlasgate_core::Error) -> ToolError {
    use atlasgate_core::Error as E;
    match e {
        E::NoTransition {
            key,
            to,
            reachable,
            transitions,
        } => {
            let mut err = ToolError::new(
                "no_transition",
                format!(
                    "no transition of {key} leads to `{to}`; reachable statuses now: {}",
                    if reachable.is_empty() {
                        "none".to_string()
                    } else {
                        reachable.join(", ")
                    }
                ),
            );
            err.details.insert("reachable".into(), json!(reachable));
            err.details.insert("transitions".into(), json!(transitions));
            err
        }
        E::AmbiguousUser { query, candidates } => {
            let names: Vec<String> = candidates
                .iter()
                .map(|c| format!("{} ({})", c.display_name, c.account_id))
                .collect();
            let mut err = ToolError::new(
                "ambiguous_user",
                format!(
                    "`{query}` matches several people: {}; call again with one account id or e-mail",
                    names.join(", ")
                ),
            );
            err.details.insert("candidates".into(), json!(candidates));
            err
        }
        E::VersionConflict { page_id, current } => {
            let mut err = ToolError::new(
                "version_conflict",
                format!(
                    "page {page_id} is at version {current}, not the version you read; read it again (confluence_get_page with `live: true`), merge, and update with version {current}"
                ),
            );
            err.details.insert("current_version".into(), json!(current));
            err
        }
        other => other.into(),
    }
}

fn user_text(u: &Option<writes::UserRef>) -> String {
    match u {
        Some(u) => u.display_name.clone(),
        None => "unassigned".into(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetIssueArgs {
    key: String,
    #[serde(default)]
    live: bool,
}

/// An issue as Markdown: heading, facts, description, comments.
fn issue_text(d: &writes::IssueDetail) -> String {
    let mut text = format!(
        "# {}: {}\n\nStatus: {} · Type: {} · Assignee: {}{}\n{}\n\n",
        d.issue.key,
        d.issue.summary.as_deref().unwrap_or(""),
        d.issue.status.as_deref().unwrap_or("?"),
        d.issue.type_.as_deref().unwrap_or("?"),
        user_text(&d.assignee),
        d.resolution
            .as_deref()
            .map(|r| format!(" · Resolution: {r}"))
            .unwrap_or_default(),
        d.issue.url,
    );
    text.push_str(
        d.description_markdown
            .as_deref()
            .unwrap_or("(no description)"),
    );
    text.push('\n');
    if !d.comments.is_empty() {
        text.push_str("\n## Comments\n");
        for c in &d.comments {
            text.push_str(&format!(
                "\n**{}** ({}):\n\n{}\n",
                c.author.as_deref().unwrap_or("someone"),
                c.created.as_deref().unwrap_or(""),
                c.markdown
            ));
        }
    }
    text
}

/// A store answer's structured content: the live shape plus `source`,
/// `sync_id` and `synced_at`, without the members named (what a sync does
/// not keep).
fn from_store(answer: Value, from: &reads::FromStore, absent: &[&str]) -> Value {
    let mut v = answer;
    if let Some(o) = v.as_object_mut() {
        for k in absent {
            o.remove(*k);
        }
        o.insert("source".into(), json!("store"));
        o.insert("sync_id".into(), json!(from.sync_id));
        o.insert("synced_at".into(), json!(from.synced_at));
    }
    v
}

/// The first line of a store answer's text.
fn store_note(from: &reads::FromStore, what: &str) -> String {
    format!(
        "From atlasgate's store (sync {}, copy stored {}; no Atlassian call){what}.\n\n",
        from.sync_id, from.synced_at
    )
}

pub async fn jira_get_issue(t: &ToolCtx<'_>, a: GetIssueArgs) -> ToolResult {
    if !a.live {
        if let Some((d, from)) = reads::issue_from_store(&t.state.store, &t.row.id, &a.key).await? {
            let text = store_note(
                &from,
                ". Comments are not kept in the store: call again with `live: true` to read them",
            ) + &issue_text(&d);
            return Ok(Output {
                structured: from_store(json!(d), &from, &["comments"]),
                text,
            });
        }
    }
    let d = writes::get_issue_markdown(&t.ctx(), &a.key, COMMENTS)
        .await
        .map_err(conflict)?;
    let text = issue_text(&d);
    let mut structured = json!(d);
    structured["source"] = json!("jira");
    Ok(Output { structured, text })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateArgs {
    project: String,
    issue_type: String,
    summary: String,
    description: Option<String>,
    idempotency_key: Option<String>,
}

pub async fn jira_create_issue(t: &ToolCtx<'_>, a: CreateArgs) -> ToolResult {
    let call = CreateCall {
        project: &a.project,
        issue_type: &a.issue_type,
        summary: &a.summary,
        description: a.description.as_deref(),
        idempotency_key: a.idempotency_key.as_deref(),
    };
    let new = writes::NewIssue {
        project: a.project.clone(),
        issue_type: a.issue_type.clone(),
        summary: a.summary.clone(),
        description_markdown: a.description.clone(),
        fields: serde_json::Map::new(),
    };
    let ctx = t.ctx();
    let (issue, replayed) = idempotency::create_once(&t.state.store, &t.row.id, &call, || async {
        let c = writes::create_issue(&ctx, &new).await?;
        Ok(CreatedIssue {
            id: c.id,
            key: c.key,
            url: c.url,
        })
    })
    .await
    .map_err(conflict)?;
    let text = if replayed {
        format!(
            "{} already exists: the same call created it within the last 10 minutes, so no second issue was made. {}",
            issue.key, issue.url
        )
    } else {
        format!("Created {} — {}", issue.key, issue.url)
    };
    Ok(Output {
        structured: json!({ "key": issue.key, "id": issue.id, "url": issue.url, "replayed": replayed }),
        text,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateArgs {
    key: String,
    summary: Option<String>,
    description: Option<String>,
}

pub async fn jira_update_issue(t: &ToolCtx<'_>, a: UpdateArgs) -> ToolResult {
    if a.summary.is_none() && a.description.is_none() {
        return Err(ToolError::new(
            "invalid_arguments",
            "give summary, description or both",
        ));
    }
    let edit = writes::IssueEdit {
        summary: a.summary.clone(),
        description_markdown: a.description.clone(),
        fields: serde_json::Map::new(),
    };
    t.issue_write(&a.key, writes::update_issue(&t.ctx(), &a.key, &edit))
        .await
        .map_err(conflict)?;
    Ok(Output {
        structured: json!({ "key": a.key, "updated": true }),
        text: format!("Updated {}", a.key),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransitionArgs {
    key: String,
    to: String,
}

pub async fn jira_transition_issue(t: &ToolCtx<'_>, a: TransitionArgs) -> ToolResult {
    let done = t
        .issue_write(&a.key, writes::transition_issue(&t.ctx(), &a.key, &a.to))
        .await
        .map_err(conflict)?;
    Ok(Output {
        text: format!(
            "{} is now {} (transition “{}”)",
            a.key, done.status, done.transition_name
        ),
        structured: json!({ "key": a.key, "status": done.status, "transition": { "id": done.transition_id, "name": done.transition_name } }),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignArgs {
    key: String,
    assignee: Option<String>,
}

pub async fn jira_assign_issue(t: &ToolCtx<'_>, a: AssignArgs) -> ToolResult {
    let who = match a.assignee.as_deref().map(str::trim) {
        None => writes::Assignee::Unassigned,
        Some("") => {
            return Err(ToolError::new(
                "invalid_arguments",
                "assignee: give an e-mail, account id or name, or null to unassign",
            ))
        }
        Some(s) => writes::Assignee::guess(s),
    };
    let now = t
        .issue_write(&a.key, writes::assign_issue(&t.ctx(), &a.key, &who))
        .await
        .map_err(conflict)?;
    Ok(Output {
        text: format!("{} is assigned to {}", a.key, user_text(&now)),
        structured: json!({ "key": a.key, "assignee": now }),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommentArgs {
    key: String,
    markdown: String,
}

pub async fn jira_add_comment(t: &ToolCtx<'_>, a: CommentArgs) -> ToolResult {
    let c = t
        .issue_write(
            &a.key,
            writes::add_comment_markdown(&t.ctx(), &a.key, &a.markdown),
        )
        .await
        .map_err(conflict)?;
    Ok(Output {
        text: format!("Commented on {} (comment {})", a.key, c.id),
        structured: json!({ "key": a.key, "id": c.id, "created": c.created }),
    })
}

// ---- Confluence -----------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CqlArgs {
    cql: String,
    limit: Option<i64>,
}

pub async fn confluence_search(t: &ToolCtx<'_>, a: CqlArgs) -> ToolResult {
    let limit = a.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ToolError::new("invalid_arguments", "limit must be 1–100"));
    }
    let hits = confluence::search(&t.ctx(), &a.cql, limit as usize)
        .await
        .map_err(conflict)?;
    let mut text = String::new();
    for h in &hits {
        text.push_str(&format!(
            "- {} “{}” (id {}{}) {}\n",
            h.type_,
            h.title,
            h.id,
            h.space_key
                .as_deref()
                .map(|s| format!(", space {s}"))
                .unwrap_or_default(),
            h.url.as_deref().unwrap_or("")
        ));
    }
    if text.is_empty() {
        text.push_str("Nothing found.\n");
    }
    Ok(Output {
        structured: json!({ "source": "confluence", "results": hits }),
        text,
    })
}

fn page_output(p: &confluence::PageDetail, source: &str) -> Output {
    let mut structured = json!(p);
    structured["source"] = json!(source);
    Output {
        text: format!(
            "# {}\n\nPage {} · version {} · {}\n\n{}\n",
            p.title,
            p.id,
            p.version,
            p.url.as_deref().unwrap_or(""),
            p.markdown
        ),
        structured,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageArgs {
    id: String,
    #[serde(default)]
    live: bool,
}

pub async fn confluence_get_page(t: &ToolCtx<'_>, a: PageArgs) -> ToolResult {
    if !a.live {
        if let Some((p, from)) = reads::page_from_store(&t.state.store, &t.row.id, &a.id).await? {
            let mut out = page_output(&p, "store");
            out.text = store_note(&from, "") + &out.text;
            out.structured = from_store(out.structured, &from, &["status", "parent_id"]);
            return Ok(out);
        }
    }
    let p = confluence::get_page(&t.ctx(), &a.id)
        .await
        .map_err(conflict)?;
    Ok(page_output(&p, "confluence"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPageArgs {
    space: String,
    title: String,
    markdown: String,
    parent_id: Option<String>,
}

pub async fn confluence_create_page(t: &ToolCtx<'_>, a: NewPageArgs) -> ToolResult {
    let new = confluence::NewPage {
        space: a.space,
        title: a.title,
        markdown: a.markdown,
        parent_id: a.parent_id,
    };
    let p = confluence::create_page(&t.ctx(), &new)
        .await
        .map_err(conflict)?;
    Ok(page_output(&p, "confluence"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageUpdateArgs {
    id: String,
    markdown: String,
    version: i64,
    title: Option<String>,
}

pub async fn confluence_update_page(t: &ToolCtx<'_>, a: PageUpdateArgs) -> ToolResult {
    let upd = confluence::PageUpdate {
        title: a.title,
        markdown: a.markdown,
        version: a.version,
    };
    let p = t
        .page_write(&a.id, confluence::update_page(&t.ctx(), &a.id, &upd))
        .await
        .map_err(conflict)?;
    Ok(page_output(&p, "confluence"))
}
