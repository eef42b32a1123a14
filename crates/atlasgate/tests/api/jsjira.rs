//! Outside check: `jira.js` from the npm registry (version pinned in
//! `tests/node/package.json`), unchanged, run with Node through atlasgate's
//! proxy: search with `nextPageToken`, `createIssue`, `getTransitions` +
//! `doTransition` to Done, `addComment` (`tests/node/jirajs_check.mjs`).
//! `.ci/run` installs it with `npm ci --prefix crates/atlasgate/tests/node`.

use crate::helpers::TestApp;
use crate::outside::{node_with, run_on_connected_site, NODE_DIR};
use crate::proxy::sim_count;

#[tokio::test]
async fn jira_js_searches_creates_transitions_to_done_and_comments_through_the_proxy() {
    let Some(node) = node_with("jira.js") else {
        return;
    };
    let app = TestApp::spawn().await;
    let script = format!("{NODE_DIR}/jirajs_check.mjs");
    let stdout = run_on_connected_site(&app, node, &script).await;
    assert!(stdout.contains("is Done"), "{stdout}");
    assert!(sim_count(&app, "GET", "/rest/api/3/search/jql") >= 2);
    assert!(sim_count(&app, "GET", "/issue/{issueIdOrKey}/transitions") >= 2);
    assert!(sim_count(&app, "POST", "/issue/{issueIdOrKey}/transitions") >= 2);
    assert!(sim_count(&app, "POST", "/rest/api/3/issue/{issueIdOrKey}/comment") >= 1);
}
