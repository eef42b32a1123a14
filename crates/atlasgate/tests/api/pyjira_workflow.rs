//! Outside check: pycontribs `jira`, unchanged, drives atlassim's write side
//! through atlasgate's proxy — `transitions`, `transition_issue`,
//! `assign_issue` (via `/rest/api/latest`), `search_users`, comment update
//! and delete, `issue(…, expand="changelog")`
//! (`tests/python/pyjira_workflow_check.py`).

use crate::helpers::TestApp;
use crate::proxy::{connected, sim_count, sim_site};

/// Connect site 0 and run an outside-check script against it with
/// `ATLASGATE_PROXY_URL`, `ATLASGATE_APP_KEY` and `PROJECT` (its first
/// project); the script's stdout must end in `ok`. Returns stdout.
pub async fn run_on_connected_site(app: &TestApp, program: &str, script: &str) -> String {
    let (key, id) = connected(app, "jira", 0).await;
    let project = sim_site(app, 0)["projects"][0]["key"]
        .as_str()
        .unwrap()
        .to_string();
    let mut cmd = std::process::Command::new(program);
    cmd.arg(script)
        .env(
            "ATLASGATE_PROXY_URL",
            app.url(&format!("/v1/connections/{id}/proxy/jira")),
        )
        .env("ATLASGATE_APP_KEY", &key)
        .env("PROJECT", project)
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy");
    // The script calls back into this process's servers: run it off the runtime.
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(stdout.lines().last(), Some("ok"), "{stdout}");
    stdout
}

#[tokio::test]
async fn pycontribs_jira_transitions_assigns_and_edits_comments_through_the_proxy() {
    let Some(python) = crate::pyjira::python_with_jira() else {
        return;
    };
    let app = TestApp::spawn().await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/pyjira_workflow_check.py"
    );
    run_on_connected_site(&app, python, script).await;
    // The library really reached Atlassian's transition, assignee and comment routes.
    assert!(sim_count(&app, "POST", "/issue/{issueIdOrKey}/transitions") >= 2);
    assert!(
        sim_count(
            &app,
            "PUT",
            "/rest/api/latest/issue/{issueIdOrKey}/assignee"
        ) >= 2
    );
    assert!(sim_count(&app, "PUT", "/issue/{issueIdOrKey}/comment/{id}") >= 1);
    assert!(sim_count(&app, "DELETE", "/issue/{issueIdOrKey}/comment/{id}") >= 1);
}
