//! Outside check: `atlassian-python-api` (PyPI), unchanged, with atlasgate's
//! Confluence proxy URL as its server and the app key as its bearer token
//! (`tests/python/pyatlassian_check.py`): `create_page`, `update_page`
//! (the v1 content API, version check included) and `cql` (v1 search);
//! and its Jira client against the Jira proxy: `set_issue_status` (which
//! looks the transition up by its target status) to In Progress, then Done,
//! read back with `get_issue`.

use atlasgate::config::Profile;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{TestApp, TestOptions};
use crate::outside::{python_script, python_with, run_script};
use crate::proxy::{connect_with, proxy_get, proxy_json, sim_count, sim_site};

/// The v1 content and search scopes (classic), plus identity and refresh.
const SCOPES: &[&str] = &[
    "offline_access",
    "read:me",
    "read:confluence-content.all",
    "read:confluence-content.summary",
    "write:confluence-content",
    "search:confluence",
];

#[tokio::test]
async fn atlassian_python_api_writes_pages_runs_cql_and_sets_issue_status_through_the_proxy() {
    let Some(python) = python_with("atlassian") else {
        return;
    };
    let app = TestApp::spawn_with(TestOptions::default(), |c| {
        c.profiles.insert(
            "confluence-write".into(),
            Profile {
                scopes: SCOPES.iter().map(|s| s.to_string()).collect(),
            },
        );
    })
    .await;
    let (_, key) = app.create_app("pyatlassian").await;
    let id = connect_with(&app, &key, "team:wiki", "confluence-write", 0).await;
    let site = sim_site(&app, 0);
    let space = site["spaces"][0].as_str().unwrap().to_string();
    // A Jira connection for the same app, and a fresh issue (To Do) to walk.
    let jira_id = connect_with(&app, &key, "team:jira", "jira", 0).await;
    let project = site["projects"][0]["key"].as_str().unwrap();
    let created = proxy_json(
        &app,
        Method::POST,
        &key,
        &jira_id,
        "rest/api/3/issue",
        &json!({ "fields": {
            "project": { "key": project },
            "summary": "Closed by atlassian-python-api",
            "issuetype": { "name": "Task" },
        }}),
    )
    .await;
    assert_eq!(created.status(), 201);
    let issue_key = created.json::<Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();

    let mut cmd = std::process::Command::new(python);
    cmd.arg(python_script("pyatlassian_check.py"))
        .env(
            "ATLASGATE_CONFLUENCE_URL",
            app.url(&format!("/v1/connections/{id}/proxy/confluence/wiki")),
        )
        .env(
            "ATLASGATE_JIRA_URL",
            app.url(&format!("/v1/connections/{jira_id}/proxy/jira")),
        )
        .env("ATLASGATE_APP_KEY", &key)
        .env("SPACE_KEY", &space)
        .env("ISSUE_KEY", &issue_key);
    run_script(cmd).await;
    // The library really went through atlasgate to Confluence's v1 API…
    assert!(sim_count(&app, "POST", "/wiki/rest/api/content") >= 1);
    assert!(sim_count(&app, "PUT", "/wiki/rest/api/content/{id}") >= 1);
    assert!(sim_count(&app, "GET", "/wiki/rest/api/search") >= 3);
    // …and to Jira's transitions: atlassim holds the issue as Done, resolved.
    assert!(sim_count(&app, "GET", "/rest/api/2/issue/{issueIdOrKey}/transitions") >= 2);
    assert!(sim_count(&app, "POST", "/rest/api/2/issue/{issueIdOrKey}/transitions") >= 2);
    let resp = proxy_get(
        &app,
        &key,
        &jira_id,
        &format!("rest/api/3/issue/{issue_key}?fields=status,resolution"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let issue: Value = resp.json().await.unwrap();
    assert_eq!(issue["fields"]["status"]["name"], "Done", "{issue}");
    assert_eq!(issue["fields"]["resolution"]["name"], "Done", "{issue}");
}
