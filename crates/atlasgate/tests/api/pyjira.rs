//! Outside check: the pycontribs `jira` library (PyPI `jira`), unchanged,
//! with atlasgate's proxy URL as its server and the app key as its bearer
//! token (`tests/python/pyjira_check.py`).

use crate::helpers::TestApp;
use crate::outside::{python_script, python_with, run_script};
use crate::proxy::{connected, sim_site};

#[tokio::test]
async fn pycontribs_jira_works_through_the_proxy_unchanged() {
    let Some(python) = python_with("jira") else {
        return;
    };
    let app = TestApp::spawn().await;
    let (key, id) = connected(&app, "jira", 0).await;
    let site = sim_site(&app, 0);
    let projects: Vec<&str> = site["projects"].as_array().unwrap()[..2]
        .iter()
        .map(|p| p["key"].as_str().unwrap())
        .collect();
    let mut cmd = std::process::Command::new(python);
    cmd.arg(python_script("pyjira_check.py"))
        .env(
            "ATLASGATE_PROXY_URL",
            app.url(&format!("/v1/connections/{id}/proxy/jira")),
        )
        .env("ATLASGATE_APP_KEY", &key)
        .env("PROJECTS", projects.join(","))
        .env(
            "SP_FIELD",
            site["story_points_field"]["id"].as_str().unwrap(),
        );
    run_script(cmd).await;
    // The library really went through atlasgate to Atlassian's search/jql.
    assert!(
        crate::proxy::sim_count(&app, "GET", "/search/jql")
            + crate::proxy::sim_count(&app, "POST", "/search/jql")
            >= 3
    );
}
