//! The issue fields beyond the first release: `parent`, `subtasks`,
//! `duedate`, `components`, `fixVersions`, `issuelinks` — rendered, set
//! through `fields`, changed through `update` (`add`/`set`/`remove`, also
//! for `comment`), recorded in the changelog — plus requested-but-empty
//! fields as `null` and `renderedFields` (ADF rendered to HTML).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::catalog::{component_ref, link_type_json, version_ref};
use super::render;
use super::service::{is_adf_doc, text_to_adf, NOT_ADF};
use crate::model::{Issue, Site, Timestamp, User};
use crate::webhooks::ChangeItem;

/// `{id, key, self, fields:{summary, status, priority, issuetype}}`: how
/// Jira embeds another issue (parent, sub-tasks, links).
pub fn issue_ref(rest_base: &str, other: &Issue) -> Value {
    json!({
        "id": other.id.to_string(),
        "key": other.key,
        "self": format!("{rest_base}/issue/{}", other.id),
        "fields": {
            "summary": other.summary,
            "status": render::status(rest_base, &other.status),
            "priority": render::priority(rest_base, &other.priority),
            "issuetype": render::issue_type(rest_base, &other.issue_type),
        }
    })
}

/// The issue links of `issue` as its `issuelinks` field shows them: the
/// other end under `outwardIssue` when `issue` is the link's inward
/// (source) issue, else under `inwardIssue`.
pub fn issue_links(rest_base: &str, site: &Site, issue: &Issue) -> Vec<Value> {
    site.catalog
        .issue_links
        .iter()
        .filter(|l| l.inward_id == issue.id || l.outward_id == issue.id)
        .filter_map(|l| {
            let (slot, other) = if l.inward_id == issue.id {
                ("outwardIssue", l.outward_id)
            } else {
                ("inwardIssue", l.inward_id)
            };
            let other = site.issues.get(&other)?;
            let mut v = json!({
                "id": l.id.to_string(),
                "self": format!("{rest_base}/issueLink/{}", l.id),
                "type": link_type_json(rest_base, &l.type_id),
            });
            if let Some(o) = v.as_object_mut() {
                o.insert(slot.into(), issue_ref(rest_base, other));
            }
            Some(v)
        })
        .collect()
}

/// The extra fields of an issue (id, navigable, value), appended to
/// `render::issue_fields`.
pub fn extra_fields(rest_base: &str, site: &Site, issue: &Issue) -> Vec<(String, bool, Value)> {
    let parent = issue
        .extra
        .parent_id
        .and_then(|p| site.issues.get(&p))
        .map(|p| issue_ref(rest_base, p))
        .unwrap_or(Value::Null);
    let subtasks: Vec<Value> = site
        .catalog
        .children
        .get(&issue.id)
        .into_iter()
        .flatten()
        .filter_map(|id| site.issues.get(id))
        .filter(|i| i.issue_type.subtask)
        .map(|i| issue_ref(rest_base, i))
        .collect();
    let components: Vec<Value> = issue
        .extra
        .components
        .iter()
        .filter_map(|id| site.catalog.components.iter().find(|c| c.id == *id))
        .map(|c| component_ref(rest_base, c))
        .collect();
    let versions: Vec<Value> = issue
        .extra
        .fix_versions
        .iter()
        .filter_map(|id| site.catalog.versions.iter().find(|v| v.id == *id))
        .map(|v| version_ref(rest_base, v))
        .collect();
    vec![
        ("parent".into(), true, parent),
        ("subtasks".into(), true, Value::Array(subtasks)),
        (
            "duedate".into(),
            true,
            issue
                .extra
                .due_date
                .map(|d| json!(d.to_string()))
                .unwrap_or(Value::Null),
        ),
        ("components".into(), true, Value::Array(components)),
        ("fixVersions".into(), true, Value::Array(versions)),
        (
            "issuelinks".into(),
            true,
            Value::Array(issue_links(rest_base, site, issue)),
        ),
    ]
}

/// `FieldDetails` of the extra fields, appended to `render::field_list`.
pub fn extra_field_defs() -> Vec<Value> {
    let def = |id: &str, name: &str, schema: Value, clauses: &[&str]| {
        json!({"id": id, "key": id, "name": name, "custom": false, "orderable": true,
               "navigable": true, "searchable": true, "clauseNames": clauses, "schema": schema})
    };
    vec![
        def(
            "parent",
            "Parent",
            json!({"type": "any", "system": "parent"}),
            &["parent"],
        ),
        def(
            "subtasks",
            "Sub-tasks",
            json!({"type": "array", "items": "issuelinks", "system": "subtasks"}),
            &["subtasks"],
        ),
        def(
            "duedate",
            "Due date",
            json!({"type": "date", "system": "duedate"}),
            &["due", "duedate"],
        ),
        def(
            "components",
            "Components",
            json!({"type": "array", "items": "component", "system": "components"}),
            &["component"],
        ),
        def(
            "fixVersions",
            "Fix versions",
            json!({"type": "array", "items": "version", "system": "fixVersions"}),
            &["fixVersion"],
        ),
        def(
            "issuelinks",
            "Linked Issues",
            json!({"type": "array", "items": "issuelinks", "system": "issuelinks"}),
            &["issueLink"],
        ),
    ]
}

/// Fields named explicitly in `fields=` that the issue has no entry for
/// come back as `null` (as Jira does) when the site knows the field; names
/// the site does not know are left out (*guess*).
pub fn fill_requested_nulls(site: &Site, requested: &[String], fields: &mut Map<String, Value>) {
    // Most requests name only fields the issue has: skip building the list.
    if requested
        .iter()
        .all(|f| f == "id" || f == "key" || fields.contains_key(f))
    {
        return;
    }
    let known: Vec<String> = render::field_list(site)
        .iter()
        .filter_map(|f| f["id"].as_str().map(str::to_string))
        .collect();
    for f in requested {
        let custom = f
            .strip_prefix("customfield_")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if f != "id" && f != "key" && !fields.contains_key(f) && (custom || known.contains(f)) {
            fields.insert(f.clone(), Value::Null);
        }
    }
}

fn find_issue_ref(site: &Site, v: &Value) -> Option<u64> {
    let key = v
        .get("key")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            v.get("id").and_then(|i| {
                i.as_str()
                    .map(str::to_string)
                    .or_else(|| i.as_u64().map(|n| n.to_string()))
            })
        })
        .or_else(|| v.as_str().map(str::to_string))?;
    site.resolve_issue_id(&key)
}

/// Resolve `[{id}|{name}]` against the project's components or versions.
fn resolve_named(
    items: &Value,
    candidates: &[(u64, String)],
    what: &str,
) -> Result<Vec<u64>, String> {
    let Some(arr) = items.as_array() else {
        if items.is_null() {
            return Ok(vec![]);
        }
        return Err("data was not an array".into());
    };
    let mut out = Vec::new();
    for item in arr {
        let id = item.get("id").and_then(|i| {
            i.as_str()
                .map(str::to_string)
                .or_else(|| i.as_u64().map(|n| n.to_string()))
        });
        let name = item
            .get("name")
            .and_then(Value::as_str)
            .or_else(|| item.as_str());
        let found = match (&id, name) {
            (Some(id), _) => candidates
                .iter()
                .find(|(c, _)| c.to_string() == *id)
                .map(|(c, _)| *c)
                .ok_or_else(|| format!("{what} with id '{id}' does not exist.")),
            (None, Some(n)) => candidates
                .iter()
                .find(|(_, cn)| cn.eq_ignore_ascii_case(n))
                .map(|(c, _)| *c)
                .ok_or_else(|| format!("{what} name '{n}' is not valid")),
            (None, None) => Err(format!("{what} must be given by id or name")),
        }?;
        if !out.contains(&found) {
            out.push(found);
        }
    }
    Ok(out)
}

fn project_components(site: &Site, project_id: u64) -> Vec<(u64, String)> {
    site.catalog
        .components
        .iter()
        .filter(|c| c.project_id == project_id)
        .map(|c| (c.id, c.name.clone()))
        .collect()
}

fn project_versions(site: &Site, project_id: u64) -> Vec<(u64, String)> {
    site.catalog
        .versions
        .iter()
        .filter(|v| v.project_id == project_id)
        .map(|v| (v.id, v.name.clone()))
        .collect()
}

/// Set one of the extra fields from a `fields` value. `None`: not one of
/// them; `Some(Err(message))`: Jira's per-field error.
pub fn apply_field(
    site: &Site,
    new: &mut Issue,
    field: &str,
    v: &Value,
) -> Option<Result<(), String>> {
    let result = match field {
        "parent" => match v {
            Value::Null => {
                new.extra.parent_id = None;
                Ok(())
            }
            v => match find_issue_ref(site, v) {
                Some(id) if id != new.id => {
                    new.extra.parent_id = Some(id);
                    Ok(())
                }
                _ => Err("Could not find issue by id or key.".into()),
            },
        },
        "duedate" => match v {
            Value::Null => {
                new.extra.due_date = None;
                Ok(())
            }
            Value::String(s) if s.is_empty() => {
                new.extra.due_date = None;
                Ok(())
            }
            Value::String(s) => match chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
                Ok(d) => {
                    new.extra.due_date = Some(d);
                    Ok(())
                }
                Err(_) => Err(format!("Error parsing date string: {s}")),
            },
            _ => Err("Error parsing date string".into()),
        },
        "components" => resolve_named(v, &project_components(site, new.project_id), "Component")
            .map(|ids| new.extra.components = ids),
        "fixVersions" => resolve_named(v, &project_versions(site, new.project_id), "Version")
            .map(|ids| new.extra.fix_versions = ids),
        _ => return None,
    };
    Some(result)
}

/// Apply `update` operations on `components`, `fixVersions` and `comment`.
/// Returns false for other fields (the caller handles them). Components and
/// versions become a merged `fields` value; comment operations change
/// `new.comments` (new comments get id 0 until [`finish_comments`]).
pub fn apply_update(
    site: &Site,
    new: &mut Issue,
    merged: &mut Map<String, Value>,
    field: &str,
    ops: &[Value],
    v2: bool,
    errors: &mut BTreeMap<String, String>,
) -> bool {
    match field {
        "components" | "fixVersions" => {
            let candidates = if field == "components" {
                project_components(site, new.project_id)
            } else {
                project_versions(site, new.project_id)
            };
            let what = if field == "components" {
                "Component"
            } else {
                "Version"
            };
            let current = if field == "components" {
                &new.extra.components
            } else {
                &new.extra.fix_versions
            };
            let mut ids: Vec<u64> = match merged.get(field) {
                Some(v) => match resolve_named(v, &candidates, what) {
                    Ok(ids) => ids,
                    Err(e) => {
                        errors.insert(field.into(), e);
                        return true;
                    }
                },
                None => current.clone(),
            };
            for op in ops {
                let Some(o) = op.as_object() else { continue };
                for (verb, value) in o {
                    let items = match verb.as_str() {
                        "set" => value.clone(),
                        _ => Value::Array(vec![value.clone()]),
                    };
                    match resolve_named(&items, &candidates, what) {
                        Ok(found) => match verb.as_str() {
                            "set" => ids = found,
                            "add" => {
                                for f in found {
                                    if !ids.contains(&f) {
                                        ids.push(f);
                                    }
                                }
                            }
                            "remove" => ids.retain(|i| !found.contains(i)),
                            _ => {
                                errors.insert(
                                    field.into(),
                                    format!("Operation '{verb}' is not supported for {field}."),
                                );
                            }
                        },
                        Err(e) => {
                            errors.insert(field.into(), e);
                        }
                    }
                }
            }
            merged.insert(
                field.into(),
                Value::Array(ids.iter().map(|i| json!({"id": i.to_string()})).collect()),
            );
            true
        }
        "comment" => {
            for op in ops {
                let Some(o) = op.as_object() else { continue };
                for (verb, value) in o {
                    if let Err(e) = comment_op(new, verb, value, v2) {
                        errors.insert("comment".into(), e);
                    }
                }
            }
            true
        }
        _ => false,
    }
}

fn comment_body(value: &Value, v2: bool) -> Result<Value, String> {
    match value.get("body") {
        Some(Value::String(s)) if v2 && !s.trim().is_empty() => Ok(text_to_adf(s)),
        Some(d) if !v2 && is_adf_doc(d) => Ok(d.clone()),
        None | Some(Value::Null) => Err("Comment body can not be empty!".into()),
        Some(Value::String(s)) if s.trim().is_empty() => {
            Err("Comment body can not be empty!".into())
        }
        Some(_) => Err(NOT_ADF.into()),
    }
}

fn comment_op(new: &mut Issue, verb: &str, value: &Value, v2: bool) -> Result<(), String> {
    let id = || {
        value.get("id").and_then(|i| {
            i.as_str()
                .and_then(|s| s.parse::<u64>().ok())
                .or_else(|| i.as_u64())
        })
    };
    match verb {
        "add" => {
            let body = comment_body(value, v2)?;
            new.comments.push(crate::model::Comment {
                id: 0,
                author_account_id: String::new(),
                body,
                created: new.updated,
                updated: new.updated,
            });
            Ok(())
        }
        "edit" => {
            let body = comment_body(value, v2)?;
            let target = id().ok_or("Comment id is required.")?;
            let c = new
                .comments
                .iter_mut()
                .find(|c| c.id == target)
                .ok_or_else(|| format!("Can not find a comment for the id: {target}."))?;
            c.body = body;
            Ok(())
        }
        "remove" => {
            let target = id().ok_or("Comment id is required.")?;
            let before = new.comments.len();
            new.comments.retain(|c| c.id != target);
            if new.comments.len() == before {
                return Err(format!("Can not find a comment for the id: {target}."));
            }
            Ok(())
        }
        _ => Err(format!("Operation '{verb}' is not supported for comment.")),
    }
}

/// Give comments added by `update.comment` their id, author and time, and
/// stamp edited ones. True when the comments changed at all.
pub fn finish_comments(
    site: &mut Site,
    old: &Issue,
    new: &mut Issue,
    user: &str,
    now: Timestamp,
) -> bool {
    let mut changed = old.comments.len() != new.comments.len();
    for c in new.comments.iter_mut() {
        if c.id == 0 {
            c.id = site.next_comment_id;
            site.next_comment_id += 1;
            c.author_account_id = user.to_string();
            c.created = now;
            c.updated = now;
            changed = true;
        } else if let Some(o) = old.comments.iter().find(|o| o.id == c.id) {
            if o.body != c.body {
                c.updated = now;
                changed = true;
            }
        }
    }
    changed
}

/// Hierarchy rules on a changed parent or type: a Subtask needs a parent
/// that is neither an epic nor a sub-task; a story, bug or task may only
/// sit under an Epic; an Epic has no parent.
pub fn validate(site: &Site, old: &Issue, new: &Issue, errors: &mut BTreeMap<String, String>) {
    let created = !site.issues.contains_key(&new.id);
    if !created && old.extra.parent_id == new.extra.parent_id && old.issue_type == new.issue_type {
        return;
    }
    const HIERARCHY: &str = "Given parent work item does not belong to appropriate hierarchy.";
    let parent = new.extra.parent_id.and_then(|p| site.issues.get(&p));
    match (
        new.issue_type.subtask,
        new.issue_type.name == "Epic",
        parent,
    ) {
        (true, _, None) => {
            errors.insert(
                "parent".into(),
                "Issue type is a sub-task but parent issue key or id not specified.".into(),
            );
        }
        (true, _, Some(p)) if p.issue_type.subtask || p.issue_type.name == "Epic" => {
            errors.insert("parent".into(), HIERARCHY.into());
        }
        (false, true, Some(_)) => {
            errors.insert("parent".into(), HIERARCHY.into());
        }
        (false, false, Some(p)) if p.issue_type.name != "Epic" => {
            errors.insert("parent".into(), HIERARCHY.into());
        }
        _ => {}
    }
}

fn names<T>(ids: &[u64], all: &[T], id: impl Fn(&T) -> u64, name: impl Fn(&T) -> String) -> String {
    ids.iter()
        .filter_map(|i| all.iter().find(|x| id(x) == *i))
        .map(name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn change(
    field: &str,
    from: Option<String>,
    from_s: Option<String>,
    to: Option<String>,
    to_s: Option<String>,
) -> ChangeItem {
    ChangeItem {
        field: field.to_string(),
        fieldtype: "jira".into(),
        field_id: field.to_string(),
        from,
        from_string: from_s,
        to,
        to_string: to_s,
    }
}

/// Changelog items of the extra fields, appended to `service::diff`.
pub fn diff_extra(site: &Site, old: &Issue, new: &Issue) -> Vec<ChangeItem> {
    let (a, b) = (&old.extra, &new.extra);
    let mut out = Vec::new();
    if a.parent_id != b.parent_id {
        let key = |p: Option<u64>| p.and_then(|p| site.issues.get(&p)).map(|i| i.key.clone());
        out.push(change(
            "IssueParentAssociation",
            a.parent_id.map(|p| p.to_string()),
            key(a.parent_id),
            b.parent_id.map(|p| p.to_string()),
            key(b.parent_id),
        ));
    }
    if a.due_date != b.due_date {
        let d = |d: Option<chrono::NaiveDate>| d.map(|d| d.to_string());
        out.push(change(
            "duedate",
            d(a.due_date),
            d(a.due_date),
            d(b.due_date),
            d(b.due_date),
        ));
    }
    let comps = &site.catalog.components;
    if a.components != b.components {
        let s = |ids: &[u64]| Some(names(ids, comps, |c| c.id, |c| c.name.clone()));
        out.push(change(
            "Component",
            None,
            s(&a.components),
            None,
            s(&b.components),
        ));
    }
    let vers = &site.catalog.versions;
    if a.fix_versions != b.fix_versions {
        let s = |ids: &[u64]| Some(names(ids, vers, |v| v.id, |v| v.name.clone()));
        out.push(change(
            "Fix Version",
            None,
            s(&a.fix_versions),
            None,
            s(&b.fix_versions),
        ));
    }
    out
}

// ---- renderedFields ----

use crate::auth::consent_page::escape;

fn text_node(node: &Value) -> String {
    let mut html = escape(node["text"].as_str().unwrap_or(""));
    for mark in node["marks"].as_array().into_iter().flatten() {
        html = match mark["type"].as_str().unwrap_or("") {
            "strong" => format!("<b>{html}</b>"),
            "em" => format!("<em>{html}</em>"),
            "code" => format!("<tt>{html}</tt>"),
            "strike" => format!("<del>{html}</del>"),
            "underline" => format!("<ins>{html}</ins>"),
            "subsup" if mark["attrs"]["type"] == "sub" => format!("<sub>{html}</sub>"),
            "subsup" => format!("<sup>{html}</sup>"),
            "link" => format!(
                "<a href=\"{}\" class=\"external-link\" rel=\"nofollow noreferrer\">{html}</a>",
                escape(mark["attrs"]["href"].as_str().unwrap_or(""))
            ),
            _ => html,
        };
    }
    html
}

fn children(node: &Value) -> String {
    node["content"]
        .as_array()
        .into_iter()
        .flatten()
        .map(adf_node)
        .collect()
}

fn adf_node(node: &Value) -> String {
    let attr = |k: &str| node["attrs"][k].clone();
    match node["type"].as_str().unwrap_or("") {
        "doc" => children(node),
        "paragraph" => format!("<p>{}</p>", children(node)),
        "text" => text_node(node),
        "hardBreak" => "<br/>".into(),
        "rule" => "<hr/>".into(),
        "heading" => {
            let level = attr("level").as_u64().unwrap_or(1).clamp(1, 6);
            format!("<h{level}>{}</h{level}>", children(node))
        }
        "bulletList" => format!("<ul>{}</ul>", children(node)),
        "orderedList" => format!("<ol>{}</ol>", children(node)),
        "listItem" => format!("<li>{}</li>", children(node)),
        "blockquote" => format!("<blockquote>{}</blockquote>", children(node)),
        "codeBlock" => format!(
            "<div class=\"code panel\"><div class=\"codeContent panelContent\"><pre>{}</pre></div></div>",
            children(node)
        ),
        "panel" => format!("<div class=\"panel\">{}</div>", children(node)),
        "table" => format!("<table class=\"confluenceTable\"><tbody>{}</tbody></table>", children(node)),
        "tableRow" => format!("<tr>{}</tr>", children(node)),
        "tableHeader" => format!("<th class=\"confluenceTh\">{}</th>", children(node)),
        "tableCell" => format!("<td class=\"confluenceTd\">{}</td>", children(node)),
        "mention" => format!(
            "<a class=\"user-hover\" data-account-id=\"{}\">{}</a>",
            escape(attr("id").as_str().unwrap_or("")),
            escape(attr("text").as_str().unwrap_or(""))
        ),
        "emoji" => escape(attr("text").as_str().or(attr("shortName").as_str()).unwrap_or("")),
        "inlineCard" | "blockCard" => {
            let url = escape(attr("url").as_str().unwrap_or(""));
            format!("<a href=\"{url}\">{url}</a>")
        }
        "status" => escape(attr("text").as_str().unwrap_or("")),
        "date" => attr("timestamp")
            .as_str()
            .and_then(|t| t.parse::<i64>().ok())
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|d| d.format("%d/%b/%y").to_string())
            .unwrap_or_default(),
        _ => children(node),
    }
}

/// An ADF document as Jira's rendered HTML (the common nodes and marks;
/// unknown nodes render their children).
pub fn adf_to_html(doc: &Value) -> String {
    adf_node(doc)
}

/// Jira's rendered date-time, e.g. `01/Dec/26 9:05 AM` (*guess*: Jira uses
/// the viewer's locale and relative forms such as "Today"; atlassim always
/// gives this absolute English form).
fn rendered_time(t: Timestamp) -> String {
    t.format("%d/%b/%y %-I:%M %p").to_string()
}

/// `renderedFields` for `expand=renderedFields`: description and comment
/// bodies as HTML, dates in the rendered form, other fields `null`.
pub fn rendered_fields(rest_base: &str, users: &[User], issue: &Issue) -> Value {
    let comments: Vec<Value> = issue
        .comments
        .iter()
        .map(|c| {
            let mut v = render::comment(rest_base, users, issue, c, false);
            if let Some(o) = v.as_object_mut() {
                o.insert("body".into(), json!(adf_to_html(&c.body)));
                o.insert("created".into(), json!(rendered_time(c.created)));
                o.insert("updated".into(), json!(rendered_time(c.updated)));
            }
            v
        })
        .collect();
    json!({
        "description": issue.description.as_ref().map(adf_to_html),
        "environment": null,
        "created": rendered_time(issue.created),
        "updated": rendered_time(issue.updated),
        "duedate": issue.extra.due_date.map(|d| d.format("%d/%b/%y").to_string()),
        "comment": {
            "comments": comments,
            "maxResults": issue.comments.len(),
            "total": issue.comments.len(),
            "startAt": 0,
        },
    })
}

/// Whether an `expand` value (comma-separated, possibly repeated) asks for `what`.
pub fn expands(values: &[String], what: &str) -> bool {
    values
        .iter()
        .any(|e| e.split(',').any(|x| x.trim() == what))
}

/// Add `renderedFields` to an issue bean when asked for.
pub fn add_rendered(bean: &mut Value, rest_base: &str, users: &[User], issue: &Issue) {
    if let Some(o) = bean.as_object_mut() {
        o.insert(
            "renderedFields".into(),
            rendered_fields(rest_base, users, issue),
        );
    }
}
