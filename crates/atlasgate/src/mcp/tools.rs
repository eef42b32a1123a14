//! The tool catalogue: each tool's description and the JSON Schema of its
//! input (docs/design.md §16; the names and access are the core's
//! [`atlasgate_core::mcp::TOOLS`]).

use serde_json::{json, Value};

/// One tool as `tools/list` shows it.
#[derive(Debug, Clone)]
pub struct ToolDef {
    pub name: &'static str,
    pub description: &'static str,
    /// The input's JSON Schema (an object schema).
    pub input_schema: Value,
}

fn object(properties: Value, required: &[&str]) -> Value {
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

fn key() -> Value {
    json!({ "type": "string", "description": "The issue key, e.g. `ACME-12` (or its id).", "minLength": 1 })
}

fn live() -> Value {
    json!({ "type": "boolean", "default": false,
            "description": "Read from Atlassian even when a sync of this connection holds a copy (e.g. after a version conflict, or for the comments)." })
}

fn limit(max: u64, default: u64) -> Value {
    json!({ "type": "integer", "minimum": 1, "maximum": max, "default": default,
            "description": format!("Most results to return (default {default}).") })
}

/// Every tool, in the order of the contract.
pub fn catalog() -> Vec<ToolDef> {
    vec![
        ToolDef {
            name: "jira_search",
            description: "Search Jira issues with JQL. Served from atlasgate's local store (no Jira call) when a sync of this connection has the same JQL; `source` in the result says which.",
            input_schema: object(
                json!({
                    "jql": { "type": "string", "minLength": 1, "description": "A bounded JQL query, e.g. `project = ACME AND status != Done`." },
                    "limit": limit(100, 20),
                }),
                &["jql"],
            ),
        },
        ToolDef {
            name: "jira_get_issue",
            description: "Read one Jira issue: summary, status, assignee, description as Markdown and the recent comments as Markdown. Served from atlasgate's local store (no Jira call, no comments) when a sync of this connection holds the issue; `source` in the result says which.",
            input_schema: object(json!({ "key": key(), "live": live() }), &["key"]),
        },
        ToolDef {
            name: "jira_create_issue",
            description: "Create a Jira issue with a Markdown description. Safe to retry: the same call (same arguments, or the same idempotency_key) within 10 minutes returns the first issue instead of creating another.",
            input_schema: object(
                json!({
                    "project": { "type": "string", "minLength": 1, "description": "Project key or id." },
                    "issue_type": { "type": "string", "minLength": 1, "description": "Issue type name (e.g. `Task`, `Bug`) or id." },
                    "summary": { "type": "string", "minLength": 1 },
                    "description": { "type": "string", "description": "Markdown: headings, **bold**, *em*, ~~strike~~, `code`, fenced code blocks, lists, links, tables, mentions as `@[Name](accountId)`." },
                    "idempotency_key": { "type": "string", "minLength": 1, "maxLength": 200, "description": "Optional: calls with the same key within 10 minutes create one issue." },
                }),
                &["project", "issue_type", "summary"],
            ),
        },
        ToolDef {
            name: "jira_update_issue",
            description: "Change an issue's summary and/or its Markdown description.",
            input_schema: object(
                json!({
                    "key": key(),
                    "summary": { "type": "string", "minLength": 1 },
                    "description": { "type": "string", "description": "The new description, Markdown." },
                }),
                &["key"],
            ),
        },
        ToolDef {
            name: "jira_transition_issue",
            description: "Move an issue to a status, by the status name (e.g. `Done`) or a transition name or id. When no transition leads there, the error lists the reachable statuses.",
            input_schema: object(
                json!({ "key": key(), "to": { "type": "string", "minLength": 1, "description": "Target status name, transition name or transition id." } }),
                &["key", "to"],
            ),
        },
        ToolDef {
            name: "jira_assign_issue",
            description: "Assign an issue to a person given by e-mail, account id or name; null unassigns. An ambiguous name lists the candidates.",
            input_schema: object(
                json!({ "key": key(), "assignee": { "type": ["string", "null"], "description": "E-mail, account id or display name; null to unassign." } }),
                &["key", "assignee"],
            ),
        },
        ToolDef {
            name: "jira_add_comment",
            description: "Comment on an issue in Markdown.",
            input_schema: object(
                json!({ "key": key(), "markdown": { "type": "string", "minLength": 1 } }),
                &["key", "markdown"],
            ),
        },
        ToolDef {
            name: "jira_list_projects",
            description: "List the Jira projects of the connection's site.",
            input_schema: object(json!({}), &[]),
        },
        ToolDef {
            name: "jira_list_boards",
            description: "List Jira Software boards, optionally of one project.",
            input_schema: object(
                json!({ "project": { "type": "string", "minLength": 1, "description": "Project key or id." } }),
                &[],
            ),
        },
        ToolDef {
            name: "jira_list_sprints",
            description: "List a scrum board's sprints.",
            input_schema: object(
                json!({
                    "board": { "type": "integer", "description": "Board id." },
                    "state": { "type": "string", "description": "Comma list of `active`, `future`, `closed`; all when absent.", "pattern": "^(active|future|closed)(,(active|future|closed))*$" },
                }),
                &["board"],
            ),
        },
        ToolDef {
            name: "jira_sprint_issues",
            description: "List a sprint's issues in rank order.",
            input_schema: object(
                json!({ "sprint": { "type": "integer", "description": "Sprint id." } }),
                &["sprint"],
            ),
        },
        ToolDef {
            name: "jira_set_estimate",
            description: "Set an issue's story-point estimate (through the board's estimation field when a board is given).",
            input_schema: object(
                json!({
                    "key": key(),
                    "value": { "type": "number", "minimum": 0 },
                    "board": { "type": "integer", "description": "Board id (optional)." },
                }),
                &["key", "value"],
            ),
        },
        ToolDef {
            name: "confluence_search",
            description: "Search Confluence with CQL, e.g. `type = page AND space = ENG AND text ~ \"release\"`.",
            input_schema: object(
                json!({ "cql": { "type": "string", "minLength": 1 }, "limit": limit(100, 20) }),
                &["cql"],
            ),
        },
        ToolDef {
            name: "confluence_get_page",
            description: "Read a Confluence page: title, version and body as Markdown. Pass the version to confluence_update_page. Served from atlasgate's local store (no Confluence call) when a sync of this connection holds the page; `source` in the result says which.",
            input_schema: object(
                json!({ "id": { "type": "string", "minLength": 1, "description": "Page id." }, "live": live() }),
                &["id"],
            ),
        },
        ToolDef {
            name: "confluence_create_page",
            description: "Create a Confluence page from Markdown.",
            input_schema: object(
                json!({
                    "space": { "type": "string", "minLength": 1, "description": "Space key or id." },
                    "title": { "type": "string", "minLength": 1 },
                    "markdown": { "type": "string" },
                    "parent_id": { "type": "string", "minLength": 1, "description": "Parent page id (optional)." },
                }),
                &["space", "title", "markdown"],
            ),
        },
        ToolDef {
            name: "confluence_update_page",
            description: "Replace a Confluence page's body (Markdown). `version` is the version you read; if the page has moved on, the error gives the current version: read it again and merge.",
            input_schema: object(
                json!({
                    "id": { "type": "string", "minLength": 1, "description": "Page id." },
                    "markdown": { "type": "string" },
                    "version": { "type": "integer", "minimum": 1, "description": "The page version you read." },
                    "title": { "type": "string", "minLength": 1 },
                }),
                &["id", "markdown", "version"],
            ),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_is_the_contracts_sixteen_tools_in_order() {
        let names: Vec<&str> = catalog().iter().map(|t| t.name).collect();
        let contract: Vec<&str> = atlasgate_core::mcp::TOOLS.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, contract);
        for t in catalog() {
            assert_eq!(t.input_schema["type"], "object", "{}", t.name);
            for r in t.input_schema["required"].as_array().unwrap() {
                let r = r.as_str().unwrap();
                assert!(
                    t.input_schema["properties"][r].is_object(),
                    "{}: required `{r}` has no schema",
                    t.name
                );
            }
        }
    }
}
