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

use crate::sync::{connect, default_bin, spawn};

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
    let bins = if args.bins.is_empty() {
        vec![default_bin()?]
    } else {
        args.bins.clone()
    };
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
        let url = format!("{}/v1/connections/{connection}/jira/issue-keys", child.base);
        // Warm-up: the site's project list is fetched and cached.
        http.post(&url)
            .bearer_auth(&key)
            .json(&json!({ "texts": ["warm-up"] }))
            .send()
            .await?
            .error_for_status()?;
        for kb in &args.kb {
            let body = json!({ "texts": [hostile(kb * 1000)] });
            let busy = Arc::new(AtomicBool::new(true));
            let probe = {
                let (http, busy) = (http.clone(), busy.clone());
                let health = format!("{}/healthz", child.base);
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
            let sent = http.post(&url).bearer_auth(&key).json(&body).send().await;
            let took = t0.elapsed();
            busy.store(false, Ordering::Relaxed);
            let worst = probe.await.context("healthz probe")?;
            let status = match sent {
                Ok(r) => r.status().as_u16().to_string(),
                Err(e) if e.is_timeout() => format!("no answer in {} s", args.timeout_s),
                Err(e) => format!("error ({e})"),
            };
            println!(
                "{}  {kb:>5} KB: {status} in {:.3} s (slowest /healthz meanwhile {:.0} ms)",
                bin.display(),
                took.as_secs_f64(),
                worst.as_secs_f64() * 1000.0
            );
        }
        drop(child);
    }
    sim.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
