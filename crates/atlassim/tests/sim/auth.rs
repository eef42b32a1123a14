//! The auth server: /authorize, /oauth/token, accessible-resources, /me.

use atlassim::{ConsentDecision, MintTokenRequest, SimConfig};
use serde_json::{json, Value};

use crate::common::*;

fn invalid_refresh_body() -> Value {
    json!({"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."})
}

// ---- code flow ----

#[tokio::test]
async fn code_flow_issues_a_bearer_token_pair() {
    let sim = spawn_default().await;
    let tokens = login(&sim).await;

    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3600);
    assert_eq!(tokens["scope"], SCOPES);
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert!(
        access.len() >= 43 && refresh.len() >= 43,
        "256-bit opaque tokens"
    );
    assert_ne!(access, refresh);
    assert_eq!(access.matches('.').count(), 0, "not a JWT");

    let (status, me) = get_json(&sim, "/me", access).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["account_id"], first_account_id(&sim));
    assert_eq!(me["email"], "mia@example.com");
    assert_eq!(me["account_type"], "atlassian");
    assert!(me["extended_profile"].is_object());

    let stats = sim.stats();
    assert_eq!(stats.tokens.codes_issued, 1);
    assert_eq!(stats.tokens.code_exchanges, 1);
}

#[tokio::test]
async fn a_code_works_only_once() {
    let sim = spawn_default().await;
    let code = default_code(&sim).await;
    let (first, _) = token_json(&sim, code_body(&code)).await;
    let (second, body) = token_json(&sim, code_body(&code)).await;
    assert_eq!(first, 200);
    assert_eq!(second, 403);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(sim.stats().tokens.code_exchanges, 1);
}

#[tokio::test]
async fn a_code_expires_after_ten_minutes() {
    let sim = spawn_default().await;
    let code = default_code(&sim).await;
    sim.advance_clock(601);
    let (status, body) = token_json(&sim, code_body(&code)).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn the_token_redirect_uri_must_equal_the_authorize_one() {
    let sim = spawn_default().await;
    let code = default_code(&sim).await;
    let mut body = code_body(&code);
    // Registered too, but not the one the code was issued for.
    body["redirect_uri"] = json!("http://localhost:8080/oauth/callback");
    let (status, answer) = token_json(&sim, body).await;
    assert_eq!(status, 403);
    assert_eq!(answer["error"], "invalid_grant");
}

#[tokio::test]
async fn a_wrong_or_missing_client_secret_is_401_access_denied() {
    let sim = spawn_default().await;
    let code = default_code(&sim).await;
    let expected = json!({"error": "access_denied", "error_description": "Unauthorized"});

    let mut wrong = code_body(&code);
    wrong["client_secret"] = json!("nope");
    assert_eq!(token_json(&sim, wrong).await, (401, expected.clone()));

    let mut missing = code_body(&code);
    missing.as_object_mut().unwrap().remove("client_secret");
    assert_eq!(token_json(&sim, missing).await, (401, expected.clone()));

    let mut unknown_client = code_body(&code);
    unknown_client["client_id"] = json!("someone-else");
    assert_eq!(token_json(&sim, unknown_client).await, (401, expected));

    // The code was not spent by the failed attempts.
    assert_eq!(token_json(&sim, code_body(&code)).await.0, 200);
}

#[tokio::test]
async fn form_bodies_work_like_json() {
    let sim = spawn_default().await;
    let code = default_code(&sim).await;
    let resp = http()
        .post(format!("{}/oauth/token", sim.auth_url()))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let tokens: Value = resp.json().await.unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();

    let resp = http()
        .post(format!("{}/oauth/token", sim.auth_url()))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("refresh_token", refresh),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let refreshed: Value = resp.json().await.unwrap();
    assert_eq!(refreshed["token_type"], "Bearer");
}

#[tokio::test]
async fn malformed_token_requests_are_400() {
    let sim = spawn_default().await;
    let (status, body) = token_json(
        &sim,
        json!({"grant_type": "password", "client_id": CLIENT_ID}),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );

    let (status, body) = token_json(
        &sim,
        json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );

    let mut no_code = code_body("x");
    no_code.as_object_mut().unwrap().remove("code");
    let (status, body) = token_json(&sim, no_code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );

    let resp = http()
        .post(format!("{}/oauth/token", sim.auth_url()))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn without_offline_access_there_is_no_refresh_token() {
    let sim = spawn_default().await;
    let mut params = authorize_params();
    params[2].1 = "read:jira-work read:me".into();
    let code = authorize_code(&sim, ConsentDecision::default(), &params).await;
    let (status, tokens) = token_json(&sim, code_body(&code)).await;
    assert_eq!(status, 200);
    assert!(tokens.get("refresh_token").is_none(), "{tokens}");
    assert_eq!(tokens["scope"], "read:jira-work read:me");
}

// ---- rotating refresh tokens ----

#[tokio::test]
async fn every_refresh_rotates_the_refresh_token() {
    let sim = spawn_default().await;
    let t0 = login(&sim).await;
    let r0 = t0["refresh_token"].as_str().unwrap().to_string();

    let t1 = refresh_ok(&sim, &r0).await;
    let r1 = t1["refresh_token"].as_str().unwrap().to_string();
    let t2 = refresh_ok(&sim, &r1).await;
    let r2 = t2["refresh_token"].as_str().unwrap().to_string();

    assert!(r0 != r1 && r1 != r2 && r0 != r2);
    assert_ne!(t1["access_token"], t2["access_token"]);
    assert_eq!(t2["scope"], SCOPES);
    assert_eq!(
        get_status(&sim, "/me", t2["access_token"].as_str().unwrap()).await,
        200
    );
    let stats = sim.stats().tokens;
    assert_eq!(
        (
            stats.refreshes,
            stats.reuse_in_window,
            stats.family_revocations
        ),
        (2, 0, 0)
    );
}

#[tokio::test]
async fn reuse_inside_the_window_answers_a_valid_pair_and_is_counted() {
    let sim = spawn_default().await;
    let r0 = login_token(&sim, "refresh_token").await;
    let (_, first) = refresh(&sim, &r0).await;
    sim.advance_clock(300);
    // The answer was "lost": the client retries with the old token.
    let again = refresh_ok(&sim, &r0).await;
    assert_ne!(again["refresh_token"], first["refresh_token"]);
    // Both children work.
    assert_eq!(
        refresh(&sim, again["refresh_token"].as_str().unwrap())
            .await
            .0,
        200
    );
    assert_eq!(
        refresh(&sim, first["refresh_token"].as_str().unwrap())
            .await
            .0,
        200
    );
    let stats = sim.stats().tokens;
    assert_eq!(stats.reuse_in_window, 1);
    assert_eq!(stats.refreshes, 4);
    assert_eq!(stats.family_revocations, 0);
}

#[tokio::test]
async fn reuse_after_the_window_revokes_the_family_and_its_access_tokens() {
    let sim = spawn_default().await;
    let r0 = login_token(&sim, "refresh_token").await;
    let (_, t1) = refresh(&sim, &r0).await;
    let a1 = t1["access_token"].as_str().unwrap().to_string();
    let r1 = t1["refresh_token"].as_str().unwrap().to_string();
    sim.advance_clock(601);
    assert_eq!(
        get_status(&sim, "/oauth/token/accessible-resources", &a1).await,
        200
    );

    assert_eq!(refresh(&sim, &r0).await, (403, invalid_refresh_body()));
    // The whole family is gone: the newest refresh token and its access token.
    assert_eq!(refresh(&sim, &r1).await, (403, invalid_refresh_body()));
    let (status, body) = get_json(&sim, "/oauth/token/accessible-resources", &a1).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(get_status(&sim, "/me", &a1).await, 401);
    assert_eq!(sim.stats().tokens.family_revocations, 1);
}

#[tokio::test]
async fn other_families_survive_a_revocation() {
    let sim = spawn_default().await;
    let a = login(&sim).await;
    let b = login(&sim).await;
    let ra = a["refresh_token"].as_str().unwrap();
    refresh(&sim, ra).await;
    sim.advance_clock(601);
    assert_eq!(refresh(&sim, ra).await.0, 403);
    assert_eq!(
        refresh(&sim, b["refresh_token"].as_str().unwrap()).await.0,
        200
    );
}

#[tokio::test]
async fn refresh_tokens_expire_after_inactivity_on_the_sim_clock() {
    let sim = spawn_sim(SimConfig {
        refresh_inactivity_secs: 1000,
        ..config()
    })
    .await;
    let r0 = login_token(&sim, "refresh_token").await;
    sim.advance_clock(900);
    // Using it resets the inactivity timer (the new token gets a fresh 1000 s).
    let t1 = refresh_ok(&sim, &r0).await;
    let r1 = t1["refresh_token"].as_str().unwrap().to_string();
    sim.advance_clock(900);
    let t2 = refresh_ok(&sim, &r1).await;
    let r2 = t2["refresh_token"].as_str().unwrap().to_string();
    sim.advance_clock(1001);
    assert_eq!(refresh(&sim, &r2).await, (403, invalid_refresh_body()));
    assert_eq!(
        sim.stats().tokens.family_revocations,
        0,
        "expiry is not a breach"
    );
}

#[tokio::test]
async fn the_optional_absolute_expiry_counts_from_first_consent() {
    let sim = spawn_sim(SimConfig {
        refresh_absolute_secs: Some(5000),
        ..config()
    })
    .await;
    let r0 = login_token(&sim, "refresh_token").await;
    sim.advance_clock(3000);
    let t1 = refresh_ok(&sim, &r0).await;
    sim.advance_clock(2001);
    let r1 = t1["refresh_token"].as_str().unwrap();
    assert_eq!(refresh(&sim, r1).await, (403, invalid_refresh_body()));
}

#[tokio::test]
async fn old_access_tokens_get_a_grace_period_after_a_refresh() {
    let sim = spawn_default().await;
    let t0 = login(&sim).await;
    let a0 = t0["access_token"].as_str().unwrap().to_string();
    let (_, t1) = refresh(&sim, t0["refresh_token"].as_str().unwrap()).await;
    let a1 = t1["access_token"].as_str().unwrap().to_string();
    sim.advance_clock(300);
    assert_eq!(get_status(&sim, "/me", &a0).await, 200, "inside the grace");
    sim.advance_clock(301);
    assert_eq!(get_status(&sim, "/me", &a0).await, 401, "after the grace");
    assert_eq!(
        get_status(&sim, "/me", &a1).await,
        200,
        "the new one lives its hour"
    );
}

#[tokio::test]
async fn access_tokens_expire_after_their_ttl() {
    let sim = spawn_sim(SimConfig {
        access_token_ttl_secs: 120,
        ..config()
    })
    .await;
    let t = login(&sim).await;
    assert_eq!(t["expires_in"], 120);
    let a = t["access_token"].as_str().unwrap();
    sim.advance_clock(119);
    assert_eq!(get_status(&sim, "/me", a).await, 200);
    sim.advance_clock(2);
    let (status, body) = get_json(&sim, "/me", a).await;
    assert_eq!(status, 401);
    assert_eq!(body, json!({"code": 401, "message": "Unauthorized"}));
}

// ---- accessible-resources and /me ----

#[tokio::test]
async fn accessible_resources_lists_a_site_once_per_product() {
    let sim = spawn_default().await;
    let ids = cloud_ids(&sim);
    let access = login_token(&sim, "access_token").await;
    let (status, body) = get_json(&sim, "/oauth/token/accessible-resources", &access).await;
    assert_eq!(status, 200);
    let entries = body.as_array().unwrap();
    // Site 1 has Jira and Confluence, site 2 Jira only.
    assert_eq!(entries.len(), 3, "{body}");
    let first: Vec<&Value> = entries
        .iter()
        .filter(|e| e["id"] == ids[0].as_str())
        .collect();
    assert_eq!(first.len(), 2, "same id twice");
    let jira = first
        .iter()
        .find(|e| {
            e["scopes"]
                .as_array()
                .unwrap()
                .contains(&json!("read:jira-work"))
        })
        .unwrap();
    assert_eq!(jira["scopes"], json!(["read:jira-work", "write:jira-work"]));
    let confluence = first
        .iter()
        .find(|e| e["scopes"] == json!(["read:confluence-content.all"]))
        .unwrap();
    assert_eq!(confluence["url"], "https://acme.atlassian.net");
    assert_eq!(confluence["name"], "acme");
    assert!(confluence["avatarUrl"]
        .as_str()
        .unwrap()
        .starts_with("https://"));
    assert_eq!(
        entries
            .iter()
            .filter(|e| e["id"] == ids[1].as_str())
            .count(),
        1
    );
}

#[tokio::test]
async fn a_consent_for_one_site_grants_only_that_site_and_a_second_consent_widens_the_grant() {
    let sim = spawn_default().await;
    let ids = cloud_ids(&sim);
    let decision = ConsentDecision {
        sites: Some(vec![ids[1].clone()]),
        ..Default::default()
    };
    let code = authorize_code(&sim, decision, &authorize_params()).await;
    let (_, tokens) = token_json(&sim, code_body(&code)).await;
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let (_, body) = get_json(&sim, "/oauth/token/accessible-resources", &access).await;
    let listed: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, vec![ids[1].as_str()]);

    // One grant per app and account: consenting to site 1 later adds it, and
    // the existing token sees both.
    let decision = ConsentDecision {
        sites: Some(vec![ids[0].clone()]),
        ..Default::default()
    };
    authorize_code(&sim, decision, &authorize_params()).await;
    let (_, body) = get_json(&sim, "/oauth/token/accessible-resources", &access).await;
    assert_eq!(body.as_array().unwrap().len(), 3, "{body}");
}

#[tokio::test]
async fn me_needs_read_me() {
    let sim = spawn_default().await;
    let tokens = sim.mint_token(MintTokenRequest {
        scopes: Some(vec!["read:jira-work".into()]),
        ..Default::default()
    });
    assert!(tokens.refresh_token.is_none());
    let (status, body) = get_json(&sim, "/me", &tokens.access_token).await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"code": 401, "message": "Unauthorized; scope does not match"})
    );
    assert_eq!(get_status(&sim, "/me", "not-a-token").await, 401);
    let resp = http()
        .get(format!("{}/me", sim.api_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

// ---- /authorize parameter checks ----

async fn authorize_with(sim: &atlassim::Sim, name: &str, value: Option<&str>) -> reqwest::Response {
    let mut params = authorize_params();
    match value {
        Some(v) => params
            .iter_mut()
            .filter(|(k, _)| *k == name)
            .for_each(|(_, old)| *old = v.to_string()),
        None => params.retain(|(k, _)| *k != name),
    }
    sim.set_next_consent(ConsentDecision::default());
    authorize(sim, &params).await
}

async fn assert_error_page(resp: reqwest::Response) {
    assert_eq!(resp.status(), 400);
    assert!(
        resp.headers().get("location").is_none(),
        "never redirect to an untrusted URI"
    );
    let html = resp.text().await.unwrap();
    assert!(html.contains("id=\"error\""), "{html}");
}

fn assert_error_redirect(resp: &reqwest::Response, error: &str, with_state: bool) {
    assert_eq!(resp.status(), 302);
    let location = resp.headers()["location"].to_str().unwrap();
    assert!(location.starts_with(REDIRECT_URI), "{location}");
    let q = location_query(resp);
    assert_eq!(param(&q, "error").as_deref(), Some(error), "{q:?}");
    assert!(param(&q, "error_description").is_some());
    assert!(param(&q, "code").is_none());
    assert_eq!(param(&q, "state").is_some(), with_state, "{q:?}");
}

#[tokio::test]
async fn unknown_client_or_redirect_uri_shows_an_error_page() {
    let sim = spawn_default().await;
    assert_error_page(authorize_with(&sim, "client_id", Some("unknown-app")).await).await;
    assert_error_page(authorize_with(&sim, "client_id", None).await).await;
    assert_error_page(authorize_with(&sim, "redirect_uri", Some("https://evil.example/cb")).await)
        .await;
    assert_error_page(
        authorize_with(
            &sim,
            "redirect_uri",
            Some("http://127.0.0.1:8080/oauth/callback/x"),
        )
        .await,
    )
    .await;
    assert_error_page(authorize_with(&sim, "redirect_uri", None).await).await;
}

#[tokio::test]
async fn every_other_authorize_parameter_is_checked() {
    let sim = spawn_default().await;
    // (parameter, value or None = left out, expected error, state echoed back)
    let cases: [(&str, Option<&str>, &str, bool); 10] = [
        ("audience", None, "invalid_request", true),
        ("audience", Some("api.example.com"), "access_denied", true),
        (
            "response_type",
            Some("token"),
            "unsupported_response_type",
            true,
        ),
        ("response_type", None, "unsupported_response_type", true),
        ("scope", None, "invalid_request", true),
        ("scope", Some("  "), "invalid_request", true),
        (
            "scope",
            Some("read:jira-work admin:everything"),
            "invalid_scope",
            true,
        ),
        ("prompt", None, "invalid_request", true),
        ("prompt", Some("none"), "invalid_request", true),
        ("state", None, "invalid_request", false),
    ];
    for (param, value, error, with_state) in cases {
        let resp = authorize_with(&sim, param, value).await;
        assert_error_redirect(&resp, error, with_state);
    }
    assert_eq!(sim.stats().tokens.codes_issued, 0);

    // A client registered for fewer scopes cannot ask for more.
    let mut cfg = config();
    cfg.clients[0].scopes = vec!["read:jira-work".into(), "offline_access".into()];
    let narrow = spawn_sim(cfg).await;
    assert_error_redirect(
        &authorize_with(&narrow, "scope", Some("read:jira-work write:jira-work")).await,
        "invalid_scope",
        true,
    );
    let ok = authorize_with(&narrow, "scope", Some("read:jira-work offline_access")).await;
    assert!(param(&location_query(&ok), "code").is_some());
}

#[tokio::test]
async fn a_denied_consent_redirects_with_access_denied_and_the_state() {
    let sim = spawn_default().await;
    sim.set_next_consent(ConsentDecision {
        deny: true,
        ..Default::default()
    });
    let resp = authorize(&sim, &authorize_params()).await;
    assert_error_redirect(&resp, "access_denied", true);
    assert_eq!(
        param(&location_query(&resp), "state").as_deref(),
        Some("xyz-state")
    );
}

#[tokio::test]
async fn a_preset_decision_is_used_once_then_the_page_is_shown() {
    let sim = spawn_default().await;
    let code = default_code(&sim).await;
    assert!(!code.is_empty());
    let resp = authorize(&sim, &authorize_params()).await;
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    assert!(html.contains("atlasgate-dev"));
    assert!(html.contains("read:confluence-content.all"));
    assert!(html.contains("mia@example.com") && html.contains("noah@example.com"));
    assert!(
        html.contains("https://acme.atlassian.net")
            && html.contains("https://globex.atlassian.net")
    );
    assert!(html.contains("name=\"decision\" value=\"accept\""));
}

#[tokio::test]
async fn the_consent_form_issues_a_code_for_the_chosen_user_and_site() {
    let sim = spawn_default().await;
    let ids = cloud_ids(&sim);
    let noah = sim.snapshot()["users"][1]["account_id"]
        .as_str()
        .unwrap()
        .to_string();
    let html = authorize(&sim, &authorize_params())
        .await
        .text()
        .await
        .unwrap();
    let marker = "name=\"request_id\" value=\"";
    let start = html.find(marker).unwrap() + marker.len();
    let request_id = &html[start..start + html[start..].find('"').unwrap()];

    // Accept without a site: the same page again, with the reason.
    let resp = post_decision(
        &sim,
        &[
            ("request_id", request_id),
            ("account_id", &noah),
            ("decision", "accept"),
        ],
    )
    .await;
    assert_eq!(resp.status(), 422);
    let html = resp.text().await.unwrap();
    assert!(html.contains("Choose at least one site.") && html.contains(request_id));

    let resp = post_decision(
        &sim,
        &[
            ("request_id", request_id),
            ("account_id", &noah),
            ("site", &ids[1]),
            ("decision", "accept"),
        ],
    )
    .await;
    assert_eq!(resp.status(), 302);
    let q = location_query(&resp);
    assert_eq!(param(&q, "state").as_deref(), Some("xyz-state"));
    let (status, tokens) = token_json(&sim, code_body(&param(&q, "code").unwrap())).await;
    assert_eq!(status, 200);
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        get_json(&sim, "/me", access).await.1["account_id"],
        noah.as_str()
    );
    let (_, resources) = get_json(&sim, "/oauth/token/accessible-resources", access).await;
    assert_eq!(resources.as_array().unwrap().len(), 1);
    assert_eq!(resources[0]["id"], ids[1].as_str());

    // The page can be answered once.
    let again = post_decision(
        &sim,
        &[
            ("request_id", request_id),
            ("account_id", &noah),
            ("site", &ids[1]),
            ("decision", "accept"),
        ],
    )
    .await;
    assert_eq!(again.status(), 400);
}

#[tokio::test]
async fn auto_consent_redirects_at_once() {
    let sim = spawn_sim(SimConfig {
        auto_consent: true,
        ..config()
    })
    .await;
    for _ in 0..2 {
        let resp = authorize(&sim, &authorize_params()).await;
        assert_eq!(resp.status(), 302);
        assert!(param(&location_query(&resp), "code").is_some());
    }
}
