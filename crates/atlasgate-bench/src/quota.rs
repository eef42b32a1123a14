//! `atlasgate-bench quota`: a backfill spends the hourly points budget
//! while interactive calls keep their latency (docs/design.md §17, issue 12).
//!
//! atlassim runs in this process with `--points-per-hour Q` (set so the
//! backfill needs more than one hour of atlassim's clock) and N issues over
//! P projects; atlasgate is a child `atlasgate serve` (SQLite, pacing on,
//! `ATLASGATE_POINTS_RESERVE` as given). The run:
//!
//! 1. an interactive load alone for `--baseline-s` seconds: reads at a
//!    steady `--rate` per second, alternately proxied (`GET …/proxy/jira/
//!    rest/api/3/issue/{key}`) and typed (`GET …/jira/issues/{key}`), each
//!    sent on its schedule whatever the others do (open loop);
//! 2. the same load beside a full sync of every project (the backfill), until
//!    its first pass is done.
//!
//! **atlassim's clock.** When atlassim's pool nears the backfill's share
//! of the window (95% of it), or the backfill stops storing issues for
//! `--stall-s`, the bench moves atlassim's clock to [`LEAD_S`] seconds before
//! the top of its hour. From then on atlassim's `RateLimit: …;t=` headers say
//! the window ends in that many seconds, atlasgate moves its window's end
//! there (the budget takes Atlassian's reset as authoritative, earlier or
//! later), and both roll at the same moment, atlassim on its clock and
//! atlasgate on its own. It is done while calls still flow: once every
//! usable point is spent atlasgate makes no call, so no header could tell it
//! (over a real hour its own clock would). An exact one-hour jump would not
//! do either: the headers before and after it are the same.
//!
//! **What is reported.** Per window of atlassim's clock: the points its
//! pool counted (everything atlasgate spent, both classes), as a share of
//! the quota less the reserve. A window the backfill waited out is *full*;
//! the last one (the backfill finished in it) is not. The line
//! `backfill used N% of the budget, interactive p95 X ms, quota 429s: M`
//! takes N over the full windows, X over the load beside the backfill, M
//! the 429s atlassim sent (Atlassian's quota refusals). Targets: N ≥ 90,
//! X within 20% of the load alone, M = 0.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use serde_json::{json, Value};

use crate::sync::{connect, project_jql, spawn_with_env, Child};

#[derive(Parser, Clone)]
pub struct QuotaArgs {
    /// Issues of the backfill (spread over `--projects`).
    #[arg(long, default_value_t = 40_000)]
    issues: usize,
    #[arg(long, default_value_t = 8)]
    projects: usize,
    /// atlassim's hourly quota (`--points-per-hour`); the default makes a
    /// 40,000-issue backfill need two windows.
    #[arg(long, default_value_t = 36_000)]
    points_per_hour: u64,
    /// `ATLASGATE_POINTS_RESERVE`: the share kept for direct-token calls.
    #[arg(long, default_value_t = 0.2)]
    reserve: f64,
    /// Interactive requests per second (half proxied, half typed).
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Seconds of interactive load without a backfill.
    #[arg(long, default_value_t = 30)]
    baseline_s: u64,
    /// No issue stored for this long: the backfill waits for the next window.
    #[arg(long, default_value_t = 3)]
    stall_s: u64,
    /// Delay atlassim adds to every gateway request (the network to Atlassian).
    #[arg(long, default_value_t = 20)]
    latency_ms: u64,
    /// The `atlasgate` binary (default: next to this one).
    #[arg(long)]
    atlasgate_bin: Option<PathBuf>,
}

/// Seconds before the top of its hour atlassim's clock is moved to when
/// the backfill waits: the reset atlasgate then learns from the headers.
/// Short, because the interactive load runs in real time while an hour of
/// atlassim's clock passes in seconds: what it spends per window must stay
/// within the interactive room (5% of the usable budget), as it would over
/// a real hour at a realistic rate. Longer than the budget's 2 s margin.
const LEAD_S: i64 = 6;
/// Give up on a backfill that takes longer than this (real time).
const DEADLINE: Duration = Duration::from_secs(1800);

/// One interactive call: when it was sent, how long it took, its status.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    took: Duration,
    status: u16,
}

/// The steady interactive load: runs until `stop`, every sample kept.
struct Load {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Load {
    fn start(http: reqwest::Client, urls: Vec<String>, key: String, rate: f64) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (s, out) = (stop.clone(), samples.clone());
        let task = tokio::spawn(async move {
            let every = Duration::from_secs_f64(1.0 / rate.max(0.1));
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut inflight = tokio::task::JoinSet::new();
            let mut i = 0usize;
            while !s.load(Ordering::Relaxed) {
                tick.tick().await;
                let url = urls[i % urls.len()].clone();
                i += 1;
                let (http, key, out) = (http.clone(), key.clone(), out.clone());
                inflight.spawn(async move {
                    let at = Instant::now();
                    let status = match http.get(&url).bearer_auth(&key).send().await {
                        Ok(r) => {
                            let st = r.status().as_u16();
                            let _ = r.bytes().await;
                            st
                        }
                        Err(_) => 0,
                    };
                    let sample = Sample {
                        at,
                        took: at.elapsed(),
                        status,
                    };
                    out.lock().unwrap_or_else(|e| e.into_inner()).push(sample);
                });
                while inflight.try_join_next().is_some() {}
            }
            while inflight.join_next().await.is_some() {}
        });
        Load {
            stop,
            samples,
            task,
        }
    }

    async fn finish(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        let v = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        v.clone()
    }
}

/// p50, p95 of the successful samples; and how many were refused (429) or failed.
struct Summary {
    n: usize,
    p50: Duration,
    p95: Duration,
    refused: usize,
    failed: usize,
}

fn summarise<'a>(samples: impl Iterator<Item = &'a Sample>) -> Summary {
    let (mut ok, mut refused, mut failed) = (Vec::new(), 0, 0);
    for s in samples {
        match s.status {
            200..=299 => ok.push(s.took),
            429 => refused += 1,
            _ => failed += 1,
        }
    }
    ok.sort();
    let pct = |p: f64| {
        ok.get(((ok.len() as f64 * p) as usize).min(ok.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Summary {
        n: ok.len(),
        p50: pct(0.50),
        p95: pct(0.95),
        refused,
        failed,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// atlassim's app pool: (its hour, points counted in it).
fn sim_pool(sim: &atlassim::Sim) -> (String, u64) {
    sim.stats()
        .points
        .pools
        .first()
        .map(|p| (p.hour.clone(), p.used))
        .unwrap_or_default()
}

/// 429s atlassim sent on gateway routes (its quota's refusals: burst
/// limits are off in this run).
fn sim_429s(sim: &atlassim::Sim) -> u64 {
    sim.stats()
        .requests
        .iter()
        .filter(|r| r.route.starts_with("/ex/") && r.status == 429)
        .map(|r| r.count)
        .sum()
}

/// Move atlassim's clock to `LEAD_S` seconds before the top of its hour;
/// answers the real instant its hour turns.
fn lead_to_reset(sim: &atlassim::Sim) -> Instant {
    let now = sim.now().timestamp();
    let to_reset = 3600 - now.rem_euclid(3600);
    if to_reset > LEAD_S {
        sim.advance_clock(to_reset - LEAD_S);
    }
    Instant::now() + Duration::from_secs(to_reset.min(LEAD_S) as u64)
}

/// Wait until atlassim's pool is counted in another hour than `hour`;
/// answers the last count seen in `hour` (the points of that window).
async fn wait_for_turn(sim: &atlassim::Sim, hour: &str) -> anyhow::Result<u64> {
    let until = Instant::now() + Duration::from_secs(LEAD_S as u64 + 30);
    let mut used = 0;
    loop {
        // The pool changes hour on the first call after the turn; the
        // interactive load makes one every 1/rate s.
        let (h, u) = sim_pool(sim);
        if h != hour {
            return Ok(used);
        }
        used = u;
        if Instant::now() > until {
            bail!("atlassim's hour did not turn");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn get_json(http: &reqwest::Client, url: &str, key: &str) -> anyhow::Result<Value> {
    Ok(http
        .get(url)
        .bearer_auth(key)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

/// Points atlasgate reports spent per class (`atlasgate_points_used_total`).
async fn points_by_class(http: &reqwest::Client, child: &Child) -> anyhow::Result<(f64, f64)> {
    let text = http
        .get(format!("{}/metrics", child.base))
        .send()
        .await?
        .text()
        .await?;
    let sum = |class: &str| -> f64 {
        text.lines()
            .filter(|l| {
                l.starts_with("atlasgate_points_used_total")
                    && l.contains(&format!("class=\"{class}\""))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    Ok((sum("interactive"), sum("background")))
}

/// One window of atlassim's clock the backfill ran in.
#[derive(Debug)]
struct Window {
    used: u64,
    /// The backfill's share of this window was reached (it was the limit).
    full: bool,
    issues_after: i64,
}

pub async fn run(args: QuotaArgs) -> anyhow::Result<()> {
    let bin = crate::sync::bin_or_default(args.atlasgate_bin.as_ref())?;
    let dir = std::env::temp_dir().join(format!("atlasgate-bench-quota-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let per_project = args.issues.div_ceil(args.projects.max(1));
    let sim = atlassim::Sim::start(atlassim::SimConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        sites: 1,
        projects: args.projects,
        issues: per_project,
        latency_ms: args.latency_ms,
        points_per_hour: Some(args.points_per_hour),
        // Tokens outlive the hours the clock is moved by (refreshing is not
        // what is measured; the 401 → refresh path is tested elsewhere).
        access_token_ttl_secs: 24 * 3600,
        ..Default::default()
    })
    .await?;
    // Just past the top of an hour: the first window atlasgate sees is a whole one.
    let now = sim.now().timestamp();
    sim.advance_clock(3600 - now.rem_euclid(3600) + 5);
    let child = spawn_with_env(
        &bin,
        &sim,
        &dir,
        &[
            (
                "ATLASGATE_POINTS_PER_HOUR",
                args.points_per_hour.to_string(),
            ),
            ("ATLASGATE_POINTS_RESERVE", args.reserve.to_string()),
        ],
        &[],
    )
    .await?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(256)
        .build()?;
    let (key, connection, _cloud) = connect(&http, &child, &sim).await?;
    let projects: Vec<String> = sim.snapshot()["sites"][0]["projects"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["key"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let urls: Vec<String> = (0..200)
        .map(|i| {
            let issue = format!("{}-{}", projects[i % projects.len()], i / 2 + 1);
            if i % 2 == 0 {
                format!(
                    "{}/v1/connections/{connection}/proxy/jira/rest/api/3/issue/{issue}",
                    child.base
                )
            } else {
                format!(
                    "{}/v1/connections/{connection}/jira/issues/{issue}",
                    child.base
                )
            }
        })
        .collect();
    let usable = args.points_per_hour as f64 * (1.0 - args.reserve);
    println!(
        "atlasgate-bench quota: {} issues in {} projects, atlassim {} points/hour (reserve {:.0}%: {:.0} usable), latency {} ms, interactive {}/s",
        per_project * args.projects,
        args.projects,
        args.points_per_hour,
        args.reserve * 100.0,
        usable,
        args.latency_ms,
        args.rate
    );

    // 1. The interactive load alone.
    let load = Load::start(http.clone(), urls.clone(), key.clone(), args.rate);
    tokio::time::sleep(Duration::from_secs(args.baseline_s)).await;
    let alone = load.finish().await;
    let base = summarise(alone.iter());
    println!(
        "interactive alone:          {:>6} calls  p50 {:>7.2} ms  p95 {:>7.2} ms  refused {}  failed {}",
        base.n,
        ms(base.p50),
        ms(base.p95),
        base.refused,
        base.failed
    );

    // 2. The backfill starts in a fresh window, with the load beside it.
    let load = Load::start(http.clone(), urls, key.clone(), args.rate);
    let hour = sim_pool(&sim).0;
    lead_to_reset(&sim);
    wait_for_turn(&sim, &hour).await?;
    let points_before = sim.stats().points.used;
    let classes_before = points_by_class(&http, &child).await?;
    let started = Instant::now();
    let created = http
        .post(format!("{}/v1/connections/{connection}/syncs", child.base))
        .bearer_auth(&key)
        .json(&json!({ "jql": project_jql(&sim), "interval_s": 86400 }))
        .send()
        .await?
        .error_for_status()?
        .json::<Value>()
        .await?;
    let sync_url = format!(
        "{}/v1/connections/{connection}/syncs/{}",
        child.base,
        created["id"].as_str().context("no sync id")?
    );
    let mut windows: Vec<Window> = Vec::new();
    let (mut hour, mut used) = sim_pool(&sim);
    let mut last_issues = -1i64;
    let mut progress_at = Instant::now();
    // Real-time spans in which the backfill was storing issues.
    let mut busy: Vec<(Instant, Instant)> = Vec::new();
    let mut busy_from: Option<Instant> = Some(started);
    let mut first_eta: Option<u64> = None;
    // The backfill's share of a window (the budget's background cap).
    let share = usable * 0.95;
    // atlassim's clock was moved ahead in this window / the backfill waited in it.
    let (mut led, mut stalled) = (false, false);
    let total = loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let v = get_json(&http, &sync_url, &key).await?;
        let issues = v["issues_synced"].as_i64().unwrap_or(0);
        let (h, u) = sim_pool(&sim);
        if h != hour {
            // Full: the budget bound it (the clock was moved at the share).
            windows.push(Window {
                used,
                full: led,
                issues_after: issues,
            });
            hour = h;
            (led, stalled) = (false, false);
            progress_at = Instant::now();
        }
        used = u;
        if v["passes"].as_i64().unwrap_or(0) >= 1 {
            if let Some(from) = busy_from.take() {
                busy.push((from, Instant::now()));
            }
            windows.push(Window {
                used,
                full: false,
                issues_after: issues,
            });
            break issues;
        }
        if issues != last_issues {
            last_issues = issues;
            progress_at = Instant::now();
            busy_from.get_or_insert(progress_at);
        } else if !stalled && progress_at.elapsed() >= Duration::from_secs(args.stall_s) {
            // The backfill waits for the next window.
            stalled = true;
            if let Some(from) = busy_from.take() {
                busy.push((from, progress_at));
            }
            if first_eta.is_none() {
                first_eta = v["eta_s"].as_u64();
            }
            println!(
                "  window {}: backfill waits after {issues} issues, atlassim counted {used} points ({:.1}% of usable), eta_s {}",
                windows.len() + 1,
                used as f64 / usable * 100.0,
                v["eta_s"]
            );
        }
        // Near the backfill's share (or waiting without it: then the
        // figure shows it), atlassim's clock goes to just before its
        // reset while calls still flow, so that atlasgate hears of the
        // reset: once every usable point is spent no call is made, and no
        // header could tell (over a real hour its own clock would).
        if !led && (used as f64 >= share * 0.95 || stalled) {
            led = true;
            lead_to_reset(&sim);
        }
        if let Some(e) = v["last_error"].as_str() {
            println!("  (a pass failed and resumes: {e})");
        }
        if started.elapsed() > DEADLINE {
            bail!("the backfill did not finish in {} s", DEADLINE.as_secs());
        }
    };
    let took = started.elapsed();
    let beside = load.finish().await;
    let points_after = sim.stats().points.used;
    let classes_after = points_by_class(&http, &child).await?;
    let quota_429s = sim_429s(&sim);

    let all = summarise(beside.iter().filter(|s| s.at >= started));
    let storing = summarise(
        beside
            .iter()
            .filter(|s| busy.iter().any(|(a, b)| s.at >= *a && s.at <= *b)),
    );
    for (i, w) in windows.iter().enumerate() {
        println!(
            "  window {}: {} points ({:.1}% of usable){}, {} issues stored by its end",
            i + 1,
            w.used,
            w.used as f64 / usable * 100.0,
            if w.full {
                " — share reached"
            } else {
                " — backfill done"
            },
            w.issues_after
        );
    }
    println!(
        "backfill: {total} issues in {:.1} s real, {} windows of atlassim's clock; {} points (atlassim), of which background {:.0}, interactive {:.0} (atlasgate's metrics); first eta_s {}",
        took.as_secs_f64(),
        windows.len(),
        points_after - points_before,
        classes_after.1 - classes_before.1,
        classes_after.0 - classes_before.0,
        first_eta.map_or("-".to_string(), |e| e.to_string())
    );
    println!(
        "interactive beside it:      {:>6} calls  p50 {:>7.2} ms  p95 {:>7.2} ms  refused {}  failed {}",
        all.n,
        ms(all.p50),
        ms(all.p95),
        all.refused,
        all.failed
    );
    println!(
        "  while it stored issues:   {:>6} calls  p50 {:>7.2} ms  p95 {:>7.2} ms",
        storing.n,
        ms(storing.p50),
        ms(storing.p95)
    );
    let full: Vec<&Window> = windows.iter().filter(|w| w.full).collect();
    let share = if full.is_empty() {
        0.0
    } else {
        full.iter().map(|w| w.used as f64).sum::<f64>() / (full.len() as f64 * usable) * 100.0
    };
    println!();
    println!(
        "backfill used {share:.1}% of the budget, interactive p95 {:.2} ms, quota 429s: {quota_429s}",
        ms(all.p95)
    );
    let ratio = ms(all.p95) / ms(base.p95).max(0.001);
    println!(
        "  budget left after the reserve used: {share:.1}% over {} full window(s) (target >= 90%): {}",
        full.len(),
        if share >= 90.0 && !full.is_empty() {
            "met"
        } else {
            "MISSED"
        }
    );
    println!(
        "  interactive p95 {:.2} ms vs {:.2} ms alone = {:+.1}% (target within 20%): {}",
        ms(all.p95),
        ms(base.p95),
        (ratio - 1.0) * 100.0,
        if ratio <= 1.2 { "met" } else { "MISSED" }
    );
    println!(
        "  quota 429s from atlassim: {quota_429s}, interactive calls atlasgate refused: {} (target 0): {}",
        all.refused,
        if quota_429s == 0 && all.refused == 0 {
            "met"
        } else {
            "MISSED"
        }
    );
    if total < (per_project * args.projects) as i64 {
        bail!(
            "the backfill stored {total} of {} issues",
            per_project * args.projects
        );
    }
    drop(child);
    sim.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
