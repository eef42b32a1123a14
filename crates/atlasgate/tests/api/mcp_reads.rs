//! The MCP server's reads from the store (docs/design.md §16, docs/agents.md
//! "Reads from the store"), on both backends, against atlassim: after a
//! sync's pass `jira_get_issue` and `confluence_get_page` answer from the
//! store (`source: store`, the sync, the copy's time; the description as
//! Markdown like the live answer) and atlassim sees no request; an issue or
//! page outside the sync, `live: true`, a copy older than the server's own
//! write, an issue that left the sync's JQL, and a sync that stopped
//! keeping up all go to Atlassian.

use serde_json::{json, Value};

use crate::events::fast_jobs;
use crate::helpers::{backends, wait_for, TestApp};
use crate::mcp_sdk::call_tool;
use crate::proxy::{connected, gateway_requests, sim_site};

struct Agent<'a> {
    app: &'a TestApp,
    key: String,
    id: String,
    url: String,
}

impl Agent<'_> {
    /// A tool call that must succeed; its `structuredContent`.
    async fn call(&self, tool: &str, args: Value) -> Value {
        let r = call_tool(&self.app.client, &self.url, &self.key, tool, args).await;
        assert_eq!(r["isError"], false, "{tool}: {r}");
        r["structuredContent"].clone()
    }

    /// A tool call, and how many requests atlassim's gateway saw meanwhile.
    async fn call_counted(&self, tool: &str, args: Value) -> (Value, u64) {
        let before = gateway_requests(self.app);
        let v = self.call(tool, args).await;
        (v, gateway_requests(self.app) - before)
    }

    async fn sync(&self, body: Value) -> String {
        let resp = self
            .app
            .post_json(
                &format!("/v1/connections/{}/syncs", self.id),
                Some(&self.key),
                &body,
            )
            .await;
        assert_eq!(resp.status(), 201);
        let id = resp.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        self.passes(&id, 0).await;
        id
    }

    /// Wait until the sync has finished more than `after` passes.
    async fn passes(&self, sync: &str, after: i64) {
        let path = format!("/v1/connections/{}/syncs/{sync}", self.id);
        wait_for(60, "a sync pass", || async {
            let v = self.app.get_ok(&path, &self.key).await;
            (v["state"] == "idle" && v["passes"].as_i64().unwrap_or(0) > after).then_some(())
        })
        .await;
    }

    async fn run_pass(&self, sync: &str) {
        let path = format!("/v1/connections/{}/syncs/{sync}", self.id);
        let before = self.app.get_ok(&path, &self.key).await["passes"]
            .as_i64()
            .unwrap();
        let resp = self
            .app
            .post_json(&format!("{path}/run"), Some(&self.key), &json!({}))
            .await;
        assert!(resp.status().is_success(), "{}", resp.status());
        self.passes(sync, before).await;
    }
}

/// What a store answer and a live one of the same issue must share.
fn issue_facts(v: &Value) -> Value {
    json!([
        v["key"],
        v["id"],
        v["summary"],
        v["status"],
        v["type"],
        v["url"],
        v["description_markdown"],
        v["assignee"],
        v["reporter"],
        v["resolution"],
        v["created"]
    ])
}

async fn reads_from_the_store(backend: atlasgate::store::Backend) {
    let app = TestApp::spawn_on(backend).await;
    fast_jobs(&app);
    let (key, id) = connected(&app, "atlassian", 0).await;
    let agent = Agent {
        app: &app,
        url: app.url(&format!("/v1/connections/{id}/mcp")),
        key,
        id,
    };
    let site = sim_site(&app, 0);
    let inside = site["projects"][0]["key"].as_str().unwrap().to_string();
    let outside = site["projects"][1]["key"].as_str().unwrap().to_string();
    let issue = format!("{inside}-1");

    // A description with marks the converter must render, and an assignee.
    let user = app.sim.snapshot()["users"][0].clone();
    agent
        .call(
            "jira_update_issue",
            json!({ "key": issue, "description": "Keep **this** and `that`.\n\n- one\n- two" }),
        )
        .await;
    agent
        .call(
            "jira_assign_issue",
            json!({ "key": issue, "assignee": user["email"] }),
        )
        .await;
    let sync = agent
        .sync(json!({ "jql": format!("project = {inside}"), "interval_s": 3600 }))
        .await;

    // Covered: from the store, no request reaches atlassim.
    let (stored, calls) = agent
        .call_counted("jira_get_issue", json!({ "key": issue.to_lowercase() }))
        .await;
    assert_eq!(calls, 0, "served without an Atlassian call: {stored}");
    assert_eq!(stored["source"], "store", "{stored}");
    assert_eq!(stored["sync_id"], sync);
    assert!(
        stored["synced_at"].as_str().unwrap().ends_with('Z'),
        "{stored}"
    );
    assert!(stored.get("comments").is_none(), "comments are not stored");
    let md = stored["description_markdown"].as_str().unwrap();
    assert!(md.contains("**this**") && md.contains("`that`"), "{md}");
    assert_eq!(stored["assignee"]["account_id"], user["account_id"]);
    // The same facts as the live answer (`live: true` goes to Jira).
    let (live, calls) = agent
        .call_counted("jira_get_issue", json!({ "key": issue, "live": true }))
        .await;
    assert_eq!(live["source"], "jira");
    assert!(calls > 0);
    assert_eq!(issue_facts(&stored), issue_facts(&live));

    // Outside the sync's JQL: Jira.
    let (other, calls) = agent
        .call_counted("jira_get_issue", json!({ "key": format!("{outside}-1") }))
        .await;
    assert_eq!(other["source"], "jira", "{other}");
    assert!(calls > 0);
    // jira_search with the sync's JQL names the sync too.
    let (found, calls) = agent
        .call_counted(
            "jira_search",
            json!({ "jql": format!("project = {inside}"), "limit": 3 }),
        )
        .await;
    assert_eq!((found["source"].clone(), calls), (json!("store"), 0));
    assert_eq!(found["sync_id"], sync);

    // Read your own writes: after a write through MCP the copy is not
    // shown until the sync has stored the issue again.
    agent
        .call(
            "jira_update_issue",
            json!({ "key": issue, "summary": "Renamed by the agent" }),
        )
        .await;
    let after = agent.call("jira_get_issue", json!({ "key": issue })).await;
    assert_eq!(after["source"], "jira", "{after}");
    assert_eq!(after["summary"], "Renamed by the agent");
    agent.run_pass(&sync).await;
    let (again, calls) = agent
        .call_counted("jira_get_issue", json!({ "key": issue }))
        .await;
    assert_eq!(
        (again["source"].clone(), calls),
        (json!("store"), 0),
        "{again}"
    );
    assert_eq!(again["summary"], "Renamed by the agent");

    // A sync whose last pass is older than twice its interval (its worker
    // stopped) no longer answers.
    sqlx::query("UPDATE syncs SET last_run_at = last_run_at - 7261 WHERE id = $1")
        .bind(&sync)
        .execute(app.store.pool())
        .await
        .unwrap();
    let stale = agent.call("jira_get_issue", json!({ "key": issue })).await;
    assert_eq!(stale["source"], "jira", "{stale}");

    // An issue that leaves a sync's JQL (moved by someone else, not through
    // MCP): the sync's reconciliation finds Jira still has it and marks the
    // copy, so reads go to Jira instead of the copy's old status.
    let mover = format!("{outside}-2");
    let was = agent
        .call("jira_get_issue", json!({ "key": mover, "live": true }))
        .await["status"]
        .as_str()
        .unwrap()
        .to_string();
    let narrow = agent
        .sync(json!({ "jql": format!("project = {outside} AND status = \"{was}\""), "interval_s": 3600 }))
        .await;
    let (copy, calls) = agent
        .call_counted("jira_get_issue", json!({ "key": mover }))
        .await;
    assert_eq!(
        (copy["source"].clone(), calls),
        (json!("store"), 0),
        "{copy}"
    );
    let path = format!(
        "/v1/connections/{}/jira/issues/{mover}/transition",
        agent.id
    );
    let nowhere = app
        .post_json(&path, Some(&agent.key), &json!({ "to": "No such status" }))
        .await;
    assert_eq!(nowhere.status(), 409);
    let to = nowhere.json::<Value>().await.unwrap()["reachable"][0]
        .as_str()
        .unwrap()
        .to_string();
    let moved = app
        .post_json(&path, Some(&agent.key), &json!({ "to": to }))
        .await;
    assert!(moved.status().is_success(), "{}", moved.status());
    atlasgate::jobs::Tuning::set(&app.state.jobs.tuning.sync_reconcile_s, 0);
    agent.run_pass(&narrow).await;
    let now = agent.call("jira_get_issue", json!({ "key": mover })).await;
    assert_eq!(now["source"], "jira", "{now}");
    assert_eq!(now["status"], to.as_str());

    // Confluence: a sync of one space.
    let spaces = app
        .get_ok(
            &format!("/v1/connections/{}/confluence/spaces", agent.id),
            &agent.key,
        )
        .await;
    let space = spaces["items"][0]["key"].as_str().unwrap().to_string();
    let other_space = spaces["items"][1]["key"].as_str().unwrap().to_string();
    let made = agent
        .call(
            "confluence_create_page",
            json!({ "space": space, "title": "Runbook", "markdown": "# Steps\n\n1. **Stop** it\n2. Start `it`" }),
        )
        .await;
    let page = made["id"].as_str().unwrap().to_string();
    let elsewhere = agent
        .call(
            "confluence_create_page",
            json!({ "space": other_space, "title": "Elsewhere", "markdown": "Not synced." }),
        )
        .await;
    let page_sync = agent
        .sync(json!({ "confluence_cql": format!("space = {space}"), "interval_s": 3600 }))
        .await;
    let (stored, calls) = agent
        .call_counted("confluence_get_page", json!({ "id": page }))
        .await;
    assert_eq!(calls, 0, "served without an Atlassian call: {stored}");
    assert_eq!(stored["source"], "store", "{stored}");
    assert_eq!(stored["sync_id"], page_sync);
    let (live, _) = agent
        .call_counted("confluence_get_page", json!({ "id": page, "live": true }))
        .await;
    assert_eq!(live["source"], "confluence");
    for k in [
        "id",
        "space_id",
        "space_key",
        "title",
        "version",
        "url",
        "markdown",
    ] {
        assert_eq!(stored[k], live[k], "{k}: {stored} vs {live}");
    }
    assert!(stored["markdown"].as_str().unwrap().contains("**Stop**"));
    // Outside the sync: Confluence.
    let (other, calls) = agent
        .call_counted("confluence_get_page", json!({ "id": elsewhere["id"] }))
        .await;
    assert_eq!(other["source"], "confluence", "{other}");
    assert!(calls > 0);
    // After the agent's own update, the page is read live (the new version).
    let version = stored["version"].as_i64().unwrap();
    agent
        .call(
            "confluence_update_page",
            json!({ "id": page, "markdown": "Rewritten.", "version": version }),
        )
        .await;
    let after = agent
        .call("confluence_get_page", json!({ "id": page }))
        .await;
    assert_eq!(after["source"], "confluence", "{after}");
    assert_eq!(after["version"], version + 1);
}

#[tokio::test]
async fn mcp_reads_are_served_from_the_store_when_a_sync_covers_them() {
    for backend in backends() {
        reads_from_the_store(backend).await;
    }
}
