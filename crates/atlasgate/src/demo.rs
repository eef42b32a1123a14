//! `atlasgate demo` (docs/design.md §8): the whole product on atlassim + SQLite with
//! no configuration and no network.
//!
//! Without `--scripted` it prints the links a person needs and serves until
//! Ctrl-C. With `--scripted` it walks the product through HTTP, one line per
//! step, and fails with the first step that does not work. Steps are a plain
//! list ([`STEPS`]): later features add theirs at the end.
//!
//! Built only with the `demo` cargo feature (the default): it links atlassim
//! and the dev-only `atlasgate-testkit` (the scripted walk's browser), which
//! a production broker built with `--no-default-features` leaves out.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context as _};
use atlasgate_testkit::{Browser, SitePickerForm};
use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use crate::config::Config;
use crate::server::Application;
use crate::state::AppState;
use crate::vault::Keyring;

/// A running demo: atlassim, the broker, a demo app and its admin token.
pub struct Demo {
    pub sim: atlassim::Sim,
    /// `http://127.0.0.1:PORT` of the broker.
    pub base_url: String,
    pub admin_token: SecretString,
    pub state: AppState,
    pub app_id: String,
    pub app_key: SecretString,
    dir: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Demo {
    /// Start atlassim (seeded, two sites) and the broker on a fresh SQLite
    /// file in a temp dir with a fresh key and admin token; create a demo app.
    pub async fn start() -> anyhow::Result<Demo> {
        let dir = std::env::temp_dir().join(format!(
            "atlasgate-demo-{}",
            &crate::connect::random_hex()[..12]
        ));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .context("cannot bind a loopback port for the broker")?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let sim = atlassim::Sim::start(atlassim::SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..atlassim::SimConfig::default()
        })
        .await
        .context("cannot start atlassim")?;
        sim.add_redirect_uri(
            atlassim::config::DEFAULT_CLIENT_ID,
            &format!("{base_url}/oauth/callback"),
        );

        let db = dir.join("atlasgate.db");
        let mut config =
            Config::for_tests(format!("sqlite://{}", db.display()), Keyring::generate());
        config.listen = listener.local_addr()?;
        config.public_url = url::Url::parse(&base_url)?;
        config.auth_url = url::Url::parse(&sim.auth_url())?;
        config.api_url = url::Url::parse(&sim.api_url())?;
        config.client_id = atlassim::config::DEFAULT_CLIENT_ID.to_string();
        config.client_secret = SecretString::from(atlassim::config::DEFAULT_CLIENT_SECRET);
        let admin_token = SecretString::from(format!("adm_{}", crate::connect::random_hex()));
        config.admin_token = Some(admin_token.clone());

        let app = Application::build_with_listener(config, listener).await?;
        let state = app.state().clone();
        let created = crate::apps::create(
            &state.store,
            &state.cipher,
            crate::apps::NewApp {
                name: crate::apps::AppName::parse("demo").map_err(|e| anyhow!(e))?,
                webhook_url: None,
                return_origins: Vec::new(),
            },
        )
        .await?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async {
            let _ = rx.await;
        }));
        Ok(Demo {
            sim,
            base_url,
            admin_token,
            state,
            app_id: created.app.id.clone(),
            app_key: SecretString::from(created.api_key.expose().to_string()),
            dir,
            stop: Some(tx),
            server,
        })
    }

    /// A fresh connect link for the demo app.
    pub async fn connect_link(&self, owner: &str) -> anyhow::Result<String> {
        let profile = self
            .state
            .config
            .profiles
            .get("jira")
            .ok_or_else(|| anyhow!("no jira profile"))?;
        let session = crate::connect::create_session(
            &self.state,
            &crate::connect::NewConnectSession {
                app_id: self.app_id.clone(),
                owner: owner.into(),
                profile: "jira".into(),
                return_to: None,
                scopes: profile.scopes.clone(),
            },
        )
        .await
        .map_err(|e| anyhow!("cannot create a connect session: {e}"))?;
        Ok(session.connect_url)
    }

    /// Stop the broker and atlassim, remove the temp dir.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.server).await;
        self.state.store.close().await;
        self.sim.shutdown().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `atlasgate demo [--scripted]`.
pub async fn run(scripted: bool) -> anyhow::Result<()> {
    // Quiet by default: the demo's own lines are the interface.
    let filter = std::env::var("ATLASGATE_LOG").unwrap_or_else(|_| "warn".into());
    let _ = crate::logging::init(&filter, crate::config::LogFormat::Pretty);
    if scripted {
        let report = run_scripted(&mut std::io::stdout()).await?;
        return match report.failed {
            None => Ok(()),
            Some((step, error)) => bail!("step `{step}` failed: {error}"),
        };
    }
    let demo = Demo::start().await?;
    let link = demo.connect_link("demo:you").await?;
    println!(
        "atlasgate demo — the broker on {} with atlassim on {}",
        demo.base_url,
        demo.sim.base_url()
    );
    println!();
    println!("  connect link   {link}");
    println!("                 (works once, for 30 minutes; POST /v1/connect-sessions makes more)");
    println!(
        "  dashboard      {}/admin   (admin token: {})",
        demo.base_url,
        demo.admin_token.expose_secret()
    );
    println!("  API docs       {}/docs", demo.base_url);
    println!("  demo app key   {}", demo.app_key.expose_secret());
    println!();
    println!(
        "  try: curl -H 'Authorization: Bearer {}' {}/v1/connections",
        demo.app_key.expose_secret(),
        demo.base_url
    );
    println!();
    println!("Press Ctrl-C to stop.");
    let _ = std::io::stdout().flush();
    crate::server::shutdown_signal().await;
    demo.stop().await;
    Ok(())
}

// ---- the scripted walk -----------------------------------------------------------

/// What `run_scripted` did.
#[derive(Debug, Default)]
pub struct ScriptReport {
    pub passed: Vec<String>,
    /// The first failing step and why.
    pub failed: Option<(String, String)>,
}

/// State carried from step to step.
pub struct Walk {
    pub demo: Demo,
    pub http: reqwest::Client,
    pub browser: Browser,
    pub app_key: String,
    pub connect_url: String,
    pub connection_id: String,
    pub chosen_cloud_id: String,
    pub access_token: String,
    /// The demo app's backend: receives atlasgate's signed events.
    pub receiver: crate::events::receiver::Receiver,
    /// The sync started by the walk.
    pub sync_id: String,
}

impl Walk {
    fn api(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.demo.base_url))
            .bearer_auth(&self.app_key)
    }

    async fn json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut req = self.api(method, path);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let value = resp.json::<Value>().await.unwrap_or(Value::Null);
        Ok((status, value))
    }
}

type StepFn = for<'a> fn(&'a mut Walk) -> BoxFuture<'a, anyhow::Result<String>>;

/// The walk, in order. Each step returns a one-line summary of what it saw.
pub const STEPS: &[(&str, StepFn)] = &[
    ("create app", |w| Box::pin(step_create_app(w))),
    ("connect session", |w| Box::pin(step_connect_session(w))),
    ("consent", |w| Box::pin(step_consent(w))),
    ("choose site", |w| Box::pin(step_choose_site(w))),
    ("connection active", |w| Box::pin(step_connection_active(w))),
    ("get token", |w| Box::pin(step_token(w))),
    ("force refresh", |w| Box::pin(step_refresh(w))),
    ("list projects", |w| Box::pin(step_list_projects(w))),
    ("import the active sprint", |w| {
        Box::pin(step_import_sprint(w))
    }),
    ("push an estimate", |w| Box::pin(step_push_estimate(w))),
    ("an agent moves an issue to Done through MCP", |w| {
        Box::pin(step_agent_mcp(w))
    }),
    ("start a sync", |w| Box::pin(step_start_sync(w))),
    ("webhook updates an issue", |w| {
        Box::pin(step_webhook_update(w))
    }),
    ("disconnect", |w| Box::pin(step_disconnect(w))),
    ("webhook removed", |w| Box::pin(step_webhook_removed(w))),
];

/// Walk every step, printing `✓ step — details` (or `✗ step — error` and stop).
pub async fn run_scripted(out: &mut dyn Write) -> anyhow::Result<ScriptReport> {
    let demo = Demo::start().await?;
    writeln!(
        out,
        "atlasgate demo --scripted: broker {} · atlassim {}",
        demo.base_url,
        demo.sim.base_url()
    )?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let mut walk = Walk {
        demo,
        browser: Browser::new(http.clone()),
        http,
        app_key: String::new(),
        connect_url: String::new(),
        connection_id: String::new(),
        chosen_cloud_id: String::new(),
        access_token: String::new(),
        receiver: crate::events::receiver::Receiver::start().await?,
        sync_id: String::new(),
    };
    let mut report = ScriptReport::default();
    for (name, step) in STEPS {
        match tokio::time::timeout(Duration::from_secs(60), step(&mut walk)).await {
            Ok(Ok(details)) => {
                writeln!(out, "✓ {name} — {details}")?;
                report.passed.push(name.to_string());
            }
            Ok(Err(e)) => {
                writeln!(out, "✗ {name} — {e:#}")?;
                report.failed = Some((name.to_string(), format!("{e:#}")));
                break;
            }
            Err(_) => {
                writeln!(out, "✗ {name} — timed out")?;
                report.failed = Some((name.to_string(), "timed out".into()));
                break;
            }
        }
    }
    if report.failed.is_none() {
        writeln!(out, "all {} steps passed", report.passed.len())?;
    }
    walk.demo.stop().await;
    Ok(report)
}

async fn step_create_app(w: &mut Walk) -> anyhow::Result<String> {
    let resp = w
        .http
        .post(format!("{}/admin/api/apps", w.demo.base_url))
        .bearer_auth(w.demo.admin_token.expose_secret())
        .json(&json!({ "name": "scripted-demo", "webhook_url": w.receiver.url }))
        .send()
        .await?;
    ensure!(
        resp.status().as_u16() == 201,
        "POST /admin/api/apps answered {}",
        resp.status()
    );
    let body: Value = resp.json().await?;
    let key = body["api_key"]
        .as_str()
        .ok_or_else(|| anyhow!("no api_key in the answer"))?;
    ensure!(
        key.starts_with("agk_"),
        "the app key does not start with agk_"
    );
    w.app_key = key.to_string();
    if let Some(secret) = body["webhook_secret"].as_str() {
        w.receiver
            .set_secret(SecretString::from(secret.to_string()));
    }
    Ok(format!(
        "app {} (key agk_…)",
        body["id"].as_str().unwrap_or("?")
    ))
}

async fn step_connect_session(w: &mut Walk) -> anyhow::Result<String> {
    let (status, body) = w
        .json(
            reqwest::Method::POST,
            "/v1/connect-sessions",
            Some(json!({ "owner": "demo:scripted" })),
        )
        .await?;
    ensure!(
        status == 201,
        "POST /v1/connect-sessions answered {status}: {body}"
    );
    w.connect_url = body["connect_url"]
        .as_str()
        .ok_or_else(|| anyhow!("no connect_url"))?
        .to_string();
    Ok(format!(
        "expires {}",
        body["expires_at"].as_str().unwrap_or("?")
    ))
}

fn sim_sites(w: &Walk) -> Vec<(String, String)> {
    w.demo.sim.snapshot()["sites"]
        .as_array()
        .map(|sites| {
            sites
                .iter()
                .map(|s| {
                    (
                        s["cloud_id"].as_str().unwrap_or_default().to_string(),
                        s["name"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn step_consent(w: &mut Walk) -> anyhow::Result<String> {
    let sites = sim_sites(w);
    ensure!(
        sites.len() >= 2,
        "atlassim should have two sites, has {}",
        sites.len()
    );
    w.demo.sim.set_next_consent(atlassim::ConsentDecision {
        account_id: None,
        sites: Some(sites.iter().map(|(id, _)| id.clone()).collect()),
        deny: false,
    });
    let page = w.browser.get(&w.connect_url).await?;
    ensure!(
        page.status == 200,
        "expected the site picker, got {} at {}",
        page.status,
        page.url
    );
    ensure!(
        page.url.ends_with("/site"),
        "expected the site picker, landed on {}",
        page.url
    );
    Ok(format!(
        "consented to {} sites; site picker shown",
        sites.len()
    ))
}

async fn step_choose_site(w: &mut Walk) -> anyhow::Result<String> {
    let page = w.browser.last.clone().ok_or_else(|| anyhow!("no page"))?;
    let form = SitePickerForm::parse(&page.body)?;
    let second = form
        .cloud_ids
        .get(1)
        .ok_or_else(|| anyhow!("the picker lists fewer than two sites"))?
        .clone();
    let done = w
        .browser
        .post_form(
            &page.url,
            &[("csrf", form.csrf.as_str()), ("cloud_id", second.as_str())],
        )
        .await?;
    ensure!(
        done.status == 200 && done.body.contains("Connected"),
        "choosing a site answered {}",
        done.status
    );
    let name = sim_sites(w)
        .into_iter()
        .find(|(id, _)| *id == second)
        .map(|(_, n)| n)
        .unwrap_or_default();
    w.chosen_cloud_id = second;
    Ok(format!("chose the second site, {name}"))
}

async fn step_connection_active(w: &mut Walk) -> anyhow::Result<String> {
    let (status, body) = w
        .json(
            reqwest::Method::GET,
            "/v1/connections?owner=demo%3Ascripted",
            None,
        )
        .await?;
    ensure!(status == 200, "GET /v1/connections answered {status}");
    let item = body["items"]
        .get(0)
        .ok_or_else(|| anyhow!("no connection listed"))?;
    ensure!(item["status"] == "active", "status is {}", item["status"]);
    ensure!(
        item["site"]["cloud_id"] == w.chosen_cloud_id.as_str(),
        "the selected site is not the chosen one"
    );
    w.connection_id = item["id"].as_str().unwrap_or_default().to_string();
    Ok(format!(
        "{} active for {} on {}",
        w.connection_id,
        item["account"]["email"].as_str().unwrap_or("?"),
        item["site"]["url"].as_str().unwrap_or("?")
    ))
}

async fn step_token(w: &mut Walk) -> anyhow::Result<String> {
    let path = format!("/v1/connections/{}/token", w.connection_id);
    let (status, body) = w.json(reqwest::Method::GET, &path, None).await?;
    ensure!(status == 200, "GET …/token answered {status}");
    ensure!(
        body["cloud_id"] == w.chosen_cloud_id.as_str(),
        "token is for another site"
    );
    w.access_token = body["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    ensure!(!w.access_token.is_empty(), "empty access token");
    // Use it: the token must work at atlassim's gateway.
    let me = w
        .http
        .get(format!("{}/me", w.demo.sim.api_url()))
        .bearer_auth(&w.access_token)
        .send()
        .await?;
    ensure!(
        me.status().is_success(),
        "atlassim /me refused the token ({})",
        me.status()
    );
    Ok(format!(
        "Bearer token valid until {}",
        body["expires_at"].as_str().unwrap_or("?")
    ))
}

async fn step_refresh(w: &mut Walk) -> anyhow::Result<String> {
    let before = w.demo.sim.stats().tokens.refreshes;
    let path = format!("/v1/connections/{}/refresh", w.connection_id);
    let (status, body) = w.json(reqwest::Method::POST, &path, None).await?;
    ensure!(status == 200, "POST …/refresh answered {status}: {body}");
    let (status, token) = w
        .json(
            reqwest::Method::GET,
            &format!("/v1/connections/{}/token", w.connection_id),
            None,
        )
        .await?;
    ensure!(status == 200, "GET …/token after refresh answered {status}");
    let new_token = token["access_token"].as_str().unwrap_or_default();
    ensure!(
        new_token != w.access_token,
        "the access token did not change"
    );
    let after = w.demo.sim.stats().tokens.refreshes;
    ensure!(
        after == before + 1,
        "atlassim saw {} refreshes, expected 1",
        after - before
    );
    Ok("new access token; one refresh at Atlassian".into())
}

async fn step_disconnect(w: &mut Walk) -> anyhow::Result<String> {
    let path = format!("/v1/connections/{}", w.connection_id);
    let (status, body) = w.json(reqwest::Method::DELETE, &path, None).await?;
    ensure!(status == 200, "DELETE answered {status}");
    ensure!(
        body["status"] == "disconnected",
        "status is {}",
        body["status"]
    );
    let (status, _) = w
        .json(reqwest::Method::GET, &format!("{path}/token"), None)
        .await?;
    ensure!(
        status == 409,
        "a disconnected connection still hands out tokens ({status})"
    );
    Ok("tokens wiped; status disconnected".into())
}

// ---- sync, webhooks in, events out -------------------------------------------------

/// Poll `f` every 100 ms for up to 30 s.
async fn poll<T, F, Fut>(what: &str, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f().await? {
            return Ok(v);
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn first_project_key(w: &Walk) -> anyhow::Result<String> {
    let snap = w.demo.sim.snapshot();
    let site = snap["sites"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|s| s["cloud_id"] == w.chosen_cloud_id.as_str())
        })
        .ok_or_else(|| anyhow!("atlassim does not list the chosen site"))?;
    site["projects"][0]["key"]
        .as_str()
        .map(String::from)
        .ok_or_else(|| anyhow!("the chosen site has no project"))
}

async fn step_start_sync(w: &mut Walk) -> anyhow::Result<String> {
    let project = first_project_key(w)?;
    let path = format!("/v1/connections/{}/syncs", w.connection_id);
    let (status, body) = w
        .json(
            reqwest::Method::POST,
            &path,
            Some(json!({ "jql": format!("project = {project}"), "webhooks": true, "interval_s": 3600 })),
        )
        .await?;
    ensure!(status == 201, "POST …/syncs answered {status}: {body}");
    w.sync_id = body["id"].as_str().unwrap_or_default().to_string();
    let sync_path = format!("{path}/{}", w.sync_id);
    let done = poll("the first pass", || async {
        let (_, v) = w.json(reqwest::Method::GET, &sync_path, None).await?;
        if let Some(e) = v["last_error"].as_str() {
            bail!("the sync failed: {e}");
        }
        Ok((v["passes"].as_i64().unwrap_or(0) >= 1).then_some(v))
    })
    .await?;
    ensure!(
        done["webhook"]["id"].is_i64(),
        "no Jira webhook registered: {}",
        done["webhook"]
    );
    Ok(format!(
        "{} issues of {project} stored; Jira webhook #{} registered",
        done["issues_synced"], done["webhook"]["id"]
    ))
}

async fn step_webhook_update(w: &mut Walk) -> anyhow::Result<String> {
    let issues_path = format!("/v1/connections/{}/issues?limit=1", w.connection_id);
    let (status, list) = w.json(reqwest::Method::GET, &issues_path, None).await?;
    ensure!(status == 200, "GET …/issues answered {status}");
    let key = list["items"][0]["key"]
        .as_str()
        .ok_or_else(|| anyhow!("no synced issue"))?
        .to_string();
    let summary = format!(
        "Changed in Jira at {}",
        chrono::Utc::now().format("%H:%M:%S")
    );
    let resp = w
        .http
        .patch(format!(
            "{}/__sim/issues/{}/{key}",
            w.demo.sim.base_url(),
            w.chosen_cloud_id
        ))
        .json(&json!({ "fields": { "summary": summary } }))
        .send()
        .await?;
    ensure!(
        resp.status().is_success(),
        "atlassim refused the change ({})",
        resp.status()
    );
    let passes_before = {
        let (_, v) = w
            .json(
                reqwest::Method::GET,
                &format!("/v1/connections/{}/syncs/{}", w.connection_id, w.sync_id),
                None,
            )
            .await?;
        v["passes"].as_i64().unwrap_or(0)
    };
    let one = format!("/v1/connections/{}/issues?limit=1000", w.connection_id);
    poll("the local copy to change", || async {
        let (_, v) = w.json(reqwest::Method::GET, &one, None).await?;
        let found = v["items"].as_array().is_some_and(|a| {
            a.iter()
                .any(|i| i["key"] == key.as_str() && i["summary"] == summary.as_str())
        });
        Ok(found.then_some(()))
    })
    .await?;
    let event = poll("the issue.updated event at the demo app", || async {
        Ok(w.receiver.received().into_iter().find(|e| {
            e.body["type"] == "issue.updated" && e.body["data"]["issue"]["key"] == key.as_str()
        }))
    })
    .await?;
    ensure!(
        event.verified,
        "the event's Standard Webhooks signature did not verify"
    );
    let (_, v) = w
        .json(
            reqwest::Method::GET,
            &format!("/v1/connections/{}/syncs/{}", w.connection_id, w.sync_id),
            None,
        )
        .await?;
    ensure!(
        v["passes"].as_i64().unwrap_or(0) == passes_before,
        "a sync pass ran: the webhook was not what updated it"
    );
    Ok(format!(
        "{key} updated locally by the Jira webhook; signed issue.updated delivered to the demo app"
    ))
}

async fn step_webhook_removed(w: &mut Walk) -> anyhow::Result<String> {
    let token = w.demo.sim.mint_token(atlassim::MintTokenRequest {
        cloud_ids: Some(vec![w.chosen_cloud_id.clone()]),
        ..Default::default()
    });
    let v: Value = w
        .http
        .get(format!(
            "{}/ex/jira/{}/rest/api/3/webhook",
            w.demo.sim.api_url(),
            w.chosen_cloud_id
        ))
        .bearer_auth(&token.access_token)
        .send()
        .await?
        .json()
        .await?;
    ensure!(v["total"] == 0, "Jira still lists webhooks: {v}");
    let (_, sync) = w
        .json(
            reqwest::Method::GET,
            &format!("/v1/connections/{}/syncs/{}", w.connection_id, w.sync_id),
            None,
        )
        .await?;
    ensure!(sync["state"] == "stopped", "the sync is {}", sync["state"]);
    Ok("Jira lists no webhook of atlasgate; the sync is stopped".into())
}

// ---- typed Jira steps (helper D) ------------------------------------------------

/// The connected site's first project that has a scrum board, its board id,
/// and the active sprint (`(project, board, sprint)`).
async fn demo_active_sprint(w: &Walk) -> anyhow::Result<(String, i64, Value)> {
    let id = w.connection_id.clone();
    let (status, projects) = w
        .json(
            reqwest::Method::GET,
            &format!("/v1/connections/{id}/jira/projects"),
            None,
        )
        .await?;
    ensure!(
        status == 200,
        "listing projects answered {status}: {projects}"
    );
    for p in projects["items"].as_array().cloned().unwrap_or_default() {
        let key = p["key"].as_str().unwrap_or_default().to_string();
        let (_, boards) = w
            .json(
                reqwest::Method::GET,
                &format!("/v1/connections/{id}/jira/boards?project={key}"),
                None,
            )
            .await?;
        let Some(board) = boards["items"]
            .as_array()
            .and_then(|b| b.iter().find(|b| b["type"] == "scrum"))
            .and_then(|b| b["id"].as_i64())
        else {
            continue;
        };
        let (status, sprints) = w
            .json(
                reqwest::Method::GET,
                &format!("/v1/connections/{id}/jira/boards/{board}/sprints?state=active"),
                None,
            )
            .await?;
        ensure!(
            status == 200,
            "listing sprints answered {status}: {sprints}"
        );
        if let Some(s) = sprints["items"].as_array().and_then(|s| s.first()) {
            return Ok((key, board, s.clone()));
        }
    }
    Err(anyhow!(
        "no project on the site has a scrum board with an active sprint"
    ))
}

async fn step_list_projects(w: &mut Walk) -> anyhow::Result<String> {
    let id = w.connection_id.clone();
    let (status, body) = w
        .json(
            reqwest::Method::GET,
            &format!("/v1/connections/{id}/jira/projects"),
            None,
        )
        .await?;
    ensure!(
        status == 200,
        "GET /jira/projects answered {status}: {body}"
    );
    let keys: Vec<&str> = body["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["key"].as_str()).collect())
        .unwrap_or_default();
    ensure!(!keys.is_empty(), "the site has no projects");
    Ok(format!("{} projects: {}", keys.len(), keys.join(", ")))
}

async fn step_import_sprint(w: &mut Walk) -> anyhow::Result<String> {
    let (project, board, sprint) = demo_active_sprint(w).await?;
    let id = w.connection_id.clone();
    let sprint_id = sprint["id"].as_i64().unwrap_or_default();
    let (status, issues) = w
        .json(
            reqwest::Method::GET,
            &format!("/v1/connections/{id}/jira/sprints/{sprint_id}/issues"),
            None,
        )
        .await?;
    ensure!(
        status == 200,
        "GET sprint issues answered {status}: {issues}"
    );
    let items = issues["items"].as_array().cloned().unwrap_or_default();
    ensure!(!items.is_empty(), "the active sprint has no issues");
    let points: f64 = items
        .iter()
        .filter_map(|i| i["story_points"].as_f64())
        .sum();
    Ok(format!(
        "{project} board {board}, sprint \"{}\": {} issues in rank order, {points} story points",
        sprint["name"].as_str().unwrap_or_default(),
        items.len()
    ))
}

async fn step_push_estimate(w: &mut Walk) -> anyhow::Result<String> {
    let (_, board, sprint) = demo_active_sprint(w).await?;
    let id = w.connection_id.clone();
    let sprint_id = sprint["id"].as_i64().unwrap_or_default();
    let (_, issues) = w
        .json(
            reqwest::Method::GET,
            &format!("/v1/connections/{id}/jira/sprints/{sprint_id}/issues"),
            None,
        )
        .await?;
    let issue = issues["items"][0].clone();
    let key = issue["key"]
        .as_str()
        .ok_or_else(|| anyhow!("no issue to estimate"))?
        .to_string();
    // A value the issue does not have yet, so the read-back proves the write.
    let value = if issue["story_points"].as_f64() == Some(8.0) {
        5.0
    } else {
        8.0
    };
    let (status, written) = w
        .json(
            reqwest::Method::POST,
            &format!("/v1/connections/{id}/jira/issues/{key}/estimate"),
            Some(json!({"value": value, "board_id": board, "comment": "Estimated in the atlasgate demo."})),
        )
        .await?;
    ensure!(status == 200, "POST estimate answered {status}: {written}");
    let field = written["field_id"].as_str().unwrap_or_default().to_string();
    // Read it back from Jira itself, through the proxy.
    let (status, back) = w
        .json(
            reqwest::Method::GET,
            &format!("/v1/connections/{id}/proxy/jira/rest/api/3/issue/{key}?fields={field}"),
            None,
        )
        .await?;
    ensure!(status == 200, "reading {key} back answered {status}");
    let now = back["fields"][&field].as_f64();
    ensure!(
        now == Some(value),
        "Jira says {field} = {now:?}, expected {value}"
    );
    Ok(format!(
        "{key}: {field} set to {value} via board {board}; Jira reads back {value}"
    ))
}

// ---- an agent through MCP (docs/agents.md) -----------------------------------------

/// One JSON-RPC message to the connection's MCP endpoint, as an MCP client
/// sends it; the `result`.
async fn mcp_call(w: &Walk, id: i64, method: &str, params: Value) -> anyhow::Result<Value> {
    let resp = w
        .api(
            reqwest::Method::POST,
            &format!("/v1/connections/{}/mcp", w.connection_id),
        )
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .json(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }))
        .send()
        .await?;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    ensure!(status == 200, "MCP {method} answered {status}: {body}");
    ensure!(body["error"].is_null(), "MCP {method} failed: {body}");
    Ok(body["result"].clone())
}

async fn step_agent_mcp(w: &mut Walk) -> anyhow::Result<String> {
    let init = mcp_call(
        w,
        1,
        "initialize",
        json!({ "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": { "name": "demo-agent", "version": "1" } }),
    )
    .await?;
    let tools = mcp_call(w, 2, "tools/list", json!({})).await?;
    let count = tools["tools"].as_array().map_or(0, Vec::len);
    let project = first_project_key(w)?;
    let found = mcp_call(
        w,
        3,
        "tools/call",
        json!({ "name": "jira_search",
                "arguments": { "jql": format!("project = {project} AND status = \"To Do\" ORDER BY key"), "limit": 1 } }),
    )
    .await?;
    let key = found["structuredContent"]["issues"][0]["key"]
        .as_str()
        .ok_or_else(|| anyhow!("no To Do issue in {project}: {found}"))?
        .to_string();
    // Straight to Done is not a transition of To Do: the agent is told
    // which statuses it can reach, and goes through one of them.
    let first = mcp_call(
        w,
        4,
        "tools/call",
        json!({ "name": "jira_transition_issue", "arguments": { "key": key, "to": "Done" } }),
    )
    .await?;
    let mut hops = Vec::new();
    if first["isError"] == true {
        let via = first["structuredContent"]["error"]["reachable"][0]
            .as_str()
            .ok_or_else(|| anyhow!("the refusal lists no reachable status: {first}"))?
            .to_string();
        let step = mcp_call(
            w,
            5,
            "tools/call",
            json!({ "name": "jira_transition_issue", "arguments": { "key": key, "to": via } }),
        )
        .await?;
        ensure!(
            step["isError"] != true,
            "moving {key} to {via} failed: {step}"
        );
        let done = mcp_call(
            w,
            6,
            "tools/call",
            json!({ "name": "jira_transition_issue", "arguments": { "key": key, "to": "Done" } }),
        )
        .await?;
        ensure!(
            done["isError"] != true,
            "moving {key} to Done failed: {done}"
        );
        hops.push(via);
    }
    let (status, back) = w
        .json(
            reqwest::Method::GET,
            &format!(
                "/v1/connections/{}/proxy/jira/rest/api/3/issue/{key}?fields=status,resolution",
                w.connection_id
            ),
            None,
        )
        .await?;
    ensure!(status == 200, "reading {key} back answered {status}");
    let now = back["fields"]["status"]["name"].as_str().unwrap_or("?");
    ensure!(now == "Done", "Jira says {key} is {now}");
    Ok(format!(
        "MCP {} ({count} tools): {key} moved to Done{}; Jira shows it {}",
        init["protocolVersion"].as_str().unwrap_or("?"),
        if hops.is_empty() {
            String::new()
        } else {
            format!(
                " via {} (the tool error listed the reachable statuses)",
                hops.join(", ")
            )
        },
        back["fields"]["resolution"]["name"]
            .as_str()
            .map(|r| format!("resolved {r}"))
            .unwrap_or_else(|| "unresolved".into()),
    ))
}
