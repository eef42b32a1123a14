//! `atlasgate-bench sync`: how fast a full sync pass stores issues, and how
//! much memory atlasgate needs for it.
//!
//! atlassim runs in this process with `--latency-ms` (the network to
//! Atlassian) and N issues spread over P projects; atlasgate runs as a
//! **child process** (`atlasgate serve` on SQLite, found next to this binary
//! or at `--atlasgate-bin`) so its peak RSS (`VmHWM` of `/proc/PID/status`)
//! is its own, not atlassim's. For each size we connect a site over HTTP,
//! create a sync of `project IN (…)` and time it until its first pass is
//! done, and compare with a baseline that pages `/rest/api/3/search/jql`
//! sequentially (100 per page, `nextPageToken`) like a plain client — and
//! stores nothing, which flatters the baseline.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use clap::Parser;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};

#[derive(Parser, Clone)]
pub struct SyncArgs {
    /// Issue counts to sync, one child atlasgate each (memory comparison).
    #[arg(long, value_delimiter = ',', default_values_t = vec![5000usize, 20000])]
    sizes: Vec<usize>,
    /// Projects the issues are spread over.
    #[arg(long, default_value_t = 8)]
    projects: usize,
    /// Delay atlassim adds to every gateway request (the network to Atlassian).
    #[arg(long, default_value_t = 50)]
    latency_ms: u64,
    /// The `atlasgate` binary (default: next to this one).
    #[arg(long)]
    atlasgate_bin: Option<PathBuf>,
}

pub(crate) struct Child {
    pub(crate) proc: std::process::Child,
    pub(crate) base: String,
    pub(crate) admin: String,
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.proc.kill();
        let _ = self.proc.wait();
    }
}

pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `atlasgate` next to this binary.
pub(crate) fn default_bin() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let b = me.with_file_name("atlasgate");
    if !b.exists() {
        bail!(
            "{} not found: build it (`cargo build --release -p atlasgate`) or pass --atlasgate-bin",
            b.display()
        );
    }
    Ok(b)
}

/// `bins`, or the `atlasgate` next to this binary when none is given.
/// `--atlasgate-bin` if given, else the binary next to this one.
pub(crate) fn bin_or_default(bin: Option<&PathBuf>) -> anyhow::Result<PathBuf> {
    match bin {
        Some(b) => Ok(b.clone()),
        None => default_bin(),
    }
}

pub(crate) fn bins_or_default(bins: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    if bins.is_empty() {
        Ok(vec![default_bin()?])
    } else {
        Ok(bins.to_vec())
    }
}

async fn spawn_atlasgate(
    args: &SyncArgs,
    sim: &atlassim::Sim,
    dir: &std::path::Path,
) -> anyhow::Result<Child> {
    spawn(&bin_or_default(args.atlasgate_bin.as_ref())?, sim, dir).await
}

/// `atlasgate serve` from `bin` on SQLite in `dir`, against `sim`.
pub(crate) async fn spawn(
    bin: &std::path::Path,
    sim: &atlassim::Sim,
    dir: &std::path::Path,
) -> anyhow::Result<Child> {
    spawn_with(bin, sim, dir, &[]).await
}

/// [`spawn`] with more environment variables (`extra`, set last).
pub(crate) async fn spawn_with(
    bin: &std::path::Path,
    sim: &atlassim::Sim,
    dir: &std::path::Path,
    extra: &[(&str, &str)],
) -> anyhow::Result<Child> {
    spawn_in_dir(bin, sim, dir, extra, &[]).await
}

/// A child on a fresh SQLite file in `dir`, with a fresh key and port.
async fn spawn_in_dir(
    bin: &std::path::Path,
    sim: &atlassim::Sim,
    dir: &std::path::Path,
    env: &[(&str, &str)],
    wrapper: &[String],
) -> anyhow::Result<Child> {
    let db = dir.join(format!("sync-{}.db", free_port()?));
    spawn_on(
        free_port()?,
        bin,
        sim,
        &format!("sqlite://{}", db.display()),
        &atlasgate::vault::keys::generate(),
        env,
        wrapper,
    )
    .await
}

/// [`spawn_with`] with owned values, run under `wrapper` when given
/// (`valgrind --tool=callgrind …`).
pub(crate) async fn spawn_with_env(
    bin: &std::path::Path,
    sim: &atlassim::Sim,
    dir: &std::path::Path,
    env: &[(&str, String)],
    wrapper: &[String],
) -> anyhow::Result<Child> {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    spawn_in_dir(bin, sim, dir, &env, wrapper).await
}

/// `atlasgate serve` from `bin` (under `wrapper` when given) on `port` and
/// `database_url` with `encryption_keys` (`ATLASGATE_ENCRYPTION_KEYS`),
/// against `sim`, with `env` added (set last: it wins over the defaults).
pub(crate) async fn spawn_on(
    port: u16,
    bin: &std::path::Path,
    sim: &atlassim::Sim,
    database_url: &str,
    encryption_keys: &secrecy::SecretString,
    env: &[(&str, &str)],
    wrapper: &[String],
) -> anyhow::Result<Child> {
    let base = format!("http://127.0.0.1:{port}");
    sim.add_redirect_uri(
        atlassim::config::DEFAULT_CLIENT_ID,
        &format!("{base}/oauth/callback"),
    );
    let admin = format!("bench-admin-token-{}", std::process::id());
    let mut cmd = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = std::process::Command::new(program);
            c.args(args).arg(bin);
            c
        }
        None => std::process::Command::new(bin),
    };
    let mut proc = cmd
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("ATLASGATE_DATABASE_URL", database_url)
        .env("ATLASGATE_LISTEN", format!("127.0.0.1:{port}"))
        // atlassim runs without a quota here: the budget must not bind.
        .env("ATLASGATE_POINTS_PER_HOUR", "1000000000")
        .env("ATLASGATE_PUBLIC_URL", &base)
        .env("ATLASGATE_ENCRYPTION_KEYS", encryption_keys.expose_secret())
        .env("ATLASSIAN_CLIENT_ID", atlassim::config::DEFAULT_CLIENT_ID)
        .env(
            "ATLASSIAN_CLIENT_SECRET",
            atlassim::config::DEFAULT_CLIENT_SECRET,
        )
        .env("ATLASSIAN_AUTH_URL", sim.auth_url())
        .env("ATLASSIAN_API_URL", sim.api_url())
        .env("ATLASGATE_ADMIN_TOKEN", &admin)
        .env("ATLASGATE_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting atlasgate serve")?;
    let stdout = proc.stdout.take().context("no stdout")?;
    // The first line names the address; the rest of stdout is drained and dropped.
    let (tx, rx) = tokio::sync::oneshot::channel::<String>();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        let _ = tx.send(first);
        for _ in lines {}
    });
    // Under valgrind, starting (migrations included) takes a while.
    let start_s = if wrapper.is_empty() { 30 } else { 300 };
    let first = tokio::time::timeout(Duration::from_secs(start_s), rx)
        .await
        .with_context(|| format!("atlasgate did not start in {start_s} s"))?
        .unwrap_or_default();
    if !first.starts_with("listening on ") {
        bail!("unexpected first line from atlasgate: {first}");
    }
    Ok(Child { proc, base, admin })
}

/// Peak and current resident memory of a process, in MiB.
pub(crate) fn memory_mib(pid: u32) -> anyhow::Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> anyhow::Result<f64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .ok_or_else(|| anyhow!("no {name}"))?;
        let kb: f64 = line.split_whitespace().nth(1).unwrap_or("0").parse()?;
        Ok(kb / 1024.0)
    };
    Ok((field("VmHWM:")?, field("VmRSS:")?))
}

/// Create an app, connect the first site, return (api key, connection id, cloud id).
pub(crate) async fn connect(
    http: &reqwest::Client,
    child: &Child,
    sim: &atlassim::Sim,
) -> anyhow::Result<(String, String, String)> {
    let created: Value = http
        .post(format!("{}/admin/api/apps", child.base))
        .bearer_auth(&child.admin)
        .json(&json!({ "name": "bench" }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let key = created["api_key"]
        .as_str()
        .context("no api_key")?
        .to_string();
    let session: Value = http
        .post(format!("{}/v1/connect-sessions", child.base))
        .bearer_auth(&key)
        .json(&json!({ "owner": "bench:1" }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let cloud_id = sim.snapshot()["sites"][0]["cloud_id"]
        .as_str()
        .context("no site")?
        .to_string();
    sim.set_next_consent(atlassim::ConsentDecision {
        account_id: None,
        sites: Some(vec![cloud_id.clone()]),
        deny: false,
    });
    let mut browser = atlasgate_testkit::Browser::new(http.clone());
    let page = browser
        .get(session["connect_url"].as_str().context("no connect_url")?)
        .await?;
    if !page.body.contains("Connected") {
        bail!("connecting failed: {} {}", page.status, page.url);
    }
    let list: Value = http
        .get(format!("{}/v1/connections", child.base))
        .bearer_auth(&key)
        .send()
        .await?
        .json()
        .await?;
    let connection = list["items"][0]["id"]
        .as_str()
        .context("no connection")?
        .to_string();
    Ok((key, connection, cloud_id))
}

/// Create a sync of `connection` from `body` and wait (reading it every
/// `poll`, for at most `limit`) until its first pass is done: the sync then.
pub(crate) async fn first_pass(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    connection: &str,
    body: &Value,
    poll: Duration,
    limit: Duration,
) -> anyhow::Result<Value> {
    let created: Value = http
        .post(format!("{base}/v1/connections/{connection}/syncs"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let sync = created["id"].as_str().context("no sync id")?;
    let started = Instant::now();
    loop {
        tokio::time::sleep(poll).await;
        let v: Value = http
            .get(format!("{base}/v1/connections/{connection}/syncs/{sync}"))
            .bearer_auth(key)
            .send()
            .await?
            .json()
            .await?;
        if v["passes"].as_i64().unwrap_or(0) >= 1 {
            return Ok(v);
        }
        if let Some(e) = v["last_error"].as_str() {
            bail!("the sync failed: {e}");
        }
        if started.elapsed() > limit {
            bail!(
                "the sync's first pass did not finish in {} s: {v}",
                limit.as_secs()
            );
        }
    }
}

pub(crate) fn project_jql(sim: &atlassim::Sim) -> String {
    let keys: Vec<String> = sim.snapshot()["sites"][0]["projects"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["key"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    format!("project IN ({})", keys.join(", "))
}

/// A plain client: one `/search/jql` page after the other.
async fn baseline(
    http: &reqwest::Client,
    sim: &atlassim::Sim,
    cloud_id: &str,
    jql: &str,
) -> anyhow::Result<(usize, Duration)> {
    let token = sim
        .mint_token(atlassim::MintTokenRequest::default())
        .access_token;
    let url = format!("{}/ex/jira/{cloud_id}/rest/api/3/search/jql", sim.api_url());
    let started = Instant::now();
    let mut n = 0;
    let mut next: Option<String> = None;
    loop {
        let mut q = vec![
            ("jql", format!("{jql} ORDER BY updated ASC, key ASC")),
            ("maxResults", "100".into()),
            // The fields atlasgate's sync asks for (`sync::engine::field_list`).
            (
                "fields",
                "summary,status,issuetype,project,updated,description,assignee,reporter,resolution,created,customfield_10016,customfield_10020"
                    .into(),
            ),
        ];
        if let Some(t) = &next {
            q.push(("nextPageToken", t.clone()));
        }
        let v: Value = http
            .get(&url)
            .bearer_auth(&token)
            .query(&q)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        n += v["issues"].as_array().map(Vec::len).unwrap_or(0);
        match v["nextPageToken"].as_str() {
            Some(t) => next = Some(t.to_string()),
            None => return Ok((n, started.elapsed())),
        }
    }
}

struct Outcome {
    issues: usize,
    atlasgate: Duration,
    baseline: Duration,
    baseline_issues: usize,
    peak_mib: f64,
    idle_mib: f64,
}

async fn one_size(args: &SyncArgs, size: usize, dir: &std::path::Path) -> anyhow::Result<Outcome> {
    let per_project = size.div_ceil(args.projects.max(1));
    let sim = atlassim::Sim::start(atlassim::SimConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        sites: 1,
        projects: args.projects,
        issues: per_project,
        latency_ms: args.latency_ms,
        ..Default::default()
    })
    .await?;
    let child = spawn_atlasgate(args, &sim, dir).await?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let (key, connection, cloud_id) = connect(&http, &child, &sim).await?;
    let jql = project_jql(&sim);
    let pid = child.proc.id();
    let (_, idle_mib) = memory_mib(pid)?;

    let started = Instant::now();
    let v = first_pass(
        &http,
        &child.base,
        &key,
        &connection,
        &json!({ "jql": jql, "interval_s": 86400 }),
        Duration::from_millis(20),
        Duration::from_secs(600),
    )
    .await?;
    let issues = v["issues_synced"].as_i64().unwrap_or(0) as usize;
    let took = started.elapsed();
    let (peak_mib, _) = memory_mib(pid)?;
    let (baseline_issues, baseline) = baseline(&http, &sim, &cloud_id, &jql).await?;
    drop(child);
    sim.shutdown().await;
    Ok(Outcome {
        issues,
        atlasgate: took,
        baseline,
        baseline_issues,
        peak_mib,
        idle_mib,
    })
}

pub async fn run(args: SyncArgs) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("atlasgate-bench-sync-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    println!(
        "atlasgate-bench sync: {} projects, atlassim latency {} ms, sizes {:?}",
        args.projects, args.latency_ms, args.sizes
    );
    let mut results = Vec::new();
    for &size in &args.sizes {
        let o = one_size(&args, size, &dir).await?;
        let rate = o.issues as f64 / o.atlasgate.as_secs_f64();
        let base_rate = o.baseline_issues as f64 / o.baseline.as_secs_f64();
        println!(
            "{:>6} issues: atlasgate sync {:>6.2} s = {:>7.0} issues/s | baseline sequential /search/jql {:>6.2} s = {:>7.0} issues/s | {:.1}x | atlasgate RSS idle {:.1} MiB, peak {:.1} MiB",
            o.issues,
            o.atlasgate.as_secs_f64(),
            rate,
            o.baseline.as_secs_f64(),
            base_rate,
            rate / base_rate,
            o.idle_mib,
            o.peak_mib
        );
        if o.issues != size.div_ceil(args.projects.max(1)) * args.projects
            || o.baseline_issues != o.issues
        {
            bail!(
                "issue counts differ: synced {}, baseline {}",
                o.issues,
                o.baseline_issues
            );
        }
        results.push((size, rate / base_rate, o.peak_mib));
    }
    println!();
    // The goal is stated for the largest run (20,000 issues by default);
    // smaller runs are there for the memory comparison, where fixed costs
    // (discovery, the project list, the last short pages) weigh more.
    if let Some((size, speedup, _)) = results.iter().max_by_key(|r| r.0) {
        println!(
            "speed-up over the baseline at {size} issues: {speedup:.1}x (goal >= 3x): {}",
            if *speedup >= 3.0 { "met" } else { "MISSED" }
        );
    }
    if let (Some(first), Some(last)) = (results.first(), results.last()) {
        println!(
            "atlasgate peak RSS {:.1} MiB at {} issues vs {:.1} MiB at {} issues ({:+.1} MiB for {}x the issues)",
            first.2,
            first.0,
            last.2,
            last.0,
            last.2 - first.2,
            last.0 / first.0.max(1)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
