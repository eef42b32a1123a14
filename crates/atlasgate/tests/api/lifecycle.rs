//! The app lifecycle (docs/design.md §13): update, more keys, revocation
//! across processes, webhook-secret rotation checked by the official
//! `standardwebhooks` library with the old and the new secret, app delete,
//! and the dashboard's CSRF-protected buttons.

use atlasgate::store::Backend;
use serde_json::{json, Value};

use crate::connect::{browser, consent, new_session};
use crate::events::{python_verify, record_issue_updated, setup, wait_for};
use crate::helpers::{assert_problem, backends, TestApp};

/// `PATCH path` with the admin token.
pub async fn admin_patch(app: &TestApp, path: &str, body: &Value) -> reqwest::Response {
    app.client
        .patch(app.url(path))
        .bearer_auth(&app.admin_token)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// `DELETE path` with the admin token.
pub async fn admin_delete(app: &TestApp, path: &str) -> reqwest::Response {
    app.delete(path, &app.admin_token).await
}

/// The audit records, newest first (`query` without the `?`).
pub async fn audit(app: &TestApp, query: &str) -> Vec<Value> {
    let resp = app.admin_get(&format!("/admin/api/audit?{query}")).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    body["items"].as_array().unwrap().clone()
}

pub fn kinds(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| r["kind"].as_str().unwrap().to_string())
        .collect()
}

/// Connect `owner` with `profile` to the site `cloud_id` (the grant holds
/// no other): the connection id.
pub async fn connect_profile(
    app: &TestApp,
    key: &str,
    owner: &str,
    profile: &str,
    cloud_id: &str,
) -> String {
    let session = new_session(app, key, json!({ "owner": owner, "profile": profile })).await;
    let mut b = browser(app);
    consent(app, &[cloud_id.to_string()]);
    let page = b
        .get(session["connect_url"].as_str().unwrap())
        .await
        .unwrap();
    assert!(page.body.contains("Connected"), "{}", page.body);
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("owner", owner)
        .append_pair("profile", profile)
        .finish();
    app.get_ok(&format!("/v1/connections?{q}"), key).await["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn list_status(app: &TestApp, address: &str, key: &str) -> u16 {
    app.client
        .get(format!("{address}/v1/connections"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn update_and_keys(backend: Backend) {
    let app = TestApp::spawn_on(backend).await;
    let (id, first_key) = app.create_app("lifecycle-app").await;
    app.create_app("taken-name").await;

    // Update by name: name, webhook URL (a secret is created with it), origins.
    let resp = admin_patch(
        &app,
        "/admin/api/apps/lifecycle-app",
        &json!({ "name": "renamed", "webhook_url": "https://hooks.example.com/in", "return_origins": ["https://app.example.com"] }),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["name"], "renamed");
    assert_eq!(body["webhook_url"], "https://hooks.example.com/in");
    assert_eq!(body["return_origins"], json!(["https://app.example.com"]));
    assert!(body["webhook_secret"]
        .as_str()
        .unwrap()
        .starts_with("whsec_"));

    // Bad input: every field named, nothing changes.
    let bad = admin_patch(
        &app,
        &format!("/admin/api/apps/{id}"),
        &json!({ "name": "", "webhook_url": "ftp://x", "return_origins": ["https://a.example.com/path"] }),
    )
    .await;
    let problem = assert_problem(bad, 422).await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["name", "webhook_url", "return_origins[0]"],
        "{problem}"
    );
    assert_problem(
        admin_patch(
            &app,
            &format!("/admin/api/apps/{id}"),
            &json!({ "name": "taken-name" }),
        )
        .await,
        409,
    )
    .await;
    assert_problem(
        admin_patch(
            &app,
            &format!("/admin/api/apps/{id}"),
            &json!({ "colour": "red" }),
        )
        .await,
        422,
    )
    .await;
    assert_problem(
        admin_patch(&app, "/admin/api/apps/no-such-app", &json!({ "name": "x" })).await,
        404,
    )
    .await;
    let apps: Value = app.admin_get("/admin/api/apps").await.json().await.unwrap();
    let ours = apps["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(ours["name"], "renamed");
    assert_eq!(ours["webhook_url"], "https://hooks.example.com/in");
    // `null` removes the webhook URL; absent fields stay.
    let resp = admin_patch(
        &app,
        &format!("/admin/api/apps/{id}"),
        &json!({ "webhook_url": null }),
    )
    .await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["webhook_url"], Value::Null);
    assert_eq!(body["name"], "renamed");
    assert_eq!(body["webhook_secret"], Value::Null);

    // A second key: shown once, listed by prefix only, works at once.
    let resp = app
        .admin_post_json(&format!("/admin/api/apps/{id}/keys"), &json!({}))
        .await;
    assert_eq!(resp.status(), 201);
    let created: Value = resp.json().await.unwrap();
    let second = created["key"].as_str().unwrap().to_string();
    let second_id = created["id"].as_str().unwrap().to_string();
    assert!(second.starts_with("agk_") && second_id.starts_with("key_"));
    assert_eq!(list_status(&app, &app.address, &second).await, 200);
    assert_eq!(list_status(&app, &app.address, &first_key).await, 200);
    let listed = app.admin_get(&format!("/admin/api/apps/{id}/keys")).await;
    assert_eq!(listed.status(), 200);
    let text = listed.text().await.unwrap();
    assert!(
        !text.contains(&second[4..]) && !text.contains(&first_key[4..]),
        "{text}"
    );
    let keys: Value = serde_json::from_str(&text).unwrap();
    let keys = keys.as_array().unwrap();
    assert_eq!(keys.len(), 2, "{text}");
    let listed_second = keys.iter().find(|k| k["id"] == second_id.as_str()).unwrap();
    assert_eq!(listed_second["prefix"], &second[..12]);
    assert!(second.starts_with(listed_second["prefix"].as_str().unwrap()));
    // Used just now: `last_used_at` is set (written at most once a minute).
    assert!(listed_second["last_used_at"].is_string(), "{listed_second}");

    // Another process on the same database authenticates (and caches) the key.
    let other = app.spawn_other(app.keyring.clone()).await;
    assert_eq!(list_status(&app, &other.address, &second).await, 200);

    // Revoke: 401 at once here, within 10 s there; the other key still works.
    let resp = admin_delete(&app, &format!("/admin/api/apps/{id}/keys/{second_id}")).await;
    assert_eq!(resp.status(), 204);
    assert_problem(app.get("/v1/connections", Some(&second)).await, 401).await;
    wait_for(
        11,
        "the other process to refuse the revoked key",
        || async { (list_status(&app, &other.address, &second).await == 401).then_some(()) },
    )
    .await;
    assert_eq!(list_status(&app, &other.address, &first_key).await, 200);
    assert_eq!(list_status(&app, &app.address, &first_key).await, 200);
    // Revoked again, or another app's key through this app: 404.
    assert_problem(
        admin_delete(&app, &format!("/admin/api/apps/{id}/keys/{second_id}")).await,
        404,
    )
    .await;
    let (other_app, _) = app.create_app("someone-else").await;
    let theirs: Value = app
        .admin_get(&format!("/admin/api/apps/{other_app}/keys"))
        .await
        .json()
        .await
        .unwrap();
    let their_key = theirs[0]["id"].as_str().unwrap().to_string();
    assert_problem(
        admin_delete(&app, &format!("/admin/api/apps/{id}/keys/{their_key}")).await,
        404,
    )
    .await;
    assert_eq!(
        app.admin_get(&format!("/admin/api/apps/{other_app}/keys"))
            .await
            .json::<Value>()
            .await
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let records = audit(&app, &format!("app={id}")).await;
    let k = kinds(&records);
    for want in ["app.created", "app.updated", "key.created", "key.revoked"] {
        assert!(k.iter().any(|x| x == want), "{want} missing from {k:?}");
    }
    let revoked = records.iter().find(|r| r["kind"] == "key.revoked").unwrap();
    assert_eq!(revoked["key_id"], second_id.as_str());
    assert_eq!(revoked["client_ip"], "127.0.0.1");
    assert_eq!(revoked["detail"]["via"], "api");
}

#[tokio::test]
async fn apps_are_updated_and_keys_added_listed_and_revoked_across_processes() {
    for backend in backends() {
        update_and_keys(backend).await;
    }
}

#[tokio::test]
async fn a_rotated_secret_signs_next_to_the_old_one_during_the_overlap() {
    let s = setup(Backend::Sqlite, atlassim::SimConfig::default()).await;
    let app = &s.app;
    let old = s.secret.clone();
    record_issue_updated(&s, 1).await;
    wait_for(20, "the first delivery", || async {
        (s.receiver.received().len() >= 2).then_some(())
    })
    .await;
    let before = s.receiver.received().len();

    let resp = app
        .admin_post_json("/admin/api/apps/events-app/webhook-secret", &json!({}))
        .await;
    assert_eq!(resp.status(), 201);
    let new = resp.json::<Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(new.starts_with("whsec_") && new != old);

    record_issue_updated(&s, 2).await;
    let got = wait_for(20, "the delivery after the rotation", || async {
        let r = s.receiver.received();
        (r.len() > before).then(|| r[before].clone())
    })
    .await;
    let sig = &got.headers["webhook-signature"];
    assert_eq!(sig.split(' ').count(), 2, "{sig}");
    let id = &got.headers["webhook-id"];
    let ts: i64 = got.headers["webhook-timestamp"].parse().unwrap();
    for secret in [&new, &old] {
        assert!(atlasgate::events::signing::verify(
            secret,
            id,
            ts,
            got.body.as_bytes(),
            sig
        ));
    }
    // The official library accepts the delivery with either secret.
    python_verify(&new, std::slice::from_ref(&got));
    python_verify(&old, std::slice::from_ref(&got));

    // Once the overlap is over, only the new secret signs.
    sqlx::query("UPDATE apps SET webhook_secret_old_until = $1")
        .bind(atlasgate::store::now() - 1)
        .execute(app.store.pool())
        .await
        .unwrap();
    let before = s.receiver.received().len();
    record_issue_updated(&s, 3).await;
    let got = wait_for(20, "the delivery after the overlap", || async {
        let r = s.receiver.received();
        (r.len() > before).then(|| r[before].clone())
    })
    .await;
    let sig = &got.headers["webhook-signature"];
    let id = &got.headers["webhook-id"];
    let ts: i64 = got.headers["webhook-timestamp"].parse().unwrap();
    assert_eq!(sig.split(' ').count(), 1, "{sig}");
    assert!(atlasgate::events::signing::verify(
        &new,
        id,
        ts,
        got.body.as_bytes(),
        sig
    ));
    assert!(!atlasgate::events::signing::verify(
        &old,
        id,
        ts,
        got.body.as_bytes(),
        sig
    ));

    // Neither secret is in the audit trail or the stored rows in clear.
    let records = audit(app, "kind=webhook_secret.rotated").await;
    assert_eq!(records.len(), 1);
    let all = serde_json::to_string(&audit(app, "limit=200").await).unwrap();
    for secret in [&old, &new] {
        assert!(!all.contains(&secret[6..]), "a secret in the audit trail");
    }
}

async fn delete_app(backend: Backend) {
    use crate::sync::{create_sync, project_keys, wait_idle};

    let s = setup(backend, atlassim::SimConfig::default()).await;
    let app = &s.app;
    let keys = project_keys(&s);
    let created = create_sync(
        &s,
        json!({ "jql": format!("project = {}", keys[0]), "webhooks": true, "interval_s": 3600 }),
    )
    .await;
    let sync = created["id"].as_str().unwrap().to_string();
    let done = wait_idle(&s, &sync, 0, 60).await;
    assert!(done["webhook"]["id"].is_i64(), "{done}");
    assert!(done["issues_synced"].as_i64().unwrap() > 0, "{done}");
    // Positive controls: a Jira webhook at atlassim, synced issues, a pending event.
    assert_eq!(
        app.sim_webhooks(&s.cloud_id).await["values"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    s.receiver
        .down
        .store(true, std::sync::atomic::Ordering::SeqCst);
    record_issue_updated(&s, 1).await;
    // A bystander app with its own connection.
    let (_, bystander_key) = app.create_app("bystander").await;
    let bystander = crate::connect::connect(
        app,
        &bystander_key,
        "team:1",
        std::slice::from_ref(&s.cloud_id),
        Some(&s.cloud_id),
    )
    .await;

    let app_id: String = sqlx::query_scalar("SELECT id FROM apps WHERE name = 'events-app'")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    let resp = admin_delete(app, "/admin/api/apps/events-app").await;
    assert_eq!(resp.status(), 204);

    // Its Jira webhook was deleted at Atlassian (while the token still worked).
    assert_eq!(app.sim_webhooks(&s.cloud_id).await["values"], json!([]));
    // Its key is refused at once, and nothing of it is left.
    assert_problem(app.get("/v1/connections", Some(&s.key)).await, 401).await;
    for table in [
        "app_keys",
        "connections",
        "syncs",
        "events",
        "connect_sessions",
    ] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE app_id = $1"))
            .bind(&app_id)
            .fetch_one(app.store.pool())
            .await
            .unwrap();
        assert_eq!(n, 0, "{table} still holds rows of the deleted app");
    }
    let issues: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM synced_issues WHERE connection_id = $1")
            .bind(&s.connection)
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    assert_eq!(issues, 0);
    assert_problem(admin_delete(app, "/admin/api/apps/events-app").await, 404).await;
    // The bystander is untouched.
    assert_eq!(
        app.get_ok(&format!("/v1/connections/{bystander}"), &bystander_key)
            .await["status"],
        "active"
    );
    let records = audit(app, &format!("app={app_id}")).await;
    let k = kinds(&records);
    assert_eq!(k[0], "app.deleted", "{k:?}");
    assert!(k.iter().any(|x| x == "connection.disconnected"), "{k:?}");
    assert_eq!(records[0]["detail"]["connections"], 1);
}

#[tokio::test]
async fn deleting_an_app_disconnects_and_removes_everything_of_it() {
    for backend in backends() {
        delete_app(backend).await;
    }
}

/// A signed-in dashboard session: the cookie and the page's CSRF token.
pub async fn dashboard_session(app: &TestApp) -> (String, String, String) {
    let resp = app
        .client
        .post(app.url("/admin/login"))
        .form(&[("token", app.admin_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let cookie = resp
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
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
    let marker = "name=\"csrf\" value=\"";
    let start = html
        .find(marker)
        .map(|i| i + marker.len())
        .unwrap_or_else(|| panic!("no CSRF token in {html}"));
    let csrf = html[start..].split('"').next().unwrap().to_string();
    (cookie, csrf, html)
}

#[tokio::test]
async fn dashboard_buttons_need_the_session_csrf_token() {
    let app = TestApp::spawn().await;
    let (id, key) = app.create_app("dash-app").await;
    let (cookie, csrf, html) = dashboard_session(&app).await;
    let keys: Value = app
        .admin_get(&format!("/admin/api/apps/{id}/keys"))
        .await
        .json()
        .await
        .unwrap();
    let key_id = keys[0]["id"].as_str().unwrap().to_string();
    assert!(html.contains(&format!("id=\"revoke-{key_id}\"")), "{html}");
    assert!(html.contains(&format!("id=\"delete-{id}\"")));
    assert!(html.contains("id=\"audit\""));
    let revoke = app.url(&format!("/admin/apps/{id}/keys/{key_id}/revoke"));
    let post = |form: Vec<(&'static str, String)>, cookie: Option<String>| {
        let mut req = app.client.post(revoke.clone()).form(&form);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        req.send()
    };

    // No token, a wrong one, or no session: refused, the key still works.
    // (A token of another session is refused too: `session` unit tests.)
    for (form, c, status) in [
        (vec![], Some(cookie.clone()), 403),
        (vec![("csrf", "00".repeat(32))], Some(cookie.clone()), 403),
        (
            vec![("csrf", format!("{csrf}00"))],
            Some(cookie.clone()),
            403,
        ),
        (vec![("csrf", csrf.clone())], None, 401),
    ] {
        let resp = post(form, c).await.unwrap();
        assert_eq!(resp.status(), status);
        assert_eq!(
            list_status(&app, &app.address, &key).await,
            200,
            "a refused form changed something"
        );
    }
    let delete = app
        .client
        .post(app.url(&format!("/admin/apps/{id}/delete")))
        .header("cookie", &cookie)
        .form(&[("csrf", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 403);
    assert_eq!(list_status(&app, &app.address, &key).await, 200);

    // With the token: a second key is made and shown once, the secret is
    // rotated and shown once, the first key revoked, the app deleted.
    let created = app
        .client
        .post(app.url(&format!("/admin/apps/{id}/keys")))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    assert_eq!(created.headers()["cache-control"], "no-store");
    let page = created.text().await.unwrap();
    let second = page
        .split("id=\"new-key\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or_else(|| panic!("no new key in {page}"))
        .to_string();
    assert!(second.starts_with("agk_"), "{second}");
    assert_eq!(list_status(&app, &app.address, &second).await, 200);
    let rotated = app
        .client
        .post(app.url(&format!("/admin/apps/{id}/webhook-secret")))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), 200);
    assert_eq!(rotated.headers()["cache-control"], "no-store");
    assert!(rotated
        .text()
        .await
        .unwrap()
        .contains("id=\"new-secret\">whsec_"));
    // (Each destructive one after its typed confirmation: the next test.)
    let prefix = keys[0]["prefix"].as_str().unwrap().to_string();
    let resp = post(
        vec![("csrf", csrf.clone()), ("confirm", prefix)],
        Some(cookie.clone()),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(list_status(&app, &app.address, &key).await, 401);
    assert_eq!(
        list_status(&app, &app.address, &second).await,
        200,
        "revoking one key revoked the other"
    );
    let resp = app
        .client
        .post(app.url(&format!("/admin/apps/{id}/delete")))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("confirm", "dash-app")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let apps: Value = app.admin_get("/admin/api/apps").await.json().await.unwrap();
    assert_eq!(apps["apps"], json!([]));
    let k = kinds(&audit(&app, &format!("app={id}")).await);
    assert_eq!(
        k[..4],
        [
            "app.deleted",
            "key.revoked",
            "webhook_secret.rotated",
            "key.created"
        ],
        "{k:?}"
    );
    let rec = &audit(&app, "kind=key.revoked").await[0];
    assert_eq!(rec["detail"]["via"], "dashboard");
}

/// The hidden CSRF token and the action of the confirmation form on `html`.
fn confirm_form(html: &str) -> (String, String) {
    let value = |marker: &str| {
        let start = html
            .find(marker)
            .map(|i| i + marker.len())
            .unwrap_or_else(|| panic!("no {marker} in {html}"));
        html[start..].split('"').next().unwrap().to_string()
    };
    (
        value("name=\"csrf\" value=\""),
        value("<form class=\"confirm\" method=\"post\" action=\""),
    )
}

#[tokio::test]
async fn dashboard_destructive_buttons_ask_for_a_typed_confirmation() {
    let app = TestApp::spawn().await;
    let (id, key) = app.create_app("confirm-app").await;
    let (_, bystander_key) = app.create_app("bystander").await;
    let (cookie, csrf, _) = dashboard_session(&app).await;
    let keys: Value = app
        .admin_get(&format!("/admin/api/apps/{id}/keys"))
        .await
        .json()
        .await
        .unwrap();
    let key_id = keys[0]["id"].as_str().unwrap().to_string();
    let prefix = keys[0]["prefix"].as_str().unwrap().to_string();
    let send = |path: String, form: Vec<(&'static str, String)>, with_cookie: bool| {
        let mut req = app.client.post(app.url(&path)).form(&form);
        if with_cookie {
            req = req.header("cookie", cookie.clone());
        }
        req.send()
    };
    let revoke = format!("/admin/apps/{id}/keys/{key_id}/revoke");
    let delete = format!("/admin/apps/{id}/delete");

    for (path, expected, consequence) in [
        (&revoke, prefix.as_str(), "stops working"),
        (&delete, "confirm-app", "disconnected"),
    ] {
        // The dashboard's button only asks: a page that names what goes,
        // with a form that needs the typed value, and nothing changed.
        let asked = send(path.clone(), vec![("csrf", csrf.clone())], true)
            .await
            .unwrap();
        assert_eq!(asked.status(), 200, "{path}");
        assert_eq!(asked.headers()["cache-control"], "no-store");
        let html = asked.text().await.unwrap();
        assert!(html.contains(consequence), "{html}");
        assert!(html.contains(&format!("<code>{expected}</code>")), "{html}");
        assert!(html.contains("name=\"confirm\""), "{html}");
        let (form_csrf, action) = confirm_form(&html);
        assert_eq!(
            form_csrf, csrf,
            "the confirmation form keeps the CSRF token"
        );
        assert!(action.ends_with(path.as_str()), "{action} for {path}");
        assert_eq!(list_status(&app, &app.address, &key).await, 200);

        // A wrong or empty entry: the page again with the reason, nothing changed.
        let longer = format!("{expected}x");
        for typed in ["", "something else", longer.as_str()] {
            let wrong = send(
                path.clone(),
                vec![("csrf", csrf.clone()), ("confirm", typed.to_string())],
                true,
            )
            .await
            .unwrap();
            assert_eq!(wrong.status(), 422, "{path} {typed:?}");
            let html = wrong.text().await.unwrap();
            assert!(html.contains("id=\"confirm-error\""), "{html}");
            assert_eq!(list_status(&app, &app.address, &key).await, 200);
        }
        // The right entry without the session's CSRF token, or without a session: refused.
        for (form, with_cookie, status) in [
            (vec![("confirm", expected.to_string())], true, 403),
            (
                vec![("csrf", "00".repeat(32)), ("confirm", expected.to_string())],
                true,
                403,
            ),
            (
                vec![("csrf", csrf.clone()), ("confirm", expected.to_string())],
                false,
                401,
            ),
        ] {
            let resp = send(path.clone(), form, with_cookie).await.unwrap();
            assert_eq!(resp.status(), status, "{path}");
            assert_eq!(list_status(&app, &app.address, &key).await, 200);
        }
    }
    let apps: Value = app.admin_get("/admin/api/apps").await.json().await.unwrap();
    assert_eq!(apps["apps"].as_array().unwrap().len(), 2, "{apps}");
    assert!(kinds(&audit(&app, &format!("app={id}")).await)
        .iter()
        .all(|k| k != "key.revoked" && k != "app.deleted"));

    // Confirmed (surrounding spaces are forgiven): the key is revoked, then the app deleted.
    let done = send(
        revoke.clone(),
        vec![("csrf", csrf.clone()), ("confirm", format!(" {prefix} "))],
        true,
    )
    .await
    .unwrap();
    assert_eq!(done.status(), 303);
    assert_eq!(list_status(&app, &app.address, &key).await, 401);
    let done = send(
        delete.clone(),
        vec![("csrf", csrf.clone()), ("confirm", "confirm-app".into())],
        true,
    )
    .await
    .unwrap();
    assert_eq!(done.status(), 303);
    let apps: Value = app.admin_get("/admin/api/apps").await.json().await.unwrap();
    assert_eq!(apps["apps"].as_array().unwrap().len(), 1, "{apps}");
    assert_eq!(apps["apps"][0]["name"], "bystander");
    assert_eq!(list_status(&app, &app.address, &bystander_key).await, 200);
    // Asking about what is gone is a 404, not a confirmation page.
    let gone = send(delete, vec![("csrf", csrf.clone())], true)
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
}

fn cli(args: &[&str], env: &[(&str, String)]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_atlasgate"));
    cmd.args(args)
        .env_clear()
        .current_dir(std::env::temp_dir())
        .stdin(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn cli_ok(args: &[&str], env: &[(&str, String)]) -> String {
    let out = cli(args, env);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "atlasgate {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test]
async fn the_cli_updates_manages_keys_rotates_and_deletes() {
    use secrecy::ExposeSecret;

    let app = TestApp::spawn().await;
    let (key, _connection) = app.connected_app("cli-managed", "team:cli").await;
    let app_id: String = sqlx::query_scalar("SELECT id FROM apps WHERE name = 'cli-managed'")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    let env = vec![
        ("ATLASGATE_DATABASE_URL", app.db.url.clone()),
        (
            "ATLASGATE_ENCRYPTION_KEYS",
            app.keyring.to_env_value().expose_secret().to_string(),
        ),
        ("ATLASGATE_PUBLIC_URL", app.address.clone()),
        ("ATLASSIAN_CLIENT_ID", "atlasgate-dev".to_string()),
        (
            "ATLASSIAN_CLIENT_SECRET",
            "atlasgate-dev-secret".to_string(),
        ),
        ("ATLASSIAN_AUTH_URL", app.sim.auth_url()),
        ("ATLASSIAN_API_URL", app.sim.api_url()),
    ];

    let out = cli_ok(
        &[
            "apps",
            "update",
            "cli-managed",
            "--name",
            "cli-renamed",
            "--webhook-url",
            "https://h.example/in",
        ],
        &env,
    );
    assert!(
        out.contains("app updated: cli-renamed") && out.contains("whsec_"),
        "{out}"
    );
    let out = cli(
        &["apps", "update", "cli-renamed", "--webhook-url", "ftp://x"],
        &env,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--webhook-url"));
    let out = cli(&["apps", "update", "no-such-app", "--name", "x"], &env);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no app with id or name `no-such-app`"));

    let out = cli_ok(&["apps", "keys", "create", "cli-renamed"], &env);
    let new_key = out
        .lines()
        .find_map(|l| {
            l.split_once("store it now): ")
                .map(|(_, k)| k.trim().to_string())
        })
        .unwrap();
    let new_id = out
        .lines()
        .find_map(|l| l.strip_prefix("key created: ").map(str::to_string))
        .unwrap();
    assert_eq!(
        app.get("/v1/connections", Some(&new_key)).await.status(),
        200
    );
    let list = cli_ok(&["apps", "keys", "list", "cli-renamed"], &env);
    assert!(
        list.contains(&new_id) && list.contains(&new_key[..12]),
        "{list}"
    );
    assert!(!list.contains(&new_key[12..]));
    cli_ok(&["apps", "keys", "revoke", "cli-renamed", &new_id], &env);
    // Another process did it: this one lets the key go within the cache's 10 s.
    wait_for(11, "the revoked key to be refused", || async {
        (app.get("/v1/connections", Some(&new_key)).await.status() == 401).then_some(())
    })
    .await;
    let out = cli(&["apps", "keys", "revoke", "cli-renamed", &new_id], &env);
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no key"));

    let out = cli_ok(&["apps", "rotate-webhook-secret", "cli-renamed"], &env);
    assert!(out.contains("(shown once): whsec_"), "{out}");

    let out = cli_ok(&["apps", "delete", &app_id], &env);
    assert!(out.contains("1 connection(s) disconnected"), "{out}");
    wait_for(11, "the deleted app's key to be refused", || async {
        (app.get("/v1/connections", Some(&key)).await.status() == 401).then_some(())
    })
    .await;
    let k = kinds(&audit(&app, &format!("app={app_id}")).await);
    for want in [
        "app.deleted",
        "webhook_secret.rotated",
        "key.revoked",
        "key.created",
        "app.updated",
    ] {
        assert!(k.iter().any(|x| x == want), "{want} missing from {k:?}");
    }
    let help = cli_ok(&["apps", "--help"], &env);
    for sub in ["update", "keys", "rotate-webhook-secret", "delete"] {
        assert!(help.contains(sub), "{help}");
    }
}
