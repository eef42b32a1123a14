//! Changing issues: the one implementation behind `PUT /issue`, `POST
//! /issue`, the agile estimation endpoint and `/__sim/issues`, so every path
//! validates, records a changelog and bumps `updated` the same way.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde_json::{json, Map, Value};

use crate::errors::ApiError;
use crate::jql::adf_text;
use crate::model::{Issue, IssueType, Site, Status, Timestamp, User};
use crate::webhooks::ChangeItem;

#[derive(Debug, Clone, Copy, Default)]
pub struct EditMode {
    /// `/rest/api/2`: descriptions are plain text.
    pub v2: bool,
    /// The control plane: may also set `status` and accepts plain-text
    /// descriptions (a test harness, not a Jira screen).
    pub sim: bool,
}

pub const NOT_ON_SCREEN: &str = "cannot be set. It is not on the appropriate screen, or unknown.";
pub const NOT_ADF: &str =
    "Operation value must be an Atlassian Document (see the Atlassian Document Format)";

/// A valid ADF document: `{"type":"doc","version":1,"content":[…]}`.
pub fn is_adf_doc(v: &Value) -> bool {
    v.get("type").and_then(Value::as_str) == Some("doc")
        && v.get("version").and_then(Value::as_i64) == Some(1)
        && v.get("content").is_some_and(Value::is_array)
}

/// Plain text as a one-paragraph ADF document.
pub fn text_to_adf(text: &str) -> Value {
    json!({"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": text}]}
    ]})
}

pub fn status_named(name: &str) -> Status {
    match name.to_ascii_lowercase().as_str() {
        "to do" => crate::seed::status_to_do(),
        "in progress" => crate::seed::status_in_progress(),
        "in review" => crate::seed::status_in_review(),
        "done" => crate::seed::status_done(),
        _ => Status {
            id: "10100".into(),
            name: name.to_string(),
            category_key: "new".into(),
        },
    }
}

fn known_issue_types(site: &Site) -> Vec<IssueType> {
    let mut v = crate::jira::catalog::issue_types();
    for i in site.issues.values() {
        if !v.contains(&i.issue_type) {
            v.push(i.issue_type.clone());
        }
    }
    v
}

fn find_issue_type(site: &Site, v: &Value) -> Option<IssueType> {
    let want_id = v.get("id").and_then(Value::as_str).map(str::to_string);
    let want_name = v
        .get("name")
        .and_then(Value::as_str)
        .or_else(|| v.as_str())
        .map(str::to_string);
    known_issue_types(site).into_iter().find(|t| {
        want_id.as_deref() == Some(t.id.as_str())
            || want_name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(&t.name))
    })
}

fn user_ref(v: &Value) -> Option<String> {
    v.get("accountId")
        .and_then(Value::as_str)
        .or_else(|| v.as_str())
        .map(str::to_string)
}

fn display_name(users: &[User], account_id: &str) -> String {
    users
        .iter()
        .find(|u| u.account_id == account_id)
        .map(|u| u.name.clone())
        .unwrap_or_default()
}

fn num_string(v: Option<f64>) -> Option<String> {
    v.map(|n| {
        if n.fract() == 0.0 {
            format!("{}", n as i64)
        } else {
            n.to_string()
        }
    })
}

/// Apply `fields` (and `update` operations) to `issue`, collecting Jira's
/// per-field errors. Nothing is changed unless everything is valid.
pub fn apply_fields(
    site: &Site,
    users: &[User],
    issue: &Issue,
    fields: &Map<String, Value>,
    update: &Map<String, Value>,
    mode: EditMode,
) -> Result<(Issue, Vec<ChangeItem>), ApiError> {
    let mut new = issue.clone();
    let mut errors: BTreeMap<String, String> = BTreeMap::new();

    // `update` ops become field values (labels add/remove, `set` for the rest).
    let mut merged = fields.clone();
    for (field, ops) in update {
        let Some(ops) = ops.as_array() else {
            errors.insert(
                field.clone(),
                "Operation value must be an array of operations".into(),
            );
            continue;
        };
        if crate::jira::breadth::apply_update(
            site,
            &mut new,
            &mut merged,
            field,
            ops,
            mode.v2,
            &mut errors,
        ) {
            continue;
        }
        for op in ops {
            let Some(o) = op.as_object() else { continue };
            if field == "labels" {
                let mut labels: Vec<String> = match merged.get("labels").and_then(Value::as_array) {
                    Some(a) => a
                        .iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect(),
                    None => new.labels.clone(),
                };
                if let Some(x) = o.get("add").and_then(Value::as_str) {
                    if !labels.iter().any(|l| l == x) {
                        labels.push(x.to_string());
                    }
                }
                if let Some(x) = o.get("remove").and_then(Value::as_str) {
                    labels.retain(|l| l != x);
                }
                if let Some(Value::Array(a)) = o.get("set") {
                    labels = a
                        .iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect();
                }
                merged.insert("labels".into(), json!(labels));
            } else if let Some(v) = o.get("set") {
                merged.insert(field.clone(), v.clone());
            } else {
                errors.insert(field.clone(), format!("Field '{field}' {NOT_ON_SCREEN}"));
            }
        }
    }

    for (field, v) in &merged {
        let f = field.as_str();
        if f == "summary" {
            match v.as_str().map(str::trim) {
                Some(s) if !s.is_empty() => new.summary = s.to_string(),
                _ => {
                    errors.insert(f.into(), "You must specify a summary of the issue.".into());
                }
            }
        } else if f == "description" {
            match v {
                Value::Null => new.description = None,
                Value::String(s) if mode.v2 || mode.sim => {
                    new.description = if s.is_empty() {
                        None
                    } else {
                        Some(text_to_adf(s))
                    }
                }
                d if is_adf_doc(d) && !mode.v2 => new.description = Some(d.clone()),
                _ => {
                    errors.insert(f.into(), NOT_ADF.into());
                }
            }
        } else if f == "labels" {
            match v.as_array() {
                Some(a) if a.iter().all(Value::is_string) => {
                    let labels: Vec<String> = a
                        .iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect();
                    if let Some(bad) = labels.iter().find(|l| l.contains(' ')) {
                        errors.insert(
                            f.into(),
                            format!("The label '{bad}' contains spaces which is invalid."),
                        );
                    } else {
                        new.labels = labels;
                    }
                }
                None if v.is_null() => new.labels.clear(),
                _ => {
                    errors.insert(f.into(), "data was not an array".into());
                }
            }
        } else if f == "priority" {
            let name = v.get("name").and_then(Value::as_str).or_else(|| v.as_str());
            let id = v.get("id").and_then(Value::as_str);
            let found = crate::jira::render::PRIORITIES.iter().find(|(pid, pname)| {
                Some(*pid) == id || name.is_some_and(|n| n.eq_ignore_ascii_case(pname))
            });
            match found {
                Some((_, pname)) => new.priority = pname.to_string(),
                None => {
                    errors.insert(f.into(), "The priority selected is invalid.".into());
                }
            }
        } else if f == "assignee" || f == "reporter" {
            match v {
                Value::Null if f == "assignee" => new.assignee = None,
                _ => match user_ref(v) {
                    Some(id) if users.iter().any(|u| u.account_id == id) => {
                        if f == "assignee" {
                            new.assignee = Some(id)
                        } else {
                            new.reporter = id
                        }
                    }
                    _ => {
                        errors.insert(f.into(), format!("Specify a valid value for {f}"));
                    }
                },
            }
        } else if f == "issuetype" {
            match find_issue_type(site, v) {
                Some(t) => new.issue_type = t,
                None => {
                    errors.insert(f.into(), "Specify a valid issue type".into());
                }
            }
        } else if f == "status" && mode.sim {
            match v.get("name").and_then(Value::as_str).or_else(|| v.as_str()) {
                Some(n) => new.status = status_named(n),
                None => {
                    errors.insert(f.into(), "Specify a status name".into());
                }
            }
        } else if f == site.story_points_field.id {
            match v {
                Value::Null => new.story_points = None,
                Value::Number(n) => new.story_points = n.as_f64(),
                _ => {
                    errors.insert(f.into(), "Operation value must be a number.".into());
                }
            }
        } else if f == site.sprint_field.id {
            match v {
                Value::Null => new.sprint_id = None,
                v => match v.as_u64().or_else(|| v.get("id").and_then(Value::as_u64)) {
                    Some(id) if site.sprint(id).is_some() => new.sprint_id = Some(id),
                    _ => {
                        errors.insert(f.into(), "Sprint with the given id does not exist.".into());
                    }
                },
            }
        } else if let Some(result) = crate::jira::breadth::apply_field(site, &mut new, f, v) {
            if let Err(message) = result {
                errors.insert(f.into(), message);
            }
        } else if f.starts_with("customfield_")
            && f != site.rank_field.id
            && f[12..].parse::<u64>().is_ok()
        {
            if v.is_null() {
                new.custom_fields.remove(f);
            } else {
                new.custom_fields.insert(f.to_string(), v.clone());
            }
        } else {
            errors.insert(f.into(), format!("Field '{f}' {NOT_ON_SCREEN}"));
        }
    }
    crate::jira::breadth::validate(site, issue, &new, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Jira {
            status: StatusCode::BAD_REQUEST,
            messages: vec![],
            errors,
        });
    }
    let changes = diff(site, users, issue, &new);
    Ok((new, changes))
}

fn item(
    field: &str,
    custom: bool,
    field_id: &str,
    from: Option<String>,
    from_s: Option<String>,
    to: Option<String>,
    to_s: Option<String>,
) -> ChangeItem {
    ChangeItem {
        field: field.to_string(),
        fieldtype: if custom { "custom" } else { "jira" }.to_string(),
        field_id: field_id.to_string(),
        from,
        from_string: from_s,
        to,
        to_string: to_s,
    }
}

/// The changelog items between two versions of an issue.
pub fn diff(site: &Site, users: &[User], old: &Issue, new: &Issue) -> Vec<ChangeItem> {
    let mut out = Vec::new();
    if old.summary != new.summary {
        out.push(item(
            "summary",
            false,
            "summary",
            None,
            Some(old.summary.clone()),
            None,
            Some(new.summary.clone()),
        ));
    }
    if old.description != new.description {
        let t = |d: &Option<Value>| d.as_ref().map(adf_text);
        out.push(item(
            "description",
            false,
            "description",
            None,
            t(&old.description),
            None,
            t(&new.description),
        ));
    }
    if old.labels != new.labels {
        out.push(item(
            "labels",
            false,
            "labels",
            None,
            Some(old.labels.join(" ")),
            None,
            Some(new.labels.join(" ")),
        ));
    }
    if old.priority != new.priority {
        let id = |n: &str| {
            crate::jira::render::PRIORITIES
                .iter()
                .find(|(_, p)| *p == n)
                .map(|(i, _)| i.to_string())
        };
        out.push(item(
            "priority",
            false,
            "priority",
            id(&old.priority),
            Some(old.priority.clone()),
            id(&new.priority),
            Some(new.priority.clone()),
        ));
    }
    if old.assignee != new.assignee {
        let name = |a: &Option<String>| a.as_ref().map(|a| display_name(users, a));
        out.push(item(
            "assignee",
            false,
            "assignee",
            old.assignee.clone(),
            name(&old.assignee),
            new.assignee.clone(),
            name(&new.assignee),
        ));
    }
    if old.reporter != new.reporter {
        out.push(item(
            "reporter",
            false,
            "reporter",
            Some(old.reporter.clone()),
            Some(display_name(users, &old.reporter)),
            Some(new.reporter.clone()),
            Some(display_name(users, &new.reporter)),
        ));
    }
    if old.issue_type != new.issue_type {
        out.push(item(
            "issuetype",
            false,
            "issuetype",
            Some(old.issue_type.id.clone()),
            Some(old.issue_type.name.clone()),
            Some(new.issue_type.id.clone()),
            Some(new.issue_type.name.clone()),
        ));
    }
    if old.resolution != new.resolution {
        // Jira lists the resolution before the status it came with.
        out.push(crate::jira::transitions::resolution_item(
            old.resolution.as_deref(),
            new.resolution.as_deref(),
        ));
    }
    if old.status != new.status {
        out.push(item(
            "status",
            false,
            "status",
            Some(old.status.id.clone()),
            Some(old.status.name.clone()),
            Some(new.status.id.clone()),
            Some(new.status.name.clone()),
        ));
    }
    if old.story_points != new.story_points {
        let f = &site.story_points_field;
        out.push(item(
            &f.name,
            true,
            &f.id,
            None,
            num_string(old.story_points),
            None,
            num_string(new.story_points),
        ));
    }
    if old.sprint_id != new.sprint_id {
        let name = |s: Option<u64>| s.and_then(|id| site.sprint(id)).map(|s| s.name.clone());
        let f = &site.sprint_field;
        out.push(item(
            &f.name,
            true,
            &f.id,
            old.sprint_id.map(|s| s.to_string()),
            name(old.sprint_id),
            new.sprint_id.map(|s| s.to_string()),
            name(new.sprint_id),
        ));
    }
    let keys: std::collections::BTreeSet<&String> = old
        .custom_fields
        .keys()
        .chain(new.custom_fields.keys())
        .collect();
    for k in keys {
        let (a, b) = (old.custom_fields.get(k), new.custom_fields.get(k));
        if a != b {
            let s = |v: Option<&Value>| {
                v.map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                })
            };
            out.push(item(k, true, k, None, s(a), None, s(b)));
        }
    }
    out.extend(crate::jira::breadth::diff_extra(site, old, new));
    out
}

fn rank_value(rank: &str) -> Option<u64> {
    let digits = rank.strip_prefix("0|i")?.strip_suffix(':')?;
    u64::from_str_radix(digits, 36).ok()
}

/// Create an issue from a `fields` object (`project`, `issuetype`,
/// `summary` required). Returns the new issue (already stored in `site`).
pub fn create_issue(
    site: &mut Site,
    users: &[User],
    fields: &Map<String, Value>,
    reporter: &str,
    now: Timestamp,
    mode: EditMode,
) -> Result<Issue, ApiError> {
    let mut errors: BTreeMap<String, String> = BTreeMap::new();
    let project_ref = fields.get("project");
    let project = project_ref.and_then(|p| {
        let key_or_id = p
            .get("key")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| {
                p.get("id").and_then(|i| {
                    i.as_str()
                        .map(str::to_string)
                        .or_else(|| i.as_u64().map(|n| n.to_string()))
                })
            })
            .or_else(|| p.as_str().map(str::to_string))?;
        site.project_by_key_or_id(&key_or_id).cloned()
    });
    if project.is_none() {
        errors.insert("project".into(), "Specify a valid project ID or key".into());
    }
    let issue_type = match fields.get("issuetype") {
        Some(v) => find_issue_type(site, v),
        None if mode.sim => Some(crate::seed::issue_type_story()),
        None => None,
    };
    if issue_type.is_none() {
        errors.insert("issuetype".into(), "Specify an issue type".into());
    }
    if fields
        .get("summary")
        .and_then(Value::as_str)
        .is_none_or(|s| s.trim().is_empty())
    {
        errors.insert(
            "summary".into(),
            "You must specify a summary of the issue.".into(),
        );
    }
    let (Some(project), Some(issue_type)) = (project, issue_type) else {
        return Err(ApiError::Jira {
            status: StatusCode::BAD_REQUEST,
            messages: vec![],
            errors,
        });
    };
    if !errors.is_empty() {
        return Err(ApiError::Jira {
            status: StatusCode::BAD_REQUEST,
            messages: vec![],
            errors,
        });
    }
    let max_id = site.issues.keys().next_back().copied().unwrap_or(0);
    let id = site.next_issue_id.max(max_id + 1);
    let max_rank = site
        .issues
        .values()
        .filter_map(|i| rank_value(&i.rank))
        .max()
        .unwrap_or(0);
    let number = project.next_issue_number;
    let draft = Issue {
        id,
        key: format!("{}-{}", project.key, number),
        project_id: project.id,
        summary: String::new(),
        description: None,
        issue_type,
        status: crate::seed::status_to_do(),
        priority: "Medium".into(),
        assignee: None,
        reporter: reporter.to_string(),
        labels: vec![],
        created: now,
        updated: now,
        sprint_id: None,
        rank: crate::seed::rank_string(max_rank + crate::seed::RANK_STEP),
        story_points: None,
        custom_fields: BTreeMap::new(),
        comments: vec![],
        resolution: None,
        resolution_date: None,
        status_category_changed: now,
        changelog: vec![],
        extra: Default::default(),
    };
    let mut rest = fields.clone();
    rest.remove("project");
    rest.remove("issuetype");
    let (issue, _) = apply_fields(site, users, &draft, &rest, &Map::new(), mode)?;
    site.next_issue_id = id + 1;
    if let Some(p) = site.projects.iter_mut().find(|p| p.id == project.id) {
        p.next_issue_number = number + 1;
    }
    site.put_issue(issue.clone());
    Ok(issue)
}
