//! `atlasgate-bench faults`: a bounded, self-stopping fault campaign on
//! loopback (issue #13, RELIABILITY.md "Fault campaign").
//!
//! Set-up: atlassim in-process with short-lived access tokens; a private
//! PostgreSQL (initdb into a temp dir, its own port) or, with
//! `--postgres-url`, a database of its own on an existing server; `--pg-processes`
//! `atlasgate serve` children on that database and one on SQLite, all with
//! one encryption key; an in-bench event receiver; on each database one app
//! (its `webhook_url` the receiver), `--connections` imported connections
//! and a sync of atlassim's project (`--issues` issues), with Jira webhooks
//! on PostgreSQL (one webhook URL per OAuth app: the SQLite one polls).
//!
//! Load, until `--duration-s` is over: `--callers` callers asking for tokens
//! (`GET …/token`; one in ten a forced `POST …/refresh`, one in ten a
//! `GET …/connections/{id}`, which no cache answers) from a random
//! process of a random database, each distinct token handed out checked at
//! atlassim (`GET /me`); proxied reads (`GET …/proxy/jira/rest/api/3/myself`);
//! an importer adding a connection every couple of seconds (each one a
//! `connection.created` event for the receiver); typed writes every
//! `--write-every-ms` (an issue's summary through `PATCH …/jira/issues/{key}`,
//! one in five a comment), each edit a Jira webhook to the PostgreSQL
//! processes, and seen by both syncs (an `issue.updated` event each).
//!
//! Faults, spread over the run: `--kills` SIGKILLs of random atlasgate
//! processes, each restarted on its port after a short pause;
//! `--lost-rotations` refresh answers atlassim drops after rotating; bursts
//! of atlassim 5xx (token endpoint and Jira) and of latency; receiver
//! outages (503 for a few seconds); and `--pg-outages` database outages in
//! the middle third: the private server is stopped (`pg_ctl stop -m fast`),
//! kept down `--pg-outage-s` and started again; on a server given by
//! `--postgres-url` (never restarted: others may use it) the bench's
//! database is closed (`ALLOW_CONNECTIONS false`, its backends terminated)
//! and opened again.
//!
//! At the end, faults off and every process up, it checks and prints: no
//! connection lost (each active and its stored refresh token live: a forced
//! refresh answers 200; atlassim revoked no token family); every token handed
//! out worked at atlassim; each synced copy holds exactly atlassim's issues
//! and summaries; every event created was delivered at least once
//! (duplicates counted); no 5xx other than a documented 503 with
//! `Retry-After` — and a 503 saying the database is away only during an
//! outage. It exits non-zero when a check fails.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use atlasgate::store::stats;
use clap::Parser;
use secrecy::SecretString;
use serde_json::{json, Value};

use crate::sync::{free_port, spawn_on, Child};

#[derive(Parser, Clone, Debug)]
pub struct FaultsArgs {
    /// How long the load and the faults run, in seconds.
    #[arg(long, default_value_t = 300)]
    duration_s: u64,
    /// SIGKILLs of atlasgate processes, spread over the run.
    #[arg(long, default_value_t = 60)]
    kills: usize,
    /// Refresh answers atlassim loses after rotating, spread over the run.
    #[arg(long, default_value_t = 20)]
    lost_rotations: usize,
    /// Database outages (PostgreSQL stopped and started), in the middle third.
    #[arg(long, default_value_t = 1)]
    pg_outages: usize,
    /// Seconds each database outage lasts (longer than the pool's acquire
    /// timeout, so that requests waiting for a connection give up inside it).
    #[arg(long, default_value_t = 12)]
    pg_outage_s: u64,
    /// `atlasgate serve` processes on the PostgreSQL database (one more runs on SQLite).
    #[arg(long, default_value_t = 3)]
    pg_processes: usize,
    /// Connections imported per database before the load starts.
    #[arg(long, default_value_t = 6)]
    connections: usize,
    /// Callers asking for tokens and forced refreshes.
    #[arg(long, default_value_t = 8)]
    callers: usize,
    /// atlassim's access-token lifetime, in seconds (short: refreshes all the time).
    #[arg(long, default_value_t = 40)]
    token_ttl_s: i64,
    /// An existing PostgreSQL server (admin URL). The bench makes a database
    /// of its own there and closes it for the outages; the server is never
    /// restarted. Without it, a private server is started from
    /// `/usr/lib/postgresql/*/bin` and restarted.
    #[arg(long)]
    postgres_url: Option<String>,
    /// The `atlasgate` binary (default: next to this one).
    #[arg(long)]
    atlasgate_bin: Option<PathBuf>,
    /// At most this long, at the end, for every event to reach the receiver
    /// and for each synced copy to equal atlassim's issues.
    #[arg(long, default_value_t = 180)]
    settle_s: u64,
    /// Issues in atlassim's one project, synced on each database.
    #[arg(long, default_value_t = 20)]
    issues: usize,
    /// A typed write (`PATCH …/jira/issues/{key}`, one in five a comment)
    /// this often, through a random process of each database in turn.
    #[arg(long, default_value_t = 250)]
    write_every_ms: u64,
    /// The syncs' `interval_s` (their reconciliation pass beside the webhooks).
    #[arg(long, default_value_t = 30)]
    sync_interval_s: i64,
}

// ------------------------------------------------------------ PostgreSQL

/// A PostgreSQL server of the bench's own, in a temp dir, on a free port.
struct PrivatePg {
    bin: PathBuf,
    dir: PathBuf,
    opts: String,
    admin_url: String,
}

/// The newest installed server binaries (`/usr/lib/postgresql/N/bin`).
fn pg_bin_dir() -> anyhow::Result<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .context("no /usr/lib/postgresql: install the PostgreSQL server, or pass --postgres-url")?
        .filter_map(|e| {
            let e = e.ok()?;
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    dirs.sort();
    dirs.pop()
        .map(|(_, b)| b)
        .context("no initdb under /usr/lib/postgresql/*/bin")
}

fn running_as_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl PrivatePg {
    fn start() -> anyhow::Result<PrivatePg> {
        let bin = pg_bin_dir()?;
        let dir = std::env::temp_dir().join(format!("atlasgate-faults-pg-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        if running_as_root() {
            // initdb and postgres refuse to run as root.
            checked(
                std::process::Command::new("chown")
                    .arg("-R")
                    .arg("postgres:postgres")
                    .arg(&dir),
            )?;
        }
        let port = free_port()?;
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            dir.display()
        );
        let pg = PrivatePg {
            admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            bin,
            dir,
            opts,
        };
        let data = pg.dir.join("data");
        checked(pg.cmd("initdb").arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]))?;
        pg.ctl_start()?;
        Ok(pg)
    }

    /// One of the server's programs, as `postgres` when running as root.
    fn cmd(&self, program: &str) -> std::process::Command {
        let path = self.bin.join(program);
        if running_as_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            std::process::Command::new(path)
        }
    }

    fn ctl_start(&self) -> anyhow::Result<()> {
        checked(
            self.cmd("pg_ctl")
                .arg("-D")
                .arg(self.dir.join("data"))
                .arg("-l")
                .arg(self.dir.join("server.log"))
                .args(["-w", "-o", &self.opts, "start"]),
        )
    }

    fn ctl_stop(&self, mode: &str) -> anyhow::Result<()> {
        checked(
            self.cmd("pg_ctl")
                .arg("-D")
                .arg(self.dir.join("data"))
                .args(["-w", "-m", mode, "stop"]),
        )
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = self.ctl_stop("immediate");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn checked(cmd: &mut std::process::Command) -> anyhow::Result<()> {
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// The campaign's PostgreSQL: where its database lives and how it goes away.
struct Postgres {
    private: Option<PrivatePg>,
    admin_url: String,
    name: String,
    url: String,
}

impl Postgres {
    async fn start(args: &FaultsArgs) -> anyhow::Result<Postgres> {
        let (private, admin_url) = match &args.postgres_url {
            Some(u) => (None, u.clone()),
            None => {
                let pg = tokio::task::spawn_blocking(PrivatePg::start).await??;
                let admin = pg.admin_url.clone();
                (Some(pg), admin)
            }
        };
        let name = format!("atlasgate_faults_{}", std::process::id());
        let url = stats::create_postgres_database(&admin_url, &name).await?;
        Ok(Postgres {
            private,
            admin_url,
            name,
            url,
        })
    }

    /// Away: the private server stopped, or the database closed.
    async fn away(&self) -> anyhow::Result<()> {
        match &self.private {
            Some(pg) => tokio::task::block_in_place(|| pg.ctl_stop("fast")),
            None => {
                Ok(stats::set_postgres_database_open(&self.admin_url, &self.name, false).await?)
            }
        }
    }

    async fn back(&self) -> anyhow::Result<()> {
        match &self.private {
            Some(pg) => tokio::task::block_in_place(|| pg.ctl_start()),
            None => Ok(stats::set_postgres_database_open(&self.admin_url, &self.name, true).await?),
        }
    }

    async fn cleanup(&self) {
        if self.private.is_none() {
            let _ = stats::drop_postgres_database(&self.admin_url, &self.name).await;
        }
    }
}

// ------------------------------------------------------------ the receiver

/// The apps' `webhook_url`: records each `webhook-id` it is sent; answers
/// 503 while `down`.
struct Receiver {
    url: String,
    down: Arc<AtomicBool>,
    seen: Arc<Mutex<HashMap<String, u32>>>,
}

impl Receiver {
    async fn start() -> anyhow::Result<Receiver> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let url = format!("http://{}/events", listener.local_addr()?);
        let down = Arc::new(AtomicBool::new(false));
        let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
        let (d, s) = (down.clone(), seen.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (d, s) = (d.clone(), s.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let (d, s) = (d.clone(), s.clone());
                            async move {
                                let id = req
                                    .headers()
                                    .get("webhook-id")
                                    .and_then(|v| v.to_str().ok())
                                    .map(str::to_string);
                                let mut resp = hyper::Response::new(http_body_util::Empty::<
                                    hyper::body::Bytes,
                                >::new(
                                ));
                                if d.load(Ordering::Relaxed) {
                                    *resp.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
                                } else if let Some(id) = id {
                                    *s.lock()
                                        .unwrap_or_else(|e| e.into_inner())
                                        .entry(id)
                                        .or_default() += 1;
                                }
                                Ok::<_, Infallible>(resp)
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Receiver { url, down, seen })
    }

    fn seen(&self) -> HashMap<String, u32> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

// ------------------------------------------------------------ processes

/// One `atlasgate serve` of the campaign, restarted on its port after each kill.
struct Slot {
    db: usize,
    port: u16,
    base: String,
    child: tokio::sync::Mutex<Option<Child>>,
}

/// One database (PostgreSQL or SQLite), its app and its connections.
struct Db {
    label: &'static str,
    url: String,
    slots: Vec<usize>,
    key: String,
    connections: Mutex<Vec<String>>,
    /// The connection whose sync (with Jira webhooks) mirrors atlassim's project.
    synced: String,
}

impl Db {
    fn connections(&self) -> Vec<String> {
        self.connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[derive(Default)]
struct Counters {
    ok: AtomicU64,
    tokens_served: AtomicU64,
    tokens_checked: AtomicU64,
    tokens_failed: AtomicU64,
    refused: AtomicU64,
    retry_later_refresh: AtomicU64,
    retry_later_db: AtomicU64,
    relayed: AtomicU64,
    import_failed_upstream: AtomicU64,
    writes_ok: AtomicU64,
    write_failed_upstream: AtomicU64,
    kills: AtomicU64,
    restarts_failed: AtomicU64,
    lost_rotations: AtomicU64,
    bad: AtomicU64,
    /// The slowest answer, in milliseconds.
    slowest_ms: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

struct Campaign {
    sim: atlassim::Sim,
    http: reqwest::Client,
    bin: PathBuf,
    keys: SecretString,
    margin: String,
    slots: Vec<Slot>,
    dbs: Vec<Db>,
    receiver: Receiver,
    /// The SQLite database's directory (removed at the end).
    dir: PathBuf,
    counters: Counters,
    /// Each database outage: (start, end), `end` set when it is back.
    outages: Mutex<Vec<(Instant, Option<Instant>)>>,
    /// When each "database away" 503 was answered.
    db_503s: Mutex<Vec<Instant>>,
    checked: Mutex<HashSet<String>>,
    bad: Mutex<Vec<String>>,
    stop: AtomicBool,
}

/// A 503 saying the database is away may be answered this long after an
/// outage ends (the pool's acquire timeout, and a request that started late).
const OUTAGE_GRACE: Duration = Duration::from_secs(10);

/// Which route a call was, for the rules of [`Campaign::judge`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Route {
    Token,
    Refresh,
    /// `GET /v1/connections/{id}`: a database read no cache answers.
    Show,
    Proxy,
    Import,
    /// A typed write: an issue's summary, or a comment.
    Write,
}

impl Campaign {
    async fn spawn(&self, slot: &Slot) -> anyhow::Result<Child> {
        spawn_on(
            slot.port,
            &self.bin,
            &self.sim,
            &self.dbs[slot.db].url,
            &self.keys,
            &[
                ("ATLASGATE_REFRESH_MARGIN", self.margin.as_str()),
                ("ATLASGATE_LOG", "error"),
            ],
            &[],
        )
        .await
    }

    /// Start `slot` again, retrying while it cannot (e.g. its database is away).
    async fn restart(&self, slot: &Slot) {
        for _ in 0..60 {
            match self.spawn(slot).await {
                Ok(c) => {
                    *slot.child.lock().await = Some(c);
                    return;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
        bump(&self.counters.restarts_failed);
    }

    fn note_bad(&self, what: String) {
        bump(&self.counters.bad);
        let mut bad = self.bad.lock().unwrap_or_else(|e| e.into_inner());
        if bad.len() < 30 {
            bad.push(what);
        }
    }

    /// Count one answer; the 2xx ones are handed back.
    async fn judge(
        &self,
        route: Route,
        t0: Instant,
        sent: Result<reqwest::Response, reqwest::Error>,
    ) -> Option<Value> {
        let resp = match sent {
            Ok(r) => r,
            // No answer past the request timeout: a hang.
            Err(e) if e.is_timeout() => {
                self.note_bad(format!("{route:?} hung past the request timeout"));
                return None;
            }
            // A process killed under the call, or down until its restart.
            Err(_) => {
                bump(&self.counters.refused);
                return None;
            }
        };
        self.counters
            .slowest_ms
            .fetch_max(t0.elapsed().as_millis() as u64, Ordering::Relaxed);
        let status = resp.status().as_u16();
        let problem = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("application/problem+json"));
        let retry_after = resp.headers().contains_key("retry-after");
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let detail = body["detail"].as_str().unwrap_or_default().to_string();
        match status {
            200..=299 => {
                bump(&self.counters.ok);
                return Some(body);
            }
            503 if problem && retry_after => {
                if detail.contains("database") {
                    bump(&self.counters.retry_later_db);
                    self.db_503s
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(Instant::now());
                } else {
                    bump(&self.counters.retry_later_refresh);
                }
            }
            // Atlassian's own answer, relayed by the proxy.
            _ if route == Route::Proxy && !problem => bump(&self.counters.relayed),
            // The import's one refresh failed at atlassim (a fault): nothing stored.
            502 if route == Route::Import && problem => bump(&self.counters.import_failed_upstream),
            // Jira answered a 5xx (a fault) to the write: told as it is.
            502 if route == Route::Write && problem && detail.starts_with("Atlassian answered 5") => {
                bump(&self.counters.write_failed_upstream)
            }
            _ => self.note_bad(format!("{route:?} answered {status}: {detail}")),
        }
        None
    }

    /// A random process of `db`, and its base URL.
    fn pick(&self, db: usize) -> &str {
        let slots = &self.dbs[db].slots;
        &self.slots[slots[rand_below(slots.len())]].base
    }

    /// Check a token handed out at atlassim, once per distinct token.
    async fn check_token(&self, token: &str) {
        bump(&self.counters.tokens_served);
        if !self
            .checked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token.to_string())
        {
            return;
        }
        bump(&self.counters.tokens_checked);
        let me = self
            .http
            .get(format!("{}/me", self.sim.api_url()))
            .bearer_auth(token)
            .send()
            .await;
        if !me.is_ok_and(|r| r.status().is_success()) {
            bump(&self.counters.tokens_failed);
            self.note_bad("a token handed out did not work at atlassim".into());
        }
    }

    /// The `round`th call of load task `n`: databases in turn, a random
    /// connection of it.
    fn target(&self, n: usize, round: usize) -> (usize, String) {
        let db = (n + round) % self.dbs.len();
        let ids = self.dbs[db].connections();
        (db, ids[rand_below(ids.len())].clone())
    }

    async fn caller(self: Arc<Self>, n: usize) {
        for round in 0.. {
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            let (db, id) = self.target(n, round);
            let base = self.pick(db);
            let key = &self.dbs[db].key;
            let t0 = Instant::now();
            let dice = rand_below(10);
            if dice == 0 {
                let sent = self
                    .http
                    .post(format!("{base}/v1/connections/{id}/refresh"))
                    .bearer_auth(key)
                    .json(&json!({}))
                    .send()
                    .await;
                self.judge(Route::Refresh, t0, sent).await;
            } else if dice == 1 {
                let sent = self
                    .http
                    .get(format!("{base}/v1/connections/{id}"))
                    .bearer_auth(key)
                    .send()
                    .await;
                self.judge(Route::Show, t0, sent).await;
            } else {
                let sent = self
                    .http
                    .get(format!("{base}/v1/connections/{id}/token"))
                    .bearer_auth(key)
                    .send()
                    .await;
                if let Some(body) = self.judge(Route::Token, t0, sent).await {
                    if let Some(t) = body["access_token"].as_str() {
                        self.check_token(t).await;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn proxy_reader(self: Arc<Self>, n: usize) {
        for round in 0.. {
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            let (db, id) = self.target(n, round);
            let t0 = Instant::now();
            let sent = self
                .http
                .get(format!(
                    "{}/v1/connections/{id}/proxy/jira/rest/api/3/myself",
                    self.pick(db)
                ))
                .bearer_auth(&self.dbs[db].key)
                .send()
                .await;
            self.judge(Route::Proxy, t0, sent).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Import one connection (a grant minted at atlassim) through `db`'s API.
    async fn import(&self, db: usize, owner: &str) -> Option<String> {
        let minted = self.sim.mint_token(atlassim::MintTokenRequest::default());
        let t0 = Instant::now();
        let sent = self
            .http
            .post(format!("{}/v1/connections/import", self.pick(db)))
            .bearer_auth(&self.dbs[db].key)
            .json(&json!({ "owner": owner, "refresh_token": minted.refresh_token }))
            .send()
            .await;
        let id = self.judge(Route::Import, t0, sent).await?["id"]
            .as_str()?
            .to_string();
        self.dbs[db]
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(id.clone());
        Some(id)
    }

    /// Typed writes through a random process of each database in turn: an
    /// issue's summary (each a Jira webhook to both databases' syncs), one
    /// in five a comment instead.
    async fn writer(self: Arc<Self>, every: Duration) {
        let keys: Vec<String> = sim_issues(&self.sim).into_keys().collect();
        for round in 0usize.. {
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            let (db, id) = self.target(0, round);
            let issue = &keys[rand_below(keys.len())];
            let url = format!("{}/v1/connections/{id}/jira/issues/{issue}", self.pick(db));
            let req = if round % 5 == 4 {
                self.http
                    .post(format!("{url}/comments"))
                    .json(&json!({ "markdown": format!("faults comment **{round}**") }))
            } else {
                self.http
                    .patch(url)
                    .json(&json!({ "summary": format!("faults edit {round}") }))
            };
            let t0 = Instant::now();
            let sent = req.bearer_auth(&self.dbs[db].key).send().await;
            if self.judge(Route::Write, t0, sent).await.is_some() {
                bump(&self.counters.writes_ok);
            }
            tokio::time::sleep(every).await;
        }
    }

    async fn importer(self: Arc<Self>) {
        let mut n = 0usize;
        while !self.stop.load(Ordering::Relaxed) {
            n += 1;
            self.import(n % self.dbs.len(), &format!("faults:late:{n}"))
                .await;
            tokio::time::sleep(Duration::from_millis(2000)).await;
        }
    }

    /// Sleep until `at` (from `start`), or stop early; false when stopping.
    async fn until(&self, start: Instant, at: Duration) -> bool {
        while start.elapsed() < at {
            if self.stop.load(Ordering::Relaxed) {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        true
    }

    async fn killer(self: Arc<Self>, start: Instant, kills: usize, over: Duration) {
        for k in 0..kills {
            let at = over.mul_f64((k as f64 + 0.5) / kills.max(1) as f64);
            if !self.until(start, at).await {
                return;
            }
            let slot = &self.slots[rand_below(self.slots.len())];
            if let Some(mut c) = slot.child.lock().await.take() {
                // `Child::kill` is SIGKILL.
                let _ = c.proc.kill();
                let _ = c.proc.wait();
                bump(&self.counters.kills);
            }
            tokio::time::sleep(Duration::from_millis(100 + rand_below(1400) as u64)).await;
            self.restart(slot).await;
        }
    }

    async fn atlassim_faults(self: Arc<Self>, start: Instant, lost: usize, over: Duration) {
        let every = over / lost.max(1) as u32;
        let mut k = 0u32;
        while self.until(start, every * k + every / 2).await && (k as usize) < lost {
            // Answer lost after the rotation (handled, then the socket cut).
            self.sim
                .add_fault(fault("POST", "/oauth/token", 1, |f| f.drop = true));
            bump(&self.counters.lost_rotations);
            // Every fifth: a 5xx burst; every fifth, offset: a latency burst.
            match k % 5 {
                1 => {
                    self.sim
                        .add_fault(fault("POST", "/oauth/token", 2, |f| f.status = Some(500)));
                    self.sim
                        .add_fault(fault("GET", "/ex/jira/**", 5, |f| f.status = Some(503)));
                    self.sim
                        .add_fault(fault("PUT", "/ex/jira/**", 2, |f| f.status = Some(503)));
                }
                3 => {
                    self.sim.add_fault(fault("POST", "/oauth/token", 2, |f| {
                        f.latency_ms = Some(1500)
                    }));
                    self.sim.add_fault(fault("GET", "/ex/jira/**", 10, |f| {
                        f.latency_ms = Some(1500)
                    }));
                }
                _ => {}
            }
            k += 1;
        }
    }

    async fn receiver_outages(self: Arc<Self>, start: Instant, over: Duration) {
        let mut k = 1u32;
        while self.until(start, Duration::from_secs(17) * k).await && start.elapsed() < over {
            self.receiver.down.store(true, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_secs(4)).await;
            self.receiver.down.store(false, Ordering::Relaxed);
            k += 1;
        }
    }

    async fn db_outages(self: Arc<Self>, pg: Arc<Postgres>, start: Instant, args: FaultsArgs) {
        let over = Duration::from_secs(args.duration_s);
        for k in 0..args.pg_outages {
            // In the middle third of the run.
            let at = over / 3 + (over / 3).mul_f64((k as f64 + 0.5) / args.pg_outages as f64);
            if !self.until(start, at).await {
                return;
            }
            let began = Instant::now();
            self.outages
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((began, None));
            if let Err(e) = pg.away().await {
                self.note_bad(format!("taking the database away failed: {e:#}"));
            }
            tokio::time::sleep(Duration::from_secs(args.pg_outage_s)).await;
            if let Err(e) = pg.back().await {
                self.note_bad(format!("bringing the database back failed: {e:#}"));
            }
            if let Some(last) = self
                .outages
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .last_mut()
            {
                last.1 = Some(Instant::now());
            }
            eprintln!(
                "database outage {} of {}: {:.1} s",
                k + 1,
                args.pg_outages,
                began.elapsed().as_secs_f64()
            );
        }
    }

    /// 503s saying "database away" answered outside every outage (+ grace).
    fn db_503s_outside_outages(&self) -> usize {
        let outages = self
            .outages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        self.db_503s
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|t| {
                !outages
                    .iter()
                    .any(|(a, b)| **t >= *a && b.is_none_or(|b| **t <= b + OUTAGE_GRACE))
            })
            .count()
    }
}

fn fault(
    method: &str,
    path: &str,
    count: u32,
    tweak: impl FnOnce(&mut atlassim::Fault),
) -> atlassim::Fault {
    let mut f = atlassim::Fault::new(method, path, count);
    tweak(&mut f);
    f
}

/// A random number below `n` (splitmix64 over a counter: the campaign needs
/// spread, not quality).
fn rand_below(n: usize) -> usize {
    static STATE: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
    let mut x = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    x ^= x >> 30;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    (x % n.max(1) as u64) as usize
}

// ------------------------------------------------------------ the run

/// Every item of a paginated `GET {base}{path}` (`items`, `next_cursor`).
async fn all_items(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    key: &str,
) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{base}{path}?limit=200&cursor={c}"),
            None => format!("{base}{path}?limit=200"),
        };
        let resp = http.get(&url).bearer_auth(key).send().await?;
        if !resp.status().is_success() {
            bail!("GET {path} answered {}", resp.status());
        }
        let body: Value = resp.json().await?;
        out.extend(body["items"].as_array().cloned().unwrap_or_default());
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return Ok(out),
        }
    }
}

/// Retry `f` while it fails, for at most `secs` (the end checks run after
/// the faults, but a process may still be starting).
async fn settled<T, F, Fut>(secs: u64, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

async fn set_up(args: &FaultsArgs, pg: &Postgres) -> anyhow::Result<Campaign> {
    let bin = crate::sync::bin_or_default(args.atlasgate_bin.as_ref())?;
    let sim = atlassim::Sim::start(atlassim::SimConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        sites: 1,
        projects: 1,
        issues: args.issues.max(1),
        access_token_ttl_secs: args.token_ttl_s,
        ..Default::default()
    })
    .await?;
    let receiver = Receiver::start().await?;
    let dir = std::env::temp_dir().join(format!("atlasgate-faults-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let sqlite = format!("sqlite://{}", dir.join("faults.db").display());
    let mut slots = Vec::new();
    let mut dbs = Vec::new();
    for (label, url, n) in [
        ("postgres", pg.url.clone(), args.pg_processes.max(1)),
        ("sqlite", sqlite, 1),
    ] {
        let db = dbs.len();
        let mut mine = Vec::new();
        for _ in 0..n {
            let port = free_port()?;
            mine.push(slots.len());
            slots.push(Slot {
                db,
                port,
                base: format!("http://127.0.0.1:{port}"),
                child: tokio::sync::Mutex::new(None),
            });
        }
        dbs.push(Db {
            label,
            url,
            slots: mine,
            key: String::new(),
            connections: Mutex::new(Vec::new()),
            synced: String::new(),
        });
    }
    // Refresh when less than this is left: a third of the lifetime is kept.
    let margin = (args.token_ttl_s * 2 / 3).max(1).to_string();
    let mut c = Campaign {
        http: reqwest::Client::builder()
            .timeout(atlasgate::request::REQUEST_TIMEOUT + Duration::from_secs(5))
            .build()?,
        sim,
        bin,
        keys: atlasgate::vault::keys::generate(),
        margin,
        slots,
        dbs,
        receiver,
        dir,
        counters: Counters::default(),
        outages: Mutex::default(),
        db_503s: Mutex::default(),
        checked: Mutex::default(),
        bad: Mutex::default(),
        stop: AtomicBool::new(false),
    };
    // One at a time: the first of a database runs its migrations.
    for slot in &c.slots {
        let child = c.spawn(slot).await?;
        *slot.child.lock().await = Some(child);
    }
    for db in 0..c.dbs.len() {
        let first = &c.slots[c.dbs[db].slots[0]];
        let admin = first
            .child
            .lock()
            .await
            .as_ref()
            .map(|ch| ch.admin.clone())
            .context("no process")?;
        let resp = c
            .http
            .post(format!("{}/admin/api/apps", first.base))
            .bearer_auth(admin)
            .json(&json!({ "name": "faults", "webhook_url": c.receiver.url }))
            .send()
            .await?;
        if resp.status() != 201 {
            bail!("creating the app answered {}", resp.status());
        }
        let created: Value = resp.json().await?;
        c.dbs[db].key = created["api_key"]
            .as_str()
            .context("no api_key")?
            .to_string();
    }
    for db in 0..c.dbs.len() {
        for i in 0..args.connections.max(1) {
            c.import(db, &format!("faults:{i}"))
                .await
                .with_context(|| format!("importing a connection on {}", c.dbs[db].label))?;
        }
        // A sync of the project, its first pass done. With Jira webhooks on
        // PostgreSQL only: Jira takes one webhook URL per OAuth app ("Only
        // a single URL per app is allowed to be registered"), and the two
        // databases are two deployments of one app; the SQLite one polls.
        let webhooks = c.dbs[db].label == "postgres";
        let synced = c.dbs[db].connections()[0].clone();
        let base = c.slots[c.dbs[db].slots[0]].base.clone();
        let sync = crate::sync::first_pass(
            &c.http,
            &base,
            &c.dbs[db].key,
            &synced,
            &json!({
                "jql": crate::sync::project_jql(&c.sim),
                "webhooks": webhooks,
                "interval_s": args.sync_interval_s,
            }),
            Duration::from_millis(200),
            Duration::from_secs(60),
        )
        .await
        .with_context(|| format!("the first sync pass on {}", c.dbs[db].label))?;
        if webhooks && !sync["webhook"]["id"].is_i64() {
            bail!("the sync on {} registered no Jira webhook: {sync}", c.dbs[db].label);
        }
        c.dbs[db].synced = synced;
    }
    Ok(c)
}

/// Key → summary of every issue atlassim holds (its one site).
fn sim_issues(sim: &atlassim::Sim) -> HashMap<String, String> {
    sim.state().world().sites[0]
        .issues
        .values()
        .map(|i| (i.key.clone(), i.summary.clone()))
        .collect()
}

/// Wait (at most `secs`) until each database's synced copy holds exactly
/// atlassim's issues with atlassim's summaries; the differences left per
/// database (empty: equal) and how long it took.
async fn wait_for_synced(c: &Campaign, secs: u64) -> anyhow::Result<(Vec<Vec<String>>, Duration)> {
    let started = Instant::now();
    let want = sim_issues(&c.sim);
    loop {
        let mut diffs = Vec::new();
        for (d, db) in c.dbs.iter().enumerate() {
            let path = format!("/v1/connections/{}/issues", db.synced);
            let have: HashMap<String, String> =
                settled(60, || all_items(&c.http, c.pick(d), &path, &db.key))
                    .await?
                    .iter()
                    .filter_map(|i| Some((i["key"].as_str()?.to_string(), i["summary"].as_str()?.to_string())))
                    .collect();
            let mut diff: Vec<String> = want
                .iter()
                .filter(|(k, v)| have.get(*k) != Some(*v))
                .map(|(k, v)| format!("{k}: atlassim {v:?}, synced {:?}", have.get(k)))
                .chain(have.keys().filter(|k| !want.contains_key(*k)).map(|k| format!("{k}: synced, not at atlassim")))
                .collect();
            diff.sort();
            diffs.push(diff);
        }
        if diffs.iter().all(Vec::is_empty) || started.elapsed() > Duration::from_secs(secs) {
            return Ok((diffs, started.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Every connection of each database: active, and its stored refresh token
/// live (a forced refresh answers 200). Returns (checked, lost).
async fn check_connections(c: &Campaign, lost: &mut Vec<String>) -> anyhow::Result<usize> {
    let mut checked = 0;
    for (d, db) in c.dbs.iter().enumerate() {
        let base = c.slots[db.slots[0]].base.clone();
        let all = settled(60, || all_items(&c.http, &base, "/v1/connections", &db.key)).await?;
        for conn in all {
            checked += 1;
            let id = conn["id"].as_str().unwrap_or_default().to_string();
            let status = conn["status"].as_str().unwrap_or_default().to_string();
            if status != "active" {
                lost.push(format!("{} {id}: {status}", db.label));
                continue;
            }
            let refreshed = settled(30, || forced_refresh(&c.http, c.pick(d), &id, &db.key)).await;
            match refreshed {
                Ok(Ok(())) => {}
                Ok(Err(s)) => lost.push(format!("{} {id}: forced refresh answered {s}", db.label)),
                Err(e) => lost.push(format!("{} {id}: forced refresh: {e}", db.label)),
            }
        }
    }
    Ok(checked)
}

/// `POST …/refresh`: `Ok(Ok(()))` on 200, `Ok(Err(status))` on a final
/// refusal, an error (retried by [`settled`]) on a 503 or a refused call.
async fn forced_refresh(
    http: &reqwest::Client,
    base: &str,
    id: &str,
    key: &str,
) -> anyhow::Result<Result<(), u16>> {
    let r = http
        .post(format!("{base}/v1/connections/{id}/refresh"))
        .bearer_auth(key)
        .json(&json!({}))
        .send()
        .await?;
    match r.status().as_u16() {
        200 => Ok(Ok(())),
        503 => bail!("503"),
        s => Ok(Err(s)),
    }
}

/// Every event on each database, and how many the receiver has not seen.
async fn wait_for_events(c: &Campaign, secs: u64) -> anyhow::Result<(usize, usize, u64)> {
    let mut ids = HashSet::new();
    for db in &c.dbs {
        let base = c.slots[db.slots[0]].base.clone();
        for e in settled(60, || all_items(&c.http, &base, "/v1/events", &db.key)).await? {
            if let Some(id) = e["id"].as_str() {
                ids.insert(id.to_string());
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let seen = c.receiver.seen();
        let missing = ids.iter().filter(|id| !seen.contains_key(*id)).count();
        if missing == 0 || Instant::now() > deadline {
            let dups: u64 = seen.values().map(|n| u64::from(n.saturating_sub(1))).sum();
            return Ok((ids.len(), missing, dups));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub async fn run(args: FaultsArgs) -> anyhow::Result<()> {
    let pg = Arc::new(Postgres::start(&args).await?);
    let result = campaign(&args, pg.clone()).await;
    pg.cleanup().await;
    result
}

async fn campaign(args: &FaultsArgs, pg: Arc<Postgres>) -> anyhow::Result<()> {
    let c = Arc::new(set_up(args, &pg).await?);
    let result = run_campaign(args, &pg, &c).await;
    for slot in &c.slots {
        slot.child.lock().await.take();
    }
    let _ = std::fs::remove_dir_all(&c.dir);
    result
}

async fn run_campaign(
    args: &FaultsArgs,
    pg: &Arc<Postgres>,
    c: &Arc<Campaign>,
) -> anyhow::Result<()> {
    let load = uptime_load();
    let over = Duration::from_secs(args.duration_s);
    println!(
        "atlasgate-bench faults: {} s, {} atlasgate processes on PostgreSQL ({}) + 1 on SQLite, {} callers, {} connections per database, access tokens live {} s, load average before: {load}",
        args.duration_s,
        args.pg_processes,
        if pg.private.is_some() { "private server, restarted" } else { "given server, database closed" },
        args.callers,
        args.connections,
        args.token_ttl_s
    );
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..args.callers.max(1) {
        tasks.spawn(c.clone().caller(n));
    }
    for n in 0..2 {
        tasks.spawn(c.clone().proxy_reader(n));
    }
    tasks.spawn(c.clone().importer());
    tasks.spawn(
        c.clone()
            .writer(Duration::from_millis(args.write_every_ms.max(10))),
    );
    tasks.spawn(c.clone().killer(started, args.kills, over));
    tasks.spawn(
        c.clone()
            .atlassim_faults(started, args.lost_rotations, over),
    );
    tasks.spawn(c.clone().receiver_outages(started, over));
    tasks.spawn(c.clone().db_outages(pg.clone(), started, args.clone()));
    while started.elapsed() < over {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    c.stop.store(true, Ordering::Relaxed);
    while let Some(r) = tasks.join_next().await {
        r?;
    }
    let ran = started.elapsed();

    // The end checks: faults off, every process up.
    c.sim.clear_faults();
    c.receiver.down.store(false, Ordering::Relaxed);
    for slot in &c.slots {
        if slot.child.lock().await.is_none() {
            c.restart(slot).await;
        }
    }
    let mut lost = Vec::new();
    let checked = check_connections(c, &mut lost).await?;
    let revoked = c.sim.stats().tokens.family_revocations;
    let (unsynced, caught_up) = wait_for_synced(c, args.settle_s).await?;
    let (events, missing, dups) = wait_for_events(c, args.settle_s).await?;
    let outside = c.db_503s_outside_outages();
    let stats = c.sim.stats();
    let (tokens, webhooks) = (stats.tokens, stats.webhooks);
    let n = &c.counters;

    println!();
    println!(
        "ran {:.0} s; load average after: {}",
        ran.as_secs_f64(),
        uptime_load()
    );
    println!(
        "faults: {} SIGKILLs ({} restarts failed), {} lost rotations, {} database outage(s), receiver outages every 17 s",
        get(&n.kills),
        get(&n.restarts_failed),
        get(&n.lost_rotations),
        c.outages.lock().unwrap_or_else(|e| e.into_inner()).len()
    );
    println!(
        "answers: {} ok, {} tokens served ({} distinct, checked at atlassim), {} refused or cut (process down or killed), {} relayed from atlassim",
        get(&n.ok),
        get(&n.tokens_served),
        get(&n.tokens_checked),
        get(&n.refused),
        get(&n.relayed)
    );
    println!(
        "slowest answer: {:.1} s (request timeout {} s)",
        get(&n.slowest_ms) as f64 / 1000.0,
        atlasgate::request::REQUEST_TIMEOUT.as_secs()
    );
    println!(
        "503 with Retry-After: {} database away, {} Atlassian could not refresh; {} imports refused by a fault at atlassim",
        get(&n.retry_later_db),
        get(&n.retry_later_refresh),
        get(&n.import_failed_upstream)
    );
    println!(
        "atlassim: {} refreshes, {} inside the reuse window, {} families revoked",
        tokens.refreshes, tokens.reuse_in_window, tokens.family_revocations
    );
    println!(
        "typed writes: {} ok, {} refused by a fault at Jira (502); Jira webhooks from atlassim: {} deliveries, {} failed attempts",
        get(&n.writes_ok),
        get(&n.write_failed_upstream),
        webhooks.deliveries,
        webhooks.failures
    );
    println!(
        "events: {events} created, {} delivered, {dups} duplicate deliveries",
        events - missing
    );
    let checks = [
        (
            format!("connections lost: {} of {checked}", lost.len()),
            lost.is_empty() && revoked == 0 && checked > 0,
        ),
        (
            format!("token families revoked: {revoked}"),
            revoked == 0,
        ),
        (
            format!(
                "tokens that did not work at atlassim: {} of {}",
                get(&n.tokens_failed),
                get(&n.tokens_checked)
            ),
            get(&n.tokens_failed) == 0 && get(&n.tokens_checked) > 0,
        ),
        (
            format!(
                "synced issues that differ from atlassim's: {} (of {} issues, on {} databases; {:.1} s to catch up after the load)",
                unsynced.iter().map(Vec::len).sum::<usize>(),
                args.issues,
                c.dbs.len(),
                caught_up.as_secs_f64()
            ),
            unsynced.iter().all(Vec::is_empty) && get(&n.writes_ok) > 0,
        ),
        (
            format!("events not delivered: {missing} of {events}"),
            missing == 0 && events > 0,
        ),
        (
            format!(
                "bad answers (500, 503 without Retry-After, any other 5xx or 4xx, no answer in time): {}",
                get(&n.bad)
            ),
            get(&n.bad) == 0,
        ),
        (
            format!("'database away' 503s outside an outage: {outside}"),
            outside == 0,
        ),
        (
            format!("processes that did not restart: {}", get(&n.restarts_failed)),
            get(&n.restarts_failed) == 0,
        ),
    ];
    println!();
    for (what, ok) in &checks {
        println!("[{}] {what}", if *ok { "ok" } else { "FAIL" });
    }
    for l in &lost {
        println!("  lost: {l}");
    }
    for (db, diff) in c.dbs.iter().zip(&unsynced) {
        for d in diff.iter().take(10) {
            println!("  unsynced on {}: {d}", db.label);
        }
    }
    for b in c.bad.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        println!("  bad: {b}");
    }
    if checks.iter().any(|(_, ok)| !ok) {
        bail!("the fault campaign found problems");
    }
    Ok(())
}

/// The 1-minute load average (`/proc/loadavg`), for the report.
fn uptime_load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}
