//! Caches that hold Jira data are keyed by connection (docs/design.md §12):
//! no app's answer depends on another app's token. Two apps on the same
//! site whose accounts see different projects.

use serde_json::{json, Value};

use crate::connect::{connect_as, sim_sites};
use crate::helpers::TestApp;

async fn issue_keys(app: &TestApp, key: &str, id: &str, text: &str) -> Value {
    let resp = app
        .post_json(
            &format!("/v1/connections/{id}/jira/issue-keys"),
            Some(key),
            &json!({ "texts": [text] }),
        )
        .await;
    assert_eq!(resp.status(), 200);
    resp.json::<Value>().await.unwrap()["keys"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_apps_project_list_never_answers_for_another() {
    let app = TestApp::spawn().await;
    let snap = app.sim.snapshot();
    let site = sim_sites(&app)[0].clone();
    let accounts: Vec<String> = snap["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["account_id"].as_str().unwrap().to_string())
        .collect();
    let projects: Vec<String> = snap["sites"][0]["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap().to_string())
        .collect();
    assert!(accounts.len() >= 2 && projects.len() >= 2);
    let (open, secret) = (&projects[0], &projects[1]);
    // The second account may not browse the second project.
    assert!(app
        .sim
        .hide_project(&atlassim::control::HideProjectRequest {
            cloud_id: site.clone(),
            project: secret.clone(),
            account_id: accounts[1].clone(),
        }));
    let sites = std::slice::from_ref(&site);
    let (_, key_a) = app.create_app("sees-all").await;
    let conn_a = connect_as(&app, &key_a, "a:1", sites, None, Some(accounts[0].clone())).await;
    let (_, key_b) = app.create_app("sees-one").await;
    let conn_b = connect_as(&app, &key_b, "b:1", sites, None, Some(accounts[1].clone())).await;
    let text = format!("{open}-1 and {secret}-2");

    // A asks first and fills whatever cache there is with its view…
    assert_eq!(
        issue_keys(&app, &key_a, &conn_a, &text).await,
        json!([format!("{open}-1"), format!("{secret}-2")])
    );
    // …and B's answer still follows B's token.
    assert_eq!(
        issue_keys(&app, &key_b, &conn_b, &text).await,
        json!([format!("{open}-1")])
    );
    // The other way round holds too: B's narrower view never narrows A's.
    assert_eq!(
        issue_keys(&app, &key_a, &conn_a, &text).await,
        json!([format!("{open}-1"), format!("{secret}-2")])
    );
}
