//! `atlasgate-bench cpu`: instructions per request, counted by callgrind.
//!
//! Wall-clock throughput on a shared 2-core machine moves by ±30% between
//! runs; instruction counts do not. atlassim runs in this process (no
//! latency); `atlasgate serve` (release, next to this binary) runs under
//! `valgrind --tool=callgrind --instr-atstart=no`, and so does the
//! pass-through floor (`atlasgate-bench floor`, the same code as the proxy
//! bench's). For each phase the bench zeroes the counters
//! (`callgrind_control --zero`), sends `--requests` requests (`--concurrency`
//! in flight) and dumps (`callgrind_control --dump`); the dump's total over
//! the requests is the figure. An idle phase of the same length shows what
//! the background workers add (it is not subtracted). The dumps stay in
//! `--out-dir` for `callgrind_annotate`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use serde_json::Value;

use crate::sync::{connect, spawn_with_env};

#[derive(Parser, Clone)]
pub struct CpuArgs {
    /// Measured requests per phase.
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    /// Unmeasured requests before each phase.
    #[arg(long, default_value_t = 200)]
    warmup: usize,
    /// Requests in flight.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Where the callgrind dumps go (default: a fresh temp dir).
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// The `atlasgate` binary (default: next to this one).
    #[arg(long)]
    atlasgate_bin: Option<PathBuf>,
}

fn valgrind(out_dir: &Path, name: &str) -> Vec<String> {
    vec![
        "valgrind".into(),
        "--tool=callgrind".into(),
        "--instr-atstart=no".into(),
        format!(
            "--callgrind-out-file={}/callgrind.{name}.%p",
            out_dir.display()
        ),
    ]
}

fn control(args: &[&str], pid: u32) -> anyhow::Result<()> {
    let out = std::process::Command::new("callgrind_control")
        .args(args)
        .arg(pid.to_string())
        .output()
        .context("running callgrind_control (is valgrind installed?)")?;
    if !out.status.success() {
        bail!(
            "callgrind_control {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// The newest dump of `pid` in `dir` whose name ends with `.{n}` (callgrind
/// numbers dumps), and its instruction total.
fn dump_total(dir: &Path, name: &str, pid: u32, n: usize) -> anyhow::Result<(PathBuf, u64)> {
    let path = dir.join(format!("callgrind.{name}.{pid}.{n}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(text) = std::fs::read_to_string(&path) {
            if let Some(total) = text
                .lines()
                .find_map(|l| l.strip_prefix("totals:").or(l.strip_prefix("summary:")))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            {
                return Ok((path, total));
            }
        }
        if Instant::now() > deadline {
            bail!("no callgrind dump at {}", path.display());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A process under callgrind and the dumps taken of it so far.
struct Profiled {
    name: &'static str,
    pid: u32,
    dumps: usize,
}

impl Profiled {
    /// Zero, run `work`, dump: instructions per request over `n` requests.
    async fn measure<F, Fut>(
        &mut self,
        dir: &Path,
        phase: &str,
        n: usize,
        work: F,
    ) -> anyhow::Result<(f64, Duration, PathBuf)>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<()>>,
    {
        control(&["--zero"], self.pid)?;
        let t0 = Instant::now();
        work().await?;
        let took = t0.elapsed();
        control(&[&format!("--dump={phase}")], self.pid)?;
        self.dumps += 1;
        let (path, total) = dump_total(dir, self.name, self.pid, self.dumps)?;
        Ok((total as f64 / n.max(1) as f64, took, path))
    }
}

/// `n` GETs round `urls` with `concurrency` in flight; every answer must be 2xx.
async fn load(
    http: &reqwest::Client,
    urls: &[String],
    bearer: &str,
    concurrency: usize,
    n: usize,
) -> anyhow::Result<()> {
    use futures::StreamExt;
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(0..n)
        .map(|i| {
            let url = &urls[i % urls.len()];
            async move {
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
                Ok(())
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}

pub async fn run(args: CpuArgs) -> anyhow::Result<()> {
    let bin = crate::sync::bin_or_default(args.atlasgate_bin.as_ref())?;
    let dir = match &args.out_dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("atlasgate-bench-cpu-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir)?;
    let dir = dir.canonicalize()?;
    let sim = atlassim::Sim::start(atlassim::SimConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        sites: 1,
        projects: 1,
        issues: 5,
        ..Default::default()
    })
    .await?;
    let child = spawn_with_env(&bin, &sim, &dir, &[], &valgrind(&dir, "atlasgate")).await?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(64)
        .build()?;
    let (key, connection, cloud_id) = connect(&http, &child, &sim).await?;
    let project = sim.snapshot()["sites"][0]["projects"][0]["key"]
        .as_str()
        .context("no project")?
        .to_string();
    let paths: Vec<String> = crate::PATHS
        .iter()
        .map(|p| p.replace("{project}", &project))
        .collect();
    let proxied: Vec<String> = paths
        .iter()
        .map(|p| format!("{}/v1/connections/{connection}/proxy/jira/{p}", child.base))
        .collect();
    let token = vec![format!("{}/v1/connections/{connection}/token", child.base)];
    let health = vec![format!("{}/healthz", child.base)];
    let access: Value = http
        .get(&token[0])
        .bearer_auth(&key)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let access = access["access_token"]
        .as_str()
        .context("no token")?
        .to_string();

    // The floor, the same way.
    let me = std::env::current_exe()?;
    let upstream = format!("{}/ex/jira/{cloud_id}", sim.api_url().trim_end_matches('/'));
    let floor_cmd = valgrind(&dir, "floor");
    let mut floor = std::process::Command::new(&floor_cmd[0])
        .args(&floor_cmd[1..])
        .arg(&me)
        .args(["floor", "--upstream", &upstream, "--token", &access])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .context("starting the floor under valgrind")?;
    let floor_addr = {
        use std::io::BufRead;
        let out = floor.stdout.take().context("no stdout")?;
        let mut first = String::new();
        std::io::BufReader::new(out).read_line(&mut first)?;
        first
            .trim()
            .strip_prefix("listening on ")
            .with_context(|| format!("unexpected first line from the floor: {first}"))?
            .to_string()
    };
    let floored: Vec<String> = paths
        .iter()
        .map(|p| format!("http://{floor_addr}/{p}"))
        .collect();

    let (n, c) = (args.requests, args.concurrency);
    println!(
        "atlasgate-bench cpu: {n} requests per phase, {c} in flight, callgrind dumps in {}",
        dir.display()
    );
    let mut ag = Profiled {
        name: "atlasgate",
        pid: child.proc.id(),
        dumps: 0,
    };
    let mut fl = Profiled {
        name: "floor",
        pid: floor.id(),
        dumps: 0,
    };
    control(&["--instr=on"], ag.pid)?;
    control(&["--instr=on"], fl.pid)?;
    let mut rows = Vec::new();
    for (phase, urls, bearer) in [
        ("healthz", &health, ""),
        ("token", &token, key.as_str()),
        ("proxy", &proxied, key.as_str()),
    ] {
        load(&http, urls, bearer, c, args.warmup).await?;
        let (per, took, path) = ag
            .measure(&dir, phase, n, || load(&http, urls, bearer, c, n))
            .await?;
        rows.push((format!("atlasgate {phase}"), per, took, path));
    }
    load(&http, &floored, "", c, args.warmup).await?;
    let (per, took, path) = fl
        .measure(&dir, "floor", n, || load(&http, &floored, "", c, n))
        .await?;
    rows.push(("pass-through floor".into(), per, took, path));
    // What the background workers cost meanwhile, for scale.
    let idle_for = rows[2].2;
    let (idle, _, path) = ag
        .measure(&dir, "idle", 1, || async {
            tokio::time::sleep(idle_for).await;
            Ok(())
        })
        .await?;
    for (name, per, took, path) in &rows {
        println!(
            "{name:<24} {per:>10.0} instructions/request   ({:.1} s under callgrind; {})",
            took.as_secs_f64(),
            path.display()
        );
    }
    println!(
        "atlasgate idle for {:.1} s: {idle:.0} instructions in all ({})",
        idle_for.as_secs_f64(),
        path.display()
    );
    println!(
        "proxy / floor: {:.2}x the instructions; /token / /healthz: {:.2}x",
        rows[2].1 / rows[3].1,
        rows[1].1 / rows[0].1
    );
    let _ = floor.kill();
    let _ = floor.wait();
    drop(child);
    sim.shutdown().await;
    Ok(())
}
