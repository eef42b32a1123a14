//! Wire shapes of Jira objects, rendered from the storage model and named as
//! in the platform spec (`IssueBean`, `User`, `Project`, `FieldDetails`, …).

use serde_json::{json, Map, Value};

use crate::jql::adf_text;
use crate::model::{Comment, Issue, IssueType, Project, Site, Sprint, Status, Timestamp, User};

/// Jira's timestamp format: `2026-01-01T12:00:00.000+0000`.
pub fn jira_time(t: Timestamp) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f%z").to_string()
}

pub fn avatar_urls(seed: &str) -> Value {
    let base =
        format!("https://avatar-management--avatars.us-west-2.prod.public.atl-paas.net/{seed}");
    json!({
        "48x48": format!("{base}/48"),
        "24x24": format!("{base}/24"),
        "16x16": format!("{base}/16"),
        "32x32": format!("{base}/32"),
    })
}

/// `UserDetails` as embedded in issues and comments.
pub fn user_details(rest_base: &str, users: &[User], account_id: &str) -> Value {
    let (name, email, tz) = match users.iter().find(|u| u.account_id == account_id) {
        Some(u) => (
            u.name.clone(),
            (!u.email_hidden).then(|| u.email.clone()),
            u.zoneinfo.clone(),
        ),
        None => ("Former user".to_string(), None, "UTC".to_string()),
    };
    let mut v = json!({
        "self": format!("{rest_base}/user?accountId={account_id}"),
        "accountId": account_id,
        "avatarUrls": avatar_urls(account_id),
        "displayName": name,
        "active": true,
        "timeZone": tz,
        "accountType": "atlassian",
    });
    // A private e-mail is left out, not null (privacy settings).
    if let (Some(e), Some(o)) = (email, v.as_object_mut()) {
        o.insert("emailAddress".into(), json!(e));
    }
    v
}

/// `User` as `/myself` answers.
pub fn user_full(rest_base: &str, user: &User) -> Value {
    json!({
        "self": format!("{rest_base}/user?accountId={}", user.account_id),
        "accountId": user.account_id,
        "accountType": "atlassian",
        "emailAddress": user.email,
        "avatarUrls": avatar_urls(&user.account_id),
        "displayName": user.name,
        "active": true,
        "timeZone": user.zoneinfo,
        "locale": "en_US",
        "groups": {"size": 1, "items": []},
        "applicationRoles": {"size": 1, "items": []},
        "expand": "groups,applicationRoles",
    })
}

pub fn project_summary(rest_base: &str, p: &Project) -> Value {
    json!({
        "self": format!("{rest_base}/project/{}", p.id),
        "id": p.id.to_string(),
        "key": p.key,
        "name": p.name,
        "avatarUrls": avatar_urls(&format!("project-{}", p.id)),
        "projectTypeKey": p.project_type_key,
        "simplified": p.style == "next-gen",
        "style": p.style,
        "isPrivate": false,
        "properties": {},
    })
}

pub fn issue_type(rest_base: &str, t: &IssueType) -> Value {
    json!({
        "self": format!("{rest_base}/issuetype/{}", t.id),
        "id": t.id,
        "description": "",
        "iconUrl": format!("https://api.atlassian.com/images/icons/issuetypes/{}.svg", t.name.to_ascii_lowercase()),
        "name": t.name,
        "subtask": t.subtask,
        "hierarchyLevel": if t.subtask { -1 } else if t.name == "Epic" { 1 } else { 0 },
    })
}

pub fn project_full(rest_base: &str, users: &[User], site: &Site, p: &Project) -> Value {
    let mut v = project_summary(rest_base, p);
    let mut types: Vec<IssueType> = Vec::new();
    for i in site.issues.values().filter(|i| i.project_id == p.id) {
        if !types.contains(&i.issue_type) {
            types.push(i.issue_type.clone());
        }
    }
    types.sort_by(|a, b| a.id.cmp(&b.id));
    if let Some(o) = v.as_object_mut() {
        o.insert("description".into(), json!(""));
        o.insert(
            "lead".into(),
            user_details(rest_base, users, &p.lead_account_id),
        );
        o.insert("components".into(), json!([]));
        o.insert("versions".into(), json!([]));
        o.insert(
            "issueTypes".into(),
            Value::Array(types.iter().map(|t| issue_type(rest_base, t)).collect()),
        );
        o.insert("assigneeType".into(), json!("UNASSIGNED"));
        o.insert("roles".into(), json!({}));
    }
    v
}

pub fn status(rest_base: &str, s: &Status) -> Value {
    let (cat_id, cat_name, color) = match s.category_key.as_str() {
        "new" => (2, "To Do", "blue-gray"),
        "indeterminate" => (4, "In Progress", "yellow"),
        "done" => (3, "Done", "green"),
        _ => (1, "No Category", "medium-gray"),
    };
    json!({
        "self": format!("{rest_base}/status/{}", s.id),
        "description": "",
        "iconUrl": format!("{rest_base}/images/icons/statuses/generic.png"),
        "name": s.name,
        "id": s.id,
        "statusCategory": {
            "self": format!("{rest_base}/statuscategory/{cat_id}"),
            "id": cat_id,
            "key": s.category_key,
            "colorName": color,
            "name": cat_name,
        }
    })
}

pub const PRIORITIES: &[(&str, &str)] = &[
    ("1", "Highest"),
    ("2", "High"),
    ("3", "Medium"),
    ("4", "Low"),
    ("5", "Lowest"),
];

pub fn priority(rest_base: &str, name: &str) -> Value {
    let id = PRIORITIES
        .iter()
        .find(|(_, n)| n.eq_ignore_ascii_case(name))
        .map(|(i, _)| *i)
        .unwrap_or("3");
    json!({
        "self": format!("{rest_base}/priority/{id}"),
        "iconUrl": format!("https://api.atlassian.com/images/icons/priorities/{}.svg", name.to_ascii_lowercase()),
        "name": name,
        "id": id,
    })
}

pub fn sprint_field_value(s: &Sprint) -> Value {
    let mut v = json!({
        "id": s.id,
        "name": s.name,
        "state": s.state.as_str(),
        "boardId": s.board_id,
        "goal": s.goal,
    });
    if let Some(o) = v.as_object_mut() {
        if let Some(t) = s.start_date {
            o.insert(
                "startDate".into(),
                json!(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            );
        }
        if let Some(t) = s.end_date {
            o.insert(
                "endDate".into(),
                json!(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            );
        }
        if let Some(t) = s.complete_date {
            o.insert(
                "completeDate".into(),
                json!(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            );
        }
    }
    v
}

pub fn comment(rest_base: &str, users: &[User], issue: &Issue, c: &Comment, v2: bool) -> Value {
    let author = user_details(rest_base, users, &c.author_account_id);
    json!({
        "self": format!("{rest_base}/issue/{}/comment/{}", issue.id, c.id),
        "id": c.id.to_string(),
        "author": author,
        "body": if v2 { Value::String(adf_text(&c.body)) } else { c.body.clone() },
        "updateAuthor": author,
        "created": jira_time(c.created),
        "updated": jira_time(c.updated),
        "jsdPublic": true,
    })
}

/// Which fields to include, from a `fields` parameter (`*all`,
/// `*navigable`, ids, `-id` exclusions).
#[derive(Debug, Clone)]
pub struct FieldSelection {
    all: bool,
    navigable: bool,
    include: Vec<String>,
    exclude: Vec<String>,
}

impl FieldSelection {
    pub fn parse<S: AsRef<str>>(items: &[S], default: &str) -> FieldSelection {
        let mut parts: Vec<String> = items
            .iter()
            .flat_map(|s| {
                s.as_ref()
                    .split(',')
                    .map(|p| p.trim().to_string())
                    .collect::<Vec<_>>()
            })
            .filter(|s| !s.is_empty())
            .collect();
        if parts.is_empty() {
            parts = vec![default.to_string()];
        }
        let mut sel = FieldSelection {
            all: false,
            navigable: false,
            include: vec![],
            exclude: vec![],
        };
        for p in parts {
            match p.as_str() {
                "*all" => sel.all = true,
                "*navigable" => sel.navigable = true,
                _ => match p.strip_prefix('-') {
                    Some(x) => sel.exclude.push(x.to_string()),
                    None => sel.include.push(p),
                },
            }
        }
        sel
    }

    /// Only `id` (and/or `key`) asked for: the issue is rendered bare.
    pub fn ids_only(&self) -> bool {
        !self.all && !self.navigable && self.include.iter().all(|f| f == "id" || f == "key")
    }

    /// The field ids named explicitly.
    pub fn requested(&self) -> &[String] {
        &self.include
    }

    fn wants(&self, id: &str, navigable: bool) -> bool {
        if self.exclude.iter().any(|x| x == id) {
            return false;
        }
        self.all || (self.navigable && navigable) || self.include.iter().any(|x| x == id)
    }
}

/// The issue's fields, keyed by field id.
pub fn issue_fields(
    rest_base: &str,
    users: &[User],
    site: &Site,
    issue: &Issue,
    v2: bool,
) -> Vec<(String, bool, Value)> {
    let project = site.project_by_id(issue.project_id);
    let description = match &issue.description {
        None => Value::Null,
        Some(d) if v2 => Value::String(adf_text(d)),
        Some(d) => d.clone(),
    };
    let sprint = issue
        .sprint_id
        .and_then(|id| site.sprint(id))
        .map(|s| Value::Array(vec![sprint_field_value(s)]))
        .unwrap_or(Value::Null);
    let mut out: Vec<(String, bool, Value)> = vec![
        ("summary".into(), true, json!(issue.summary)),
        ("description".into(), true, description),
        (
            "issuetype".into(),
            true,
            issue_type(rest_base, &issue.issue_type),
        ),
        (
            "project".into(),
            true,
            project
                .map(|p| project_summary(rest_base, p))
                .unwrap_or(Value::Null),
        ),
        ("status".into(), true, status(rest_base, &issue.status)),
        (
            "priority".into(),
            true,
            priority(rest_base, &issue.priority),
        ),
        (
            "assignee".into(),
            true,
            issue
                .assignee
                .as_deref()
                .map(|a| user_details(rest_base, users, a))
                .unwrap_or(Value::Null),
        ),
        (
            "reporter".into(),
            true,
            user_details(rest_base, users, &issue.reporter),
        ),
        (
            "creator".into(),
            true,
            user_details(rest_base, users, &issue.reporter),
        ),
        ("labels".into(), true, json!(issue.labels)),
        ("created".into(), true, json!(jira_time(issue.created))),
        ("updated".into(), true, json!(jira_time(issue.updated))),
        (
            "resolution".into(),
            true,
            crate::jira::transitions::resolution_json(rest_base, issue.resolution.as_deref()),
        ),
        (
            "resolutiondate".into(),
            true,
            issue
                .resolution_date
                .map(|t| json!(jira_time(t)))
                .unwrap_or(Value::Null),
        ),
        (
            "statuscategorychangedate".into(),
            true,
            json!(jira_time(issue.status_category_changed)),
        ),
        (
            site.story_points_field.id.clone(),
            true,
            json!(issue.story_points),
        ),
        (site.sprint_field.id.clone(), true, sprint),
        (site.rank_field.id.clone(), true, json!(issue.rank)),
    ];
    out.extend(super::breadth::extra_fields(rest_base, site, issue));
    for (k, v) in &issue.custom_fields {
        if !out.iter().any(|(id, _, _)| id == k) {
            out.push((k.clone(), true, v.clone()));
        }
    }
    let comments: Vec<Value> = issue
        .comments
        .iter()
        .map(|c| comment(rest_base, users, issue, c, v2))
        .collect();
    out.push((
        "comment".into(),
        false,
        json!({"comments": comments, "maxResults": comments.len(), "total": comments.len(), "startAt": 0, "self": format!("{rest_base}/issue/{}/comment", issue.id)}),
    ));
    out
}

/// An `IssueBean`.
pub fn issue_bean(
    rest_base: &str,
    users: &[User],
    site: &Site,
    issue: &Issue,
    sel: &FieldSelection,
    v2: bool,
) -> Value {
    if sel.ids_only() {
        let mut o = Map::new();
        o.insert("id".into(), json!(issue.id.to_string()));
        if sel.include.iter().any(|f| f == "key") {
            o.insert("key".into(), json!(issue.key));
            o.insert(
                "self".into(),
                json!(format!("{rest_base}/issue/{}", issue.id)),
            );
        }
        return Value::Object(o);
    }
    let mut fields = Map::new();
    for (id, navigable, value) in issue_fields(rest_base, users, site, issue, v2) {
        if sel.wants(&id, navigable) {
            fields.insert(id, value);
        }
    }
    super::breadth::fill_requested_nulls(site, sel.requested(), &mut fields);
    json!({
        "expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
        "id": issue.id.to_string(),
        "self": format!("{rest_base}/issue/{}", issue.id),
        "key": issue.key,
        "fields": fields,
    })
}

/// `FieldDetails` for `/field`: system fields plus the site's custom fields.
pub fn field_list(site: &Site) -> Vec<Value> {
    let system = |id: &str, name: &str, ty: &str, items: Option<&str>, clause: &[&str]| {
        let mut schema = json!({"type": ty, "system": id});
        if let (Some(i), Some(o)) = (items, schema.as_object_mut()) {
            o.insert("items".into(), json!(i));
        }
        json!({
            "id": id, "key": id, "name": name, "custom": false, "orderable": true, "navigable": true,
            "searchable": true, "clauseNames": clause, "schema": schema,
        })
    };
    let custom = |f: &crate::model::FieldDef, ty: &str, items: Option<&str>, custom_type: &str| {
        let num: i64 = f.id.trim_start_matches("customfield_").parse().unwrap_or(0);
        let mut schema = json!({"type": ty, "custom": custom_type, "customId": num});
        if let (Some(i), Some(o)) = (items, schema.as_object_mut()) {
            o.insert("items".into(), json!(i));
        }
        json!({
            "id": f.id, "key": f.id, "name": f.name, "custom": true, "orderable": true,
            "navigable": true, "searchable": true,
            "clauseNames": [format!("cf[{num}]"), f.name.clone()], "schema": schema,
        })
    };
    let mut v = vec![
        json!({"id": "issuekey", "key": "issuekey", "name": "Key", "custom": false, "orderable": false, "navigable": true, "searchable": false, "clauseNames": ["id", "issue", "issuekey", "key"]}),
        system("summary", "Summary", "string", None, &["summary"]),
        system(
            "description",
            "Description",
            "string",
            None,
            &["description"],
        ),
        system(
            "issuetype",
            "Issue Type",
            "issuetype",
            None,
            &["issuetype", "type"],
        ),
        system("project", "Project", "project", None, &["project"]),
        system("status", "Status", "status", None, &["status"]),
        system("priority", "Priority", "priority", None, &["priority"]),
        system("assignee", "Assignee", "user", None, &["assignee"]),
        system("reporter", "Reporter", "user", None, &["reporter"]),
        system("creator", "Creator", "user", None, &["creator"]),
        system("labels", "Labels", "array", Some("string"), &["labels"]),
        system(
            "created",
            "Created",
            "datetime",
            None,
            &["created", "createdDate"],
        ),
        system(
            "updated",
            "Updated",
            "datetime",
            None,
            &["updated", "updatedDate"],
        ),
        system(
            "resolution",
            "Resolution",
            "resolution",
            None,
            &["resolution"],
        ),
        system("comment", "Comment", "comments-page", None, &["comment"]),
        system(
            "resolutiondate",
            "Resolved",
            "datetime",
            None,
            &["resolutiondate", "resolved"],
        ),
        system(
            "statuscategorychangedate",
            "Status Category Changed",
            "datetime",
            None,
            &["statusCategoryChangedDate"],
        ),
        custom(
            &site.story_points_field,
            "number",
            None,
            "com.atlassian.jira.plugin.system.customfieldtypes:float",
        ),
        custom(
            &site.sprint_field,
            "array",
            Some("json"),
            "com.pyxis.greenhopper.jira:gh-sprint",
        ),
        custom(
            &site.rank_field,
            "any",
            None,
            "com.pyxis.greenhopper.jira:gh-lexo-rank",
        ),
    ];
    v.extend(super::breadth::extra_field_defs());
    // Jira lists fields in no documented order; atlassim sorts by id for stable output.
    v.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    v
}

/// `names` for `expand=names`: field id → display name.
pub fn field_names(site: &Site) -> Value {
    let mut m = Map::new();
    for f in field_list(site) {
        if let (Some(id), Some(name)) = (f["id"].as_str(), f["name"].as_str()) {
            m.insert(id.to_string(), json!(name));
        }
    }
    Value::Object(m)
}
