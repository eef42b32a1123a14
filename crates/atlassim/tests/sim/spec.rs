//! The spec is a contract: every served route exists in Atlassian's specs,
//! the scope table is exactly what the specs say, and every response of a
//! scripted run validates against the spec's schema for its status.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::OnceLock;

use atlassim::gateway::scopes::{ScopeEntry, SCOPES_JSON};
use atlassim::gateway::{Api, Op, ROUTES};
use serde_json::{json, Map, Value};

use crate::jira::{gw, Gw};

fn specs_dir() -> PathBuf {
    match std::env::var("ATLASSIM_SPECS_DIR") {
        Ok(d) => PathBuf::from(d),
        Err(_) => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/specs"),
    }
}

fn spec(api: Api) -> &'static Value {
    static SPECS: OnceLock<HashMap<&'static str, Value>> = OnceLock::new();
    let all = SPECS.get_or_init(|| {
        [Api::Jira, Api::Agile, Api::Confluence]
            .into_iter()
            .map(|a| {
                let path = specs_dir().join(a.spec_file());
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
                (a.as_str(), serde_json::from_str(&text).unwrap())
            })
            .collect()
    });
    &all[api.as_str()]
}

/// The routes the shared specs describe (Confluence v1 is checked by the
/// client-library test instead).
fn spec_routes() -> impl Iterator<Item = &'static atlassim::gateway::Route> {
    ROUTES.iter().filter(|r| r.api.in_specs())
}

fn operation(api: Api, method: &str, path: &str) -> Option<&'static Value> {
    spec(api)["paths"]
        .get(path)?
        .get(method.to_ascii_lowercase())
}

#[test]
fn every_served_route_exists_in_its_spec() {
    for r in spec_routes() {
        assert!(
            operation(r.api, r.method, r.path).is_some(),
            "{} {} is not in {}",
            r.method,
            r.path,
            r.api.spec_file()
        );
    }
}

/// With `ATLASSIM_REGENERATE_SCOPES` set, rewrite a data file (one-space
/// indent, as checked in).
fn regenerate(file: &str, value: &impl serde::Serialize) {
    if std::env::var("ATLASSIM_REGENERATE_SCOPES").is_err() {
        return;
    }
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b" ");
    value
        .serialize(&mut serde_json::Serializer::with_formatter(&mut out, fmt))
        .unwrap();
    out.push(b'\n');
    std::fs::write(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(file), out).unwrap();
}

/// The rule written in `gateway/scopes.rs`: each `x-atlassian-oauth2-scopes`
/// entry is an alternative; without that list, the security requirement's
/// OAuth2 scopes are the only one.
fn derive_alternatives(op: &Value) -> Vec<Vec<String>> {
    let strings = |v: &Value| {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    let mut alts: Vec<Vec<String>> = op["x-atlassian-oauth2-scopes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|e| matches!(e["scheme"].as_str(), Some("OAuth2" | "oAuthDefinitions")))
                .map(|e| strings(&e["scopes"]))
                .collect()
        })
        .unwrap_or_default();
    if alts.is_empty() {
        for sec in op["security"].as_array().into_iter().flatten() {
            for scheme in ["OAuth2", "oAuthDefinitions"] {
                if let Some(s) = sec.get(scheme) {
                    alts.push(strings(s));
                }
            }
        }
    }
    let mut out: Vec<Vec<String>> = Vec::new();
    for a in alts {
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

/// `ATLASSIM_REGENERATE_SCOPES=1 cargo test -p atlassim --test sim spec::scope_table` rewrites the file.
#[test]
fn scope_table_is_derived_from_the_specs() {
    let derived: Vec<ScopeEntry> = spec_routes()
        .map(|r| ScopeEntry {
            method: r.method.to_string(),
            api: r.api.as_str().to_string(),
            path: r.path.to_string(),
            scopes: derive_alternatives(operation(r.api, r.method, r.path).unwrap()),
        })
        .collect();
    regenerate("data/scopes.json", &derived);
    let checked_in: Vec<ScopeEntry> = serde_json::from_str(SCOPES_JSON).unwrap();
    assert_eq!(
        checked_in, derived,
        "data/scopes.json drifted from the specs; regenerate it (see this test's doc)"
    );
    // Every alternative is non-empty except for serverInfo, which any token may call.
    for e in &derived {
        assert!(
            !e.scopes.is_empty(),
            "{} {} has no OAuth2 scopes",
            e.method,
            e.path
        );
    }
}

#[test]
fn default_client_is_registered_for_every_scope_of_a_served_operation() {
    let registered: Vec<String> = atlassim::SimConfig::default().clients[0].scopes.clone();
    for r in spec_routes() {
        let alts = derive_alternatives(operation(r.api, r.method, r.path).unwrap());
        assert!(
            alts.iter()
                .any(|alt| alt.iter().all(|s| registered.contains(s))),
            "the default client cannot call {} {}",
            r.method,
            r.path
        );
    }
}

/// Every scope an operation of the specs names (`x-atlassian-oauth2-scopes`
/// and the `OAuth2` / `oAuthDefinitions` security requirements), sorted.
fn scopes_named_in_specs() -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                for (k, val) in o {
                    match k.as_str() {
                        "x-atlassian-oauth2-scopes" if val.is_array() => {
                            for e in val.as_array().into_iter().flatten() {
                                for s in e["scopes"].as_array().into_iter().flatten() {
                                    out.extend(s.as_str().map(str::to_string));
                                }
                            }
                        }
                        "security" if val.is_array() => {
                            for e in val.as_array().into_iter().flatten() {
                                for scheme in ["OAuth2", "oAuthDefinitions"] {
                                    for s in e[scheme].as_array().into_iter().flatten() {
                                        out.extend(s.as_str().map(str::to_string));
                                    }
                                }
                            }
                        }
                        _ => walk(val, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for api in [Api::Jira, Api::Agile, Api::Confluence] {
        walk(spec(api), &mut out);
    }
    out.sort();
    out.dedup();
    out
}

/// `data/spec-scopes.json` is every scope the specs name (regenerate as for
/// the scope table), and the default client is registered for all of them.
#[test]
fn spec_scope_list_is_derived_from_the_specs_and_registered() {
    let derived = scopes_named_in_specs();
    regenerate("data/spec-scopes.json", &derived);
    let checked_in: Vec<String> = serde_json::from_str(atlassim::scopes::SPEC_SCOPES_JSON).unwrap();
    assert_eq!(
        checked_in, derived,
        "data/spec-scopes.json drifted from the specs"
    );
    assert!(
        derived.len() > 100,
        "granular and classic scopes: {}",
        derived.len()
    );
    let registered = &atlassim::SimConfig::default().clients[0].scopes;
    for s in derived
        .iter()
        .chain(&["offline_access".to_string(), "read:me".to_string()])
    {
        assert!(registered.contains(s), "default client lacks {s}");
    }
}

/// The Confluence v1 routes are not in the specs; each has a hand-kept scope
/// row with a classic and a granular alternative.
#[test]
fn confluence_v1_routes_have_scope_rows() {
    let rows: Vec<ScopeEntry> =
        serde_json::from_str(atlassim::gateway::scopes::SCOPES_V1_JSON).unwrap();
    let v1: Vec<_> = ROUTES.iter().filter(|r| !r.api.in_specs()).collect();
    assert!(!v1.is_empty());
    for r in v1 {
        let row = rows
            .iter()
            .find(|e| e.method == r.method && e.path == r.path && e.api == r.api.as_str())
            .unwrap_or_else(|| panic!("no scope row for {} {}", r.method, r.path));
        assert_eq!(row.scopes.len(), 2, "{} {}", r.method, r.path);
    }
    assert_eq!(
        rows.len(),
        ROUTES.iter().filter(|r| !r.api.in_specs()).count()
    );
}

// ---- OpenAPI 3.0 schema → JSON Schema (draft 7) ----

fn convert(v: &Value) -> Value {
    let Some(o) = v.as_object() else {
        return v.clone();
    };
    let mut out = Map::new();
    for (k, val) in o {
        match k.as_str() {
            "example" | "examples" | "discriminator" | "xml" | "externalDocs" | "nullable" => {}
            "properties" | "patternProperties" => {
                let props = val
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(n, s)| (n.clone(), convert(s)))
                            .collect::<Map<_, _>>()
                    })
                    .unwrap_or_default();
                out.insert(k.clone(), Value::Object(props));
            }
            "items" | "additionalProperties" | "not" => {
                out.insert(
                    k.clone(),
                    if val.is_object() {
                        convert(val)
                    } else {
                        val.clone()
                    },
                );
            }
            "allOf" | "anyOf" | "oneOf" => {
                out.insert(
                    k.clone(),
                    Value::Array(val.as_array().into_iter().flatten().map(convert).collect()),
                );
            }
            _ => {
                out.insert(k.clone(), val.clone());
            }
        }
    }
    // Draft-4 style boolean exclusive bounds.
    for (ex, bound) in [
        ("exclusiveMinimum", "minimum"),
        ("exclusiveMaximum", "maximum"),
    ] {
        if let Some(Value::Bool(b)) = out.get(ex).cloned() {
            out.remove(ex);
            if b {
                if let Some(m) = out.remove(bound) {
                    out.insert(ex.to_string(), m);
                }
            }
        }
    }
    if o.get("nullable") == Some(&Value::Bool(true)) {
        match out.get("type").cloned() {
            Some(Value::String(t)) => {
                out.insert("type".into(), json!([t, "null"]));
                if let Some(Value::Array(e)) = out.get_mut("enum") {
                    e.push(Value::Null);
                }
            }
            _ => return json!({"anyOf": [Value::Object(out), {"type": "null"}]}),
        }
    }
    Value::Object(out)
}

fn converted_components(api: Api) -> &'static Value {
    static CACHE: OnceLock<HashMap<&'static str, Value>> = OnceLock::new();
    let all = CACHE.get_or_init(|| {
        [Api::Jira, Api::Agile, Api::Confluence]
            .into_iter()
            .map(|a| {
                let schemas = spec(a)["components"]["schemas"]
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                let conv: Map<String, Value> = schemas
                    .iter()
                    .map(|(k, v)| (k.clone(), convert(v)))
                    .collect();
                (a.as_str(), json!({"schemas": conv}))
            })
            .collect()
    });
    &all[api.as_str()]
}

/// The response schema for a status, if the spec gives one.
fn response_schema(api: Api, method: &str, path: &str, status: u16) -> Option<Value> {
    let op = operation(api, method, path)?;
    let resp = op["responses"]
        .get(status.to_string())
        .or_else(|| op["responses"].get("default"))?;
    let schema = resp["content"]["application/json"]["schema"].clone();
    match &schema {
        Value::Object(o) if !o.is_empty() => Some(schema),
        _ => None,
    }
}

fn validate(api: Api, schema: &Value, body: &Value) -> Vec<String> {
    let root = json!({"allOf": [convert(schema)], "components": converted_components(api)});
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .should_validate_formats(false)
        .build(&root)
        .unwrap_or_else(|e| panic!("schema does not compile: {e}"));
    validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect()
}

struct Call {
    op: Op,
    method: &'static str,
    /// Path under `/ex/jira/{cloudId}` or `/ex/confluence/{cloudId}`.
    path: String,
    body: Option<Value>,
}

fn call(op: Op, method: &'static str, path: impl Into<String>, body: Option<Value>) -> Call {
    Call {
        op,
        method,
        path: path.into(),
        body,
    }
}

async fn script(g: &Gw) -> Vec<Call> {
    let key = g.some_issue_key(0).await;
    let project = g.project_key(0, 0);
    let boards = g.get(&g.jira(0, "/rest/agile/1.0/board?type=scrum")).await;
    let board = boards.body["values"][0]["id"].as_u64().unwrap();
    let sprints = g
        .get(&g.jira(
            0,
            &format!("/rest/agile/1.0/board/{board}/sprint?state=active"),
        ))
        .await;
    let sprint = sprints.body["values"][0]["id"].as_u64().unwrap();
    let spaces = g.get(&g.confluence(0, "/wiki/api/v2/spaces")).await;
    let space = spaces.body["results"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let pages = g.get(&g.confluence(0, "/wiki/api/v2/pages")).await;
    let page = pages.body["results"][0]["id"].as_str().unwrap().to_string();
    let page_version = pages.body["results"][0]["version"]["number"]
        .as_u64()
        .unwrap();
    let doomed = pages.body["results"][1]["id"].as_str().unwrap().to_string();
    let home = spaces.body["results"][0]["homepageId"]
        .as_str()
        .unwrap()
        .to_string();
    let doc = json!({"type":"doc","version":1,"content":[{"type":"paragraph","content":[{"type":"text","text":"spec"}]}]});
    let jql = crate::jira::urlencode(&format!("project = {project} ORDER BY rank"));
    let mut calls = vec![
        call(Op::ServerInfo, "GET", "/rest/api/3/serverInfo", None),
        call(Op::ServerInfo, "GET", "/rest/api/2/serverInfo", None),
        call(Op::Myself, "GET", "/rest/api/3/myself", None),
        call(Op::ProjectList, "GET", "/rest/api/3/project", None),
        call(
            Op::ProjectSearch,
            "GET",
            "/rest/api/3/project/search?maxResults=1",
            None,
        ),
        call(
            Op::ProjectGet,
            "GET",
            format!("/rest/api/3/project/{project}"),
            None,
        ),
        call(Op::Fields, "GET", "/rest/api/3/field", None),
        call(
            Op::SearchJqlGet,
            "GET",
            format!("/rest/api/3/search/jql?jql={jql}&fields=*all&maxResults=5&expand=names"),
            None,
        ),
        call(
            Op::SearchJqlGet,
            "GET",
            format!("/rest/api/3/search/jql?jql={jql}&maxResults=2"),
            None,
        ),
        call(Op::SearchJqlGet, "GET", "/rest/api/3/search/jql?jql=", None),
        call(
            Op::SearchJqlPost,
            "POST",
            "/rest/api/3/search/jql",
            Some(
                json!({"jql": format!("project = {project}"), "fields": ["*navigable"], "maxResults": 3}),
            ),
        ),
        call(Op::SearchRemoved, "GET", "/rest/api/3/search", None),
        call(
            Op::SearchRemoved,
            "POST",
            "/rest/api/3/search",
            Some(json!({})),
        ),
        call(
            Op::IssueGet,
            "GET",
            format!("/rest/api/3/issue/{key}?expand=names"),
            None,
        ),
        call(
            Op::IssueGet,
            "GET",
            format!("/rest/api/2/issue/{key}"),
            None,
        ),
        call(Op::IssueGet, "GET", "/rest/api/3/issue/NOPE-1", None),
        call(
            Op::IssueEdit,
            "PUT",
            format!("/rest/api/3/issue/{key}"),
            Some(json!({"fields": {"summary": "spec run"}})),
        ),
        call(
            Op::IssueEdit,
            "PUT",
            format!("/rest/api/3/issue/{key}?returnIssue=true"),
            Some(json!({"fields": {"labels": ["spec"]}})),
        ),
        call(
            Op::IssueEdit,
            "PUT",
            format!("/rest/api/3/issue/{key}"),
            Some(json!({"fields": {"nope": 1}})),
        ),
        call(
            Op::IssueCreate,
            "POST",
            "/rest/api/3/issue",
            Some(
                json!({"fields": {"project": {"key": project}, "issuetype": {"name": "Task"}, "summary": "spec"}}),
            ),
        ),
        call(
            Op::IssueCreate,
            "POST",
            "/rest/api/3/issue",
            Some(json!({"fields": {}})),
        ),
        call(
            Op::IssueDelete,
            "DELETE",
            format!("/rest/api/3/issue/{project}-2"),
            None,
        ),
        call(
            Op::CommentAdd,
            "POST",
            format!("/rest/api/3/issue/{key}/comment"),
            Some(json!({"body": doc})),
        ),
        call(
            Op::CommentList,
            "GET",
            format!("/rest/api/3/issue/{key}/comment"),
            None,
        ),
        call(
            Op::WebhookRegister,
            "POST",
            "/rest/api/3/webhook",
            Some(json!({"url": "http://127.0.0.1:9/hook", "webhooks": [
            {"events": ["comment_deleted"], "jqlFilter": format!("project = {project}")},
            {"events": ["comment_deleted"], "jqlFilter": "watchCount = 1"}]})),
        ),
        call(
            Op::WebhookRegister,
            "POST",
            "/rest/api/3/webhook",
            Some(
                json!({"url": "http://127.0.0.1:9/other", "webhooks": [{"events": ["comment_deleted"], "jqlFilter": "project = X"}]}),
            ),
        ),
        call(Op::WebhookList, "GET", "/rest/api/3/webhook", None),
        call(
            Op::WebhookRefresh,
            "PUT",
            "/rest/api/3/webhook/refresh",
            Some(json!({"webhookIds": [1]})),
        ),
        call(
            Op::WebhookDelete,
            "DELETE",
            "/rest/api/3/webhook",
            Some(json!({"webhookIds": [1]})),
        ),
        call(Op::BoardList, "GET", "/rest/agile/1.0/board", None),
        call(
            Op::BoardGet,
            "GET",
            format!("/rest/agile/1.0/board/{board}"),
            None,
        ),
        call(
            Op::BoardConfiguration,
            "GET",
            format!("/rest/agile/1.0/board/{board}/configuration"),
            None,
        ),
        call(
            Op::BoardSprints,
            "GET",
            format!("/rest/agile/1.0/board/{board}/sprint"),
            None,
        ),
        call(
            Op::BoardBacklog,
            "GET",
            format!("/rest/agile/1.0/board/{board}/backlog?maxResults=3"),
            None,
        ),
        call(
            Op::SprintGet,
            "GET",
            format!("/rest/agile/1.0/sprint/{sprint}"),
            None,
        ),
        call(
            Op::SprintIssues,
            "GET",
            format!("/rest/agile/1.0/sprint/{sprint}/issue?maxResults=3"),
            None,
        ),
        call(
            Op::EstimationSet,
            "PUT",
            format!("/rest/agile/1.0/issue/{key}/estimation?boardId={board}"),
            Some(json!({"value": "5"})),
        ),
        call(
            Op::EstimationGet,
            "GET",
            format!("/rest/agile/1.0/issue/{key}/estimation?boardId={board}"),
            None,
        ),
        call(Op::SpaceList, "GET", "/wiki/api/v2/spaces?limit=1", None),
        call(
            Op::SpaceGet,
            "GET",
            format!("/wiki/api/v2/spaces/{space}"),
            None,
        ),
        call(
            Op::SpacePages,
            "GET",
            format!("/api/v2/spaces/{space}/pages?body-format=storage"),
            None,
        ),
        call(
            Op::PageList,
            "GET",
            "/wiki/api/v2/pages?limit=2&body-format=atlas_doc_format",
            None,
        ),
        call(
            Op::PageGet,
            "GET",
            format!("/wiki/api/v2/pages/{page}?body-format=storage"),
            None,
        ),
        // simconf
        call(
            Op::PageList,
            "GET",
            "/wiki/api/v2/pages?limit=3&sort=-modified-date",
            None,
        ),
        call(
            Op::PageCreate,
            "POST",
            "/wiki/api/v2/pages",
            Some(
                json!({"spaceId": space, "status": "current", "title": "Spec run page",
                "body": {"representation": "storage", "value": "<p>spec</p>"}}),
            ),
        ),
        call(
            Op::PageCreate,
            "POST",
            "/api/v2/pages",
            Some(json!({"spaceId": space, "title": "Spec run page",
                "body": {"storage": {"representation": "storage", "value": "<p>again</p>"}}})),
        ),
        call(
            Op::PageUpdate,
            "PUT",
            format!("/wiki/api/v2/pages/{page}"),
            Some(
                json!({"id": page, "status": "current", "title": "Spec run update",
                "body": {"representation": "storage", "value": "<p>updated</p>"},
                "version": {"number": page_version + 1, "message": "spec"}}),
            ),
        ),
        call(
            Op::PageUpdate,
            "PUT",
            format!("/wiki/api/v2/pages/{page}"),
            Some(
                json!({"id": page, "status": "current", "title": "Spec run update",
                "body": {"representation": "storage", "value": "<p>stale</p>"},
                "version": {"number": page_version + 1}}),
            ),
        ),
        call(
            Op::PageChildren,
            "GET",
            format!("/wiki/api/v2/pages/{home}/children?limit=2"),
            None,
        ),
        call(
            Op::PageLabels,
            "GET",
            format!("/wiki/api/v2/pages/{page}/labels"),
            None,
        ),
        call(
            Op::PageDelete,
            "DELETE",
            format!("/wiki/api/v2/pages/{doomed}"),
            None,
        ),
    ];
    calls.extend(simmeta_script(g, &key, &project, board, sprint).await);
    calls
}

/// The issue-model breadth, metadata and agile write routes.
async fn simmeta_script(g: &Gw, key: &str, project: &str, board: u64, active: u64) -> Vec<Call> {
    let other = format!("{project}-3");
    let epics = g
        .get(&g.jira(0, &format!("/rest/agile/1.0/board/{board}/epic")))
        .await;
    let epic = epics.body["values"][0]["key"].as_str().unwrap().to_string();
    let linked = g
        .post(
            &g.jira(0, "/rest/api/3/search/jql"),
            json!({"jql": format!("project = {project}"), "fields": ["issuelinks"], "maxResults": 100}),
        )
        .await;
    let link_id = linked.body["issues"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|i| i["fields"]["issuelinks"][0]["id"].as_str())
        .unwrap()
        .to_string();
    // The next sprint id: one above every sprint of the site's scrum boards.
    let mut next_sprint = 0;
    let scrum = g.get(&g.jira(0, "/rest/agile/1.0/board?type=scrum")).await;
    for b in scrum.body["values"].as_array().unwrap() {
        let r = g
            .get(&g.jira(0, &format!("/rest/agile/1.0/board/{}/sprint", b["id"])))
            .await;
        for s in r.body["values"].as_array().unwrap() {
            next_sprint = next_sprint.max(s["id"].as_u64().unwrap());
        }
    }
    let new_sprint = next_sprint + 1;
    let doc = json!({"type":"doc","version":1,"content":[{"type":"paragraph","content":[
        {"type":"text","text":"bold","marks":[{"type":"strong"}]}]}]});
    let remote = json!({"globalId": "system=spec&id=1", "relationship": "mentioned in",
        "application": {"name": "Spec", "type": "com.example.spec"},
        "object": {"url": "https://example.com/1", "title": "SPEC-1", "summary": "spec",
                   "icon": {"url16x16": "https://example.com/i.png", "title": "Spec"},
                   "status": {"resolved": false}}});
    let fields = "summary,description,comment,parent,subtasks,duedate,components,fixVersions,issuelinks,customfield_19999";
    vec![
        call(Op::Priorities, "GET", "/rest/api/3/priority", None),
        call(Op::Statuses, "GET", "/rest/api/3/status", None),
        call(
            Op::StatusCategories,
            "GET",
            "/rest/api/3/statuscategory",
            None,
        ),
        call(
            Op::ResolutionSearch,
            "GET",
            "/rest/api/3/resolution/search",
            None,
        ),
        call(Op::IssueTypes, "GET", "/rest/api/3/issuetype", None),
        call(Op::IssueLinkTypes, "GET", "/rest/api/3/issueLinkType", None),
        call(
            Op::ProjectStatuses,
            "GET",
            format!("/rest/api/3/project/{project}/statuses"),
            None,
        ),
        call(
            Op::ProjectVersions,
            "GET",
            format!("/rest/api/3/project/{project}/versions"),
            None,
        ),
        call(
            Op::ProjectComponents,
            "GET",
            format!("/rest/api/3/project/{project}/components"),
            None,
        ),
        call(
            Op::ProjectComponents,
            "GET",
            "/rest/api/3/project/NOPE/components",
            None,
        ),
        call(
            Op::CreateMetaIssueTypes,
            "GET",
            format!("/rest/api/3/issue/createmeta/{project}/issuetypes"),
            None,
        ),
        call(
            Op::CreateMetaIssueTypes,
            "GET",
            format!("/rest/api/3/issue/createmeta/{project}/issuetypes?maxResults=500"),
            None,
        ),
        call(
            Op::CreateMetaFields,
            "GET",
            format!("/rest/api/3/issue/createmeta/{project}/issuetypes/10003"),
            None,
        ),
        call(
            Op::EditMeta,
            "GET",
            format!("/rest/api/3/issue/{key}/editmeta"),
            None,
        ),
        call(
            Op::ApproximateCount,
            "POST",
            "/rest/api/3/search/approximate-count",
            Some(json!({"jql": format!("project = {project}")})),
        ),
        call(
            Op::ApproximateCount,
            "POST",
            "/rest/api/3/search/approximate-count",
            Some(json!({"jql": ""})),
        ),
        call(
            Op::IssueEdit,
            "PUT",
            format!("/rest/api/3/issue/{key}"),
            Some(json!({
            "fields": {"duedate": "2026-12-24", "fixVersions": [{"name": "2.0"}], "parent": {"key": epic}},
            "update": {"components": [{"add": {"name": "API"}}], "comment": [{"add": {"body": doc}}],
                       "labels": [{"add": "spec-breadth"}]}})),
        ),
        call(
            Op::IssueGet,
            "GET",
            format!("/rest/api/3/issue/{key}?fields={fields}&expand=renderedFields"),
            None,
        ),
        call(
            Op::SearchJqlPost,
            "POST",
            "/rest/api/3/search/jql",
            Some(json!({
            "jql": format!("project = {project}"), "fields": fields.split(',').collect::<Vec<_>>(),
            "expand": "renderedFields", "maxResults": 5})),
        ),
        call(
            Op::IssueLinkCreate,
            "POST",
            "/rest/api/3/issueLink",
            Some(json!({
            "type": {"name": "Blocks"}, "inwardIssue": {"key": key}, "outwardIssue": {"key": other}})),
        ),
        call(
            Op::IssueLinkGet,
            "GET",
            format!("/rest/api/3/issueLink/{link_id}"),
            None,
        ),
        call(
            Op::IssueLinkDelete,
            "DELETE",
            format!("/rest/api/3/issueLink/{link_id}"),
            None,
        ),
        call(
            Op::IssueLinkGet,
            "GET",
            format!("/rest/api/3/issueLink/{link_id}"),
            None,
        ),
        call(
            Op::RemoteLinkCreate,
            "POST",
            format!("/rest/api/3/issue/{key}/remotelink"),
            Some(remote.clone()),
        ),
        call(
            Op::RemoteLinkCreate,
            "POST",
            format!("/rest/api/3/issue/{key}/remotelink"),
            Some(remote.clone()),
        ),
        call(
            Op::RemoteLinkCreate,
            "POST",
            format!("/rest/api/3/issue/{key}/remotelink"),
            Some(json!({"object": {"url": "https://example.com/2", "title": "SPEC-2"}})),
        ),
        call(
            Op::RemoteLinkCreate,
            "POST",
            format!("/rest/api/3/issue/{key}/remotelink"),
            Some(json!({"object": {}})),
        ),
        call(
            Op::RemoteLinkList,
            "GET",
            format!("/rest/api/3/issue/{key}/remotelink"),
            None,
        ),
        call(
            Op::RemoteLinkList,
            "GET",
            format!("/rest/api/3/issue/{key}/remotelink?globalId=system%3Dspec%26id%3D1"),
            None,
        ),
        call(
            Op::RemoteLinkGet,
            "GET",
            format!("/rest/api/3/issue/{key}/remotelink/10000"),
            None,
        ),
        call(
            Op::RemoteLinkUpdate,
            "PUT",
            format!("/rest/api/3/issue/{key}/remotelink/10000"),
            Some(remote),
        ),
        call(
            Op::RemoteLinkDelete,
            "DELETE",
            format!("/rest/api/3/issue/{key}/remotelink/10001"),
            None,
        ),
        call(
            Op::RemoteLinkDeleteByGlobalId,
            "DELETE",
            format!("/rest/api/3/issue/{key}/remotelink?globalId=system%3Dspec%26id%3D1"),
            None,
        ),
        call(
            Op::SprintCreate,
            "POST",
            "/rest/agile/1.0/sprint",
            Some(json!({"name": "Spec sprint", "originBoardId": board, "goal": "conform"})),
        ),
        call(
            Op::SprintPartialUpdate,
            "POST",
            format!("/rest/agile/1.0/sprint/{new_sprint}"),
            Some(json!({"goal": "conform more"})),
        ),
        call(
            Op::SprintMoveIssues,
            "POST",
            format!("/rest/agile/1.0/sprint/{new_sprint}/issue"),
            Some(json!({"issues": [other], "rankBeforeIssue": key})),
        ),
        call(
            Op::SprintUpdate,
            "PUT",
            format!("/rest/agile/1.0/sprint/{active}"),
            Some(
                json!({"name": "Closing", "state": "closed", "startDate": "2026-01-01T00:00:00.000Z",
                         "endDate": "2026-01-15T00:00:00.000Z"}),
            ),
        ),
        call(
            Op::SprintPartialUpdate,
            "POST",
            format!("/rest/agile/1.0/sprint/{new_sprint}"),
            Some(
                json!({"state": "active", "startDate": "2026-02-01T00:00:00.000Z", "endDate": "2026-02-15T00:00:00.000Z"}),
            ),
        ),
        call(
            Op::SprintPartialUpdate,
            "POST",
            format!("/rest/agile/1.0/sprint/{new_sprint}"),
            Some(json!({"state": "future"})),
        ),
        call(
            Op::BacklogMoveIssues,
            "POST",
            "/rest/agile/1.0/backlog/issue",
            Some(json!({"issues": [other]})),
        ),
        call(
            Op::IssueRank,
            "PUT",
            "/rest/agile/1.0/issue/rank",
            Some(json!({"issues": [other], "rankAfterIssue": key})),
        ),
        call(
            Op::IssueRank,
            "PUT",
            "/rest/agile/1.0/issue/rank",
            Some(json!({"issues": [key], "rankAfterIssue": key})),
        ),
        call(
            Op::BoardIssues,
            "GET",
            format!("/rest/agile/1.0/board/{board}/issue?maxResults=3&fields=summary,parent"),
            None,
        ),
        call(
            Op::BoardEpics,
            "GET",
            format!("/rest/agile/1.0/board/{board}/epic?done=false"),
            None,
        ),
        call(
            Op::EpicIssues,
            "GET",
            format!("/rest/agile/1.0/epic/{epic}/issue?maxResults=3"),
            None,
        ),
    ]
}

#[tokio::test]
async fn responses_of_a_scripted_run_validate_against_the_specs() {
    let g = gw().await;
    let mut calls = script(&g).await;
    calls.extend(simjira_script(&g).await);
    // Every route is exercised.
    for r in spec_routes() {
        assert!(
            calls.iter().any(|c| c.op == r.op && c.method == r.method),
            "script misses {} {}",
            r.method,
            r.path
        );
    }
    let mut problems: Vec<String> = Vec::new();
    let mut validated: BTreeMap<String, usize> = BTreeMap::new();
    for c in &calls {
        let route = ROUTES
            .iter()
            .find(|r| r.op == c.op && r.method == c.method)
            .unwrap();
        let url = match route.api {
            Api::Confluence => g.confluence(0, &c.path),
            _ => g.jira(0, &c.path),
        };
        let resp = g.send(c.method, &url, &g.token, c.body.clone()).await;
        let label = format!("{} {} -> {}", c.method, c.path, resp.status);
        assert!(resp.status < 500, "{label}: {:?}", resp.body);
        let Some(schema) = response_schema(route.api, route.method, route.path, resp.status) else {
            continue;
        };
        let errors = validate(route.api, &schema, &resp.body);
        if errors.is_empty() {
            *validated
                .entry(format!("{} {}", route.method, route.path))
                .or_default() += 1;
        } else {
            problems.push(format!("{label}: {}", errors.join("; ")));
        }
    }
    assert!(
        problems.is_empty(),
        "responses that do not match the spec:\n{}",
        problems.join("\n")
    );
    // Every route whose spec gives a schema for a status it answered was validated at least once.
    for r in spec_routes().filter(|r| r.op != Op::SearchRemoved) {
        // (The removed search answers 410, for which the spec has no schema.)
        let has_schema = ["200", "201"]
            .iter()
            .any(|s| response_schema(r.api, r.method, r.path, s.parse().unwrap()).is_some());
        if has_schema {
            assert!(
                validated.contains_key(&format!("{} {}", r.method, r.path)),
                "{} {} never validated",
                r.method,
                r.path
            );
        }
    }
}

/// Transitions, users, changelog and comment-by-id calls (issue 10 items 1, 2, 3, 5).
async fn simjira_script(g: &Gw) -> Vec<Call> {
    let project = g.project_key(0, 1);
    let created = g
        .post(
            &g.jira(0, "/rest/api/3/issue"),
            json!({"fields": {"project": {"key": project}, "issuetype": {"name": "Task"}, "summary": "spec transitions"}}),
        )
        .await;
    let key = created.body["key"].as_str().unwrap().to_string();
    let doc = json!({"type":"doc","version":1,"content":[{"type":"paragraph","content":[{"type":"text","text":"spec"}]}]});
    let comment = g
        .post(
            &g.jira(0, &format!("/rest/api/3/issue/{key}/comment")),
            json!({ "body": doc }),
        )
        .await;
    let comment = comment.body["id"].as_str().unwrap().to_string();
    let me = g.sim.snapshot()["users"][0]["account_id"]
        .as_str()
        .unwrap()
        .to_string();
    let other = g.sim.snapshot()["users"][4]["account_id"]
        .as_str()
        .unwrap()
        .to_string();
    let seeded = g.some_issue_key(0).await;
    let jql = crate::jira::urlencode(&format!("project = {project} ORDER BY key"));
    vec![
        call(
            Op::TransitionsGet,
            "GET",
            format!("/rest/api/3/issue/{key}/transitions?expand=transitions.fields"),
            None,
        ),
        call(
            Op::TransitionsGet,
            "GET",
            format!("/rest/api/2/issue/{key}/transitions?includeUnavailableTransitions=true"),
            None,
        ),
        call(
            Op::TransitionDo,
            "POST",
            format!("/rest/api/3/issue/{key}/transitions"),
            Some(json!({"transition": {"id": "11"}})),
        ),
        call(
            Op::TransitionDo,
            "POST",
            format!("/rest/api/3/issue/{key}/transitions"),
            Some(json!({"transition": {"id": "999"}})),
        ),
        call(
            Op::TransitionDo,
            "POST",
            format!("/rest/api/3/issue/{key}/transitions"),
            Some(
                json!({"transition": {"id": "51"}, "fields": {"resolution": {"name": "Won't Do"}}}),
            ),
        ),
        call(
            Op::UserSearch,
            "GET",
            "/rest/api/3/user/search?query=zoe",
            None,
        ),
        call(
            Op::UserAssignableSearch,
            "GET",
            format!("/rest/api/3/user/assignable/search?project={project}"),
            None,
        ),
        call(
            Op::UserGet,
            "GET",
            format!("/rest/api/3/user?accountId={other}&expand=groups,applicationRoles"),
            None,
        ),
        call(
            Op::UserGet,
            "GET",
            "/rest/api/3/user?accountId=nobody",
            None,
        ),
        call(
            Op::UsersSearch,
            "GET",
            "/rest/api/3/users/search?maxResults=100",
            None,
        ),
        call(
            Op::UserBulk,
            "GET",
            format!("/rest/api/3/user/bulk?accountId={me}&accountId={other}&maxResults=1"),
            None,
        ),
        call(
            Op::IssueAssign,
            "PUT",
            format!("/rest/api/3/issue/{key}/assignee"),
            Some(json!({ "accountId": other })),
        ),
        call(
            Op::IssueAssign,
            "PUT",
            format!("/rest/api/latest/issue/{key}/assignee"),
            Some(json!({ "accountId": null })),
        ),
        call(
            Op::ChangelogGet,
            "GET",
            format!("/rest/api/3/issue/{key}/changelog?maxResults=1"),
            None,
        ),
        call(
            Op::ChangelogBulk,
            "POST",
            "/rest/api/3/changelog/bulkfetch",
            Some(json!({"issueIdsOrKeys": [key, seeded], "maxResults": 2})),
        ),
        call(
            Op::IssueGet,
            "GET",
            format!("/rest/api/3/issue/{seeded}?expand=changelog"),
            None,
        ),
        call(
            Op::SearchJqlGet,
            "GET",
            format!("/rest/api/3/search/jql?jql={jql}&fields=*all&expand=changelog&maxResults=3"),
            None,
        ),
        call(
            Op::CommentGet,
            "GET",
            format!("/rest/api/3/issue/{key}/comment/{comment}"),
            None,
        ),
        call(
            Op::CommentUpdate,
            "PUT",
            format!("/rest/api/3/issue/{key}/comment/{comment}"),
            Some(json!({ "body": doc })),
        ),
        call(
            Op::CommentDelete,
            "DELETE",
            format!("/rest/api/3/issue/{key}/comment/{comment}"),
            None,
        ),
        call(
            Op::CommentGet,
            "GET",
            format!("/rest/api/3/issue/{key}/comment/{comment}"),
            None,
        ),
    ]
}

/// `data/spec_operations.json` (what the gateway's 501 names) lists every
/// operation of the three specs. `ATLASSIM_REGENERATE_SPEC_OPS=1` rewrites it.
#[test]
fn spec_operations_table_is_derived_from_the_specs() {
    let mut derived: Vec<Value> = Vec::new();
    for api in [Api::Jira, Api::Agile, Api::Confluence] {
        for (path, item) in spec(api)["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if ["get", "put", "post", "delete", "patch", "head", "options"]
                    .contains(&method.as_str())
                {
                    derived.push(json!([
                        method.to_ascii_uppercase(),
                        api.as_str(),
                        path,
                        op["operationId"].as_str().unwrap_or("")
                    ]));
                }
            }
        }
    }
    if std::env::var("ATLASSIM_REGENERATE_SPEC_OPS").is_ok() {
        let lines: Vec<String> = derived.iter().map(|v| v.to_string()).collect();
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/spec_operations.json");
        std::fs::write(&path, format!("[\n{}\n]\n", lines.join(",\n"))).unwrap();
    }
    let mut checked_in: Vec<Value> =
        serde_json::from_str(atlassim::gateway::fallback::SPEC_OPERATIONS_JSON).unwrap();
    // Order is immaterial (lookups scan them all).
    checked_in.sort_by_key(|v| v.to_string());
    derived.sort_by_key(|v| v.to_string());
    assert_eq!(
        checked_in, derived,
        "data/spec_operations.json drifted from the specs"
    );
}

#[test]
fn the_validator_rejects_a_body_that_breaks_the_schema() {
    let schema = response_schema(Api::Jira, "GET", "/rest/api/3/serverInfo", 200).unwrap();
    assert!(validate(
        Api::Jira,
        &schema,
        &json!({"baseUrl": "https://x.atlassian.net"})
    )
    .is_empty());
    assert!(!validate(Api::Jira, &schema, &json!({"baseUrl": 7})).is_empty());
    assert!(!validate(Api::Jira, &schema, &json!({"unknownField": true})).is_empty());
    let page = response_schema(Api::Confluence, "GET", "/spaces", 200).unwrap();
    assert!(!validate(Api::Confluence, &page, &json!({"results": [{"id": 5}]})).is_empty());
}
