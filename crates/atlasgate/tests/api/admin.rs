//! Admin: the token gate of the JSON API and the dashboard (HTTP and a real
//! headless Chromium).

use atlasgate::ids::ConnectionId;
use serde_json::json;

use crate::helpers::{assert_problem, chromedriver, TestApp, TestOptions};

#[tokio::test]
async fn admin_routes_are_absent_without_a_token() {
    let app = TestApp::spawn_with(
        TestOptions {
            admin_token: None,
            ..Default::default()
        },
        |_| {},
    )
    .await;
    assert_problem(
        app.get("/admin/api/apps", Some("anything-at-all-here"))
            .await,
        404,
    )
    .await;
    assert_problem(
        app.post_json("/admin/api/apps", None, &json!({ "name": "x" }))
            .await,
        404,
    )
    .await;
    assert_eq!(app.get("/admin", None).await.status(), 404);
    let resp = app
        .client
        .post(app.url("/admin/login"))
        .form(&[("token", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn a_missing_or_wrong_admin_token_is_401() {
    let app = TestApp::spawn().await;
    assert_problem(app.get("/admin/api/apps", None).await, 401).await;
    let wrong = format!("{}x", app.admin_token);
    assert_problem(app.get("/admin/api/apps", Some(&wrong)).await, 401).await;
    assert_problem(
        app.post_json("/admin/api/apps", Some("short"), &json!({ "name": "x" }))
            .await,
        401,
    )
    .await;
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
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let html = resp.text().await.unwrap();
    assert!(html.contains("name=\"token\"") && !html.contains("dash-app"));

    // Wrong token: 401, the form again, no cookie.
    let resp = app
        .client
        .post(app.url("/admin/login"))
        .form(&[("token", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(session_cookie(&resp).is_none());

    let resp = app
        .client
        .post(app.url("/admin/login"))
        .form(&[("token", app.admin_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/admin");
    let cookie = session_cookie(&resp).unwrap();
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && cookie.contains("Path=/admin"),
        "{cookie}"
    );
    assert!(!cookie.contains(&app.admin_token));
    let pair = cookie.split(';').next().unwrap().to_string();

    let resp = app
        .client
        .get(app.url("/admin"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("dash-app")
            && html.contains("id=\"connections\"")
            && html.contains("id=\"syncs\"")
            && html.contains("id=\"deliveries\"")
    );
    assert!(
        !html.contains("http://") || !html.contains("cdn"),
        "no external assets"
    );

    // A forged cookie (later expiry, old signature) is not a session.
    let (expiry, sig) = pair
        .trim_start_matches("atlasgate_admin=")
        .split_once('.')
        .unwrap();
    let forged = format!(
        "atlasgate_admin={}.{sig}",
        expiry.parse::<i64>().unwrap() + 1000
    );
    let html = app
        .client
        .get(app.url("/admin"))
        .header("cookie", forged)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("dash-app"));

    // Logout clears it.
    let resp = app
        .client
        .post(app.url("/admin/logout"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert!(session_cookie(&resp).unwrap().contains("Max-Age=0"));
}

// ------------------------------------------------------------ browser

#[tokio::test]
async fn browser_login_dashboard_and_logout() {
    let Some(driver) = chromedriver().await else {
        return;
    };
    let app = TestApp::spawn().await;
    let (app_id, _) = app.create_app("browser-app").await;
    let c = driver.browser().await;
    let result = async {
        use fantoccini::Locator;
        c.goto(&app.url("/admin")).await?;
        c.find(Locator::Css("#token"))
            .await?
            .send_keys("wrong-token")
            .await?;
        c.find(Locator::Css("#sign-in")).await?.click().await?;
        let err = c.wait().for_element(Locator::Css("#login-error")).await?;
        assert!(err.text().await?.contains("not the admin token"));

        c.find(Locator::Css("#token"))
            .await?
            .send_keys(&app.admin_token)
            .await?;
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

        // Delete app asks first; a wrong name changes nothing, the right one deletes.
        c.find(Locator::Css(&format!("#delete-{app_id}")))
            .await?
            .click()
            .await?;
        let input = c.wait().for_element(Locator::Css("#confirm-input")).await?;
        input.send_keys("not-the-name").await?;
        c.find(Locator::Css("#confirm-submit"))
            .await?
            .click()
            .await?;
        c.wait().for_element(Locator::Css("#confirm-error")).await?;
        let input = c.find(Locator::Css("#confirm-input")).await?;
        input.send_keys("browser-app").await?;
        c.find(Locator::Css("#confirm-submit"))
            .await?
            .click()
            .await?;
        let apps = c.wait().for_element(Locator::Css("#apps")).await?;
        assert!(!apps.text().await?.contains("browser-app"));
        assert_eq!(c.current_url().await?.path(), "/admin");

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
    let resp = app
        .client
        .post(app.url("/admin/login"))
        .form(&[("token", app.admin_token.as_str())])
        .send()
        .await
        .unwrap();
    session_cookie(&resp)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn dashboard_shows_connection_health_and_events_escaped() {
    for backend in crate::helpers::backends() {
        let app = TestApp::spawn_on(backend).await;
        let (app_id, _) = app.create_app("<script>alert(1)</script>").await;
        let cookie = logged_in_cookie(&app).await;
        let html = app
            .client
            .get(app.url("/admin"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            html.contains("No connections yet")
                && html.contains("No syncs yet")
                && html.contains("No deliveries yet")
        );
        assert!(!html.contains("<script>alert(1)</script>"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));

        let now = atlasgate::store::now();
        for (id, owner, status, err) in [
            ("c-ok", "team:1", "active", None),
            ("c-reauth", "team:2", "needs_reauth", None),
            (
                "c-retry",
                "team:3",
                "active",
                Some("timeout talking to Atlassian"),
            ),
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
                connection_id: Some(&ConnectionId::new("c-reauth")),
                event_type: "connection.needs_reauth",
                payload: json!({}),
            },
        )
        .await
        .unwrap();

        let html = app
            .client
            .get(app.url("/admin"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let row = |id: &str| {
            let start = html
                .find(&format!("data-connection=\"{id}\""))
                .unwrap_or_else(|| panic!("no row {id}"));
            html[start..].split("</tr>").next().unwrap().to_string()
        };
        assert!(row("c-ok").contains("healthy") && row("c-ok").contains("team:1"));
        assert!(row("c-reauth").contains("needs re-consent"));
        assert!(row("c-retry").contains("refresh retrying"));
        assert!(html.contains("ada@example.com") && html.contains("https://acme.atlassian.net"));
        let events = &html[html.find("id=\"deliveries\"").unwrap()..];
        assert!(events.contains("connection.needs_reauth") && events.contains("pending"));
    }
}

/// The `<tr>` of the dashboard whose `attr` is `value`.
fn dashboard_row(html: &str, attr: &str, value: &str) -> Option<String> {
    let start = html.find(&format!("{attr}=\"{value}\""))?;
    Some(html[start..].split("</tr>").next().unwrap().to_string())
}

#[tokio::test]
async fn dashboard_lists_syncs_with_progress_and_deliveries_with_state() {
    use std::sync::atomic::Ordering;

    use crate::events::{events, setup, wait_for};
    use crate::sync::{create_sync, project_keys, sim_patch, wait_idle};

    for backend in crate::helpers::backends() {
        let s = setup(
            backend,
            atlassim::SimConfig {
                sites: 1,
                projects: 1,
                issues: 7,
                ..Default::default()
            },
        )
        .await;
        let keys = project_keys(&s);
        let jql = format!("project = {}", keys[0]);
        let created = create_sync(
            &s,
            json!({ "jql": jql, "webhooks": true, "interval_s": 3600 }),
        )
        .await;
        let id = created["id"].as_str().unwrap().to_string();
        let done = wait_idle(&s, &id, 0, 60).await;
        assert_eq!(done["issues_synced"], 7, "{done}");
        let cookie = logged_in_cookie(&s.app).await;
        let dashboard = || async {
            s.app
                .client
                .get(s.app.url("/admin"))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        };

        // The sync: owner, site, JQL, state, issue count, last run, webhook with its expiry.
        let html = dashboard().await;
        let row = dashboard_row(&html, "data-sync", &id)
            .unwrap_or_else(|| panic!("no sync row in {html}"));
        assert!(
            row.contains("events-app") && row.contains("team:1"),
            "{row}"
        );
        assert!(row.contains(&jql) && row.contains(">idle<"), "{row}");
        assert!(row.contains("<td class=\"issues\">7</td>"), "{row}");
        assert!(
            row.contains("1 pass(es) done") && row.contains("expires "),
            "{row}"
        );
        assert!(done["webhook"]["id"].is_i64(), "{done}");
        assert!(
            row.contains(&done["last_run_at"].as_str().unwrap().to_string()),
            "{row}"
        );

        // Deliveries: `sync.completed` reached the receiver and shows delivered.
        let html = wait_for(20, "sync.completed to show as delivered", || async {
            let html = dashboard().await;
            let ev = events(&s.app, &s.key).await;
            let completed = ev.iter().find(|e| e["type"] == "sync.completed")?;
            let row = dashboard_row(&html, "data-event", completed["id"].as_str().unwrap())?;
            row.contains(">delivered<").then_some(html)
        })
        .await;
        let section = &html[html.find("id=\"deliveries\"").unwrap()..];
        assert!(section.contains("connection.created") && section.contains("events-app"));

        // A delivery that fails stays pending, with its attempts, error and next attempt.
        s.receiver.down.store(true, Ordering::SeqCst);
        let (_, raw) = crate::sync::local_issues(&s).await;
        let key = raw.values().next().unwrap()["key"]
            .as_str()
            .unwrap()
            .to_string();
        sim_patch(
            &s,
            &key,
            json!({ "summary": "Changed while the app is down" }),
        )
        .await;
        let row = wait_for(30, "issue.updated to show a failed attempt", || async {
            let html = dashboard().await;
            let ev = events(&s.app, &s.key).await;
            let updated = ev.iter().find(|e| e["type"] == "issue.updated")?;
            let row = dashboard_row(&html, "data-event", updated["id"].as_str().unwrap())?;
            row.contains("503").then_some(row)
        })
        .await;
        assert!(row.contains(">pending<") && row.contains("team:1"), "{row}");
        assert!(s.receiver.refused.load(Ordering::SeqCst) >= 1);

        // Never a secret: not the app key, not the signing secret, no token.
        let html = dashboard().await;
        assert!(!html.contains(&s.key) && !html.contains(&s.secret) && !html.contains("whsec_"));
        assert!(!html.contains("access_token") && !html.contains("refresh_token"));
        s.receiver.down.store(false, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn guessing_the_admin_token_is_rate_limited() {
    let app = TestApp::spawn().await;
    let mut statuses = Vec::new();
    for i in 0..12 {
        let resp = app
            .client
            .post(app.url("/admin/login"))
            .form(&[("token", format!("guess-{i}"))])
            .send()
            .await
            .unwrap();
        if resp.status() == 429 {
            let wait: u64 = resp.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(wait >= 1, "Retry-After says how long to wait");
        }
        statuses.push(resp.status().as_u16());
    }
    assert!(
        statuses[..5].iter().all(|s| *s == 401),
        "a few mistypes are fine: {statuses:?}"
    );
    assert!(
        statuses[5..].contains(&429),
        "a run of guesses is cut off: {statuses:?}"
    );
    // The limit is on the login form only: the app API and other pages still answer.
    assert_eq!(app.get("/healthz", None).await.status(), 200);
}
