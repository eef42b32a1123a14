//! Outside check: `jira.js` from the npm registry (version pinned in
//! `tests/node/package.json`), unchanged, run with Node through atlasgate's
//! proxy: search with `nextPageToken`, `createIssue`, `getTransitions` +
//! `doTransition` to Done, `addComment` (`tests/node/jirajs_check.mjs`).
//! `.ci/run` installs it with `npm ci --prefix crates/atlasgate/tests/node`.

use crate::helpers::TestApp;
use crate::proxy::sim_count;

const NODE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node");

/// `node`, with jira.js installed; `None` (skip) off CI, panic in CI.
fn node_with_jirajs() -> Option<&'static str> {
    let installed = std::path::Path::new(NODE_DIR)
        .join("node_modules/jira.js/package.json")
        .exists();
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if installed && node {
        return Some("node");
    }
    if std::env::var_os("CI").is_some() {
        panic!("node or jira.js is missing; CI runs `npm ci --prefix crates/atlasgate/tests/node`");
    }
    eprintln!("skipping the jira.js check: node or crates/atlasgate/tests/node/node_modules is missing (npm ci --prefix crates/atlasgate/tests/node)");
    None
}

#[tokio::test]
async fn jira_js_searches_creates_transitions_to_done_and_comments_through_the_proxy() {
    let Some(node) = node_with_jirajs() else {
        return;
    };
    let app = TestApp::spawn().await;
    let script = format!("{NODE_DIR}/jirajs_check.mjs");
    let stdout = crate::pyjira_workflow::run_on_connected_site(&app, node, &script).await;
    assert!(stdout.contains("is Done"), "{stdout}");
    assert!(sim_count(&app, "GET", "/rest/api/3/search/jql") >= 2);
    assert!(sim_count(&app, "GET", "/issue/{issueIdOrKey}/transitions") >= 2);
    assert!(sim_count(&app, "POST", "/issue/{issueIdOrKey}/transitions") >= 2);
    assert!(sim_count(&app, "POST", "/rest/api/3/issue/{issueIdOrKey}/comment") >= 1);
}
