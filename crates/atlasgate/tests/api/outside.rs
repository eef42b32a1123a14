//! Shared by the outside checks (`pyjira`, `pyjira_workflow`, `pyatlassian`,
//! `jsjira`): real client libraries, unchanged, run as child processes
//! against atlasgate's proxy. Finding the interpreter and running the script
//! live here so every check skips, fails and reports the same way.

use std::process::Command;

use crate::helpers::TestApp;
use crate::proxy::{connected, sim_site};

pub const NODE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node");

/// The path of a script under `tests/python/`.
pub fn python_script(name: &str) -> String {
    format!("{}/tests/python/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// `python3` with `module` importable; `None` (skip) off CI, panic in CI,
/// where `.ci/run` installs `tests/python/requirements.txt`.
pub fn python_with(module: &str) -> Option<&'static str> {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        return Some("python3");
    }
    missing(
        &format!("python3 cannot import `{module}`"),
        "pip install -r crates/atlasgate/tests/python/requirements.txt",
    )
}

/// `node` with the npm `package` installed under `tests/node`; `None` (skip)
/// off CI, panic in CI, where `.ci/run` runs `npm ci` there.
pub fn node_with(package: &str) -> Option<&'static str> {
    let installed = std::path::Path::new(NODE_DIR)
        .join("node_modules")
        .join(package)
        .join("package.json")
        .exists();
    let node = Command::new("node")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if installed && node {
        return Some("node");
    }
    missing(
        &format!("node or the npm package `{package}` is missing"),
        "npm ci --prefix crates/atlasgate/tests/node",
    )
}

/// A missing outside dependency fails CI (a skipped check there would hide a
/// regression) and is a visible skip elsewhere.
fn missing(what: &str, fix: &str) -> Option<&'static str> {
    if std::env::var_os("CI").is_some() {
        panic!("{what}; CI must install it ({fix})");
    }
    eprintln!("skipping an outside check: {what} ({fix})");
    None
}

/// Run `cmd` to completion and return its stdout; it must exit 0 with `ok`
/// as its last line (the panic shows stdout and stderr). A proxy in the
/// environment is removed so the script reaches atlasgate on loopback.
pub async fn run_script(mut cmd: Command) -> String {
    for var in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
        cmd.env_remove(var);
    }
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

/// Connect site 0 and run an outside-check script against it with
/// `ATLASGATE_PROXY_URL`, `ATLASGATE_APP_KEY` and `PROJECT` (its first
/// project). Returns stdout.
pub async fn run_on_connected_site(app: &TestApp, program: &str, script: &str) -> String {
    let (key, id) = connected(app, "jira", 0).await;
    let project = sim_site(app, 0)["projects"][0]["key"]
        .as_str()
        .unwrap()
        .to_string();
    let mut cmd = Command::new(program);
    cmd.arg(script)
        .env(
            "ATLASGATE_PROXY_URL",
            app.url(&format!("/v1/connections/{id}/proxy/jira")),
        )
        .env("ATLASGATE_APP_KEY", &key)
        .env("PROJECT", project);
    run_script(cmd).await
}
