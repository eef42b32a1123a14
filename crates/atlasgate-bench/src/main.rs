//! `atlasgate-bench proxy`: what atlasgate's proxy and token endpoint cost.
//!
//! One process starts atlassim (with `--latency-ms`, standing in for the
//! network distance to Atlassian) and atlasgate on SQLite, connects a site,
//! and then measures with a fixed concurrency, request count and warm-up:
//!
//! - proxied reads (`GET …/proxy/jira/rest/api/3/…`) against the same
//!   requests sent straight to atlassim with an access token, and through
//!   the pass-through floor (`floor.rs`);
//! - `GET /v1/connections/{id}/token` against `GET /healthz`.
//!
//! Each pair runs `--rounds` times alternately; the median round is
//! reported. Pacing is on, as in production: it holds each (site, method,
//! endpoint template) under 90 requests/s, so the reads go round a path set
//! it does not bind — [`PATHS`] (distinct templates) on each of `--sites`
//! sites, one connection each (8 × 48 buckets ≈ 34,000 requests/s). See
//! `BENCHMARKS.md`.
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod cpu;
mod dos;
mod faults;
mod floor;
mod issue_keys;
mod quota;
mod scale;
mod soak;
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
    /// A 40,000-issue backfill against atlassim's hourly quota beside an interactive load.
    Quota(quota::QuotaArgs),
    /// Instructions per proxied, /token and /healthz request, and per request of the floor (callgrind).
    Cpu(cpu::CpuArgs),
    /// The fault campaign: SIGKILLs, lost rotations, atlassim 5xx, receiver and database outages (RELIABILITY.md).
    Faults(faults::FaultsArgs),
    /// 30 minutes of steady mixed load against a child atlasgate: RSS, open fds, database size.
    Soak(soak::SoakArgs),
    /// Only the pass-through floor, on a free port (for `cpu`).
    Floor(FloorArgs),
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
    /// Sites (one connection each) the proxied reads go round.
    #[arg(long, default_value_t = 48)]
    sites: usize,
    /// Turn pacing off (the figure of earlier releases).
    #[arg(long)]
    no_pacing: bool,
    /// Serve for this many seconds after setup, measuring nothing (for a
    /// profiler attached to this process); prints the URLs first.
    #[arg(long)]
    serve_only_s: Option<u64>,
}

/// The proxied path set: distinct endpoint templates (so that pacing, per
/// (site, method, template), does not bind), each a small read. `{project}`
/// is the site's first project key.
const PATHS: [&str; 8] = [
    "rest/api/3/myself",
    "rest/api/3/serverInfo",
    "rest/api/3/priority",
    "rest/api/3/status",
    "rest/api/3/statuscategory",
    "rest/api/3/issuetype",
    "rest/api/3/issueLinkType",
    "rest/api/3/project/{project}",
];

#[derive(Parser, Clone)]
struct FloorArgs {
    /// Requests go to `{upstream}/{path}`.
    #[arg(long)]
    upstream: String,
    /// Sent as `Authorization: Bearer {token}`.
    #[arg(long)]
    token: String,
}

async fn floor_only(args: FloorArgs) -> anyhow::Result<()> {
    use std::io::Write;
    let addr = floor::start(&args.upstream, &args.token).await?;
    println!("listening on {addr}");
    std::io::stdout().flush()?;
    std::future::pending::<()>().await;
    Ok(())
}

#[derive(Debug, Clone, Copy)]
struct Run {
    rps: f64,
    p50: Duration,
    p95: Duration,
}

struct Target {
    /// Requests go round these, each with its bearer token.
    urls: Vec<(String, String)>,
}

impl Target {
    fn one(url: String, bearer: String) -> Target {
        Target {
            urls: vec![(url, bearer)],
        }
    }

    fn all(urls: Vec<String>, bearer: &str) -> Target {
        Target {
            urls: urls.into_iter().map(|u| (u, bearer.to_string())).collect(),
        }
    }
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
        let urls = t.urls.clone();
        tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= n {
                    break;
                }
                let (url, bearer) = &urls[k % urls.len()];
                let t0 = Instant::now();
                let mut req = http.get(url);
                if !bearer.is_empty() {
                    req = req.bearer_auth(bearer);
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
    /// One connection per site: (connection id, cloud id, first project key,
    /// its access token).
    sites: Vec<(String, String, String, String)>,
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
        sites: args.sites.max(1),
        projects: 1,
        issues: 5,
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
        !args.no_pacing,
    )
    .await?;
    let key = created.api_key.expose().to_string();

    // Connect each site, as a person would (atlassim consents).
    let scopes = state
        .config
        .profiles
        .get("jira")
        .map(|p| p.scopes.clone())
        .unwrap_or_default();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let snapshot = sim.snapshot();
    let mut sites = Vec::new();
    for (i, site) in snapshot["sites"]
        .as_array()
        .context("atlassim has no site")?
        .iter()
        .enumerate()
    {
        let cloud_id = site["cloud_id"]
            .as_str()
            .context("no cloud id")?
            .to_string();
        let project = site["projects"][0]["key"]
            .as_str()
            .context("no project")?
            .to_string();
        let owner = format!("bench:{i}");
        let session = atlasgate::connect::create_session(
            &state,
            &atlasgate::connect::NewConnectSession {
                app_id: created.app.id.clone(),
                owner: owner.clone().into(),
                profile: "jira".into(),
                return_to: None,
                scopes: scopes.clone(),
            },
        )
        .await
        .map_err(|e| anyhow!("connect session: {e}"))?;
        sim.set_next_consent(atlassim::ConsentDecision {
            account_id: None,
            sites: Some(vec![cloud_id.clone()]),
            deny: false,
        });
        // Each person from their own loopback address: the connect pages
        // are rate-limited per client address.
        let from = std::net::Ipv4Addr::new(127, 0, (i / 250) as u8, (i % 250 + 2) as u8);
        let person = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .local_address(std::net::IpAddr::V4(from))
            .build()?;
        let mut browser = atlasgate_testkit::Browser::new(person);
        let mut page = browser.get(&session.connect_url).await?;
        // The user's grant covers the sites consented before: pick this one.
        if page.url.ends_with("/site") {
            let form = atlasgate_testkit::SitePickerForm::parse(&page.body)
                .with_context(|| page.body.chars().take(1500).collect::<String>())?;
            let url = page.url.clone();
            page = browser
                .post_form(
                    &url,
                    &[("csrf", form.csrf.as_str()), ("cloud_id", &cloud_id)],
                )
                .await?;
        }
        if !page.body.contains("Connected") {
            bail!("connecting failed: {} {}", page.status, page.url);
        }
        let list: Value = http
            .get(format!("{base}/v1/connections?owner={owner}"))
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
        let token = token["access_token"]
            .as_str()
            .context("no token")?
            .to_string();
        sites.push((connection, cloud_id, project, token));
    }
    Ok(Env {
        sim,
        base,
        key,
        sites,
        _dir: dir,
    })
}

/// atlasgate on `database_url`, served on `listener` at `base`, talking to
/// `sim` (pacing on or off), plus one app named `app_name`.
pub(crate) async fn serve_on_sim(
    database_url: String,
    listener: tokio::net::TcpListener,
    base: &str,
    sim: &atlassim::Sim,
    app_name: &str,
    pacing: bool,
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
    if !pacing {
        state.atlassian.set_policy(ClientPolicy {
            pacing: None,
            ..ClientPolicy::default()
        });
    }
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
    let api = env.sim.api_url().trim_end_matches('/').to_string();
    let mut direct = Vec::new();
    let mut proxied = Vec::new();
    // Site after site for each path: consecutive requests hit distinct buckets.
    for path in PATHS {
        for (connection, cloud_id, project, token) in &env.sites {
            let path = path.replace("{project}", project);
            direct.push((format!("{api}/ex/jira/{cloud_id}/{path}"), token.clone()));
            proxied.push(format!(
                "{}/v1/connections/{connection}/proxy/jira/{path}",
                env.base
            ));
        }
    }
    // The floor adds one fixed token: the first site's paths (it has no pacing).
    let (_, cloud0, project0, token0) = &env.sites[0];
    let floor_addr = floor::start(&format!("{api}/ex/jira/{cloud0}"), token0).await?;
    let direct = Target { urls: direct };
    let proxied = Target::all(proxied, &env.key);
    let passthrough = Target::all(
        PATHS
            .iter()
            .map(|p| format!("http://{floor_addr}/{}", p.replace("{project}", project0)))
            .collect(),
        &env.key,
    );
    let connection = &env.sites[0].0;
    let token = Target::one(
        format!("{}/v1/connections/{connection}/token", env.base),
        env.key.clone(),
    );
    let health = Target::one(format!("{}/healthz", env.base), String::new());
    if let Some(secs) = args.serve_only_s {
        println!(
            "proxied: {} (+{} more)",
            proxied.urls[0].0,
            proxied.urls.len() - 1
        );
        println!("token:   {}", token.urls[0].0);
        println!("key:     {}", env.key);
        tokio::time::sleep(Duration::from_secs(secs)).await;
        env.sim.shutdown().await;
        return Ok(());
    }

    println!(
        "atlasgate-bench proxy: concurrency {}, {} requests (+{} warm-up) per run, {} rounds, atlassim latency {} ms, pacing {}, {} paths x {} sites",
        args.concurrency,
        args.requests,
        args.warmup,
        args.rounds,
        args.latency_ms,
        if args.no_pacing { "off" } else { "on" },
        PATHS.len(),
        env.sites.len()
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
    line("direct  GET atlassim …/rest/api/3/…", &d);
    line("proxied GET …/proxy/jira/rest/api/3/…", &p);
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
            Command::Quota(args) => quota::run(args).await,
            Command::Cpu(args) => cpu::run(args).await,
            Command::Faults(args) => faults::run(args).await,
            Command::Soak(args) => soak::run(args).await,
            Command::Floor(args) => floor_only(args).await,
        }
    })
}
