//! Tokens at rest: never in plaintext, bound to their row, survive key
//! rotation; and no secret ever reaches a log line.

use atlasgate::ids::ConnectionId;
use atlasgate::store::Backend;
use atlasgate::vault::token::{open, ACCESS_TOKEN, REFRESH_TOKEN};
use atlasgate::vault::{Cipher, Keyring};
use secrecy::ExposeSecret;
use serde_json::json;

use crate::connect::{
    browser, callback_url, choose_site, connect, consent, expire_access_token, new_session,
    sim_sites,
};
use crate::helpers::{assert_problem, backends, captured_logs, TestApp, TestOptions};

/// The plaintext tokens currently stored for every connection (decrypted).
pub async fn stored_tokens(app: &TestApp) -> Vec<String> {
    type Row = (ConnectionId, Option<Vec<u8>>, Option<Vec<u8>>);
    let rows: Vec<Row> = sqlx::query_as("SELECT id, access_token, refresh_token FROM connections")
        .fetch_all(app.store.pool())
        .await
        .unwrap();
    let mut out = Vec::new();
    for (id, at, rt) in rows {
        if let Some(at) = at {
            out.push(
                open(&app.state.cipher, &id, ACCESS_TOKEN, &at)
                    .unwrap()
                    .expose_secret()
                    .to_string(),
            );
        }
        if let Some(rt) = rt {
            out.push(
                open(&app.state.cipher, &id, REFRESH_TOKEN, &rt)
                    .unwrap()
                    .expose_secret()
                    .to_string(),
            );
        }
    }
    out
}

pub async fn database_text(app: &TestApp) -> Vec<u8> {
    match app.backend {
        Backend::Sqlite => {
            // The raw file and its write-ahead log, where old pages linger.
            let path = app
                .db
                .url
                .trim_start_matches("sqlite://")
                .split('?')
                .next()
                .unwrap()
                .to_string();
            let mut bytes = std::fs::read(&path).unwrap();
            for suffix in ["-wal", "-journal"] {
                if let Ok(more) = std::fs::read(format!("{path}{suffix}")) {
                    bytes.extend(more);
                }
            }
            bytes
        }
        Backend::Postgres => {
            let rows: Vec<String> = sqlx::query_scalar("SELECT t::text FROM connections t")
                .fetch_all(app.store.pool())
                .await
                .unwrap();
            let more: Vec<String> = sqlx::query_scalar("SELECT t::text FROM events t")
                .fetch_all(app.store.pool())
                .await
                .unwrap();
            rows.into_iter()
                .chain(more)
                .collect::<Vec<_>>()
                .join("\n")
                .into_bytes()
        }
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

async fn no_plaintext(backend: Backend) {
    let app = TestApp::spawn_on(backend).await;
    let (_, key) = app.create_app("plain").await;
    let sites = sim_sites(&app);
    let mut seen = Vec::new();
    let a = connect(&app, &key, "a", &sites[..1], None).await;
    seen.extend(stored_tokens(&app).await);
    let b = connect(&app, &key, "b", &sites, Some(&sites[1])).await;
    seen.extend(stored_tokens(&app).await);
    for id in [&a, &b] {
        for _ in 0..2 {
            let resp = app.refresh_connection(&key, id).await;
            assert_eq!(resp.status(), 200);
            seen.extend(stored_tokens(&app).await);
        }
        expire_access_token(&app, id).await;
        let t = app.connection_token(&key, id).await;
        seen.push(t["access_token"].as_str().unwrap().to_string());
        seen.extend(stored_tokens(&app).await);
    }
    seen.sort();
    seen.dedup();
    assert!(seen.len() >= 12, "collected {} distinct tokens", seen.len());
    let text = database_text(&app).await;
    assert!(text.len() > 1000);
    for token in &seen {
        assert!(token.len() >= 20);
        assert!(
            !contains(&text, token),
            "a plaintext token is in the database"
        );
    }
    // Sanity: the search does find what is there.
    assert!(contains(&text, &a));
}

#[tokio::test]
async fn no_plaintext_token_in_the_database() {
    for backend in backends() {
        no_plaintext(backend).await;
    }
}

#[tokio::test]
async fn a_ciphertext_copied_to_another_connection_does_not_decrypt() {
    let app = TestApp::spawn().await;
    let (_, key) = app.create_app("copy").await;
    let sites = sim_sites(&app);
    let a = ConnectionId::new(connect(&app, &key, "a", &sites[..1], None).await);
    let b = ConnectionId::new(connect(&app, &key, "b", &sites[..1], None).await);
    let a_ct: Vec<u8> = sqlx::query_scalar("SELECT access_token FROM connections WHERE id = $1")
        .bind(&a)
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert!(open(&app.state.cipher, &a, ACCESS_TOKEN, &a_ct).is_ok());
    assert!(
        open(&app.state.cipher, &b, ACCESS_TOKEN, &a_ct).is_err(),
        "another row"
    );
    assert!(
        open(&app.state.cipher, &a, REFRESH_TOKEN, &a_ct).is_err(),
        "another column"
    );
    sqlx::query("UPDATE connections SET access_token = $1 WHERE id = $2")
        .bind(&a_ct)
        .bind(&b)
        .execute(app.store.pool())
        .await
        .unwrap();
    let resp = app
        .get(&format!("/v1/connections/{b}/token"), Some(&key))
        .await;
    let body = assert_problem(resp, 500).await;
    assert!(body.get("detail").is_none() || !body["detail"].to_string().contains("ey"));
    // The original still works.
    assert_eq!(
        app.get(&format!("/v1/connections/{a}/token"), Some(&key))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn key_rotation_then_dropping_the_old_key_keeps_connections_working() {
    let old_ring = Keyring::generate();
    let app = TestApp::spawn_with(
        TestOptions {
            keyring: Some(old_ring.clone()),
            ..Default::default()
        },
        |_| {},
    )
    .await;
    let (_, key) = app.create_app("rotate").await;
    let sites = sim_sites(&app);
    let a = connect(&app, &key, "a", &sites[..1], None).await;
    let b = connect(&app, &key, "b", &sites, Some(&sites[0])).await;

    // New key first, old key still there: rotate.
    let new_ring = Keyring::generate();
    let both = format!(
        "{},{}",
        new_ring.to_env_value().expose_secret(),
        old_ring.to_env_value().expose_secret()
    );
    let both = Cipher::from_keyring(&both).unwrap();
    let report = atlasgate::vault::keys::rotate(&app.store, &both, &mut |_| {})
        .await
        .unwrap();
    assert!(report.reencrypted >= 4, "{report:?}");
    assert_eq!(
        atlasgate::vault::keys::count_on_old_keys(&app.store, &both)
            .await
            .unwrap(),
        0
    );

    // A process with only the new key serves both connections, and refreshes.
    let second = app.spawn_other(new_ring).await;
    let addr = &second.address;
    for id in [&a, &b] {
        let resp = app
            .client
            .get(format!("{addr}/v1/connections/{id}/token"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let resp = app
            .client
            .post(format!("{addr}/v1/connections/{id}/refresh"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
}

#[tokio::test]
async fn logs_never_contain_secrets() {
    let app = TestApp::spawn().await;
    let (_, key) = app.create_app("logs").await;
    let sites = sim_sites(&app);
    let mut secrets: Vec<String> = vec![
        key.clone(),
        app.admin_token.clone(),
        "atlasgate-dev-secret".into(),
        app.keyring.to_env_value().expose_secret().to_string(),
    ];
    // Walk a connect by hand to see the state, the code and the cookie.
    let session = new_session(&app, &key, json!({ "owner": "logged" })).await;
    // The connect link is a bearer link for 30 minutes: its session id is a
    // secret too (it is logged as `/connect/{session}`).
    let session_id = |connect_url: &str| {
        connect_url
            .rsplit_once("/connect/")
            .map(|(_, id)| id.trim_end_matches('/').to_string())
            .unwrap()
    };
    secrets.push(session_id(session["connect_url"].as_str().unwrap()));
    let mut b = browser(&app);
    consent(&app, &sites);
    let callback = callback_url(&app, &b, session["connect_url"].as_str().unwrap()).await;
    for (k, v) in url::Url::parse(&callback).unwrap().query_pairs() {
        assert!(k == "code" || k == "state");
        secrets.push(v.into_owned());
    }
    secrets.push(b.cookie("atlasgate_connect").unwrap());
    let picker = b.get(&callback).await.unwrap();
    let form = atlasgate_testkit::SitePickerForm::parse(&picker.body).unwrap();
    secrets.push(form.csrf.clone());
    let done = choose_site(&mut b, &picker.url, &form.csrf, &sites[0]).await;
    assert_eq!(done.status, 200);
    let id = crate::connect::connection_of(&app, &key, "logged").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    secrets.extend(stored_tokens(&app).await);
    app.sim.add_fault(atlassim::Fault {
        method: Some("POST".into()),
        path: "/oauth/token".into(),
        count: 1,
        status: None,
        body: None,
        headers: None,
        latency_ms: None,
        drop: true,
    });
    let resp = app.refresh_connection(&key, &id).await;
    assert_eq!(resp.status(), 200);
    secrets.extend(stored_tokens(&app).await);
    app.sim.revoke_grants(&crate::connect::first_account(&app));
    let resp = app.refresh_connection(&key, &id).await;
    assert_eq!(resp.status(), 409);
    let reauth: serde_json::Value = resp.json().await.unwrap();
    let reconnect = session_id(reauth["connect_url"].as_str().unwrap());
    secrets.push(reconnect.clone());
    // Open the reconnect link, and a mistyped one: neither id is logged.
    let r = app
        .client
        .get(reauth["connect_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    let typo = format!("cs_{}", "5".repeat(32));
    app.get(&format!("/conect/{typo}"), None).await;
    secrets.push(typo);
    // The callback's query string, replayed, is not logged either.
    app.client.get(&callback).send().await.unwrap();
    let logs = captured_logs();
    assert!(
        logs.contains("/connect/{session}"),
        "connect requests were logged, redacted"
    );
    assert!(logs.contains("refresh"), "logs were captured");
    for secret in &secrets {
        assert!(secret.len() >= 16);
        assert!(
            !logs.contains(secret.as_str()),
            "a secret appeared in the logs"
        );
    }
}
