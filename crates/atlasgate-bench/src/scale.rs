//! `atlasgate-bench scale`: how atlasgate's cost grows with the number of
//! connections (docs/design.md §18, BENCHMARKS.md "Scale").
//!
//! Each (backend, size) runs in a child process of its own, on a fresh
//! database, with atlassim in-process. The requests measured go to a second
//! child, **`atlasgate serve`** on the same database and encryption key (the
//! sync bench's helper, `sync::spawn_on`), so the RSS reported is
//! atlasgate's own, not atlassim's (which holds every seeded grant). The
//! bench process also runs an atlasgate in-process: it seeds the rows, runs
//! the background passes and reads the plans.
//!
//! 1. `--import-sample` connections are **imported through the real path**
//!    (`POST /v1/connections/import` to `atlasgate serve`, one refresh each
//!    at atlassim);
//! 2. the rest are **seeded through the store repositories**
//!    (`store::connections::insert`, tokens sealed as the vault seals them),
//!    since importing 100,000 through atlassim would measure atlassim:
//!    - `--keepalive` rows whose refresh token is 85 days old (real tokens),
//!      the keep-alive pass's work;
//!    - a wave of `--wave` rows (at most a quarter of the size) whose access
//!      token expires within the same minute (real tokens);
//!    - the rest with tokens good for an hour (never refreshed here);
//! 3. `/token` on `--token-sample` distinct connections spread over the
//!    table, none of them touched before (the warm-up uses others): the
//!    first round is each one's first request (row read, decrypt,
//!    `last_used_at` noted); later rounds wait out the token cache's TTL
//!    first (row read and decrypt);
//! 4. atlasgate's RSS, database size, every watched query's plan (the exact
//!    statement with bound parameters where the store shares it);
//! 5. the keep-alive pass until it finds nothing due, each pass timed with
//!    the rows it touched;
//! 6. the refresh wave: `/token` for every wave connection at once, then a
//!    check that each was refreshed exactly once and stayed active (lost =
//!    not 200, not active, or refreshed other than once);
//! 7. the retention pass as if a year had passed, so every finished row the
//!    run wrote (events, audit records, connect sessions) is old: its
//!    duration and the rows it deleted, in batches.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use atlasgate::store::connections as rows;
use atlasgate::store::{stats, Backend};
use atlasgate::vault::token::{self, ACCESS_TOKEN, REFRESH_TOKEN};
use atlasgate::vault::token_cache::TokenCache;
use atlasgate::AppState;
use clap::Parser;
use secrecy::SecretString;
use serde_json::{json, Value};

#[derive(Parser, Clone, Debug)]
pub struct ScaleArgs {
    /// Sizes to run (total connections).
    #[arg(long, value_delimiter = ',', default_value = "1000,100000")]
    connections: Vec<usize>,
    /// `sqlite`, `postgres` (needs --postgres-url).
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    backends: Vec<String>,
    /// Admin URL of a PostgreSQL server; each run creates and drops a database.
    #[arg(long, env = "ATLASGATE_BENCH_POSTGRES_URL")]
    postgres_url: Option<String>,
    /// Connections imported through `POST /v1/connections/import`.
    #[arg(long, default_value_t = 200)]
    import_sample: usize,
    /// Distinct connections whose `/token` is measured.
    #[arg(long, default_value_t = 500)]
    token_sample: usize,
    /// Rounds over the token sample (the first is each one's first request).
    #[arg(long, default_value_t = 6)]
    token_rounds: usize,
    /// Runs of each (backend, size), sizes alternating, each on a fresh
    /// database and processes; the comparison takes each figure's median
    /// over the runs (a p99 of 500 requests is its 5 slowest: one run's
    /// swings more than the 20 % it is compared against).
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Requests in flight.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Connections expiring in the same minute (at most a quarter of the size).
    #[arg(long, default_value_t = 10_000)]
    wave: usize,
    /// Connections due for keep-alive (refresh token 85 days old).
    #[arg(long, default_value_t = 100)]
    keepalive: usize,
    /// The `atlasgate` binary served as a child (default: next to this one).
    #[arg(long)]
    atlasgate_bin: Option<PathBuf>,
    /// Internal: run one `backend:size` in this process, print one JSON line.
    #[arg(long, hide = true)]
    one: Option<String>,
}

pub async fn run(args: ScaleArgs) -> anyhow::Result<()> {
    if let Some(one) = &args.one {
        let (backend, size) = one.split_once(':').context("--one backend:size")?;
        let result = run_one(&args, backend, size.parse()?).await?;
        println!("{result}");
        return Ok(());
    }
    let exe = std::env::current_exe()?;
    let mut results = Vec::new();
    for backend in &args.backends {
        if backend == "postgres" && args.postgres_url.is_none() {
            eprintln!("skipping postgres: no --postgres-url / ATLASGATE_BENCH_POSTGRES_URL");
            continue;
        }
        let runs = args.repeat.max(1);
        for (run, &size) in (0..runs).flat_map(|r| args.connections.iter().map(move |s| (r + 1, s)))
        {
            eprintln!("== {backend}, {size} connections (run {run} of {runs})");
            let mut cmd = std::process::Command::new(&exe);
            cmd.arg("scale")
                .arg("--one")
                .arg(format!("{backend}:{size}"))
                .arg("--import-sample")
                .arg(args.import_sample.to_string())
                .arg("--token-sample")
                .arg(args.token_sample.to_string())
                .arg("--token-rounds")
                .arg(args.token_rounds.to_string())
                .arg("--concurrency")
                .arg(args.concurrency.to_string())
                .arg("--wave")
                .arg(args.wave.to_string())
                .arg("--keepalive")
                .arg(args.keepalive.to_string())
                .stderr(std::process::Stdio::inherit());
            if let Some(url) = &args.postgres_url {
                cmd.arg("--postgres-url").arg(url);
            }
            if let Some(bin) = &args.atlasgate_bin {
                cmd.arg("--atlasgate-bin").arg(bin);
            }
            let out = cmd.output()?;
            if !out.status.success() {
                bail!("{backend}:{size} failed ({})", out.status);
            }
            let text = String::from_utf8_lossy(&out.stdout);
            let line = text.lines().last().context("no result line")?;
            let v: Value = serde_json::from_str(line)?;
            print_one(&v);
            results.push(v);
        }
    }
    print_comparison(&results);
    Ok(())
}

fn ms(v: &Value) -> String {
    format!("{:.2} ms", v.as_f64().unwrap_or(f64::NAN))
}

fn print_one(v: &Value) {
    println!(
        "\n## {} — {} connections ({} imported through the API at {:.0}/s, the rest seeded through the repositories in {:.1} s)",
        v["backend"].as_str().unwrap_or("?"),
        v["connections"],
        v["imported"],
        v["import_per_sec"].as_f64().unwrap_or(0.0),
        v["seed_secs"].as_f64().unwrap_or(0.0)
    );
    println!(
        "/token first request (row read + decrypt + last_used noted): p50 {}  p99 {}  ({} requests)",
        ms(&v["token_first"]["p50_ms"]),
        ms(&v["token_first"]["p99_ms"]),
        v["token_first"]["n"]
    );
    println!(
        "/token uncached (row read + decrypt):                         p50 {}  p99 {}  ({} requests)",
        ms(&v["token_uncached"]["p50_ms"]),
        ms(&v["token_uncached"]["p99_ms"]),
        v["token_uncached"]["n"]
    );
    let mib = |k: &str| v[k].as_f64().unwrap_or(0.0);
    println!(
        "atlasgate RSS {:.1} MiB after /token (peak {:.1} MiB after the wave); bench process (atlassim, seeding) {:.1} MiB; database {:.1} MiB",
        mib("rss_mib"),
        mib("rss_peak_mib"),
        mib("bench_rss_mib"),
        mib("db_mib")
    );
    if let Some(passes) = v["keepalive_passes"].as_array() {
        for p in passes {
            println!(
                "keep-alive pass: {:.1} ms, {} rows refreshed, {} failed",
                p["ms"].as_f64().unwrap_or(f64::NAN),
                p["refreshed"],
                p["failed"]
            );
        }
    }
    let ret = &v["retention"];
    println!(
        "retention pass (a year on): {:.1} ms, {} rows deleted ({})",
        ret["ms"].as_f64().unwrap_or(f64::NAN),
        ret["rows"],
        ret["tables"].as_str().unwrap_or("")
    );
    let w = &v["wave"];
    println!(
        "refresh wave: {} connections expiring within one minute, done in {:.1} s ({:.0} refreshes/s); /token p50 {}  p99 {}  max {}; lost {}; atlassim refreshes {}, family revocations {}",
        w["size"],
        w["secs"].as_f64().unwrap_or(0.0),
        w["per_sec"].as_f64().unwrap_or(0.0),
        ms(&w["p50_ms"]),
        ms(&w["p99_ms"]),
        ms(&w["max_ms"]),
        w["lost"],
        w["sim_refreshes"],
        w["sim_family_revocations"]
    );
    if let Some(plans) = v["plans"].as_array() {
        println!("query plans:");
        for p in plans {
            println!(
                "  [{}] {}",
                p["kind"].as_str().unwrap_or(""),
                p["name"].as_str().unwrap_or("")
            );
            for l in p["plan"].as_array().into_iter().flatten() {
                println!("      {}", l.as_str().unwrap_or(""));
            }
        }
    }
}

fn print_comparison(results: &[Value]) {
    println!("\n## Comparison (largest size against the smallest, per backend)");
    let mut backends: Vec<&str> = results
        .iter()
        .filter_map(|r| r["backend"].as_str())
        .collect();
    backends.dedup();
    for b in backends {
        let of: Vec<&Value> = results.iter().filter(|r| r["backend"] == b).collect();
        let sizes = of.iter().filter_map(|r| r["connections"].as_u64());
        let (Some(small), Some(large)) = (sizes.clone().min(), sizes.max()) else {
            continue;
        };
        let runs_of = |size: u64| -> Vec<&Value> {
            let runs = of
                .iter()
                .filter(|r| r["connections"].as_u64() == Some(size));
            runs.copied().collect()
        };
        let (small_runs, large_runs) = (runs_of(small), runs_of(large));
        // A figure's median over the runs of one size.
        let median = |runs: &[&Value], path: &[&str]| {
            let mut xs: Vec<f64> = runs
                .iter()
                .filter_map(|v| path.iter().fold(*v, |v, k| &v[*k]).as_f64())
                .collect();
            xs.sort_by(f64::total_cmp);
            match xs.len() {
                0 => None,
                n if n % 2 == 1 => Some(xs[n / 2]),
                n => Some((xs[n / 2 - 1] + xs[n / 2]) / 2.0),
            }
        };
        let ratio = |path: &[&str]| match (median(&small_runs, path), median(&large_runs, path)) {
            (Some(s), Some(l)) if s > 0.0 => format!("{:+.1}%", (l / s - 1.0) * 100.0),
            _ => "n/a".into(),
        };
        if small_runs.len() > 1 || large_runs.len() > 1 {
            let each = |runs: &[&Value]| {
                let ms = runs.iter().map(|v| {
                    format!(
                        "{:.1}",
                        v["token_first"]["p99_ms"].as_f64().unwrap_or(f64::NAN)
                    )
                });
                ms.collect::<Vec<_>>().join(" / ")
            };
            println!(
                "{b}: medians of {} and {} runs; /token first p99 per run (ms): {small}: {}; {large}: {}",
                small_runs.len(),
                large_runs.len(),
                each(&small_runs),
                each(&large_runs)
            );
        }
        println!(
            "{b}: {} → {}: /token first p50 {} p99 {}; uncached p50 {} p99 {}; atlasgate RSS {}; keep-alive pass with 0 due {}",
            small,
            large,
            ratio(&["token_first", "p50_ms"]),
            ratio(&["token_first", "p99_ms"]),
            ratio(&["token_uncached", "p50_ms"]),
            ratio(&["token_uncached", "p99_ms"]),
            ratio(&["rss_mib"]),
            ratio(&["keepalive_idle_ms"]),
        );
    }
}

// ---------------------------------------------------------------- one run

struct Env {
    sim: atlassim::Sim,
    /// The in-process atlasgate: seeding, the passes, the plans.
    state: AppState,
    /// `atlasgate serve`, whose requests and RSS are measured.
    child: crate::sync::Child,
    key: String,
    app_id: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(std::path::PathBuf),
    Postgres { admin: String, name: String },
}

async fn start(args: &ScaleArgs, backend: Backend) -> anyhow::Result<Env> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let sim = atlassim::Sim::start(atlassim::SimConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..Default::default()
    })
    .await?;
    let (url, cleanup) = match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join(format!("atlasgate-scale-{}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            let db = dir.join("scale.db");
            (format!("sqlite://{}", db.display()), Cleanup::Sqlite(dir))
        }
        Backend::Postgres => {
            let admin = args.postgres_url.clone().context("--postgres-url")?;
            let name = format!("atlasgate_scale_{}", std::process::id());
            let url = stats::create_postgres_database(&admin, &name).await?;
            (url, Cleanup::Postgres { admin, name })
        }
    };
    let (state, created) =
        crate::serve_on_sim(url.clone(), listener, &base, &sim, "scale", false).await?;
    let bin = crate::sync::bin_or_default(args.atlasgate_bin.as_ref())?;
    // Pacing off, as in-process (`serve_on_sim`): atlassim is not what is measured.
    let child = crate::sync::spawn_on(
        crate::sync::free_port()?,
        &bin,
        &sim,
        &url,
        &state.cipher.keyring().to_env_value(),
        &[("ATLASGATE_PACING", "off")],
        &[],
    )
    .await?;
    Ok(Env {
        sim,
        state,
        child,
        key: created.api_key.expose().to_string(),
        app_id: created.app.id,
        cleanup,
    })
}

#[derive(Default)]
struct Latencies(Vec<Duration>);

impl Latencies {
    fn json(mut self) -> Value {
        self.0.sort();
        let n = self.0.len();
        let pct = |p: f64| {
            self.0
                .get(((n as f64 * p) as usize).min(n.saturating_sub(1)))
                .map(|d| d.as_secs_f64() * 1000.0)
        };
        json!({ "n": n, "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": pct(1.0) })
    }
}

/// `GET /v1/connections/{id}/token` once for each id, `concurrency` in
/// flight; latencies of the 200s and the count of anything else.
async fn tokens_once(
    http: &reqwest::Client,
    env: &Env,
    ids: &[String],
    concurrency: usize,
) -> anyhow::Result<(Vec<Duration>, usize)> {
    let next = Arc::new(AtomicUsize::new(0));
    let ids = Arc::new(ids.to_vec());
    let round = Instant::now();
    let workers = (0..concurrency.max(1)).map(|_| {
        let (http, next, ids) = (http.clone(), next.clone(), ids.clone());
        let (base, key) = (env.child.base.clone(), env.key.clone());
        tokio::spawn(async move {
            let (mut lat, mut bad) = (Vec::new(), 0usize);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(id) = ids.get(i) else { break };
                let t0 = Instant::now();
                let resp = http
                    .get(format!("{base}/v1/connections/{id}/token"))
                    .bearer_auth(&key)
                    .send()
                    .await;
                match resp {
                    Ok(r) if r.status().is_success() => {
                        r.bytes().await?;
                        lat.push((t0 - round, t0.elapsed()));
                    }
                    Ok(r) => {
                        eprintln!("/token {id}: {}", r.status());
                        bad += 1;
                    }
                    Err(e) => {
                        eprintln!("/token {id}: {e}");
                        bad += 1;
                    }
                }
            }
            Ok::<_, anyhow::Error>((lat, bad))
        })
    });
    let (mut all, mut bad) = (Vec::with_capacity(ids.len()), 0);
    for w in futures::future::join_all(workers).await {
        let (lat, b) = w??;
        all.extend(lat);
        bad += b;
    }
    print_tail(&all, round.elapsed());
    Ok((all.into_iter().map(|(_, l)| l).collect(), bad))
}

/// When the slowest 1 % of a round's requests started, against the round's
/// length: one stall (all of them close together) or a spread (stderr).
fn print_tail(all: &[(Duration, Duration)], round: Duration) {
    if all.len() < 100 {
        return;
    }
    let mut by_latency: Vec<&(Duration, Duration)> = all.iter().collect();
    by_latency.sort_by_key(|(_, l)| std::cmp::Reverse(*l));
    let tail = &by_latency[..all.len() / 100];
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    let first = tail
        .iter()
        .map(|(s, _)| ms(s))
        .fold(f64::INFINITY, f64::min);
    let last = tail.iter().map(|(s, l)| ms(s) + ms(l)).fold(0.0, f64::max);
    let lats: Vec<String> = tail.iter().map(|(_, l)| format!("{:.1}", ms(l))).collect();
    eprintln!(
        "  slowest 1 % ({} of {}): {} ms, in flight between +{first:.0} and +{last:.0} ms of a {:.0} ms round",
        tail.len(),
        all.len(),
        lats.join(", "),
        ms(&round)
    );
}

/// Import `n` single-site grants minted at atlassim, over HTTP.
async fn import_sample(
    http: &reqwest::Client,
    env: &Env,
    n: usize,
    cloud_id: &str,
) -> anyhow::Result<(Vec<String>, f64)> {
    let bodies: Vec<Value> = (0..n)
        .map(|i| {
            let t = env.sim.mint_token(atlassim::MintTokenRequest {
                cloud_ids: Some(vec![cloud_id.to_string()]),
                ..Default::default()
            });
            json!({ "owner": format!("imported:{i}"), "refresh_token": t.refresh_token })
        })
        .collect();
    let started = Instant::now();
    let results = futures::stream::iter(bodies.into_iter().map(|body| {
        let http = http.clone();
        let url = format!("{}/v1/connections/import", env.child.base);
        let key = env.key.clone();
        async move {
            let resp = http.post(url).bearer_auth(key).json(&body).send().await?;
            if resp.status() != 201 {
                bail!("import answered {}", resp.status());
            }
            let v: Value = resp.json().await?;
            Ok::<_, anyhow::Error>(v["id"].as_str().unwrap_or_default().to_string())
        }
    }))
    .buffer_unordered(8)
    .collect::<Vec<_>>()
    .await;
    let secs = started.elapsed().as_secs_f64();
    let ids = results.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    Ok((ids, n as f64 / secs.max(1e-9)))
}

use futures::StreamExt;

/// Seed `count` rows through the repositories, 500 per transaction.
/// `kind(i)` says which tokens and times row `i` gets.
async fn seed(
    env: &Env,
    count: usize,
    mut kind: impl FnMut(usize) -> Seed,
) -> anyhow::Result<Vec<(String, SeedKind)>> {
    let state = &env.state;
    let now = atlasgate::store::now();
    let sites = env.sim.snapshot()["sites"].clone();
    let site = json!([{
        "cloud_id": sites[0]["cloud_id"], "name": sites[0]["name"], "url": sites[0]["url"],
        "products": ["jira"], "scopes": []
    }]);
    let grant_sites: Vec<atlasgate::atlassian::AccessibleSite> = serde_json::from_value(site)?;
    let cloud_id = atlasgate::ids::CloudId::new(sites[0]["cloud_id"].as_str().unwrap_or_default());
    let site_url = sites[0]["url"].as_str().unwrap_or_default().to_string();
    let scopes = ["read:jira-work", "offline_access", "read:me"].map(String::from);
    let mut out = Vec::with_capacity(count);
    let mut i = 0;
    while i < count {
        let mut tx = state.store.begin_write().await?;
        for _ in 0..500.min(count - i) {
            let s = kind(i);
            let id = rows::new_id();
            let access = token::seal(
                &state.cipher,
                &id,
                ACCESS_TOKEN,
                &SecretString::from(s.access),
            )?;
            let refresh = token::seal(
                &state.cipher,
                &id,
                REFRESH_TOKEN,
                &SecretString::from(s.refresh),
            )?;
            let grant = rows::NewGrant {
                account_id: "seeded-account",
                account_email: None,
                account_name: None,
                scopes: &scopes,
                sites: &grant_sites,
                site_cloud_id: Some(&cloud_id),
                site_url: Some(&site_url),
                access_token: &access,
                refresh_token: Some(&refresh),
                access_expires_at: now + s.expires_in,
            };
            rows::insert(
                &mut tx,
                &id,
                &env.app_id,
                &format!("seed:{i}").into(),
                "jira",
                &grant,
                now - s.age_secs,
            )
            .await?;
            out.push((id.into_string(), s.kind));
            i += 1;
        }
        tx.commit().await?;
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SeedKind {
    Plain,
    KeepAlive,
    Wave,
}

struct Seed {
    kind: SeedKind,
    access: String,
    refresh: String,
    expires_in: i64,
    age_secs: i64,
}

/// This process's resident memory (atlassim and the seeding), in MiB.
fn bench_rss_mib() -> f64 {
    crate::sync::memory_mib(std::process::id()).map_or(0.0, |(_, rss)| rss)
}

async fn run_one(args: &ScaleArgs, backend: &str, size: usize) -> anyhow::Result<Value> {
    let backend = match backend {
        "sqlite" => Backend::Sqlite,
        "postgres" => Backend::Postgres,
        other => bail!("unknown backend {other}"),
    };
    let env = start(args, backend).await?;
    let result = measure(args, &env, size).await;
    let Env {
        sim,
        state,
        child,
        cleanup,
        ..
    } = env;
    drop(child);
    sim.shutdown().await;
    state.store.close().await;
    match &cleanup {
        Cleanup::Sqlite(dir) => {
            let _ = std::fs::remove_dir_all(dir);
        }
        Cleanup::Postgres { admin, name } => {
            stats::drop_postgres_database(admin, name).await?;
        }
    }
    result
}

async fn measure(args: &ScaleArgs, env: &Env, size: usize) -> anyhow::Result<Value> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(120))
        .build()?;
    let cloud_id = env.sim.snapshot()["sites"][0]["cloud_id"]
        .as_str()
        .context("atlassim has no site")?
        .to_string();

    // 1. The real import path, for a sample.
    let sample = args.import_sample.min(size);
    eprintln!("importing {sample} through POST /v1/connections/import");
    let (imported, import_per_sec) = import_sample(&http, env, sample, &cloud_id).await?;

    // 2. The rest through the repositories.
    let rest = size - sample;
    let keepalive = args.keepalive.min(rest);
    let wave = args.wave.min(size / 4).min(rest - keepalive);
    eprintln!("seeding {rest} through the repositories ({keepalive} due for keep-alive, a wave of {wave})");
    let real = |cloud: &str| {
        let t = env.sim.mint_token(atlassim::MintTokenRequest {
            cloud_ids: Some(vec![cloud.to_string()]),
            ..Default::default()
        });
        (t.access_token, t.refresh_token.unwrap_or_default())
    };
    // Wave and keep-alive rows are spread evenly through the table.
    let every = (rest / (keepalive + wave).max(1)).max(1);
    let (mut k_left, mut w_left) = (keepalive, wave);
    let seeded_started = Instant::now();
    let seeded = seed(env, rest, |i| {
        let special = i % every == 0;
        if special && k_left > 0 && (w_left == 0 || i / every % 2 == 0) {
            k_left -= 1;
            let (access, refresh) = real(&cloud_id);
            Seed {
                kind: SeedKind::KeepAlive,
                access,
                refresh,
                expires_in: 3600,
                age_secs: 85 * 24 * 3600,
            }
        } else if special && w_left > 0 {
            w_left -= 1;
            let (access, refresh) = real(&cloud_id);
            // Inside the refresh margin, all within the same minute.
            Seed {
                kind: SeedKind::Wave,
                access,
                refresh,
                expires_in: 30 + (i as i64 % 60),
                age_secs: 3600,
            }
        } else {
            Seed {
                kind: SeedKind::Plain,
                access: format!("seeded-access-{i}"),
                refresh: format!("seeded-refresh-{i}"),
                expires_in: 3 * 3600,
                age_secs: (i as i64 % 80) * 24 * 3600,
            }
        }
    })
    .await?;
    let seed_secs = seeded_started.elapsed().as_secs_f64();
    stats::analyze(&env.state.store).await?;

    // 3. /token over distinct connections spread through the table.
    let plain: Vec<String> = imported
        .iter()
        .cloned()
        .chain(
            seeded
                .iter()
                .filter(|(_, k)| *k == SeedKind::Plain)
                .map(|(id, _)| id.clone()),
        )
        .collect();
    let step = (plain.len() / args.token_sample.max(1)).max(1);
    let sample_ids: Vec<String> = plain
        .iter()
        .step_by(step)
        .take(args.token_sample)
        .cloned()
        .collect();
    // Warm the HTTP connections and the app-key cache on *other*
    // connections: a sampled one served here would not be a first request.
    let sampled: HashSet<&String> = sample_ids.iter().collect();
    let others: Vec<&String> = plain.iter().filter(|id| !sampled.contains(id)).collect();
    let warm: Vec<String> = others
        .iter()
        .step_by((others.len() / 200).max(1))
        .take(200)
        .map(|id| id.to_string())
        .collect();
    tokens_once(&http, env, &warm, args.concurrency).await?;
    eprintln!(
        "/token over {} connections, {} rounds",
        sample_ids.len(),
        args.token_rounds
    );
    let (first, bad_first) = tokens_once(&http, env, &sample_ids, args.concurrency).await?;
    let mut uncached = Vec::new();
    let mut bad = bad_first;
    for _ in 1..args.token_rounds.max(2) {
        // atlasgate serve's token cache keeps an entry at most this long.
        tokio::time::sleep(TokenCache::TTL + Duration::from_millis(100)).await;
        let (lat, b) = tokens_once(&http, env, &sample_ids, args.concurrency).await?;
        uncached.extend(lat);
        bad += b;
    }
    if bad > 0 {
        bail!("{bad} /token requests failed");
    }
    let (_, rss) = crate::sync::memory_mib(env.child.proc.id())?;
    let db_bytes = stats::database_size(&env.state.store).await?;

    // 4. Plans.
    let mut plans = Vec::new();
    for q in stats::watched() {
        plans.push(json!({
            "name": q.name,
            "kind": q.kind,
            "plan": stats::explain(&env.state.store, &q).await?,
        }));
    }

    // 5. Keep-alive passes until nothing is due.
    let mut passes = Vec::new();
    loop {
        let t0 = Instant::now();
        let report = atlasgate::vault::keepalive::run_once(
            &env.state.store,
            &env.state.refresher,
            atlasgate::store::now(),
        )
        .await?;
        passes.push(json!({
            "ms": t0.elapsed().as_secs_f64() * 1000.0,
            "refreshed": report.refreshed,
            "failed": report.failed,
        }));
        if report.refreshed + report.failed == 0 || passes.len() > 20 {
            break;
        }
    }

    // 6. The refresh wave.
    let wave_ids: Vec<String> = seeded
        .iter()
        .filter(|(_, k)| *k == SeedKind::Wave)
        .map(|(id, _)| id.clone())
        .collect();
    let before = env.sim.stats().tokens;
    eprintln!("refresh wave of {}", wave_ids.len());
    let t0 = Instant::now();
    let (wave_lat, wave_bad) = tokens_once(&http, env, &wave_ids, 64).await?;
    let wave_secs = t0.elapsed().as_secs_f64();
    let after = env.sim.stats().tokens;
    let mut not_refreshed_once = 0;
    let mut seen = HashSet::new();
    for id in &wave_ids {
        let row = rows::get(env.state.store.pool(), &id.as_str().into())
            .await?
            .context("wave row gone")?;
        // Inserted with version 1; exactly one refresh makes it 2.
        if row.status() != rows::ConnectionStatus::Active || row.token_version != 2 {
            not_refreshed_once += 1;
        }
        seen.insert(id.clone());
    }
    let wave_json = {
        let mut w = Latencies(wave_lat).json();
        w["size"] = json!(wave_ids.len());
        w["secs"] = json!(wave_secs);
        w["per_sec"] = json!(wave_ids.len() as f64 / wave_secs.max(1e-9));
        w["lost"] = json!(wave_bad + not_refreshed_once);
        w["sim_refreshes"] = json!(after.refreshes - before.refreshes);
        w["sim_family_revocations"] = json!(after.family_revocations - before.family_revocations);
        w
    };
    let (rss_peak, _) = crate::sync::memory_mib(env.child.proc.id())?;

    // 7. Retention as if a year had passed: everything finished is old.
    let t0 = Instant::now();
    let removed =
        atlasgate::retention::run_at(&env.state.core, atlasgate::store::now() + 400 * 24 * 3600)
            .await?;
    let retention_json = json!({
        "ms": t0.elapsed().as_secs_f64() * 1000.0,
        "rows": removed.iter().map(|(_, n)| n).sum::<u64>(),
        "tables": removed.iter().map(|(t, n)| format!("{t} {n}")).collect::<Vec<_>>().join(", "),
    });
    let keepalive_idle_ms = passes.last().map(|p| p["ms"].clone());

    Ok(json!({
        "backend": env.state.store.backend().as_str(),
        "connections": size,
        "imported": imported.len(),
        "import_per_sec": import_per_sec,
        "seed_secs": seed_secs,
        "token_first": Latencies(first).json(),
        "token_uncached": Latencies(uncached).json(),
        "rss_mib": rss,
        "rss_peak_mib": rss_peak,
        "bench_rss_mib": bench_rss_mib(),
        "db_mib": db_bytes as f64 / (1024.0 * 1024.0),
        "keepalive_due": keepalive,
        "keepalive_passes": passes,
        "keepalive_idle_ms": keepalive_idle_ms,
        "retention": retention_json,
        "wave": wave_json,
        "plans": plans,
    }))
}
