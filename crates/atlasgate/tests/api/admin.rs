//! Admin: the token gate of the JSON API and the dashboard (HTTP and a real
//! headless Chromium).

use std::time::Duration;

use serde_json::json;

use crate::helpers::{assert_problem, TestApp, TestOptions};

#[tokio::test]
async fn admin_routes_are_absent_without_a_token() {
    let app = TestApp::spawn_with(TestOptions { admin_token: None, ..Default::default() }, |_| {}).await;
    assert_problem(app.get("/admin/api/apps", Some("anything-at-all-here")).await, 404).await;
    assert_problem(app.post_json("/admin/api/apps", None, &json!({ "name": "x" })).await, 404).await;
    assert_eq!(app.get("/admin", None).await.status(), 404);
    let resp = app.client.post(app.url("/admin/login")).form(&[("token", "")]).send().await.unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn a_missing_or_wrong_admin_token_is_401() {
    let app = TestApp::spawn().await;
    assert_problem(app.get("/admin/api/apps", None).await, 401).await;
    let wrong = format!("{}x", app.admin_token);
    assert_problem(app.get("/admin/api/apps", Some(&wrong)).await, 401).await;
    assert_problem(app.post_json("/admin/api/apps", Some("short"), &json!({ "name": "x" })).await, 401).await;
    // Nothing was created by the refused calls.
    let list: serde_json::Value = app.admin_get("/admin/api/apps").await.json().await.unwrap();
    assert_eq!(list["apps"], json!([]));
}

fn session_cookie(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("atlasgate_admin="))
        .map(str::to_string)
}

#[tokio::test]
async fn login_sets_a_signed_session_cookie_not_the_token() {
    let app = TestApp::spawn().await;
    app.create_app("dash-app").await;

    // Not logged in: the login form.
    let resp = app.get("/admin", None).await;
    assert_eq!(resp.status(), 200);
    let csp = resp.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let html = resp.text().await.unwrap();
    assert!(html.contains("name=\"token\"") && !html.contains("dash-app"));

    // Wrong token: 401, the form again, no cookie.
    let resp = app.client.post(app.url("/admin/login")).form(&[("token", "nope")]).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert!(session_cookie(&resp).is_none());

    let resp = app.client.post(app.url("/admin/login")).form(&[("token", app.admin_token.as_str())]).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/admin");
    let cookie = session_cookie(&resp).unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/admin"), "{cookie}");
    assert!(!cookie.contains(&app.admin_token));
    let pair = cookie.split(';').next().unwrap().to_string();

    let resp = app.client.get(app.url("/admin")).header("cookie", &pair).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    assert!(html.contains("dash-app") && html.contains("id=\"connections\"") && html.contains("id=\"events\""));
    assert!(!html.contains("http://") || !html.contains("cdn"), "no external assets");

    // A forged cookie (later expiry, old signature) is not a session.
    let (expiry, sig) = pair.trim_start_matches("atlasgate_admin=").split_once('.').unwrap();
    let forged = format!("atlasgate_admin={}.{sig}", expiry.parse::<i64>().unwrap() + 1000);
    let html = app.client.get(app.url("/admin")).header("cookie", forged).send().await.unwrap().text().await.unwrap();
    assert!(!html.contains("dash-app"));

    // Logout clears it.
    let resp = app.client.post(app.url("/admin/logout")).header("cookie", &pair).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    assert!(session_cookie(&resp).unwrap().contains("Max-Age=0"));
}

// ------------------------------------------------------------ browser

struct Driver {
    child: std::process::Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// chromedriver on a free port, or `None` (skip) outside CI when it is missing.
async fn chromedriver() -> Option<Driver> {
    if !std::path::Path::new("/usr/bin/chromedriver").exists() {
        if std::env::var_os("CI").is_some() {
            panic!("/usr/bin/chromedriver is missing, and CI requires the browser tests");
        }
        eprintln!("skipping browser test: /usr/bin/chromedriver is not installed");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = std::process::Command::new("/usr/bin/chromedriver")
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Owned by the guard from here on: killed and reaped on every path.
    let driver = Driver { child, port, _profile: tempfile::tempdir().unwrap() };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Some(driver);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start");
}

async fn browser(driver: &Driver) -> fantoccini::Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
                     format!("--user-data-dir={}", driver._profile.path().display())]
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    fantoccini::ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .unwrap()
}

#[tokio::test]
async fn browser_login_dashboard_and_logout() {
    let Some(driver) = chromedriver().await else { return };
    let app = TestApp::spawn().await;
    app.create_app("browser-app").await;
    let c = browser(&driver).await;
    let result = async {
        use fantoccini::Locator;
        c.goto(&app.url("/admin")).await?;
        c.find(Locator::Css("#token")).await?.send_keys("wrong-token").await?;
        c.find(Locator::Css("#sign-in")).await?.click().await?;
        let err = c.wait().for_element(Locator::Css("#login-error")).await?;
        assert!(err.text().await?.contains("not the admin token"));

        c.find(Locator::Css("#token")).await?.send_keys(&app.admin_token).await?;
        c.find(Locator::Css("#sign-in")).await?.click().await?;
        let apps = c.wait().for_element(Locator::Css("#apps")).await?;
        assert!(apps.text().await?.contains("browser-app"));
        assert_eq!(c.current_url().await?.path(), "/admin");
        // HttpOnly: scripts cannot read the session.
        let cookies = c.execute("return document.cookie", vec![]).await?;
        assert_eq!(cookies, json!(""));
        // A reload keeps the session.
        c.refresh().await?;
        c.wait().for_element(Locator::Css("#apps")).await?;

        c.find(Locator::Css("#logout")).await?.click().await?;
        c.wait().for_element(Locator::Css("#token")).await?;
        let source = c.source().await?;
        assert!(!source.contains("browser-app"));
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    c.close().await.ok();
    result.unwrap();
}

async fn logged_in_cookie(app: &TestApp) -> String {
    let resp = app.client.post(app.url("/admin/login")).form(&[("token", app.admin_token.as_str())]).send().await.unwrap();
    session_cookie(&resp).unwrap().split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn dashboard_shows_connection_health_and_events_escaped() {
    for backend in crate::helpers::backends() {
        let app = TestApp::spawn_on(backend).await;
        let (app_id, _) = app.create_app("<script>alert(1)</script>").await;
        let cookie = logged_in_cookie(&app).await;
        let html = app.client.get(app.url("/admin")).header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
        assert!(html.contains("No connections yet") && html.contains("No events yet"));
        assert!(!html.contains("<script>alert(1)</script>"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));

        let now = atlasgate::store::now();
        for (id, owner, status, err) in [
            ("c-ok", "team:1", "active", None),
            ("c-reauth", "team:2", "needs_reauth", None),
            ("c-retry", "team:3", "active", Some("timeout talking to Atlassian")),
        ] {
            sqlx::query(
                "INSERT INTO connections (id, app_id, owner, profile, status, account_email, site_url, last_refresh_error, refresh_issued_at, connected_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, 'jira', $4, 'ada@example.com', 'https://acme.atlassian.net', $5, $6, $6, $6, $6)",
            )
            .bind(id)
            .bind(&app_id)
            .bind(owner)
            .bind(status)
            .bind(err.map(str::to_string))
            .bind(now)
            .execute(app.store.pool())
            .await
            .unwrap();
        }
        atlasgate::store::events::insert(
            app.store.pool(),
            atlasgate::store::events::NewEvent {
                app_id: &app_id,
                connection_id: Some("c-reauth"),
                event_type: "connection.needs_reauth",
                payload: json!({}),
            },
        )
        .await
        .unwrap();

        let html = app.client.get(app.url("/admin")).header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
        let row = |id: &str| {
            let start = html.find(&format!("data-connection=\"{id}\"")).unwrap_or_else(|| panic!("no row {id}"));
            html[start..].split("</tr>").next().unwrap().to_string()
        };
        assert!(row("c-ok").contains("healthy") && row("c-ok").contains("team:1"));
        assert!(row("c-reauth").contains("needs re-consent"));
        assert!(row("c-retry").contains("refresh retrying"));
        assert!(html.contains("ada@example.com") && html.contains("https://acme.atlassian.net"));
        let events = &html[html.find("id=\"events\"").unwrap()..];
        assert!(events.contains("connection.needs_reauth") && events.contains("pending"));
    }
}

#[tokio::test]
async fn guessing_the_admin_token_is_rate_limited() {
    let app = TestApp::spawn().await;
    let mut statuses = Vec::new();
    for i in 0..12 {
        let resp = app.client.post(app.url("/admin/login")).form(&[("token", format!("guess-{i}"))]).send().await.unwrap();
        if resp.status() == 429 {
            let wait: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
            assert!(wait >= 1, "Retry-After says how long to wait");
        }
        statuses.push(resp.status().as_u16());
    }
    assert!(statuses[..5].iter().all(|s| *s == 401), "a few mistypes are fine: {statuses:?}");
    assert!(statuses[5..].contains(&429), "a run of guesses is cut off: {statuses:?}");
    // The limit is on the login form only: the app API and other pages still answer.
    assert_eq!(app.get("/healthz", None).await.status(), 200);
}
