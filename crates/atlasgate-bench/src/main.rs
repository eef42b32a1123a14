//! `atlasgate-bench proxy`: what atlasgate's proxy and token endpoint cost.
//!
//! One process starts atlassim (with `--latency-ms`, standing in for the
//! network distance to Atlassian) and atlasgate on SQLite, connects a site,
//! and then measures with a fixed concurrency, request count and warm-up:
//!
//! - `GET …/proxy/jira/rest/api/3/myself` against the same request sent
//!   straight to atlassim with the connection's access token;
//! - `GET /v1/connections/{id}/token` against `GET /healthz`.
//!
//! Each pair runs `--rounds` times alternately; the median round is
//! reported. Pacing is off (it would hold one endpoint under 90 rps by
//! design, which is not what is measured here). See `BENCHMARKS.md`.
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod dos;
mod floor;
mod issue_keys;
mod scale;
mod sync;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use atlasgate::atlassian::ClientPolicy;
use atlasgate::config::Config;
use atlasgate::vault::Keyring;
use atlasgate::Application;
use clap::{Parser, Subcommand};
use secrecy::SecretString;
use serde_json::Value;

#[derive(Parser)]
#[command(
    name = "atlasgate-bench",
    about = "Benchmarks of atlasgate against atlassim"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Proxy vs. direct, /token vs. /healthz.
    Proxy(ProxyArgs),
    /// Full sync throughput vs. sequential paging, and atlasgate's peak memory.
    Sync(sync::SyncArgs),
    /// The issue-9 hostile text for `POST …/jira/issue-keys`, per atlasgate binary.
    IssueKeys(issue_keys::IssueKeysArgs),
    /// 1,000 vs. 100,000 connections: /token, RSS, database size, background passes, a refresh wave.
    Scale(scale::ScaleArgs),
    /// Issue 9's denial-of-service figures: rate limits behind a proxy, pacer memory, issue-keys.
    Dos(dos::DosArgs),
}

#[derive(Parser, Clone)]
struct ProxyArgs {
    /// Requests in flight at any time.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Measured requests per run.
    #[arg(long, default_value_t = 4000)]
    requests: usize,
    /// Unmeasured requests before each run.
    #[arg(long, default_value_t = 400)]
    warmup: usize,
    /// Runs of each pair (the median run is reported).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Delay atlassim adds to every gateway request (the network to Atlassian).
    #[arg(long, default_value_t = 20)]
    latency_ms: u64,
    /// Only the /token vs. /healthz pair (for profiling).
    #[arg(long)]
    token_only: bool,
}

#[derive(Debug, Clone, Copy)]
struct Run {
    rps: f64,
    p50: Duration,
    p95: Duration,
}

struct Target {
    url: String,
    bearer: String,
}

async fn measure(http: &reqwest::Client, t: &Target, args: &ProxyArgs) -> anyhow::Result<Run> {
    // Warm-up: connections opened, caches filled.
    run_load(http, t, args.concurrency, args.warmup).await?;
    let (elapsed, mut lat) = run_load(http, t, args.concurrency, args.requests).await?;
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    Ok(Run {
        rps: args.requests as f64 / elapsed.as_secs_f64(),
        p50: pct(0.50),
        p95: pct(0.95),
    })
}

async fn run_load(
    http: &reqwest::Client,
    t: &Target,
    concurrency: usize,
    n: usize,
) -> anyhow::Result<(Duration, Vec<Duration>)> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers = (0..concurrency).map(|_| {
        let http = http.clone();
        let next = next.clone();
        let url = t.url.clone();
        let bearer = t.bearer.clone();
        tokio::spawn(async move {
            let mut lat = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let t0 = Instant::now();
                let mut req = http.get(&url);
                if !bearer.is_empty() {
                    req = req.bearer_auth(&bearer);
                }
                let resp = req.send().await?;
                let status = resp.status();
                resp.bytes().await?;
                if !status.is_success() {
                    bail!("{url} answered {status}");
                }
                lat.push(t0.elapsed());
            }
            Ok::<_, anyhow::Error>(lat)
        })
    });
    let mut all = Vec::with_capacity(n);
    for w in futures::future::join_all(workers).await {
        all.extend(w??);
    }
    Ok((started.elapsed(), all))
}

struct Env {
    sim: atlassim::Sim,
    base: String,
    key: String,
    connection: String,
    cloud_id: String,
    access_token: String,
    _dir: std::path::PathBuf,
}

async fn setup(args: &ProxyArgs) -> anyhow::Result<Env> {
    let dir = std::env::temp_dir().join(format!("atlasgate-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let sim = atlassim::Sim::start(atlassim::SimConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        latency_ms: args.latency_ms,
        ..Default::default()
    })
    .await?;
    sim.add_redirect_uri(
        atlassim::config::DEFAULT_CLIENT_ID,
        &format!("{base}/oauth/callback"),
    );

    let db = dir.join("bench.db");
    let _ = std::fs::remove_file(&db);
    let (state, created) = serve_on_sim(
        format!("sqlite://{}", db.display()),
        listener,
        &base,
        &sim,
        "bench",
    )
    .await?;
    let key = created.api_key.expose().to_string();

    // Connect the first site, as a person would (atlassim consents).
    let scopes = state
        .config
        .profiles
        .get("jira")
        .map(|p| p.scopes.clone())
        .unwrap_or_default();
    let session = atlasgate::connect::create_session(
        &state,
        &atlasgate::connect::NewConnectSession {
            app_id: created.app.id.clone(),
            owner: "bench:1".into(),
            profile: "jira".into(),
            return_to: None,
            scopes,
        },
    )
    .await
    .map_err(|e| anyhow!("connect session: {e}"))?;
    let cloud_id = sim.snapshot()["sites"][0]["cloud_id"]
        .as_str()
        .context("atlassim has no site")?
        .to_string();
    sim.set_next_consent(atlassim::ConsentDecision {
        account_id: None,
        sites: Some(vec![cloud_id.clone()]),
        deny: false,
    });
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let mut browser = atlasgate_testkit::Browser::new(http.clone());
    let page = browser.get(&session.connect_url).await?;
    if !page.body.contains("Connected") {
        bail!("connecting failed: {} {}", page.status, page.url);
    }
    let list: Value = http
        .get(format!("{base}/v1/connections"))
        .bearer_auth(&key)
        .send()
        .await?
        .json()
        .await?;
    let connection = list["items"][0]["id"]
        .as_str()
        .context("no connection")?
        .to_string();
    let token: Value = http
        .get(format!("{base}/v1/connections/{connection}/token"))
        .bearer_auth(&key)
        .send()
        .await?
        .json()
        .await?;
    let access_token = token["access_token"]
        .as_str()
        .context("no token")?
        .to_string();
    Ok(Env {
        sim,
        base,
        key,
        connection,
        cloud_id,
        access_token,
        _dir: dir,
    })
}

/// atlasgate on `database_url`, served on `listener` at `base`, talking to
/// `sim` with pacing off, plus one app named `app_name`.
pub(crate) async fn serve_on_sim(
    database_url: String,
    listener: tokio::net::TcpListener,
    base: &str,
    sim: &atlassim::Sim,
    app_name: &str,
) -> anyhow::Result<(atlasgate::AppState, atlasgate::apps::CreatedApp)> {
    let mut config = Config::for_tests(database_url, Keyring::generate());
    config.listen = listener.local_addr()?;
    config.public_url = url::Url::parse(base)?;
    config.auth_url = url::Url::parse(&sim.auth_url())?;
    config.api_url = url::Url::parse(&sim.api_url())?;
    config.client_id = atlassim::config::DEFAULT_CLIENT_ID.to_string();
    config.client_secret = SecretString::from(atlassim::config::DEFAULT_CLIENT_SECRET);
    // atlassim runs without a quota here: the budget must not be what binds.
    config.points.per_hour = 1_000_000_000;
    let app = Application::build_with_listener(config, listener).await?;
    let state = app.state().clone();
    state.atlassian.set_policy(ClientPolicy {
        pacing: None,
        ..ClientPolicy::default()
    });
    tokio::spawn(app.run_until(std::future::pending()));
    let created = atlasgate::apps::create(
        &state.store,
        &state.cipher,
        atlasgate::apps::NewApp {
            name: atlasgate::apps::AppName::parse(app_name).map_err(|e| anyhow!(e))?,
            webhook_url: None,
            return_origins: Vec::new(),
        },
    )
    .await?;
    Ok((state, created))
}

fn median(mut runs: Vec<Run>) -> Run {
    runs.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    runs[runs.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn line(name: &str, r: &Run) {
    println!(
        "{name:<44} {:>9.0} req/s   p50 {:>9}   p95 {:>9}",
        r.rps,
        ms(r.p50),
        ms(r.p95)
    );
}

async fn proxy(args: ProxyArgs) -> anyhow::Result<()> {
    let env = setup(&args).await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency * 2)
        .build()?;
    let direct = Target {
        url: format!(
            "{}/ex/jira/{}/rest/api/3/myself",
            env.sim.api_url().trim_end_matches('/'),
            env.cloud_id
        ),
        bearer: env.access_token.clone(),
    };
    let proxied = Target {
        url: format!(
            "{}/v1/connections/{}/proxy/jira/rest/api/3/myself",
            env.base, env.connection
        ),
        bearer: env.key.clone(),
    };
    let floor_addr = floor::start(
        &format!(
            "{}/ex/jira/{}",
            env.sim.api_url().trim_end_matches('/'),
            env.cloud_id
        ),
        &env.access_token,
    )
    .await?;
    let passthrough = Target {
        url: format!("http://{floor_addr}/rest/api/3/myself"),
        bearer: env.key.clone(),
    };
    let token = Target {
        url: format!("{}/v1/connections/{}/token", env.base, env.connection),
        bearer: env.key.clone(),
    };
    let health = Target {
        url: format!("{}/healthz", env.base),
        bearer: String::new(),
    };

    println!(
        "atlasgate-bench proxy: concurrency {}, {} requests (+{} warm-up) per run, {} rounds, atlassim latency {} ms",
        args.concurrency, args.requests, args.warmup, args.rounds, args.latency_ms
    );
    let (mut d, mut p, mut h, mut t) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut f = Vec::new();
    for _ in 0..args.rounds.max(1) {
        if args.token_only {
            let r = Run {
                rps: 1.0,
                p50: Duration::from_millis(1),
                p95: Duration::from_millis(1),
            };
            d.push(r);
            p.push(r);
            f.push(r);
        } else {
            d.push(measure(&http, &direct, &args).await?);
            p.push(measure(&http, &proxied, &args).await?);
            f.push(measure(&http, &passthrough, &args).await?);
        }
        h.push(measure(&http, &health, &args).await?);
        t.push(measure(&http, &token, &args).await?);
    }
    let (d, p, h, t, f) = (median(d), median(p), median(h), median(t), median(f));
    line("direct  GET atlassim …/rest/api/3/myself", &d);
    line("proxied GET …/proxy/jira/rest/api/3/myself", &p);
    line("pass-through floor (hyper, fixed bearer)", &f);
    line("GET /healthz", &h);
    line("GET /v1/connections/{id}/token", &t);
    let added = (p.p50.as_secs_f64() / d.p50.as_secs_f64() - 1.0) * 100.0;
    let kept = p.rps / d.rps * 100.0;
    let token_kept = t.rps / h.rps * 100.0;
    let floor_kept = p.rps / f.rps * 100.0;
    println!();
    println!(
        "proxy adds {added:.1}% to the direct median latency (target < 15%): {}",
        if added < 15.0 { "met" } else { "MISSED" }
    );
    println!(
        "proxy keeps {kept:.1}% of direct throughput (target >= 80%): {}",
        if kept >= 80.0 { "met" } else { "MISSED" }
    );
    println!(
        "proxy keeps {floor_kept:.0}% of the pass-through floor (target >= 80%): {}",
        if floor_kept >= 80.0 { "met" } else { "MISSED" }
    );
    println!(
        "/token keeps {token_kept:.1}% of /healthz throughput (target >= 90%): {}",
        if token_kept >= 90.0 { "met" } else { "MISSED" }
    );
    env.sim.shutdown().await;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        match cli.command {
            Command::Proxy(args) => proxy(args).await,
            Command::Sync(args) => sync::run(args).await,
            Command::IssueKeys(args) => issue_keys::run(args).await,
            Command::Scale(args) => scale::run(args).await,
            Command::Dos(args) => dos::run(args).await,
        }
    })
}
