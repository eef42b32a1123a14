//! Apps never see or touch each other's connections: 404, exactly like a
//! missing object.

use serde_json::{json, Value};

use crate::connect::{connect, sim_sites};
use crate::helpers::{assert_problem, backends, TestApp};

async fn isolation(backend: atlasgate::store::Backend) {
    let app = TestApp::spawn_on(backend).await;
    let (_, key_a) = app.create_app("alpha").await;
    let (_, key_b) = app.create_app("beta").await;
    let sites = sim_sites(&app);
    let id = connect(&app, &key_a, "shared-owner", &sites, Some(&sites[0])).await;
    let missing = "con_000000000000ffffffffffffffff";

    // App A also has a sync, so `{sync}` names a real object of A's.
    let sync = app
        .post_json(
            &format!("/v1/connections/{id}/syncs"),
            Some(&key_a),
            &json!({ "jql": "project = ACME" }),
        )
        .await;
    assert_eq!(sync.status(), 201);
    let sync_id = sync.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Every operation on a path with `{id}`, as the served document lists
    // them: a route added later is covered without anyone remembering.
    let doc: Value = app.get("/openapi.json", None).await.json().await.unwrap();
    let mut calls = Vec::new();
    for (template, item) in doc["paths"].as_object().unwrap() {
        if !template.contains("{id}") {
            continue;
        }
        for method in ["get", "post", "put", "patch", "delete"] {
            if item[method].is_object() {
                calls.push((
                    method,
                    template.clone(),
                    plausible_body(template, method, &sites),
                ));
            }
        }
    }
    // Positive control: the walk found the connection routes of every area.
    for area in [
        "/token",
        "/site",
        "/proxy/jira/",
        "/jira/search",
        "/syncs/{sync}",
        "/issues",
        "/confluence/",
    ] {
        assert!(
            calls.iter().any(|(_, t, _)| t.contains(area)),
            "no route with {area} in /openapi.json"
        );
    }
    assert!(calls.len() >= 25, "only {} operations found", calls.len());
    for (method, template, body) in &calls {
        let mut answers = Vec::new();
        for target in [id.as_str(), missing] {
            let path = fill(template, target, &sync_id);
            let mut req = app
                .client
                .request(
                    method.to_uppercase().parse::<reqwest::Method>().unwrap(),
                    app.url(&path),
                )
                .bearer_auth(&key_b);
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 404, "{method} {path} with another app's key");
            let mut problem = assert_problem(resp, 404).await;
            problem.as_object_mut().unwrap().remove("request_id");
            answers.push(problem);
        }
        assert_eq!(
            answers[0], answers[1],
            "{method} {template}: another app's object must look missing"
        );
    }
    // Listing and filtering by the same owner shows nothing of app A.
    let list = app
        .get_json("/v1/connections?owner=shared-owner", &key_b)
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
    // App A's connection is untouched.
    let conn = app.get_json(&format!("/v1/connections/{id}"), &key_a).await;
    assert_eq!(conn["status"], "active");
    assert_eq!(conn["site"]["cloud_id"], sites[0].as_str());
    assert_eq!(app.sim.stats().tokens.refreshes, 0);
}

/// The path with `{id}` = `target` and the other parameters plausible.
fn fill(template: &str, target: &str, sync_id: &str) -> String {
    template
        .replace("{id}", target)
        .replace("{sync}", sync_id)
        .replace("{board}", "1")
        .replace("{sprint}", "1")
        .replace("{key}", "ACME-1")
        .replace("{path}", "rest/api/3/myself")
}

/// A body the route would accept from its own app, so a 404 is not a
/// validation answer in disguise.
fn plausible_body(template: &str, method: &str, sites: &[String]) -> Option<Value> {
    let body = match (method, template.rsplit('/').next().unwrap_or("")) {
        ("put", "site") => json!({ "cloud_id": sites[1] }),
        ("post", "syncs") => json!({ "jql": "project = ACME" }),
        ("post", "estimate") => json!({ "value": 3 }),
        ("post", "comments") => json!({ "text": "hello" }),
        ("post", "issue-keys") => json!({ "texts": ["ACME-1"] }),
        ("post" | "put" | "patch", "{path}") => json!({}),
        _ => return None,
    };
    Some(body)
}

#[tokio::test]
async fn another_apps_connection_answers_404_on_every_route() {
    for backend in backends() {
        isolation(backend).await;
    }
}
