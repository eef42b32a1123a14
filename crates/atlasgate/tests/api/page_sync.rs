//! Confluence sync (docs/design.md §16) on both backends: a sync with
//! `confluence_cql` mirrors a space's pages exactly (body as Markdown),
//! picks up an edit incrementally (only the edited page's body is read
//! again), and a page deleted in Confluence disappears from `GET …/pages`.

use std::collections::BTreeMap;
use std::time::Duration;

use atlasgate::jobs::Tuning;
use atlasgate::store::Backend;
use serde_json::{json, Value};

use crate::events::fast_jobs;
use crate::helpers::{assert_problem, backends, TestApp, TestOptions};
use crate::proxy::{connected, sim_count, sim_site};

/// `(title, version, space key, body as Markdown, updated ms)` by page id.
type Pages = BTreeMap<String, (String, i64, String, String, i64)>;

struct Sim {
    base: String,
    cloud: String,
    token: String,
    client: reqwest::Client,
}

impl Sim {
    fn of(app: &TestApp) -> Sim {
        Sim {
            base: format!(
                "{}/ex/confluence/{}/wiki/api/v2",
                app.sim.base_url(),
                sim_site(app, 0)["cloud_id"].as_str().unwrap()
            ),
            cloud: sim_site(app, 0)["cloud_id"].as_str().unwrap().to_string(),
            token: app
                .sim
                .mint_token(atlassim::MintTokenRequest::default())
                .access_token,
            client: reqwest::Client::new(),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().await.unwrap_or(Value::Null)
    }

    /// A space's current pages as atlassim serves them, bodies rendered with
    /// atlasgate's converter.
    async fn pages(&self, space_id: &str, space_key: &str) -> Pages {
        let mut out = Pages::new();
        let mut path = format!("/spaces/{space_id}/pages?limit=250&body-format=atlas_doc_format");
        loop {
            let v = self.call(reqwest::Method::GET, &path, None).await;
            for p in v["results"].as_array().unwrap() {
                let doc: Value =
                    serde_json::from_str(p["body"]["atlas_doc_format"]["value"].as_str().unwrap())
                        .unwrap();
                out.insert(
                    p["id"].as_str().unwrap().to_string(),
                    (
                        p["title"].as_str().unwrap().to_string(),
                        p["version"]["number"].as_i64().unwrap(),
                        space_key.to_string(),
                        atlasgate_core::adf::adf_to_markdown(&doc)
                            .trim_end_matches('\n')
                            .to_string(),
                        chrono::DateTime::parse_from_rfc3339(
                            p["version"]["createdAt"].as_str().unwrap(),
                        )
                        .unwrap()
                        .timestamp_millis(),
                    ),
                );
            }
            match v["_links"]["next"].as_str() {
                Some(n) => path = n.split_once("/api/v2").unwrap().1.to_string(),
                None => return out,
            }
        }
    }
}

/// What `GET …/pages` answers, every page followed.
async fn local(app: &TestApp, key: &str, id: &str, extra: &str) -> (Pages, Vec<Value>) {
    let mut out = Pages::new();
    let mut raw = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/connections/{id}/pages?limit=7{extra}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let v = app.get_ok(&path, key).await;
        for p in v["items"].as_array().unwrap() {
            out.insert(
                p["id"].as_str().unwrap().to_string(),
                (
                    p["title"].as_str().unwrap().to_string(),
                    p["version"].as_i64().unwrap(),
                    p["space_key"].as_str().unwrap().to_string(),
                    p["body_markdown"].as_str().unwrap().to_string(),
                    chrono::DateTime::parse_from_rfc3339(p["updated"].as_str().unwrap())
                        .unwrap()
                        .timestamp_millis(),
                ),
            );
            raw.push(p.clone());
        }
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return (out, raw),
        }
    }
}

async fn wait_passes(app: &TestApp, key: &str, id: &str, sync: &str, after: i64) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let v = app
            .get_ok(&format!("/v1/connections/{id}/syncs/{sync}"), key)
            .await;
        if v["state"] == "idle" && v["passes"].as_i64().unwrap() > after {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no pass finished: {v:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn mirrors_a_space_then_an_edit_then_a_deletion(backend: Backend) {
    let app = TestApp::spawn_with(
        TestOptions {
            backend,
            sim: atlassim::SimConfig {
                sites: 1,
                ..Default::default()
            },
            ..Default::default()
        },
        |_| {},
    )
    .await;
    fast_jobs(&app);
    let t = &app.state.jobs.tuning;
    let (key, id) = connected(&app, "atlassian", 0).await;
    let sim = Sim::of(&app);
    let spaces = app
        .get_ok(&format!("/v1/connections/{id}/confluence/spaces"), &key)
        .await;
    let space = &spaces["items"][0];
    let (space_id, space_key) = (
        space["id"].as_str().unwrap().to_string(),
        space["key"].as_str().unwrap().to_string(),
    );
    assert!(
        spaces["items"].as_array().unwrap().len() > 1,
        "other spaces stay out"
    );

    // Bad CQL: Confluence's word for it, and no sync.
    let resp = app
        .post_json(
            &format!("/v1/connections/{id}/syncs"),
            Some(&key),
            &json!({"confluence_cql": "space = = ("}),
        )
        .await;
    let problem = assert_problem(resp, 422).await;
    assert_eq!(problem["errors"][0]["field"], "confluence_cql");
    for body in [
        json!({"confluence_cql": "space = X", "jql": "project = X"}),
        json!({"confluence_cql": "space = X", "webhooks": true}),
        json!({}),
    ] {
        let resp = app
            .post_json(&format!("/v1/connections/{id}/syncs"), Some(&key), &body)
            .await;
        assert_problem(resp, 422).await;
    }
    let none = app
        .get_ok(&format!("/v1/connections/{id}/syncs"), &key)
        .await;
    assert_eq!(none["items"], json!([]));

    // The full pass mirrors the space exactly.
    let resp = app
        .post_json(
            &format!("/v1/connections/{id}/syncs"),
            Some(&key),
            &json!({"confluence_cql": format!("space = {space_key}"), "interval_s": 3600}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let created: Value = resp.json().await.unwrap();
    assert_eq!(created["confluence_cql"], format!("space = {space_key}"));
    assert_eq!(created["jql"], "");
    let sync = created["id"].as_str().unwrap().to_string();
    let done = wait_passes(&app, &key, &id, &sync, 0).await;
    let truth = sim.pages(&space_id, &space_key).await;
    assert!(truth.len() > 3, "the seeded space has pages");
    let (mirrored, raw) = local(&app, &key, &id, "").await;
    assert_eq!(mirrored, truth);
    assert_eq!(done["pages_synced"], truth.len() as i64, "{done}");
    assert!(done["last_error"].is_null(), "{done}");
    assert!(raw[0]["url"]
        .as_str()
        .unwrap()
        .contains(&format!("/wiki/spaces/{space_key}/pages/")));
    assert!(raw.iter().all(|p| p["deleted"] == false));

    // An edit in Confluence arrives with the next (incremental) pass, and
    // only that page's body is read again.
    Tuning::set(&t.sync_reconcile_s, 3600);
    let (edited, (title, version, ..)) = truth
        .iter()
        .next()
        .map(|(k, v)| (k.clone(), v.clone()))
        .unwrap();
    let doc = json!({"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [
            {"type": "text", "text": "Edited "},
            {"type": "text", "text": "in Confluence", "marks": [{"type": "strong"}]}
        ]}
    ]});
    sim.call(
        reqwest::Method::PUT,
        &format!("/pages/{edited}"),
        Some(json!({"id": edited, "status": "current", "title": title, "version": {"number": version + 1},
                    "body": {"representation": "atlas_doc_format", "value": doc.to_string()}})),
    )
    .await;
    let bodies_before = sim_count(&app, "GET", "/wiki/api/v2/pages");
    let passes = done["passes"].as_i64().unwrap();
    let resp = app
        .post_json(
            &format!("/v1/connections/{id}/syncs/{sync}/run"),
            Some(&key),
            &json!({}),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let done = wait_passes(&app, &key, &id, &sync, passes).await;
    assert_eq!(
        sim_count(&app, "GET", "/wiki/api/v2/pages") - bodies_before,
        1,
        "one body read for one edited page"
    );
    let truth = sim.pages(&space_id, &space_key).await;
    let (mirrored, _) = local(&app, &key, &id, "").await;
    assert_eq!(mirrored, truth);
    assert_eq!(mirrored[&edited].1, version + 1);
    assert_eq!(mirrored[&edited].3, "Edited **in Confluence**");
    // `updated_since` finds just the edit.
    let since = chrono::DateTime::from_timestamp_millis(mirrored[&edited].4)
        .unwrap()
        .to_rfc3339();
    let (recent, _) = local(
        &app,
        &key,
        &id,
        &format!("&updated_since={}", urlencode(&since)),
    )
    .await;
    assert_eq!(recent.keys().collect::<Vec<_>>(), vec![&edited]);

    // A page deleted in Confluence disappears at the next reconciling pass.
    Tuning::set(&t.sync_reconcile_s, 0);
    let gone = truth.keys().last().unwrap().clone();
    let resp = sim
        .client
        .delete(format!("{}/pages/{gone}", sim.base))
        .bearer_auth(&sim.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let passes = done["passes"].as_i64().unwrap();
    app.post_json(
        &format!("/v1/connections/{id}/syncs/{sync}/run"),
        Some(&key),
        &json!({}),
    )
    .await;
    let done = wait_passes(&app, &key, &id, &sync, passes).await;
    let truth = sim.pages(&space_id, &space_key).await;
    assert!(!truth.contains_key(&gone));
    let (mirrored, _) = local(&app, &key, &id, "").await;
    assert_eq!(mirrored, truth);
    assert_eq!(done["pages_synced"], truth.len() as i64);
    let (_, with_deleted) = local(&app, &key, &id, "&include_deleted=true").await;
    let tomb = with_deleted
        .iter()
        .find(|p| p["id"] == gone.as_str())
        .unwrap();
    assert_eq!(tomb["deleted"], true);
    assert_eq!(sim.cloud, sim_site(&app, 0)["cloud_id"].as_str().unwrap());

    // The events say what the passes did.
    let events = app.get_ok("/v1/events", &key).await;
    let completed: Vec<&Value> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "sync.completed")
        .collect();
    assert_eq!(completed.len(), 3, "{events:#}");
}

#[tokio::test]
async fn confluence_sync_mirrors_edits_and_deletions_on_every_backend() {
    for b in backends() {
        mirrors_a_space_then_an_edit_then_a_deletion(b).await;
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
