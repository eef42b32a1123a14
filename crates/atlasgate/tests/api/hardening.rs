//! Hardening of the edge (docs/security.md): the client address behind a
//! reverse proxy and the per-address rate limits that use it, and what the
//! CLI prints of text that came from an app or from Jira.

use std::net::IpAddr;
use std::process::{Command, Stdio};

use atlasgate::config::TrustedProxies;
use serde_json::json;

use crate::helpers::{assert_problem, captured_logs, TestApp, TestOptions};

/// atlasgate with `ATLASGATE_TRUSTED_PROXIES` set to `trusted`.
async fn behind(trusted: &str) -> TestApp {
    let trusted = TrustedProxies::parse(trusted).unwrap();
    TestApp::spawn_with(TestOptions::default(), move |c| {
        c.trusted_proxies = trusted;
    })
    .await
}

/// A client whose TCP connections come from `local` (any 127.x address is
/// this machine on Linux), so a test can be two different peers.
fn client_from(local: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(local.parse::<IpAddr>().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// One admin login with a wrong token; the status.
async fn failed_login(app: &TestApp, client: &reqwest::Client, xff: Option<&str>) -> u16 {
    let mut req = client
        .post(app.url("/admin/login"))
        .form(&[("token", "not-the-admin-token")]);
    if let Some(x) = xff {
        req = req.header("x-forwarded-for", x);
    }
    req.send().await.unwrap().status().as_u16()
}

/// Failed logins until the first 429; how many were answered 401 before it.
/// The failure budget is 5 at once (ratelimit.rs), so a run that is never
/// cut off fails the test.
async fn failures_until_limited(
    app: &TestApp,
    client: &reqwest::Client,
    xff: impl Fn(usize) -> Option<String>,
) -> usize {
    for i in 0..20 {
        match failed_login(app, client, xff(i).as_deref()).await {
            401 => continue,
            429 => return i,
            other => panic!("login answered {other}"),
        }
    }
    panic!("20 failed logins were never rate limited");
}

#[tokio::test]
async fn two_clients_behind_a_trusted_proxy_get_separate_buckets() {
    let app = behind("127.0.0.1/32").await;
    let proxy = &app.client;
    let n = failures_until_limited(&app, proxy, |_| Some("203.0.113.10".into())).await;
    assert_eq!(n, 5, "five mistypes are allowed");
    assert_eq!(failed_login(&app, proxy, Some("203.0.113.10")).await, 429);
    // Another person behind the same proxy is not locked out.
    assert_eq!(failed_login(&app, proxy, Some("203.0.113.11")).await, 401);
    // The request log names the client, not the proxy.
    assert!(
        captured_logs().contains("client=203.0.113.11"),
        "the client address is in the request log"
    );
}

#[tokio::test]
async fn an_untrusted_peers_forwarded_for_is_ignored() {
    // No trusted proxies at all, and a trusted proxy that is not this peer.
    for trusted in ["", "127.0.0.2/32"] {
        let app = behind(trusted).await;
        let direct = client_from("127.0.0.1");
        // A fresh forged address on every request does not escape the bucket.
        let n = failures_until_limited(&app, &direct, |i| Some(format!("198.51.100.{i}"))).await;
        assert_eq!(n, 5, "trusted = {trusted:?}");
        assert_eq!(
            failed_login(&app, &direct, Some("198.51.100.200")).await,
            429
        );
        if !trusted.is_empty() {
            // Positive control: the trusted proxy's header is believed.
            let proxy = client_from("127.0.0.2");
            assert_eq!(
                failed_login(&app, &proxy, Some("198.51.100.200")).await,
                401
            );
        }
    }
}

#[tokio::test]
async fn a_forged_left_most_entry_is_not_used() {
    let app = behind("127.0.0.1/32").await;
    // The client writes whatever it likes on the left; the proxy appends the
    // address it saw on the right.
    let n = failures_until_limited(&app, &app.client, |i| {
        Some(format!("192.0.2.{i}, 203.0.113.20"))
    })
    .await;
    assert_eq!(n, 5);
    assert_eq!(
        failed_login(&app, &app.client, Some("192.0.2.99, 203.0.113.21")).await,
        401,
        "the right-most address is the one counted"
    );
}

#[tokio::test]
async fn ipv6_clients_are_counted_by_their_64() {
    let app = behind("127.0.0.1/32").await;
    let n = failures_until_limited(&app, &app.client, |i| {
        Some(format!("2001:db8:aa:1::{:x}", i + 1))
    })
    .await;
    assert_eq!(n, 5, "every address of one /64 shares a budget");
    assert_eq!(
        failed_login(&app, &app.client, Some("2001:db8:aa:2::1")).await,
        401,
        "the neighbouring /64 has its own"
    );
}

#[tokio::test]
async fn the_admin_api_is_rate_limited_per_address() {
    let app = TestApp::spawn().await;
    // In concurrent batches, so that the budget's refill (10 a second)
    // cannot keep up however slow a single request is on this machine.
    let mut served = 0;
    let mut limited = None;
    for _ in 0..8 {
        let batch =
            futures::future::join_all((0..50).map(|_| app.admin_get("/admin/api/apps"))).await;
        for resp in batch {
            match resp.status().as_u16() {
                200 => served += 1,
                429 => limited = limited.or(Some(resp)),
                other => panic!("admin API answered {other}"),
            }
        }
        if limited.is_some() {
            break;
        }
    }
    let resp = limited.expect("no 429 after 400 admin API requests");
    assert!(
        served >= 100,
        "ordinary provisioning fits in the budget ({served})"
    );
    let wait: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait >= 1);
    let body = assert_problem(resp, 429).await;
    assert!(
        body["detail"].as_str().unwrap().contains("your address"),
        "{body}"
    );
    // The app API is not the admin API: it still answers.
    assert_eq!(app.get("/healthz", None).await.status(), 200);
}

#[tokio::test]
async fn guessing_the_admin_bearer_token_is_rate_limited() {
    let app = TestApp::spawn().await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        let resp = app
            .get("/admin/api/apps", Some(&format!("guess-{i}-0123456789")))
            .await;
        statuses.push(resp.status().as_u16());
        if resp.status() == 429 {
            assert!(resp.headers().contains_key("retry-after"));
            assert_problem(resp, 429).await;
        }
    }
    assert_eq!(
        statuses,
        [401, 401, 401, 401, 401, 429, 429, 429],
        "five wrong tokens, then nothing"
    );
    // The form and the API share the budget: no fresh guesses there either.
    assert_eq!(failed_login(&app, &app.client, None).await, 429);
    // Another address may still try (and the right token still works there).
    let other = client_from("127.0.0.3");
    let resp = other
        .get(app.url("/admin/api/apps"))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

// ------------------------------------------------------------ the CLI

#[tokio::test]
async fn the_cli_shows_escape_sequences_from_apps_and_jira_instead_of_obeying_them() {
    let app = TestApp::spawn().await;
    let (key, connection) = app.connected_app("cli-escapes", "team:esc").await;
    // An app's JQL with an OSC (window title) and a CSI (clear screen) sequence.
    let jql = "project IS NOT EMPTY AND summary !~ \"\u{1b}]0;owned\u{7}\u{1b}[2J\"";
    let resp = app
        .post_json(
            &format!("/v1/connections/{connection}/syncs"),
            Some(&key),
            &json!({ "jql": jql, "interval_s": 3600 }),
        )
        .await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    // A name that reverses what follows it (no control character, but a
    // bidirectional override).
    app.create_app_with(&json!({ "name": "evil\u{202e}gnp.exe" }))
        .await;

    for (args, want) in [
        (&["sync", "status"][..], "\\u{1b}]0;owned\\u{7}\\u{1b}[2J"),
        (&["apps", "list"][..], "evil\\u{202e}gnp.exe"),
        (&["connections", "list"][..], "team:esc"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_atlasgate"))
            .args(args)
            .env_clear()
            .env("ATLASGATE_DATABASE_URL", &app.db.url)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(out.status.success(), "{args:?}: {stdout}");
        assert!(
            !stdout
                .chars()
                .any(|c| (c.is_control() && c != '\n') || c == '\u{202e}'),
            "{args:?} printed a raw control character: {stdout:?}"
        );
        assert!(stdout.contains(want), "{args:?}: {stdout}");
    }
}
