//! `atlasgate-bench dos`: issue 9's three denial-of-service figures, again.
//!
//! atlassim runs in this process without added latency; each
//! `--atlasgate-bin` (default: the `atlasgate` next to this binary) runs as
//! a child `atlasgate serve` on SQLite with `ATLASGATE_TRUSTED_PROXIES` set
//! to loopback, so this process plays a reverse proxy and names each
//! client in `X-Forwarded-For` (docs/design.md §12). Per binary:
//!
//! 1. **Rate limits behind a proxy.** One hostile client floods the connect
//!    page, the admin login form (wrong tokens), the admin bearer API, and
//!    the bearer API with wrong tokens; then `--others` other clients try
//!    once each. Printed: the hostile client's answers by status, and how
//!    many of the others were served. Then two addresses of one IPv6 /64
//!    (one bucket) and one of the next /64 (its own).
//! 2. **Pacer memory.** `--paths` distinct paths
//!    (`/rest/api/3/issue/{KEY}-{n}`) through the proxy, pacing on as
//!    configured by default; atlasgate's `VmRSS` before, after, and after
//!    `--idle-s` seconds without calls (then one more call, which is when
//!    the pacer sweeps its refilled buckets).
//! 3. **`issue-keys`** on the hostile text of `--kb` KB, measured by the
//!    `issue-keys` bench's own code: time to the answer and the slowest
//!    `/healthz` meanwhile.
//!
//! Figures and the figures of the issue (the "before") in `BENCHMARKS.md`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use futures::StreamExt;
use serde_json::{json, Value};

use crate::issue_keys;
use crate::sync::{bins_or_default, connect, memory_mib, spawn_with, Child};

#[derive(Parser, Clone)]
pub struct DosArgs {
    /// atlasgate binaries to measure, one after the other (repeatable).
    #[arg(long = "atlasgate-bin")]
    bins: Vec<PathBuf>,
    /// Requests the hostile client sends, back to back, to each limited endpoint.
    #[arg(long, default_value_t = 100)]
    hostile: usize,
    /// Requests the hostile client sends to the admin bearer API (with the right token).
    #[arg(long, default_value_t = 300)]
    admin_hammer: usize,
    /// Other clients (other addresses), one request each per endpoint.
    #[arg(long, default_value_t = 20)]
    others: usize,
    /// Distinct proxied paths per round, one round after the other.
    #[arg(long, value_delimiter = ',', default_values_t = vec![3000usize, 10000])]
    paths: Vec<usize>,
    /// Proxied requests in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds without calls before the last memory reading of a round.
    #[arg(long, default_value_t = 5)]
    idle_s: u64,
    /// Size of the hostile `issue-keys` text, in KB (1,000 bytes).
    #[arg(long, default_value_t = 600)]
    kb: usize,
    /// Give up on one request after this many seconds.
    #[arg(long, default_value_t = 120)]
    timeout_s: u64,
}

const XFF: &str = "x-forwarded-for";

/// Answers counted by status.
#[derive(Default)]
struct Tally(BTreeMap<u16, usize>);

impl Tally {
    fn add(&mut self, status: u16) {
        *self.0.entry(status).or_default() += 1;
    }

    fn count(&self, status: u16) -> usize {
        self.0.get(&status).copied().unwrap_or(0)
    }

    fn total(&self) -> usize {
        self.0.values().sum()
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(s, n)| format!("{n}×{s}")).collect();
        write!(f, "{}", parts.join(" "))
    }
}

async fn status(req: reqwest::RequestBuilder) -> anyhow::Result<u16> {
    let resp = req.send().await?;
    let s = resp.status().as_u16();
    resp.bytes().await?;
    Ok(s)
}

/// `n` requests from `addr`, one after the other, as fast as they are answered.
async fn flood(
    n: usize,
    addr: &str,
    req: impl Fn(usize) -> reqwest::RequestBuilder,
) -> anyhow::Result<(Tally, Duration)> {
    let t0 = Instant::now();
    let mut tally = Tally::default();
    for i in 0..n {
        tally.add(status(req(i).header(XFF, addr)).await?);
    }
    Ok((tally, t0.elapsed()))
}

/// The other clients, `198.51.100.{i + 1}`: one request each.
async fn others(n: usize, req: impl Fn(usize) -> reqwest::RequestBuilder) -> anyhow::Result<Tally> {
    let mut tally = Tally::default();
    for i in 0..n {
        let addr = format!("198.51.100.{}", i % 250 + 1);
        tally.add(status(req(i).header(XFF, addr)).await?);
    }
    Ok(tally)
}

fn report_flood(what: &str, addr: &str, (tally, took): &(Tally, Duration)) {
    println!(
        "  {what}: hostile {addr}, {} requests in {:.2} s: {} answered 429 ({tally})",
        tally.total(),
        took.as_secs_f64(),
        tally.count(429)
    );
}

fn report_others(what: &str, tally: &Tally) {
    let served = tally.total() - tally.count(429);
    println!(
        "  {what}: other clients served {served}/{} ({tally})",
        tally.total()
    );
}

async fn rate_limits(
    http: &reqwest::Client,
    child: &Child,
    key: &str,
    args: &DosArgs,
) -> anyhow::Result<()> {
    let base = &child.base;
    println!("rate limits behind a trusted proxy (X-Forwarded-For per client):");

    // Consent: the connect page. The hostile client's links are made up
    // (404 pages, each still counted); the others follow real links.
    let hostile = "203.0.113.66";
    let flooded = flood(args.hostile, hostile, |i| {
        http.get(format!("{base}/connect/cs_{i:032x}"))
    })
    .await?;
    report_flood("connect page", hostile, &flooded);
    let mut links = Vec::with_capacity(args.others);
    for i in 0..args.others {
        let session: Value = http
            .post(format!("{base}/v1/connect-sessions"))
            .bearer_auth(key)
            .json(&json!({ "owner": format!("other:{i}") }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        links.push(
            session["connect_url"]
                .as_str()
                .context("no connect_url")?
                .to_string(),
        );
    }
    report_others(
        "connect page",
        &others(args.others, |i| http.get(&links[i])).await?,
    );

    // Admin login: wrong tokens from the hostile client, the right one from the others.
    let login = format!("{base}/admin/login");
    let flooded = flood(args.hostile, hostile, |_| {
        http.post(&login).form(&[("token", "not-the-admin-token")])
    })
    .await?;
    report_flood("admin login (wrong token)", hostile, &flooded);
    report_others(
        "admin login (right token)",
        &others(args.others, |_| {
            http.post(&login).form(&[("token", child.admin.as_str())])
        })
        .await?,
    );

    // The admin bearer API with the right token, then guessed tokens.
    let apps = format!("{base}/admin/api/apps");
    let hammer = "203.0.113.77";
    let flooded = flood(args.admin_hammer, hammer, |_| {
        http.get(&apps).bearer_auth(&child.admin)
    })
    .await?;
    report_flood("admin bearer API (right token)", hammer, &flooded);
    report_others(
        "admin bearer API",
        &others(args.others, |_| http.get(&apps).bearer_auth(&child.admin)).await?,
    );
    let guesser = "203.0.113.88";
    let flooded = flood(args.hostile, guesser, |i| {
        http.get(&apps).bearer_auth(format!("guess-{i}"))
    })
    .await?;
    report_flood("admin bearer API (guessed tokens)", guesser, &flooded);
    let then = status(
        http.get(&apps)
            .bearer_auth(&child.admin)
            .header(XFF, guesser),
    )
    .await?;
    println!("  the guesser with the right token afterwards: {then}");

    // IPv6: one bucket per /64.
    let (a, b, c) = ("2001:db8:1:2::1", "2001:db8:1:2::ffff", "2001:db8:1:3::1");
    let flooded = flood(args.hostile, a, |i| {
        http.get(format!("{base}/connect/cs_{i:032x}"))
    })
    .await?;
    report_flood("connect page, IPv6", a, &flooded);
    for addr in [b, c] {
        let s = status(
            http.get(format!("{base}/connect/cs_{:032x}", 0))
                .header(XFF, addr),
        )
        .await?;
        println!("  then {addr}: {s}");
    }
    Ok(())
}

fn rss(child: &Child) -> anyhow::Result<f64> {
    Ok(memory_mib(child.proc.id())?.1)
}

async fn pacer_memory(
    http: &reqwest::Client,
    child: &Child,
    key: &str,
    connection: &str,
    sim: &atlassim::Sim,
    args: &DosArgs,
) -> anyhow::Result<()> {
    let project = sim.snapshot()["sites"][0]["projects"][0]["key"]
        .as_str()
        .context("atlassim has no project")?
        .to_string();
    let proxy = format!("{}/v1/connections/{connection}/proxy/jira", child.base);
    let get = |path: String| {
        let url = format!("{proxy}{path}");
        async move { status(http.get(url).bearer_auth(key)).await }
    };
    // One call first: the connection's token and client are warm.
    get("/rest/api/3/myself".into()).await?;
    println!(
        "pacer memory: distinct paths /rest/api/3/issue/{project}-{{n}} through the proxy, {} in flight:",
        args.concurrency
    );
    println!("  VmRSS at the start: {:.1} MiB", rss(child)?);
    let mut first = 0usize;
    for &n in &args.paths {
        let t0 = Instant::now();
        let answers: Vec<anyhow::Result<u16>> = futures::stream::iter(first..first + n)
            .map(|i| get(format!("/rest/api/3/issue/{project}-{}", i + 1)))
            .buffer_unordered(args.concurrency.max(1))
            .collect()
            .await;
        first += n;
        let mut tally = Tally::default();
        for a in answers {
            tally.add(a?);
        }
        let took = t0.elapsed();
        let after = rss(child)?;
        tokio::time::sleep(Duration::from_secs(args.idle_s)).await;
        get("/rest/api/3/myself".into()).await?;
        let idle = rss(child)?;
        println!(
            "  {n} more paths in {:.1} s ({tally}): VmRSS after {after:.1} MiB, after {} s idle {idle:.1} MiB",
            took.as_secs_f64(),
            args.idle_s
        );
    }
    let (hwm, _) = memory_mib(child.proc.id())?;
    println!("  VmHWM (peak) {hwm:.1} MiB");
    Ok(())
}

pub async fn run(args: DosArgs) -> anyhow::Result<()> {
    let bins = bins_or_default(&args.bins)?;
    let dir = std::env::temp_dir().join(format!("atlasgate-bench-dos-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let sim = atlassim::Sim::start(atlassim::SimConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..Default::default()
    })
    .await?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(args.concurrency * 2)
        .timeout(Duration::from_secs(args.timeout_s))
        .build()?;
    println!("atlasgate-bench dos: issue 9's denial-of-service figures");
    for bin in &bins {
        println!("== {}", bin.display());
        let child = spawn_with(
            bin,
            &sim,
            &dir,
            &[
                ("ATLASGATE_TRUSTED_PROXIES", "127.0.0.1,::1"),
                // Each refused admin login is a warning; a hundred of them hide the figures.
                ("ATLASGATE_LOG", "error"),
            ],
        )
        .await?;
        let (key, connection, _) = connect(&http, &child, &sim).await?;
        rate_limits(&http, &child, &key, &args).await?;
        pacer_memory(&http, &child, &key, &connection, &sim, &args).await?;
        issue_keys::warm_up(&http, &child.base, &key, &connection).await?;
        let m = issue_keys::measure(
            &http,
            &child.base,
            &key,
            &connection,
            args.kb,
            args.timeout_s,
        )
        .await?;
        println!("issue-keys, one hostile text of {} KB: {m}", args.kb);
        drop(child);
    }
    sim.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
