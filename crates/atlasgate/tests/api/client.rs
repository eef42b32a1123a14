//! The polite client layer under atlassim's fault injection: rate limits,
//! retries of idempotent requests only, one refresh on a 401.

use atlasgate::ids::ConnectionId;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use atlasgate::atlassian::{ApiRequest, AtlassianError};
use http::Method;
use serde_json::{json, Value};

use crate::helpers::TestApp;
use crate::proxy::{
    connected, fast_policy, fault, proxy_get, proxy_json, proxy_url, sim_count, sim_site,
};

fn rate_limited(path: &str, count: u32, retry_after: u64, reason: &str) -> atlassim::Fault {
    let mut f = fault("GET", path, count);
    f.status = Some(429);
    f.body = Some(json!({"errorMessages": ["Rate limit exceeded."], "errors": {}}));
    let reset = chrono::Utc::now() + chrono::Duration::seconds(retry_after as i64);
    f.headers = Some(BTreeMap::from([
        ("Retry-After".to_string(), retry_after.to_string()),
        ("RateLimit-Reason".to_string(), reason.to_string()),
        (
            "X-RateLimit-Reset".to_string(),
            reset.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ),
        ("X-RateLimit-Remaining".to_string(), "0".to_string()),
    ]));
    f
}

/// atlasgate with one app connected to the first site (`key`, `id`), fast retries.
async fn jira_app() -> (TestApp, String, String) {
    let app = TestApp::spawn().await;
    let (key, id) = connected(&app, "jira", 0).await;
    fast_policy(&app);
    (app, key, id)
}

#[tokio::test]
async fn burst_429s_are_waited_out_as_long_as_retry_after_says() {
    let (app, key, id) = jira_app().await;
    app.sim.add_fault(rate_limited(
        "/ex/jira/*/rest/api/3/myself",
        2,
        1,
        "jira-burst-based",
    ));
    let before = sim_count(&app, "GET", "/rest/api/3/myself");
    let started = Instant::now();
    let resp = proxy_get(&app, &key, &id, "rest/api/3/myself").await;
    let elapsed = started.elapsed();
    assert_eq!(resp.status(), 200);
    // Two refusals, each asking for 1 s.
    assert!(elapsed >= Duration::from_secs(2), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(8), "{elapsed:?}");
    assert_eq!(sim_count(&app, "GET", "/rest/api/3/myself") - before, 3);
}

#[tokio::test]
async fn a_quota_429_pauses_every_endpoint_of_the_site() {
    let (app, key, id) = jira_app().await;
    app.sim.add_fault(rate_limited(
        "/ex/jira/*/rest/api/3/myself",
        1,
        2,
        "jira-quota-global-based",
    ));
    let first = {
        let client = app.client.clone();
        let url = proxy_url(&app, &id, "rest/api/3/myself");
        let key = key.clone();
        tokio::spawn(async move {
            client
                .get(url)
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    // Let the first call meet the 429, then ask for something else on the same site.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = sim_count(&app, "GET", "/rest/api/3/project/search");
    let started = Instant::now();
    let resp = proxy_get(&app, &key, &id, "rest/api/3/project/search").await;
    let elapsed = started.elapsed();
    assert_eq!(resp.status(), 200);
    assert!(
        elapsed >= Duration::from_millis(1200),
        "the site should be paused: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(8), "{elapsed:?}");
    assert_eq!(
        sim_count(&app, "GET", "/rest/api/3/project/search") - before,
        1
    );
    assert_eq!(first.await.unwrap(), 200);
}

#[tokio::test]
async fn a_long_quota_pause_is_handed_back_as_429_with_retry_after() {
    let (app, key, id) = jira_app().await;
    app.sim.add_fault(rate_limited(
        "/ex/jira/*/rest/api/3/myself",
        1,
        1800,
        "jira-quota-global-based",
    ));
    // The first caller sees Atlassian's own 429 (relayed).
    let resp = proxy_get(&app, &key, &id, "rest/api/3/myself").await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "1800");
    // The next call to any endpoint of the site is not sent at all.
    let before = sim_count(&app, "GET", "/rest/api/3/project/search");
    let resp = proxy_get(&app, &key, &id, "rest/api/3/project/search").await;
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1790..=1800).contains(&retry), "{retry}");
    assert_eq!(sim_count(&app, "GET", "/rest/api/3/project/search"), before);
}

/// Adds a comment to the first issue of the first project through the proxy.
async fn proxy_post_comment(app: &TestApp, key: &str, id: &str) -> reqwest::Response {
    let issue = format!(
        "{}-1",
        sim_site(app, 0)["projects"][0]["key"].as_str().unwrap()
    );
    let body = json!({"body": {"type": "doc", "version": 1, "content": []}});
    proxy_json(
        app,
        Method::POST,
        key,
        id,
        &format!("rest/api/3/issue/{issue}/comment"),
        &body,
    )
    .await
}

#[tokio::test]
async fn server_errors_and_dropped_connections_on_get_are_retried() {
    // (what, faulted attempts, how each fails, requests atlassim sees)
    type Case = (&'static str, u32, fn(&mut atlassim::Fault), u64);
    let cases: [Case; 2] = [
        ("two 503s", 2, |f| f.status = Some(503), 3),
        ("one dropped connection", 1, |f| f.drop = true, 2),
    ];
    for (what, count, break_it, requests) in cases {
        let (app, key, id) = jira_app().await;
        let mut f = fault("GET", "/ex/jira/*/rest/api/3/myself", count);
        break_it(&mut f);
        app.sim.add_fault(f);
        let before = sim_count(&app, "GET", "/rest/api/3/myself");
        let resp = proxy_get(&app, &key, &id, "rest/api/3/myself").await;
        assert_eq!(resp.status(), 200, "{what}");
        assert_eq!(
            sim_count(&app, "GET", "/rest/api/3/myself") - before,
            requests,
            "{what}"
        );
    }
}

#[tokio::test]
async fn server_errors_on_post_are_not_retried() {
    let (app, key, id) = jira_app().await;
    let mut f = fault("POST", "/ex/jira/*/rest/api/3/issue/*/comment", 1);
    f.status = Some(500);
    app.sim.add_fault(f);
    let resp = proxy_post_comment(&app, &key, &id).await;
    // Atlassian's 500 is relayed, and the POST went exactly once.
    assert_eq!(resp.status(), 500);
    assert_eq!(sim_count(&app, "POST", "/comment"), 1);
}

#[tokio::test]
async fn a_post_whose_answer_is_lost_is_not_repeated() {
    let (app, key, id) = jira_app().await;
    let mut f = fault("POST", "/ex/jira/*/rest/api/3/issue/*/comment", 1);
    f.drop = true;
    app.sim.add_fault(f);
    let resp = proxy_post_comment(&app, &key, &id).await;
    crate::helpers::assert_problem(resp, 502).await;
    assert_eq!(sim_count(&app, "POST", "/comment"), 1);
}

#[tokio::test]
async fn a_token_that_died_early_is_refreshed_once_and_the_call_retried() {
    let (app, key, id) = jira_app().await;
    // Atlassian's clock passes the token's expiry; atlasgate still believes in it.
    app.sim.advance_clock(3700);
    let refreshes = app.sim.stats().tokens.refreshes;
    let resp = proxy_get(&app, &key, &id, "rest/api/3/myself").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(app.sim.stats().tokens.refreshes - refreshes, 1);
    // 401 then 200.
    let unauthorized: u64 = app
        .sim
        .stats()
        .requests
        .iter()
        .filter(|r| r.route.ends_with("/rest/api/3/myself") && r.status == 401)
        .map(|r| r.count)
        .sum();
    assert_eq!(unauthorized, 1);
    // And the new token serves the next call without another refresh.
    let resp = proxy_get(&app, &key, &id, "rest/api/3/myself").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(app.sim.stats().tokens.refreshes - refreshes, 1);
}

#[tokio::test]
async fn typed_calls_through_the_client_follow_the_same_rules() {
    let app = TestApp::spawn().await;
    let (_, id) = connected(&app, "jira", 0).await;
    fast_policy(&app);
    let client = &app.state.atlassian;
    // A typed GET through the library API, as sync uses it.
    let (me, row): (Value, _) = client
        .json(
            None,
            &ConnectionId::new(&id),
            ApiRequest::jira(Method::GET, "rest/api/3/myself"),
        )
        .await
        .unwrap();
    assert!(me["accountId"].is_string());
    assert_eq!(row.id, *id);
    // A non-success answer is an error carrying Jira's message.
    let err = client
        .json::<Value>(
            None,
            &ConnectionId::new(&id),
            ApiRequest::jira(Method::GET, "rest/api/3/search/jql")
                .query(&[("jql", "nosuchfield = 1")]),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, AtlassianError::Status { status, .. } if status == 400),
        "{err:?}"
    );
    assert!(
        err.jira_messages().unwrap().contains("nosuchfield"),
        "{:?}",
        err.jira_messages()
    );
    // Another app's id is refused when the app is named.
    let err = client
        .json::<Value>(
            Some("not-the-owner"),
            &ConnectionId::new(&id),
            ApiRequest::jira(Method::GET, "rest/api/3/myself"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, AtlassianError::NotFound));
}

#[tokio::test]
async fn a_401_that_a_refresh_does_not_cure_does_not_refresh_on_every_call() {
    let (app, key, id) = jira_app().await;
    let mut f = fault("GET", "/ex/jira/*/rest/api/3/myself", 10);
    f.status = Some(401);
    f.body = Some(json!({"code": 401, "message": "Unauthorized; scope does not match"}));
    app.sim.add_fault(f);
    let refreshes = app.sim.stats().tokens.refreshes;
    let before = sim_count(&app, "GET", "/rest/api/3/myself");
    for _ in 0..3 {
        let resp = proxy_get(&app, &key, &id, "rest/api/3/myself").await;
        // Atlassian's answer is relayed as is.
        assert_eq!(resp.status(), 401);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["message"], "Unauthorized; scope does not match");
    }
    // One refresh (and its retry) for the first call; the others are relayed at once.
    assert_eq!(app.sim.stats().tokens.refreshes - refreshes, 1);
    assert_eq!(sim_count(&app, "GET", "/rest/api/3/myself") - before, 4);
}

/// 60 concurrent GETs against a site whose burst limit is 20/s: with pacing
/// no request meets a 429; without it many do, and all still succeed by
/// honouring `Retry-After`.
#[tokio::test]
async fn pacing_keeps_bulk_work_under_the_burst_limit() {
    use atlasgate::atlassian::limits::Pacing;
    use atlasgate::atlassian::ClientPolicy;

    let sim = atlassim::SimConfig {
        rate_limits: true,
        rate_limit: atlassim::ratelimit::RateLimitSettings {
            get_rps: 20.0,
            ..Default::default()
        },
        ..Default::default()
    };
    let app = TestApp::spawn_with(
        crate::helpers::TestOptions {
            sim,
            ..Default::default()
        },
        |_| {},
    )
    .await;
    let (_, id) = connected(&app, "jira", 0).await;
    let id = ConnectionId::new(id);
    let burst = || async {
        let calls = (0..60).map(|_| {
            app.state.atlassian.json::<Value>(
                None,
                &id,
                ApiRequest::jira(Method::GET, "rest/api/3/myself"),
            )
        });
        futures::future::join_all(calls).await
    };
    let refused = |app: &TestApp| -> u64 {
        app.sim
            .stats()
            .requests
            .iter()
            .filter(|r| r.status == 429)
            .map(|r| r.count)
            .sum()
    };

    app.state.atlassian.set_policy(ClientPolicy {
        // A tenant with a fifth of the published limits: 0.9 × 20 of GET
        // `/myself`'s 100/s (`ATLASGATE_PACING_FACTOR`).
        pacing: Some(Pacing {
            factor: 0.18,
            ..Pacing::default()
        }),
        ..ClientPolicy::default()
    });
    for r in burst().await {
        r.unwrap();
    }
    assert_eq!(
        refused(&app),
        0,
        "paced requests should never meet the burst limit"
    );

    // Let the bucket refill, then the same burst without pacing.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    app.state.atlassian.set_policy(ClientPolicy {
        pacing: None,
        ..ClientPolicy::default()
    });
    for r in burst().await {
        r.unwrap();
    }
    assert!(
        refused(&app) > 0,
        "unpaced, the burst limit should have answered 429"
    );
}

/// A per-issue 429 delays writes to that issue only; a burst 429 slows that
/// endpoint only.
#[tokio::test]
async fn narrower_429s_pause_only_what_they_name() {
    let (app, key, id) = jira_app().await;
    let project = sim_site(&app, 0)["projects"][0]["key"]
        .as_str()
        .unwrap()
        .to_string();
    let (one, two) = (format!("{project}-1"), format!("{project}-2"));
    let put = |issue: String, summary: &'static str| {
        let client = app.client.clone();
        let url = proxy_url(&app, &id, &format!("rest/api/3/issue/{issue}"));
        let key = key.clone();
        async move {
            let started = Instant::now();
            let resp = client
                .put(url)
                .bearer_auth(key)
                .json(&json!({"fields": {"summary": summary}}))
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), started.elapsed())
        }
    };
    let mut f = rate_limited(
        &format!("/ex/jira/*/rest/api/3/issue/{one}"),
        1,
        2,
        "jira-per-issue-on-write",
    );
    f.method = Some("PUT".into());
    app.sim.add_fault(f);
    let first = tokio::spawn(put(one.clone(), "first"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Another issue: not delayed. The same issue: waits for the pause.
    let (other, same) = tokio::join!(put(two.clone(), "other"), put(one.clone(), "again"));
    assert_eq!(other.0, 204);
    // The pause has 1.7 s left; an undelayed call is far quicker.
    assert!(other.1 < Duration::from_millis(1500), "{:?}", other.1);
    assert_eq!(same.0, 204);
    assert!(same.1 >= Duration::from_millis(1200), "{:?}", same.1);
    assert_eq!(first.await.unwrap().0, 204);

    // A burst 429 on one endpoint does not hold back another.
    app.sim.add_fault(rate_limited(
        "/ex/jira/*/rest/api/3/myself",
        1,
        2,
        "jira-burst-based",
    ));
    let slow = {
        let client = app.client.clone();
        let url = proxy_url(&app, &id, "rest/api/3/myself");
        let key = key.clone();
        tokio::spawn(async move {
            client
                .get(url)
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let resp = proxy_get(&app, &key, &id, "rest/api/3/project/search").await;
    assert_eq!(resp.status(), 200);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(slow.await.unwrap(), 200);
}
