//! Typed Jira operations over the client layer: Atlassian's shapes in,
//! atlasgate's documented shapes out. Every list follows Atlassian's
//! pagination to the end (or to the caller's limit).

use std::time::Duration;

use http::Method;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::atlassian::{ApiRequest, AtlassianClient, AtlassianError, PageGuard};
use crate::ids::{CloudId, ConnectionId, Jql};

/// Story points are read from a per-site custom field found by name
/// (docs/atlassian-behaviour.md §3: ids vary per site). Both names Atlassian uses.
pub const STORY_POINT_FIELD_NAMES: &[&str] = &["Story Points", "Story point estimate"];
const FIELDS_TTL: Duration = Duration::from_secs(3600);
const PAGE: usize = 100;

/// Who is calling and for which site: enough to make calls and build links.
#[derive(Debug, Clone)]
pub struct Ctx<'a> {
    pub client: &'a AtlassianClient,
    /// The calling app (its connection only); `None` for background work.
    pub app_id: Option<&'a str>,
    pub connection_id: &'a ConnectionId,
    pub cloud_id: &'a CloudId,
    /// `https://x.atlassian.net`, without a trailing slash.
    pub site_url: &'a str,
}

impl Ctx<'_> {
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, AtlassianError> {
        let req = ApiRequest::jira(Method::GET, path).query(query);
        Ok(self
            .client
            .json(self.app_id, self.connection_id, req)
            .await?
            .0)
    }

    pub async fn send(&self, req: ApiRequest) -> Result<Value, AtlassianError> {
        let (bytes, _) = self
            .client
            .call(self.app_id, self.connection_id, req)
            .await?;
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| AtlassianError::Decode(e.to_string()))
    }

    pub fn browse_url(&self, key: &str) -> String {
        format!("{}/browse/{}", self.site_url.trim_end_matches('/'), key)
    }
}

// ---- wire types ------------------------------------------------------------------

/// A Jira project.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
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
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Board {
    pub id: i64,
    pub name: String,
    /// `scrum`, `kanban` or `simple`.
    #[serde(rename = "type")]
    pub type_: String,
    pub project_key: Option<String>,
}

/// A sprint of a board.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
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
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SprintRef {
    pub id: i64,
    pub name: String,
    pub state: String,
}

/// An issue as atlasgate shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
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

/// A site's field ids that issue objects need.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct SiteFields {
    pub story_points: Option<FieldRef>,
    pub sprint: Option<FieldRef>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FieldRef {
    pub id: String,
    pub name: String,
}

impl SiteFields {
    /// The `fields` parameter that yields everything [`issue_from_json`] reads.
    pub fn fields_param(&self) -> String {
        let mut f = vec!["summary", "status", "issuetype", "updated"];
        if let Some(sp) = &self.story_points {
            f.push(&sp.id);
        }
        if let Some(s) = &self.sprint {
            f.push(&s.id);
        }
        f.join(",")
    }
}

/// Jira writes `2025-12-01T10:00:00.000+0000`; we answer RFC 3339.
pub fn jira_time(s: &str) -> String {
    chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(s))
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        })
        .unwrap_or_else(|_| s.to_string())
}

fn sprint_ref(v: &Value) -> Option<SprintRef> {
    Some(SprintRef {
        id: v["id"].as_i64()?,
        name: v["name"].as_str().unwrap_or_default().to_string(),
        state: v["state"].as_str().unwrap_or_default().to_ascii_lowercase(),
    })
}

/// The sprint an issue is in, from the value of its sprint field — the one
/// reading shared by the typed operations, sync and webhooks. Jira writes an
/// array of the sprints the issue has been in (some payloads one object);
/// the active one wins, its state compared case-insensitively, else the last.
pub fn current_sprint(v: &Value) -> Option<&Value> {
    match v {
        Value::Array(all) => all
            .iter()
            .find(|x| {
                x["state"]
                    .as_str()
                    .is_some_and(|st| st.eq_ignore_ascii_case("active"))
            })
            .or_else(|| all.last()),
        one @ Value::Object(_) => Some(one),
        _ => None,
    }
}

/// Build an [`Issue`] from Jira's issue JSON (`{id, key, fields}`).
pub fn issue_from_json(site_url: &str, fields: &SiteFields, v: &Value) -> Issue {
    let f = &v["fields"];
    let key = v["key"].as_str().unwrap_or_default().to_string();
    let sprint = fields
        .sprint
        .as_ref()
        .and_then(|s| current_sprint(&f[&s.id]))
        .and_then(sprint_ref);
    Issue {
        id: match &v["id"] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        },
        url: format!("{}/browse/{}", site_url.trim_end_matches('/'), key),
        key,
        summary: f["summary"].as_str().map(String::from),
        status: f["status"]["name"].as_str().map(String::from),
        type_: f["issuetype"]["name"].as_str().map(String::from),
        story_points: fields
            .story_points
            .as_ref()
            .and_then(|sp| f[&sp.id].as_f64()),
        sprint,
        updated: f["updated"].as_str().map(jira_time),
    }
}

// ---- operations ----------------------------------------------------------------------

/// The site's fields, from `/rest/api/3/field` (cached per connection for an hour).
pub async fn site_fields(ctx: &Ctx<'_>) -> Result<SiteFields, AtlassianError> {
    if let Some(v) = ctx
        .client
        .cache
        .get(ctx.connection_id, "jira-fields", FIELDS_TTL)
    {
        if let Ok(f) = serde_json::from_value(v) {
            return Ok(f);
        }
    }
    let all = ctx.get("rest/api/3/field", &[]).await?;
    let list = all.as_array().cloned().unwrap_or_default();
    let find = |names: &[&str]| {
        // Prefer the names in the order given, then any custom field of that name.
        names
            .iter()
            .find_map(|want| {
                list.iter().find(|f| {
                    f["name"]
                        .as_str()
                        .is_some_and(|n| n.eq_ignore_ascii_case(want))
                        && f["id"].as_str().is_some()
                })
            })
            .map(|f| FieldRef {
                id: f["id"].as_str().unwrap_or_default().to_string(),
                name: f["name"].as_str().unwrap_or_default().to_string(),
            })
    };
    let fields = SiteFields {
        story_points: find(STORY_POINT_FIELD_NAMES),
        sprint: find(&["Sprint"]),
    };
    ctx.client.cache.put(
        ctx.connection_id,
        "jira-fields",
        serde_json::to_value(&fields).unwrap_or_default(),
    );
    Ok(fields)
}

/// Every project (all pages of `/rest/api/3/project/search`).
pub async fn list_projects(ctx: &Ctx<'_>) -> Result<Vec<Project>, AtlassianError> {
    let mut out = Vec::new();
    let mut start = 0usize;
    let mut guard = PageGuard::new("project search");
    loop {
        let page = ctx
            .get(
                "rest/api/3/project/search",
                &[
                    ("startAt", start.to_string()),
                    ("maxResults", PAGE.to_string()),
                    ("orderBy", "key".into()),
                ],
            )
            .await?;
        guard.follow_start(&page, start)?;
        let values = page["values"].as_array().cloned().unwrap_or_default();
        for p in &values {
            let key = p["key"].as_str().unwrap_or_default().to_string();
            out.push(Project {
                id: p["id"]
                    .as_str()
                    .map(String::from)
                    .unwrap_or_else(|| p["id"].to_string()),
                name: p["name"].as_str().unwrap_or_default().to_string(),
                type_: p["projectTypeKey"].as_str().map(String::from),
                url: ctx.browse_url(&key),
                key,
            });
        }
        start += values.len();
        if values.is_empty() || page["isLast"].as_bool().unwrap_or(true) {
            break;
        }
    }
    ctx.client.cache.put(
        ctx.connection_id,
        "jira-project-keys",
        json!(out.iter().map(|p| p.key.clone()).collect::<Vec<_>>()),
    );
    Ok(out)
}

/// The project keys this connection sees, cached per connection for five minutes.
pub async fn project_keys(ctx: &Ctx<'_>) -> Result<Vec<String>, AtlassianError> {
    if let Some(v) = ctx.client.cache.get(
        ctx.connection_id,
        "jira-project-keys",
        Duration::from_secs(300),
    ) {
        if let Ok(keys) = serde_json::from_value(v) {
            return Ok(keys);
        }
    }
    Ok(list_projects(ctx)
        .await?
        .into_iter()
        .map(|p| p.key)
        .collect())
}

/// Pages of the agile API (`startAt`/`maxResults`/`isLast`, values in `key`).
async fn agile_pages(
    ctx: &Ctx<'_>,
    path: &str,
    query: &[(&str, String)],
    key: &str,
) -> Result<Vec<Value>, AtlassianError> {
    let mut out = Vec::new();
    let mut start = 0usize;
    let mut guard = PageGuard::new("agile list");
    loop {
        let mut q = query.to_vec();
        q.push(("startAt", start.to_string()));
        q.push(("maxResults", PAGE.to_string()));
        let page = ctx.get(path, &q).await?;
        guard.follow_start(&page, start)?;
        let values = page[key].as_array().cloned().unwrap_or_default();
        start += values.len();
        let total = page["total"].as_u64().map(|t| t as usize);
        let last = match page["isLast"].as_bool() {
            Some(l) => l,
            None => total.is_none_or(|t| start >= t),
        };
        out.extend(values.iter().cloned());
        if values.is_empty() || last {
            break;
        }
    }
    Ok(out)
}

pub async fn list_boards(
    ctx: &Ctx<'_>,
    project: Option<&str>,
) -> Result<Vec<Board>, AtlassianError> {
    let mut q = Vec::new();
    if let Some(p) = project {
        q.push(("projectKeyOrId", p.to_string()));
    }
    let values = agile_pages(ctx, "rest/agile/1.0/board", &q, "values").await?;
    Ok(values
        .iter()
        .filter_map(|b| {
            Some(Board {
                id: b["id"].as_i64()?,
                name: b["name"].as_str().unwrap_or_default().to_string(),
                type_: b["type"].as_str().unwrap_or_default().to_string(),
                project_key: b["location"]["projectKey"].as_str().map(String::from),
            })
        })
        .collect())
}

pub async fn list_sprints(
    ctx: &Ctx<'_>,
    board: i64,
    state: Option<&str>,
) -> Result<Vec<Sprint>, AtlassianError> {
    let mut q = Vec::new();
    if let Some(s) = state {
        q.push(("state", s.to_string()));
    }
    let values = agile_pages(
        ctx,
        &format!("rest/agile/1.0/board/{board}/sprint"),
        &q,
        "values",
    )
    .await?;
    Ok(values
        .iter()
        .filter_map(|s| {
            Some(Sprint {
                id: s["id"].as_i64()?,
                name: s["name"].as_str().unwrap_or_default().to_string(),
                state: s["state"].as_str().unwrap_or_default().to_string(),
                start_date: s["startDate"].as_str().map(String::from),
                end_date: s["endDate"].as_str().map(String::from),
                complete_date: s["completeDate"].as_str().map(String::from),
                goal: s["goal"]
                    .as_str()
                    .filter(|g| !g.is_empty())
                    .map(String::from),
                board_id: s["originBoardId"].as_i64(),
            })
        })
        .collect())
}

/// Sprint issues or a board's backlog: rank order, every page.
pub async fn ranked_issues(ctx: &Ctx<'_>, path: &str) -> Result<Vec<Issue>, AtlassianError> {
    let fields = site_fields(ctx).await?;
    let values = agile_pages(ctx, path, &[("fields", fields.fields_param())], "issues").await?;
    Ok(values
        .iter()
        .map(|v| issue_from_json(ctx.site_url, &fields, v))
        .collect())
}

/// `/rest/api/3/search/jql`, following `nextPageToken` up to `limit` issues.
pub async fn search(ctx: &Ctx<'_>, jql: &Jql, limit: usize) -> Result<Vec<Issue>, AtlassianError> {
    let fields = site_fields(ctx).await?;
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    let mut guard = PageGuard::new("issue search");
    while out.len() < limit {
        let mut q = vec![
            ("jql", jql.to_string()),
            ("maxResults", (limit - out.len()).min(PAGE).to_string()),
            ("fields", fields.fields_param()),
        ];
        if let Some(t) = &token {
            q.push(("nextPageToken", t.clone()));
        }
        let page = ctx.get("rest/api/3/search/jql", &q).await?;
        let issues = page["issues"].as_array().cloned().unwrap_or_default();
        out.extend(
            issues
                .iter()
                .map(|v| issue_from_json(ctx.site_url, &fields, v)),
        );
        token = page["nextPageToken"].as_str().map(String::from);
        if issues.is_empty() || token.is_none() || page["isLast"].as_bool() == Some(true) {
            break;
        }
        if let Some(t) = &token {
            guard.follow(t)?;
        }
    }
    out.truncate(limit);
    Ok(out)
}

/// One issue, read back (for estimates and the demo).
pub async fn get_issue(ctx: &Ctx<'_>, key: &str) -> Result<Issue, AtlassianError> {
    let fields = site_fields(ctx).await?;
    let v = ctx
        .get(
            &format!("rest/api/3/issue/{key}"),
            &[("fields", fields.fields_param())],
        )
        .await?;
    Ok(issue_from_json(ctx.site_url, &fields, &v))
}

/// Atlassian Document Format: one paragraph per non-empty line.
pub fn adf(text: &str) -> Value {
    let paragraphs: Vec<Value> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .map(|l| json!({"type": "paragraph", "content": [{"type": "text", "text": l}]}))
        .collect();
    json!({"type": "doc", "version": 1, "content": paragraphs})
}

/// Post an ADF comment; answers Jira's comment id.
pub async fn add_comment(ctx: &Ctx<'_>, key: &str, text: &str) -> Result<Value, AtlassianError> {
    let req = ApiRequest::jira(Method::POST, format!("rest/api/3/issue/{key}/comment"))
        .json(&json!({ "body": adf(text) }));
    ctx.send(req).await
}

/// Why an estimate could not be written, before asking Jira.
#[derive(Debug, thiserror::Error)]
pub enum EstimateError {
    #[error("this site has no story points field (looked for {names:?} in /rest/api/3/field)")]
    NoField { names: Vec<String> },
    #[error("board {board} does not estimate with a field (estimation type {kind})")]
    BoardNotByField { board: i64, kind: String },
    #[error(transparent)]
    Atlassian(#[from] AtlassianError),
}

/// Write an estimate: through the board's estimation field when a board is
/// given (`PUT /rest/agile/1.0/issue/{key}/estimation?boardId=` — works even
/// when the field is not on the edit screen), else into the site's
/// story-points field found by name (`PUT /rest/api/3/issue/{key}`).
/// Returns the field id written.
pub async fn set_estimate(
    ctx: &Ctx<'_>,
    key: &str,
    value: f64,
    board: Option<i64>,
) -> Result<String, EstimateError> {
    if let Some(board) = board {
        let config = ctx
            .get(&format!("rest/agile/1.0/board/{board}/configuration"), &[])
            .await?;
        let est = &config["estimation"];
        let kind = est["type"].as_str().unwrap_or("none").to_string();
        let Some(field_id) = est["field"]["fieldId"].as_str().filter(|_| kind == "field") else {
            return Err(EstimateError::BoardNotByField { board, kind });
        };
        let req = ApiRequest::jira(
            Method::PUT,
            format!("rest/agile/1.0/issue/{key}/estimation"),
        )
        .query(&[("boardId", board.to_string())])
        .json(&json!({ "value": value.to_string() }));
        let answer = ctx.send(req).await?;
        return Ok(answer["fieldId"].as_str().unwrap_or(field_id).to_string());
    }
    let fields = site_fields(ctx).await?;
    let Some(sp) = fields.story_points else {
        return Err(EstimateError::NoField {
            names: STORY_POINT_FIELD_NAMES
                .iter()
                .map(|s| s.to_string())
                .collect(),
        });
    };
    let req = ApiRequest::jira(Method::PUT, format!("rest/api/3/issue/{key}"))
        .json(&json!({ "fields": { sp.id.clone(): value } }));
    ctx.send(req).await?;
    Ok(sp.id)
}
