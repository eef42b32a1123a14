//! `atlasgate-bench soak`: does anything grow under steady load?
//!
//! atlassim runs in this process (one site, one project, short-lived access
//! tokens, webhooks on) and atlasgate as a **child process** (`atlasgate
//! serve`, SQLite by default, `--postgres-url` for a fresh PostgreSQL
//! database) with its background workers running. An app with a webhook
//! receiver in this process connects the site and syncs the project with
//! Jira webhooks. For `--minutes`, steady mixed load: `/token` and proxied
//! reads at `--rate` requests per second, an issue edited at atlassim every
//! `--edit-every-ms` (a Jira webhook to atlasgate, a re-read, an
//! `issue.updated` event to the receiver). Every `--sample-s` it samples the
//! child's RSS (`VmRSS`), open file descriptors (`/proc/PID/fd`) and the
//! database size (SQLite file + WAL, or `pg_database_size`), and prints the
//! samples (a table, or CSV with `--csv`) and a summary: first, last, max
//! and the growth over the last two thirds (warm-up excluded). At the end the
//! synced copy must hold every issue's last summary. Any 5xx, failed call or
//! stale synced issue is an error, and the run exits non-zero on errors.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use http_body_util::BodyExt;
use serde_json::{json, Value};

use atlasgate::store::{stats, Store};

#[derive(Parser, Clone)]
pub struct SoakArgs {
    /// How long the steady load runs.
    #[arg(long, default_value_t = 30)]
    minutes: u64,
    /// Seconds between samples.
    #[arg(long, default_value_t = 10)]
    sample_s: u64,
    /// `/token` and proxied requests per second (steady, not as fast as possible).
    #[arg(long, default_value_t = 40)]
    rate: u64,
    /// An issue is edited at atlassim this often (a Jira webhook each).
    #[arg(long, default_value_t = 2000)]
    edit_every_ms: u64,
    /// Issues in the synced project.
    #[arg(long, default_value_t = 40)]
    issues: usize,
    /// atlassim's access-token lifetime: refreshes happen during the run.
    #[arg(long, default_value_t = 600)]
    token_ttl_s: i64,
    /// A PostgreSQL server URL: the run gets a fresh database of its own
    /// there (dropped afterwards). Without it: SQLite in a temporary directory.
    #[arg(long, env = "ATLASGATE_BENCH_POSTGRES_URL")]
    postgres_url: Option<String>,
    /// The `atlasgate` binary (default: next to this one).
    #[arg(long)]
    atlasgate_bin: Option<PathBuf>,
    /// Print the samples as CSV instead of a table.
    #[arg(long)]
    csv: bool,
}

/// Calls made by the load, and what went wrong with them.
#[derive(Default)]
struct Tally {
    requests: AtomicU64,
    errors: AtomicU64,
    /// The first few failures, for the report.
    first_errors: Mutex<Vec<String>>,
}

impl Tally {
    fn ok(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    fn fail(&self, what: String) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut first) = self.first_errors.lock() {
            if first.len() < 10 {
                first.push(what);
            }
        }
    }

    /// Count one call: a transport error or any status but 2xx is an error.
    async fn call(&self, what: &str, req: reqwest::RequestBuilder) -> Option<reqwest::Response> {
        match req.send().await {
            Ok(resp) if resp.status().is_success() => {
                self.ok();
                Some(resp)
            }
            Ok(resp) => {
                let status = resp.status();
                let body = resp.text().await.unwrap_or_default();
                self.fail(format!(
                    "{what}: {status} {}",
                    body.chars().take(200).collect::<String>()
                ));
                None
            }
            Err(e) => {
                self.fail(format!("{what}: {e}"));
                None
            }
        }
    }
}

/// The app's webhook endpoint: counts deliveries by event type.
struct Receiver {
    url: String,
    by_type: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl Receiver {
    fn delivered(&self) -> u64 {
        self.by_type.lock().map_or(0, |m| m.values().sum())
    }
}

async fn start_receiver() -> anyhow::Result<Receiver> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let url = format!("http://{}/events", listener.local_addr()?);
    let by_type: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let counts = by_type.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let counts = counts.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let counts = counts.clone();
                        async move {
                            let body = req.into_body().collect().await.map(|b| b.to_bytes());
                            let kind = body
                                .ok()
                                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                                .and_then(|v| v["type"].as_str().map(str::to_string))
                                .unwrap_or_else(|| "unreadable".into());
                            if let Ok(mut m) = counts.lock() {
                                *m.entry(kind).or_default() += 1;
                            }
                            let mut resp = hyper::Response::new(http_body_util::Empty::<
                                hyper::body::Bytes,
                            >::new(
                            ));
                            *resp.status_mut() = hyper::StatusCode::NO_CONTENT;
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
    Ok(Receiver { url, by_type })
}

/// Where the database lives, to measure and to remove it.
enum Db {
    Sqlite(PathBuf),
    Postgres {
        admin: String,
        name: String,
        store: Store,
    },
}

impl Db {
    async fn bytes(&self) -> anyhow::Result<u64> {
        match self {
            Db::Sqlite(file) => {
                let wal = PathBuf::from(format!("{}-wal", file.display()));
                Ok([file, &wal]
                    .iter()
                    .filter_map(|p| std::fs::metadata(p).ok())
                    .map(|m| m.len())
                    .sum())
            }
            Db::Postgres { store, .. } => Ok(stats::database_size(store).await?.max(0) as u64),
        }
    }
}

#[derive(Clone, Copy)]
struct Sample {
    at_s: u64,
    rss_mib: f64,
    fds: u64,
    db_bytes: u64,
    requests: u64,
    errors: u64,
    edits: u64,
    events: u64,
}

fn open_fds(pid: u32) -> anyhow::Result<u64> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count() as u64)
}

pub async fn run(args: SoakArgs) -> anyhow::Result<()> {
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
    let dir = std::env::temp_dir().join(format!("atlasgate-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (url, db) = match &args.postgres_url {
        None => {
            let file = dir.join("soak.db");
            (format!("sqlite://{}", file.display()), Db::Sqlite(file))
        }
        Some(admin) => {
            let name = format!("atlasgate_soak_{}", std::process::id());
            let url = stats::create_postgres_database(admin, &name).await?;
            // The child migrates it; this pool only asks for its size.
            let store = Store::connect(&url).await?;
            let db = Db::Postgres {
                admin: admin.clone(),
                name,
                store,
            };
            (url, db)
        }
    };
    let result = soak(&args, &bin, &sim, &url, &db).await;
    sim.shutdown().await;
    match db {
        Db::Sqlite(_) => {}
        Db::Postgres { admin, name, store } => {
            store.close().await;
            stats::drop_postgres_database(&admin, &name).await?;
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn soak(
    args: &SoakArgs,
    bin: &std::path::Path,
    sim: &atlassim::Sim,
    url: &str,
    db: &Db,
) -> anyhow::Result<()> {
    let keys = atlasgate::vault::keys::generate();
    let port = crate::sync::free_port()?;
    let child = crate::sync::spawn_on(port, bin, sim, url, &keys, &[], &[]).await?;
    let pid = child.proc.id();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()?;
    let (key, connection, cloud_id) = crate::sync::connect(&http, &child, sim).await?;
    let base = child.base.clone();

    // The app's events go to the receiver here.
    let receiver = start_receiver().await?;
    http.patch(format!("{base}/admin/api/apps/bench"))
        .bearer_auth(&child.admin)
        .json(&json!({ "webhook_url": receiver.url }))
        .send()
        .await?
        .error_for_status()
        .context("setting the app's webhook_url")?;

    // A sync of the project with Jira webhooks, and its first pass.
    let v = crate::sync::first_pass(
        &http,
        &base,
        &key,
        &connection,
        &json!({ "jql": crate::sync::project_jql(sim), "webhooks": true, "interval_s": 300 }),
        Duration::from_millis(200),
        Duration::from_secs(120),
    )
    .await?;
    if !v["webhook"]["id"].is_i64() {
        bail!("the sync registered no Jira webhook: {v}");
    }
    let keys: Vec<String> = synced(&http, &base, &key, &connection)
        .await?
        .into_keys()
        .collect();
    if keys.len() != args.issues.max(1) {
        bail!("synced {} issues, atlassim has {}", keys.len(), args.issues);
    }

    println!(
        "atlasgate-bench soak: {} min, {} requests/s (/token, proxy), an issue edit every {} ms, {} issues, {}, atlasgate pid {pid} ({})",
        args.minutes,
        args.rate,
        args.edit_every_ms,
        keys.len(),
        match db {
            Db::Sqlite(_) => "SQLite",
            Db::Postgres { .. } => "PostgreSQL",
        },
        bin.display()
    );

    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let edits = Arc::new(AtomicU64::new(0));
    // The last summary written to each issue at atlassim.
    let last_summary: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
    let mut tasks = Vec::new();

    // Steady /token and proxy load: four callers, each at a quarter of the rate.
    const CALLERS: u64 = 4;
    let period = Duration::from_secs_f64(CALLERS as f64 / args.rate.max(1) as f64);
    for caller in 0..CALLERS {
        let (http, tally, stop) = (http.clone(), tally.clone(), stop.clone());
        let (base, key, connection, keys) =
            (base.clone(), key.clone(), connection.clone(), keys.clone());
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut n = caller as usize;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                n += 1;
                let (what, url) = match n % 3 {
                    0 => ("token", format!("{base}/v1/connections/{connection}/token")),
                    1 => (
                        "proxy myself",
                        format!("{base}/v1/connections/{connection}/proxy/jira/rest/api/3/myself"),
                    ),
                    _ => (
                        "proxy issue",
                        format!(
                            "{base}/v1/connections/{connection}/proxy/jira/rest/api/3/issue/{}",
                            keys[n % keys.len()]
                        ),
                    ),
                };
                if let Some(resp) = tally.call(what, http.get(&url).bearer_auth(&key)).await {
                    let _ = resp.bytes().await;
                }
            }
        }));
    }

    // Edits at atlassim: each one a Jira webhook to atlasgate.
    {
        let (http, tally, stop, edits, last_summary) = (
            http.clone(),
            tally.clone(),
            stop.clone(),
            edits.clone(),
            last_summary.clone(),
        );
        let (sim_base, keys) = (sim.base_url(), keys.clone());
        let every = Duration::from_millis(args.edit_every_ms.max(10));
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let issue = &keys[n % keys.len()];
                let summary = format!("soak edit {n}");
                n += 1;
                let req = http
                    .patch(format!("{sim_base}/__sim/issues/{cloud_id}/{issue}"))
                    .json(&json!({ "fields": { "summary": summary } }));
                if tally.call("edit at atlassim", req).await.is_some() {
                    edits.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut m) = last_summary.lock() {
                        m.insert(issue.clone(), summary);
                    }
                }
            }
        }));
    }

    // Samples, printed as they are taken.
    let header = "elapsed_s,rss_mib,open_fds,db_bytes,requests,errors,edits,events_delivered";
    if args.csv {
        println!("{header}");
    } else {
        println!(
            "{:>9} {:>9} {:>8} {:>12} {:>9} {:>7} {:>6} {:>7}",
            "elapsed", "RSS MiB", "open fds", "db bytes", "requests", "errors", "edits", "events"
        );
    }
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs(args.minutes * 60);
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(args.sample_s.max(1)));
    loop {
        tick.tick().await;
        let (_, rss_mib) = crate::sync::memory_mib(pid)?;
        let s = Sample {
            at_s: t0.elapsed().as_secs(),
            rss_mib,
            fds: open_fds(pid)?,
            db_bytes: db.bytes().await?,
            requests: tally.requests.load(Ordering::Relaxed),
            errors: tally.errors.load(Ordering::Relaxed),
            edits: edits.load(Ordering::Relaxed),
            events: receiver.delivered(),
        };
        if args.csv {
            println!(
                "{},{:.1},{},{},{},{},{},{}",
                s.at_s, s.rss_mib, s.fds, s.db_bytes, s.requests, s.errors, s.edits, s.events
            );
        } else {
            println!(
                "{:>8}s {:>9.1} {:>8} {:>12} {:>9} {:>7} {:>6} {:>7}",
                s.at_s, s.rss_mib, s.fds, s.db_bytes, s.requests, s.errors, s.edits, s.events
            );
        }
        samples.push(s);
        if Instant::now() >= end {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }

    // The synced copy catches up with the last edits (webhooks, then the
    // events they cause).
    let want = last_summary.lock().map(|m| m.clone()).unwrap_or_default();
    let caught_up = Instant::now();
    let stale = loop {
        let have = synced(&http, &base, &key, &connection).await?;
        let stale: Vec<&String> = want
            .iter()
            .filter(|(k, s)| have.get(*k) != Some(*s))
            .map(|(k, _)| k)
            .collect();
        if stale.is_empty() || caught_up.elapsed() > Duration::from_secs(60) {
            break stale.len() as u64;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    let requests = tally.requests.load(Ordering::Relaxed);
    let errors = tally.errors.load(Ordering::Relaxed) + stale;
    println!();
    summarise("RSS (MiB)", &samples, |s| s.rss_mib, |v| format!("{v:.1}"));
    summarise(
        "open fds",
        &samples,
        |s| s.fds as f64,
        |v| format!("{v:.0}"),
    );
    summarise(
        "database (MiB)",
        &samples,
        |s| s.db_bytes as f64 / (1024.0 * 1024.0),
        |v| format!("{v:.2}"),
    );
    let by_type = receiver
        .by_type
        .lock()
        .map(|m| m.clone())
        .unwrap_or_default();
    println!(
        "requests served: {requests} in {:.0} s ({:.1}/s) | issue edits at atlassim: {} | events delivered to the receiver: {} {by_type:?}",
        t0.elapsed().as_secs_f64(),
        requests as f64 / t0.elapsed().as_secs_f64().max(1.0),
        edits.load(Ordering::Relaxed),
        receiver.delivered(),
    );
    println!(
        "synced copy after the run: {} of {} edited issues hold their last summary{}",
        want.len() as u64 - stale,
        want.len(),
        if stale == 0 {
            String::new()
        } else {
            format!(" ({stale} stale after 60 s)")
        }
    );
    println!("errors: {errors}");
    if let Ok(first) = tally.first_errors.lock() {
        for e in first.iter() {
            println!("  {e}");
        }
    }
    drop(child);
    if errors > 0 {
        bail!("{errors} errors during the soak");
    }
    Ok(())
}

/// Key → summary of every synced issue of the connection.
async fn synced(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    connection: &str,
) -> anyhow::Result<BTreeMap<String, String>> {
    let v: Value = http
        .get(format!(
            "{base}/v1/connections/{connection}/issues?limit=1000"
        ))
        .bearer_auth(key)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(v["items"]
        .as_array()
        .context("no items")?
        .iter()
        .filter_map(|i| {
            Some((
                i["key"].as_str()?.to_string(),
                i["summary"].as_str()?.to_string(),
            ))
        })
        .collect())
}

/// First, last, max and the growth over the last two thirds (from the
/// sample a third of the way in, so warm-up is excluded).
fn summarise(
    name: &str,
    samples: &[Sample],
    f: impl Fn(&Sample) -> f64,
    show: impl Fn(f64) -> String,
) {
    let values: Vec<f64> = samples.iter().map(f).collect();
    let (Some(first), Some(last)) = (values.first(), values.last()) else {
        return;
    };
    let max = values.iter().copied().fold(f64::MIN, f64::max);
    let from = values[values.len() / 3];
    let growth = last - from;
    let pct = if from > 0.0 {
        growth / from * 100.0
    } else {
        0.0
    };
    println!(
        "{name:<15} first {:>9}  last {:>9}  max {:>9}  growth over the last two thirds {:>9} ({pct:+.1}%)",
        show(*first),
        show(*last),
        show(max),
        format!("{}{}", if growth >= 0.0 { "+" } else { "" }, show(growth)),
    );
}
