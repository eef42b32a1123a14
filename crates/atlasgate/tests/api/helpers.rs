//! `TestApp`: atlasgate on a fresh database (SQLite temp file or a new
//! PostgreSQL database), with atlassim in-process as the Atlassian on the
//! other side, plus typed request helpers and captured logs.
#![allow(dead_code)]

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use atlasgate::config::Config;
use atlasgate::store::{Backend, Store};
use atlasgate::vault::Keyring;
use atlasgate::{AppState, Application};
use secrecy::SecretString;
use serde_json::Value;
use sqlx::Connection;

// ---------------------------------------------------------------- logs

#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

static LOGS: OnceLock<LogBuffer> = OnceLock::new();

/// Install (once) a DEBUG subscriber that writes every log line of this test
/// process into memory.
pub fn capture_logs() {
    LOGS.get_or_init(|| {
        let buf = LogBuffer::default();
        let writer = buf.clone();
        let filter = tracing_subscriber::EnvFilter::new(
            "debug,hyper=info,hyper_util=info,h2=info,rustls=info,tower=info,reqwest=info",
        );
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init();
        buf
    });
}

/// Everything logged so far by any test in this process.
pub fn captured_logs() -> String {
    LOGS.get()
        .map(|b| {
            String::from_utf8_lossy(&b.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------- backends

const PG_ENV: &str = "ATLASGATE_TEST_POSTGRES_URL";

/// The backends storage tests run on: SQLite always, PostgreSQL when
/// `ATLASGATE_TEST_POSTGRES_URL` is set (in CI it must be).
pub fn backends() -> Vec<Backend> {
    let mut v = vec![Backend::Sqlite];
    match std::env::var(PG_ENV) {
        Ok(u) if !u.is_empty() => v.push(Backend::Postgres),
        _ => {
            if std::env::var_os("CI").is_some() {
                panic!("{PG_ENV} is not set, and CI requires the PostgreSQL storage tests");
            }
            eprintln!("skipping PostgreSQL: {PG_ENV} is not set");
        }
    }
    v
}

/// A database that exists for one test and is removed after it.
pub struct TestDb {
    pub url: String,
    pub backend: Backend,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>, // (admin url, database name)
}

impl TestDb {
    pub async fn create(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}/atlasgate.db", dir.path().display());
                TestDb {
                    url,
                    backend,
                    _dir: Some(dir),
                    pg: None,
                }
            }
            Backend::Postgres => {
                let admin = std::env::var(PG_ENV).expect("ATLASGATE_TEST_POSTGRES_URL");
                let name = format!("atlasgate_t_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                conn.close().await.ok();
                let mut url = url::Url::parse(&admin).unwrap();
                url.set_path(&format!("/{name}"));
                TestDb {
                    url: url.to_string(),
                    backend,
                    _dir: None,
                    pg: Some((admin, name)),
                }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg.take() {
            // Drop runs outside async; use a throwaway runtime on its own thread.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(async {
                    let mut conn = sqlx::PgConnection::connect(&admin).await.ok()?;
                    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await
                        .ok()?;
                    Some(())
                })
            })
            .join();
        }
    }
}

// ---------------------------------------------------------------- the app

pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub address: String,
    pub port: u16,
    pub sim: atlassim::Sim,
    pub admin_token: String,
    pub store: Store,
    pub state: AppState,
    pub keyring: Keyring,
    pub backend: Backend,
    /// No redirects followed; no cookie store.
    pub client: reqwest::Client,
    pub db: TestDb,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Knobs for [`TestApp::spawn_with`].
pub struct TestOptions {
    pub backend: Backend,
    /// `None` turns the admin routes off.
    pub admin_token: Option<String>,
    pub sim: atlassim::SimConfig,
    pub keyring: Option<Keyring>,
}

impl Default for TestOptions {
    fn default() -> Self {
        TestOptions {
            backend: Backend::Sqlite,
            admin_token: Some(format!("admin-{}", uuid::Uuid::new_v4().simple())),
            sim: atlassim::SimConfig::default(),
            keyring: None,
        }
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(TestOptions::default(), |_| {}).await
    }

    pub async fn spawn_on(backend: Backend) -> TestApp {
        Self::spawn_with(
            TestOptions {
                backend,
                ..Default::default()
            },
            |_| {},
        )
        .await
    }

    /// Start with options; `tweak` may change the config last.
    pub async fn spawn_with(opts: TestOptions, tweak: impl FnOnce(&mut Config)) -> TestApp {
        capture_logs();
        // Bind atlasgate first: atlassim's client needs our callback URL.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let address = format!("http://127.0.0.1:{port}");

        let mut sim_config = opts.sim;
        sim_config.listen = "127.0.0.1:0".parse().unwrap();
        for c in &mut sim_config.clients {
            c.redirect_uris = vec![format!("{address}/oauth/callback")];
        }
        let sim = atlassim::Sim::start(sim_config).await.unwrap();

        let db = TestDb::create(opts.backend).await;
        let keyring = opts.keyring.unwrap_or_else(Keyring::generate);
        let mut config = Config::for_tests(db.url.clone(), keyring.clone());
        config.public_url = url::Url::parse(&address).unwrap();
        config.auth_url = url::Url::parse(&sim.auth_url()).unwrap();
        config.api_url = url::Url::parse(&sim.api_url()).unwrap();
        config.admin_token = opts.admin_token.clone().map(SecretString::from);
        tweak(&mut config);

        let app = Application::build_with_listener(config, listener)
            .await
            .unwrap();
        let state = app.state().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until(async {
            let _ = rx.await;
        }));
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        TestApp {
            address,
            port,
            sim,
            admin_token: opts.admin_token.unwrap_or_default(),
            store: state.store.clone(),
            state,
            keyring,
            backend: opts.backend,
            client,
            db,
            stop: Some(tx),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// `GET path` with an app key (or none).
    pub async fn get(&self, path: &str, key: Option<&str>) -> reqwest::Response {
        let mut req = self.client.get(self.url(path));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        req.send().await.unwrap()
    }

    /// `POST path` with a JSON body and an app key (or none).
    pub async fn post_json(
        &self,
        path: &str,
        key: Option<&str>,
        body: &Value,
    ) -> reqwest::Response {
        let mut req = self.client.post(self.url(path)).json(body);
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        req.send().await.unwrap()
    }

    pub async fn admin_get(&self, path: &str) -> reqwest::Response {
        self.get(path, Some(&self.admin_token)).await
    }

    pub async fn admin_post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.post_json(path, Some(&self.admin_token), body).await
    }

    /// `GET path` with an app key, the body parsed as JSON whatever the status.
    pub async fn get_json(&self, path: &str, key: &str) -> Value {
        self.get(path, Some(key)).await.json().await.unwrap()
    }

    /// `GET path` with an app key, asserting 200; the body as JSON.
    pub async fn get_ok(&self, path: &str, key: &str) -> Value {
        let resp = self.get(path, Some(key)).await;
        assert_eq!(resp.status(), 200, "GET {path}");
        resp.json().await.unwrap()
    }

    /// `DELETE path` with an app key.
    pub async fn delete(&self, path: &str, key: &str) -> reqwest::Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
    }

    /// The status atlassim answers `GET /me` with this access token (200: it works).
    pub async fn sim_me_status(&self, access_token: &str) -> u16 {
        self.client
            .get(format!("{}/me", self.sim.api_url()))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// `POST /v1/connections/{id}/refresh` with an app key.
    pub async fn refresh_connection(&self, key: &str, id: &str) -> reqwest::Response {
        self.post_json(
            &format!("/v1/connections/{id}/refresh"),
            Some(key),
            &serde_json::json!({}),
        )
        .await
    }

    /// `GET /v1/connections/{id}/token` with an app key, parsed as JSON.
    pub async fn connection_token(&self, key: &str, id: &str) -> Value {
        self.get_json(&format!("/v1/connections/{id}/token"), key)
            .await
    }

    /// The Jira webhooks atlassim holds on `cloud_id`, read straight from atlassim.
    pub async fn sim_webhooks(&self, cloud_id: &str) -> Value {
        let token = self
            .sim
            .mint_token(atlassim::MintTokenRequest::default())
            .access_token;
        let url = format!(
            "{}/ex/jira/{cloud_id}/rest/api/3/webhook",
            self.sim.base_url()
        );
        reqwest::Client::new()
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Create an app through the admin API: `(app_id, api_key)`.
    pub async fn create_app(&self, name: &str) -> (String, String) {
        let body = self
            .create_app_with(&serde_json::json!({ "name": name }))
            .await;
        (
            body["id"].as_str().unwrap().to_string(),
            body["api_key"].as_str().unwrap().to_string(),
        )
    }

    /// A new app `name` with `owner` connected to the first atlassim site: `(api_key, connection_id)`.
    pub async fn connected_app(&self, name: &str, owner: &str) -> (String, String) {
        let (_, key) = self.create_app(name).await;
        let sites = crate::connect::sim_sites(self);
        let id = crate::connect::connect(self, &key, owner, &sites[..1], None).await;
        (key, id)
    }

    /// Create an app that may send people back to `origin`: its api key.
    pub async fn create_app_returning_to(&self, name: &str, origin: &str) -> String {
        let body = serde_json::json!({ "name": name, "return_origins": [origin] });
        self.create_app_with(&body).await["api_key"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Create an app with a full request body; returns the 201 body.
    pub async fn create_app_with(&self, body: &Value) -> Value {
        let resp = self.admin_post_json("/admin/api/apps", body).await;
        assert_eq!(
            resp.status(),
            201,
            "creating app: {}",
            resp.text().await.unwrap()
        );
        resp.json().await.unwrap()
    }

    /// Stop serving (in-flight requests finish).
    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// Another atlasgate process of the same deployment (this app's database,
/// atlassim and public URL), stopped on drop.
pub struct OtherProcess {
    /// `http://127.0.0.1:PORT`
    pub address: String,
    pub state: AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl OtherProcess {
    /// Stop serving (in-flight requests finish).
    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for OtherProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

impl TestApp {
    /// Start another atlasgate process on this app's database, holding `keyring`.
    pub async fn spawn_other(&self, keyring: Keyring) -> OtherProcess {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let mut config = Config::for_tests(self.db.url.clone(), keyring);
        config.public_url = url::Url::parse(&self.address).unwrap();
        config.auth_url = url::Url::parse(&self.sim.auth_url()).unwrap();
        config.api_url = url::Url::parse(&self.sim.api_url()).unwrap();
        let app = Application::build_with_listener(config, listener)
            .await
            .unwrap();
        let state = app.state().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until(async {
            let _ = rx.await;
        }));
        OtherProcess {
            address,
            state,
            stop: Some(tx),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Assert the response is an RFC 9457 problem with this status; returns the body.
pub async fn assert_problem(resp: reqwest::Response, status: u16) -> Value {
    assert_eq!(resp.status().as_u16(), status);
    let ct = resp
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        ct.starts_with("application/problem+json"),
        "content-type {ct}"
    );
    let rid = resp
        .headers()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert!(
        body["type"].as_str().unwrap().starts_with("https://"),
        "{body}"
    );
    assert!(body["title"].is_string(), "{body}");
    assert_eq!(body["request_id"], rid.as_str(), "{body}");
    body
}

// ---------------------------------------------------------------- waiting

/// Poll `f` every 50 ms until it returns `Some`, for at most `secs`.
pub async fn wait_for<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {secs} s waiting for {what}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Block until `child` exits, for at most `secs`; `None` if it is still running.
pub fn wait_exit(child: &mut std::process::Child, secs: u64) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------- browser

/// A running chromedriver, killed and reaped on drop, with a fresh profile dir.
pub struct Driver {
    child: std::process::Child,
    port: u16,
    profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// chromedriver on a free port, or `None` (skip) outside CI when it is missing.
pub async fn chromedriver() -> Option<Driver> {
    if !std::path::Path::new("/usr/bin/chromedriver").exists() {
        if std::env::var_os("CI").is_some() {
            panic!("/usr/bin/chromedriver is missing, and CI requires the browser tests");
        }
        eprintln!("skipping browser test: /usr/bin/chromedriver is not installed");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new("/usr/bin/chromedriver")
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Owned by the guard from here on: killed and reaped on every path.
    let driver = Driver {
        child,
        port,
        profile: tempfile::tempdir().unwrap(),
    };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Some(driver);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start");
}

impl Driver {
    /// A headless Chromium session driven through this chromedriver.
    pub async fn browser(&self) -> fantoccini::Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": "/usr/bin/chromium",
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                         "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
                         format!("--user-data-dir={}", self.profile.path().display())]
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        fantoccini::ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .unwrap()
    }
}
