//! Outside check: pycontribs `jira`, unchanged, drives atlassim's write side
//! through atlasgate's proxy — `transitions`, `transition_issue`,
//! `assign_issue` (via `/rest/api/latest`), `search_users`, comment update
//! and delete, `issue(…, expand="changelog")`
//! (`tests/python/pyjira_workflow_check.py`).

use crate::helpers::TestApp;
use crate::outside::{python_script, python_with, run_on_connected_site};
use crate::proxy::sim_count;

#[tokio::test]
async fn pycontribs_jira_transitions_assigns_and_edits_comments_through_the_proxy() {
    let Some(python) = python_with("jira") else {
        return;
    };
    let app = TestApp::spawn().await;
    let script = python_script("pyjira_workflow_check.py");
    run_on_connected_site(&app, python, &script).await;
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
