//! A connection's MCP server (docs/design.md §16) driven by the official MCP
//! Python SDK (PyPI `mcp`, `tests/python/mcp_check.py`) against atlassim:
//! the tools of this build, a write checked on atlassim's side, tool errors
//! as `isError` results, the stored policy (read-only; a tool list) read by
//! two processes, another app's key and no key, no token in any result; and
//! `jira_create_issue`'s idempotency record across two processes. Both
//! backends (the policy and the idempotency records are stored).

use atlasgate::ids::ConnectionId;
use std::process::Command;

use serde_json::{json, Value};

use crate::helpers::{assert_problem, backends, wait_for, TestApp};
use crate::outside::{python_script, python_with};
use crate::proxy::{connect_with, gateway_requests, proxy_get, sim_site};

/// One JSON-RPC message POSTed to an MCP endpoint the way any Streamable
/// HTTP client sends it (no session: atlasgate's server is stateless).
pub async fn rpc(
    client: &reqwest::Client,
    url: &str,
    key: Option<&str>,
    body: &Value,
) -> reqwest::Response {
    let mut req = client
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .json(body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    req.send().await.unwrap()
}

/// `tools/call` over [`rpc`]; the JSON-RPC `result`.
pub async fn call_tool(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    name: &str,
    arguments: Value,
) -> Value {
    let resp = rpc(
        client,
        url,
        Some(key),
        &json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
                 "params": { "name": name, "arguments": arguments } }),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"].is_null(), "{body}");
    body["result"].clone()
}

/// [`run_script`], with the exit status in the panic (a signal shows there).
async fn run(cmd: Command) -> String {
    let shown = format!("{cmd:?}");

    let out = run_script_status(cmd).await;
    assert!(
        out.0.success(),
        "{shown}: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.0,
        out.1,
        out.2
    );
    assert_eq!(out.1.lines().last(), Some("ok"), "{}", out.1);
    out.1
}

async fn run_script_status(mut cmd: Command) -> (std::process::ExitStatus, String, String) {
    for var in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
        cmd.env_remove(var);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn script(python: &str, url: &str, key: &str, phase: &str, results: &std::path::Path) -> Command {
    let mut cmd = Command::new(python);
    cmd.arg(python_script("mcp_check.py"))
        .env("MCP_URL", url)
        .env("ATLASGATE_APP_KEY", key)
        .env("PHASE", phase)
        .env("RESULTS_FILE", results)
        .env("PYTHONUNBUFFERED", "1");
    cmd
}

async fn issue_json(app: &TestApp, key: &str, id: &str, issue: &str) -> Value {
    let resp = proxy_get(
        app,
        key,
        id,
        &format!("rest/api/3/issue/{issue}?fields=summary,status,resolution,assignee,description,comment"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// Every ADF node of `v` (depth first).
fn nodes(v: &Value) -> Vec<&Value> {
    let mut out = vec![v];
    for c in v["content"].as_array().into_iter().flatten() {
        out.extend(nodes(c));
    }
    out
}

fn has_mark(doc: &Value, mark: &str) -> bool {
    nodes(doc).iter().any(|n| {
        n["marks"]
            .as_array()
            .is_some_and(|ms| ms.iter().any(|m| m["type"] == mark))
    })
}

async fn estimate_of(app: &TestApp, key: &str, id: &str, issue: &str, field: &str) -> Value {
    let resp = proxy_get(
        app,
        key,
        id,
        &format!("rest/api/3/issue/{issue}?fields={field}"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    v["fields"][field].clone()
}

async fn mcp_flow(backend: atlasgate::store::Backend, python: &str) {
    let app = TestApp::spawn_on(backend).await;
    let (_, key) = app.create_app("agent-platform").await;
    let (_, other_key) = app.create_app("someone-else").await;
    let id = connect_with(&app, &key, "team:agents", "atlassian", 0).await;
    let site = sim_site(&app, 0);
    let project = site["projects"][0]["key"].as_str().unwrap().to_string();
    let sp_field = site["story_points_field"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let url = app.url(&format!("/v1/connections/{id}/mcp"));
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results.jsonl");

    // No key: 401; another app's key: the 404 of a missing connection.
    let init = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": { "name": "probe", "version": "1" } } });
    assert_problem(rpc(&app.client, &url, None, &init).await, 401).await;
    let mut other =
        assert_problem(rpc(&app.client, &url, Some(&other_key), &init).await, 404).await;
    let missing = app.url("/v1/connections/con_000000000000ffffffffffffffff/mcp");
    let mut absent = assert_problem(rpc(&app.client, &missing, Some(&key), &init).await, 404).await;
    other.as_object_mut().unwrap().remove("request_id");
    absent.as_object_mut().unwrap().remove("request_id");
    assert_eq!(other, absent);
    // Positive control: the same request with the right key initializes.
    let ok = rpc(&app.client, &url, Some(&key), &init).await;
    assert_eq!(ok.status(), 200);
    let ok: Value = ok.json().await.unwrap();
    assert_eq!(ok["result"]["serverInfo"]["name"], "atlasgate", "{ok}");

    // The agent, through the official SDK.
    let mut cmd = script(python, &url, &key, "reads", &results);
    cmd.env("PROJECT", &project);
    let out = run(cmd).await;
    let made: Value = serde_json::from_str(out.lines().rev().nth(1).unwrap()).unwrap();
    let issue_key = made["key"].as_str().unwrap().to_string();
    // atlassim holds the estimate the agent wrote.
    assert_eq!(
        estimate_of(&app, &key, &id, &issue_key, &sp_field).await,
        json!(13.0)
    );

    // Every step of the issue's list, through the SDK, checked on atlassim.
    let space = site["spaces"][0].as_str().unwrap().to_string();
    let user = app.sim.snapshot()["users"][0].clone();
    let mut cmd = script(python, &url, &key, "agent", &results);
    cmd.env("PROJECT", &project)
        .env("SPACE_KEY", &space)
        .env("ASSIGNEE_EMAIL", user["email"].as_str().unwrap())
        .env("ASSIGNEE_ACCOUNT", user["account_id"].as_str().unwrap());
    let out = run(cmd).await;
    let made: Value = serde_json::from_str(out.lines().rev().nth(1).unwrap()).unwrap();
    let agent_issue = made["key"].as_str().unwrap().to_string();
    let page_id = made["page_id"].as_str().unwrap().to_string();
    let issue = issue_json(&app, &key, &id, &agent_issue).await;
    let f = &issue["fields"];
    let description = &f["description"];
    assert!(has_mark(description, "strong"), "{description}");
    let code = nodes(description)
        .into_iter()
        .find(|n| n["type"] == "codeBlock")
        .cloned()
        .unwrap_or_else(|| panic!("no code block in {description}"));
    assert_eq!(code["attrs"]["language"], "python", "{code}");
    assert_eq!(f["status"]["name"], "Done", "{f}");
    assert_eq!(f["resolution"]["name"], "Done", "{f}");
    assert_eq!(f["assignee"]["accountId"], user["account_id"], "{f}");
    let comments = f["comment"]["comments"].as_array().unwrap();
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert!(has_mark(&comments[0]["body"], "code") && has_mark(&comments[0]["body"], "strong"));

    // A sync with the same JQL: jira_search answers from the store, without
    // calling Atlassian, and says so; another JQL still goes to Jira.
    let sync = app
        .post_json(
            &format!("/v1/connections/{id}/syncs"),
            Some(&key),
            &json!({ "jql": format!("project = {project}") }),
        )
        .await;
    assert_eq!(sync.status(), 201);
    let sync_id = sync.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_for(60, "the sync's first pass", || async {
        let v = app
            .get_ok(&format!("/v1/connections/{id}/syncs/{sync_id}"), &key)
            .await;
        (v["passes"].as_i64().unwrap_or(0) >= 1).then_some(())
    })
    .await;
    let calls = gateway_requests(&app);
    let stored = call_tool(
        &app.client,
        &url,
        &key,
        "jira_search",
        json!({ "jql": format!("project  =  {project}"), "limit": 5 }),
    )
    .await;
    assert_eq!(
        gateway_requests(&app),
        calls,
        "served without an Atlassian call"
    );
    assert_eq!(stored["isError"], false, "{stored}");
    assert_eq!(stored["structuredContent"]["source"], "store", "{stored}");
    assert_eq!(
        stored["structuredContent"]["issues"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    let live = call_tool(
        &app.client,
        &url,
        &key,
        "jira_search",
        json!({ "jql": format!("project = {project} AND status = \"To Do\""), "limit": 5 }),
    )
    .await;
    assert_eq!(live["structuredContent"]["source"], "jira", "{live}");
    assert!(gateway_requests(&app) > calls);
    let direct = format!("{stored}{live}");

    // Read-only policy: stored, write tools hidden and refused, nothing changes.
    let before = app.sim.snapshot()["sites"][0].clone();
    let policy = app
        .client
        .put(app.url(&format!("/v1/connections/{id}/mcp-policy")))
        .bearer_auth(&key)
        .json(&json!({ "read_only": true, "tools": null }))
        .send()
        .await
        .unwrap();
    assert_eq!(policy.status(), 200);
    // Bad input is refused and changes nothing stored.
    let bad = app
        .client
        .put(app.url(&format!("/v1/connections/{id}/mcp-policy")))
        .bearer_auth(&key)
        .json(&json!({ "read_only": false, "tools": ["jira_search", "jira_drop_table"] }))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(bad, 422).await;
    assert!(problem.to_string().contains("jira_drop_table"), "{problem}");
    let stored = app
        .get_json(&format!("/v1/connections/{id}/mcp-policy"), &key)
        .await;
    assert_eq!(stored, json!({ "read_only": true, "tools": null }));
    // Another process of the deployment reads the same policy.
    let other_process = app.spawn_other(app.keyring.clone()).await;
    let listed = rpc(
        &app.client,
        &format!("{}/v1/connections/{id}/mcp", other_process.address),
        Some(&key),
        &json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {} }),
    )
    .await;
    let listed: Value = listed.json().await.unwrap();
    let names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"jira_search") && !names.contains(&"jira_set_estimate"),
        "{listed}"
    );
    let mut cmd = script(python, &url, &key, "reads_read_only", &results);
    cmd.env("ISSUE_KEY", &issue_key);
    run(cmd).await;
    let agent_before = issue_json(&app, &key, &id, &agent_issue).await;
    let mut cmd = script(python, &url, &key, "read_only", &results);
    cmd.env("PROJECT", &project)
        .env("SPACE_KEY", &space)
        .env("ISSUE_KEY", &agent_issue)
        .env("PAGE_ID", &page_id);
    run(cmd).await;
    assert_eq!(
        agent_before,
        issue_json(&app, &key, &id, &agent_issue).await
    );
    let after = app.sim.snapshot()["sites"][0].clone();
    assert_eq!(
        before["issues_digest"], after["issues_digest"],
        "no issue changed"
    );
    assert_eq!(
        estimate_of(&app, &key, &id, &issue_key, &sp_field).await,
        json!(13.0)
    );
    // A tool list: only the tools named (the default again allows writes).
    let narrowed = app
        .client
        .put(app.url(&format!("/v1/connections/{id}/mcp-policy")))
        .bearer_auth(&key)
        .json(&json!({ "read_only": false, "tools": ["jira_list_projects", "jira_search"] }))
        .send()
        .await
        .unwrap();
    let narrowed: Value = narrowed.json().await.unwrap();
    assert_eq!(
        narrowed["tools"],
        json!(["jira_search", "jira_list_projects"])
    );
    let refused = call_tool(&app.client, &url, &key, "jira_list_boards", json!({})).await;
    assert_eq!(refused["isError"], true, "{refused}");
    assert_eq!(
        refused["structuredContent"]["error"]["kind"],
        "refused_by_policy"
    );

    // Another app's key, through the SDK: refused.
    run(script(python, &url, &other_key, "other_key", &results)).await;

    // No tool result carries a token of the connection.
    let results = std::fs::read_to_string(&results).unwrap();
    assert!(results.lines().count() >= 35, "{results}");
    let tokens = crate::secrets::stored_tokens(&app).await;
    assert!(tokens.len() >= 2, "access and refresh token");
    for t in tokens {
        assert!(!results.contains(&t), "a tool result contains a token");
        assert!(!direct.contains(&t), "a tool result contains a token");
    }
}

#[tokio::test]
async fn the_official_python_sdk_drives_a_connections_mcp_server() {
    let Some(python) = python_with("mcp") else {
        return;
    };
    for backend in backends() {
        mcp_flow(backend, python).await;
    }
}

/// `jira_create_issue`'s idempotency record, on the store of two processes
/// of one deployment: the same call creates once; another call creates
/// again; a failed creation gives the claim back.
async fn idempotency(backend: atlasgate::store::Backend) {
    use atlasgate::store::mcp::CreatedIssue;
    use atlasgate_core::mcp::idempotency::{create_once, CreateCall};
    use std::sync::atomic::{AtomicUsize, Ordering};

    let app = TestApp::spawn_on(backend).await;
    let (_, key) = app.create_app("idem").await;
    let id = connect_with(&app, &key, "team:idem", "jira", 0).await;
    let other = app.spawn_other(app.keyring.clone()).await;
    let made = AtomicUsize::new(0);
    let create = |n: &'static str| {
        let made = &made;
        move || async move {
            made.fetch_add(1, Ordering::SeqCst);
            Ok(CreatedIssue {
                id: n.into(),
                key: format!("ACME-{n}"),
                url: format!("https://x/browse/ACME-{n}"),
            })
        }
    };
    let call = CreateCall {
        project: "ACME",
        issue_type: "Task",
        summary: "Once",
        description: Some("**b**"),
        idempotency_key: None,
    };
    let (first, replayed) = create_once(&app.store, &ConnectionId::new(&id), &call, create("1"))
        .await
        .unwrap();
    assert!(!replayed);
    // The same call through the other process's store: the first issue.
    let (again, replayed) = create_once(
        &other.state.store,
        &ConnectionId::new(&id),
        &call,
        create("2"),
    )
    .await
    .unwrap();
    assert!(replayed);
    assert_eq!(again, first);
    assert_eq!(made.load(Ordering::SeqCst), 1);
    // Other arguments: a new issue.
    let other_call = CreateCall {
        summary: "Twice",
        ..call
    };
    let (second, replayed) = create_once(
        &app.store,
        &ConnectionId::new(&id),
        &other_call,
        create("3"),
    )
    .await
    .unwrap();
    assert!(!replayed);
    assert_eq!(second.key, "ACME-3");
    // A failure gives the claim back: the same call may try again.
    let keyed = CreateCall {
        idempotency_key: Some("k-9"),
        ..call
    };
    let failed = create_once(&app.store, &ConnectionId::new(&id), &keyed, || async {
        Err(atlasgate_core::Error::Timeout)
    })
    .await;
    assert!(matches!(failed, Err(atlasgate_core::Error::Timeout)));
    let (retried, replayed) = create_once(&app.store, &ConnectionId::new(&id), &keyed, create("4"))
        .await
        .unwrap();
    assert!(!replayed);
    assert_eq!(retried.key, "ACME-4");
    assert_eq!(made.load(Ordering::SeqCst), 3);
    // Past the window, the record is forgotten (its row is aged here).
    sqlx::query("UPDATE mcp_created_issues SET created_at = created_at - 601")
        .execute(app.store.pool())
        .await
        .unwrap();
    let (fresh, replayed) = create_once(&app.store, &ConnectionId::new(&id), &call, create("5"))
        .await
        .unwrap();
    assert!(!replayed);
    assert_eq!(fresh.key, "ACME-5");
}

#[tokio::test]
async fn jira_create_issue_is_idempotent_across_processes() {
    for backend in backends() {
        idempotency(backend).await;
    }
}
