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
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
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
        .map(|b| String::from_utf8_lossy(&b.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned())
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
                TestDb { url, backend, _dir: Some(dir), pg: None }
            }
            Backend::Postgres => {
                let admin = std::env::var(PG_ENV).expect("ATLASGATE_TEST_POSTGRES_URL");
                let name = format!("atlasgate_t_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
                sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
                conn.close().await.ok();
                let mut url = url::Url::parse(&admin).unwrap();
                url.set_path(&format!("/{name}"));
                TestDb { url: url.to_string(), backend, _dir: None, pg: Some((admin, name)) }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg.take() {
            // Drop runs outside async; use a throwaway runtime on its own thread.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
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
        Self::spawn_with(TestOptions { backend, ..Default::default() }, |_| {}).await
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

        let app = Application::build_with_listener(config, listener).await.unwrap();
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
    pub async fn post_json(&self, path: &str, key: Option<&str>, body: &Value) -> reqwest::Response {
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

    /// Create an app through the admin API: `(app_id, api_key)`.
    pub async fn create_app(&self, name: &str) -> (String, String) {
        let body = self.create_app_with(&serde_json::json!({ "name": name })).await;
        (body["id"].as_str().unwrap().to_string(), body["api_key"].as_str().unwrap().to_string())
    }

    /// Create an app with a full request body; returns the 201 body.
    pub async fn create_app_with(&self, body: &Value) -> Value {
        let resp = self.admin_post_json("/admin/api/apps", body).await;
        assert_eq!(resp.status(), 201, "creating app: {}", resp.text().await.unwrap());
        resp.json().await.unwrap()
    }

    /// Stop serving (in-flight requests finish).
    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
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
    let ct = resp.headers().get("content-type").unwrap().to_str().unwrap().to_string();
    assert!(ct.starts_with("application/problem+json"), "content-type {ct}");
    let rid = resp.headers().get("x-request-id").unwrap().to_str().unwrap().to_string();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert!(body["type"].as_str().unwrap().starts_with("https://"), "{body}");
    assert!(body["title"].is_string(), "{body}");
    assert_eq!(body["request_id"], rid.as_str(), "{body}");
    body
}
