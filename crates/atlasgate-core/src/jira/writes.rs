//! Typed Jira writes for bots and agents (docs/design.md §16): create and
//! update with Markdown descriptions, read an issue as Markdown, transition by
//! status name, assign by account id / e-mail / name, comment in Markdown.
//! Markdown goes through the one converter (`crate::adf`); every call goes
//! through the polite client layer ([`Ctx`]).

use http::Method;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::ops::{self, jira_time, Ctx, Issue};
use crate::adf::{adf_to_markdown, markdown_to_adf};
use crate::atlassian::{ApiRequest, AtlassianError};
use crate::error::{Error, Result};

/// Jira's limit on a summary (characters).
pub const MAX_SUMMARY_CHARS: usize = 255;
/// Most recent comments [`get_issue_markdown`] will read.
pub const MAX_RECENT_COMMENTS: usize = 100;

/// One transition an issue can take now.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TransitionOption {
    /// Jira's transition id (e.g. `"21"`).
    pub id: String,
    /// The transition's name (e.g. `Start progress`).
    pub name: String,
    /// The name of the status it leads to.
    pub to: String,
}

/// A Jira user as atlasgate shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UserRef {
    pub account_id: String,
    pub display_name: String,
    /// Absent when the person keeps it private.
    pub email: Option<String>,
}

/// An issue to create.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewIssue {
    /// Project key or id.
    pub project: String,
    /// Issue type name (e.g. `Task`) or id.
    pub issue_type: String,
    pub summary: String,
    pub description_markdown: Option<String>,
    /// Further Jira fields, passed as they are (`fields` of `POST /issue`).
    pub fields: Map<String, Value>,
}

/// A created issue.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CreatedIssue {
    pub key: String,
    pub id: String,
    /// `{site}/browse/{key}`.
    pub url: String,
}

/// Changes to an issue; `None` leaves a value as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IssueEdit {
    pub summary: Option<String>,
    pub description_markdown: Option<String>,
    pub fields: Map<String, Value>,
}

/// A comment rendered as Markdown.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CommentView {
    pub id: String,
    /// The author's display name.
    pub author: Option<String>,
    /// RFC 3339.
    pub created: Option<String>,
    pub markdown: String,
}

/// An issue with its description and recent comments as Markdown.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IssueDetail {
    #[serde(flatten)]
    pub issue: Issue,
    /// The description (ADF) rendered as Markdown; `None` when empty.
    pub description_markdown: Option<String>,
    pub assignee: Option<UserRef>,
    pub reporter: Option<UserRef>,
    /// Resolution name (e.g. `Done`), `None` while unresolved.
    pub resolution: Option<String>,
    /// RFC 3339.
    pub created: Option<String>,
    /// The most recent comments, oldest first.
    pub comments: Vec<CommentView>,
}

/// What a transition did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TransitionDone {
    pub transition_id: String,
    pub transition_name: String,
    /// The status the issue is in now.
    pub status: String,
}

/// Whom to assign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignee {
    AccountId(String),
    Email(String),
    /// A name (or part of one), found with Jira's user search.
    Query(String),
    Unassigned,
}

impl Assignee {
    /// What a person or agent typed: an e-mail address, an account id
    /// (Atlassian's are 24 hex digits, or `NNNNNN:uuid`), or a name.
    pub fn guess(s: &str) -> Assignee {
        let s = s.trim();
        if s.is_empty() {
            return Assignee::Unassigned;
        }
        if let Some((local, domain)) = s.split_once('@') {
            if !local.is_empty() && domain.contains('.') && !s.contains(' ') {
                return Assignee::Email(s.to_string());
            }
        }
        let hex = |t: &str| t.len() >= 20 && t.chars().all(|c| c.is_ascii_hexdigit());
        let prefixed = s.split_once(':').is_some_and(|(n, rest)| {
            !n.is_empty()
                && n.chars().all(|c| c.is_ascii_digit())
                && rest.len() >= 20
                && rest.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
        });
        if hex(s) || prefixed {
            Assignee::AccountId(s.to_string())
        } else {
            Assignee::Query(s.to_string())
        }
    }
}

/// A posted comment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CommentCreated {
    pub id: String,
    /// RFC 3339.
    pub created: Option<String>,
}

// ---- helpers -------------------------------------------------------------------------

fn id_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `{"key": …}` or `{"id": …}` (all digits is an id), as Jira's references take them.
fn reference(name_field: &str, value: &str) -> Value {
    let v = value.trim();
    if !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()) {
        json!({ "id": v })
    } else {
        json!({ name_field: v })
    }
}

/// An issue key (`ACME-12`) or id (`10042`): it goes into a path, so
/// nothing else may pass (the typed routes check the key shape first too).
pub fn check_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= 255
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "key",
            "is not a Jira issue key (PROJECT-123) or issue id",
        ))
    }
}

fn check_summary(summary: &str) -> Result<()> {
    if summary.trim().is_empty() {
        return Err(Error::invalid("summary", "must not be empty"));
    }
    if summary.chars().count() > MAX_SUMMARY_CHARS {
        return Err(Error::invalid(
            "summary",
            format!("must be at most {MAX_SUMMARY_CHARS} characters (Jira's limit)"),
        ));
    }
    if summary.contains('\n') {
        return Err(Error::invalid("summary", "must be one line"));
    }
    Ok(())
}

/// `fields` may not also carry what the typed members set.
fn check_extra_fields(fields: &Map<String, Value>, typed: &[&str]) -> Result<()> {
    for t in typed {
        if fields.contains_key(*t) {
            return Err(Error::invalid(
                format!("fields.{t}"),
                "is set by its own member of the request; leave it out of `fields`",
            ));
        }
    }
    Ok(())
}

fn user_ref(v: &Value) -> Option<UserRef> {
    Some(UserRef {
        account_id: v["accountId"].as_str()?.to_string(),
        display_name: v["displayName"].as_str().unwrap_or_default().to_string(),
        email: v["emailAddress"].as_str().map(String::from),
    })
}

fn markdown_of(adf: &Value) -> Option<String> {
    match adf {
        Value::Null => None,
        // `/rest/api/2`-style plain text, should a site answer it.
        Value::String(s) => Some(s.clone()).filter(|s| !s.is_empty()),
        doc => Some(adf_to_markdown(doc).trim_end_matches('\n').to_string())
            .filter(|m| !m.trim().is_empty()),
    }
}

// ---- operations ----------------------------------------------------------------------

/// `POST /rest/api/3/issue`: the description is converted from Markdown to ADF.
pub async fn create_issue(ctx: &Ctx<'_>, new: &NewIssue) -> Result<CreatedIssue> {
    if new.project.trim().is_empty() {
        return Err(Error::invalid("project", "must not be empty"));
    }
    if new.issue_type.trim().is_empty() {
        return Err(Error::invalid("issue_type", "must not be empty"));
    }
    check_summary(&new.summary)?;
    check_extra_fields(
        &new.fields,
        &["project", "issuetype", "summary", "description"],
    )?;
    let mut fields = new.fields.clone();
    fields.insert("project".into(), reference("key", &new.project));
    fields.insert("issuetype".into(), reference("name", &new.issue_type));
    fields.insert("summary".into(), json!(new.summary.trim()));
    if let Some(md) = new.description_markdown.as_deref() {
        if !md.trim().is_empty() {
            fields.insert("description".into(), markdown_to_adf(md));
        }
    }
    let req = ApiRequest::jira(Method::POST, "rest/api/3/issue").json(&json!({ "fields": fields }));
    let v = ctx.send(req).await?;
    let key = v["key"]
        .as_str()
        .ok_or_else(|| Error::Decode("created issue without a key".into()))?
        .to_string();
    Ok(CreatedIssue {
        id: id_string(&v["id"]),
        url: ctx.browse_url(&key),
        key,
    })
}

/// `PUT /rest/api/3/issue/{key}` with the changed fields.
pub async fn update_issue(ctx: &Ctx<'_>, key: &str, edit: &IssueEdit) -> Result<()> {
    check_key(key)?;
    if edit.summary.is_none() && edit.description_markdown.is_none() && edit.fields.is_empty() {
        return Err(Error::invalid(
            "summary",
            "nothing to change: give summary, description_markdown or fields",
        ));
    }
    if let Some(s) = &edit.summary {
        check_summary(s)?;
    }
    check_extra_fields(&edit.fields, &["summary", "description"])?;
    let mut fields = edit.fields.clone();
    if let Some(s) = &edit.summary {
        fields.insert("summary".into(), json!(s.trim()));
    }
    if let Some(md) = &edit.description_markdown {
        // An empty Markdown clears the description.
        let value = if md.trim().is_empty() {
            Value::Null
        } else {
            markdown_to_adf(md)
        };
        fields.insert("description".into(), value);
    }
    let req = ApiRequest::jira(Method::PUT, format!("rest/api/3/issue/{key}"))
        .json(&json!({ "fields": fields }));
    ctx.send(req).await?;
    Ok(())
}

/// The issue with its description and its `comments` most recent comments as Markdown.
pub async fn get_issue_markdown(ctx: &Ctx<'_>, key: &str, comments: usize) -> Result<IssueDetail> {
    check_key(key)?;
    let site_fields = ops::site_fields(ctx).await?;
    let fields = format!(
        "{},description,assignee,reporter,resolution,created",
        site_fields.fields_param()
    );
    let v = ctx
        .get(&format!("rest/api/3/issue/{key}"), &[("fields", fields)])
        .await?;
    let f = &v["fields"];
    let issue = ops::issue_from_json(ctx.site_url, &site_fields, &v);
    let mut recent = Vec::new();
    let wanted = comments.min(MAX_RECENT_COMMENTS);
    if wanted > 0 {
        let page = ctx
            .get(
                &format!("rest/api/3/issue/{key}/comment"),
                &[
                    ("orderBy", "-created".to_string()),
                    ("maxResults", wanted.to_string()),
                ],
            )
            .await?;
        for c in page["comments"].as_array().into_iter().flatten() {
            recent.push(CommentView {
                id: id_string(&c["id"]),
                author: c["author"]["displayName"].as_str().map(String::from),
                created: c["created"].as_str().map(jira_time),
                markdown: markdown_of(&c["body"]).unwrap_or_default(),
            });
        }
        recent.truncate(wanted);
        recent.reverse();
    }
    Ok(issue_detail(issue, f, recent))
}

/// The issue with what Jira's `fields` say of its description (ADF rendered
/// as Markdown), people, resolution and creation: the one reading of those
/// fields, for a live answer and for a synced copy's `detail`
/// (`mcp::reads`).
pub fn issue_detail(issue: Issue, f: &Value, comments: Vec<CommentView>) -> IssueDetail {
    IssueDetail {
        issue,
        description_markdown: markdown_of(&f["description"]),
        assignee: user_ref(&f["assignee"]),
        reporter: user_ref(&f["reporter"]),
        resolution: f["resolution"]["name"].as_str().map(String::from),
        created: f["created"].as_str().map(jira_time),
        comments,
    }
}

/// Move an issue to the status `to` names: a transition id, the name of the
/// status a transition leads to, or a transition's name (case-insensitive),
/// found among the issue's transitions now. When the transition's screen
/// requires a resolution, its default is sent (Jira's "Done" screen).
pub async fn transition_issue(ctx: &Ctx<'_>, key: &str, to: &str) -> Result<TransitionDone> {
    check_key(key)?;
    let to = to.trim();
    if to.is_empty() {
        return Err(Error::invalid(
            "to",
            "must name a status or a transition id",
        ));
    }
    let v = ctx
        .get(
            &format!("rest/api/3/issue/{key}/transitions"),
            &[("expand", "transitions.fields".to_string())],
        )
        .await?;
    let all: Vec<Value> = v["transitions"].as_array().cloned().unwrap_or_default();
    let status_of = |t: &Value| t["to"]["name"].as_str().unwrap_or_default().to_string();
    let chosen = all
        .iter()
        .find(|t| id_string(&t["id"]) == to)
        .or_else(|| all.iter().find(|t| status_of(t).eq_ignore_ascii_case(to)))
        .or_else(|| {
            all.iter().find(|t| {
                t["name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(to))
            })
        });
    let Some(t) = chosen else {
        let transitions: Vec<TransitionOption> = all
            .iter()
            .map(|t| TransitionOption {
                id: id_string(&t["id"]),
                name: t["name"].as_str().unwrap_or_default().to_string(),
                to: status_of(t),
            })
            .collect();
        let mut reachable: Vec<String> = Vec::new();
        for t in &transitions {
            if !reachable.contains(&t.to) {
                reachable.push(t.to.clone());
            }
        }
        return Err(Error::NoTransition {
            key: key.to_string(),
            to: to.to_string(),
            reachable,
            transitions,
        });
    };
    let id = id_string(&t["id"]);
    let mut body = json!({ "transition": { "id": id } });
    let resolution = &t["fields"]["resolution"];
    if resolution["required"].as_bool() == Some(true) {
        let name = resolution["defaultValue"]["name"]
            .as_str()
            .or_else(|| resolution["allowedValues"][0]["name"].as_str());
        if let Some(name) = name {
            body["fields"] = json!({ "resolution": { "name": name } });
        }
    }
    let req =
        ApiRequest::jira(Method::POST, format!("rest/api/3/issue/{key}/transitions")).json(&body);
    ctx.send(req).await?;
    Ok(TransitionDone {
        transition_id: id,
        transition_name: t["name"].as_str().unwrap_or_default().to_string(),
        status: status_of(t),
    })
}

/// The one user `who` names among the users assignable to `key`.
async fn find_assignee(ctx: &Ctx<'_>, key: &str, who: &Assignee) -> Result<Option<UserRef>> {
    let (field, query) = match who {
        Assignee::Unassigned => return Ok(None),
        Assignee::AccountId(id) => {
            if id.trim().is_empty() {
                return Err(Error::invalid("account_id", "must not be empty"));
            }
            return Ok(Some(UserRef {
                account_id: id.trim().to_string(),
                display_name: String::new(),
                email: None,
            }));
        }
        Assignee::Email(e) => ("email", e.trim()),
        Assignee::Query(q) => ("query", q.trim()),
    };
    if query.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    let found = ctx
        .get(
            "rest/api/3/user/assignable/search",
            &[
                ("issueKey", key.to_string()),
                ("query", query.to_string()),
                ("maxResults", "50".to_string()),
            ],
        )
        .await?;
    let users: Vec<UserRef> = found
        .as_array()
        .into_iter()
        .flatten()
        .filter(|u| u["active"].as_bool() != Some(false))
        .filter_map(user_ref)
        .collect();
    let exact: Vec<&UserRef> = users
        .iter()
        .filter(|u| match who {
            Assignee::Email(_) => u
                .email
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(query)),
            _ => u.display_name.eq_ignore_ascii_case(query),
        })
        .collect();
    let pick = match (exact.as_slice(), users.as_slice()) {
        ([one], _) => (*one).clone(),
        // Jira matched a private e-mail address it does not show.
        ([], [one]) if matches!(who, Assignee::Email(_)) && one.email.is_none() => one.clone(),
        ([], [one]) if matches!(who, Assignee::Query(_)) => one.clone(),
        ([], []) | ([], [_]) => {
            return Err(Error::invalid(
                field,
                format!("no user assignable to {key} matches {query:?}"),
            ))
        }
        ([], many) => {
            if matches!(who, Assignee::Email(_)) {
                return Err(Error::invalid(
                    field,
                    format!("no user assignable to {key} has the e-mail address {query:?}"),
                ));
            }
            return Err(Error::AmbiguousUser {
                query: query.to_string(),
                candidates: many.to_vec(),
            });
        }
        (several, _) => {
            return Err(Error::AmbiguousUser {
                query: query.to_string(),
                candidates: several.iter().map(|u| (*u).clone()).collect(),
            })
        }
    };
    Ok(Some(pick))
}

/// `PUT /rest/api/3/issue/{key}/assignee`, the user found first for an
/// e-mail address or a name. Answers who is assigned now.
pub async fn assign_issue(ctx: &Ctx<'_>, key: &str, who: &Assignee) -> Result<Option<UserRef>> {
    check_key(key)?;
    let user = find_assignee(ctx, key, who).await?;
    let account_id = user.as_ref().map(|u| u.account_id.clone());
    let req = ApiRequest::jira(Method::PUT, format!("rest/api/3/issue/{key}/assignee"))
        .json(&json!({ "accountId": account_id }));
    match ctx.send(req).await {
        Ok(_) => Ok(user),
        // Jira's "User '…' cannot be assigned issues." for an unknown account id.
        Err(e @ AtlassianError::Status { status, .. })
            if status == http::StatusCode::BAD_REQUEST && matches!(who, Assignee::AccountId(_)) =>
        {
            Err(Error::invalid(
                "account_id",
                e.jira_messages()
                    .unwrap_or_else(|| "Jira refused this account id".into()),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// Post a comment written in Markdown (converted to ADF).
pub async fn add_comment_markdown(
    ctx: &Ctx<'_>,
    key: &str,
    markdown: &str,
) -> Result<CommentCreated> {
    check_key(key)?;
    if markdown.trim().is_empty() {
        return Err(Error::invalid("markdown", "must not be empty"));
    }
    let req = ApiRequest::jira(Method::POST, format!("rest/api/3/issue/{key}/comment"))
        .json(&json!({ "body": markdown_to_adf(markdown) }));
    let v = ctx.send(req).await?;
    Ok(CommentCreated {
        id: id_string(&v["id"]),
        created: v["created"].as_str().map(jira_time),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn assignee_guess_tells_emails_ids_and_names_apart() {
        assert_eq!(
            Assignee::guess("ada@example.com"),
            Assignee::Email("ada@example.com".into())
        );
        assert_eq!(
            Assignee::guess("5b10ac8d82e05b22cc7d4ef5"),
            Assignee::AccountId("5b10ac8d82e05b22cc7d4ef5".into())
        );
        assert_eq!(
            Assignee::guess("712020:2a5a4a0e-9b7c-4d1e-8f7e-3c1b2a0d9e8f"),
            Assignee::AccountId("712020:2a5a4a0e-9b7c-4d1e-8f7e-3c1b2a0d9e8f".into())
        );
        assert_eq!(Assignee::guess("Olivia"), Assignee::Query("Olivia".into()));
        assert_eq!(
            Assignee::guess("Olivia Chen"),
            Assignee::Query("Olivia Chen".into())
        );
        assert_eq!(Assignee::guess("  "), Assignee::Unassigned);
    }

    #[test]
    fn references_use_ids_for_digits_and_names_otherwise() {
        assert_eq!(reference("key", "10001"), json!({"id": "10001"}));
        assert_eq!(reference("key", "ACME"), json!({"key": "ACME"}));
        assert_eq!(reference("name", "Task"), json!({"name": "Task"}));
    }

    #[test]
    fn summaries_are_checked_before_jira_is_asked() {
        assert!(check_summary("Fix the login").is_ok());
        assert!(matches!(
            check_summary("  "),
            Err(Error::Invalid { field, .. }) if field == "summary"
        ));
        assert!(check_summary(&"x".repeat(MAX_SUMMARY_CHARS + 1)).is_err());
        assert!(check_summary("two\nlines").is_err());
    }

    #[test]
    fn keys_that_could_leave_the_issue_path_are_refused() {
        assert!(check_key("ACME-12").is_ok());
        assert!(check_key("10042").is_ok());
        for bad in [
            "",
            "../myself",
            "ACME-1/comment",
            "ACME-1?x=1",
            "A B",
            "ACME%2F1",
        ] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
    }
}
