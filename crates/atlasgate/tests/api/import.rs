//! Importing existing grants (docs/design.md §18, docs/importing.md):
//! `POST /v1/connections/import` and `atlasgate connections import`, on
//! both backends, against atlassim's `/__sim/tokens` grants.

use std::process::{Command, Stdio};

use atlassim::MintTokenRequest;
use secrecy::ExposeSecret;
use serde_json::{json, Value};

use crate::connect::{event_types, first_account, sim_sites};
use crate::helpers::{assert_problem, backends, captured_logs, TestApp};
use crate::secrets::database_text;

/// A grant as another store would hold it: minted at atlassim for the first
/// user, covering `sites`.
fn mint(app: &TestApp, sites: &[String]) -> atlassim::MintedTokens {
    app.sim.mint_token(MintTokenRequest {
        cloud_ids: Some(sites.to_vec()),
        ..Default::default()
    })
}

/// [`mint`] for another account. One grant exists per (app, account) and a
/// consent to more sites widens it (docs/atlassian-behaviour.md §1), so a
/// single-site grant must belong to an account no multi-site grant widens.
fn mint_for(app: &TestApp, user: usize, sites: &[String]) -> atlassim::MintedTokens {
    let account = app.sim.snapshot()["users"][user]["account_id"]
        .as_str()
        .unwrap()
        .to_string();
    app.sim.mint_token(MintTokenRequest {
        account_id: Some(account),
        cloud_ids: Some(sites.to_vec()),
        ..Default::default()
    })
}

fn refresh_token(t: &atlassim::MintedTokens) -> String {
    t.refresh_token
        .clone()
        .expect("offline_access is in the default scopes")
}

async fn import(app: &TestApp, key: &str, body: &Value) -> reqwest::Response {
    app.post_json("/v1/connections/import", Some(key), body)
        .await
}

async fn connection_count(app: &TestApp, app_id: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM connections WHERE app_id = $1")
        .bind(app_id)
        .fetch_one(app.store.pool())
        .await
        .unwrap()
}

async fn token_version(app: &TestApp, id: &str) -> i64 {
    sqlx::query_scalar("SELECT token_version FROM connections WHERE id = $1")
        .bind(id)
        .fetch_one(app.store.pool())
        .await
        .unwrap()
}

/// `GET /myself` on `cloud_id` with a bare access token, straight at atlassim.
async fn myself_status(app: &TestApp, cloud_id: &str, access_token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!(
            "{}/ex/jira/{cloud_id}/rest/api/3/myself",
            app.sim.base_url()
        ))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_single_site_grant_imports_and_works() {
    for backend in backends() {
        let app = TestApp::spawn_on(backend).await;
        let (app_id, key) = app.create_app("importer").await;
        let sites = sim_sites(&app);
        let minted = mint(&app, &sites[..1]);
        let rt = refresh_token(&minted);
        let refreshes_before = app.sim.stats().tokens.refreshes;

        let resp = import(
            &app,
            &key,
            &json!({ "owner": "team:1", "refresh_token": rt }),
        )
        .await;
        assert_eq!(resp.status(), 201, "{backend:?}");
        let body: Value = resp.json().await.unwrap();
        let id = body["id"].as_str().unwrap().to_string();
        assert!(id.starts_with("con_"), "{body}");
        assert_eq!(body["owner"], "team:1");
        assert_eq!(body["profile"], "jira");
        assert_eq!(body["status"], "active");
        assert_eq!(body["authenticated"], true);
        assert_eq!(body["site"]["cloud_id"], sites[0].as_str());
        assert_eq!(body["account"]["account_id"], first_account(&app).as_str());
        // No access token given: atlasgate refreshed exactly once.
        assert_eq!(app.sim.stats().tokens.refreshes, refreshes_before + 1);
        assert_eq!(event_types(&app, &id).await, vec!["connection.created"]);

        // The connection serves working tokens like any other.
        let token = app.connection_token(&key, &id).await;
        let access = token["access_token"].as_str().unwrap().to_string();
        assert_eq!(token["cloud_id"], sites[0].as_str());
        assert_eq!(myself_status(&app, &sites[0], &access).await, 200);
        let proxied = app
            .get(
                &format!("/v1/connections/{id}/proxy/jira/rest/api/3/myself"),
                Some(&key),
            )
            .await;
        assert_eq!(proxied.status(), 200);

        // Tokens are stored encrypted only: neither the imported refresh
        // token, the rotated pair nor the access token appear in the database.
        let db = database_text(&app).await;
        for secret in [rt.as_str(), access.as_str(), minted.access_token.as_str()] {
            assert!(
                !db.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{backend:?}: a token is in the database in plaintext"
            );
        }
        assert_eq!(connection_count(&app, &app_id).await, 1);
    }
}

#[tokio::test]
async fn a_fresh_access_token_is_used_without_a_refresh() {
    for backend in backends() {
        let app = TestApp::spawn_on(backend).await;
        let (_, key) = app.create_app("importer").await;
        let sites = sim_sites(&app);
        let minted = mint(&app, &sites[..1]);
        let expires_at = atlasgate::store::now() + minted.expires_in;
        let refreshes_before = app.sim.stats().tokens.refreshes;
        let resp = import(
            &app,
            &key,
            &json!({
                "owner": "team:at",
                "refresh_token": refresh_token(&minted),
                "access_token": minted.access_token,
                "expires_at": atlasgate_core::time::rfc3339(expires_at),
            }),
        )
        .await;
        assert_eq!(resp.status(), 201);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            app.sim.stats().tokens.refreshes,
            refreshes_before,
            "no refresh"
        );
        let token = app
            .connection_token(&key, body["id"].as_str().unwrap())
            .await;
        assert_eq!(token["access_token"], minted.access_token.as_str());

        // An access token about to expire is not trusted: the refresh token decides.
        let minted = mint(&app, &sites[..1]);
        let resp = import(
            &app,
            &key,
            &json!({
                "owner": "team:soon",
                "refresh_token": refresh_token(&minted),
                "access_token": minted.access_token,
                "expires_at": atlasgate_core::time::rfc3339(atlasgate::store::now() + 30),
            }),
        )
        .await;
        assert_eq!(resp.status(), 201);
        assert_eq!(app.sim.stats().tokens.refreshes, refreshes_before + 1);
    }
}

#[tokio::test]
async fn a_multi_site_grant_needs_a_cloud_id() {
    for backend in backends() {
        let app = TestApp::spawn_on(backend).await;
        let (app_id, key) = app.create_app("importer").await;
        let sites = sim_sites(&app);
        assert!(sites.len() >= 2, "atlassim seeds two sites");
        let minted = mint(&app, &sites);
        let rt = refresh_token(&minted);

        let resp = import(
            &app,
            &key,
            &json!({ "owner": "team:m", "refresh_token": rt }),
        )
        .await;
        let problem = assert_problem(resp, 409).await;
        assert!(
            problem["type"]
                .as_str()
                .unwrap()
                .ends_with("/site-required"),
            "{problem}"
        );
        let listed: Vec<&str> = problem["sites"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["cloud_id"].as_str().unwrap())
            .collect();
        assert_eq!(listed, sites.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(problem["sites"][0]["url"]
            .as_str()
            .unwrap()
            .starts_with("http"));
        assert!(
            !problem.to_string().contains(&rt),
            "no token in the problem"
        );
        assert_eq!(connection_count(&app, &app_id).await, 0, "nothing stored");

        // A cloud id outside the grant: 422 on `cloud_id`, nothing stored.
        let resp = import(
            &app,
            &key,
            &json!({ "owner": "team:m", "refresh_token": rt, "cloud_id": "not-a-site" }),
        )
        .await;
        let problem = assert_problem(resp, 422).await;
        assert_eq!(problem["errors"][0]["field"], "cloud_id", "{problem}");
        assert_eq!(connection_count(&app, &app_id).await, 0);

        // Named (within Atlassian's reuse window for the same token): imported.
        let resp = import(
            &app,
            &key,
            &json!({ "owner": "team:m", "refresh_token": rt, "cloud_id": sites[1] }),
        )
        .await;
        assert_eq!(resp.status(), 201);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["site"]["cloud_id"], sites[1].as_str());
        assert_eq!(body["sites"].as_array().unwrap().len(), sites.len());
    }
}

#[tokio::test]
async fn re_import_replaces_the_tokens_and_keeps_the_id() {
    for backend in backends() {
        let app = TestApp::spawn_on(backend).await;
        let (app_id, key) = app.create_app("importer").await;
        let sites = sim_sites(&app);
        let first = mint(&app, &sites[..1]);
        let body = json!({ "owner": "team:r", "refresh_token": refresh_token(&first) });
        let resp = import(&app, &key, &body).await;
        assert_eq!(resp.status(), 201);
        let id = resp.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let old_access = app.connection_token(&key, &id).await["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        let version = token_version(&app, &id).await;

        // The same token again: 200, same id, nothing called or changed.
        let refreshes = app.sim.stats().tokens.refreshes;
        let resp = import(&app, &key, &body).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.json::<Value>().await.unwrap()["id"], id.as_str());
        assert_eq!(app.sim.stats().tokens.refreshes, refreshes);
        assert_eq!(token_version(&app, &id).await, version);

        // A new grant for the same (owner, profile): 200, same id, new tokens.
        let second = mint(&app, &sites[..1]);
        let resp = import(
            &app,
            &key,
            &json!({ "owner": "team:r", "refresh_token": refresh_token(&second) }),
        )
        .await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.json::<Value>().await.unwrap()["id"], id.as_str());
        assert!(token_version(&app, &id).await > version);
        let new_access = app.connection_token(&key, &id).await["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        assert_ne!(
            new_access, old_access,
            "the replaced grant's token is not served"
        );
        assert_eq!(myself_status(&app, &sites[0], &new_access).await, 200);
        assert_eq!(connection_count(&app, &app_id).await, 1);
        assert_eq!(
            event_types(&app, &id).await,
            vec!["connection.created", "connection.created"]
        );
    }
}

#[tokio::test]
async fn a_refused_refresh_token_answers_422_and_stores_nothing() {
    for backend in backends() {
        let app = TestApp::spawn_on(backend).await;
        let (app_id, key) = app.create_app("importer").await;
        let sites = sim_sites(&app);

        // An existing connection for the same owner stays exactly as it was.
        let good = mint(&app, &sites[..1]);
        let resp = import(
            &app,
            &key,
            &json!({ "owner": "team:x", "refresh_token": refresh_token(&good) }),
        )
        .await;
        assert_eq!(resp.status(), 201);
        let id = resp.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let version = token_version(&app, &id).await;

        // A grant revoked at Atlassian (the person removed the app).
        let dead = mint(&app, &sites[..1]);
        let dead_rt = refresh_token(&dead);
        // Revoking the account also kills the grant imported above; only
        // the database is checked for that one.
        app.sim.revoke_grants(&first_account(&app));
        for (owner, rt) in [
            ("team:new", dead_rt.as_str()),
            ("team:x", dead_rt.as_str()),
            ("team:y", "garbage-token"),
        ] {
            let resp = import(&app, &key, &json!({ "owner": owner, "refresh_token": rt })).await;
            let problem = assert_problem(resp, 422).await;
            assert_eq!(problem["errors"][0]["field"], "refresh_token", "{problem}");
            assert!(
                problem["errors"][0]["message"]
                    .as_str()
                    .unwrap()
                    .contains("refused"),
                "{problem}"
            );
            assert!(
                !problem.to_string().contains(rt),
                "the token is never echoed"
            );
        }
        assert_eq!(
            connection_count(&app, &app_id).await,
            1,
            "nothing new stored"
        );
        assert_eq!(
            token_version(&app, &id).await,
            version,
            "existing row untouched"
        );
        assert_eq!(event_types(&app, &id).await, vec!["connection.created"]);

        // Bad input is refused before Atlassian is asked.
        let refreshes = app.sim.stats().tokens.refreshes;
        for (body, field) in [
            (json!({ "owner": "", "refresh_token": "t" }), "owner"),
            (
                json!({ "owner": "o", "refresh_token": "" }),
                "refresh_token",
            ),
            (
                json!({ "owner": "o", "refresh_token": "a b" }),
                "refresh_token",
            ),
            (
                json!({ "owner": "o", "profile": "nope", "refresh_token": "t" }),
                "profile",
            ),
            (
                json!({ "owner": "o", "refresh_token": "t", "access_token": "a", "expires_at": "soon" }),
                "expires_at",
            ),
            (
                json!({ "owner": "o", "refresh_token": "t", "expires_at": "2030-01-01T00:00:00Z" }),
                "expires_at",
            ),
        ] {
            let problem = assert_problem(import(&app, &key, &body).await, 422).await;
            assert_eq!(problem["errors"][0]["field"], field, "{body}: {problem}");
        }
        let resp = import(
            &app,
            &key,
            &json!({ "owner": "o", "refresh_token": "t", "extra": 1 }),
        )
        .await;
        assert!(resp.status().is_client_error());
        assert_eq!(app.sim.stats().tokens.refreshes, refreshes);
        assert_eq!(connection_count(&app, &app_id).await, 1);
    }
}

#[tokio::test]
async fn an_import_never_touches_another_apps_connection() {
    for backend in backends() {
        let app = TestApp::spawn_on(backend).await;
        let (a_id, a_key) = app.create_app("app-a").await;
        let (b_id, b_key) = app.create_app("app-b").await;
        let sites = sim_sites(&app);

        let for_a = mint(&app, &sites[..1]);
        let for_b = mint(&app, &sites[..1]);
        let a = import(
            &app,
            &a_key,
            &json!({ "owner": "team:1", "refresh_token": refresh_token(&for_a) }),
        )
        .await;
        let b = import(
            &app,
            &b_key,
            &json!({ "owner": "team:1", "refresh_token": refresh_token(&for_b) }),
        )
        .await;
        assert_eq!(
            (a.status().as_u16(), b.status().as_u16()),
            (201, 201),
            "same owner, two apps: two connections"
        );
        let a_conn = a.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let b_conn = b.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        assert_ne!(a_conn, b_conn);
        let b_version = token_version(&app, &b_conn).await;
        let b_access = app.connection_token(&b_key, &b_conn).await["access_token"].clone();

        // Re-importing for A replaces A's grant only.
        let again = mint(&app, &sites[..1]);
        let resp = import(
            &app,
            &a_key,
            &json!({ "owner": "team:1", "refresh_token": refresh_token(&again) }),
        )
        .await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.json::<Value>().await.unwrap()["id"], a_conn.as_str());
        assert_eq!(token_version(&app, &b_conn).await, b_version);
        assert_eq!(
            app.connection_token(&b_key, &b_conn).await["access_token"],
            b_access
        );
        assert_eq!(connection_count(&app, &a_id).await, 1);
        assert_eq!(connection_count(&app, &b_id).await, 1);
        // And neither app sees the other's.
        assert_eq!(
            app.get(&format!("/v1/connections/{b_conn}"), Some(&a_key))
                .await
                .status(),
            404
        );
        assert_eq!(
            app.get(&format!("/v1/connections/{a_conn}"), Some(&b_key))
                .await
                .status(),
            404
        );
    }
}

// ---------------------------------------------------------------- the bulk command

struct CliRun {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Run the command in a blocking thread: atlassim serves from this test's runtime.
async fn run_import(app: &TestApp, app_ref: &str, file: &std::path::Path) -> CliRun {
    let keys = app.keyring.to_env_value().expose_secret().to_string();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_atlasgate"));
    cmd.args(["connections", "import", "--app", app_ref, "--file"])
        .arg(file)
        .args(["--concurrency", "4", "--rate", "50"])
        .env_clear()
        .env("ATLASGATE_DATABASE_URL", &app.db.url)
        .env("ATLASGATE_ENCRYPTION_KEYS", &keys)
        .env("ATLASSIAN_CLIENT_ID", "atlasgate-dev")
        .env("ATLASSIAN_CLIENT_SECRET", "atlasgate-dev-secret")
        .env("ATLASSIAN_AUTH_URL", app.sim.auth_url())
        .env("ATLASSIAN_API_URL", app.sim.api_url())
        .env("ATLASGATE_PUBLIC_URL", &app.address)
        // Everything the command can log, to prove no token is among it.
        .env("ATLASGATE_LOG", "debug")
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null());
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    CliRun {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test]
async fn the_bulk_command_imports_a_mixed_file_and_is_idempotent() {
    for backend in backends() {
        let app = TestApp::spawn_on(backend).await;
        let (app_id, key) = app.create_app("bulk-app").await;
        let sites = sim_sites(&app);
        let one = mint_for(&app, 1, &sites[..1]);
        let two = mint(&app, &sites);
        let three = mint_for(&app, 1, &sites[..1]);
        let several = mint(&app, &sites);
        let expires_at = atlasgate_core::time::rfc3339(atlasgate::store::now() + three.expires_in);
        let lines = [
            json!({ "owner": "team:1", "refresh_token": refresh_token(&one) }).to_string(),
            json!({ "owner": "team:2", "refresh_token": refresh_token(&two), "cloud_id": sites[1] }).to_string(),
            // 3: the same (owner, profile) as line 1.
            json!({ "owner": "team:1", "refresh_token": refresh_token(&three) }).to_string(),
            // 4: not JSON (cut off in the middle of a token).
            format!("{{\"owner\": \"team:4\", \"refresh_token\": \"{}", refresh_token(&three)),
            // 5: refused by Atlassian.
            json!({ "owner": "team:5", "refresh_token": "revoked-long-ago" }).to_string(),
            String::new(),
            // 7: a fresh access token (no refresh).
            json!({ "owner": "team:7", "refresh_token": refresh_token(&three),
                    "access_token": three.access_token, "expires_at": expires_at }).to_string(),
            // 8: several sites, none named.
            json!({ "owner": "team:8", "refresh_token": refresh_token(&several) }).to_string(),
        ];
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("export.jsonl");
        std::fs::write(&file, lines.join("\n") + "\n").unwrap();
        let mut secrets: Vec<String> = [&one, &two, &three, &several]
            .iter()
            .flat_map(|t| [t.access_token.clone(), refresh_token(t)])
            .collect();

        let first = run_import(&app, "bulk-app", &file).await;
        assert_eq!(
            first.code,
            Some(1),
            "refused lines make the exit code 1:\n{}\n{}",
            first.stdout,
            first.stderr
        );
        let summary = first.stdout.lines().next().unwrap_or_default();
        assert_eq!(
            summary, "3 imported, 0 replaced, 0 unchanged, 4 refused",
            "{}",
            first.stdout
        );
        let refused: Vec<&str> = first.stdout.lines().skip(1).collect();
        assert_eq!(refused.len(), 4, "{}", first.stdout);
        assert!(
            refused[0].starts_with("  line 3: duplicate of line 1"),
            "{}",
            first.stdout
        );
        assert!(
            refused[1].starts_with("  line 4: not a JSON object"),
            "{}",
            first.stdout
        );
        assert!(
            refused[2].starts_with("  line 5: refresh_token: Atlassian refused"),
            "{}",
            first.stdout
        );
        assert!(
            refused[3].starts_with("  line 8: the grant covers several sites"),
            "{}",
            first.stdout
        );
        assert!(
            refused[3].contains(&sites[0]) && refused[3].contains(&sites[1]),
            "{}",
            first.stdout
        );
        // Not a terminal: one plain line per file line on stderr.
        assert!(
            first.stderr.contains("line 1: imported con_"),
            "{}",
            first.stderr
        );
        assert!(
            first.stderr.contains("line 5: refused (owner team:5)"),
            "{}",
            first.stderr
        );

        let ids = |body: Value| -> Vec<(String, String, String)> {
            let mut v: Vec<_> = body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    (
                        c["owner"].as_str().unwrap().to_string(),
                        c["id"].as_str().unwrap().to_string(),
                        c["site"]["cloud_id"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            v.sort();
            v
        };
        let after_first = ids(app.get_ok("/v1/connections", &key).await);
        assert_eq!(
            after_first
                .iter()
                .map(|(o, _, s)| (o.as_str(), s.as_str()))
                .collect::<Vec<_>>(),
            vec![
                ("team:1", sites[0].as_str()),
                ("team:2", sites[1].as_str()),
                ("team:7", sites[0].as_str())
            ]
        );
        for (_, id, _) in &after_first {
            assert_eq!(event_types(&app, id).await, vec!["connection.created"]);
            let t = app.connection_token(&key, id).await;
            secrets.push(t["access_token"].as_str().unwrap().to_string());
        }

        // The same file again (by app id this time): nothing changes.
        let refreshes = app.sim.stats().tokens.refreshes;
        let second = run_import(&app, &app_id, &file).await;
        assert_eq!(second.code, Some(1));
        assert_eq!(
            second.stdout.lines().next().unwrap_or_default(),
            "0 imported, 0 replaced, 3 unchanged, 4 refused",
            "{}",
            second.stdout
        );
        assert_eq!(ids(app.get_ok("/v1/connections", &key).await), after_first);
        assert_eq!(connection_count(&app, &app_id).await, 3);
        // Only the lines refused before went to Atlassian again (5 and 8).
        assert!(app.sim.stats().tokens.refreshes <= refreshes + 2);

        // No token in anything the command printed or logged.
        let printed = format!(
            "{}{}{}{}",
            first.stdout, first.stderr, second.stdout, second.stderr
        );
        assert!(
            printed.contains("DEBUG") || printed.contains("INFO"),
            "logs were captured: {printed}"
        );
        for s in &secrets {
            assert!(!printed.contains(s.as_str()), "a token was printed");
            assert!(!captured_logs().contains(s.as_str()), "a token was logged");
        }

        // An unknown app is refused by name.
        let out = run_import(&app, "no-such-app", &file).await;
        assert_eq!(out.code, Some(1));
        assert!(
            out.stderr.contains("no app with id or name `no-such-app`"),
            "{}",
            out.stderr
        );
    }
}
