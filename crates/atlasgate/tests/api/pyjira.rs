//! Outside check: the pycontribs `jira` library (PyPI `jira`), unchanged,
//! with atlasgate's proxy URL as its server and the app key as its bearer
//! token (`tests/python/pyjira_check.py`).

use crate::helpers::TestApp;
use crate::proxy::{connected, sim_site};

/// `python3` with `jira` importable; `None` (skip) off CI, panic in CI.
pub(crate) fn python_with_jira() -> Option<&'static str> {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import jira"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        return Some("python3");
    }
    if std::env::var_os("CI").is_some() {
        panic!("python3 cannot import `jira`; CI installs crates/atlasgate/tests/python/requirements.txt");
    }
    eprintln!("skipping the pycontribs jira check: `python3 -c \"import jira\"` failed (pip install -r crates/atlasgate/tests/python/requirements.txt)");
    None
}

#[tokio::test]
async fn pycontribs_jira_works_through_the_proxy_unchanged() {
    let Some(python) = python_with_jira() else {
        return;
    };
    let app = TestApp::spawn().await;
    let (key, id) = connected(&app, "jira", 0).await;
    let site = sim_site(&app, 0);
    let projects: Vec<&str> = site["projects"].as_array().unwrap()[..2]
        .iter()
        .map(|p| p["key"].as_str().unwrap())
        .collect();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/pyjira_check.py");
    let mut cmd = std::process::Command::new(python);
    cmd.arg(script)
        .env(
            "ATLASGATE_PROXY_URL",
            app.url(&format!("/v1/connections/{id}/proxy/jira")),
        )
        .env("ATLASGATE_APP_KEY", &key)
        .env("PROJECTS", projects.join(","))
        .env(
            "SP_FIELD",
            site["story_points_field"]["id"].as_str().unwrap(),
        )
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy");
    // The script calls back into this process's servers: run it off the runtime.
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.lines().last() == Some("ok"), "{stdout}");
    // The library really went through atlasgate to Atlassian's search/jql.
    assert!(
        crate::proxy::sim_count(&app, "GET", "/search/jql")
            + crate::proxy::sim_count(&app, "POST", "/search/jql")
            >= 3
    );
}
