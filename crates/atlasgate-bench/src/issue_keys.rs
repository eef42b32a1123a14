//! `atlasgate-bench issue-keys`: how long `POST …/jira/issue-keys` takes on
//! issue 9's hostile text, `"a_" * n + "a-1"` (quadratic in the former
//! scanner: 600 KB took 33 s of one core).
//!
//! atlassim runs in this process without added latency; each `--atlasgate-bin`
//! (default: the `atlasgate` next to this binary) runs as a child
//! `atlasgate serve` on SQLite, so a build of the former code can be
//! measured in the same run as the current one. Per size it sends one text
//! of that many bytes and prints the status and the time to the answer,
//! and the slowest `/healthz` seen meanwhile (probed every 100 ms: whether
//! the scan starves the rest of the server).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use serde_json::json;

use crate::sync::{bins_or_default, connect, spawn};

#[derive(Parser, Clone)]
pub struct IssueKeysArgs {
    /// Text sizes, in KB (1,000 bytes).
    #[arg(long, value_delimiter = ',', default_values_t = vec![60usize, 600])]
    kb: Vec<usize>,
    /// atlasgate binaries to measure, one after the other (repeatable).
    #[arg(long = "atlasgate-bin")]
    bins: Vec<PathBuf>,
    /// Give up on one request after this many seconds.
    #[arg(long, default_value_t = 120)]
    timeout_s: u64,
}

/// The issue's text, `bytes` long (give or take one byte).
fn hostile(bytes: usize) -> String {
    "a_".repeat(bytes.saturating_sub(3) / 2) + "a-1"
}

pub async fn run(args: IssueKeysArgs) -> anyhow::Result<()> {
    let bins = bins_or_default(&args.bins)?;
    let dir = std::env::temp_dir().join(format!("atlasgate-bench-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let sim = atlassim::Sim::start(atlassim::SimConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..Default::default()
    })
    .await?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(args.timeout_s))
        .build()?;
    println!("atlasgate-bench issue-keys: one text of \"a_\" * n + \"a-1\" per request");
    for bin in &bins {
        let child = spawn(bin, &sim, &dir).await?;
        let (key, connection, _) = connect(&http, &child, &sim).await?;
        warm_up(&http, &child.base, &key, &connection).await?;
        for kb in &args.kb {
            let m = measure(&http, &child.base, &key, &connection, *kb, args.timeout_s).await?;
            println!("{}  {kb:>5} KB: {m}", bin.display());
        }
        drop(child);
    }
    sim.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// One hostile text's answer: the status, the time to it, and the slowest
/// `/healthz` seen meanwhile.
pub(crate) struct Measured {
    status: String,
    took: Duration,
    worst_health: Duration,
}

impl std::fmt::Display for Measured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} in {:.3} s (slowest /healthz meanwhile {:.0} ms)",
            self.status,
            self.took.as_secs_f64(),
            self.worst_health.as_secs_f64() * 1000.0
        )
    }
}

fn issue_keys_url(base: &str, connection: &str) -> String {
    format!("{base}/v1/connections/{connection}/jira/issue-keys")
}

/// One ordinary call, so the site's project list is fetched and cached
/// before anything is timed.
pub(crate) async fn warm_up(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    connection: &str,
) -> anyhow::Result<()> {
    http.post(issue_keys_url(base, connection))
        .bearer_auth(key)
        .json(&json!({ "texts": ["warm-up"] }))
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

/// Send one hostile text of `kb` KB to the atlasgate at `base` (after
/// [`warm_up`]), probing `/healthz` every 100 ms until it is answered.
pub(crate) async fn measure(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    connection: &str,
    kb: usize,
    timeout_s: u64,
) -> anyhow::Result<Measured> {
    let body = json!({ "texts": [hostile(kb * 1000)] });
    let busy = Arc::new(AtomicBool::new(true));
    let probe = {
        let (http, busy) = (http.clone(), busy.clone());
        let health = format!("{base}/healthz");
        tokio::spawn(async move {
            let mut worst = Duration::ZERO;
            while busy.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                let _ = http.get(&health).send().await;
                worst = worst.max(t0.elapsed());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            worst
        })
    };
    let t0 = Instant::now();
    let sent = http
        .post(issue_keys_url(base, connection))
        .bearer_auth(key)
        .timeout(Duration::from_secs(timeout_s))
        .json(&body)
        .send()
        .await;
    let took = t0.elapsed();
    busy.store(false, Ordering::Relaxed);
    let worst_health = probe.await.context("healthz probe")?;
    let status = match sent {
        Ok(r) => r.status().as_u16().to_string(),
        Err(e) if e.is_timeout() => format!("no answer in {timeout_s} s"),
        Err(e) => format!("error ({e})"),
    };
    Ok(Measured {
        status,
        took,
        worst_health,
    })
}
