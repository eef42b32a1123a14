//! The points budget (docs/design.md §17) against atlassim's quota
//! (`--points-per-hour`), on both backends: processes share one budget and
//! never pass it, syncs yield to interactive calls, a quota 429 pauses the
//! site for every caller, pacing buckets follow endpoint templates.

use atlasgate::ids::ConnectionId;
use std::time::Duration;

use atlasgate::atlassian::budget::{BudgetSettings, CallClass};
use atlasgate::atlassian::limits::{Endpoint, Pacer, Pacing};
use atlasgate::atlassian::Product;
use http::Method;
use serde_json::{json, Value};

use crate::connect::sim_sites;
use crate::helpers::{backends, wait_for, TestApp, TestOptions};
use crate::proxy::{connect_with, proxy_get, sim_count};
use atlasgate::store::Backend;

/// atlasgate over an atlassim whose app pool holds `points` an hour, its
/// clock moved to just after the top of an hour (no reset mid-test).
async fn spawn(backend: Backend, points: u64, issues: usize) -> TestApp {
    let sim = atlassim::SimConfig {
        points_per_hour: Some(points),
        issues,
        sites: 1,
        ..Default::default()
    };
    let app = TestApp::spawn_with(
        TestOptions {
            backend,
            sim,
            ..Default::default()
        },
        |_| {},
    )
    .await;
    let now = app.sim.now().timestamp();
    app.sim.advance_clock(3600 - now.rem_euclid(3600) + 5);
    app
}

async fn connected(app: &TestApp) -> (String, String) {
    let (_, key) = app
        .create_app(&format!("app-{}", uuid::Uuid::new_v4().simple()))
        .await;
    let id = connect_with(app, &key, "team:1", "jira", 0).await;
    (key, id)
}

fn sim_points(app: &TestApp) -> u64 {
    app.sim.stats().points.pools.iter().map(|p| p.used).sum()
}

/// Quota 429s atlassim sent (any gateway route).
fn quota_429s(app: &TestApp) -> u64 {
    app.sim
        .stats()
        .requests
        .iter()
        .filter(|r| r.route.starts_with("/ex/") && r.status == 429)
        .map(|r| r.count)
        .sum()
}

fn issue_keys(app: &TestApp, n: usize) -> Vec<String> {
    let mut keys: Vec<String> = project_keys(app).iter().map(|p| format!("{p}-1")).collect();
    keys.truncate(n.max(1));
    keys
}

/// A sync of every project (hourly), created: its id.
async fn sync_every_project(app: &TestApp, key: &str, id: &str) -> String {
    let created = app
        .post_json(
            &format!("/v1/connections/{id}/syncs"),
            Some(key),
            &json!({ "jql": format!("project in ({})", project_keys(app).join(", ")), "interval_s": 3600 }),
        )
        .await;
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
    created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn project_keys(app: &TestApp) -> Vec<String> {
    app.sim.snapshot()["sites"][0]["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap().to_string())
        .collect()
}

fn settings(reserve: f64) -> BudgetSettings {
    BudgetSettings {
        per_hour: 65_000,
        reserve,
    }
}

#[tokio::test]
async fn two_processes_share_one_budget_and_never_pass_it() {
    for backend in backends() {
        // 400 points an hour, a quarter kept for direct-token traffic: 300
        // for atlasgate, shared by two processes on one database.
        let app = spawn(backend, 400, 10).await;
        let (key, id) = connected(&app).await;
        let keyring = app.keyring.clone();
        let other = app.spawn_other(keyring).await;
        app.state.atlassian.budget().configure(settings(0.25));
        other.state.atlassian.budget().configure(settings(0.25));
        let before = sim_points(&app);
        let issue = issue_keys(&app, 1)[0].clone();
        let path = format!("rest/api/3/issue/{issue}");
        // Both processes read as fast as they can until refused.
        let hammer = |base: String| {
            let (key, id, path) = (key.clone(), id.clone(), path.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let (mut ok, mut refused) = (0u32, 0u32);
                for _ in 0..400 {
                    let status = client
                        .get(format!("{base}/v1/connections/{id}/proxy/jira/{path}"))
                        .bearer_auth(&key)
                        .send()
                        .await
                        .unwrap()
                        .status()
                        .as_u16();
                    match status {
                        200 => ok += 1,
                        429 => {
                            refused += 1;
                            if refused >= 3 {
                                break;
                            }
                        }
                        other => panic!("unexpected {other}"),
                    }
                }
                (ok, refused)
            })
        };
        let tasks = [
            hammer(app.address.clone()),
            hammer(app.address.clone()),
            hammer(other.address.clone()),
            hammer(other.address.clone()),
        ];
        let mut per_task = Vec::new();
        for t in tasks {
            per_task.push(t.await.unwrap());
        }
        let spent = sim_points(&app) - before;
        // GET issue costs 2 points: together they spent the 300 and not one point more.
        assert!(spent <= 300, "{backend:?}: spent {spent} of 300");
        assert!(spent >= 280, "{backend:?}: only {spent} of 300 spent");
        assert!(
            per_task.iter().all(|(ok, refused)| *ok > 0 && *refused > 0),
            "{backend:?}: {per_task:?}"
        );
        assert_eq!(quota_429s(&app), 0, "{backend:?}: Atlassian refused a call");
        // The refusal is atlasgate's own 429 problem with a Retry-After.
        let resp = proxy_get(&app, &key, &id, &path).await;
        assert_eq!(resp.status(), 429);
        let retry: u64 = resp.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(retry > 60, "{retry}");

        // Metrics and the dashboard see the spend once flushed.
        app.state.atlassian.budget().flush().await;
        other.state.atlassian.budget().flush().await;
        let metrics = app.get("/metrics", None).await.text().await.unwrap();
        let cloud = &sim_sites(&app)[0];
        let line = metrics
            .lines()
            .find(|l| {
                l.starts_with("atlasgate_points_used_total")
                    && l.contains(cloud.as_str())
                    && l.contains("class=\"interactive\"")
            })
            .unwrap_or_else(|| panic!("no points metric in\n{metrics}"));
        let n: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(n > 0.0 && n <= 300.0, "{line}");
        assert!(metrics.contains("atlasgate_points_remaining{"), "{metrics}");
        let usage = atlasgate::store::points::usage_since(app.store.pool(), 0)
            .await
            .unwrap();
        let total: i64 = usage.iter().map(|u| u.points).sum();
        assert_eq!(total as u64, spent, "{backend:?}: {usage:?}");
    }
}

#[tokio::test]
async fn a_running_sync_yields_to_interactive_calls() {
    for backend in backends() {
        // 8000 points, 20% reserve: 6400 for atlasgate, background up to
        // 95% of that (6080). A full pass over 3600 issues needs ~7240
        // (the id probe 3601, 36 pages of 101, a few small calls).
        let app = spawn(backend, 8000, 1200).await;
        let (key, id) = connected(&app).await;
        let sync_id = sync_every_project(&app, &key, &id).await;
        // The sync spends up to its share, then waits: wait for the id
        // probe (3601) and at least one page of 101 behind it (how far past
        // that it gets before the interactive calls below varies with the
        // machine's load).
        wait_for(120, "the sync to spend", || async {
            (sim_points(&app) >= 3702).then_some(())
        })
        .await;
        let status = app
            .get_ok(&format!("/v1/connections/{id}/syncs/{sync_id}"), &key)
            .await;
        assert!(
            status["pass"].is_object(),
            "{backend:?}: {status} after {} points",
            sim_points(&app)
        );
        assert!(status["issues_synced"].as_i64().unwrap() < 3600, "{status}");
        // The rest of the hour is the interactive calls'.
        let issue = issue_keys(&app, 1)[0].clone();
        for _ in 0..20 {
            let resp = proxy_get(&app, &key, &id, &format!("rest/api/3/issue/{issue}")).await;
            assert_eq!(resp.status(), 200, "{backend:?}");
        }
        let spent = sim_points(&app);
        assert!(spent <= 6400, "{backend:?}: {spent}");
        assert_eq!(quota_429s(&app), 0, "{backend:?}");
        // The pass needs the next window: its eta says so.
        let eta = status["eta_s"].as_u64().expect("eta_s");
        assert!(eta > 600, "{backend:?}: eta {eta} with {status}");
    }
}

/// CPU as well as points: beside app calls a sync's page cycles take turns
/// (`atlassian/priority.rs`); with no app calling they run at full speed.
/// Both passes end with the copy equal to atlassim's.
#[tokio::test]
async fn sync_page_cycles_take_turns_beside_app_calls_and_not_alone() {
    use atlasgate::atlassian::priority::QUIET;
    use atlasgate::jobs::Tuning;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    for backend in backends() {
        let app = spawn(backend, 10_000_000, 40).await;
        // Small pages: a pass over the edited issues is many cycles.
        Tuning::set(&app.state.jobs.tuning.sync_page_size, 2);
        let (key, id) = connected(&app).await;
        let cloud = sim_sites(&app)[0].clone();
        let sync_id = sync_every_project(&app, &key, &id).await;
        let sync_path = format!("/v1/connections/{id}/syncs/{sync_id}");
        let passes = |n: i64| {
            let (app, key, sync_path) = (&app, &key, &sync_path);
            async move {
                wait_for(120, "the sync pass", || async {
                    let v = app.get_ok(sync_path, key).await;
                    (v["passes"].as_i64() >= Some(n)).then_some(())
                })
                .await
            }
        };
        passes(1).await;
        // Edit `n` issues at atlassim (summary `tag k`), run the sync.
        let edit_and_run = |tag: &'static str| {
            let (app, key, sync_path, cloud) = (&app, &key, &sync_path, &cloud);
            async move {
                for k in issue_keys_all(app).iter().take(24) {
                    let resp = reqwest::Client::new()
                        .patch(format!("{}/__sim/issues/{cloud}/{k}", app.sim.base_url()))
                        .json(&json!({ "fields": { "summary": format!("{tag} {k}") } }))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(resp.status(), 200);
                }
                let run = app
                    .post_json(&format!("{sync_path}/run"), Some(key), &json!({}))
                    .await;
                assert_eq!(run.status(), 202);
            }
        };
        let priority = app.state.atlassian.priority();

        // Alone: no app call for longer than QUIET, then a pass.
        tokio::time::sleep(QUIET + Duration::from_millis(200)).await;
        let before = priority.yielded();
        edit_and_run("alone").await;
        passes(2).await;
        assert_eq!(priority.yielded(), before, "{backend:?}: a cycle yielded with no app calling");
        assert_synced(&app, &key, &id, "alone").await;

        // Beside app calls: a reader keeps proxied reads going.
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (client, url, key, stop) = (
                app.client.clone(),
                format!("{}/v1/connections/{id}/proxy/jira/rest/api/3/myself", app.address),
                key.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let mut ok = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    let r = client.get(&url).bearer_auth(&key).send().await.unwrap();
                    assert_eq!(r.status(), 200);
                    ok += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                ok
            })
        };
        wait_for(10, "the reader's first call", || async {
            priority.busy().then_some(())
        })
        .await;
        edit_and_run("beside").await;
        passes(3).await;
        stop.store(true, Ordering::Relaxed);
        assert!(reader.await.unwrap() > 0);
        assert!(
            priority.yielded() > before,
            "{backend:?}: no page cycle took turns beside app calls"
        );
        assert_synced(&app, &key, &id, "beside").await;
    }
}

/// Every issue key of atlassim's site.
fn issue_keys_all(app: &TestApp) -> Vec<String> {
    let world = app.sim.state().world();
    world.sites[0].issues.values().map(|i| i.key.clone()).collect()
}

/// The synced copy holds atlassim's summaries, and the first 24 issues carry `tag`.
async fn assert_synced(app: &TestApp, key: &str, id: &str, tag: &str) {
    let want: std::collections::HashMap<String, String> = {
        let world = app.sim.state().world();
        world.sites[0]
            .issues
            .values()
            .map(|i| (i.key.clone(), i.summary.clone()))
            .collect()
    };
    assert_eq!(
        want.values().filter(|s| s.starts_with(tag)).count(),
        24,
        "the edits are at atlassim"
    );
    let v = app
        .get_ok(&format!("/v1/connections/{id}/issues?limit=1000"), key)
        .await;
    let have: std::collections::HashMap<String, String> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["key"].as_str().unwrap().to_string(),
                i["summary"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(have, want, "{tag}: the synced copy differs from atlassim's");
}

#[tokio::test]
async fn a_quota_429_pauses_the_site_for_every_caller() {
    for backend in backends() {
        let app = spawn(backend, 300, 10).await;
        let (key, id) = connected(&app).await;
        let other = app.spawn_other(app.keyring.clone()).await;
        // The other process goes to the shared row on every call.
        other.state.atlassian.budget().set_lease_ttl(Duration::ZERO);
        let issue = issue_keys(&app, 1)[0].clone();
        let path = format!("rest/api/3/issue/{issue}");
        for base in [&app.address, &other.address] {
            let resp = reqwest::Client::new()
                .get(format!("{base}/v1/connections/{id}/proxy/jira/{path}"))
                .bearer_auth(&key)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
        }
        // The app spends the pool itself with its own token (atlasgate cannot see it).
        let token = app.connection_token(&key, &id).await["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        let cloud = &sim_sites(&app)[0];
        let direct = format!("{}/ex/jira/{cloud}/{path}", app.sim.base_url());
        let mut statuses = Vec::new();
        for _ in 0..1000 {
            let s = reqwest::Client::new()
                .get(&direct)
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16();
            statuses.push(s);
            if s == 429 {
                break;
            }
        }
        assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
        let refused_before = quota_429s(&app);
        // atlasgate's next call meets the quota 429 and relays it.
        let resp = proxy_get(&app, &key, &id, &path).await;
        assert_eq!(resp.status(), 429);
        assert_eq!(quota_429s(&app), refused_before + 1);
        let sent = sim_count(&app, "GET", "/rest/api/3/issue/{issueIdOrKey}");
        // Now every caller of every process is refused without a call.
        for base in [&app.address, &other.address] {
            let resp = reqwest::Client::new()
                .get(format!(
                    "{base}/v1/connections/{id}/proxy/jira/rest/api/3/project/search"
                ))
                .bearer_auth(&key)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 429, "{backend:?} {base}");
            let retry: u64 = resp.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(retry > 600, "{retry}");
        }
        let typed = other
            .state
            .atlassian
            .send(
                None,
                &ConnectionId::new(&id),
                atlasgate::atlassian::ApiRequest::get(Product::Jira, path.clone()),
            )
            .await;
        assert!(
            matches!(
                typed,
                Err(atlasgate::atlassian::AtlassianError::RateLimited { .. })
            ),
            "{typed:?}"
        );
        assert_eq!(
            sim_count(&app, "GET", "/rest/api/3/issue/{issueIdOrKey}"),
            sent
        );
        assert_eq!(sim_count(&app, "GET", "/rest/api/3/project/search"), 0);
        assert_eq!(quota_429s(&app), refused_before + 1);
    }
}

#[tokio::test]
async fn a_reset_sooner_than_the_window_ends_it_then() {
    for backend in backends() {
        // 300 points, a quarter kept: 225 for atlasgate.
        let app = spawn(backend, 300, 10).await;
        let (key, id) = connected(&app).await;
        app.state.atlassian.budget().configure(settings(0.25));
        let issue = issue_keys(&app, 1)[0].clone();
        let path = format!("rest/api/3/issue/{issue}");
        // The first answer tells a window ending about an hour from now.
        assert_eq!(proxy_get(&app, &key, &id, &path).await.status(), 200);
        let end = |app: &TestApp| {
            let views = app.state.atlassian.budget().snapshot();
            views[0].window_end - atlasgate::store::now()
        };
        // Atlassian's clock is 6 s from its reset now (as when this
        // process's end was a guess): its headers say so, and the window
        // ends then. Calls spend the window, wait inline (< 30 s) for the
        // next one and go on: none is refused, no point is left unused.
        let now = app.sim.now().timestamp();
        app.sim.advance_clock(3600 - now.rem_euclid(3600) - 6);
        let pool = |app: &TestApp| {
            let p = &app.sim.stats().points.pools[0];
            (p.hour.clone(), p.used)
        };
        let (hour, _) = pool(&app);
        let mut old_window = 0;
        for i in 0..200 {
            let resp = proxy_get(&app, &key, &id, &path).await;
            assert_eq!(resp.status(), 200, "{backend:?}: call {i}");
            let (h, used) = pool(&app);
            if h != hour {
                break;
            }
            old_window = used;
            assert!(i < 190, "{backend:?}: still in the first window");
        }
        assert!(
            (200..=300).contains(&old_window),
            "{backend:?}: {old_window} points in the first window"
        );
        assert_eq!(quota_429s(&app), 0, "{backend:?}");
        assert!(end(&app) > 3000, "{backend:?}: {}", end(&app));
    }
}

#[tokio::test]
async fn issues_share_a_bucket_and_the_pacer_stays_bounded() {
    let app = TestApp::spawn().await;
    let (key, id) = connected(&app).await;
    let pacer = app.state.atlassian.pacer().expect("pacing is on");
    let keys = issue_keys(&app, 2);
    let before = pacer.len();
    for k in &keys {
        let resp = proxy_get(&app, &key, &id, &format!("rest/api/3/issue/{k}")).await;
        assert_eq!(resp.status(), 200);
    }
    // Two issues, one (site, GET, issue/{issueIdOrKey}) bucket.
    assert!(pacer.len() <= before + 1, "{} → {}", before, pacer.len());
    assert!(!pacer.is_empty());

    // 10,000 distinct paths: entries stay within the templates they fold to.
    let p = Pacer::new(Pacing::default());
    let now = tokio::time::Instant::now();
    for i in 0..10_000 {
        for path in [
            format!("rest/api/3/issue/ABC-{i}"),
            format!("rest/api/3/issue/ABC-{i}/comment"),
            format!("rest/api/3/nothing-documented/{i}"),
        ] {
            let e = Endpoint::of(Product::Jira, &Method::GET, &path);
            p.reserve(&Method::GET, "site", &e, now);
        }
        assert!(p.len() <= 3, "{} buckets after {i}", p.len());
    }
    assert_eq!(p.len(), 3);
    let _ = CallClass::Interactive;
}

/// Waiting to be admitted (here a quota pause of the site) does not count
/// against a buffered call's request timeout, so a background pass that
/// yields is not failed for yielding; an answer that is itself late still
/// times out (the positive control).
#[tokio::test]
async fn a_budget_wait_does_not_count_against_the_request_timeout() {
    use atlasgate::atlassian::{ApiRequest, AtlassianError, ClientPolicy};
    for backend in backends() {
        let app = spawn(backend, 65_000, 10).await;
        let (_key, id) = connected(&app).await;
        let id = ConnectionId::new(id);
        app.state.atlassian.set_policy(ClientPolicy {
            request_timeout: Duration::from_secs(1),
            ..ClientPolicy::default()
        });
        let cloud = sim_sites(&app)[0].clone();
        let path = format!("rest/api/3/issue/{}", issue_keys(&app, 1)[0]);
        let background = || {
            app.state
                .atlassian
                .call(None, &id, ApiRequest::get(Product::Jira, path.clone()))
        };

        app.state.atlassian.budget().pause(&cloud, 3).await;
        let started = std::time::Instant::now();
        let answered = background().await;
        let waited = started.elapsed();
        assert!(
            answered.is_ok(),
            "{backend:?}: a call that waited for the budget failed: {:?}",
            answered.err()
        );
        // It did wait out the pause, longer than the request timeout.
        assert!(waited >= Duration::from_secs(2), "{backend:?}: {waited:?}");

        app.sim.add_fault(atlassim::Fault {
            method: Some("GET".into()),
            path: format!("/ex/jira/{cloud}/{path}"),
            count: 1,
            status: None,
            body: None,
            headers: None,
            latency_ms: Some(2500),
            drop: false,
        });
        let late = background().await;
        assert!(
            matches!(late, Err(AtlassianError::Timeout)),
            "{backend:?}: a late answer should time out, got {:?}",
            late.map(|(b, _)| b.len())
        );
    }
}

/// An interactive call never waits for the database behind a backfill: with
/// the shared row locked (a write transaction holds it, as a sync's page
/// writes do) and a background call stuck waiting for it, an interactive
/// call whose lease's TTL has just passed still goes, on the points its
/// class holds, and the renewal it started refreshes the lease once the row
/// is free (so a call after the old lease's last moment goes without the
/// row too). Before, such a call waited for the row (here: for the lock,
/// released only after it).
#[tokio::test]
async fn an_interactive_call_goes_while_a_background_call_waits_for_the_database() {
    use atlasgate::atlassian::budget::Estimate;
    const TTL: Duration = Duration::from_secs(2);
    for backend in backends() {
        let app = spawn(backend, 65_000, 10).await;
        let cloud = sim_sites(&app)[0].clone();
        let budget = app.state.atlassian.budget().clone();
        budget.set_lease_ttl(TTL);
        // As after a first answer: leases come in chunks.
        budget.observe(&cloud, &http::HeaderMap::new());
        let est = |points| Estimate {
            points,
            identity: false,
            write: false,
        };
        let lock_row = || async {
            let mut lock = app.store.begin_write().await.unwrap();
            sqlx::query("UPDATE points_pools SET updated_at = updated_at")
                .execute(&mut *lock)
                .await
                .unwrap();
            lock
        };
        let interactive_beside_the_lock = || async {
            let went = tokio::time::timeout(
                Duration::from_secs(30),
                budget.reserve(&cloud, CallClass::Interactive, est(2)),
            )
            .await
            .unwrap_or_else(|_| panic!("{backend:?}: the interactive call waited for the row"));
            went.expect("admitted from its class's lease").settle(2);
        };
        budget
            .reserve(&cloud, CallClass::Interactive, est(2))
            .await
            .expect("a first lease")
            .settle(2);
        let leased_at = std::time::Instant::now();
        // Past the lease's TTL, within one more.
        tokio::time::sleep(TTL + Duration::from_millis(300)).await;

        let lock = lock_row().await;
        let waiting = {
            let (budget, cloud) = (budget.clone(), cloud.clone());
            tokio::spawn(async move {
                budget
                    .reserve(&cloud, CallClass::Background, est(101))
                    .await
                    .map(|c| c.settle(101))
            })
        };
        interactive_beside_the_lock().await;
        // The row really is held: the background call is still waiting.
        assert!(!waiting.is_finished(), "{backend:?}");
        lock.commit().await.unwrap();
        waiting
            .await
            .unwrap()
            .expect("the background call goes once the row is free");

        // Past the first lease's last moment (2 TTLs): only the renewal's
        // fresh lease lets this call go without the row.
        tokio::time::sleep(
            (2 * TTL + Duration::from_millis(500)).saturating_sub(leased_at.elapsed()),
        )
        .await;
        let lock = lock_row().await;
        interactive_beside_the_lock().await;
        lock.commit().await.unwrap();
    }
}
