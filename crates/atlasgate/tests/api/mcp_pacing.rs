//! MCP writes paced per issue (docs/agents.md, "Paced per issue";
//! `atlasgate_core::mcp::pacing`) against atlassim with its rate limits on,
//! which answers Jira's `jira-per-issue-on-write` 429 past 20 writes to one
//! issue in 2 s (docs/atlassian-behaviour.md §4). A burst of 25 comments on
//! one issue through the MCP endpoint: every call succeeds, atlassim
//! refuses none, and its own timestamps show no 21 of them inside 2 s. 20
//! comments on another issue in the same burst are not held up by the
//! first issue's queue. Control: the same burst sent to atlassim directly,
//! unpaced, meets the 429.

use futures::future::join_all;
use serde_json::{json, Value};

use crate::helpers::{TestApp, TestOptions};
use crate::mcp_sdk::call_tool;
use crate::proxy::{connected, proxy_get, sim_site};

const COMMENT_ROUTE: &str = "/rest/api/3/issue/{issueIdOrKey}/comment";

/// POSTs atlassim answered on the comment route with `status`.
fn comment_posts(app: &TestApp, status: u16) -> u64 {
    app.sim
        .stats()
        .requests
        .iter()
        .filter(|r| r.method == "POST" && r.route.ends_with(COMMENT_ROUTE) && r.status == status)
        .map(|r| r.count)
        .sum()
}

/// The creation times (ms, atlassim's clock) of the issue's comments, sorted.
async fn comment_times(app: &TestApp, key: &str, id: &str, issue: &str) -> Vec<i64> {
    let resp = proxy_get(
        app,
        key,
        id,
        &format!("rest/api/3/issue/{issue}/comment?maxResults=100"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    let mut times: Vec<i64> = v["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            chrono::DateTime::parse_from_str(
                c["created"].as_str().unwrap(),
                "%Y-%m-%dT%H:%M:%S%.3f%z",
            )
            .unwrap()
            .timestamp_millis()
        })
        .collect();
    times.sort();
    times
}

#[tokio::test]
async fn mcp_writes_to_one_issue_stay_under_jiras_per_issue_limit() {
    let app = TestApp::spawn_with(
        TestOptions {
            sim: atlassim::SimConfig {
                rate_limits: true,
                ..Default::default()
            },
            ..Default::default()
        },
        |_| {},
    )
    .await;
    let (key, id) = connected(&app, "jira", 0).await;
    let url = app.url(&format!("/v1/connections/{id}/mcp"));
    let project = sim_site(&app, 0)["projects"][0]["key"]
        .as_str()
        .unwrap()
        .to_string();
    let (busy, quiet, control) = (
        format!("{project}-1"),
        format!("{project}-2"),
        format!("{project}-3"),
    );

    // One burst: 25 comments on `busy`, 20 on `quiet`, all at once.
    let comment = |issue: String, n: usize| {
        let (client, url, key) = (app.client.clone(), url.clone(), key.clone());
        async move {
            call_tool(
                &client,
                &url,
                &key,
                "jira_add_comment",
                json!({ "key": issue, "markdown": format!("note **{n}**") }),
            )
            .await
        }
    };
    let calls = (0..25)
        .map(|n| comment(busy.clone(), n))
        .chain((0..20).map(|n| comment(quiet.clone(), n)));
    let results = join_all(calls).await;
    for r in &results {
        assert_eq!(r["isError"], false, "{r}");
    }
    assert_eq!(comment_posts(&app, 201), 45);
    assert_eq!(
        comment_posts(&app, 429),
        0,
        "atlassim refused a paced write"
    );

    // atlassim's clock: no 21 writes to `busy` inside any 2 s window.
    let busy_times = comment_times(&app, &key, &id, &busy).await;
    assert_eq!(busy_times.len(), 25);
    for (i, w) in busy_times.windows(21).enumerate() {
        assert!(
            w[20] - w[0] >= 2000,
            "writes {i}..{} to {busy} within {} ms",
            i + 20,
            w[20] - w[0]
        );
    }
    // `quiet` was not queued behind `busy`: all its writes reached
    // atlassim before the 21st write to `busy` (which had to wait 2 s).
    let quiet_times = comment_times(&app, &key, &id, &quiet).await;
    assert_eq!(quiet_times.len(), 20);
    assert!(
        quiet_times[19] < busy_times[20],
        "{quiet} waited for {busy}: {quiet_times:?} vs {busy_times:?}"
    );

    // Control: the same burst straight at atlassim, unpaced, is refused.
    let token = app
        .sim
        .mint_token(atlassim::MintTokenRequest::default())
        .access_token;
    let cloud = sim_site(&app, 0)["cloud_id"].as_str().unwrap().to_string();
    let direct = format!(
        "{}/ex/jira/{cloud}/rest/api/3/issue/{control}/comment",
        app.sim.api_url()
    );
    let body = json!({ "body": { "type": "doc", "version": 1, "content": [
        { "type": "paragraph", "content": [{ "type": "text", "text": "unpaced" }] }] } });
    let statuses = join_all((0..25).map(|_| {
        app.client
            .post(&direct)
            .bearer_auth(&token)
            .json(&body)
            .send()
    }))
    .await;
    let refused: Vec<_> = statuses
        .into_iter()
        .map(Result::unwrap)
        .filter(|r| r.status() == 429)
        .collect();
    assert!(
        !refused.is_empty(),
        "unpaced, the 21st write within 2 s is refused"
    );
    assert_eq!(
        refused[0].headers()["ratelimit-reason"],
        "jira-per-issue-on-write"
    );
}
