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

    let calls: Vec<(reqwest::Method, String, Option<Value>)> = vec![
        (reqwest::Method::GET, "/v1/connections/{}".to_string(), None),
        (
            reqwest::Method::GET,
            "/v1/connections/{}/token".to_string(),
            None,
        ),
        (
            reqwest::Method::POST,
            "/v1/connections/{}/refresh".to_string(),
            None,
        ),
        (
            reqwest::Method::PUT,
            "/v1/connections/{}/site".to_string(),
            Some(json!({ "cloud_id": sites[1] })),
        ),
        (
            reqwest::Method::DELETE,
            "/v1/connections/{}".to_string(),
            None,
        ),
    ];
    for (method, template, body) in &calls {
        let mut answers = Vec::new();
        for target in [&id, &missing.to_string()] {
            let mut req = app
                .client
                .request(method.clone(), app.url(&template.replace("{}", target)))
                .bearer_auth(&key_b);
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = req.send().await.unwrap();
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

#[tokio::test]
async fn another_apps_connection_answers_404_on_every_route() {
    for backend in backends() {
        isolation(backend).await;
    }
}
