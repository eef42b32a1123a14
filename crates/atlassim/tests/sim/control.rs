//! The control plane: state, consent, clock, faults, grants, stats, tokens, redirect URIs.

use std::time::{Duration, Instant};

use atlassim::{Fault, MintTokenRequest};
use serde_json::{json, Value};

use crate::common::*;

fn fault(path: &str) -> Fault {
    serde_json::from_value(json!({ "path": path })).unwrap()
}

#[tokio::test]
async fn state_has_the_documented_shape() {
    let sim = spawn_default().await;
    let state = sim_get(&sim, "/__sim/state").await;
    assert!(state["now"]
        .as_str()
        .unwrap()
        .parse::<chrono::DateTime<chrono::Utc>>()
        .is_ok());
    assert_eq!(state["clients"][0]["client_id"], CLIENT_ID);
    assert_eq!(state["clients"][0]["redirect_uris"][0], REDIRECT_URI);
    assert!(state["clients"][0]["scopes"]
        .as_array()
        .unwrap()
        .contains(&json!("offline_access")));
    assert!(
        state["clients"][0].get("client_secret").is_none(),
        "no secrets in the snapshot"
    );
    assert_eq!(state["users"][0]["email"], "mia@example.com");
    let sites = state["sites"].as_array().unwrap();
    assert_eq!(sites.len(), 2);
    assert_eq!(sites[0]["products"], json!(["jira", "confluence"]));
    assert_eq!(sites[1]["products"], json!(["jira"]));
    assert_eq!(
        sites[0]["story_points_field"],
        json!({"id": "customfield_10016", "name": "Story Points"})
    );
    assert_eq!(
        sites[1]["story_points_field"],
        json!({"id": "customfield_10028", "name": "Story point estimate"})
    );
    let project = &sites[0]["projects"][0];
    assert_eq!(project["key"], "ACME");
    assert_eq!(project["id"], 10000);
    assert_eq!(project["issue_count"], 60);
}

#[tokio::test]
async fn the_consent_route_presets_the_next_decision() {
    let sim = spawn_default().await;
    let (status, _) = sim_post(&sim, "/__sim/consent", json!({"deny": true})).await;
    assert_eq!(status, 200);
    let resp = authorize(&sim, &authorize_params()).await;
    assert_eq!(
        param(&location_query(&resp), "error").as_deref(),
        Some("access_denied")
    );

    let noah = sim.snapshot()["users"][1]["account_id"]
        .as_str()
        .unwrap()
        .to_string();
    sim_post(&sim, "/__sim/consent", json!({"account_id": noah})).await;
    let resp = authorize(&sim, &authorize_params()).await;
    let code = param(&location_query(&resp), "code").unwrap();
    let (_, tokens) = token_json(&sim, code_body(&code)).await;
    let (_, me) = get_json(&sim, "/me", tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(me["account_id"], noah.as_str());
}

#[tokio::test]
async fn the_clock_moves_forward_only() {
    let sim = spawn_default().await;
    let before = sim.now();
    let (status, body) = sim_post(&sim, "/__sim/clock/advance", json!({"seconds": 86400})).await;
    assert_eq!(status, 200);
    let now: chrono::DateTime<chrono::Utc> = body["now"].as_str().unwrap().parse().unwrap();
    assert!(now - before >= chrono::Duration::seconds(86400));
    assert!(now - before < chrono::Duration::seconds(86400 + 60));
    let (_, body) = sim_post(&sim, "/__sim/clock/advance", json!({"seconds": -5000})).await;
    let later: chrono::DateTime<chrono::Utc> = body["now"].as_str().unwrap().parse().unwrap();
    assert!(later >= now);
}

#[tokio::test]
async fn revoking_grants_kills_every_token_of_the_user() {
    let sim = spawn_default().await;
    let tokens = login(&sim).await;
    let access = tokens["access_token"].as_str().unwrap();
    let other = sim.mint_token(MintTokenRequest {
        account_id: Some(
            sim.snapshot()["users"][1]["account_id"]
                .as_str()
                .unwrap()
                .into(),
        ),
        ..Default::default()
    });
    let (status, body) = sim_post(
        &sim,
        "/__sim/grants/revoke",
        json!({"account_id": first_account_id(&sim)}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["revoked_families"], 1);
    assert_eq!(get_status(&sim, "/me", access).await, 401);
    let (status, body) = refresh(&sim, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(
        get_status(&sim, "/me", &other.access_token).await,
        200,
        "other users keep theirs"
    );
    assert_eq!(
        sim_post(
            &sim,
            "/__sim/grants/revoke",
            json!({"account_id": "nobody"})
        )
        .await
        .0,
        404
    );

    // Sim::revoke_grants does the same.
    sim.revoke_grants(sim.snapshot()["users"][1]["account_id"].as_str().unwrap());
    assert_eq!(get_status(&sim, "/me", &other.access_token).await, 401);
}

#[tokio::test]
async fn minted_tokens_work_at_the_gateway_and_refresh() {
    let sim = spawn_default().await;
    let ids = cloud_ids(&sim);
    let (status, minted) = sim_post(&sim, "/__sim/tokens", json!({"cloud_ids": [ids[1]]})).await;
    assert_eq!(status, 200, "{minted}");
    assert_eq!(minted["expires_in"], 3600);
    let access = minted["access_token"].as_str().unwrap();
    let (_, resources) = get_json(&sim, "/oauth/token/accessible-resources", access).await;
    assert_eq!(resources.as_array().unwrap().len(), 1);
    assert_eq!(resources[0]["id"], ids[1].as_str());
    let (status, _) = refresh(&sim, minted["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200);

    let (status, _) = sim_post(
        &sim,
        "/__sim/tokens",
        json!({"scopes": ["admin:everything"]}),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = sim_post(&sim, "/__sim/tokens", json!({"client_id": "nope"})).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn redirect_uris_can_be_added_at_run_time() {
    let sim = spawn_default().await;
    let uri = "http://127.0.0.1:55555/cb";
    let mut params = authorize_params();
    params[3].1 = uri.into();
    let before = authorize(&sim, &params).await;
    assert_eq!(before.status(), 400);

    let (status, body) = sim_post(
        &sim,
        "/__sim/clients/redirect-uris",
        json!({"client_id": CLIENT_ID, "uri": uri}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["redirect_uris"].as_array().unwrap().len(), 3);
    sim.add_redirect_uri(CLIENT_ID, "http://127.0.0.1:55556/cb");
    let state = sim_get(&sim, "/__sim/state").await;
    assert_eq!(
        state["clients"][0]["redirect_uris"]
            .as_array()
            .unwrap()
            .len(),
        4
    );

    sim.set_next_consent(Default::default());
    let after = authorize(&sim, &params).await;
    assert_eq!(after.status(), 302);
    assert!(after.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with(uri));
    assert_eq!(
        sim_post(
            &sim,
            "/__sim/clients/redirect-uris",
            json!({"client_id": "nope", "uri": uri})
        )
        .await
        .0,
        404
    );
}

#[tokio::test]
async fn stats_count_requests_by_route_template_and_status() {
    let sim = spawn_default().await;
    let access = mint_access_token(&sim);
    for _ in 0..3 {
        get_json(&sim, "/me", &access).await;
    }
    get_json(&sim, "/me", "bad").await;
    http()
        .get(format!("{}/no/such/route", sim.base_url()))
        .send()
        .await
        .unwrap();
    let stats: atlassim::SimStats = serde_json::from_value(sim_get(&sim, "/__sim/stats").await)
        .expect("stats deserialize into SimStats");
    let me_ok = stats
        .requests
        .iter()
        .find(|r| r.route == "/me" && r.status == 200)
        .unwrap();
    assert_eq!((me_ok.method.as_str(), me_ok.count), ("GET", 3));
    let me_401 = stats
        .requests
        .iter()
        .find(|r| r.route == "/me" && r.status == 401)
        .unwrap();
    assert_eq!(me_401.count, 1);
    assert!(stats
        .requests
        .iter()
        .any(|r| r.route == "<unmatched>" && r.status == 404));
    assert_eq!(stats.webhooks, Default::default());
    // The typed handle and the route agree.
    assert_eq!(
        serde_json::to_value(sim.stats().tokens).unwrap(),
        sim_get(&sim, "/__sim/stats").await["tokens"]
    );
}

// ---- faults ----

#[tokio::test]
async fn a_status_fault_answers_instead_of_the_handler_and_is_used_up() {
    let sim = spawn_default().await;
    let access = mint_access_token(&sim);
    let (status, body) = sim_post(
        &sim,
        "/__sim/faults",
        json!({
            "method": "GET", "path": "/me", "count": 2, "status": 503,
            "body": {"message": "try later"}, "headers": {"retry-after": "7"}
        }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    for _ in 0..2 {
        let resp = http()
            .get(format!("{}/me", sim.api_url()))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 503);
        assert_eq!(resp.headers()["retry-after"], "7");
        assert_eq!(
            resp.json::<Value>().await.unwrap(),
            json!({"message": "try later"})
        );
    }
    assert_eq!(
        get_status(&sim, "/me", &access).await,
        200,
        "used up after count"
    );
    // The faulted answers were counted with their status.
    assert_eq!(
        sim.stats()
            .requests
            .iter()
            .find(|r| r.route == "/me" && r.status == 503)
            .unwrap()
            .count,
        2
    );
}

#[tokio::test]
async fn faults_match_method_and_globs() {
    let sim = spawn_default().await;
    let access = mint_access_token(&sim);
    // Wrong method: not hit.
    sim.add_fault(Fault {
        method: Some("POST".into()),
        status: Some(500),
        ..fault("/me")
    });
    assert_eq!(get_status(&sim, "/me", &access).await, 200);
    sim.clear_faults();

    // `*` is exactly one segment.
    sim.add_fault(Fault {
        status: Some(502),
        ..fault("/oauth/*")
    });
    assert_eq!(
        get_status(&sim, "/oauth/token/accessible-resources", &access).await,
        200
    );
    sim.clear_faults();
    sim.add_fault(Fault {
        status: Some(502),
        ..fault("/oauth/*/accessible-resources")
    });
    assert_eq!(
        get_status(&sim, "/oauth/token/accessible-resources", &access).await,
        502
    );

    // `**` is any number of segments, including none.
    sim.add_fault(Fault {
        status: Some(429),
        count: 3,
        ..fault("/ex/**")
    });
    assert_eq!(
        get_status(&sim, "/ex/jira/abc/rest/api/3/myself", &access).await,
        429
    );
    assert_eq!(get_status(&sim, "/ex", &access).await, 429);
    assert_eq!(
        get_status(&sim, "/ex/confluence/x/wiki/api/v2/pages", &access).await,
        429
    );
    assert_ne!(
        get_status(&sim, "/ex/jira/abc/rest/api/3/myself", &access).await,
        429
    );

    // Plain-text bodies; the control plane itself is never faulted.
    sim.add_fault(Fault {
        status: Some(500),
        body: Some(json!("boom")),
        count: 5,
        ..fault("/**")
    });
    let resp = http()
        .get(format!("{}/me", sim.api_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    assert_eq!(resp.text().await.unwrap(), "boom");
    assert_eq!(
        http()
            .get(format!("{}/__sim/state", sim.base_url()))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let (status, _) = sim_post(&sim, "/__sim/clock/advance", json!({"seconds": 1})).await;
    assert_eq!(status, 200);

    let resp = http()
        .delete(format!("{}/__sim/faults", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(get_status(&sim, "/me", &access).await, 200);
}

#[tokio::test]
async fn a_latency_fault_delays_then_continues_or_answers() {
    let sim = spawn_default().await;
    let access = mint_access_token(&sim);
    sim.add_fault(Fault {
        latency_ms: Some(300),
        ..fault("/me")
    });
    let started = Instant::now();
    assert_eq!(get_status(&sim, "/me", &access).await, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));

    sim.add_fault(Fault {
        latency_ms: Some(200),
        status: Some(504),
        ..fault("/me")
    });
    let started = Instant::now();
    assert_eq!(get_status(&sim, "/me", &access).await, 504);
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn a_dropped_refresh_is_handled_but_the_answer_is_lost() {
    let sim = spawn_default().await;
    let client = http();
    let tokens = login(&sim).await;
    let r0 = tokens["refresh_token"].as_str().unwrap();
    // Warm a pooled connection so the drop happens on a reused one too.
    assert_eq!(
        client
            .get(format!("{}/__sim/state", sim.base_url()))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let (status, _) = sim_post(
        &sim,
        "/__sim/faults",
        json!({"method": "POST", "path": "/oauth/token", "count": 1, "drop": true}),
    )
    .await;
    assert_eq!(status, 201);
    let lost = client
        .post(format!("{}/oauth/token", sim.auth_url()))
        .json(&refresh_body(r0))
        .send()
        .await;
    let err = lost.expect_err("the client must see a connection error, not an answer");
    assert!(!err.is_status());
    // The refresh happened on the server.
    assert_eq!(sim.stats().tokens.refreshes, 1);

    // Retrying with the same old token inside the window succeeds.
    let resp = client
        .post(format!("{}/oauth/token", sim.auth_url()))
        .json(&refresh_body(r0))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let stats = sim.stats().tokens;
    assert_eq!((stats.refreshes, stats.reuse_in_window), (2, 1));
}

#[tokio::test]
async fn a_dropped_request_cuts_any_route_once() {
    let sim = spawn_default().await;
    let access = mint_access_token(&sim);
    sim.add_fault(Fault {
        drop: true,
        count: 2,
        ..fault("/**")
    });
    for _ in 0..2 {
        let result = http()
            .get(format!("{}/me", sim.api_url()))
            .bearer_auth(&access)
            .send()
            .await;
        assert!(result.is_err(), "expected a connection error");
    }
    assert_eq!(get_status(&sim, "/me", &access).await, 200);
}

// ---- the binary ----

/// Kills the child however the test ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_cli_prints_its_address_first_and_applies_its_flags() {
    use std::io::BufRead as _;
    let mut child = Child(
        std::process::Command::new(env!("CARGO_BIN_EXE_atlassim"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--seed",
                "7",
                "--sites",
                "1",
                "--projects",
                "2",
                "--issues",
                "5",
                "--client-id",
                "my-app",
                "--client-secret",
                "my-secret",
                "--redirect-uri",
                "http://127.0.0.1:1/cb",
                "--auto-consent",
                "--access-token-ttl",
                "99",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
        line
    })
    .await
    .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {line:?}"))
        .to_string();
    assert!(
        base.starts_with("http://127.0.0.1:") && !base.ends_with(":0"),
        "{base}"
    );

    let state: Value = http()
        .get(format!("{base}/__sim/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["clients"][0]["client_id"], "my-app");
    assert_eq!(
        state["clients"][0]["redirect_uris"],
        json!(["http://127.0.0.1:1/cb"])
    );
    assert_eq!(state["sites"].as_array().unwrap().len(), 1);
    assert_eq!(state["sites"][0]["projects"].as_array().unwrap().len(), 2);
    assert_eq!(state["sites"][0]["projects"][0]["issue_count"], 5);

    let mut url = url::Url::parse(&format!("{base}/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs([
        ("audience", "api.atlassian.com"),
        ("client_id", "my-app"),
        ("scope", "read:jira-work offline_access"),
        ("redirect_uri", "http://127.0.0.1:1/cb"),
        ("state", "s"),
        ("response_type", "code"),
        ("prompt", "consent"),
    ]);
    let resp = http().get(url).send().await.unwrap();
    assert_eq!(resp.status(), 302, "auto consent");
    let code = param(&location_query(&resp), "code").unwrap();
    let tokens: Value = http()
        .post(format!("{base}/oauth/token"))
        .json(&json!({"grant_type": "authorization_code", "client_id": "my-app", "client_secret": "my-secret",
                      "code": code, "redirect_uri": "http://127.0.0.1:1/cb"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tokens["expires_in"], 99);
}

#[tokio::test]
async fn a_hidden_project_is_left_out_for_that_account_only() {
    let sim = spawn_default().await;
    let state = sim_get(&sim, "/__sim/state").await;
    let cloud = cloud_ids(&sim)[0].clone();
    let other = state["users"][1]["account_id"]
        .as_str()
        .unwrap()
        .to_string();
    let key = state["sites"][0]["projects"][1]["key"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = sim_post(
        &sim,
        "/__sim/projects/hide",
        json!({ "cloud_id": cloud, "project": key, "account_id": other }),
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = sim_post(
        &sim,
        "/__sim/projects/hide",
        json!({ "cloud_id": cloud, "project": "NOPE", "account_id": other }),
    )
    .await;
    assert_eq!(status, 404);
    let token_of = |account: Option<String>| {
        sim.mint_token(MintTokenRequest {
            account_id: account,
            ..Default::default()
        })
        .access_token
    };
    let keys = |v: &Value| -> Vec<String> {
        v["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["key"].as_str().unwrap().to_string())
            .collect()
    };
    let list = format!("/ex/jira/{cloud}/rest/api/3/project/search");
    let one = format!("/ex/jira/{cloud}/rest/api/3/project/{key}");
    let first = token_of(None);
    let (_, all) = get_json(&sim, &list, &first).await;
    assert!(keys(&all).contains(&key));
    assert_eq!(get_status(&sim, &one, &first).await, 200);
    let hidden = token_of(Some(other));
    let (_, fewer) = get_json(&sim, &list, &hidden).await;
    assert!(!keys(&fewer).contains(&key), "{fewer}");
    assert_eq!(keys(&fewer).len() + 1, keys(&all).len());
    assert_eq!(get_status(&sim, &one, &hidden).await, 404);
}
